//! The harness of the real-FUSE tests: temp directories, a running
//! `attrfs mount` torn down by a Drop guard (so a failing test leaves no
//! stale mount), mount-table checks and shell helpers. Each test binary
//! uses part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_attrfs");

pub fn fuse_available() -> bool {
    if Path::new("/dev/fuse").exists() {
        true
    } else {
        eprintln!("skipping: /dev/fuse is missing");
        false
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("attrfs-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Only after the mount is gone (Mount drops first); never follow
        // into a still-mounted directory.
        if !is_mounted(&self.0.join("mnt")) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

pub fn is_mounted(path: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.to_string_lossy();
    mounts
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(&*path))
}

pub fn mount_line(path: &Path) -> Option<String> {
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.to_string_lossy();
    mounts
        .lines()
        .find(|line| line.split(' ').nth(1) == Some(&*path))
        .map(str::to_owned)
}

/// A running `attrfs mount`.
pub struct Mount {
    pub child: Option<Child>,
    pub mountpoint: PathBuf,
    pub log: PathBuf,
    /// The mount's scratch directory (the mountpoint is `mnt` in it).
    // Declared last: dropped after the unmount.
    pub dir: TempDir,
}

impl Mount {
    /// Runs `attrfs mount ARGS... MOUNTPOINT` on a fresh mountpoint and
    /// waits until the mount is up.
    pub fn spawn(args: &[&str]) -> Mount {
        Mount::start_within(args, Duration::from_secs(20))
    }

    /// Mounts the expression `expr` (`-E`), plus `extra` arguments.
    pub fn expr(expr: &str, extra: &[&str]) -> Mount {
        let mut args = vec!["-E", expr];
        args.extend_from_slice(extra);
        Mount::start_within(&args, Duration::from_secs(30))
    }

    /// Like [`Mount::spawn`], waiting up to `within` for the mount (the
    /// root of a big expression takes a while to evaluate).
    pub fn start_within<S: AsRef<OsStr>>(args: &[S], within: Duration) -> Mount {
        Mount::start_cached(args, None, "info", within)
    }

    /// Like [`Mount::start_within`], with the persistent answer cache in
    /// `cache` (`ATTRFS_CACHE_DIR`). Without one the mount runs with
    /// `--no-cache`, so that no test answers from what another stored.
    /// `log` is the daemon's `RUST_LOG`.
    pub fn start_cached<S: AsRef<OsStr>>(
        args: &[S],
        cache: Option<&Path>,
        log_filter: &str,
        within: Duration,
    ) -> Mount {
        let dir = TempDir::new();
        let mountpoint = dir.0.join("mnt");
        fs::create_dir(&mountpoint).unwrap();
        let log = dir.0.join("attrfs.log");
        let mut command = Command::new(BIN);
        command.arg("mount");
        match cache {
            Some(cache) => command.env("ATTRFS_CACHE_DIR", cache),
            None => command.arg("--no-cache"),
        };
        let child = command
            .args(args)
            .arg(&mountpoint)
            .env("RUST_LOG", log_filter)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn attrfs");
        let mut mount = Mount {
            child: Some(child),
            mountpoint,
            log,
            dir,
        };
        let deadline = Instant::now() + within;
        while !is_mounted(&mount.mountpoint) {
            if let Some(status) = mount.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "attrfs exited with {status} before mounting:\n{}",
                    mount.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "not mounted after {within:?}:\n{}",
                mount.log_text()
            );
            sleep(Duration::from_millis(20));
        }
        mount
    }

    /// Whether the daemon is still running.
    pub fn child_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many times the daemon's log (with its workers' output) holds
    /// `needle`: tests count evaluations and traces by it.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log_text().matches(needle).count()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.mountpoint.join(rel)
    }

    /// Runs a shell command inside the mountpoint, bounded by 120 s.
    pub fn sh(&self, script: &str) -> Output {
        self.sh_within(120, script)
    }

    /// Runs a shell command inside the mountpoint, bounded by `secs`
    /// (`timeout` exits 124 past it).
    pub fn sh_within(&self, secs: u64, script: &str) -> Output {
        Command::new("timeout")
            .arg(secs.to_string())
            .args(["sh", "-c", script])
            .current_dir(&self.mountpoint)
            .env("LC_ALL", "C")
            .output()
            .expect("run sh")
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of our own child.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// The daemon's evaluator worker processes (its children running
    /// `attrfs __worker`).
    pub fn worker_pids(&self) -> Vec<u32> {
        let out = Command::new("pgrep")
            .args(["-P", &self.pid().to_string(), "-f", "__worker"])
            .output()
            .expect("run pgrep");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Resident memory of the daemon and its workers together, in bytes.
    pub fn total_rss(&self) -> u64 {
        std::iter::once(self.pid() as u32)
            .chain(self.worker_pids())
            .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/statm")).ok())
            .filter_map(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages * 4096)
            .sum()
    }

    /// CPU time (user + system) the daemon has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the parenthesised command name; utime and stime are
        // fields 14 and 15 of the whole line.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
        Duration::from_millis(ticks * 1000 / hz.max(1))
    }

    /// Waits for the daemon to exit and returns whether it exited 0.
    pub fn wait_exit(&mut self, within: Duration) -> Option<bool> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status.success());
            }
            if Instant::now() > deadline {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal(libc::SIGTERM);
            if self.wait_exit(Duration::from_secs(15)).is_none() {
                if let Some(child) = self.child.as_mut() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        if is_mounted(&self.mountpoint) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
    }
}

/// Asserts that `output` (a command run on the mount) failed with EIO,
/// as reading a value that fails to evaluate does.
pub fn assert_eio(what: &str, output: &Output) {
    assert!(
        !output.status.success(),
        "{what} succeeded: {}",
        stdout(output)
    );
    assert!(
        stderr(output).contains("Input/output error"),
        "{what}: {}",
        stderr(output)
    );
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}
