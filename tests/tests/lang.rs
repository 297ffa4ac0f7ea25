//! C++ Nix's language test suite (`../shared/lang-tests`), run as its README
//! describes, with pass/fail counts per category.
//!
//! `lang-known-failures.txt` lists tests that still fail, one per line with
//! a reason; a failure outside that list fails this test, so the list can
//! only shrink. Listed tests that pass are reported so they can be removed.

use attrfs_eval::cli::EvalCommand;
use attrfs_eval::{AutoArg, EvalOptions, SearchPathEntry};
use attrfs_tests::{require_shared, run_isolated, workspace_root, Outcome};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

fn known_failures() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(workspace_root().join("tests/lang-known-failures.txt"))
        .unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once('#').unwrap_or((l, ""));
            (name.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

/// Applies a `.flags` file to the command; returns false for flags we do not support.
fn apply_flags(cmd: &mut EvalCommand, flags: &str) -> bool {
    let words: Vec<String> = shell_words(flags);
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "--eval" | "--strict" | "--no-show-trace" | "--impure" => {}
            "--arg" => {
                let (n, v) = (it.next().unwrap_or_default(), it.next().unwrap_or_default());
                cmd.args.push((n, AutoArg::Expr(v)));
            }
            "--argstr" => {
                let (n, v) = (it.next().unwrap_or_default(), it.next().unwrap_or_default());
                cmd.args.push((n, AutoArg::Str(v)));
            }
            "-A" => cmd.attr.extend(it.next()),
            "-I" => cmd.include.extend(it.next()),
            "--extra-experimental-features" => cmd.experimental_features.extend(it.next()),
            "--lint-absolute-path-literals"
            | "--lint-short-path-literals"
            | "--lint-url-literals" => {
                let Some(Ok(level)) = it.next().map(|l| l.parse()) else {
                    return false;
                };
                match w.as_str() {
                    "--lint-absolute-path-literals" => cmd.lints.absolute_path_literals = level,
                    "--lint-short-path-literals" => cmd.lints.short_path_literals = level,
                    _ => cmd.lints.url_literals = level,
                }
            }
            _ => return false,
        }
    }
    true
}

fn shell_words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

struct Case {
    name: String,
    category: &'static str,
    passed: bool,
    detail: String,
}

fn run_case(lang: &Path, pwd: &Path, name: &str, category: &'static str) -> Case {
    let file = lang.join(format!("{name}.nix"));
    let mut cmd = EvalCommand {
        file: Some(file),
        ..Default::default()
    };
    let options = EvalOptions {
        cwd: pwd.to_path_buf(),
        home: Some(PathBuf::from("/fake-home")),
        search_path: vec![
            SearchPathEntry::parse("lang/dir3"),
            SearchPathEntry::parse("lang/dir4"),
        ],
        ..EvalOptions::default()
    };
    let flags = std::fs::read_to_string(lang.join(format!("{name}.flags"))).ok();
    let mut supported = true;
    if let Some(f) = &flags {
        supported = apply_flags(&mut cmd, f);
    }
    match category {
        "parse-okay" | "parse-fail" => cmd.parse = true,
        _ => cmd.strict = true,
    }
    let xml_exp = lang.join(format!("{name}.exp.xml"));
    if category == "eval-okay" && xml_exp.exists() {
        cmd.xml = true;
    }
    let outcome = if supported {
        run_isolated(cmd, options, DEADLINE)
    } else {
        Outcome::Err(format!(
            "unsupported flags: {}",
            flags.unwrap_or_default().trim()
        ))
    };
    let pwd_s = pwd.to_string_lossy().to_string();
    let (passed, detail) = match (category, outcome) {
        ("parse-okay", Outcome::Ok(_)) => (true, String::new()),
        ("parse-fail", Outcome::Err(_)) | ("eval-fail", Outcome::Err(_)) => (true, String::new()),
        ("eval-okay", Outcome::Ok(out)) => {
            let expected = std::fs::read(if xml_exp.exists() {
                xml_exp
            } else {
                lang.join(format!("{name}.exp"))
            })
            .unwrap_or_default();
            let got = String::from_utf8_lossy(&out).replace(&pwd_s, "/pwd");
            let expected = String::from_utf8_lossy(&expected).to_string();
            if got == expected {
                (true, String::new())
            } else {
                (
                    false,
                    format!("expected {:?}\n     got {:?}", expected, got),
                )
            }
        }
        (_, Outcome::Ok(out)) => (
            false,
            format!(
                "unexpectedly succeeded: {:?}",
                String::from_utf8_lossy(&out)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        ),
        (_, Outcome::Err(e)) => (false, e.lines().take(8).collect::<Vec<_>>().join("\n     ")),
        (_, Outcome::Timeout) => (false, "timed out".into()),
        (_, Outcome::Panic(p)) => (false, format!("PANIC: {p}")),
    };
    Case {
        name: name.to_string(),
        category,
        passed,
        detail,
    }
}

#[test]
fn lang_conformance() {
    let Some(shared) = require_shared() else {
        return;
    };
    let lang = shared.join("lang-tests");
    let lang = lang.canonicalize().expect("../shared/lang-tests exists");
    // The suite expects to run from the parent of a directory named `lang`.
    let pwd = std::env::temp_dir().join(format!("attrfs-lang-{}", std::process::id()));
    std::fs::create_dir_all(&pwd).expect("temp dir");
    let link = pwd.join("lang");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&lang, &link).expect("symlink lang");
    // SAFETY: set before any evaluation thread starts; nothing else reads
    // the environment concurrently in this test binary.
    unsafe {
        std::env::set_var("TEST_VAR", "foo");
        std::env::set_var("HOME", "/fake-home");
    }

    let mut names: Vec<(String, &'static str)> = Vec::new();
    for entry in std::fs::read_dir(&lang).expect("read lang-tests") {
        let n = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        let Some(stem) = n.strip_suffix(".nix") else {
            continue;
        };
        for cat in ["parse-okay", "parse-fail", "eval-okay", "eval-fail"] {
            if stem.starts_with(&format!("{cat}-")) {
                if lang.join(format!("{stem}.exp-disabled")).exists() {
                    continue;
                }
                names.push((stem.to_string(), cat));
            }
        }
    }
    names.sort();
    let only = std::env::var("LANG_TEST").ok();
    let known = known_failures();
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, cat) in &names {
        if let Some(o) = &only {
            if !name.contains(o.as_str()) {
                continue;
            }
        }
        let case = run_case(&link, &pwd, name, cat);
        seen.insert(case.name.clone());
        let c = counts.entry(case.category).or_default();
        if case.passed {
            c.0 += 1;
            if known.contains_key(&case.name) {
                fixed.push(case.name.clone());
            }
        } else {
            c.1 += 1;
            if !known.contains_key(&case.name) {
                unexpected.push(format!("{}: {}", case.name, case.detail));
            }
            if only.is_some() {
                eprintln!("FAIL {}: {}", case.name, case.detail);
            }
        }
    }
    let _ = std::fs::remove_file(&link);
    let _ = std::fs::remove_dir(&pwd);
    // Written to the real stderr, past libtest's capture, so that CI logs
    // always show the counts.
    use std::io::Write;
    let mut summary = String::new();
    let (mut tp, mut tf) = (0, 0);
    for (cat, (p, f)) in &counts {
        summary.push_str(&format!("lang-tests {cat}: {p} passed, {f} failed\n"));
        tp += p;
        tf += f;
    }
    summary.push_str(&format!(
        "lang-tests total: {tp} passed, {tf} failed (known failures listed: {})\n",
        known.len()
    ));
    if !fixed.is_empty() {
        summary.push_str(&format!(
            "now passing, remove from tests/lang-known-failures.txt:\n  {}\n",
            fixed.join("\n  ")
        ));
    }
    let _ = std::io::stderr().lock().write_all(summary.as_bytes());
    if let Ok(path) = std::env::var("LANG_FAILURES_OUT") {
        let all: Vec<String> = unexpected.clone();
        let _ = std::fs::write(path, all.join("\n"));
    }
    assert!(
        unexpected.is_empty(),
        "{} lang tests failed that are not in tests/lang-known-failures.txt:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
