//! The compiled-file cache through the real binary: a warm run prints what
//! a cold one does (values, positions, errors), damaged entries are
//! recompiled, edited files are not served stale, and the switches that
//! turn it off write nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_attrfs");

/// A fresh directory under target/ for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("compile-cache-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).expect("create scratch dir");
    dir
}

/// `attrfs eval ARGS` with its caches in `cache` (as `$XDG_CACHE_HOME`).
fn eval_in(cache: &Path, cwd: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("eval")
        .args(args)
        .current_dir(cwd)
        .env_remove("NIX_PATH")
        .env_remove("ATTRFS_CACHE_DIR")
        .env_remove("ATTRFS_NO_COMPILE_CACHE")
        .env("XDG_CACHE_HOME", cache);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.output().expect("run attrfs")
}

/// Stdout, stderr and status as one comparable text.
fn shown(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The cache's entries: name -> bytes.
fn entries(cache: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = cache.join("attrfs/compiled");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = rd
        .map(|e| e.expect("dir entry"))
        // Not entries: the marker of the last size scan.
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("read entry"))
        })
        .collect();
    out.sort();
    out
}

/// Files exercising what an image must keep exact: positions of errors,
/// `unsafeGetAttrPos`, `__curPos`, relative paths, formals, globals.
fn write_sources(src: &Path) {
    std::fs::write(
        src.join("lib.nix"),
        "{ a ? 1, b }:\n{\n  sum = a + b;\n  here = __curPos;\n  self = ./lib.nix;\n  store = __storeDir;\n}\n",
    )
    .unwrap();
    std::fs::write(
        src.join("main.nix"),
        "let\n  lib = import ./lib.nix { b = 2; };\n  set = {\n    first = 1;\n      second = 2;\n  };\nin {\n  inherit (lib) sum here store;\n  pos = builtins.unsafeGetAttrPos \"second\" set;\n  args = builtins.functionArgs (import ./lib.nix);\n  selfIsLib = lib.self == ./lib.nix;\n}\n",
    )
    .unwrap();
    std::fs::write(
        src.join("bad.nix"),
        "let\n  f = x: x + \"text\";\nin\n  f 1\n",
    )
    .unwrap();
    std::fs::write(src.join("syntax.nix"), "{ a = 1;\n  b = ;\n}\n").unwrap();
    std::fs::write(src.join("time.nix"), "{ t = __currentTime; }\n").unwrap();
}

#[test]
fn a_warm_run_prints_what_a_cold_run_does() {
    let dir = scratch("warm");
    let (src, cache) = (dir.join("src"), dir.join("cache"));
    write_sources(&src);
    let runs: &[&[&str]] = &[
        &["--strict", "main.nix"],
        &["--strict", "--json", "main.nix"],
        &["bad.nix"],
        &["--show-trace", "bad.nix"],
        &["syntax.nix"],
    ];
    let cold: Vec<String> = runs
        .iter()
        .map(|a| shown(&eval_in(&cache, &src, a, &[])))
        .collect();
    let stored = entries(&cache);
    // main.nix, lib.nix, bad.nix; syntax.nix fails to parse: not cached.
    assert_eq!(
        stored.len(),
        3,
        "{:?}",
        stored.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    let warm: Vec<String> = runs
        .iter()
        .map(|a| shown(&eval_in(&cache, &src, a, &[])))
        .collect();
    assert_eq!(warm, cold);
    assert_eq!(entries(&cache), stored, "a warm run rewrites nothing");
    // The values themselves, as C++ Nix prints them.
    assert!(cold[0].contains("line = 5;"), "{}", cold[0]);
    assert!(cold[0].contains("column = 7;"), "{}", cold[0]);
    assert!(
        cold[0].contains("here = { column = 10; file = "),
        "{}",
        cold[0]
    );
    assert!(cold[0].contains("selfIsLib = true;"), "{}", cold[0]);
    assert!(
        cold[0].contains("args = { a = true; b = false; };"),
        "{}",
        cold[0]
    );
    assert!(cold[2].contains("bad.nix:2:10"), "{}", cold[2]);
    assert!(cold[4].contains("syntax.nix:2:7"), "{}", cold[4]);
    // And what a run without the cache prints.
    for (a, c) in runs.iter().zip(&cold) {
        let fresh = eval_in(&cache, &src, &[&["--no-compile-cache"], *a].concat(), &[]);
        assert_eq!(&shown(&fresh), c, "{a:?}");
    }
}

#[test]
fn globals_are_not_frozen_into_entries() {
    let dir = scratch("globals");
    let (src, cache) = (dir.join("src"), dir.join("cache"));
    write_sources(&src);
    let first = shown(&eval_in(&cache, &src, &["--strict", "time.nix"], &[]));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = shown(&eval_in(&cache, &src, &["--strict", "time.nix"], &[]));
    assert_eq!(entries(&cache).len(), 1);
    assert_ne!(first, second, "__currentTime came from the cache");
}

/// Damage done to an entry, given it and another entry.
type Damage = dyn Fn(&[u8], &[u8]) -> Vec<u8>;

#[test]
fn damaged_entries_are_recompiled() {
    let dir = scratch("damaged");
    let (src, cache) = (dir.join("src"), dir.join("cache"));
    write_sources(&src);
    let args: &[&str] = &["--strict", "main.nix"];
    let cold = shown(&eval_in(&cache, &src, args, &[]));
    let stored = entries(&cache);
    assert_eq!(stored.len(), 2);
    let path = |name: &str| cache.join("attrfs/compiled").join(name);
    // Every way of damaging an entry: truncated, a flipped payload byte, a
    // flipped header byte, emptied, another entry's bytes under its name.
    let damages: Vec<Box<Damage>> = vec![
        Box::new(|e, _| e[..e.len() / 2].to_vec()),
        Box::new(|e, _| {
            let mut e = e.to_vec();
            let i = e.len() - 3;
            e[i] ^= 0x10;
            e
        }),
        Box::new(|e, _| {
            let mut e = e.to_vec();
            e[2] ^= 1;
            e
        }),
        Box::new(|_, _| Vec::new()),
        Box::new(|_, other| other.to_vec()),
    ];
    for damage in &damages {
        std::fs::write(path(&stored[0].0), damage(&stored[0].1, &stored[1].1)).unwrap();
        std::fs::write(path(&stored[1].0), damage(&stored[1].1, &stored[0].1)).unwrap();
        assert_eq!(shown(&eval_in(&cache, &src, args, &[])), cold);
        assert_eq!(
            entries(&cache),
            stored,
            "damaged entries are written afresh"
        );
    }
}

/// CRC-32 (IEEE), as the cache checksums an entry's payload: what a
/// forged entry needs to pass the checksum.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[test]
fn a_chunk_damaged_past_the_checksum_is_an_error_and_the_entry_goes() {
    // An entry's chunks are decoded when first run, and checked then: a
    // payload that passes the checksum and fails those checks (a forged
    // entry, or a bug) stops the evaluation with an error saying so,
    // removes the entry, and the next run compiles afresh.
    let dir = scratch("damaged-chunk");
    let (src, cache) = (dir.join("src"), dir.join("cache"));
    write_sources(&src);
    let args: &[&str] = &["--strict", "main.nix"];
    let cold = shown(&eval_in(&cache, &src, args, &[]));
    let stored = entries(&cache);
    let path = |name: &str| cache.join("attrfs/compiled").join(name);
    // magic, version, key, length, checksum.
    const HEADER: usize = 8 + 4 + 32 + 8 + 4;
    let found = stored.iter().any(|(name, entry)| {
        (HEADER..entry.len()).any(|i| {
            let mut forged = entry.clone();
            forged[i] ^= 0x7f;
            let sum = crc32(&forged[HEADER..]).to_le_bytes();
            forged[HEADER - 4..HEADER].copy_from_slice(&sum);
            std::fs::write(path(name), &forged).unwrap();
            let out = eval_in(&cache, &src, args, &[]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !stderr.contains("compiled-file cache entry of this file is damaged") {
                // Refused at load, or a change the checks cannot see
                // (another constant): put the entry back.
                std::fs::write(path(name), entry).unwrap();
                return false;
            }
            assert!(!out.status.success(), "{}", shown(&out));
            assert!(stderr.contains("evaluation aborted"), "{}", shown(&out));
            assert!(!path(name).exists(), "the damaged entry is removed");
            true
        })
    });
    assert!(found, "some damage is seen only when the code runs");
    assert_eq!(shown(&eval_in(&cache, &src, args, &[])), cold);
    assert_eq!(entries(&cache), stored, "written afresh");
}

#[test]
fn an_edited_file_is_compiled_again() {
    let dir = scratch("edited");
    let (src, cache) = (dir.join("src"), dir.join("cache"));
    write_sources(&src);
    let before = shown(&eval_in(&cache, &src, &["bad.nix"], &[]));
    assert!(before.contains("bad.nix:2:10"), "{before}");
    // Same length, the error one line further down.
    std::fs::write(
        src.join("bad.nix"),
        "let\n\n  f = x: x + \"txt\";\nin f 1\n",
    )
    .unwrap();
    let after = shown(&eval_in(&cache, &src, &["bad.nix"], &[]));
    assert!(after.contains("bad.nix:3:10"), "{after}");
    assert_eq!(entries(&cache).len(), 2);
}

#[test]
fn the_cache_can_be_turned_off_and_lives_under_xdg_cache_home() {
    let dir = scratch("off");
    let (src, cache) = (dir.join("src"), dir.join("cache"));
    write_sources(&src);
    let args: &[&str] = &["--strict", "main.nix"];
    let on = eval_in(&cache, &src, args, &[]);
    assert!(on.status.success(), "{}", shown(&on));
    assert_eq!(entries(&cache).len(), 2);
    std::fs::remove_dir_all(&cache).unwrap();
    for (flag, env) in [
        (&["--no-compile-cache"][..], &[][..]),
        (&[][..], &[("ATTRFS_NO_COMPILE_CACHE", "1")][..]),
    ] {
        let out = eval_in(&cache, &src, &[flag, args].concat(), env);
        assert_eq!(shown(&out), shown(&on));
        assert!(!cache.join("attrfs/compiled").exists(), "{flag:?} {env:?}");
    }
    // ATTRFS_CACHE_DIR moves it (with the fetch cache).
    let moved = dir.join("moved");
    let out = eval_in(
        &cache,
        &src,
        args,
        &[("ATTRFS_CACHE_DIR", moved.to_str().unwrap())],
    );
    assert_eq!(shown(&out), shown(&on));
    assert_eq!(
        std::fs::read_dir(moved.join("compiled"))
            .unwrap()
            .filter(|e| !e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.'))
            .count(),
        2
    );
}
