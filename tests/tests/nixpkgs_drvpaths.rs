//! Derivations over real nixpkgs: the output paths of 2,170 top-level
//! nixpkgs-20.09 attributes as C++ Nix 2.8 computes them
//! (`../shared/corpus/nixpkgs-20.09-drvpaths.json`, attribute name ->
//! `outPath`), plus `hello.drvPath`.
//!
//! An input-addressed output path is a hash of the derivation's ATerm with
//! every input derivation replaced by its own hash, so a matching `outPath`
//! means the whole `.drv` closure below it is byte-identical to Nix's.
//!
//! All attributes are evaluated in one evaluator (as `nix-env -qa` would),
//! each in its own VM run: a failing attribute only fails itself, and one
//! running longer than [`PER_ATTRIBUTE`] is interrupted. At least
//! [`REQUIRED`] of them must match; every miss must be listed, with its
//! reason, in `tests/nixpkgs-drvpaths-misses.txt`, so a regression fails the
//! test even above the threshold. Set `UPDATE_DRVPATH_MISSES=1` to rewrite
//! that file from the current run.

use attrfs_tests::outpaths::{select_each, short_reason};
use attrfs_tests::{require_corpus, require_shared, workspace_root};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Fraction of attributes whose `outPath` must match.
const REQUIRED: f64 = 0.995;
/// Time one attribute may take before it is interrupted.
const PER_ATTRIBUTE: Duration = Duration::from_secs(60);
/// What `(import nixpkgs {...}).hello.drvPath` is in C++ Nix 2.8.
const HELLO_DRV: &str = "/nix/store/iylhv1jiapks1396jz2fv8wq85q68y6y-hello-2.10.drv";

const MISSES_FILE: &str = "tests/nixpkgs-drvpaths-misses.txt";

/// Evaluates every attribute's `outPath`: (attribute -> result), and
/// `hello.drvPath`.
fn evaluate_all(
    nixpkgs: PathBuf,
    names: Vec<String>,
) -> (
    BTreeMap<String, Result<String, String>>,
    Result<String, String>,
) {
    let root = format!(
        "import {} {{ system = \"x86_64-linux\"; config = {{}}; overlays = []; }}",
        nixpkgs.display()
    );
    let mut queries = vec![("hello".to_string(), "drvPath")];
    queries.extend(names.iter().map(|n| (n.clone(), "outPath")));
    let mut results = select_each(root, queries, PER_ATTRIBUTE).into_iter();
    let hello = results.next().expect("one result per query");
    (names.into_iter().zip(results).collect(), hello)
}

#[test]
fn nixpkgs_outpaths_match_cpp_nix() {
    let (Some(shared), Some(corpus)) = (require_shared(), require_corpus()) else {
        return;
    };
    let nixpkgs = corpus.join("nixpkgs-20.09");
    let json = std::fs::read_to_string(shared.join("corpus/nixpkgs-20.09-drvpaths.json"))
        .expect("read nixpkgs-20.09-drvpaths.json");
    let expected: BTreeMap<String, String> =
        serde_json::from_str(&json).expect("parse nixpkgs-20.09-drvpaths.json");
    let names: Vec<String> = expected.keys().cloned().collect();

    let start = Instant::now();
    let (results, hello) = evaluate_all(nixpkgs, names);
    let elapsed = start.elapsed();

    let mut misses: BTreeMap<String, String> = BTreeMap::new();
    for (name, want) in &expected {
        match &results[name] {
            Ok(got) if got == want => {}
            Ok(got) => {
                misses.insert(name.clone(), format!("outPath {got}, Nix has {want}"));
            }
            Err(e) => {
                misses.insert(name.clone(), short_reason(e));
            }
        }
    }
    let matched = expected.len() - misses.len();
    let ratio = matched as f64 / expected.len() as f64;
    eprintln!(
        "nixpkgs-20.09 outPaths: {matched}/{} match ({:.2}%) in {:.1}s",
        expected.len(),
        ratio * 100.0,
        elapsed.as_secs_f64()
    );

    if std::env::var_os("UPDATE_DRVPATH_MISSES").is_some() {
        let mut text = String::from(
            "# nixpkgs-20.09 attributes whose outPath does not match C++ Nix 2.8,\n\
             # with the reason (written by tests/tests/nixpkgs_drvpaths.rs with\n\
             # UPDATE_DRVPATH_MISSES=1).\n",
        );
        for (name, reason) in &misses {
            text.push_str(&format!("{name} # {reason}\n"));
        }
        std::fs::write(workspace_root().join(MISSES_FILE), text).expect("write the misses file");
    }

    let listed = attrfs_tests::listed_failures(MISSES_FILE);
    let unlisted: Vec<String> = misses
        .iter()
        .filter(|(n, _)| !listed.contains_key(*n))
        .map(|(n, r)| format!("  {n}: {r}"))
        .collect();
    let fixed: Vec<&String> = listed.keys().filter(|n| !misses.contains_key(*n)).collect();
    if !fixed.is_empty() {
        eprintln!("listed as misses but now matching (remove them): {fixed:?}");
    }
    assert_eq!(
        hello.as_deref(),
        Ok(HELLO_DRV),
        "hello.drvPath differs from C++ Nix"
    );
    assert!(
        ratio >= REQUIRED,
        "only {matched}/{} outPaths match; misses:\n{}",
        expected.len(),
        misses
            .iter()
            .map(|(n, r)| format!("  {n}: {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        unlisted.is_empty(),
        "misses not listed in {MISSES_FILE}:\n{}",
        unlisted.join("\n")
    );
}
