//! The FUSE kernel protocol, spoken by attrfs itself.
//!
//! The kernel hands a FUSE filesystem its requests as byte messages read
//! from `/dev/fuse` and takes replies and notifications written back to
//! it; the layouts are those of `include/uapi/linux/fuse.h`. This crate
//! covers what a read-only filesystem needs and nothing more:
//!
//! * [`abi`]: opcodes, capability and open flags, and the sizes of the
//!   kernel's structures, as the header defines them;
//! * [`codec`]: bounds-checked little-endian reading and writing, so that
//!   no message is ever read past its end;
//! * [`request`]: a message from the kernel decoded into a typed
//!   [`Request`];
//! * [`attr`]: file attributes and types as `stat` and `readdir` show
//!   them, including the honest "type not known" of `DT_UNKNOWN`;
//! * [`reply`]: one reply handle per request, sendable from any thread,
//!   answering EIO if dropped unanswered so the kernel never waits forever;
//! * [`notify`]: invalidations the filesystem sends unasked;
//! * [`session`]: the INIT handshake and the threads that read requests
//!   and hand them to a [`Filesystem`] until the kernel says ENODEV;
//! * [`fusermount`]: mounting and unmounting through the setuid
//!   `fusermount3` helper (the unprivileged path and `auto_unmount`).
//!
//! `unsafe` appears only around the system calls (`read`, `writev`,
//! `recvmsg`, `fcntl`).

#![warn(missing_docs)]

pub mod abi;
pub mod attr;
mod channel;
pub mod codec;
pub mod fusermount;
pub mod notify;
pub mod reply;
pub mod request;
pub mod session;

pub use attr::{FileAttr, FileType};
pub use notify::Notifier;
pub use reply::{
    Errno, Reply, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyXattr,
};
pub use request::{Operation, Request};
pub use session::{Acl, Filesystem, KernelConfig, Session, SessionConfig};
