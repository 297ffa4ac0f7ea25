//! The compiled-file cache over the corpora, through the binary: each
//! evaluation runs once with an empty cache (every file compiled and
//! stored) and once warm (every file loaded from its entry), and both runs
//! must print exactly the same: C++ Nix's language suite (values, errors
//! and their positions), and the 2,170 reference out paths of nixpkgs
//! 20.09 with `hello.drvPath`, which must also match C++ Nix's as the
//! in-process test requires (`nixpkgs_drvpaths.rs`, whose list of known
//! misses this reuses).

use attrfs_tests::fetch_fixtures::attrfs_bin;
use attrfs_tests::{require_corpus, require_shared, workspace_root};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

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

/// `attrfs eval ARGS` in `pwd` as the language suite runs it
/// (`mountd/tests/lang.rs`), with its caches in `cache`.
fn eval_lang(pwd: &Path, cache: &Path, args: &[String]) -> Output {
    Command::new("timeout")
        .arg("60")
        .arg(attrfs_bin())
        .args(args)
        .current_dir(pwd)
        .env("NIX_PATH", "lang/dir3:lang/dir4")
        .env("HOME", "/fake-home")
        .env("TEST_VAR", "foo")
        .env("ATTRFS_CACHE_DIR", cache)
        .env_remove("ATTRFS_NO_COMPILE_CACHE")
        .output()
        .expect("run attrfs")
}

#[test]
fn the_language_suite_evaluates_the_same_from_a_warm_cache() {
    let Some(shared) = require_shared() else {
        return;
    };
    let lang = shared
        .join("lang-tests")
        .canonicalize()
        .expect("lang-tests");
    let pwd = workspace_root().join("target/tmp/compile-cache-lang");
    let cache = pwd.join("cache");
    let _ = std::fs::remove_dir_all(&pwd);
    std::fs::create_dir_all(&pwd).expect("create the suite's directory");
    std::os::unix::fs::symlink(&lang, pwd.join("lang")).expect("symlink lang");
    let mut cases: Vec<Vec<String>> = Vec::new();
    for entry in std::fs::read_dir(&lang).expect("read lang-tests") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let Some(stem) = name.strip_suffix(".nix") else {
            continue;
        };
        let mut args = vec!["eval".to_string()];
        if stem.starts_with("parse-") {
            args.push("--parse".into());
        } else if stem.starts_with("eval-") {
            args.push("--strict".into());
            if lang.join(format!("{stem}.exp.xml")).exists() {
                args.push("--xml".into());
            }
        } else {
            continue;
        }
        if let Ok(flags) = std::fs::read_to_string(lang.join(format!("{stem}.flags"))) {
            args.extend(flags.split_whitespace().map(str::to_string));
        }
        args.push(format!("lang/{stem}.nix"));
        cases.push(args);
    }
    cases.sort();
    assert!(cases.len() > 300, "only {} cases", cases.len());
    let shown = |o: &Output| {
        format!(
            "{:?}\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let cold: Vec<String> = cases
        .iter()
        .map(|a| shown(&eval_lang(&pwd, &cache, a)))
        .collect();
    let stored = std::fs::read_dir(cache.join("compiled"))
        .expect("entries")
        .count();
    assert!(stored > 200, "only {stored} entries stored");
    let mut differ = Vec::new();
    for (args, cold) in cases.iter().zip(&cold) {
        let warm = shown(&eval_lang(&pwd, &cache, args));
        if &warm != cold {
            differ.push(format!("{args:?}\n cold: {cold}\n warm: {warm}"));
        }
    }
    assert!(
        differ.is_empty(),
        "warm runs differ:\n{}",
        differ.join("\n")
    );
    assert_eq!(
        std::fs::read_dir(cache.join("compiled")).unwrap().count(),
        stored,
        "the warm runs compiled files the cold ones had stored"
    );
}
