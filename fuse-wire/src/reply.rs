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

/// The answer to READDIR: as many `fuse_dirent`s as fit in the reader's
/// buffer.
#[derive(Debug)]
pub struct ReplyDirectory {
    reply: Reply,
    room: usize,
    entries: Writer,
}

impl ReplyDirectory {
    pub(crate) fn new(reply: Reply, room: u32) -> Self {
        ReplyDirectory {
            reply,
            room: room as usize,
            entries: Writer::with_capacity((room as usize).min(64 << 10)),
        }
    }

    /// Adds an entry; `offset` is what the kernel passes back to continue
    /// after it. `kind` is `None` when the type is not known without
    /// evaluating the entry: the reader sees `DT_UNKNOWN` and must `stat`
    /// it. Returns true, without adding it, when the reply is full.
    pub fn add(&mut self, ino: u64, offset: u64, kind: Option<FileType>, name: &[u8]) -> bool {
        let len = dirent_align(size::DIRENT + name.len());
        if self.entries.len() + len > self.room {
            return true;
        }
        self.entries.u64(ino).u64(offset).u32(name.len() as u32);
        self.entries
            .u32(attr::dirent_type(kind))
            .bytes(name)
            .pad_to_8();
        false
    }

    /// Sends the entries added (none: the end of the directory).
    pub fn ok(self) {
        self.reply.ok(&[self.entries.as_slice()]);
    }

    /// Answers with an error.
    pub fn error(self, errno: Errno) {
        self.reply.error(errno);
    }
}

/// The answer to READDIRPLUS: `fuse_direntplus`, entries with their
/// attributes, as many as fit.
#[derive(Debug)]
pub struct ReplyDirectoryPlus {
    reply: Reply,
    room: usize,
    entries: Writer,
}

impl ReplyDirectoryPlus {
    pub(crate) fn new(reply: Reply, room: u32) -> Self {
        ReplyDirectoryPlus {
            reply,
            room: room as usize,
            entries: Writer::with_capacity((room as usize).min(64 << 10)),
        }
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
        let len = dirent_align(size::DIRENTPLUS + name.len());
        if self.entries.len() + len > self.room {
            return true;
        }
        encode_entry(&mut self.entries, attr, *ttl, generation);
        self.entries.u64(ino).u64(offset).u32(name.len() as u32);
        self.entries
            .u32(attr.kind.dirent_type())
            .bytes(name)
            .pad_to_8();
        false
    }

    /// Sends the entries added (none: the end of the directory).
    pub fn ok(self) {
        self.reply.ok(&[self.entries.as_slice()]);
    }

    /// Answers with an error.
    pub fn error(self, errno: Errno) {
        self.reply.error(errno);
    }
}
