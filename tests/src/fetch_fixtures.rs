//! Fixtures for the fetcher and flake tests: the deterministic trees, git
//! repositories, tarballs and flakes of
//! `tests/fixtures/fetchers/make-fixtures.sh`, a small HTTP server on
//! 127.0.0.1 serving them, the `attrfs` binary, and the cases and C++ Nix
//! results of `cases.txt`/`expected.txt`.

use crate::workspace_root;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// `tests/fixtures/fetchers`.
pub fn fixtures_src() -> PathBuf {
    workspace_root().join("tests/fixtures/fetchers")
}

/// Where the flake fixtures must be: their lock files name each other by
/// absolute path, so their NAR hashes (and C++ Nix's expected results)
/// hold for this directory only. Outside any Git work tree, on purpose.
pub const FLAKE_FIXTURES_DIR: &str = "/tmp/attrfs-fx";

/// Builds the fixtures into a fresh directory named after `tag` (under
/// `target/tmp`) and returns it.
pub fn build_fixtures(tag: &str) -> PathBuf {
    build_fixtures_in(
        &workspace_root()
            .join("target/tmp")
            .join(format!("attrfs-fx-{tag}-{}", std::process::id())),
    )
}

/// Builds the fixtures into `dir` (emptied first) and returns it.
pub fn build_fixtures_in(dir: &Path) -> PathBuf {
    let dir = dir.to_path_buf();
    let out = std::process::Command::new("bash")
        .arg(fixtures_src().join("make-fixtures.sh"))
        .arg(&dir)
        .output()
        .expect("run make-fixtures.sh");
    assert!(
        out.status.success(),
        "make-fixtures.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A tiny HTTP/1.0 file server on 127.0.0.1 for the tests (GET only,
/// files under a root, 404 otherwise). It counts the requests it served,
/// so that a test can check that something was *not* downloaded.
pub struct FileServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    requests: Arc<AtomicUsize>,
}

impl FileServer {
    /// Serves `root` on a free port, from a background thread.
    pub fn start(root: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let root = root.to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(match stream.try_clone() {
                    Ok(s) => s,
                    Err(_) => continue,
                });
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip the headers.
                let mut header = String::new();
                while reader
                    .read_line(&mut header)
                    .map(|n| n > 2)
                    .unwrap_or(false)
                {
                    header.clear();
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/");
                let file = root.join(path.trim_start_matches('/'));
                let response = match std::fs::read(&file) {
                    Ok(body) if file.is_file() => {
                        let mut r = format!(
                            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(&body);
                        r
                    }
                    _ => b"HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"
                        .to_vec(),
                };
                let _ = stream.write_all(&response);
            }
        });
        FileServer {
            url: format!("http://127.0.0.1:{port}"),
            requests,
        }
    }

    /// How many requests it has served.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A URL on 127.0.0.1 where nothing listens (a port bound, then closed).
pub fn closed_port_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1");
    format!("http://127.0.0.1:{port}")
}

/// The `attrfs` binary of this build: beside the test executable's
/// `deps/` directory, where `cargo test --workspace` puts it. Tests never
/// run `cargo build` themselves; run `cargo build -p attrfs` first when
/// testing this package alone.
pub fn attrfs_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("attrfs"))
        .expect("the test executable is under target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p attrfs` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// One line of `cases.txt` with its C++ Nix result from `expected.txt`.
#[derive(Clone, Debug)]
pub struct Case {
    /// The case's name.
    pub name: String,
    /// `expr` or `flake`.
    pub kind: String,
    /// The expression or flake reference, with `@DIR@`/`@URL@` in it.
    pub arg: String,
    /// What C++ Nix 2.8 printed (JSON), `@DIR@` for the fixture directory.
    pub expected: String,
}

/// The cases of `cases.txt` with their expected results.
pub fn cases() -> Vec<Case> {
    let read =
        |f: &str| std::fs::read_to_string(fixtures_src().join(f)).expect("read fixture file");
    let expected = read("expected.txt");
    read("cases.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '\t');
            let (name, kind, arg) = (
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            );
            let expected = expected
                .lines()
                .find_map(|e| e.strip_prefix(&format!("{name}\t")))
                .unwrap_or_else(|| panic!("no expected result for {name}"))
                .to_string();
            Case {
                name,
                kind,
                arg,
                expected,
            }
        })
        .collect()
}

/// The expression a case evaluates: a result set with `outPath` shows
/// whole (JSON would print the path alone), as `expected.sh` did.
pub fn wrap_expr(arg: &str) -> String {
    format!(
        "let v = ({arg}); in if builtins.isAttrs v && v ? outPath then \
         removeAttrs v [ \"outPath\" ] // {{ out = v.outPath; }} else v"
    )
}
