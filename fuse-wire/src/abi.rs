//! The numbers of the protocol, as `include/uapi/linux/fuse.h` defines
//! them: the version spoken, the opcodes, capability and open flags, and
//! the sizes of the fixed-layout structures (the tests of each message
//! check its encoding against these).

/// The major version of the protocol; the kernel and the filesystem must
/// agree on it.
pub const KERNEL_VERSION: u32 = 7;
/// The highest minor version whose layouts this crate reads and writes
/// (the INIT reply answers the lower of this and the kernel's).
pub const KERNEL_MINOR_VERSION: u32 = 38;
/// The lowest minor version accepted: 7.12 is where every structure used
/// here took the layout encoded here (attributes with `blksize`, `umask`
/// in the creation requests, the 40-byte `fuse_read_in`).
pub const MIN_KERNEL_MINOR_VERSION: u32 = 12;

/// Request opcodes (`enum fuse_opcode`).
#[allow(missing_docs)]
pub mod opcode {
    pub const LOOKUP: u32 = 1;
    pub const FORGET: u32 = 2;
    pub const GETATTR: u32 = 3;
    pub const SETATTR: u32 = 4;
    pub const READLINK: u32 = 5;
    pub const SYMLINK: u32 = 6;
    pub const MKNOD: u32 = 8;
    pub const MKDIR: u32 = 9;
    pub const UNLINK: u32 = 10;
    pub const RMDIR: u32 = 11;
    pub const RENAME: u32 = 12;
    pub const LINK: u32 = 13;
    pub const OPEN: u32 = 14;
    pub const READ: u32 = 15;
    pub const WRITE: u32 = 16;
    pub const STATFS: u32 = 17;
    pub const RELEASE: u32 = 18;
    pub const FSYNC: u32 = 20;
    pub const SETXATTR: u32 = 21;
    pub const GETXATTR: u32 = 22;
    pub const LISTXATTR: u32 = 23;
    pub const REMOVEXATTR: u32 = 24;
    pub const FLUSH: u32 = 25;
    pub const INIT: u32 = 26;
    pub const OPENDIR: u32 = 27;
    pub const READDIR: u32 = 28;
    pub const RELEASEDIR: u32 = 29;
    pub const FSYNCDIR: u32 = 30;
    pub const GETLK: u32 = 31;
    pub const SETLK: u32 = 32;
    pub const SETLKW: u32 = 33;
    pub const ACCESS: u32 = 34;
    pub const CREATE: u32 = 35;
    pub const INTERRUPT: u32 = 36;
    pub const BMAP: u32 = 37;
    pub const DESTROY: u32 = 38;
    pub const IOCTL: u32 = 39;
    pub const POLL: u32 = 40;
    pub const NOTIFY_REPLY: u32 = 41;
    pub const BATCH_FORGET: u32 = 42;
    pub const FALLOCATE: u32 = 43;
    pub const READDIRPLUS: u32 = 44;
    pub const RENAME2: u32 = 45;
    pub const LSEEK: u32 = 46;
    pub const COPY_FILE_RANGE: u32 = 47;
    pub const SETUPMAPPING: u32 = 48;
    pub const REMOVEMAPPING: u32 = 49;
    pub const SYNCFS: u32 = 50;
    pub const TMPFILE: u32 = 51;
}

/// Notification codes (`enum fuse_notify_code`), sent in the `error`
/// field of an unsolicited message.
pub mod notify_code {
    /// Forget the attributes and cached pages of an inode.
    pub const INVAL_INODE: i32 = 2;
    /// Forget a name in a directory.
    pub const INVAL_ENTRY: i32 = 3;
}

/// Capability flags of `fuse_init_in`/`fuse_init_out` (`FUSE_*`).
#[allow(missing_docs)]
pub mod init_flag {
    pub const ASYNC_READ: u64 = 1 << 0;
    pub const BIG_WRITES: u64 = 1 << 5;
    pub const DO_READDIRPLUS: u64 = 1 << 13;
    pub const READDIRPLUS_AUTO: u64 = 1 << 14;
    pub const PARALLEL_DIROPS: u64 = 1 << 18;
    pub const MAX_PAGES: u64 = 1 << 22;
    pub const CACHE_SYMLINKS: u64 = 1 << 23;
    pub const NO_OPENDIR_SUPPORT: u64 = 1 << 24;
    /// The kernel sends (and reads) the upper 32 flag bits in `flags2`.
    pub const INIT_EXT: u64 = 1 << 30;
}

/// Flags of `fuse_open_out.open_flags` (`FOPEN_*`).
pub mod fopen {
    /// Keep the page cache of the file across opens.
    pub const KEEP_CACHE: u32 = 1 << 1;
    /// Let the kernel cache the directory's entries.
    pub const CACHE_DIR: u32 = 1 << 3;
}

/// `fuse_getattr_in.getattr_flags`: the `fh` field is valid.
pub const GETATTR_FH: u32 = 1 << 0;
/// Set in the `unique` of an INTERRUPT request.
pub const INT_REQ_BIT: u64 = 1 << 0;
/// The smallest read buffer the kernel accepts (`FUSE_MIN_READ_BUFFER`).
pub const MIN_READ_BUFFER: usize = 8192;

/// Sizes of the structures, in bytes.
#[allow(missing_docs)]
pub mod size {
    pub const IN_HEADER: usize = 40;
    pub const OUT_HEADER: usize = 16;
    pub const ATTR: usize = 88;
    pub const ENTRY_OUT: usize = 128;
    pub const ATTR_OUT: usize = 104;
    pub const OPEN_OUT: usize = 16;
    pub const KSTATFS: usize = 80;
    pub const GETXATTR_OUT: usize = 8;
    /// `fuse_dirent` before its name (`FUSE_NAME_OFFSET`).
    pub const DIRENT: usize = 24;
    /// `fuse_direntplus` before its name (`FUSE_NAME_OFFSET_DIRENTPLUS`).
    pub const DIRENTPLUS: usize = ENTRY_OUT + DIRENT;
    pub const INIT_IN_COMPAT: usize = 16;
    pub const INIT_OUT: usize = 64;
    /// The INIT reply to a kernel older than 7.23.
    pub const INIT_OUT_COMPAT_22: usize = 24;
    pub const FORGET_IN: usize = 8;
    pub const BATCH_FORGET_IN: usize = 8;
    pub const FORGET_ONE: usize = 16;
    pub const GETATTR_IN: usize = 16;
    pub const OPEN_IN: usize = 8;
    pub const READ_IN: usize = 40;
    pub const RELEASE_IN: usize = 24;
    pub const FLUSH_IN: usize = 24;
    pub const GETXATTR_IN: usize = 8;
    pub const ACCESS_IN: usize = 8;
    pub const INTERRUPT_IN: usize = 8;
    pub const NOTIFY_INVAL_INODE_OUT: usize = 24;
    pub const NOTIFY_INVAL_ENTRY_OUT: usize = 16;
}

/// Directory entries are padded to 8 bytes (`FUSE_DIRENT_ALIGN`).
pub const fn dirent_align(len: usize) -> usize {
    (len + 7) & !7
}
