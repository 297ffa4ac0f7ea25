//! The persistent answer cache through real FUSE mounts: mount, read,
//! unmount, mount again, as a user would; the cache lives in a test
//! directory (`ATTRFS_CACHE_DIR`).
//!
//! "No evaluation" is read from the daemon's debug log: every answer the
//! evaluator computes is logged as `evaluated in`, an answer from the
//! cache is not. Needs /dev/fuse; the nixpkgs test also needs ../shared.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;
use support::{fuse_available, stdout, Mount, TempDir};

const LOG: &str = "info,attrfs_vfs=debug";

fn mount(args: &[&str], cache: &Path) -> Mount {
    Mount::start_cached(args, Some(cache), LOG, Duration::from_secs(120))
}

fn cat(mount: &Mount, rel: &str) -> String {
    stdout(&mount.sh(&format!("cat {rel}")))
}

/// Unmounts and waits for the daemon to finish (it commits on the way out).
fn unmount(mut mount: Mount) -> String {
    mount.signal(libc::SIGTERM);
    assert_eq!(mount.wait_exit(Duration::from_secs(30)), Some(true));
    mount.log_text()
}

const FROM_CACHE: &str = "answering from the persistent cache";

#[test]
fn a_remount_answers_from_the_cache_until_an_input_changes() {
    if !fuse_available() {
        return;
    }
    let src = TempDir::new();
    let cache = TempDir::new();
    fs::write(
        src.0.join("default.nix"),
        "{ host = \"alpha\"; more = import ./more.nix; }",
    )
    .unwrap();
    fs::write(src.0.join("more.nix"), "{ n = 1; }").unwrap();
    let file = src.0.join("default.nix");
    let args = [file.to_str().unwrap(), "--no-watch"];

    let first = mount(&args, &cache.0);
    assert_eq!(cat(&first, "host"), "alpha");
    assert_eq!(cat(&first, "more/n"), "1");
    let log = unmount(first);
    assert!(!log.contains(FROM_CACHE), "{log}");
    assert!(log.contains("stat more.n: evaluated"), "{log}");

    // Same sources: every answer read before comes from the cache.
    let second = mount(&args, &cache.0);
    assert_eq!(cat(&second, "more/n"), "1");
    assert_eq!(cat(&second, "host"), "alpha");
    let log = unmount(second);
    assert!(log.contains(FROM_CACHE), "{log}");
    assert!(!log.contains("more.n: evaluated"), "{log}");
    assert!(!log.contains("host: evaluated"), "{log}");

    // An imported file edited while nothing is mounted.
    fs::write(src.0.join("more.nix"), "{ n = 2; }").unwrap();
    let third = mount(&args, &cache.0);
    assert_eq!(cat(&third, "more/n"), "2");
    let log = unmount(third);
    assert!(!log.contains(FROM_CACHE), "{log}");
    assert!(log.contains("file"), "{log}");
    assert!(log.contains("changed since the cache was written"), "{log}");

    // A damaged cache is discarded, never served.
    let answers = cache.0.join("answers");
    for entry in fs::read_dir(&answers).unwrap() {
        let path = entry.unwrap().path();
        let len = fs::metadata(&path).unwrap().len() as usize;
        fs::write(&path, vec![0x5a; len.max(4096)]).unwrap();
    }
    let fourth = mount(&args, &cache.0);
    assert_eq!(cat(&fourth, "more/n"), "2");
    let log = unmount(fourth);
    assert!(log.contains("discarding a cache"), "{log}");
    assert!(!log.contains(FROM_CACHE), "{log}");

    // --no-cache neither reads nor writes it.
    let fifth = mount(
        &[file.to_str().unwrap(), "--no-watch", "--no-cache"],
        &cache.0,
    );
    assert_eq!(cat(&fifth, "more/n"), "2");
    let log = unmount(fifth);
    assert!(log.contains("more.n: evaluated"), "{log}");
}

#[test]
fn an_impure_evaluation_is_not_cached() {
    if !fuse_available() {
        return;
    }
    let cache = TempDir::new();
    let args = ["-E", "{ t = builtins.currentTime; }", "--no-watch"];
    let first = mount(&args, &cache.0);
    assert!(!cat(&first, "t").is_empty());
    unmount(first);
    let second = mount(&args, &cache.0);
    assert!(!cat(&second, "t").is_empty());
    let log = unmount(second);
    assert!(!log.contains(FROM_CACHE), "{log}");
    assert!(log.contains("t: evaluated"), "{log}");
}

#[test]
fn nixpkgs_remounted_lists_its_root_and_reads_hello_without_evaluating() {
    if !fuse_available() {
        return;
    }
    if attrfs_tests::require_shared().is_none() {
        return;
    }
    let corpus = attrfs_tests::corpus_dir();
    let nixpkgs = corpus.join("nixpkgs-20.09");
    let src = TempDir::new();
    let cache = TempDir::new();
    let overlay = src.0.join("overlay.nix");
    fs::write(&overlay, "self: super: { attrfsProbe = \"one\"; }").unwrap();
    let overlays = format!("[ (import {}) ]", overlay.display());
    let args = [
        nixpkgs.to_str().unwrap(),
        "--arg",
        "config",
        "{}",
        "--arg",
        "overlays",
        &overlays,
        "--argstr",
        "system",
        "x86_64-linux",
        "--no-watch",
    ];
    let ls = "ls --color=always | wc -l";

    let first = mount(&args, &cache.0);
    let names = stdout(&first.sh(ls));
    assert!(names.trim().parse::<usize>().unwrap() > 12_000, "{names}");
    assert_eq!(cat(&first, "hello/version"), "2.10");
    assert_eq!(cat(&first, "attrfsProbe"), "one");
    unmount(first);

    let second = mount(&args, &cache.0);
    let (again, took) = support::timed(|| stdout(&second.sh(ls)));
    assert_eq!(again, names);
    assert_eq!(cat(&second, "hello/version"), "2.10");
    let log = unmount(second);
    eprintln!("remounted colour ls of the nixpkgs root: {took:?}");
    assert!(log.contains(FROM_CACHE), "{log}");
    assert!(!log.contains(": evaluated in"), "{log}");
    // Not even the root: no evaluator process was started.
    assert!(!log.contains("starting an evaluator process"), "{log}");

    // A file nixpkgs imports changed: evaluated afresh.
    fs::write(&overlay, "self: super: { attrfsProbe = \"two\"; }").unwrap();
    let third = mount(&args, &cache.0);
    assert_eq!(cat(&third, "attrfsProbe"), "two");
    let log = unmount(third);
    assert!(!log.contains(FROM_CACHE), "{log}");
}

#[test]
fn what_a_live_mount_shows_after_an_edit_is_what_the_next_mount_shows() {
    if !fuse_available() {
        return;
    }
    let src = TempDir::new();
    let cache = TempDir::new();
    let file = src.0.join("default.nix");
    fs::write(&file, "{ host = \"alpha\"; }").unwrap();
    let args = [file.to_str().unwrap()];
    let live = mount(&args, &cache.0);
    assert_eq!(cat(&live, "host"), "alpha");
    let tmp = src.0.join("default.nix.swp");
    fs::write(&tmp, "{ host = \"beta\"; }").unwrap();
    fs::rename(&tmp, &file).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cat(&live, "host") != "beta" {
        assert!(std::time::Instant::now() < deadline, "{}", live.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    unmount(live);
    let next = mount(&args, &cache.0);
    assert_eq!(cat(&next, "host"), "beta");
    let log = unmount(next);
    assert!(log.contains(FROM_CACHE), "{log}");
    assert!(!log.contains("host: evaluated"), "{log}");
}
