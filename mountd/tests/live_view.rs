//! The live view through real FUSE mounts: edit the sources of a mounted
//! expression as a user would (an editor's save: a temporary file renamed
//! over the original) and read the mount again with `cat`, `stat` and
//! `getfattr`, without remounting.
//!
//! Needs /dev/fuse; the NixOS test also needs ../shared (see
//! `attrfs_tests::require_shared`).

mod support;

use attrfs_tests::shared_dir;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};
use support::{fuse_available, stderr, stdout, Mount, TempDir};

/// Saves `text` to `path` the way editors do: a temporary file in the same
/// directory, renamed over the original.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("nix.swp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// Runs `script` in the mount until it prints `expected`; returns how long
/// that took, or fails after `within` with what it printed last.
fn wait_for(mount: &Mount, script: &str, expected: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let out = mount.sh(script);
        if stdout(&out) == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "`{script}` still prints {:?} (stderr {:?}) {within:?} after the save, not {expected:?}\n{}",
            stdout(&out),
            stderr(&out),
            mount.log_text()
        );
        sleep(Duration::from_millis(10));
    }
}

fn generations_started(mount: &Mount) -> usize {
    mount.log_text().matches("evaluating generation").count()
}

fn inode(mount: &Mount, rel: &str) -> String {
    stdout(&mount.sh(&format!("stat -c %i {rel}")))
}

#[test]
fn editing_either_file_changes_what_cat_shows_and_a_broken_edit_keeps_the_old_values() {
    if !fuse_available() {
        return;
    }
    let src = TempDir::new();
    let main = src.0.join("default.nix");
    let more = src.0.join("more.nix");
    fs::write(&main, r#"{ host = "alpha"; more = import ./more.nix; }"#).unwrap();
    fs::write(&more, r#"{ port = 22; }"#).unwrap();
    let mount = Mount::spawn(&[main.to_str().unwrap()]);
    assert_eq!(stdout(&mount.sh("cat host")), "alpha");
    assert_eq!(stdout(&mount.sh("cat more/port")), "22");
    let host_inode = inode(&mount, "host");
    let port_inode = inode(&mount, "more/port");

    // The root file.
    save(&main, r#"{ host = "beta"; more = import ./more.nix; }"#);
    let took = wait_for(&mount, "cat host", "beta", Duration::from_secs(1));
    eprintln!("save to new value (root file): {took:?}");
    // The imported file, once the new generation has read it.
    assert_eq!(stdout(&mount.sh("cat more/port")), "22");
    save(&more, r#"{ port = 2222; }"#);
    let took = wait_for(&mount, "cat more/port", "2222", Duration::from_secs(1));
    eprintln!("save to new value (imported file): {took:?}");
    // Paths that still exist keep their inode numbers.
    assert_eq!(inode(&mount, "host"), host_inode);
    assert_eq!(inode(&mount, "more/port"), port_inode);
    assert_eq!(stdout(&mount.sh("cat host")), "beta");

    // A syntax error: the old values stay, and the root says why.
    save(&main, r#"{ host = "gamma" more = import ./more.nix; }"#);
    let error = "getfattr --only-values -n user.nix.error . 2>/dev/null | grep -c 'syntax error' | tr -d '\\n'";
    let took = wait_for(&mount, error, "1", Duration::from_secs(2));
    eprintln!("save to error shown: {took:?}");
    assert_eq!(stdout(&mount.sh("cat host")), "beta");
    assert_eq!(stdout(&mount.sh("cat more/port")), "2222");
    let listed = mount.sh("getfattr -d -m - . 2>/dev/null");
    assert!(
        stdout(&listed).contains("user.nix.error"),
        "{}",
        stdout(&listed)
    );
    assert!(mount
        .log_text()
        .contains("do not evaluate; still serving generation"));

    // A root that is no longer a directory is refused the same way.
    save(&main, r#""just a string""#);
    let not_a_set = "getfattr --only-values -n user.nix.error . 2>/dev/null | grep -c 'not an attribute set' | tr -d '\\n'";
    wait_for(&mount, not_a_set, "1", Duration::from_secs(2));
    assert_eq!(stdout(&mount.sh("cat host")), "beta");

    // Fixing it serves the fix, and the root's error is gone.
    save(
        &main,
        r#"{ host = "delta"; more = import ./more.nix; extra = 1; }"#,
    );
    wait_for(&mount, "cat host", "delta", Duration::from_secs(1));
    assert_eq!(stdout(&mount.sh(error)), "0");
    assert_eq!(stdout(&mount.sh("ls")).trim_end(), "extra\nhost\nmore");

    // A new file imported with an error: fixing that file (which the
    // served generation never read) is enough.
    let new = src.0.join("new.nix");
    fs::write(&new, "{ broken = ; }").unwrap();
    save(
        &main,
        r#"import ./new.nix // { host = "epsilon"; more = import ./more.nix; }"#,
    );
    wait_for(&mount, error, "1", Duration::from_secs(2));
    assert_eq!(stdout(&mount.sh("cat host")), "delta");
    save(&new, "{ fixed = true; }");
    wait_for(&mount, "cat host", "epsilon", Duration::from_secs(1));
    assert_eq!(stdout(&mount.sh("cat fixed")), "true");

    // A burst of saves is one new generation, showing the last one.
    let before = generations_started(&mount);
    for i in 0..10 {
        save(
            &main,
            &format!(r#"{{ host = "burst{i}"; more = import ./more.nix; }}"#),
        );
    }
    wait_for(&mount, "cat host", "burst9", Duration::from_secs(1));
    sleep(Duration::from_millis(500));
    assert_eq!(
        generations_started(&mount) - before,
        1,
        "{}",
        mount.log_text()
    );

    // Saving the same bytes again, or touching the file, is no change.
    let before = generations_started(&mount);
    save(&main, r#"{ host = "burst9"; more = import ./more.nix; }"#);
    assert!(mount
        .sh(&format!("touch {}", more.display()))
        .status
        .success());
    sleep(Duration::from_millis(700));
    assert_eq!(generations_started(&mount), before, "{}", mount.log_text());
}

#[test]
fn an_expression_watches_what_it_imports_and_no_watch_watches_nothing() {
    if !fuse_available() {
        return;
    }
    let src = TempDir::new();
    let file = src.0.join("value.nix");
    fs::write(&file, r#"{ v = "one"; }"#).unwrap();
    let expr = format!("import {}", file.display());
    let watched = Mount::expr(&expr, &[]);
    let frozen = Mount::expr(&expr, &["--no-watch"]);
    assert_eq!(stdout(&watched.sh("cat v")), "one");
    assert_eq!(stdout(&frozen.sh("cat v")), "one");
    save(&file, r#"{ v = "two"; }"#);
    wait_for(&watched, "cat v", "two", Duration::from_secs(1));
    sleep(Duration::from_millis(500));
    assert_eq!(stdout(&frozen.sh("cat v")), "one");
    assert_eq!(generations_started(&frozen), 0);
}

#[test]
fn nixos_host_name_edit_shows_in_config_and_etc() {
    if !fuse_available() || attrfs_tests::require_shared().is_none() {
        return;
    }
    let src = TempDir::new();
    let config = src.0.join("configuration.nix");
    let original = fs::read_to_string(shared_dir().join("corpus/nixos/small-server.nix"))
        .expect("small-server.nix");
    fs::write(&config, &original).unwrap();
    let nixos = attrfs_tests::corpus_dir().join("nixpkgs-20.09/nixos");
    let mount = Mount::start_within(
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
    );
    assert_eq!(stdout(&mount.sh("cat networking/hostName")), "small-server");
    assert_eq!(
        stdout(&mount.sh("cat environment/etc/hostname/text")),
        "small-server\n"
    );

    let edited = original.replace(
        r#"networking.hostName = "small-server";"#,
        r#"networking.hostName = "edited-server";"#,
    );
    assert_ne!(edited, original, "the corpus file sets networking.hostName");
    save(&config, &edited);
    let took = wait_for(
        &mount,
        "cat networking/hostName",
        "edited-server",
        Duration::from_secs(120),
    );
    eprintln!("NixOS small-server: save to new networking/hostName: {took:?}");
    let took = wait_for(
        &mount,
        "cat environment/etc/hostname/text",
        "edited-server\n",
        Duration::from_secs(120),
    );
    eprintln!("NixOS small-server: then environment/etc/hostname/text: {took:?}");
}

#[test]
fn a_local_flake_is_watched_as_a_tree() {
    if !fuse_available() {
        return;
    }
    let src = TempDir::new();
    let flake = src.0.join("flake.nix");
    fs::write(
        &flake,
        r#"{ outputs = { self }: { x = "a"; y = import ./y.nix; }; }"#,
    )
    .unwrap();
    fs::write(src.0.join("y.nix"), r#""y1""#).unwrap();
    let mount = Mount::spawn(&["--flake", src.0.to_str().unwrap()]);
    assert_eq!(stdout(&mount.sh("cat x")), "a");
    assert_eq!(stdout(&mount.sh("cat y")), "y1");
    save(&src.0.join("y.nix"), r#""y2""#);
    wait_for(&mount, "cat y", "y2", Duration::from_secs(1));
    save(
        &flake,
        r#"{ outputs = { self }: { x = "b"; y = import ./y.nix; }; }"#,
    );
    wait_for(&mount, "cat x", "b", Duration::from_secs(1));
    // A file no expression reads is still part of the flake's source
    // (its narHash), so adding one is a change too.
    let before = generations_started(&mount);
    fs::write(src.0.join("README"), "hello").unwrap();
    let started = Instant::now();
    while generations_started(&mount) == before {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{}",
            mount.log_text()
        );
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn reads_during_generation_changes_never_fail() {
    if !fuse_available() {
        return;
    }
    let src = TempDir::new();
    let main = src.0.join("default.nix");
    fs::write(&main, r#"{ n = 0; deep.value = "0"; }"#).unwrap();
    let mount = Mount::spawn(&[main.to_str().unwrap()]);
    // A reader in the background for the whole test: every read must
    // succeed, with a value of some generation.
    let reader = mount.path("");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut reads = 0;
        while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
            for rel in ["n", "deep/value"] {
                match fs::read_to_string(reader.join(rel)) {
                    Ok(v) => assert!(v.parse::<u32>().is_ok(), "{rel}: {v:?}"),
                    Err(e) => panic!("reading {rel} failed during a generation change: {e}"),
                }
                reads += 1;
            }
        }
        reads
    });
    for i in 1..=15 {
        save(&main, &format!(r#"{{ n = {i}; deep.value = "{i}"; }}"#));
        sleep(Duration::from_millis(150));
    }
    wait_for(&mount, "cat n", "15", Duration::from_secs(1));
    wait_for(&mount, "cat deep/value", "15", Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = handle.join().expect("the reader saw no failure");
    assert!(reads > 20, "only {reads} reads");
}
