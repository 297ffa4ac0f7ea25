//! `mount -t fuse.attrfs` and /etc/fstab through `mount.fuse3`: the real
//! mount(8) and mount.fuse3 run `attrfs SOURCE MOUNTPOINT -o OPTIONS`,
//! which must return once the filesystem is mounted (the daemon stays),
//! or fail with the evaluator's message and mount nothing.
//!
//! Needs root, /dev/fuse and fuse3's mount.fuse3 (contrib/test.sh installs
//! it); skipped with a message otherwise. mount(8) runs helpers with a
//! fixed PATH, so the tests name the binary absolutely
//! (`mount -t fuse BIN#SOURCE`) or call mount.fuse3 themselves with the
//! binary's directory on PATH (`-t fuse.attrfs` with an `attrfs#SOURCE`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};
use support::*;

fn mount_fuse3() -> Option<PathBuf> {
    ["/sbin/mount.fuse3", "/usr/sbin/mount.fuse3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn can_run() -> bool {
    // SAFETY: getuid(2) has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    if !root || mount_fuse3().is_none() {
        eprintln!("skipping: needs root and mount.fuse3 (apt-get install fuse3)");
        return false;
    }
    fuse_available()
}

fn demo() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib/examples/demo.nix")
        .canonicalize()
        .expect("contrib/examples/demo.nix")
        .display()
        .to_string()
}

/// A mountpoint in a temp directory; whatever is mounted there (and its
/// daemon) is gone when this is dropped.
struct Helped {
    mountpoint: PathBuf,
    _dir: TempDir,
}

impl Helped {
    fn new() -> Self {
        let dir = TempDir::new();
        let mountpoint = dir.0.join("mnt");
        std::fs::create_dir(&mountpoint).expect("create mountpoint");
        Helped {
            mountpoint,
            _dir: dir,
        }
    }

    fn sh(&self, script: &str) -> Output {
        Command::new("timeout")
            .args(["60", "sh", "-c", script])
            .current_dir(&self.mountpoint)
            .output()
            .expect("run sh")
    }

    /// Pids of `attrfs mount` daemons serving this mountpoint.
    fn daemons(&self) -> Vec<u32> {
        let wanted = self.mountpoint.to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| {
                let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                let is_daemon =
                    words.get(1) == Some(&&b"mount"[..]) && words.contains(&wanted.as_bytes());
                is_daemon.then_some(pid)
            })
            .collect()
    }

    fn wait_unmounted(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while is_mounted(&self.mountpoint) || !self.daemons().is_empty() {
            if Instant::now() > deadline {
                return false;
            }
            sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Helped {
    fn drop(&mut self) {
        if is_mounted(&self.mountpoint) {
            let _ = Command::new(BIN)
                .arg("umount")
                .arg(&self.mountpoint)
                .status();
        }
        if !self.wait_unmounted(Duration::from_secs(10)) {
            for pid in self.daemons() {
                // SAFETY: kill(2) on a daemon this test started.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
    }
}

#[test]
fn mount_t_fuse_returns_once_mounted_and_the_daemon_stays() {
    if !can_run() {
        return;
    }
    let m = Helped::new();
    let out = Command::new("mount")
        .args(["-t", "fuse"])
        .arg(format!("{BIN}#{}", demo()))
        .arg(&m.mountpoint)
        .args(["-o", "ro,allow_other,noatime"])
        .output()
        .expect("run mount");
    assert!(out.status.success(), "mount: {}", stderr(&out));
    // mount(8) has returned: the filesystem is already there.
    let line = mount_line(&m.mountpoint).expect("mounted when mount(8) returns");
    assert!(line.contains(" fuse.attrfs ro,"), "{line}");
    assert!(line.contains("allow_other"), "{line}");
    assert_eq!(stdout(&m.sh("cat answer")), "42");
    assert_eq!(stdout(&m.sh("cat users/alice/shell")), "/bin/bash");
    assert_eq!(m.daemons().len(), 1, "one daemon serves the mount");
    // `attrfs umount` (or umount(8)) ends it, daemon included.
    let umount = Command::new(BIN)
        .arg("umount")
        .arg(&m.mountpoint)
        .output()
        .expect("run attrfs umount");
    assert!(umount.status.success(), "{}", stderr(&umount));
    assert!(
        m.wait_unmounted(Duration::from_secs(10)),
        "the daemon stays"
    );
}

#[test]
fn fstab_shape_through_mount_fuse3_with_attrfs_options() {
    if !can_run() {
        return;
    }
    let m = Helped::new();
    let bin_dir = Path::new(BIN).parent().expect("binary directory");
    // What mount(8) runs for the fstab line
    //   attrfs#DEMO  MNT  fuse.attrfs  ro,allow_other,attr=users,eval_timeout=5  0 0
    let out = Command::new(mount_fuse3().expect("mount.fuse3"))
        .arg(format!("attrfs#{}", demo()))
        .arg(&m.mountpoint)
        .args(["-o", "ro,allow_other,attr=users,eval_timeout=5"])
        .args(["-t", "fuse.attrfs"])
        .env(
            "PATH",
            format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin_dir.display()),
        )
        .output()
        .expect("run mount.fuse3");
    assert!(out.status.success(), "mount.fuse3: {}", stderr(&out));
    assert!(mount_line(&m.mountpoint).is_some_and(|l| l.contains(" fuse.attrfs ")));
    // attr=users mounted only that attribute.
    assert_eq!(stdout(&m.sh("ls")), "alice\nbob\n");
    let umount = Command::new("umount")
        .arg(&m.mountpoint)
        .output()
        .expect("run umount");
    assert!(umount.status.success(), "{}", stderr(&umount));
    assert!(
        m.wait_unmounted(Duration::from_secs(10)),
        "the daemon stays"
    );
}

#[test]
fn a_failing_source_fails_mount_with_its_message_and_mounts_nothing() {
    if !can_run() {
        return;
    }
    let m = Helped::new();
    let bad = m.mountpoint.parent().unwrap().join("bad.nix");
    std::fs::write(&bad, "{ a = 1").unwrap();
    for (source, says) in [
        (bad.display().to_string(), "syntax error"),
        ("/nonexistent/attrfs.nix".to_string(), "No such file"),
    ] {
        let out = Command::new("mount")
            .args(["-t", "fuse"])
            .arg(format!("{BIN}#{source}"))
            .arg(&m.mountpoint)
            .output()
            .expect("run mount");
        assert!(!out.status.success(), "{source} mounted");
        assert!(stderr(&out).contains(says), "{source}: {}", stderr(&out));
        assert!(!is_mounted(&m.mountpoint));
        assert!(m.daemons().is_empty());
    }
    // Options attrfs cannot honour are refused before mounting, too.
    let out = Command::new("mount")
        .args(["-t", "fuse"])
        .arg(format!("{BIN}#{}", demo()))
        .arg(&m.mountpoint)
        .args(["-o", "attr"])
        .output()
        .expect("run mount");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("-o attr: needs a value"),
        "{}",
        stderr(&out)
    );
    assert!(!is_mounted(&m.mountpoint));
}

/// `cat FILE` as the user nobody (65534), through util-linux's setpriv.
fn cat_as_nobody(file: &Path) -> Option<Output> {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(file)
        .output()
        .ok()
}

#[test]
fn a_mount_is_private_to_root_unless_allow_other() {
    if !can_run() || cat_as_nobody(Path::new("/dev/null")).is_none() {
        return;
    }
    for (options, readable) in [("ro", false), ("ro,allow_other,default_permissions", true)] {
        // The temp directories are 0755: what refuses nobody is FUSE.
        let m = Helped::new();
        let out = Command::new("mount")
            .args(["-t", "fuse"])
            .arg(format!("{BIN}#{}", demo()))
            .arg(&m.mountpoint)
            .args(["-o", options])
            .output()
            .expect("run mount");
        assert!(out.status.success(), "{options}: {}", stderr(&out));
        let cat = cat_as_nobody(&m.mountpoint.join("greeting")).expect("setpriv");
        assert_eq!(
            cat.status.success(),
            readable,
            "{options}: {}",
            stderr(&cat)
        );
        if readable {
            assert_eq!(stdout(&cat), "Hello from attrfs!\n");
        } else {
            assert!(
                stderr(&cat).contains("Permission denied"),
                "{}",
                stderr(&cat)
            );
        }
    }
}
