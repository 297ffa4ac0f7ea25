//! Interrupting an evaluation keeps the worker process and what it had
//! evaluated (vfs/src/process.rs): real mounts, real evaluations, watched
//! through the worker's pid and `builtins.trace` lines in the daemon's log
//! (the worker's stderr is the daemon's).
//!
//! Needs /dev/fuse and root (or fusermount3); skipped without /dev/fuse.

mod support;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::thread::sleep;
use std::time::{Duration, Instant};
use support::{assert_eio, fuse_available, stderr, stdout, timed, Mount, TempDir};

/// How long a read-ahead may keep a request waiting before it is
/// interrupted (`READ_AHEAD_PATIENCE` in vfs/src/service.rs).
const PATIENCE: Duration = Duration::from_secs(2);

/// How long an interrupted worker may take to stop (`RESUME_BOUND` in
/// vfs/src/process.rs).
const RESUME_BOUND: Duration = Duration::from_secs(1);

/// How many times the log shows the trace `message`.
fn traces(mount: &Mount, message: &str) -> usize {
    mount.log_count(&format!("trace: {message}"))
}

/// A read-ahead that runs for seconds (a listing whose entry loops) is
/// interrupted by a request for another value after the read-ahead's
/// patience; the request is then served by the same worker, which still
/// holds what it had evaluated before, and the interrupted value evaluates
/// correctly when it is asked for.
#[test]
fn an_interrupted_read_ahead_keeps_the_worker_and_its_values() {
    if !fuse_available() {
        return;
    }
    // `slow.value` takes several seconds (25 million additions in the
    // bytecode loop); `first` and `second` share `base`, whose evaluation
    // prints a trace.
    let mount = Mount::expr(
        r#"let base = builtins.trace "base-evaluated" 1000; in {
             first = base + 1;
             second = base + 2;
             d = { slow = { value = builtins.foldl'
               (a: b: a + builtins.foldl' (x: y: x + y) 0 (builtins.genList (x: x) 1000))
               0 (builtins.genList (x: x) 25000); }; };
           }"#,
        &["--eval-timeout", "120"],
    );
    assert_eq!(stdout(&mount.sh("cat first")), "1001");
    assert_eq!(traces(&mount, "base-evaluated"), 1, "{}", mount.log_text());
    let workers = mount.worker_pids();
    assert_eq!(workers.len(), 1, "{workers:?}");

    // Listing `d` reads `d/slow` ahead, with its entries' stats: the loop.
    let ls = mount.sh("ls d");
    assert_eq!(stdout(&ls), "slow\n", "{}", stderr(&ls));
    sleep(Duration::from_millis(300));
    let (out, took) = timed(|| mount.sh("cat second"));
    assert_eq!(stdout(&out), "1002", "{}", stderr(&out));
    assert!(
        took < PATIENCE + Duration::from_millis(1500),
        "{took:?}\n{}",
        mount.log_text()
    );
    let log = mount.log_text();
    assert!(
        log.contains("list+ d.slow: nobody waits any more"),
        "the read-ahead was not interrupted:\n{log}"
    );
    assert!(log.contains("keeps its values"), "{log}");
    // The same worker, and `base` was not evaluated again.
    assert_eq!(mount.worker_pids(), workers, "{log}");
    assert_eq!(traces(&mount, "base-evaluated"), 1, "{log}");

    // The interrupted value is evaluated anew, to the right answer.
    let value = mount.sh_within(120, "cat d/slow/value");
    assert_eq!(stdout(&value), "12487500000", "{}", stderr(&value));
    assert_eq!(mount.worker_pids(), workers, "{}", mount.log_text());
}

/// A worker that does not stop when interrupted (blocked opening a FIFO
/// nobody writes to: no flag is looked at in a system call) is killed
/// after the interrupt's bound and replaced; the mount keeps serving, and
/// the replacement evaluates the root anew.
#[test]
fn a_worker_that_ignores_the_interrupt_is_killed_and_replaced() {
    if !fuse_available() {
        return;
    }
    let dir = TempDir::new();
    let fifo = dir.0.join("fifo");
    let c_fifo = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    let expr = format!(
        r#"let base = builtins.trace "base-evaluated" 1000; in {{
             first = base + 1;
             second = base + 2;
             stuck = builtins.readFile {};
           }}"#,
        fifo.display()
    );
    let mount = Mount::expr(&expr, &["--eval-timeout", "2"]);
    assert_eq!(stdout(&mount.sh("cat first")), "1001");
    let workers = mount.worker_pids();
    assert_eq!(workers.len(), 1, "{workers:?}");

    let (out, took) = timed(|| mount.sh("cat stuck"));
    assert_eio("cat stuck", &out);
    assert!(took < Duration::from_secs(4), "{took:?}");
    // The next request waits at most for the bound, then gets a fresh
    // worker.
    let (out, took) = timed(|| mount.sh("cat second"));
    assert_eq!(stdout(&out), "1002", "{}", stderr(&out));
    assert!(
        took < RESUME_BOUND + Duration::from_secs(2),
        "{took:?}\n{}",
        mount.log_text()
    );
    let log = mount.log_text();
    assert!(log.contains("did not stop within"), "{log}");
    let now = mount.worker_pids();
    assert_eq!(now.len(), 1, "{now:?}\n{log}");
    assert_ne!(now, workers, "the stuck worker is still there:\n{log}");
    // The fresh worker evaluated `base` again: nothing was kept.
    assert_eq!(traces(&mount, "base-evaluated"), 2, "{log}");
    // The old worker is gone, not left blocked on the FIFO.
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::path::Path::new(&format!("/proc/{}", workers[0])).exists() {
        assert!(
            Instant::now() < deadline,
            "worker {} still runs",
            workers[0]
        );
        sleep(Duration::from_millis(50));
    }
}
