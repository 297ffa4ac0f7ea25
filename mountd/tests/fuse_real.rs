//! Real FUSE mounts of real evaluations: nixpkgs 20.09, the NixOS
//! `small-server` configuration and deliberately bad expressions, mounted
//! with the `attrfs` binary and exercised with `ls`, `cat`, `stat`, `find`,
//! `grep -r`, `getfattr` and `attr` as a user would.
//!
//! The mount harness is `support` (shared with the other FUSE tests); the
//! binary is the one cargo built for this test. Needs /dev/fuse and root
//! (or fusermount3); without /dev/fuse the tests are skipped with a
//! message, and without ../shared the corpus tests are skipped (or fail
//! under CI=true, see `attrfs_tests::require_shared`).

mod support;

use attrfs_store::derivation::Derivation;
use attrfs_store::path::make_text_path_for;
use attrfs_tests::{corpus_dir, shared_dir};
use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};
use support::{assert_eio, fuse_available, is_mounted, stderr, stdout, timed, Mount, TempDir, BIN};

/// The attribute name a file name encodes: the inverse of the encoding
/// documented in vfs/src/names.rs (`%` alone is the empty name, `%XX` is
/// the byte XX), written out here so the test does not trust the code
/// under test.
fn decode_file_name(file_name: &str) -> String {
    if file_name == "%" {
        return String::new();
    }
    let bytes = file_name.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn nixpkgs_dir() -> PathBuf {
    corpus_dir().join("nixpkgs-20.09")
}

fn mount_nixpkgs() -> Mount {
    let nixpkgs = nixpkgs_dir();
    Mount::start_within(
        &[
            nixpkgs.as_os_str(),
            OsStr::new("--arg"),
            OsStr::new("config"),
            OsStr::new("{}"),
            OsStr::new("--arg"),
            OsStr::new("overlays"),
            OsStr::new("[]"),
            OsStr::new("--argstr"),
            OsStr::new("system"),
            OsStr::new("x86_64-linux"),
        ],
        Duration::from_secs(120),
    )
}

fn small_server_nix() -> PathBuf {
    shared_dir()
        .join("corpus/nixos/small-server.nix")
        .canonicalize()
        .expect("small-server.nix exists")
}

fn small_server_expected() -> serde_json::Value {
    serde_json::from_str(
        &fs::read_to_string(shared_dir().join("corpus/nixos/small-server.expected.json"))
            .expect("read small-server.expected.json"),
    )
    .expect("small-server.expected.json is JSON")
}

fn mount_small_server() -> Mount {
    let nixos = nixpkgs_dir().join("nixos");
    let config = small_server_nix();
    Mount::start_within(
        &[
            nixos.as_os_str(),
            OsStr::new("--arg"),
            OsStr::new("configuration"),
            config.as_os_str(),
            OsStr::new("--argstr"),
            OsStr::new("system"),
            OsStr::new("x86_64-linux"),
            OsStr::new("-A"),
            OsStr::new("config"),
        ],
        Duration::from_secs(300),
    )
}

// ---------------------------------------------------------------------------
// nixpkgs 20.09

#[test]
fn nixpkgs_root_hello_and_its_exact_drv() {
    if !fuse_available() || attrfs_tests::require_shared().is_none() {
        return;
    }
    let mount = mount_nixpkgs();

    // A colour `ls` (what most distributions alias `ls` to) stats every
    // entry: it forces each of the 12,143 values to weak head normal form,
    // and the ones that throw (aliases of removed packages) are still
    // well-formed entries, so it has nothing to say on stderr.
    let ls = mount.sh_within(600, "ls --color=always");
    assert!(ls.status.success(), "{}", stderr(&ls));
    assert_eq!(stderr(&ls), "");
    assert_eq!(stdout(&ls).lines().count(), 12_143, "{}", mount.log_text());
    let plain = mount.sh("ls");
    assert!(stdout(&plain).lines().any(|l| l == "hello"));

    // nix-repl is such an alias: stat succeeds, the message is an
    // extended attribute, reading fails with EIO.
    let stat = mount.sh("stat -c '%A %s' nix-repl");
    assert_eq!(stdout(&stat), "---------- 0\n", "{}", stderr(&stat));
    let error = mount.sh("getfattr --only-values -n user.nix.error nix-repl");
    assert!(
        stdout(&error).contains("nix-repl has been removed"),
        "{}{}",
        stdout(&error),
        stderr(&error)
    );
    assert_eio("cat nix-repl", &mount.sh("cat nix-repl"));

    // The derivation's store paths are there when asked for.
    let xattrs = mount.sh("getfattr -d -m user.nix hello");
    assert!(
        stdout(&xattrs).contains(
            "user.nix.drvPath=\"/nix/store/iylhv1jiapks1396jz2fv8wq85q68y6y-hello-2.10.drv\""
        ),
        "{}{}",
        stdout(&xattrs),
        stderr(&xattrs)
    );
    assert!(
        stdout(&xattrs).contains("user.nix.outPath=\"/nix/store/"),
        "{}",
        stdout(&xattrs)
    );

    let version = mount.sh("cat hello/version");
    assert_eq!(stdout(&version), "2.10", "{}", stderr(&version));

    let description = mount.sh("cat hello/meta/description");
    assert!(description.status.success(), "{}", stderr(&description));
    assert!(
        !stdout(&description).trim().is_empty(),
        "empty hello/meta/description"
    );

    // The .drv text hashes, with the references it names itself, to the
    // drvPath C++ Nix computes: it is byte-for-byte what Nix would write.
    let drv = mount.sh("cat hello/.drv");
    assert!(drv.status.success(), "{}", stderr(&drv));
    let text = drv.stdout;
    let aterm = std::str::from_utf8(&text).expect("the .drv is UTF-8");
    let parsed = Derivation::from_aterm(aterm).expect("the .drv parses as ATerm");
    assert_eq!(
        parsed.to_aterm(),
        aterm,
        "the .drv is not in canonical form"
    );
    assert_eq!(
        parsed.env.get("name").map(String::as_str),
        Some("hello-2.10")
    );
    let references: Vec<&str> = parsed
        .input_drvs
        .keys()
        .map(String::as_str)
        .chain(parsed.input_srcs.iter().map(String::as_str))
        .collect();
    assert!(!parsed.input_drvs.is_empty());
    let path = make_text_path_for("hello-2.10.drv", &text, &references).unwrap();
    assert_eq!(
        path.to_absolute_path(),
        "/nix/store/iylhv1jiapks1396jz2fv8wq85q68y6y-hello-2.10.drv"
    );

    // .context lists exactly those inputs.
    let context = mount.sh("cat hello/.context");
    let mut expected_context: Vec<String> = parsed
        .input_drvs
        .iter()
        .flat_map(|(drv, outputs)| outputs.iter().map(move |o| format!("{drv}!{o}")))
        .chain(parsed.input_srcs.iter().cloned())
        .collect();
    expected_context.sort();
    let mut got_context: Vec<String> = stdout(&context).lines().map(str::to_owned).collect();
    got_context.sort();
    assert_eq!(got_context, expected_context);

    let position = mount.sh("getfattr -n user.nix.position hello");
    assert!(position.status.success(), "{}", stderr(&position));
    let out = stdout(&position);
    let marker = "pkgs/top-level/all-packages.nix:";
    let at = out
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {out}"));
    let line: u32 = out[at + marker.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no line number in {out}"));
    assert!(line > 0, "{out}");
}

// ---------------------------------------------------------------------------
// The NixOS small-server configuration

#[test]
fn nixos_config_host_name_etc_and_grep() {
    if !fuse_available() || attrfs_tests::require_shared().is_none() {
        return;
    }
    let expected = small_server_expected();
    let mount = mount_small_server();

    let host = mount.sh("cat networking/hostName");
    assert_eq!(
        stdout(&host),
        expected["hostName"].as_str().unwrap(),
        "{}",
        stderr(&host)
    );

    let ls = mount.sh("ls environment/etc");
    assert!(ls.status.success(), "{}", stderr(&ls));
    let mut names: Vec<String> = stdout(&ls).lines().map(decode_file_name).collect();
    names.sort();
    let mut expected_names: Vec<String> = expected["etcNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    expected_names.sort();
    assert_eq!(names, expected_names);
    assert!(stdout(&ls).lines().any(|l| l == "ssh%2Fsshd_config"));

    // Every /etc text C++ Nix computed reads back exactly.
    let texts = expected["etcText"].as_object().unwrap();
    assert!(texts.len() > 20);
    for (name, text) in texts {
        let file = mount.path(&format!(
            "environment/etc/{}/text",
            name.replace('/', "%2F")
        ));
        let got = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        assert_eq!(got, text.as_str().unwrap(), "{file:?}");
    }

    // grep -r finds a line of ssh_config's text where a user expects it: a
    // line that occurs in no other /etc text of the expected output.
    let ssh_config = texts["ssh/ssh_config"].as_str().unwrap();
    let line = ssh_config
        .lines()
        .find(|l| {
            !l.is_empty()
                && !l.starts_with('#')
                && texts
                    .iter()
                    .filter(|(n, _)| *n != "ssh/ssh_config")
                    .all(|(_, t)| !t.as_str().unwrap().contains(l))
        })
        .expect("a distinctive line in ssh_config");
    let grep = mount.sh_within(300, &format!("grep -rF -- '{line}' environment/etc"));
    assert_ne!(grep.status.code(), Some(124), "grep -r timed out");
    let hit = format!("environment/etc/ssh%2Fssh_config/text:{line}");
    assert!(
        stdout(&grep).lines().any(|l| l == hit),
        "{hit} not in:\n{}\n{}",
        stdout(&grep),
        stderr(&grep)
    );

    // sshd_config has no `text` (it is `source = <a derivation>`, so the
    // expected output has no text for it); its content, generated from the
    // configuration's `permitRootLogin = "no"`, is in that derivation's
    // buildCommand, one level down.
    let text = mount.sh("cat environment/etc/ssh%2Fsshd_config/text");
    assert_eq!(stdout(&text), "null");
    let grep = mount.sh_within(300, "grep -rlx 'PermitRootLogin no' environment/etc");
    assert!(
        stdout(&grep)
            .lines()
            .any(|l| l == "environment/etc/ssh%2Fsshd_config/source/buildCommand"),
        "{}\n{}",
        stdout(&grep),
        stderr(&grep)
    );
}

#[test]
fn nixos_config_find_terminates() {
    if !fuse_available() || attrfs_tests::require_shared().is_none() {
        return;
    }
    let mount = mount_small_server();
    let (find, took) = timed(|| {
        mount.sh_within(
            600,
            "find . > ../find.out 2> ../find.err; echo $?; wc -l < ../find.out",
        )
    });
    let out = stdout(&find);
    let mut lines = out.lines();
    let status = lines.next().unwrap_or("");
    assert_ne!(
        find.status.code(),
        Some(124),
        "find did not finish within 10 minutes"
    );
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("find: {out} {}", stderr(&find)));
    eprintln!("find over the NixOS config: {count} entries in {took:?} (exit {status})");
    assert!(count > 1_000, "{count}");
    let listing = fs::read_to_string(mount.dir.0.join("find.out")).unwrap();
    for path in [
        "./networking/hostName",
        "./environment/etc/ssh%2Fsshd_config/text",
        "./users/users/alice/isNormalUser",
    ] {
        assert!(listing.lines().any(|l| l == path), "{path} not listed");
    }
}

// ---------------------------------------------------------------------------
// Bad input

#[test]
fn a_throwing_value_gives_eio_and_its_message() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::expr(
        r#"{ ok = "fine"; boom = throw "kaboom: this value throws"; nested.boom = abort "aborted here"; }"#,
        &[],
    );
    let ls = mount.sh("ls");
    assert_eq!(stdout(&ls), "boom\nnested\nok\n");
    assert_eio("cat boom", &mount.sh("cat boom"));
    // A well-formed entry: stat succeeds and shows it cannot be read.
    let stat = mount.sh("stat -c '%A %s %F' boom");
    assert_eq!(stdout(&stat), "---------- 0 regular empty file\n");
    let error = mount.sh("getfattr --only-values -n user.nix.error boom");
    assert!(error.status.success(), "{}", stderr(&error));
    assert!(
        stdout(&error).contains("kaboom: this value throws"),
        "{}",
        stdout(&error)
    );
    assert_eio("cat nested/boom", &mount.sh("cat nested/boom"));
    let error = mount.sh("attr -q -g nix.error nested/boom");
    assert!(
        stdout(&error).contains("aborted here"),
        "{}",
        stdout(&error)
    );
    assert_eq!(stdout(&mount.sh("cat ok")), "fine");
}

#[test]
fn infinite_recursion_gives_eio_and_says_so() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::expr(r#"{ ok = "fine"; x = let x = x; in x; }"#, &[]);
    assert_eio("cat x", &mount.sh("cat x"));
    let error = mount.sh("attr -q -g nix.error x");
    assert!(error.status.success(), "{}", stderr(&error));
    assert!(
        stdout(&error).contains("infinite recursion"),
        "{}",
        stdout(&error)
    );
    assert_eq!(stdout(&mount.sh("cat ok")), "fine");
}

/// Reads the endless attribute `endless` of a mount with `--eval-timeout 3`:
/// EIO within the timeout plus a margin, then an uncached sibling is
/// served; returns how long that took.
fn endless_then_sibling(mount: &Mount) -> Duration {
    let (out, took) = timed(|| mount.sh("cat endless"));
    assert_eio("cat endless", &out);
    assert!(took < Duration::from_secs(3 + 3), "{took:?}");
    let (out, took) = timed(|| mount.sh("cat other"));
    assert_eq!(stdout(&out), "served", "{}", stderr(&out));
    took
}

/// Endless recursion ends in the evaluator's "stack overflow" error (in
/// about 0.3 s; on a very loaded machine the deadline may come first).
#[test]
fn endless_recursion_fails_and_the_mount_keeps_serving() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::expr(
        r#"{ ok = "fine"; other = "served"; endless = let f = n: f (n + 1); in f 0; }"#,
        &["--eval-timeout", "3"],
    );
    assert_eq!(stdout(&mount.sh("cat ok")), "fine");
    let next = endless_then_sibling(&mount);
    assert!(next < Duration::from_secs(2), "{next:?}");
    // Again: the failure is reproducible, the mount still serves.
    let stat = mount.sh("stat -c %A endless");
    if stat.status.success() {
        // A value that fails: a well-formed entry carrying its error.
        assert_eq!(stdout(&stat), "----------\n");
        let error = mount.sh("getfattr --only-values -n user.nix.error endless");
        assert!(
            stdout(&error).contains("stack overflow"),
            "{}",
            stdout(&error)
        );
    } else {
        // The deadline came first: not known to fail, so EIO.
        assert_eio("stat endless", &stat);
    }
    assert_eio("cat endless", &mount.sh("cat endless"));
    assert_eq!(stdout(&mount.sh("cat ok")), "fine");
}

const BUSY_LOOP: &str = "builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) 100000000)";

#[test]
fn a_busy_loop_times_out_and_the_mount_keeps_serving() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::expr(
        &format!(r#"{{ ok = "fine"; other = "served"; endless = {BUSY_LOOP}; }}"#),
        &["--eval-timeout", "3"],
    );
    assert_eq!(stdout(&mount.sh("cat ok")), "fine");
    let next = endless_then_sibling(&mount);
    // Served at once: the runaway was interrupted (it would run about
    // 15 s and take 7.5 GB otherwise).
    assert!(next < Duration::from_secs(2), "{next:?}");
    assert_eq!(stdout(&mount.sh("cat ok")), "fine");
}

/// A runaway builtin alone (no bytecode loop around it that polls the
/// interrupt) is actually interrupted: the next request is served at once
/// and the daemon stops burning CPU (an abandoned evaluation thread would
/// go on for about 15 s). See docs/notes-fuse.md.
#[test]
fn a_runaway_builtin_is_interrupted() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::expr(
        r#"{ other = "served"; endless = builtins.length (builtins.genList (x: x) 100000000); }"#,
        &["--eval-timeout", "3"],
    );
    let next = endless_then_sibling(&mount);
    assert!(next < Duration::from_secs(2), "{next:?}");
    let before = mount.cpu_time();
    sleep(Duration::from_secs(3));
    let burnt = mount.cpu_time() - before;
    assert!(
        burnt < Duration::from_secs(1),
        "an idle mount used {burnt:?} of CPU in 3 s:\n{}",
        mount.log_text()
    );
}

/// Each runaway evaluation past its deadline is interrupted and its memory
/// goes back to the system: the worker frees the partial structures and
/// hands them back (or, when freeing them takes longer than the interrupt's
/// bound, is killed). It used to stay in the daemon: 3.7 -> 6.9 GB after
/// five of these, docs/notes-fuse.md.
#[test]
fn runaway_evaluations_give_their_memory_back() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::expr(
        r#"{ other = "served";
             v = builtins.length (builtins.genList (x: x) 100000000);
             w = builtins.length (builtins.genList (x: x + 1) 100000000); }"#,
        &["--eval-timeout", "3"],
    );
    for name in ["v", "v", "w", "w", "v"] {
        assert_eio(&format!("cat {name}"), &mount.sh(&format!("cat {name}")));
    }
    // The last one is answered at its deadline; the worker then stops (or
    // is killed) within the interrupt's bound of a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let rss = loop {
        let rss = mount.total_rss();
        if rss < 300 << 20 || Instant::now() > deadline {
            break rss;
        }
        sleep(Duration::from_millis(100));
    };
    assert!(
        rss < 300 << 20,
        "daemon and workers hold {} MiB after five runaways:\n{}",
        rss >> 20,
        mount.log_text()
    );
    let (out, took) = timed(|| mount.sh("cat other"));
    assert_eq!(stdout(&out), "served", "{}", stderr(&out));
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// A worker that dies (killed, crashed, aborted) costs only the request it
/// was serving: that read fails with EIO and the value says why; the mount
/// keeps serving from a fresh worker.
#[test]
fn a_worker_that_dies_costs_only_its_request() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::expr(
        r#"{ a = "first"; b = "second";
             KILL = builtins.length (builtins.genList (x: x) 100000000);
             ABRT = builtins.length (builtins.genList (x: x + 2) 100000000); }"#,
        &["--eval-timeout", "60"],
    );
    // (SIGSEGV sent with kill(1) would not do: Rust's stack-guard handler
    // lets a SIGSEGV that is not a fault go once.)
    for (signal, next) in [("KILL", "a"), ("ABRT", "b")] {
        let reader = Command::new("cat")
            .arg(mount.path(signal))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cat");
        // Wait until the worker is busy with it.
        sleep(Duration::from_millis(800));
        let workers = mount.worker_pids();
        assert_eq!(workers.len(), 1, "{workers:?}\n{}", mount.log_text());
        let killed = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(workers[0].to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let (out, took) = timed(|| reader.wait_with_output().unwrap());
        assert!(
            !out.status.success(),
            "cat {signal} succeeded after SIG{signal}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Input/output error"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
        let (value, took) = timed(|| mount.sh(&format!("cat {next}")));
        assert!(value.status.success(), "{}", stderr(&value));
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    // The failure is recorded as the value's error, not retried.
    for (signal, number) in [("KILL", 9), ("ABRT", 6)] {
        let error = mount.sh(&format!(
            "getfattr --only-values -n user.nix.error {signal}"
        ));
        assert!(
            stdout(&error).contains(&format!("evaluator process was killed by signal {number}")),
            "{}{}",
            stdout(&error),
            stderr(&error)
        );
    }
    assert!(is_mounted(&mount.mountpoint));
}

/// With `--workers 2`, a read does not wait behind a long evaluation: the
/// other worker serves it.
#[test]
fn a_second_worker_serves_while_the_first_is_busy() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::expr(
        r#"{ other = "served"; slow = builtins.length (builtins.genList (x: x) 100000000); }"#,
        &["--workers", "2", "--eval-timeout", "60"],
    );
    assert_eq!(mount.worker_pids().len(), 2, "{}", mount.log_text());
    let reader = Command::new("cat")
        .arg(mount.path("slow"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn cat");
    sleep(Duration::from_millis(300));
    let (out, took) = timed(|| mount.sh("cat other"));
    assert_eq!(stdout(&out), "served", "{}", stderr(&out));
    assert!(took < Duration::from_secs(1), "{took:?}");
    let slow = reader.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&slow.stdout), "100000000");
}

/// How many times the daemon's debug log says `what` was evaluated.
fn evaluations(mount: &Mount, what: &str) -> usize {
    mount.log_count(&format!("{what}: evaluated in"))
}

#[test]
fn a_walk_finds_subdirectories_read_ahead() {
    if !fuse_available() {
        return;
    }
    let expr = r#"{ d = { f = "file"; x = { p = 1; }; y = { q = { r = 2; }; }; }; }"#;
    let log = "info,attrfs_vfs=debug";
    let args = ["-E", expr];
    let mount = Mount::start_cached(&args, None, log, Duration::from_secs(30));
    let ls = mount.sh("ls d");
    assert_eq!(stdout(&ls), "f\nx\ny\n", "{}", stderr(&ls));
    // Listing d reads its subdirectories ahead (not the file), and their
    // own subdirectories after them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while evaluations(&mount, "list+ d.y.q") == 0 {
        assert!(Instant::now() < deadline, "{}", mount.log_text());
        sleep(Duration::from_millis(20));
    }
    assert_eq!(evaluations(&mount, "list+ d.x"), 1, "{}", mount.log_text());
    assert_eq!(evaluations(&mount, "list+ d.y"), 1, "{}", mount.log_text());
    assert_eq!(evaluations(&mount, "list+ d.f"), 0, "{}", mount.log_text());
    // The walk finds them ready.
    let find = mount.sh("find d | sort");
    assert_eq!(
        stdout(&find),
        "d\nd/f\nd/x\nd/x/p\nd/y\nd/y/q\nd/y/q/r\n",
        "{}",
        stderr(&find)
    );
    for dir in ["d.x", "d.y", "d.y.q"] {
        let listed = evaluations(&mount, &format!("list+ {dir}"));
        assert_eq!(listed, 1, "{dir}: {}", mount.log_text());
    }

    // Turned off, nothing is listed before it is asked for.
    let off = ["-E", expr, "--no-read-ahead"];
    let mount = Mount::start_cached(&off, None, log, Duration::from_secs(30));
    assert_eq!(stdout(&mount.sh("ls d")), "f\nx\ny\n");
    sleep(Duration::from_millis(500));
    assert_eq!(evaluations(&mount, "list+ d.x"), 0, "{}", mount.log_text());
    assert_eq!(stdout(&mount.sh("ls d/x")), "p\n");
    assert_eq!(evaluations(&mount, "list+ d.x"), 1, "{}", mount.log_text());
}

#[test]
fn awkward_attribute_names_round_trip() {
    if !fuse_available() {
        return;
    }
    let names = [
        ("a/b", "slash"),
        (".", "dot"),
        ("..", "dotdot"),
        ("", "empty"),
        ("100%", "percent"),
        (".drv", "not the drv"),
        ("plain", "plain"),
    ];
    let expr = format!(
        "{{ {} nested.\"x/y\" = {{ \".\" = \"deep dot\"; \"\" = \"deep empty\"; }}; }}",
        names
            .iter()
            .map(|(n, v)| format!("{n:?} = {v:?};"))
            .collect::<String>()
    );
    let mount = Mount::expr(&expr, &[]);
    let ls = mount.sh("ls -A");
    assert!(ls.status.success(), "{}", stderr(&ls));
    let listed: Vec<String> = stdout(&ls).lines().map(str::to_owned).collect();
    let mut decoded: Vec<String> = listed.iter().map(|l| decode_file_name(l)).collect();
    decoded.sort();
    let mut expected: Vec<String> = names.iter().map(|(n, _)| n.to_string()).collect();
    expected.push("nested".into());
    expected.sort();
    assert_eq!(decoded, expected, "{listed:?}");
    // Every listed name reads back its own value.
    for file in &listed {
        if file == "nested" {
            continue;
        }
        let name = decode_file_name(file);
        let value = names.iter().find(|(n, _)| *n == name).unwrap().1;
        let cat = mount.sh(&format!("cat -- '{file}'"));
        assert_eq!(stdout(&cat), value, "{file}: {}", stderr(&cat));
    }
    let deep = mount.sh("ls -A nested/x%2Fy; cat nested/x%2Fy/%2E nested/x%2Fy/%");
    assert_eq!(
        stdout(&deep),
        "%\n%2E\ndeep dotdeep empty",
        "{}",
        stderr(&deep)
    );
}

#[test]
fn a_syntax_error_refuses_to_mount() {
    if !fuse_available() {
        return;
    }
    let dir = TempDir::new();
    let mountpoint = dir.0.join("mnt");
    fs::create_dir(&mountpoint).unwrap();
    let file = dir.0.join("broken.nix");
    fs::write(&file, "{\n  a = 1;\n  b = ;\n}\n").unwrap();
    let run = |args: &[&OsStr]| {
        Command::new("timeout")
            .arg("120")
            .arg(BIN)
            .arg("mount")
            .args(args)
            .arg(&mountpoint)
            .output()
            .unwrap()
    };
    let out = run(&[file.as_os_str()]);
    assert!(!out.status.success());
    assert_ne!(out.status.code(), Some(124), "attrfs mount hung");
    let err = stderr(&out);
    assert!(err.contains("syntax error"), "{err}");
    assert!(err.contains(&format!("{}:3:", file.display())), "{err}");
    assert!(!is_mounted(&mountpoint));
    assert_eq!(fs::read_dir(&mountpoint).unwrap().count(), 0);

    let out = run(&[OsStr::new("-E"), OsStr::new("{ a = 1")]);
    assert!(!out.status.success());
    assert_ne!(out.status.code(), Some(124), "attrfs mount hung");
    assert!(stderr(&out).contains("syntax error"), "{}", stderr(&out));
    assert!(!is_mounted(&mountpoint));
}

#[test]
fn sigterm_during_a_long_evaluation_unmounts_and_exits() {
    if !fuse_available() {
        return;
    }
    // Endless but cheap in memory, and it honours the interrupt.
    let mut mount = Mount::expr(
        "{ endless = let go = n: builtins.seq (builtins.foldl' (a: b: a + b) 0 \
         (builtins.genList (x: x) 100000)) (go (n + 1)); in go 0; }",
        &["--eval-timeout", "120"],
    );
    let mut reader = Command::new("cat")
        .arg(mount.path("endless"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sleep(Duration::from_secs(1));
    assert!(
        reader.try_wait().unwrap().is_none(),
        "cat is not blocked on the endless attribute"
    );
    mount.signal(libc::SIGTERM);
    let (exited, took) = timed(|| mount.wait_exit(Duration::from_secs(20)));
    assert_eq!(exited, Some(true), "{}", mount.log_text());
    assert!(!is_mounted(&mount.mountpoint), "{}", mount.log_text());
    eprintln!("SIGTERM with a blocked reader: exited after {took:?}");
    // The reader is released, with an error.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = reader.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = reader.kill();
            panic!("cat still blocked after the daemon exited");
        }
        sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
}
