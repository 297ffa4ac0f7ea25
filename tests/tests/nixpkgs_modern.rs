//! Derivations over a modern nixpkgs (26.11, trimmed; `../shared/corpus/
//! nixpkgs-26.11-slim.tar.xz`): the out paths C++ Nix 2.8 computes for its
//! top-level attributes (`nixpkgs-26.11-slim-outpaths.json`, attribute name
//! -> `outPath`), plus `hello.drvPath`.
//!
//! The entry point is `pkgs/top-level/impure.nix` with
//! `config = { allowAliases = false; }`, exactly as the reference was
//! computed. Every reference attribute is evaluated, in one evaluator with a
//! VM run per attribute (see `attrfs_tests::outpaths`). Each must match,
//! except those listed, with the reason, in
//! `tests/nixpkgs-modern-misses.txt` (`UPDATE_MODERN_MISSES=1` rewrites it).

use attrfs_tests::outpaths::{select_each, short_reason};
use attrfs_tests::{require_corpus, require_shared, workspace_root};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Time one attribute may take before it is interrupted.
const PER_ATTRIBUTE: Duration = Duration::from_secs(60);
/// What `hello.drvPath` is in C++ Nix 2.8 for this tree.
const HELLO_DRV: &str = "/nix/store/0j6kpwz4dm9964pssxn1zf5vql05y3fl-hello-2.12.3.drv";
const MISSES_FILE: &str = "tests/nixpkgs-modern-misses.txt";

#[test]
fn modern_nixpkgs_outpaths_match_cpp_nix() {
    let (Some(shared), Some(corpus)) = (require_shared(), require_corpus()) else {
        return;
    };
    let tree = corpus.join("nixpkgs-26.11-slim");
    let json = std::fs::read_to_string(shared.join("corpus/nixpkgs-26.11-slim-outpaths.json"))
        .expect("read nixpkgs-26.11-slim-outpaths.json");
    let expected: BTreeMap<String, String> =
        serde_json::from_str(&json).expect("parse nixpkgs-26.11-slim-outpaths.json");

    let root = format!(
        "import {}/pkgs/top-level/impure.nix {{ system = \"x86_64-linux\"; \
         config = {{ allowAliases = false; }}; overlays = []; }}",
        tree.display()
    );
    let mut queries = vec![("hello".to_string(), "drvPath")];
    queries.extend(expected.keys().map(|n| (n.clone(), "outPath")));
    let start = Instant::now();
    let mut results = select_each(root, queries, PER_ATTRIBUTE).into_iter();
    let elapsed = start.elapsed();
    let hello = results.next().expect("one result per query");

    let mut misses: BTreeMap<String, String> = BTreeMap::new();
    for ((name, want), got) in expected.iter().zip(results) {
        match got {
            Ok(got) if &got == want => {}
            Ok(got) => {
                misses.insert(name.clone(), format!("outPath {got}, Nix has {want}"));
            }
            Err(e) => {
                misses.insert(name.clone(), short_reason(&e));
            }
        }
    }
    eprintln!(
        "nixpkgs-26.11-slim outPaths: {}/{} match in {:.1}s",
        expected.len() - misses.len(),
        expected.len(),
        elapsed.as_secs_f64()
    );

    if std::env::var_os("UPDATE_MODERN_MISSES").is_some() {
        let mut text = String::from(
            "# nixpkgs-26.11-slim attributes whose outPath does not match C++ Nix 2.8,\n\
             # with the reason (written by tests/tests/nixpkgs_modern.rs with\n\
             # UPDATE_MODERN_MISSES=1).\n",
        );
        for (name, reason) in &misses {
            text.push_str(&format!("{name} # {reason}\n"));
        }
        std::fs::write(workspace_root().join(MISSES_FILE), text).expect("write the misses file");
    }

    let listed = attrfs_tests::listed_failures(MISSES_FILE);
    let fixed: Vec<&String> = listed.keys().filter(|n| !misses.contains_key(*n)).collect();
    if !fixed.is_empty() {
        eprintln!("listed as misses but now matching (remove them): {fixed:?}");
    }
    assert_eq!(
        hello.as_deref(),
        Ok(HELLO_DRV),
        "hello.drvPath differs from C++ Nix"
    );
    let unlisted: Vec<String> = misses
        .iter()
        .filter(|(n, _)| !listed.contains_key(*n))
        .map(|(n, r)| format!("  {n}: {r}"))
        .collect();
    assert!(
        unlisted.is_empty(),
        "{} misses not listed in {MISSES_FILE}:\n{}",
        unlisted.len(),
        unlisted.join("\n")
    );
}
