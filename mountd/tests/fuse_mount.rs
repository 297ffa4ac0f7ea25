//! Real FUSE mounts of the built-in fake tree (`attrfs mount --fake-tree`),
//! exercised with the tools a user would use: `ls`, `cat`, `stat`, `find`,
//! `grep -r`, `getfattr`, `attr`.
//!
//! Needs /dev/fuse and root (or fusermount3); the tests are skipped with a
//! message where /dev/fuse is missing. Every mount is torn down by a Drop
//! guard, so a failing test does not leave a stale mount behind.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};
use support::*;

impl Mount {
    /// `attrfs mount --fake-tree EXTRA... MOUNTPOINT`.
    fn start(extra: &[&str]) -> Mount {
        Mount::spawn(&[&["--fake-tree"], extra].concat())
    }
}

#[test]
fn mounts_as_fuse_attrfs_read_only() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&[]);
    let line = mount_line(&mount.mountpoint).unwrap();
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[2], "fuse.attrfs", "{line}");
    assert!(fields[3].split(',').any(|o| o == "ro"), "{line}");
}

#[test]
fn lists_and_reads_values() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&[]);
    // Sizes are exact before anything was read.
    let sizes = mount.sh("stat -c '%n %s %F' hello answer ratio yes nothing nested/a/b");
    assert_eq!(
        stdout(&sizes),
        "hello 14 regular file\nanswer 2 regular file\nratio 4 regular file\n\
         yes 4 regular file\nnothing 4 regular file\nnested/a/b 5 regular file\n",
        "{}",
        stderr(&sizes)
    );
    let cat = mount.sh("cat hello answer; echo; cat ratio yes nothing nested/a/b nested/list/1");
    assert_eq!(stdout(&cat), "Hello, world!\n42\n0.75truenulldeep\ntwo");

    let ls = mount.sh("ls -1a");
    let mut expected = vec![
        ".", "..", "%", "%2E", "%2E.", "%2Edrv", "100%25", "a%2Fb", "answer", "big", "broken",
        "fn", "hang", "hello", "nested", "nothing", "path", "pkg", "ratio", "self", "slow", "yes",
    ];
    expected.sort_unstable();
    assert_eq!(stdout(&ls).lines().collect::<Vec<_>>(), expected);

    // An attribute name too long for a file name is left out.
    let nested = mount.sh("ls nested");
    assert!(nested.status.success(), "{}", stderr(&nested));
    assert_eq!(stdout(&nested), "a\nlist\nneedle\n");
    let list = mount.sh("ls nested/list; cat nested/list/2/three");
    assert_eq!(stdout(&list), "0\n1\n2\n3");
    let big = mount.sh("ls big | wc -l; cat big/9999");
    assert_eq!(stdout(&big), "10000\n9999");

    let types = mount.sh("stat -c '%F' big path self");
    assert_eq!(stdout(&types), "directory\nsymbolic link\nsymbolic link\n");
    let links = mount.sh("readlink path self; cat self/hello");
    assert_eq!(stdout(&links), "/etc/hostname\n.\nHello, world!\n");

    // Inodes are stable and distinct.
    let inodes = mount.sh("stat -c %i hello answer hello");
    let inodes: Vec<String> = stdout(&inodes).lines().map(str::to_owned).collect();
    assert_eq!(inodes[0], inodes[2]);
    assert_ne!(inodes[0], inodes[1]);
    let root = mount.sh("stat -c %i .");
    assert_eq!(stdout(&root), "1\n");
}

#[test]
fn awkward_names_round_trip() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&[]);
    let cat = mount.sh("cat % %2E %2E. %2Edrv a%2Fb 100%25");
    assert_eq!(
        stdout(&cat),
        "empty name\ndot\ndotdot\nan attribute called .drv\nslash\npercent\n",
        "{}",
        stderr(&cat)
    );
    // Names that encode nothing, or not canonically, do not exist.
    for name in ["a%2fb", ".hidden", "%2E%2E", "%61nswer", "a/b"] {
        let out = mount.sh(&format!("cat '{name}'"));
        assert!(!out.status.success(), "{name} exists");
        assert!(
            stderr(&out).contains("No such file or directory")
                || stderr(&out).contains("Not a directory"),
            "{name}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn derivations_have_drv_and_context() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&[]);
    let ls = mount.sh("ls -a pkg");
    assert_eq!(
        stdout(&ls),
        ".\n..\n.context\n.drv\nbuilder\ndrvPath\nname\nout\noutPath\nsystem\ntype\n"
    );
    let drv = mount.sh("cat pkg/.drv");
    assert!(
        stdout(&drv).starts_with("Derive([(\"out\""),
        "{}",
        stdout(&drv)
    );
    let context = mount.sh("cat pkg/.context");
    assert_eq!(stdout(&context).lines().count(), 2);
    let out = mount.sh("readlink pkg/out");
    assert_eq!(
        stdout(&out),
        "/nix/store/00000000000000000000000000000000-hello-2.12\n"
    );
    let xattrs = mount.sh("getfattr --only-values -n user.nix.drvPath pkg; echo; getfattr -n user.nix.type --only-values pkg");
    assert_eq!(
        stdout(&xattrs),
        "/nix/store/11111111111111111111111111111111-hello-2.12.drv\nderivation"
    );
}

#[test]
fn failing_values_are_well_formed_entries_that_give_eio_on_open() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&[]);
    // Listing, stat-ing and walking say nothing about the failing value...
    // (Only `broken`: the fake tree also holds a value that hangs.)
    for command in [
        "ls",
        "ls -l --color=always broken",
        "stat broken",
        "find broken",
    ] {
        let out = mount.sh(command);
        assert!(out.status.success(), "{command}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{command}");
    }
    assert!(stdout(&mount.sh("ls")).lines().any(|l| l == "broken"));
    // ...which shows as an unreadable empty regular file.
    let mode = mount.sh("stat -c '%A %s %F' broken");
    assert_eq!(stdout(&mode), "---------- 0 regular empty file\n");
    // Reading it fails with EIO, as for any unreadable file.
    for command in ["cat broken", "grep -r x broken"] {
        let out = mount.sh(command);
        assert!(!out.status.success(), "{command} succeeded");
        assert!(
            stderr(&out).contains("Input/output error"),
            "{command}: {}",
            stderr(&out)
        );
    }
    // The message is an extended attribute, for getfattr as for attr.
    let error = mount.sh("getfattr --only-values -n user.nix.error broken");
    assert_eq!(
        stdout(&error),
        "error: this value is broken",
        "{}",
        stderr(&error)
    );
    let all = mount.sh("getfattr -d -m user.nix broken");
    assert!(
        stdout(&all).contains("user.nix.error=\"error: this value is broken\""),
        "{}",
        stdout(&all)
    );
    let error = mount.sh("attr -q -g nix.error broken");
    assert_eq!(stdout(&error), "error: this value is broken");
    // Children of a failing value fail the same way.
    let below = mount.sh("cat broken/x");
    assert!(!below.status.success());
    assert!(mount.log_text().contains("this value is broken"));
}

#[test]
fn a_hanging_value_times_out_and_the_mount_keeps_serving() {
    if !fuse_available() {
        return;
    }
    // Bounds are generous: CI runs these next to CPU-heavy suites.
    let mount = Mount::start(&["--eval-timeout", "2"]);
    let (out, took) = timed(|| mount.sh("cat hang"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Input/output error"),
        "{}",
        stderr(&out)
    );
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The next (uncached) request is served at once, not after another
    // deadline: the hanging evaluation was interrupted.
    let (out, took) = timed(|| mount.sh("cat nested/a/b"));
    assert_eq!(stdout(&out), "deep\n");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // A timeout is not cached as an answer: the hang is tried again.
    let (out, took) = timed(|| mount.sh("stat hang"));
    assert!(!out.status.success());
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    let log = mount.log_text();
    assert!(log.contains("interrupting the evaluation"), "{log}");
    assert!(log.contains("failing the request with EIO"), "{log}");
}

#[test]
fn cached_answers_do_not_wait_for_a_busy_evaluator() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&["--eval-timeout", "6"]);
    let first = mount.sh("getfattr --only-values -n user.nix.type hello");
    assert_eq!(stdout(&first), "string");
    let mut hang = Command::new("cat")
        .arg(mount.path("hang"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(300));
    // getxattr is not cached by the kernel: this is answered by a FUSE
    // thread from attrfs's cache while the evaluator is busy with `hang`.
    let (again, took) = timed(|| mount.sh("getfattr --only-values -n user.nix.type hello"));
    assert_eq!(stdout(&again), "string");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let _ = hang.wait();
}

#[test]
fn an_abandoned_reader_does_not_leave_the_evaluation_running() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&["--eval-timeout", "2"]);
    let started = Instant::now();
    let reader = Command::new("cat")
        .arg(mount.path("hang"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(300));
    // Ctrl-C on the reader.
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(reader.id() as i32, libc::SIGINT);
    }
    let mut reader = reader;
    let _ = reader.wait();
    // The evaluation is bounded by the deadline: a new request is served
    // within it (plus slack), not blocked forever behind `hang`.
    let out = mount.sh("cat nested/needle");
    assert_eq!(stdout(&out), "a haystack with a needle in it\n");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn writes_fail_with_erofs() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&[]);
    for command in [
        "touch new",
        "echo x > hello",
        "echo x >> hello",
        "mkdir dir",
        "rm hello",
        "mv hello moved",
        "ln -s hello link",
        "setfattr -n user.x -v 1 hello",
        "chmod 777 hello",
    ] {
        let out = mount.sh(command);
        assert!(!out.status.success(), "{command} succeeded");
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{command}: {}",
            stderr(&out)
        );
    }
    assert_eq!(stdout(&mount.sh("cat hello")), "Hello, world!\n");
}

#[test]
fn unknown_xattrs_answer_enodata_quickly() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&["--eval-timeout", "10"]);
    for (name, file) in [
        ("security.selinux", "hello"),
        ("system.posix_acl_access", "nested"),
        ("user.other", "hello"),
        ("trusted.x", "big"),
    ] {
        let (out, took) = timed(|| mount.sh(&format!("getfattr -h -n {name} {file}")));
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("No such attribute"),
            "{name} on {file}: {}",
            stderr(&out)
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    let all = mount.sh("getfattr -d hello");
    assert!(
        stdout(&all).contains("user.nix.type=\"string\""),
        "{}",
        stdout(&all)
    );
    assert!(
        stdout(&all).contains("user.nix.position="),
        "{}",
        stdout(&all)
    );
}

#[test]
fn find_and_grep_finish() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&["--eval-timeout", "1"]);
    let (find, took) = timed(|| mount.sh("find . | wc -l"));
    let count: usize = stdout(&find).trim().parse().unwrap();
    assert!(count > 10_000, "{count}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    // The failing value is a well-formed entry: find has nothing to say
    // about it (the hanging one times out, and find goes on).
    assert!(!stderr(&find).contains("broken"), "{}", stderr(&find));
    let grep = mount.sh("grep -r needle nested");
    assert_eq!(
        stdout(&grep),
        "nested/needle:a haystack with a needle in it\n"
    );
    let grep = mount.sh("grep -rl Hello --exclude-dir=big --exclude=hang .");
    assert!(
        stdout(&grep).lines().any(|l| l == "./hello"),
        "{}",
        stdout(&grep)
    );
}

#[test]
fn sigterm_and_sigint_unmount_cleanly() {
    if !fuse_available() {
        return;
    }
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut mount = Mount::start(&[]);
        assert_eq!(stdout(&mount.sh("cat hello")), "Hello, world!\n");
        mount.signal(signal);
        assert_eq!(
            mount.wait_exit(Duration::from_secs(10)),
            Some(true),
            "{}",
            mount.log_text()
        );
        assert!(!is_mounted(&mount.mountpoint));
    }
}

#[test]
fn a_busy_mount_is_detached_on_sigterm() {
    if !fuse_available() {
        return;
    }
    let mut mount = Mount::start(&[]);
    // A process sitting in the mount makes a plain unmount fail with EBUSY.
    let mut sitter = Command::new("sh")
        .args(["-c", "sleep 30"])
        .current_dir(&mount.mountpoint)
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(200));
    mount.signal(libc::SIGTERM);
    let exited = mount.wait_exit(Duration::from_secs(15));
    let _ = sitter.kill();
    let _ = sitter.wait();
    assert_eq!(exited, Some(true), "{}", mount.log_text());
    assert!(!is_mounted(&mount.mountpoint));
}

#[test]
fn attrfs_umount_unmounts() {
    if !fuse_available() {
        return;
    }
    let mut mount = Mount::start(&[]);
    let out = Command::new(BIN)
        .arg("umount")
        .arg(&mount.mountpoint)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        mount.wait_exit(Duration::from_secs(10)),
        Some(true),
        "{}",
        mount.log_text()
    );
    assert!(!is_mounted(&mount.mountpoint));
}

#[test]
fn refuses_missing_nonempty_and_busy_mountpoints() {
    if !fuse_available() {
        return;
    }
    let dir = TempDir::new();
    let run = |mountpoint: &Path| {
        Command::new(BIN)
            .args(["mount", "--fake-tree"])
            .arg(mountpoint)
            .output()
            .unwrap()
    };
    let missing = run(&dir.0.join("nope"));
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("does not exist"),
        "{}",
        stderr(&missing)
    );

    let full = dir.0.join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("file"), "x").unwrap();
    let nonempty = run(&full);
    assert!(!nonempty.status.success());
    assert!(
        stderr(&nonempty).contains("not empty"),
        "{}",
        stderr(&nonempty)
    );

    let file = run(&full.join("file"));
    assert!(!file.status.success());
    assert!(
        stderr(&file).contains("not a directory"),
        "{}",
        stderr(&file)
    );

    let mount = Mount::start(&[]);
    let busy = run(&mount.mountpoint);
    assert!(!busy.status.success());
    assert!(stderr(&busy).contains("busy"), "{}", stderr(&busy));
    assert!(is_mounted(&mount.mountpoint));
}

#[test]
fn the_fusermount3_path_also_mounts_fuse_attrfs_and_unmounts() {
    if !fuse_available() {
        return;
    }
    // auto_unmount goes through fusermount3 (the unprivileged path) even
    // as root.
    let mut mount = Mount::start(&["-o", "auto_unmount,allow_root"]);
    let line = mount_line(&mount.mountpoint).unwrap();
    assert_eq!(line.split(' ').nth(2), Some("fuse.attrfs"), "{line}");
    assert_eq!(stdout(&mount.sh("cat hello")), "Hello, world!\n");
    mount.signal(libc::SIGTERM);
    assert_eq!(
        mount.wait_exit(Duration::from_secs(15)),
        Some(true),
        "{}",
        mount.log_text()
    );
    assert!(!is_mounted(&mount.mountpoint), "{}", mount.log_text());
}

#[test]
fn auto_unmount_without_allow_other_is_refused_before_mounting() {
    if !fuse_available() {
        return;
    }
    // fusermount3 refuses auto_unmount for a mount only its owner may
    // use; attrfs says so itself, and mounts nothing.
    let dir = TempDir::new();
    let mountpoint = dir.0.join("mnt");
    fs::create_dir(&mountpoint).unwrap();
    let out = Command::new(BIN)
        .args(["mount", "--fake-tree", "-o", "auto_unmount"])
        .arg(&mountpoint)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("auto_unmount needs allow_other or allow_root"),
        "{}",
        stderr(&out)
    );
    assert!(!is_mounted(&mountpoint));
}

#[test]
fn lookups_do_not_wait_for_a_slow_sibling() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::start(&["--eval-timeout", "6"]);
    let mut hang = Command::new("cat")
        .arg(mount.path("hang"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(300));
    // `hang`'s lookup is waiting for the evaluator; a lookup of a sibling
    // the cache can answer (here: a name that encodes nothing) must not be
    // serialised behind it by the kernel.
    let (out, took) = timed(|| mount.sh("stat .hidden"));
    assert!(stderr(&out).contains("No such file"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(3), "{took:?}");
    let _ = hang.wait();
}

#[test]
fn a_daemon_that_dies_does_not_leave_a_stale_mount() {
    if !fuse_available() {
        return;
    }
    let mut mount = Mount::start(&[]);
    assert_eq!(stdout(&mount.sh("cat hello")), "Hello, world!\n");
    // SIGKILL: no chance to unmount; the helper started at mount time must.
    mount.signal(libc::SIGKILL);
    assert_eq!(mount.wait_exit(Duration::from_secs(10)), Some(false));
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_mounted(&mount.mountpoint) {
        assert!(
            Instant::now() < deadline,
            "still mounted after the daemon died"
        );
        sleep(Duration::from_millis(50));
    }
}
