//! `attrfs eval` with what people type for `nix-instantiate --eval`: the
//! flags and `--option` settings, checked through the real binary.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_attrfs");

fn attrfs(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("NIX_PATH")
        .output()
        .expect("run attrfs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An error 15 calls deep: its trace has more frames than the short form.
const DEEP: &str = "let f = n: if n == 0 then throw \"kaboom\" else 1 + f (n - 1); in f 15";

#[test]
fn nix_instantiate_spellings_evaluate() {
    for args in [
        &["eval", "--show-trace", "-E", "1 + 1"][..],
        &["eval", "--expr", "1 + 1"],
        &["eval", "--eval", "--strict", "--strict", "-E", "1 + 1"],
        &["eval", "--option", "show-trace", "true", "-E", "1 + 1"],
        &["eval", "--no-show-trace", "--impure", "-E", "1 + 1"],
        &["eval", "--pure-eval", "-E", "1 + 1"],
    ] {
        let out = attrfs(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "2\n", "{args:?}");
    }
}

#[test]
fn show_trace_prints_the_whole_trace() {
    let short = attrfs(&["eval", "-E", DEEP]);
    let full = attrfs(&["eval", "--show-trace", "-E", DEEP]);
    let by_option = attrfs(&["eval", "--option", "show-trace", "true", "-E", DEEP]);
    for out in [&short, &full, &by_option] {
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(out).contains("error: kaboom"), "{}", stderr(out));
    }
    let frames = |o: &Output| stderr(o).matches("… while calling 'f'").count();
    assert_eq!(frames(&short), 10, "{}", stderr(&short));
    assert!(stderr(&short).contains("(stack trace truncated; use '--show-trace'"));
    assert!(frames(&full) > 10, "{}", stderr(&full));
    assert!(!stderr(&full).contains("truncated"));
    assert_eq!(stderr(&by_option), stderr(&full));
}

#[test]
fn lint_flags_and_options_agree() {
    let url = "http://example.org";
    for (args, says) in [
        (
            &["eval", "--lint-url-literals", "fatal", "-E", url][..],
            "(lint-url-literals)",
        ),
        (
            &["eval", "--option", "lint-url-literals", "fatal", "-E", url],
            "(lint-url-literals)",
        ),
        (
            &["eval", "--lint-short-path-literals", "fatal", "-E", "a/b"],
            "(lint-short-path-literals)",
        ),
        (
            &[
                "eval",
                "--lint-absolute-path-literals",
                "fatal",
                "-E",
                "/etc",
            ],
            "(lint-absolute-path-literals)",
        ),
    ] {
        let out = attrfs(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    for args in [
        &["eval", "-E", "a/b"][..],
        &["eval", "--lint-url-literals", "ignore", "-E", url],
    ] {
        let out = attrfs(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    }
    let warn = attrfs(&["eval", "--lint-url-literals", "warn", "-E", url]);
    assert!(warn.status.success(), "{}", stderr(&warn));
    assert_eq!(stdout(&warn), "\"http://example.org\"\n");
    assert!(stderr(&warn).contains("warning"), "{}", stderr(&warn));
}

#[test]
fn experimental_features_turn_on_toml_timestamps() {
    let expr = "builtins.fromTOML \"t = 1979-05-27T07:32:00Z\"";
    let off = attrfs(&["eval", "--strict", "-E", expr]);
    assert_eq!(off.status.code(), Some(1), "{}", stdout(&off));
    let on = attrfs(&[
        "eval",
        "--strict",
        "--extra-experimental-features",
        "parse-toml-timestamps",
        "-E",
        expr,
    ]);
    assert!(on.status.success(), "{}", stderr(&on));
    assert_eq!(
        stdout(&on),
        "{ t = { _type = \"timestamp\"; value = \"1979-05-27T07:32:00Z\"; }; }\n"
    );
}

#[test]
fn max_call_depth_bounds_recursion() {
    let expr = "let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 1000";
    let deep = attrfs(&["eval", "-E", expr]);
    assert_eq!(stdout(&deep), "1000\n", "{}", stderr(&deep));
    let bounded = attrfs(&["eval", "--max-call-depth", "100", "-E", expr]);
    assert_eq!(bounded.status.code(), Some(1));
    assert!(stderr(&bounded).contains("max-call-depth exceeded"));
}

#[test]
fn unknown_or_invalid_settings_are_usage_errors() {
    for (args, says) in [
        (
            &["eval", "--option", "restrict-eval", "true", "-E", "1"][..],
            "unknown setting 'restrict-eval'",
        ),
        (
            &["eval", "--option", "show-trace", "maybe", "-E", "1"],
            "invalid value 'maybe' for setting 'show-trace'",
        ),
        (
            &["eval", "--lint-url-literals", "loud", "-E", "1"],
            "expected ignore, warn or fatal",
        ),
        (
            &[
                "eval",
                "--extra-experimental-features",
                "teleport",
                "-E",
                "1",
            ],
            "unknown experimental feature 'teleport'",
        ),
    ] {
        let out = attrfs(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn pure_eval_refuses_the_impure_and_keeps_the_rest() {
    let file = std::env::temp_dir().join(format!("attrfs-pure-{}.nix", std::process::id()));
    std::fs::write(&file, "1 + 1").unwrap();
    let file = file.to_str().unwrap();
    let impure = attrfs(&["eval", file]);
    assert_eq!(stdout(&impure), "2\n", "{}", stderr(&impure));
    for (args, says) in [
        (
            &["eval", "--pure-eval", file][..],
            "is forbidden in pure eval mode (use '--impure' to override)",
        ),
        (
            &[
                "eval",
                "--option",
                "pure-eval",
                "true",
                "-E",
                "builtins.readFile /etc/hostname",
            ],
            "access to absolute path '/etc/hostname' is forbidden in pure eval mode",
        ),
        (
            &["eval", "--pure-eval", "-E", "builtins.currentTime"],
            "attribute 'currentTime' missing",
        ),
        (
            &["eval", "--pure-eval", "-E", "builtins.currentSystem"],
            "attribute 'currentSystem' missing",
        ),
        (
            &[
                "eval",
                "--pure-eval",
                "-I",
                "nixpkgs=/tmp",
                "-E",
                "import <nixpkgs>",
            ],
            // As C++ Nix 2.8: the entry outside the store is not there.
            "cannot look up '<nixpkgs>' in pure evaluation mode",
        ),
        (
            &["eval", "--pure-eval", "-E", "<nixpkgs>"],
            "cannot look up '<nixpkgs>' in pure evaluation mode",
        ),
    ] {
        let out = attrfs(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    for (expr, expected) in [
        ("builtins.getEnv \"PATH\"", "\"\"\n"),
        ("builtins.pathExists /etc", "false\n"),
        ("builtins.length builtins.nixPath", "0\n"),
        ("(import <nix/fetchurl.nix>) ? outPath || true", "true\n"),
    ] {
        let out = Command::new(BIN)
            .args(["eval", "--pure-eval", "-E", expr])
            .env("NIX_PATH", "nixpkgs=/tmp")
            .output()
            .unwrap();
        assert_eq!(stdout(&out), expected, "{expr}: {}", stderr(&out));
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn a_file_named_in_angle_brackets_is_looked_up_in_the_search_path() {
    let cases = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases");
    let include = format!("cases={cases}");
    let out = attrfs(&[
        "eval",
        "-I",
        &include,
        "<cases/lang-bindings.nix>",
        "-A",
        "letIn",
    ]);
    assert_eq!(stdout(&out), "5050\n", "{}", stderr(&out));
    let missing = attrfs(&["eval", "<attrfs-no-such-entry>"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("'attrfs-no-such-entry' was not found in the Nix search path"),
        "{}",
        stderr(&missing)
    );
}

/// `attrfs eval ARGS` and `attrfs mount ARGS MOUNTPOINT` refuse the same
/// arguments with the same message and exit status 2, before anything is
/// evaluated or mounted (so this needs no FUSE).
#[test]
fn eval_and_mount_refuse_the_same_arguments() {
    let mountpoint = std::env::temp_dir().join(format!("attrfs-refuse-{}", std::process::id()));
    std::fs::create_dir_all(&mountpoint).expect("create the mountpoint");
    let mnt = mountpoint.to_str().expect("a UTF-8 temporary directory");
    for (args, message) in [
        (&["f.nix", "-E", "1"][..], "give either a FILE or -E EXPR"),
        (&["-E", "1", "-E", "2"], "-E given more than once"),
        (&["--flake", ".", "-E", "1"], "--flake takes neither"),
        (&["--flake", ".", "f.nix"], "--flake takes neither"),
    ] {
        let eval = attrfs(&[&["eval"][..], args].concat());
        let mount = attrfs(&[&["mount"][..], args, &[mnt]].concat());
        assert_eq!(
            eval.status.code(),
            Some(2),
            "eval {args:?}: {}",
            stderr(&eval)
        );
        assert_eq!(
            mount.status.code(),
            Some(2),
            "mount {args:?}: {}",
            stderr(&mount)
        );
        let eval_err = stderr(&eval);
        let mount_err = stderr(&mount);
        assert!(eval_err.contains(message), "eval {args:?}: {eval_err}");
        assert_eq!(
            eval_err.trim().strip_prefix("error: "),
            mount_err.trim().strip_prefix("attrfs mount: "),
            "{args:?}"
        );
    }
    let _ = std::fs::remove_dir(&mountpoint);
}

/// `attrfs eval --watch` prints the value again when an imported file is
/// saved (also after a save that does not evaluate, once fixed), and only
/// then.
#[test]
fn watch_prints_again_when_an_input_changes() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let dir = std::env::temp_dir().join(format!("attrfs-eval-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let main = dir.join("main.nix");
    let part = dir.join("part.nix");
    std::fs::write(&main, "{ a = import ./part.nix; }").unwrap();
    std::fs::write(&part, "1").unwrap();
    let save = |text: &str| {
        let tmp = dir.join(".part.nix.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &part).unwrap();
    };

    let mut child = Command::new(BIN)
        .args(["eval", "--strict", "--watch"])
        .arg(&main)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run attrfs eval --watch");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || lines.recv_timeout(Duration::from_secs(5));
    assert_eq!(next().as_deref(), Ok("{ a = 1; }"));
    save("2");
    assert_eq!(next().as_deref(), Ok("{ a = 2; }"));
    save("2 +");
    std::thread::sleep(Duration::from_millis(300));
    save("3");
    assert_eq!(next().as_deref(), Ok("{ a = 3; }"));
    // The same bytes again print nothing.
    save("3");
    assert!(lines.recv_timeout(Duration::from_millis(600)).is_err());
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
