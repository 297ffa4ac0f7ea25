//! C++ Nix's language test suite (`../shared/lang-tests`), run as its README
//! describes, through the real command line: every case is one run of the
//! `attrfs` binary (`attrfs eval --strict [--xml | --parse] FLAGS FILE`,
//! FLAGS from the case's `.flags` file, exactly as written there), with
//! pass/fail counts per category.
//!
//! `tests/lang-known-failures.txt` lists tests that still fail, one per line
//! with a reason; a failure outside that list fails this test, so the list
//! can only shrink. Listed tests that pass are reported so they can be
//! removed. A command line that `attrfs` rejects (exit status 2: an unknown
//! flag or setting) or a crash fails the case whatever its category, so an
//! `eval-fail` case cannot pass for the wrong reason.

use attrfs_tests::require_shared;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_attrfs");
const DEADLINE: Duration = Duration::from_secs(20);

/// How one run of the binary ended.
enum Outcome {
    /// Exit status 0, with stdout.
    Ok(Vec<u8>),
    /// Exit status 1 (an evaluation or parse error), with stderr.
    Err(String),
    /// Anything else: a rejected command line (2), a crash, a signal.
    Broken(String),
    /// Still running at the deadline (killed).
    Timeout,
}

/// Runs `attrfs ARGS` in `pwd` with the suite's environment.
fn run_attrfs(pwd: &Path, args: &[String]) -> Outcome {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(pwd)
        .env("NIX_PATH", "lang/dir3:lang/dir4")
        .env("HOME", "/fake-home")
        .env("TEST_VAR", "foo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn attrfs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for attrfs") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    match status.map(|s| s.code()) {
        None => Outcome::Timeout,
        Some(Some(0)) => Outcome::Ok(stdout),
        Some(Some(1)) => Outcome::Err(stderr),
        Some(code) => Outcome::Broken(format!("exit status {code:?}: {stderr}")),
    }
}

struct Case {
    name: String,
    category: &'static str,
    passed: bool,
    detail: String,
}

fn run_case(pwd: &Path, name: &str, category: &'static str) -> Case {
    let lang = pwd.join("lang");
    let mut args: Vec<String> = vec!["eval".into()];
    match category {
        "parse-okay" | "parse-fail" => args.push("--parse".into()),
        _ => args.push("--strict".into()),
    }
    let xml_exp = lang.join(format!("{name}.exp.xml"));
    if category == "eval-okay" && xml_exp.exists() {
        args.push("--xml".into());
    }
    if let Ok(flags) = std::fs::read_to_string(lang.join(format!("{name}.flags"))) {
        args.extend(flags.split_whitespace().map(str::to_string));
    }
    args.push(format!("lang/{name}.nix"));
    let outcome = run_attrfs(pwd, &args);
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
        (_, Outcome::Broken(e)) => (false, format!("BROKEN: {e}")),
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
    let known = attrfs_tests::listed_failures("tests/lang-known-failures.txt");
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
        let case = run_case(&pwd, name, cat);
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
