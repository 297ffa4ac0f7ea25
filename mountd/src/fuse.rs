//! The FUSE adapter: kernel requests in, evaluation-service questions out.
//!
//! Every handler resolves its inode to an attribute path and asks the
//! [`EvalService`] with a completion callback that sends the reply. A cached
//! answer is replied on the FUSE thread at once; otherwise the reply is
//! sent later from a service thread, so FUSE threads never wait for the
//! evaluator, and every request is answered by the evaluation deadline at
//! the latest (the session answers FUSE_INTERRUPT with ENOSYS, so the
//! kernel stops sending them and the deadline is also what bounds a
//! request whose reader went away). The protocol itself is spoken by
//! `attrfs-fuse` (`fuse-wire/`).
//!
//! ## Failing values
//!
//! An attribute whose value throws is still a well-formed entry: `lookup`
//! and `getattr` succeed and show a regular file of size 0 with no
//! permission bits (`----------` in `ls -l`: visibly unreadable), and only
//! `open` fails, with EIO. So `ls`, `ls -l`, `find` and `stat` print nothing
//! on stderr for it, `cat` and `grep -r` report "Input/output error" as for
//! any unreadable file, and the message is in the log and in
//! `user.nix.error` (`getfattr -n user.nix.error`, `getfattr -d`).
//!
//! ## What each request evaluates
//!
//! `lookup`/`getattr` need the value's weak head normal form, and for a
//! file its bytes (rendered once: the service keeps them for `read`).
//! Extended attributes that cost evaluation (a derivation's `drvPath` and
//! `outPath`, a string's context, the position) are computed only by
//! `getxattr` of such a name or by `listxattr`, and then cached; the type
//! and the error come with the node.
//!
//! ## What else the kernel sees
//!
//! * Read-only: the mount is `ro`, and every modifying request that still
//!   arrives is answered EROFS. The mount does not use
//!   `default_permissions` (see mount.rs): with it, the kernel's permission
//!   check would `getattr` a failing value and its `getxattr` would fail too.
//! * Extended attributes outside `user.nix.*` (`security.selinux`,
//!   `system.posix_acl_access`, ...) answer ENODATA at once, without asking
//!   the evaluator; nothing answers ENOSYS.
//! * `st_size` of a file is its exact length from the first `stat`.
//! * Directory entries carry their real `d_type` when it is known without
//!   forcing the value (already-evaluated values, entries already stat'ed,
//!   the synthetic `.drv`/`.context`), and `DT_UNKNOWN` otherwise, never a
//!   guess: `ls --color`, `find`, `grep -r`, `du` and `os.scandir` then
//!   `stat` the entry, which evaluates it. READDIRPLUS entries come with
//!   their attributes, so with their real type.
//! * Nothing changes during a generation, so attributes, entries and page
//!   cache are kept by the kernel for a long time (`TTL`); when the live
//!   view moves to a new generation it tells the kernel to forget them
//!   (`live.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::live::Generations;
use attrfs_fuse::abi::{fopen, init_flag};
use attrfs_fuse::{
    Errno, FileAttr, FileType, Filesystem, KernelConfig, Reply, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr,
};
use attrfs_vfs::{names, AttrPath, EvalService, InodeTable, Node, NodeError, NodeKind, ROOT_INODE};
use parking_lot::Mutex;
use tracing::{debug, warn};

/// How long the kernel may cache attributes and entries. The tree never
/// changes while mounted, so this only bounds kernel memory, not staleness.
const TTL: Duration = Duration::from_secs(3600);

/// Permission bits: everything is readable by whoever may use the mount,
/// nothing is writable.
const FILE_PERM: u16 = 0o444;
const DIR_PERM: u16 = 0o555;
const LINK_PERM: u16 = 0o777;

/// The longest file name a path lookup accepts (Linux `NAME_MAX`).
const NAME_MAX: usize = 255;

/// Block size reported in `stat` and `statfs`.
const BLOCK_SIZE: u32 = 4096;

/// How many entries one READDIRPLUS reply evaluates at most. The
/// service's `list_plus_then` evaluates the first reply's worth with the
/// listing.
const PLUS_BATCH: usize = attrfs_vfs::LIST_PLUS_STATS;

/// The reply buffer a READDIRPLUS is assumed to have. glibc's `readdir`
/// asks `getdents64` for 32 KiB, and Linux (6.16 and later) passes that
/// size on to the filesystem (a page before): about 200 entries with
/// their attributes. A reply that stops short of the buffer costs a walk a
/// READDIR for the rest of the directory and a LOOKUP for each entry in
/// it; entries stat'ed beyond what an older kernel's buffer holds answer
/// those LOOKUPs from the cache.
const READDIRPLUS_BUFFER: usize = 32 << 10;

/// The bytes an entry takes in a READDIRPLUS reply: `fuse_entry_out` (128)
/// and `fuse_dirent` (24) before the name, padded to 8 bytes.
fn direntplus_size(name_len: usize) -> usize {
    152 + name_len.next_multiple_of(8)
}

/// Builds `FileAttr`s; copied into reply callbacks.
#[derive(Clone, Copy)]
struct Attrs {
    uid: u32,
    gid: u32,
    time: SystemTime,
}

impl Attrs {
    fn of(&self, ino: u64, node: &Node) -> FileAttr {
        let (kind, perm, size, nlink) = match node.kind {
            // No permission bits: `ls -l` shows at a glance that it cannot
            // be read (and `open` fails with EIO whoever asks).
            _ if node.error.is_some() => (FileType::RegularFile, 0, 0, 1),
            NodeKind::Directory => (FileType::Directory, DIR_PERM, 0, 2),
            NodeKind::File => (FileType::RegularFile, FILE_PERM, node.size, 1),
            NodeKind::Symlink => {
                let len = node.target.as_ref().map_or(0, |t| t.len() as u64);
                (FileType::Symlink, LINK_PERM, len, 1)
            }
        };
        FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLOCK_SIZE,
        }
    }
}

/// The errno a request gets for a service error.
fn errno(error: &NodeError) -> Errno {
    match error {
        NodeError::NotFound => Errno::ENOENT,
        NodeError::NotADirectory => Errno::ENOTDIR,
        NodeError::NotAFile => Errno::EISDIR,
        NodeError::EvalFailed(_)
        | NodeError::Interrupted
        | NodeError::TimedOut(_)
        | NodeError::Unavailable(_) => Errno::EIO,
    }
}

fn file_type(kind: NodeKind) -> FileType {
    match kind {
        NodeKind::Directory => FileType::Directory,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Symlink => FileType::Symlink,
    }
}

/// Answers a `getxattr`/`listxattr` with `value`, following the size
/// protocol: size 0 asks for the length, a too small buffer is ERANGE.
fn reply_xattr(reply: ReplyXattr, size: u32, value: &[u8]) {
    match u32::try_from(value.len()) {
        Err(_) => reply.error(Errno::E2BIG),
        Ok(len) if size == 0 => reply.size(len),
        Ok(len) if len > size => reply.error(Errno::ERANGE),
        Ok(_) => reply.data(value),
    }
}

/// The attrfs filesystem: an evaluation service seen through FUSE.
pub struct AttrFs {
    /// The generation served (see `live.rs`): each request asks the
    /// current one's service.
    generations: Arc<Generations>,
    /// Outlives generations: a path keeps its inode number.
    inodes: Arc<InodeTable>,
    attrs: Attrs,
    /// The kernel can open directories without asking (see `opendir`).
    no_opendir: bool,
}

impl AttrFs {
    /// Serves the generations of a mount. Files are owned by the mounting
    /// user.
    pub fn new(generations: Arc<Generations>) -> Self {
        // SAFETY: getuid/getgid cannot fail and have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        AttrFs {
            generations,
            inodes: Arc::new(InodeTable::new()),
            attrs: Attrs {
                uid,
                gid,
                time: SystemTime::now(),
            },
            no_opendir: false,
        }
    }

    /// The inode table (shared with the live view, which tells the kernel
    /// to forget the inodes of an old generation).
    pub fn inodes(&self) -> Arc<InodeTable> {
        self.inodes.clone()
    }

    /// The current generation's service; a reply callback that issues a
    /// follow-up request keeps asking the generation it started with.
    fn service(&self) -> Arc<EvalService> {
        self.generations.current()
    }

    /// The attribute path of an inode, or ENOENT for one the kernel should
    /// not know (inodes are never forgotten, so this means a bug).
    fn path(&self, ino: u64) -> Result<AttrPath, Errno> {
        self.inodes.path(ino).ok_or(Errno::ENOENT)
    }

    /// Replies to a lookup of an inode that already exists (`.` and `..`).
    fn reply_existing(&self, ino: u64, reply: ReplyEntry) {
        let path = match self.path(ino) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        let attrs = self.attrs;
        self.service().stat_then(&path, move |answer| match answer {
            Ok(node) => reply.entry(&TTL, &attrs.of(ino, &node), 0),
            Err(e) => reply.error(errno(&e)),
        });
    }
}

/// What the service answers a stat with.
type StatAnswer = Result<Arc<Node>, NodeError>;

/// An entry of a READDIRPLUS reply being prepared.
struct PlusChild {
    /// The directory offset that follows this entry.
    offset: u64,
    ino: u64,
    path: AttrPath,
    name: Vec<u8>,
}

/// A READDIRPLUS reply waiting for the stats of its entries; the last stat
/// to arrive sends it.
struct PlusBatch {
    dir: u64,
    parent: u64,
    offset: u64,
    attrs: Attrs,
    children: Vec<PlusChild>,
    answers: Mutex<Vec<Option<StatAnswer>>>,
    remaining: AtomicUsize,
    reply: Mutex<Option<ReplyDirectoryPlus>>,
}

impl PlusBatch {
    fn one_done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.send();
        }
    }

    fn send(&self) {
        let Some(mut reply) = self.reply.lock().take() else {
            return;
        };
        let dir_node = Node::directory("set");
        let dots = [(self.dir, &b"."[..]), (self.parent, &b".."[..])];
        let mut next = self.offset;
        while let Some(i) = usize::try_from(next).ok().filter(|&i| i < 2) {
            let (ino, name) = dots[i];
            next += 1;
            let attr = self.attrs.of(ino, &dir_node);
            if reply.add(ino, next, name, &TTL, &attr, 0) {
                return reply.ok();
            }
        }
        let answers = self.answers.lock();
        for (child, answer) in self.children.iter().zip(answers.iter()) {
            let (attr, ttl) = match answer {
                Some(Ok(node)) => (self.attrs.of(child.ino, node), TTL),
                // Not known now (a deadline passed, the evaluator is
                // unavailable): an entry the kernel must not keep, so that
                // the next access looks it up again.
                _ => (
                    self.attrs.of(child.ino, &Node::failed("not evaluated")),
                    Duration::ZERO,
                ),
            };
            if reply.add(child.ino, child.offset, &child.name, &ttl, &attr, 0) {
                break;
            }
        }
        reply.ok();
    }
}

impl Filesystem for AttrFs {
    fn init(&mut self, config: &mut KernelConfig) -> std::io::Result<()> {
        // PARALLEL_DIROPS: without it the kernel serialises lookups within a
        // directory, so one lookup waiting for a slow evaluation would hold
        // up lookups of its siblings that the cache could answer at once.
        // CACHE_SYMLINKS: link targets never change. Both are optional.
        // DO_READDIRPLUS with READDIRPLUS_AUTO: entries come with their
        // attributes when the kernel sees them being looked up (see
        // `readdirplus`).
        for (name, capability) in [
            ("PARALLEL_DIROPS", init_flag::PARALLEL_DIROPS),
            ("CACHE_SYMLINKS", init_flag::CACHE_SYMLINKS),
            ("DO_READDIRPLUS", init_flag::DO_READDIRPLUS),
            ("READDIRPLUS_AUTO", init_flag::READDIRPLUS_AUTO),
        ] {
            if !config.request(capability) {
                debug!("the kernel does not offer FUSE_{name}");
            }
        }
        self.no_opendir = config.offers(init_flag::NO_OPENDIR_SUPPORT);
        Ok(())
    }

    fn lookup(&self, parent: u64, name: &[u8], reply: ReplyEntry) {
        match name {
            b"." => return self.reply_existing(parent, reply),
            b".." => {
                let up = self.inodes.parent(parent).unwrap_or(parent);
                return self.reply_existing(up, reply);
            }
            _ => {}
        }
        let Some(segment) = names::decode(name) else {
            // Not the encoding of any attribute (e.g. `.git`): known absent
            // without evaluating anything.
            return reply.error(Errno::ENOENT);
        };
        let path = match self.path(parent) {
            Ok(parent_path) => parent_path.child(segment),
            Err(e) => return reply.error(e),
        };
        let inodes = self.inodes.clone();
        let attrs = self.attrs;
        let service_path = path.clone();
        self.service()
            .stat_then(&service_path, move |answer| match answer {
                Ok(node) => {
                    // The inode is allocated only once the name is known to
                    // exist, so probing for missing names costs nothing.
                    let (ino, _) = inodes.intern(parent, path);
                    reply.entry(&TTL, &attrs.of(ino, &node), 0);
                }
                Err(e) => reply.error(errno(&e)),
            });
    }

    fn getattr(&self, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let path = match self.path(ino) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        let attrs = self.attrs;
        self.service().stat_then(&path, move |answer| match answer {
            Ok(node) => reply.attr(&TTL, &attrs.of(ino, &node)),
            Err(e) => reply.error(errno(&e)),
        });
    }

    fn readlink(&self, ino: u64, reply: ReplyData) {
        let path = match self.path(ino) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        let service = self.service();
        let link_path = path.clone();
        self.service().stat_then(&path, move |answer| match answer {
            Ok(node) => match &node.target {
                Some(target) if node.error.is_none() => reply.data(target),
                // A symlink whose target is costly (a nested derivation's
                // output path) is computed only when read.
                None if node.error.is_none() && node.kind == NodeKind::Symlink => service
                    .read_then(&link_path, move |answer| match answer {
                        Ok(bytes) => reply.data(&bytes),
                        Err(e) => reply.error(errno(&e)),
                    }),
                _ => reply.error(Errno::EINVAL),
            },
            Err(e) => reply.error(errno(&e)),
        });
    }

    fn open(&self, ino: u64, flags: i32, reply: ReplyOpen) {
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return reply.error(Errno::EROFS);
        }
        let path = match self.path(ino) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        self.service().stat_then(&path, move |answer| match answer {
            Ok(node) if node.error.is_some() => reply.error(Errno::EIO),
            // The contents never change: let the page cache keep them
            // across opens.
            Ok(node) => match node.kind {
                NodeKind::File => reply.opened(0, fopen::KEEP_CACHE),
                NodeKind::Directory => reply.error(Errno::EISDIR),
                NodeKind::Symlink => reply.error(Errno::ELOOP),
            },
            Err(e) => reply.error(errno(&e)),
        });
    }

    fn read(&self, ino: u64, _fh: u64, offset: u64, size: u32, reply: ReplyData) {
        let path = match self.path(ino) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        self.service().read_then(&path, move |answer| match answer {
            Ok(bytes) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                reply.data(&bytes[start..end]);
            }
            Err(e) => reply.error(errno(&e)),
        });
    }

    fn flush(&self, _ino: u64, _fh: u64, _lock_owner: u64, reply: ReplyEmpty) {
        // Nothing is ever buffered for writing.
        reply.ok();
    }

    /// Where the kernel supports it, the first OPENDIR is answered ENOSYS
    /// and the kernel opens directories without asking from then on (and
    /// sends no RELEASEDIR): a walk makes half the requests. There is
    /// nothing to check here that the kernel does not already know from
    /// the entry (a failing value is a file, the mount is read-only). A
    /// directory opened without OPENDIR gets the kernel's default flags,
    /// `FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR` (fs/fuse/file.c), so its
    /// listing is cached as when OPENDIR answers them: a repeated `ls`
    /// reads the kernel's copy, `DT_UNKNOWN`s included.
    fn opendir(&self, ino: u64, flags: i32, reply: ReplyOpen) {
        if self.no_opendir {
            return reply.error(Errno::ENOSYS);
        }
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let path = match self.path(ino) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        self.service().stat_then(&path, move |answer| match answer {
            Ok(node) if node.error.is_some() => reply.error(Errno::EIO),
            Ok(node) if node.kind == NodeKind::Directory => {
                reply.opened(0, fopen::KEEP_CACHE | fopen::CACHE_DIR)
            }
            Ok(_) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(errno(&e)),
        });
    }

    fn readdir(&self, ino: u64, _fh: u64, offset: u64, mut reply: ReplyDirectory) {
        let path = match self.path(ino) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        let inodes = self.inodes.clone();
        let cache = self.service().cache_view();
        self.service().list_then(&path, move |answer| {
            let listing = match answer {
                Ok(listing) => listing,
                Err(e) => return reply.error(errno(&e)),
            };
            // Offsets: 1 is `.`, 2 is `..`, 3 + i is entry i; the kernel
            // passes back the offset of the last entry it received.
            let parent = inodes.parent(ino).unwrap_or(ino);
            let dots = [(ino, &b"."[..]), (parent, &b".."[..])];
            let mut next = offset;
            while let Some(i) = usize::try_from(next).ok().filter(|&i| i < 2) {
                let (dot_ino, name) = dots[i];
                next += 1;
                if reply.add(dot_ino, next, Some(FileType::Directory), name) {
                    return reply.ok();
                }
            }
            let first = usize::try_from(next - 2).unwrap_or(usize::MAX);
            for (i, entry) in listing.entries().iter().enumerate().skip(first) {
                let Some((child, child_path)) = inodes.child(ino, &entry.name) else {
                    continue;
                };
                // Known without forcing the value, or DT_UNKNOWN: the
                // reader stats the entry to learn its type.
                let kind = entry
                    .kind
                    .or_else(|| match cache.cached_stat(&child_path) {
                        Some(Ok(node)) if node.error.is_some() => Some(NodeKind::File),
                        Some(Ok(node)) => Some(node.kind),
                        _ => None,
                    })
                    .map(file_type);
                let name = names::encode(&entry.name);
                if name.len() > NAME_MAX {
                    // No path lookup could reach it, and names past the
                    // kernel's FUSE_NAME_MAX would fail the whole listing.
                    warn!(
                        "{}: skipping an entry whose file name is {} bytes long",
                        child_path,
                        name.len()
                    );
                    continue;
                }
                if reply.add(child, i as u64 + 3, kind, &name) {
                    break;
                }
            }
            reply.ok();
        });
    }

    /// Entries with their attributes, so that a walk (`find`, `ls -l`,
    /// `ls --color`, `du`) need not look each one up: one request and one
    /// batch of evaluations for as many entries as the reply holds (up to
    /// 200 in 32 KiB) instead of a round trip through the kernel and the
    /// evaluation thread for every one. The
    /// kernel asks for it (FUSE_READDIRPLUS_AUTO) for the first part of a
    /// directory and whenever its entries were being looked up; a plain
    /// `ls` of a big directory evaluates only that first part.
    fn readdirplus(&self, ino: u64, _fh: u64, offset: u64, reply: ReplyDirectoryPlus) {
        let path = match self.path(ino) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        let inodes = self.inodes.clone();
        let service = self.service();
        let attrs = self.attrs;
        let dir_path = path.clone();
        self.service().list_plus_then(&path, move |answer| {
            let listing = match answer {
                Ok(listing) => listing,
                Err(e) => return reply.error(errno(&e)),
            };
            let first = usize::try_from(offset.saturating_sub(2)).unwrap_or(usize::MAX);
            // `.` and `..` come first in the reply.
            let dots = (2 - offset.min(2)) as usize * direntplus_size(2);
            let mut room = READDIRPLUS_BUFFER.saturating_sub(dots);
            // (offset, name, path) of what fits in the reply: the rest
            // would be evaluated for nothing.
            let fitting: Vec<(u64, Vec<u8>, AttrPath)> = listing
                .entries()
                .iter()
                .enumerate()
                .skip(first)
                .map_while(|(i, entry)| {
                    let name = names::encode(&entry.name);
                    if name.len() > NAME_MAX {
                        return Some(None);
                    }
                    room = room.checked_sub(direntplus_size(name.len()))?;
                    Some(Some((
                        i as u64 + 3,
                        name,
                        dir_path.child(entry.name.clone()),
                    )))
                })
                .flatten()
                .take(PLUS_BATCH)
                .collect();
            // A read-ahead has usually cached the entries' stats already:
            // their answers are taken now, under one lock for the batch,
            // and the inodes share the cache's paths.
            let (paths, known): (Vec<AttrPath>, Vec<Option<StatAnswer>>) = service
                .shared_stats(fitting.iter().map(|(_, _, path)| path.clone()))
                .into_iter()
                .unzip();
            let interned = inodes.intern_many(ino, paths);
            let children: Vec<PlusChild> = fitting
                .into_iter()
                .zip(interned)
                .map(|((offset, name, _), (ino, path))| PlusChild {
                    offset,
                    ino,
                    path,
                    name,
                })
                .collect();
            let missing: Vec<usize> = (0..known.len()).filter(|&i| known[i].is_none()).collect();
            // Subdirectories and entries of unknown type are worth listing
            // ahead; an entry known to be a file is not (read-ahead would
            // only queue it to forget it).
            let ahead: Vec<AttrPath> = children
                .iter()
                .zip(&known)
                .filter(|(_, answer)| match answer {
                    Some(Ok(node)) => node.kind == NodeKind::Directory && node.error.is_none(),
                    Some(Err(_)) => false,
                    None => true,
                })
                .map(|(child, _)| child.path.clone())
                .collect();
            let parent = inodes.parent(ino).unwrap_or(ino);
            let batch = Arc::new(PlusBatch {
                dir: ino,
                parent,
                offset,
                attrs,
                // One more than the stats still to come: the loop below
                // holds it, so the reply is built once every stat has
                // been asked.
                remaining: AtomicUsize::new(missing.len() + 1),
                answers: Mutex::new(known),
                children,
                reply: Mutex::new(Some(reply)),
            });
            for slot in missing {
                let batch_for_child = batch.clone();
                service.stat_then(&batch.children[slot].path, move |answer| {
                    batch_for_child.answers.lock()[slot] = Some(answer);
                    batch_for_child.one_done();
                });
            }
            batch.one_done();
            // A walk will list the subdirectories next, and the next
            // READDIRPLUS of a big directory will stat the entries after
            // these.
            service.read_ahead(ahead);
            if let Some(last) = batch.children.last() {
                let next = usize::try_from(last.offset - 2).unwrap_or(usize::MAX);
                let after = listing.entries().iter().skip(next).take(PLUS_BATCH);
                service.read_ahead_stats(after.map(|entry| dir_path.child(entry.name.clone())));
            }
        });
    }

    fn statfs(&self, _ino: u64, reply: ReplyStatfs) {
        let files = self.inodes.len() as u64;
        reply.statfs(0, 0, 0, files, 0, BLOCK_SIZE, NAME_MAX as u32, BLOCK_SIZE);
    }

    fn getxattr(&self, ino: u64, name: &[u8], size: u32, reply: ReplyXattr) {
        let name = match std::str::from_utf8(name).ok() {
            Some(name) if name.starts_with(attrfs_vfs::xattr::PREFIX) => name.to_owned(),
            // security.*, system.posix_acl_*, trusted.*: never ours, and
            // asked constantly (ls, cp -a, SELinux); no evaluation needed.
            _ => return reply.error(Errno::NO_XATTR),
        };
        // Sources edited into an error: the root says why it shows the
        // previous generation.
        if ino == ROOT_INODE && name == attrfs_vfs::xattr::ERROR {
            if let Some(message) = self.generations.stale_error() {
                return reply_xattr(reply, size, message.as_bytes());
            }
        }
        let path = match self.path(ino) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        let service = self.service();
        let xattr_path = path.clone();
        self.service().stat_then(&path, move |answer| match answer {
            // The type and the error come with the node.
            Ok(node) => match node.xattr(&name) {
                Some(value) => reply_xattr(reply, size, value),
                // The costly ones are computed now, once.
                None => service.xattrs_then(&xattr_path, move |answer| match answer {
                    Ok(xattrs) => match xattrs.iter().find(|(n, _)| *n == name) {
                        Some((_, value)) => reply_xattr(reply, size, value),
                        None => reply.error(Errno::NO_XATTR),
                    },
                    Err(e) => reply.error(errno(&e)),
                }),
            },
            Err(e) => reply.error(errno(&e)),
        });
    }

    fn listxattr(&self, ino: u64, size: u32, reply: ReplyXattr) {
        let path = match self.path(ino) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        let stale = (ino == ROOT_INODE)
            .then(|| self.generations.stale_error())
            .flatten();
        self.service()
            .xattrs_then(&path, move |answer| match answer {
                Ok(xattrs) => {
                    let mut names = Vec::new();
                    for (name, _) in xattrs.iter() {
                        names.extend_from_slice(name.as_bytes());
                        names.push(0);
                    }
                    let error = attrfs_vfs::xattr::ERROR;
                    if stale.is_some() && !xattrs.iter().any(|(n, _)| n == error) {
                        names.extend_from_slice(error.as_bytes());
                        names.push(0);
                    }
                    reply_xattr(reply, size, &names);
                }
                Err(e) => reply.error(errno(&e)),
            });
    }

    fn access(&self, _ino: u64, mask: i32, reply: ReplyEmpty) {
        // The kernel asks only for access(2) and chdir (the mount has no
        // `default_permissions` by default, see mount.rs). Reading is always
        // allowed, writing never.
        if mask & libc::W_OK != 0 {
            reply.error(Errno::EROFS);
        } else {
            reply.ok();
        }
    }

    /// Everything that would modify the tree (`write`, `mkdir`,
    /// `setattr`, `setxattr`, ...): a read-only filesystem.
    fn modify(&self, opcode: u32, ino: u64, reply: Reply) {
        debug!("FUSE opcode {opcode} on inode {ino}: read-only");
        reply.error(Errno::EROFS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> Attrs {
        Attrs {
            uid: 1,
            gid: 2,
            time: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn sizes_and_kinds() {
        let file = attrs().of(5, &Node::file("string", 1000));
        assert_eq!(
            (file.kind, file.size, file.blocks, file.perm),
            (FileType::RegularFile, 1000, 2, 0o444)
        );
        let dir = attrs().of(1, &Node::directory("set"));
        assert_eq!(
            (dir.kind, dir.perm, dir.nlink),
            (FileType::Directory, 0o555, 2)
        );
        let link = attrs().of(2, &Node::symlink("path", "/etc/hostname"));
        assert_eq!((link.kind, link.size), (FileType::Symlink, 13));
        let failed = attrs().of(3, &Node::failed("boom"));
        assert_eq!((failed.kind, failed.size), (FileType::RegularFile, 0));
        assert_eq!((failed.uid, failed.gid, failed.ino), (1, 2, 3));
    }

    #[test]
    fn errors_map_to_errnos() {
        assert_eq!(errno(&NodeError::NotFound), Errno::ENOENT);
        assert_eq!(errno(&NodeError::NotADirectory), Errno::ENOTDIR);
        assert_eq!(
            errno(&NodeError::TimedOut(Duration::from_secs(1))),
            Errno::EIO
        );
        assert_eq!(errno(&NodeError::EvalFailed("x".into())), Errno::EIO);
    }
}
