//! File attributes as the kernel receives them (`fuse_attr`, in
//! `fuse_attr_out` and `fuse_entry_out`), and file types as `stat` and
//! `readdir` show them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::abi::size;
use crate::codec::Writer;

/// The type of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// A directory.
    Directory,
    /// A regular file.
    RegularFile,
    /// A symbolic link.
    Symlink,
}

impl FileType {
    /// The `S_IFMT` bits of `st_mode`.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Directory => libc::S_IFDIR,
            FileType::RegularFile => libc::S_IFREG,
            FileType::Symlink => libc::S_IFLNK,
        }
    }

    /// The `d_type` of a directory entry of this type.
    pub fn dirent_type(self) -> u32 {
        u32::from(match self {
            FileType::Directory => libc::DT_DIR,
            FileType::RegularFile => libc::DT_REG,
            FileType::Symlink => libc::DT_LNK,
        })
    }
}

/// The `d_type` of an entry whose type is not known (`DT_UNKNOWN`): the
/// reader must `stat` it to learn it.
pub fn dirent_type(kind: Option<FileType>) -> u32 {
    kind.map_or(u32::from(libc::DT_UNKNOWN), FileType::dirent_type)
}

/// What `stat` shows of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileAttr {
    /// The inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Size in 512-byte blocks.
    pub blocks: u64,
    /// Last access.
    pub atime: SystemTime,
    /// Last modification.
    pub mtime: SystemTime,
    /// Last change of the attributes.
    pub ctime: SystemTime,
    /// The type.
    pub kind: FileType,
    /// Permission bits (`0o7777` at most).
    pub perm: u16,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device file.
    pub rdev: u32,
    /// Preferred I/O size.
    pub blksize: u32,
}

/// Seconds and nanoseconds since the epoch; times before it count back
/// (the kernel reads the seconds as signed).
fn timestamp(time: SystemTime) -> (u64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (after.as_secs(), after.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            let (secs, nanos) = (before.as_secs() as i64, before.subsec_nanos());
            if nanos == 0 {
                ((-secs) as u64, 0)
            } else {
                ((-secs - 1) as u64, 1_000_000_000 - nanos)
            }
        }
    }
}

/// A cache lifetime as `(seconds, nanoseconds)`.
pub(crate) fn valid(ttl: Duration) -> (u64, u32) {
    (ttl.as_secs(), ttl.subsec_nanos())
}

impl FileAttr {
    /// Appends `fuse_attr`.
    pub fn encode(&self, w: &mut Writer) {
        let start = w.len();
        let (atime, atime_ns) = timestamp(self.atime);
        let (mtime, mtime_ns) = timestamp(self.mtime);
        let (ctime, ctime_ns) = timestamp(self.ctime);
        w.u64(self.ino).u64(self.size).u64(self.blocks);
        w.u64(atime).u64(mtime).u64(ctime);
        w.u32(atime_ns).u32(mtime_ns).u32(ctime_ns);
        w.u32(self.kind.mode_bits() | u32::from(self.perm & 0o7777));
        w.u32(self.nlink).u32(self.uid).u32(self.gid).u32(self.rdev);
        w.u32(self.blksize).u32(0);
        debug_assert_eq!(w.len() - start, size::ATTR);
    }
}

/// Appends `fuse_entry_out`: the inode a name leads to, with its
/// attributes, both cached by the kernel for `ttl`.
pub(crate) fn encode_entry(w: &mut Writer, attr: &FileAttr, ttl: Duration, generation: u64) {
    let (secs, nanos) = valid(ttl);
    w.u64(attr.ino).u64(generation).u64(secs).u64(secs);
    w.u32(nanos).u32(nanos);
    attr.encode(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> FileAttr {
        FileAttr {
            ino: 5,
            size: 1000,
            blocks: 2,
            atime: UNIX_EPOCH + Duration::new(10, 20),
            mtime: UNIX_EPOCH + Duration::new(30, 40),
            ctime: UNIX_EPOCH + Duration::new(50, 60),
            kind: FileType::RegularFile,
            perm: 0o444,
            nlink: 1,
            uid: 1000,
            gid: 100,
            rdev: 0,
            blksize: 4096,
        }
    }

    #[test]
    fn fuse_attr_layout() {
        let mut w = Writer::default();
        sample().encode(&mut w);
        let b = w.as_slice();
        assert_eq!(b.len(), size::ATTR);
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        assert_eq!((u64_at(0), u64_at(8), u64_at(16)), (5, 1000, 2));
        assert_eq!((u64_at(24), u64_at(32), u64_at(40)), (10, 30, 50));
        assert_eq!((u32_at(48), u32_at(52), u32_at(56)), (20, 40, 60));
        assert_eq!(u32_at(60), libc::S_IFREG | 0o444);
        assert_eq!((u32_at(64), u32_at(68), u32_at(72)), (1, 1000, 100));
        assert_eq!((u32_at(76), u32_at(80), u32_at(84)), (0, 4096, 0));
    }

    #[test]
    fn entry_out_layout() {
        let mut w = Writer::default();
        encode_entry(&mut w, &sample(), Duration::new(3600, 5), 9);
        let b = w.as_slice();
        assert_eq!(b.len(), size::ENTRY_OUT);
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        assert_eq!(
            (u64_at(0), u64_at(8), u64_at(16), u64_at(24)),
            (5, 9, 3600, 3600)
        );
        assert_eq!((u32_at(32), u32_at(36)), (5, 5));
        assert_eq!(u64_at(40), 5, "fuse_attr follows");
    }

    #[test]
    fn types_and_times() {
        assert_eq!(dirent_type(None), 0);
        assert_eq!(dirent_type(Some(FileType::Directory)), 4);
        assert_eq!(dirent_type(Some(FileType::RegularFile)), 8);
        assert_eq!(dirent_type(Some(FileType::Symlink)), 10);
        assert_eq!(FileType::Directory.mode_bits(), 0o040000);
        assert_eq!(FileType::Symlink.mode_bits(), 0o120000);
        let before = UNIX_EPOCH - Duration::new(1, 250_000_000);
        assert_eq!(timestamp(before), ((-2i64) as u64, 750_000_000));
        assert_eq!(
            timestamp(UNIX_EPOCH - Duration::from_secs(3)),
            ((-3i64) as u64, 0)
        );
    }
}
