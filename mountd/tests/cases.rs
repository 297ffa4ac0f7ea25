//! The language, builtins and derivations, checked with nothing but the
//! repository: each `tests/cases/NAME.nix` is evaluated by the `attrfs`
//! binary as a user would (`attrfs eval --strict NAME.nix`) and its stdout
//! must equal `NAME.exp`, which C++ Nix 2.8 printed for the same file
//! (`tests/cases/regenerate.sh` holds the exact command). `fail-*.nix`
//! must fail with exit status 1 and an `error:` message.
//!
//! The expected drvPaths and outPaths in `derivations.exp` and the store
//! paths in `builtins-io.exp` come from C++ Nix too, so this covers
//! derivation hashing, string context and path import end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_attrfs");

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

fn attrfs_eval(file: &str) -> Output {
    Command::new(BIN)
        .args(["eval", "--strict", file])
        .current_dir(cases_dir())
        .env_remove("NIX_PATH")
        .env("HOME", "/homeless-shelter")
        .output()
        .expect("run attrfs eval")
}

fn case_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cases_dir())
        .expect("read tests/cases")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".nix").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn cases_print_what_cpp_nix_printed() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for name in case_names().iter().filter(|n| !n.starts_with("fail-")) {
        let expected = std::fs::read_to_string(cases_dir().join(format!("{name}.exp")))
            .unwrap_or_else(|e| panic!("{name}.exp: {e} (run tests/cases/regenerate.sh)"));
        let out = attrfs_eval(&format!("{name}.nix"));
        let got = String::from_utf8_lossy(&out.stdout);
        ran += 1;
        if !out.status.success() || got != expected {
            failures.push(format!(
                "{name}: exit {}\n  expected {expected:?}\n       got {got:?}\n  stderr {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        ran >= 9,
        "only {ran} cases found in {}",
        cases_dir().display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn failing_cases_fail_with_an_error_message() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for name in case_names().iter().filter(|n| n.starts_with("fail-")) {
        let out = attrfs_eval(&format!("{name}.nix"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        ran += 1;
        if out.status.code() != Some(1) || !stderr.starts_with("error:") || !out.stdout.is_empty() {
            failures.push(format!(
                "{name}: exit {}, stdout {:?}, stderr {stderr:?}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    }
    assert!(ran >= 5, "only {ran} failing cases found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
