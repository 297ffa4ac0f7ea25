//! Notifications: messages the filesystem sends unasked, here to make the
//! kernel forget what it cached when the tree changed underneath it.

use std::io;
use std::sync::Arc;

use crate::abi::{notify_code, size};
use crate::channel::Channel;
use crate::codec::Writer;
use crate::reply::out_header;

/// Sends invalidations on a session's connection, from any thread.
#[derive(Debug, Clone)]
pub struct Notifier {
    channel: Arc<Channel>,
}

impl Notifier {
    pub(crate) fn new(channel: Arc<Channel>) -> Self {
        Notifier { channel }
    }

    /// Forgets the name `name` in directory `parent` (and what it led
    /// to). ENOENT means the kernel had not cached it.
    pub fn inval_entry(&self, parent: u64, name: &[u8]) -> io::Result<()> {
        self.send(notify_code::INVAL_ENTRY, &inval_entry(parent, name))
    }

    /// Forgets the attributes of `ino` and its cached pages from `offset`
    /// on, `len` bytes of them (0: to the end; a negative offset: only the
    /// attributes).
    pub fn inval_inode(&self, ino: u64, offset: i64, len: i64) -> io::Result<()> {
        self.send(notify_code::INVAL_INODE, &inval_inode(ino, offset, len))
    }

    fn send(&self, code: i32, body: &[u8]) -> io::Result<()> {
        // Unique 0 marks a notification; the error field carries its code.
        let header = out_header(0, code, body.len());
        self.channel.send(&[&header, body])
    }
}

/// `fuse_notify_inval_entry_out` and the NUL-terminated name.
fn inval_entry(parent: u64, name: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_capacity(size::NOTIFY_INVAL_ENTRY_OUT + name.len() + 1);
    w.u64(parent)
        .u32(name.len() as u32)
        .u32(0)
        .bytes(name)
        .bytes(&[0]);
    w.into_bytes()
}

/// `fuse_notify_inval_inode_out`.
fn inval_inode(ino: u64, offset: i64, len: i64) -> Vec<u8> {
    let mut w = Writer::with_capacity(size::NOTIFY_INVAL_INODE_OUT);
    w.u64(ino).u64(offset as u64).u64(len as u64);
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn layouts() {
        let entry = inval_entry(7, b"hello");
        assert_eq!(entry.len(), size::NOTIFY_INVAL_ENTRY_OUT + 6);
        assert_eq!(&entry[..8], &7u64.to_le_bytes());
        assert_eq!(&entry[8..12], &5u32.to_le_bytes());
        assert_eq!(&entry[16..], b"hello\0");
        let inode = inval_inode(9, -1, 0);
        assert_eq!(inode.len(), size::NOTIFY_INVAL_INODE_OUT);
        assert_eq!(&inode[8..16], &(-1i64).to_le_bytes());
    }

    #[test]
    fn sent_with_unique_zero_and_the_code() {
        let (ours, kernel) = UnixDatagram::pair().unwrap();
        let notifier = Notifier::new(Arc::new(Channel::new(OwnedFd::from(ours))));
        notifier.inval_inode(3, 0, 0).unwrap();
        let mut buf = [0u8; 256];
        let n = kernel.recv(&mut buf).unwrap();
        assert_eq!(n, size::OUT_HEADER + size::NOTIFY_INVAL_INODE_OUT);
        assert_eq!(&buf[..4], &(n as u32).to_le_bytes());
        assert_eq!(&buf[4..8], &notify_code::INVAL_INODE.to_le_bytes());
        assert_eq!(&buf[8..16], &0u64.to_le_bytes());
        notifier.inval_entry(1, b"x").unwrap();
        let n = kernel.recv(&mut buf).unwrap();
        assert_eq!(n, size::OUT_HEADER + size::NOTIFY_INVAL_ENTRY_OUT + 2);
        assert_eq!(&buf[4..8], &notify_code::INVAL_ENTRY.to_le_bytes());
    }
}
