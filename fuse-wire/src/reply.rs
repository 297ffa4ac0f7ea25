//! Replies: one handle per request, answered once, from any thread.
//!
//! A handle owns the request's `unique` and a share of the connection, so
//! the filesystem can move it into a callback and answer from whichever
//! thread the answer is ready on. Each typed handle encodes the structure
//! its request expects after `fuse_out_header`. A handle dropped without
//! an answer answers EIO: the caller blocked in the kernel always gets an
//! answer, whatever path the filesystem took.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use crate::abi::{dirent_align, size};
use crate::attr::{self, encode_entry, FileAttr, FileType};
use crate::channel::Channel;
use crate::codec::Writer;

/// An error number, as a reply carries it (positive here, negated on the
/// wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

#[allow(missing_docs)]
impl Errno {
    pub const EACCES: Errno = Errno(libc::EACCES);
    pub const E2BIG: Errno = Errno(libc::E2BIG);
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    pub const EIO: Errno = Errno(libc::EIO);
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    pub const ELOOP: Errno = Errno(libc::ELOOP);
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    pub const ENOSYS: Errno = Errno(libc::ENOSYS);
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    pub const EPROTO: Errno = Errno(libc::EPROTO);
    pub const ERANGE: Errno = Errno(libc::ERANGE);
    pub const EROFS: Errno = Errno(libc::EROFS);
    /// "No such attribute" (`ENODATA` on Linux).
    pub const NO_XATTR: Errno = Errno(libc::ENODATA);
}

/// `fuse_out_header`.
pub(crate) fn out_header(unique: u64, error: i32, body_len: usize) -> [u8; size::OUT_HEADER] {
    let mut w = Writer::with_capacity(size::OUT_HEADER);
    w.u32((size::OUT_HEADER + body_len) as u32)
        .i32(error)
        .u64(unique);
    let mut header = [0; size::OUT_HEADER];
    header.copy_from_slice(w.as_slice());
    header
}

/// The answer to one request: an error, or what its typed wrapper
/// encodes.
#[derive(Debug)]
pub struct Reply {
    unique: u64,
    /// Taken when answered.
    channel: Option<Arc<Channel>>,
}

impl Reply {
    pub(crate) fn new(unique: u64, channel: Arc<Channel>) -> Self {
        Reply {
            unique,
            channel: Some(channel),
        }
    }

    fn send(mut self, error: i32, body: &[&[u8]]) {
        let Some(channel) = self.channel.take() else {
            return;
        };
        transmit(&channel, self.unique, error, body);
    }

    /// Answers with an error.
    pub fn error(self, errno: Errno) {
        self.send(-errno.0, &[]);
    }

    /// Drops the handle without answering: for the requests the kernel
    /// expects no reply to (FORGET, BATCH_FORGET).
    pub(crate) fn disarm(mut self) {
        self.channel = None;
    }

    /// Answers with success and `body` (the typed wrappers say which).
    fn ok(self, body: &[&[u8]]) {
        self.send(0, body);
    }
}

/// Writes a reply; a reply the kernel no longer waits for (the request
/// was interrupted, the connection is gone) is not a failure of ours.
fn transmit(channel: &Channel, unique: u64, error: i32, body: &[&[u8]]) {
    let len = body.iter().map(|b| b.len()).sum();
    let header = out_header(unique, error, len);
    let mut parts = Vec::with_capacity(body.len() + 1);
    parts.push(&header[..]);
    parts.extend_from_slice(body);
    if let Err(e) = channel.send(&parts) {
        match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV) => debug!("reply to {unique}: {e}"),
            _ => warn!("cannot send the reply to FUSE request {unique}: {e}"),
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(channel) = self.channel.take() {
            warn!(
                "FUSE request {} was not answered; answering EIO",
                self.unique
            );
            transmit(&channel, self.unique, -libc::EIO, &[]);
        }
    }
}

macro_rules! typed_reply {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(Reply);

        impl $name {
            /// Answers with an error.
            pub fn error(self, errno: Errno) {
                self.0.error(errno);
            }
        }

        impl From<Reply> for $name {
            fn from(reply: Reply) -> Self {
                $name(reply)
            }
        }
    };
}

typed_reply!(
    /// The answer to LOOKUP: `fuse_entry_out`.
    ReplyEntry
);
typed_reply!(
    /// The answer to GETATTR: `fuse_attr_out`.
    ReplyAttr
);
typed_reply!(
    /// The answer to OPEN and OPENDIR: `fuse_open_out`.
    ReplyOpen
);
typed_reply!(
    /// The answer to READ and READLINK: the bytes.
    ReplyData
);
typed_reply!(
    /// The answer to requests that return nothing but success.
    ReplyEmpty
);
typed_reply!(
    /// The answer to STATFS: `fuse_statfs_out`.
    ReplyStatfs
);
typed_reply!(
    /// The answer to GETXATTR and LISTXATTR: the length
    /// (`fuse_getxattr_out`) when asked with size 0, else the bytes.
    ReplyXattr
);

impl ReplyEntry {
    /// The inode the name leads to; the kernel keeps the entry and the
    /// attributes for `ttl`.
    pub fn entry(self, ttl: &Duration, attr: &FileAttr, generation: u64) {
        let mut w = Writer::with_capacity(size::ENTRY_OUT);
        encode_entry(&mut w, attr, *ttl, generation);
        self.0.ok(&[w.as_slice()]);
    }
}

impl ReplyAttr {
    /// The attributes; the kernel keeps them for `ttl`.
    pub fn attr(self, ttl: &Duration, attr: &FileAttr) {
        let mut w = Writer::with_capacity(size::ATTR_OUT);
        let (secs, nanos) = attr::valid(*ttl);
        w.u64(secs).u32(nanos).u32(0);
        attr.encode(&mut w);
        self.0.ok(&[w.as_slice()]);
    }
}

impl ReplyOpen {
    /// Opened, with handle `fh` and `FOPEN_*` flags.
    pub fn opened(self, fh: u64, flags: u32) {
        let mut w = Writer::with_capacity(size::OPEN_OUT);
        w.u64(fh).u32(flags).u32(0);
        self.0.ok(&[w.as_slice()]);
    }
}

impl ReplyData {
    /// The bytes (at most what was asked).
    pub fn data(self, bytes: &[u8]) {
        self.0.ok(&[bytes]);
    }
}

impl ReplyEmpty {
    /// Success.
    pub fn ok(self) {
        self.0.ok(&[]);
    }
}

impl ReplyStatfs {
    /// The filesystem's figures (`struct fuse_kstatfs`).
    #[allow(clippy::too_many_arguments)]
    pub fn statfs(
        self,
        blocks: u64,
        bfree: u64,
        bavail: u64,
        files: u64,
        ffree: u64,
        bsize: u32,
        namelen: u32,
        frsize: u32,
    ) {
        let mut w = Writer::with_capacity(size::KSTATFS);
        w.u64(blocks).u64(bfree).u64(bavail).u64(files).u64(ffree);
        w.u32(bsize).u32(namelen).u32(frsize).u32(0);
        w.bytes(&[0; 24]);
        self.0.ok(&[w.as_slice()]);
    }
}

impl ReplyXattr {
    /// The length of the value (the answer to a request of size 0).
    pub fn size(self, len: u32) {
        let mut w = Writer::with_capacity(size::GETXATTR_OUT);
        w.u32(len).u32(0);
        self.0.ok(&[w.as_slice()]);
    }

    /// The value.
    pub fn data(self, bytes: &[u8]) {
        self.0.ok(&[bytes]);
    }
}

/// The entries of a READDIR or READDIRPLUS answer, as many as fit in the
/// reader's buffer: what the two answers share.
#[derive(Debug)]
struct DirEntries {
    reply: Reply,
    room: usize,
    entries: Writer,
}

impl DirEntries {
    fn new(reply: Reply, room: u32) -> Self {
        DirEntries {
            reply,
            room: room as usize,
            entries: Writer::with_capacity((room as usize).min(64 << 10)),
        }
    }

    /// The buffer to append an entry of `len` bytes (before alignment)
    /// to, or `None` when it would not fit.
    fn room_for(&mut self, len: usize) -> Option<&mut Writer> {
        (self.entries.len() + dirent_align(len) <= self.room).then_some(&mut self.entries)
    }

    fn ok(self) {
        self.reply.ok(&[self.entries.as_slice()]);
    }

    fn error(self, errno: Errno) {
        self.reply.error(errno);
    }
}

/// The answer to READDIR: as many `fuse_dirent`s as fit in the reader's
/// buffer.
#[derive(Debug)]
pub struct ReplyDirectory(DirEntries);

impl ReplyDirectory {
    pub(crate) fn new(reply: Reply, room: u32) -> Self {
        ReplyDirectory(DirEntries::new(reply, room))
    }

    /// Adds an entry; `offset` is what the kernel passes back to continue
    /// after it. `kind` is `None` when the type is not known without
    /// evaluating the entry: the reader sees `DT_UNKNOWN` and must `stat`
    /// it. Returns true, without adding it, when the reply is full.
    pub fn add(&mut self, ino: u64, offset: u64, kind: Option<FileType>, name: &[u8]) -> bool {
        let Some(w) = self.0.room_for(size::DIRENT + name.len()) else {
            return true;
        };
        encode_dirent(w, ino, offset, attr::dirent_type(kind), name);
        false
    }

    /// Sends the entries added (none: the end of the directory).
    pub fn ok(self) {
        self.0.ok();
    }

    /// Answers with an error.
    pub fn error(self, errno: Errno) {
        self.0.error(errno);
    }
}

/// Appends `fuse_dirent`: the entry's inode, the offset of the next one,
/// its name's length, its `d_type`, then the name padded to 8 bytes. Both
/// READDIR and READDIRPLUS entries end with it.
fn encode_dirent(w: &mut Writer, ino: u64, offset: u64, d_type: u32, name: &[u8]) {
    w.u64(ino).u64(offset).u32(name.len() as u32);
    w.u32(d_type).bytes(name).pad_to_8();
}

/// The answer to READDIRPLUS: `fuse_direntplus`, entries with their
/// attributes, as many as fit.
#[derive(Debug)]
pub struct ReplyDirectoryPlus(DirEntries);

impl ReplyDirectoryPlus {
    pub(crate) fn new(reply: Reply, room: u32) -> Self {
        ReplyDirectoryPlus(DirEntries::new(reply, room))
    }

    /// Adds an entry with its attributes, which the kernel keeps (with
    /// the name) for `ttl`. Returns true, without adding it, when the
    /// reply is full.
    pub fn add(
        &mut self,
        ino: u64,
        offset: u64,
        name: &[u8],
        ttl: &Duration,
        attr: &FileAttr,
        generation: u64,
    ) -> bool {
        let Some(w) = self.0.room_for(size::DIRENTPLUS + name.len()) else {
            return true;
        };
        encode_entry(w, attr, *ttl, generation);
        encode_dirent(w, ino, offset, attr.kind.dirent_type(), name);
        false
    }

    /// Sends the entries added (none: the end of the directory).
    pub fn ok(self) {
        self.0.ok();
    }

    /// Answers with an error.
    pub fn error(self, errno: Errno) {
        self.0.error(errno);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::FileType;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixDatagram;
    use std::time::SystemTime;

    /// A reply handle for request 42, and the kernel's end of the line.
    fn line() -> (Reply, UnixDatagram) {
        let (ours, kernel) = UnixDatagram::pair().unwrap();
        let channel = Arc::new(Channel::new(OwnedFd::from(ours)));
        (Reply::new(42, channel), kernel)
    }

    /// The message the kernel received: `(error, body)`, after checking
    /// the header's length and unique.
    fn received(kernel: &UnixDatagram) -> (i32, Vec<u8>) {
        let mut buf = vec![0u8; 1 << 16];
        let n = kernel.recv(&mut buf).unwrap();
        assert!(n >= size::OUT_HEADER);
        assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize, n);
        assert_eq!(u64::from_le_bytes(buf[8..16].try_into().unwrap()), 42);
        let error = i32::from_le_bytes(buf[4..8].try_into().unwrap());
        (error, buf[size::OUT_HEADER..n].to_vec())
    }

    fn attr(kind: FileType) -> FileAttr {
        let t = SystemTime::UNIX_EPOCH;
        FileAttr {
            ino: 7,
            size: 3,
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

    #[test]
    fn errors_are_negated_and_a_dropped_reply_is_eio() {
        let (reply, kernel) = line();
        ReplyEntry::from(reply).error(Errno::ENOENT);
        assert_eq!(received(&kernel), (-libc::ENOENT, vec![]));
        let (reply, kernel) = line();
        drop(ReplyAttr::from(reply));
        assert_eq!(received(&kernel), (-libc::EIO, vec![]));
    }

    #[test]
    fn entry_attr_open_statfs_and_xattr_sizes() {
        let ttl = Duration::from_secs(3600);
        let (reply, kernel) = line();
        ReplyEntry::from(reply).entry(&ttl, &attr(FileType::RegularFile), 0);
        let (error, body) = received(&kernel);
        assert_eq!((error, body.len()), (0, size::ENTRY_OUT));

        let (reply, kernel) = line();
        ReplyAttr::from(reply).attr(&ttl, &attr(FileType::Directory));
        let (_, body) = received(&kernel);
        assert_eq!(body.len(), size::ATTR_OUT);
        assert_eq!(&body[..8], &3600u64.to_le_bytes());
        let mode = u32::from_le_bytes(body[16 + 60..16 + 64].try_into().unwrap());
        assert_eq!(mode, libc::S_IFDIR | 0o444);

        let (reply, kernel) = line();
        ReplyOpen::from(reply).opened(5, crate::abi::fopen::KEEP_CACHE);
        let (_, body) = received(&kernel);
        assert_eq!(body.len(), size::OPEN_OUT);
        assert_eq!(&body[..8], &5u64.to_le_bytes());
        assert_eq!(&body[8..12], &2u32.to_le_bytes());

        let (reply, kernel) = line();
        ReplyStatfs::from(reply).statfs(1, 2, 3, 4, 5, 4096, 255, 4096);
        let (_, body) = received(&kernel);
        assert_eq!(body.len(), size::KSTATFS);
        assert_eq!(&body[40..44], &4096u32.to_le_bytes());
        assert_eq!(&body[44..48], &255u32.to_le_bytes());

        let (reply, kernel) = line();
        ReplyXattr::from(reply).size(17);
        let (_, body) = received(&kernel);
        assert_eq!(body, [17, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(body.len(), size::GETXATTR_OUT);

        let (reply, kernel) = line();
        ReplyXattr::from(reply).data(b"value");
        assert_eq!(received(&kernel), (0, b"value".to_vec()));
        let (reply, kernel) = line();
        ReplyData::from(reply).data(b"bytes");
        assert_eq!(received(&kernel), (0, b"bytes".to_vec()));
        let (reply, kernel) = line();
        ReplyEmpty::from(reply).ok();
        assert_eq!(received(&kernel), (0, vec![]));
    }

    #[test]
    fn directory_entries_carry_their_type_or_dt_unknown_and_stop_when_full() {
        let (reply, kernel) = line();
        // Room for two entries with 1-8 byte names.
        let mut dir = ReplyDirectory::new(reply, 64);
        assert!(!dir.add(2, 1, Some(FileType::Directory), b"sub"));
        assert!(!dir.add(3, 2, None, b"thunk"));
        assert!(dir.add(4, 3, Some(FileType::RegularFile), b"full"));
        dir.ok();
        let (_, body) = received(&kernel);
        assert_eq!(body.len(), 64);
        let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().unwrap());
        assert_eq!(&body[..8], &2u64.to_le_bytes());
        assert_eq!(&body[8..16], &1u64.to_le_bytes());
        assert_eq!((u32_at(16), u32_at(20)), (3, u32::from(libc::DT_DIR)));
        assert_eq!(&body[24..27], b"sub");
        assert_eq!(&body[27..32], &[0; 5], "padded to 8 bytes");
        assert_eq!((u32_at(48), u32_at(52)), (5, u32::from(libc::DT_UNKNOWN)));
        assert_eq!(&body[56..61], b"thunk");
    }

    #[test]
    fn directory_plus_entries_carry_their_attributes() {
        let (reply, kernel) = line();
        let ttl = Duration::from_secs(1);
        let room = (size::DIRENTPLUS + 8) as u32;
        let mut dir = ReplyDirectoryPlus::new(reply, room);
        assert!(!dir.add(7, 3, b"link", &ttl, &attr(FileType::Symlink), 0));
        assert!(dir.add(8, 4, b"x", &ttl, &attr(FileType::Symlink), 0));
        dir.ok();
        let (_, body) = received(&kernel);
        assert_eq!(body.len(), size::DIRENTPLUS + 8);
        let dirent = &body[size::ENTRY_OUT..];
        assert_eq!(&dirent[..8], &7u64.to_le_bytes());
        assert_eq!(&dirent[8..16], &3u64.to_le_bytes());
        assert_eq!(&dirent[16..20], &4u32.to_le_bytes());
        assert_eq!(&dirent[20..24], &u32::from(libc::DT_LNK).to_le_bytes());
        assert_eq!(&dirent[24..28], b"link");
    }
}
