//! Fetchers against C++ Nix 2.8's results: every case of
//! `tests/fixtures/fetchers/cases.txt` (fetchurl, fetchTarball, fetchGit,
//! fetchTree of every local kind) on fixtures built at test time and
//! served by a loopback HTTP server, compared with `expected.txt`; then
//! what the cache does (fetched once, found in the Nix store), and how
//! failures read (hash mismatch, unreachable URL, HTTP 404).
//!
//! Nothing here needs C++ Nix, the network or anything in `/nix/store`:
//! `ATTRFS_CACHE_DIR` and `ATTRFS_NIX_STORE` point into `target/tmp`.

use attrfs_eval::cli::EvalCommand;
use attrfs_tests::fetch_fixtures::{
    attrfs_bin, build_fixtures, cases, closed_port_url, wrap_expr, FileServer,
};
use attrfs_tests::workspace_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The fixtures, their server, and the cache this test process uses.
struct Setup {
    dir: PathBuf,
    server: FileServer,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = build_fixtures("fetchers");
        let tmp = workspace_root().join("target/tmp");
        let cache = tmp.join(format!("attrfs-cache-fetchers-{}", std::process::id()));
        let store = tmp.join(format!("attrfs-nixstore-fetchers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::create_dir_all(&store).expect("create fake store");
        // Set once, before any evaluation in this process reads them.
        std::env::set_var("ATTRFS_CACHE_DIR", &cache);
        std::env::set_var("ATTRFS_NIX_STORE", &store);
        let server = FileServer::start(&dir);
        Setup { dir, server }
    })
}

fn fill(s: &Setup, text: &str) -> String {
    text.replace("@DIR@", &s.dir.display().to_string())
        .replace("@URL@", &s.server.url)
}

/// Evaluates in-process, strictly, as JSON, with `fetch-tree` enabled.
fn eval_json(expr: &str) -> Result<String, String> {
    attrfs_tests::eval_command(EvalCommand {
        invocation: attrfs_eval::Invocation::expr(expr.to_string()),
        json: true,
        experimental_features: vec!["flakes".into()],
        ..Default::default()
    })
}

/// Where C++ Nix 2.8 and current C++ Nix differ, attrfs follows current
/// Nix (docs/notes-flakes.md): a dirty Git tree also reports `dirtyRev` and
/// `dirtyShortRev`. Checks them and removes them from `ours`.
fn strip_current_nix_additions(name: &str, ours: &mut serde_json::Value) {
    if name.ends_with("dirty") {
        let obj = ours.as_object_mut().expect("an attribute set");
        let head = "d2ef8ba381a942e2bbd9db5199a65a7c24d6f7b4";
        assert_eq!(
            obj.remove("dirtyRev"),
            Some(serde_json::json!(format!("{head}-dirty"))),
            "{name}"
        );
        assert_eq!(
            obj.remove("dirtyShortRev"),
            Some(serde_json::json!("d2ef8ba-dirty")),
            "{name}"
        );
    }
}

#[test]
fn every_fetcher_matches_cpp_nix() {
    let s = setup();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases().into_iter().filter(|c| c.kind == "expr") {
        let expr = wrap_expr(&fill(s, &case.arg));
        let ours = match eval_json(&expr) {
            Ok(out) => out.replace(&s.dir.display().to_string(), "@DIR@"),
            Err(e) => {
                failures.push(format!("{}: error: {e}", case.name));
                continue;
            }
        };
        let mut ours: serde_json::Value =
            serde_json::from_str(&ours).unwrap_or_else(|e| panic!("{}: {e}: {ours}", case.name));
        strip_current_nix_additions(&case.name, &mut ours);
        let expected: serde_json::Value =
            serde_json::from_str(&case.expected).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        if ours != expected {
            failures.push(format!(
                "{}:\n  ours:     {ours}\n  expected: {expected}",
                case.name
            ));
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Two cases C++ Nix 2.8 fails on and current Nix does: `fetchTree` of
/// type `file` over HTTP, and `fetchGit` of a bare repository (2.8 asks
/// for `master`; current Nix and attrfs take the remote's HEAD).
#[test]
fn current_nix_cases() {
    let s = setup();
    let file = eval_json(&fill(
        s,
        r#"let t = builtins.fetchTree { type = "file"; url = "@URL@/file.txt"; }; in
           [ t.narHash (baseNameOf t.outPath) (builtins.readFile t.outPath)
             (t.outPath == builtins.path { path = @DIR@/file.txt; name = "source"; recursive = false; }) ]"#,
    ))
    .unwrap();
    let (nar, _) = attrfs_store::nar::nar_hash_sha256(
        &attrfs_store::nar::FsSource,
        &s.dir.join("file.txt"),
        &mut attrfs_store::nar::keep_all,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(v[0], serde_json::json!(nar.to_sri()));
    assert!(v[1].as_str().unwrap().ends_with("-source"), "{file}");
    assert_eq!(v[2], serde_json::json!("plain file\n"));
    assert_eq!(v[3], serde_json::json!(true), "{file}");

    // The bare clone's HEAD is main: the same tree as the work tree's.
    let bare = eval_json(&fill(
        s,
        r#"let b = builtins.fetchGit "file://@DIR@/bare.git"; w = builtins.fetchGit @DIR@/repo; in
           [ (b.outPath == w.outPath) (b.rev == w.rev) b.revCount b.narHash ]"#,
    ))
    .unwrap();
    assert_eq!(
        bare,
        r#"[true,true,2,"sha256-mAGANu0akE7yeALFng2QKhPjogkrwmxGh2nVF2asdaY="]"#
    );
}

/// A github input locked by `narHash` and `lastModified`: its store path
/// is computed without any network access (the tarball would be fetched
/// only when something inside it is read).
#[test]
fn locked_github_input_needs_no_network() {
    let _ = setup();
    let started = Instant::now();
    let out = eval_json(
        r#"let t = builtins.fetchTree { type = "github"; owner = "NixOS"; repo = "nixpkgs";
             rev = "0123456789abcdef0123456789abcdef01234567";
             narHash = "sha256-8Laimw+zeqgULdEk1vvGxJEdtJ6c9Y13Kyl4YMX300U="; lastModified = 1600000000; };
           in [ t.outPath t.rev t.shortRev t.lastModifiedDate ]"#,
    )
    .unwrap();
    // The same narHash as the fixture tarball, so the same store path as
    // C++ Nix gave for it (expected.txt, fetchTree-tarball).
    assert_eq!(
        out,
        r#"["/nix/store/z09msxz6cyl3kvgjnyxxhy9jmslz4bnv-source","0123456789abcdef0123456789abcdef01234567","0123456","20200913122640"]"#
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Runs the `attrfs` binary with its own cache and Nix store directories.
fn attrfs(args: &[&str], cache: &Path, store: &Path) -> Output {
    Command::new(attrfs_bin())
        .args(args)
        .env("ATTRFS_CACHE_DIR", cache)
        .env("ATTRFS_NIX_STORE", store)
        .env_remove("NIX_PATH")
        .output()
        .expect("run attrfs")
}

/// Fresh, empty cache and store directories for one test.
fn fresh_dirs(tag: &str) -> (PathBuf, PathBuf) {
    let base = workspace_root()
        .join("target/tmp")
        .join(format!("attrfs-fetch-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("store")).unwrap();
    (base.join("cache"), base.join("store"))
}

const TARBALL_SHA256: &str = "0ifkyz2n0y195dvqvxcwkss1v4f4qvxxc96i5laahymk1yds5dph";
const TARBALL_PATH: &str = "/nix/store/z09msxz6cyl3kvgjnyxxhy9jmslz4bnv-source";

#[test]
fn tarball_is_fetched_once_then_read_from_the_cache() {
    let s = setup();
    let (cache, store) = fresh_dirs("once");
    let expr = format!(
        r#"let t = builtins.fetchTarball {{ url = "{}/t.tar.gz"; sha256 = "{TARBALL_SHA256}"; }}; in [ t (builtins.readFile "${{t}}/f") ]"#,
        s.server.url
    );
    let before = s.server.requests();
    let out = attrfs(&["eval", "--strict", "-E", &expr], &cache, &store);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("[ \"{TARBALL_PATH}\" \"hello\\n\" ]")
    );
    assert_eq!(s.server.requests(), before + 1, "downloaded once");
    assert!(cache
        .join("store/z09msxz6cyl3kvgjnyxxhy9jmslz4bnv-source/sub/run.sh")
        .exists());
    let again = attrfs(&["eval", "--strict", "-E", &expr], &cache, &store);
    assert!(again.status.success());
    assert_eq!(again.stdout, out.stdout);
    assert_eq!(
        s.server.requests(),
        before + 1,
        "the second run used the cache"
    );
}

#[test]
fn tarball_already_in_the_nix_store_is_not_fetched() {
    let s = setup();
    let (cache, store) = fresh_dirs("instore");
    // Pretend C++ Nix put it there: the unpacked tree under its store name.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mkdir -p {0}/u && tar xzf {1}/t.tar.gz -C {0}/u && mv {0}/u/top {0}/z09msxz6cyl3kvgjnyxxhy9jmslz4bnv-source",
            store.display(),
            s.dir.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    // Nothing listens at this URL: only the store can answer.
    let expr = format!(
        r#"let t = builtins.fetchTarball {{ url = "{}/t.tar.gz"; sha256 = "{TARBALL_SHA256}"; }}; in builtins.readFile "${{t}}/f""#,
        closed_port_url()
    );
    let out = attrfs(&["eval", "-E", &expr], &cache, &store);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"hello\\n\"");
    assert!(
        !cache.join("store").exists(),
        "nothing was fetched into the cache"
    );
}

#[test]
fn hash_mismatch_names_url_and_both_hashes() {
    let s = setup();
    let (cache, store) = fresh_dirs("mismatch");
    let wrong = "02bavd8zw6rfxkzmv7n4z6inp3l53k0pl29gqq7jwhhnbj0b8c8f";
    let url = format!("{}/t.tar.gz", s.server.url);
    let expr = format!(r#"builtins.fetchTarball {{ url = "{url}"; sha256 = "{wrong}"; }}"#);
    let out = attrfs(&["eval", "-E", &expr], &cache, &store);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("hash mismatch in file downloaded from '{url}':"))
            && err.contains(&format!("specified: sha256:{wrong}"))
            && err.contains(&format!("got:       sha256:{TARBALL_SHA256}")),
        "{err}"
    );
    // Nothing unverified is kept.
    assert!(
        !cache.join("store").exists()
            || std::fs::read_dir(cache.join("store"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn unreachable_url_fails_fast_and_clearly() {
    let _ = setup();
    let (cache, store) = fresh_dirs("unreachable");
    let url = format!("{}/t.tar.gz", closed_port_url());
    let started = Instant::now();
    let out = attrfs(
        &["eval", "-E", &format!("builtins.fetchTarball \"{url}\"")],
        &cache,
        &store,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("unable to download '{url}'"))
            && err.to_lowercase().contains("refused"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn http_error_status_is_reported() {
    let s = setup();
    let (cache, store) = fresh_dirs("404");
    let url = format!("{}/missing.tar.gz", s.server.url);
    let out = attrfs(
        &["eval", "-E", &format!("builtins.fetchurl \"{url}\"")],
        &cache,
        &store,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("unable to download '{url}': HTTP error 404")),
        "{err}"
    );
}

#[test]
fn url_search_path_entries() {
    let s = setup();
    let (cache, store) = fresh_dirs("searchpath");
    let entry = format!("fx={}/t.tar.gz", s.server.url);
    let out = attrfs(
        &[
            "eval",
            "-I",
            &entry,
            "-E",
            "builtins.readFile <fx/sub/run.sh>",
        ],
        &cache,
        &store,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "\"#!/bin/sh\\necho hi\\n\""
    );
    // An entry that cannot be fetched is skipped with a warning, as in
    // C++ Nix, and the next one is used.
    let out = attrfs(
        &[
            "eval",
            "-I",
            &format!("fx={}/gone.tar.gz", closed_port_url()),
            "-I",
            &entry,
            "-E",
            "toString <fx>",
        ],
        &cache,
        &store,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("\"{TARBALL_PATH}\"")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be downloaded, ignoring"));
}

/// A path input's NAR hash is remembered by the `lstat` data of its tree
/// (so a large input is not re-hashed on every evaluation), and a change
/// to a file, even of the same size, gives the new hash.
#[test]
fn path_input_hash_follows_changes() {
    let s = setup();
    let d = s.dir.join("changing");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("a"), "1").unwrap();
    let expr = format!(
        "(builtins.fetchTree {{ type = \"path\"; path = \"{}\"; }}).narHash",
        d.display()
    );
    let first = eval_json(&expr).unwrap();
    assert_eq!(eval_json(&expr).unwrap(), first);
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(d.join("a"), "2").unwrap();
    let second = eval_json(&expr).unwrap();
    assert_ne!(second, first);
    let (nar, _) = attrfs_store::nar::nar_hash_sha256(
        &attrfs_store::nar::FsSource,
        &d,
        &mut attrfs_store::nar::keep_all,
    )
    .unwrap();
    assert_eq!(second, format!("\"{}\"", nar.to_sri()));
}

/// A `.tar.xz` (the form of nixpkgs channel tarballs) unpacks to the same
/// tree, so the same store path, as the `.tar.gz`.
#[test]
fn xz_tarball_gives_the_same_tree() {
    let s = setup();
    let status = Command::new("sh")
        .arg("-c")
        .arg("tar --sort=name --mtime=@1600000000 --owner=0 --group=0 --numeric-owner -C tarsrc -cJf t.tar.xz top")
        .current_dir(&s.dir)
        .status()
        .unwrap();
    assert!(status.success());
    let out = eval_json(&format!(
        "builtins.fetchTarball \"{}/t.tar.xz\"",
        s.server.url
    ))
    .unwrap();
    assert_eq!(out, format!("\"{TARBALL_PATH}\""));
}
