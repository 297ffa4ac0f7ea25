//! A whole session over a socket pair standing in for `/dev/fuse`: the
//! test plays the kernel, writing requests laid out as `fuse.h` says and
//! reading the replies, and checks the handshake, the dispatch of each
//! request, replies sent from another thread, what the session answers on
//! its own (ENOSYS, EACCES, EIO for a malformed message, nothing for
//! FORGET), and the clean end when the kernel goes away.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use attrfs_fuse::abi::{init_flag, opcode};
use attrfs_fuse::{
    Acl, Errno, FileAttr, FileType, Filesystem, KernelConfig, Reply, ReplyAttr, ReplyDirectory,
    ReplyEntry, Session, SessionConfig,
};

/// A two-entry filesystem: `/file` (inode 2) and `/thunk` (inode 3, type
/// unknown to readdir).
#[derive(Default)]
struct Tiny {
    forgotten: Arc<AtomicU64>,
}

fn attr(ino: u64, kind: FileType) -> FileAttr {
    let t = SystemTime::UNIX_EPOCH;
    FileAttr {
        ino,
        size: 4,
        blocks: 1,
        atime: t,
        mtime: t,
        ctime: t,
        kind,
        perm: 0o444,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
    }
}

impl Filesystem for Tiny {
    fn init(&mut self, config: &mut KernelConfig) -> io::Result<()> {
        config.request(init_flag::DO_READDIRPLUS);
        config.request(init_flag::CACHE_SYMLINKS);
        Ok(())
    }

    fn lookup(&self, parent: u64, name: &[u8], reply: ReplyEntry) {
        match (parent, name) {
            // Answered later, from another thread.
            (1, b"file") => {
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(20));
                    reply.entry(&Duration::from_secs(1), &attr(2, FileType::RegularFile), 0);
                });
            }
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn forget(&self, _ino: u64, nlookup: u64) {
        self.forgotten.fetch_add(nlookup, Ordering::SeqCst);
    }

    fn getattr(&self, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        reply.attr(&Duration::from_secs(1), &attr(ino, FileType::Directory));
    }

    fn readdir(&self, _ino: u64, _fh: u64, offset: u64, mut reply: ReplyDirectory) {
        let entries = [
            (2, Some(FileType::RegularFile), &b"file"[..]),
            (3, None, &b"thunk"[..]),
        ];
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(*ino, i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn modify(&self, _opcode: u32, _ino: u64, reply: Reply) {
        reply.error(Errno::EROFS);
    }
}

/// A `fuse_in_header` and `body`, from user `uid`.
fn request(opcode: u32, unique: u64, nodeid: u64, uid: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&((40 + body.len()) as u32).to_le_bytes());
    m.extend_from_slice(&opcode.to_le_bytes());
    m.extend_from_slice(&unique.to_le_bytes());
    m.extend_from_slice(&nodeid.to_le_bytes());
    m.extend_from_slice(&uid.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(body);
    m
}

/// The reply to read next: `(unique, error, body)`.
fn reply(kernel: &UnixDatagram) -> (u64, i32, Vec<u8>) {
    let mut buf = vec![0u8; 1 << 16];
    let n = kernel.recv(&mut buf).unwrap();
    let len = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
    assert_eq!(len, n, "the header's length");
    let error = i32::from_le_bytes(buf[4..8].try_into().unwrap());
    let unique = u64::from_le_bytes(buf[8..16].try_into().unwrap());
    (unique, error, buf[16..n].to_vec())
}

/// A connected `SOCK_SEQPACKET` pair: message boundaries like
/// `/dev/fuse`, and end of file when one side closes.
fn seqpacket_pair() -> (OwnedFd, UnixDatagram) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair returns.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: both descriptors were just created and are owned here.
    // UnixDatagram's send/recv work on any connected message socket.
    unsafe {
        (
            OwnedFd::from_raw_fd(fds[0]),
            UnixDatagram::from_raw_fd(fds[1]),
        )
    }
}

fn init_body(minor: u32, flags: u32) -> Vec<u8> {
    let mut body = Vec::new();
    for word in [7, minor, 131072, flags] {
        body.extend_from_slice(&u32::to_le_bytes(word));
    }
    body.extend_from_slice(&[0; 48]);
    body
}

#[test]
fn a_session_from_init_to_the_end() {
    let (fd, kernel) = seqpacket_pair();
    let offered =
        (init_flag::ASYNC_READ | init_flag::DO_READDIRPLUS | init_flag::NO_OPENDIR_SUPPORT) as u32;
    kernel
        .send(&request(opcode::INIT, 1, 0, 0, &init_body(41, offered)))
        .unwrap();
    let fs = Tiny::default();
    let forgotten = fs.forgotten.clone();
    let config = SessionConfig {
        threads: 2,
        acl: Acl::Owner,
    };
    let session = Session::new(fs, fd, config).unwrap();
    let (unique, error, body) = reply(&kernel);
    assert_eq!((unique, error, body.len()), (1, 0, 64));
    let word = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().unwrap());
    assert_eq!((word(0), word(4), word(8)), (7, 38, 131072));
    // Asked and offered: ASYNC_READ (always) and DO_READDIRPLUS; not
    // CACHE_SYMLINKS (not offered), not NO_OPENDIR_SUPPORT (not asked).
    assert_eq!(
        u64::from(word(12)),
        init_flag::ASYNC_READ | init_flag::DO_READDIRPLUS
    );

    let running = thread::spawn(move || session.run());
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };

    // LOOKUP, answered from another thread.
    kernel
        .send(&request(opcode::LOOKUP, 2, 1, me, b"file\0"))
        .unwrap();
    let (unique, error, body) = reply(&kernel);
    assert_eq!((unique, error, body.len()), (2, 0, 128));
    assert_eq!(&body[..8], &2u64.to_le_bytes());
    kernel
        .send(&request(opcode::LOOKUP, 3, 1, me, b"nope\0"))
        .unwrap();
    assert_eq!(reply(&kernel), (3, -libc::ENOENT, vec![]));

    // GETATTR with its fuse_getattr_in.
    kernel
        .send(&request(opcode::GETATTR, 4, 1, me, &[0; 16]))
        .unwrap();
    let (unique, error, body) = reply(&kernel);
    assert_eq!((unique, error, body.len()), (4, 0, 104));

    // READDIR: a known type and DT_UNKNOWN.
    let mut read_in = Vec::new();
    read_in.extend_from_slice(&0u64.to_le_bytes());
    read_in.extend_from_slice(&0u64.to_le_bytes());
    read_in.extend_from_slice(&4096u32.to_le_bytes());
    read_in.extend_from_slice(&[0; 20]);
    kernel
        .send(&request(opcode::READDIR, 5, 1, me, &read_in))
        .unwrap();
    let (unique, error, body) = reply(&kernel);
    assert_eq!((unique, error, body.len()), (5, 0, 32 + 32));
    assert_eq!(&body[20..24], &u32::from(libc::DT_REG).to_le_bytes());
    assert_eq!(&body[52..56], &u32::from(libc::DT_UNKNOWN).to_le_bytes());

    // FORGET and BATCH_FORGET take no reply; the next reply is STATFS's.
    kernel
        .send(&request(opcode::FORGET, 6, 2, me, &5u64.to_le_bytes()))
        .unwrap();
    // fuse_batch_forget_in (count 2, dummy), then two fuse_forget_one.
    let mut batch = Vec::new();
    for word in [2u32, 0] {
        batch.extend_from_slice(&word.to_le_bytes());
    }
    for word in [2u64, 1, 3, 2] {
        batch.extend_from_slice(&word.to_le_bytes());
    }
    kernel
        .send(&request(opcode::BATCH_FORGET, 7, 0, me, &batch))
        .unwrap();
    kernel
        .send(&request(opcode::STATFS, 8, 1, me, &[]))
        .unwrap();
    let (unique, error, body) = reply(&kernel);
    assert_eq!((unique, error, body.len()), (8, 0, 80));
    // Another thread may still be handling the forgets.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while forgotten.load(Ordering::SeqCst) != 5 + 1 + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "forgets not delivered"
        );
        thread::sleep(Duration::from_millis(5));
    }

    // Answered by the session or the defaults.
    kernel
        .send(&request(opcode::MKDIR, 9, 1, me, b"x\0"))
        .unwrap();
    assert_eq!(reply(&kernel), (9, -libc::EROFS, vec![]));
    kernel
        .send(&request(opcode::LSEEK, 10, 2, me, &[0; 24]))
        .unwrap();
    assert_eq!(reply(&kernel), (10, -libc::ENOSYS, vec![]));
    kernel
        .send(&request(
            opcode::INTERRUPT,
            11 | 1,
            0,
            me,
            &2u64.to_le_bytes(),
        ))
        .unwrap();
    assert_eq!(reply(&kernel), (11, -libc::ENOSYS, vec![]));
    kernel
        .send(&request(opcode::READ, 12, 2, me, &[0; 8]))
        .unwrap();
    assert_eq!(reply(&kernel), (12, -libc::EIO, vec![]), "malformed READ");
    kernel
        .send(&request(opcode::RELEASEDIR, 13, 1, me, &[0; 24]))
        .unwrap();
    assert_eq!(reply(&kernel), (13, 0, vec![]));
    // Another user, on a mount that serves only its owner.
    kernel
        .send(&request(opcode::GETATTR, 14, 1, me + 1, &[0; 16]))
        .unwrap();
    assert_eq!(reply(&kernel), (14, -libc::EACCES, vec![]));

    // The kernel goes away: the session ends cleanly.
    drop(kernel);
    assert!(running.join().unwrap().is_ok());
}

#[test]
fn a_kernel_too_old_or_not_starting_with_init_is_refused() {
    let (fd, kernel) = seqpacket_pair();
    kernel
        .send(&request(opcode::INIT, 1, 0, 0, &init_body(11, 0)))
        .unwrap();
    assert!(Session::new(Tiny::default(), fd, SessionConfig::default()).is_err());
    assert_eq!(reply(&kernel), (1, -libc::EPROTO, vec![]));

    let (fd, kernel) = seqpacket_pair();
    kernel
        .send(&request(opcode::GETATTR, 1, 1, 0, &[0; 16]))
        .unwrap();
    assert!(Session::new(Tiny::default(), fd, SessionConfig::default()).is_err());
    assert_eq!(reply(&kernel), (1, -libc::EIO, vec![]));

    let (fd, kernel) = seqpacket_pair();
    drop(kernel);
    let error = Session::new(Tiny::default(), fd, SessionConfig::default())
        .err()
        .unwrap();
    assert_eq!(error.kind(), io::ErrorKind::NotConnected);
}
