//! Shared helpers for the workspace-level tests: locating the shared
//! material (`../shared` next to the workspace) and running evaluations in
//! isolation (own thread, big stack, deadline, panics contained).

pub mod fetch_fixtures;
pub mod outpaths;

use attrfs_eval::cli::{evaluate, EvalCommand, EVAL_STACK_SIZE};
use attrfs_eval::EvalOptions;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `../shared` relative to the workspace root: C++ Nix's language suite
/// and the corpora. Tests reach it through [`require_shared`], which skips
/// them (or fails them in CI) when it is missing.
pub fn shared_dir() -> PathBuf {
    workspace_root().join("../shared")
}

/// `../shared` if it is there. A fresh clone has nothing beside it; then
/// the calling test should return at once: this announces the skip on
/// stderr and appends it to the file named by `ATTRFS_SKIP_LOG` (which
/// `contrib/test.sh` lists at the end). With `CI=true` a missing
/// `../shared` panics instead, so that CI can never skip these suites.
///
/// The one place that decides whether a suite needing `../shared` runs.
pub fn require_shared() -> Option<PathBuf> {
    let dir = shared_dir();
    if dir.is_dir() {
        return Some(dir);
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let binary = std::env::args()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|n| {
            n.rsplit_once('-')
                .map_or(n.clone(), |(stem, _hash)| stem.to_string())
        })
        .unwrap_or_default();
    let why = format!("{binary}::{test}: needs ../shared (conformance suite and corpora)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{why}, which is missing at {}; CI=true never skips it",
            dir.display()
        );
    }
    use std::io::Write;
    // To the real stderr, past libtest's capture: a skip is never silent.
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {why}");
    if let Some(log) = std::env::var_os("ATTRFS_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{why}");
        }
    }
    None
}

/// The unpacked corpora (see [`corpus_dir`]), or `None` when `../shared`
/// is missing and the calling test is skipped (see [`require_shared`]).
pub fn require_corpus() -> Option<PathBuf> {
    require_shared().map(|_| corpus_dir())
}

/// How an isolated evaluation ended.
#[derive(Debug)]
pub enum Outcome {
    /// Printed output.
    Ok(Vec<u8>),
    /// Rendered evaluation error.
    Err(String),
    /// Did not finish before the deadline.
    Timeout,
    /// The evaluator panicked (always a bug).
    Panic(String),
}

/// Runs `evaluate` on its own thread with a deadline; a run past the
/// deadline is interrupted through the evaluator's flag.
pub fn run_isolated(cmd: EvalCommand, mut options: EvalOptions, deadline: Duration) -> Outcome {
    let flag = Arc::new(AtomicBool::new(false));
    options.interrupt = flag.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .stack_size(EVAL_STACK_SIZE)
        .spawn(move || {
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| evaluate(&cmd, options)));
            let _ = tx.send(r);
        })
        .expect("spawn evaluation thread");
    let outcome = match rx.recv_timeout(deadline) {
        Ok(Ok(Ok(out))) => Outcome::Ok(out),
        Ok(Ok(Err(e))) => Outcome::Err(e),
        Ok(Err(p)) => Outcome::Panic(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()),
        ),
        Err(_) => {
            flag.store(true, Ordering::Relaxed);
            let _ = rx.recv_timeout(Duration::from_secs(10));
            Outcome::Timeout
        }
    };
    let _ = handle.join();
    outcome
}

/// The unpacked corpora (`../shared/corpus/unpack.sh` into
/// `target/corpus`, once; idempotent and safe to call from parallel tests).
pub fn corpus_dir() -> PathBuf {
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let dest = workspace_root().join("target/corpus");
    let status = std::process::Command::new("bash")
        .arg(shared_dir().join("corpus/unpack.sh"))
        .arg(&dest)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run ../shared/corpus/unpack.sh");
    assert!(status.success(), "unpacking the corpus failed");
    dest
}

/// Evaluates an expression strictly (as `attrfs eval --strict`) and returns
/// the printed value, or the error text.
pub fn eval_strict(expr: &str) -> Result<String, String> {
    eval_command(EvalCommand {
        invocation: attrfs_eval::Invocation::expr(expr.to_string()),
        strict: true,
        ..Default::default()
    })
}

/// Runs an `attrfs eval` command in isolation (two minutes at most) and
/// returns what it printed, trimmed, or the error text.
pub fn eval_command(cmd: EvalCommand) -> Result<String, String> {
    match run_isolated(cmd, EvalOptions::default(), Duration::from_secs(120)) {
        Outcome::Ok(out) => Ok(String::from_utf8_lossy(&out).trim_end().to_string()),
        Outcome::Err(e) => Err(e),
        Outcome::Timeout => Err("timed out".into()),
        Outcome::Panic(p) => Err(format!("panic: {p}")),
    }
}

/// A list of expected failures as the conformance tests keep them (one
/// `name # reason` per line, `#` lines are comments), read from `file`
/// relative to the workspace root; empty if the file is missing.
pub fn listed_failures(file: &str) -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read_to_string(workspace_root().join(file)).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once('#').unwrap_or((l, ""));
            (name.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}
