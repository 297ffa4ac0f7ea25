//! The compiled-file cache over real nixpkgs: `attrfs eval` of the 2,170
//! reference out paths of nixpkgs 20.09 and of `hello.drvPath`, once with
//! an empty cache (every file compiled and stored) and once warm (every
//! file loaded from its entry), must print the same and match C++ Nix's
//! out paths as the in-process test does (`nixpkgs_drvpaths.rs`, whose list
//! of known misses this reuses).

use attrfs_tests::fetch_fixtures::attrfs_bin;
use attrfs_tests::{require_corpus, require_shared, workspace_root};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const HELLO_DRV: &str = "/nix/store/iylhv1jiapks1396jz2fv8wq85q68y6y-hello-2.10.drv";

fn eval(cache: &Path, expr: &str) -> (String, String) {
    let out = Command::new(attrfs_bin())
        .args(["eval", "--strict", "--json", "-E", expr])
        .env_remove("NIX_PATH")
        .env("ATTRFS_CACHE_DIR", cache)
        .env_remove("ATTRFS_NO_COMPILE_CACHE")
        .output()
        .expect("run attrfs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn nixpkgs_evaluates_the_same_from_a_warm_cache() {
    let (Some(shared), Some(corpus)) = (require_shared(), require_corpus()) else {
        return;
    };
    let reference = shared.join("corpus/nixpkgs-20.09-drvpaths.json");
    let expected: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(&reference).expect("read nixpkgs-20.09-drvpaths.json"),
    )
    .expect("parse nixpkgs-20.09-drvpaths.json");
    let expr = format!(
        "let pkgs = import {} {{ system = \"x86_64-linux\"; config = {{}}; overlays = []; }};
             names = builtins.attrNames (builtins.fromJSON (builtins.readFile {}));
             out = n: let r = builtins.tryEval pkgs.${{n}}.outPath; in if r.success then r.value else null;
         in {{ hello = pkgs.hello.drvPath; outPaths = builtins.listToAttrs (map (n: {{ name = n; value = out n; }}) names); }}",
        corpus.join("nixpkgs-20.09").display(),
        reference.display()
    );
    let cache = workspace_root().join("target/tmp/compile-cache-nixpkgs");
    let _ = std::fs::remove_dir_all(&cache);
    let cold = eval(&cache, &expr);
    let stored = std::fs::read_dir(cache.join("compiled"))
        .expect("the cold run stored entries")
        .count();
    assert!(stored > 1000, "only {stored} entries stored");
    let warm = eval(&cache, &expr);
    assert_eq!(
        std::fs::read_dir(cache.join("compiled")).unwrap().count(),
        stored,
        "the warm run compiled files the cold one had stored"
    );
    assert!(warm == cold, "the warm run printed something else");

    let printed: serde_json::Value = serde_json::from_str(&warm.0).expect("JSON output");
    assert_eq!(printed["hello"], HELLO_DRV);
    let listed = attrfs_tests::listed_failures("tests/nixpkgs-drvpaths-misses.txt");
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(name, _)| !listed.contains_key(*name))
        .filter(|(name, want)| printed["outPaths"][name.as_str()].as_str() != Some(want.as_str()))
        .map(|(name, want)| {
            format!(
                "{name}: {} (Nix: {want})",
                printed["outPaths"][name.as_str()]
            )
        })
        .collect();
    assert!(wrong.is_empty(), "out paths differ:\n{}", wrong.join("\n"));
}
