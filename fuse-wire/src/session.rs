//! A session: the INIT handshake, then threads that read requests from
//! `/dev/fuse` and hand them to a [`Filesystem`], until the kernel says
//! ENODEV (the filesystem was unmounted or the connection aborted).
//!
//! Handlers never have to answer on the thread that called them: each gets
//! a reply handle it may move elsewhere. Requests the filesystem has no
//! method for are answered here: ENOSYS for what the protocol lets a
//! filesystem decline (the kernel then stops asking, or falls back to its
//! own handling), ENOSYS to INTERRUPT (the kernel then stops sending them:
//! requests are answered or time out on their own).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread;

use tracing::{debug, error, warn};

use crate::abi::{self, init_flag, size};
use crate::channel::Channel;
use crate::codec::Writer;
use crate::notify::Notifier;
use crate::reply::{
    Errno, Reply, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyXattr,
};
use crate::request::{Operation, Request};

/// The largest WRITE the kernel may send, and with it the size of the
/// largest READ (through `max_pages`).
const MAX_WRITE: u32 = 1 << 20;
/// A read buffer holds the largest request: a WRITE of `MAX_WRITE` bytes
/// after its headers, which one page covers.
const BUFFER_SIZE: usize = MAX_WRITE as usize + 4096;
/// Background requests (read-ahead, asynchronous reads) the kernel keeps
/// in flight at most, and where it starts holding writers back.
const MAX_BACKGROUND: u16 = 16;
const CONGESTION_THRESHOLD: u16 = 12;

/// Capabilities always asked for when offered: reads may arrive in
/// parallel, and large writes and reads are allowed.
const DEFAULT_CAPABILITIES: u64 =
    init_flag::ASYNC_READ | init_flag::BIG_WRITES | init_flag::MAX_PAGES;

/// Which users' requests a session serves; the kernel already refuses
/// everyone but the owner unless mounted with `allow_other`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Acl {
    /// Only the user who mounted.
    #[default]
    Owner,
    /// The owner and root (`allow_root`: mounted `allow_other`, filtered
    /// here).
    RootAndOwner,
    /// Everyone (`allow_other`).
    All,
}

/// How a session runs.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// Threads reading requests.
    pub threads: usize,
    /// Whose requests are served.
    pub acl: Acl,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            threads: 1,
            acl: Acl::Owner,
        }
    }
}

/// What the kernel offered in INIT, and what the filesystem asks for.
#[derive(Debug, Clone, Copy)]
pub struct KernelConfig {
    offered: u64,
    requested: u64,
    minor: u32,
}

impl KernelConfig {
    /// The capabilities the kernel offers (`abi::init_flag`).
    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// Whether the kernel offers `flag`.
    pub fn offers(&self, flag: u64) -> bool {
        self.offered & flag == flag
    }

    /// Asks for `flag`; false (and nothing asked) if the kernel does not
    /// offer it.
    pub fn request(&mut self, flag: u64) -> bool {
        if self.offers(flag) {
            self.requested |= flag;
            true
        } else {
            false
        }
    }

    /// The kernel's minor protocol version.
    pub fn kernel_minor(&self) -> u32 {
        self.minor
    }
}

/// A filesystem, as the requests it answers. Every method gets a reply
/// handle that must be answered once, on any thread; the defaults are what
/// a filesystem without that operation answers.
#[allow(unused_variables)]
pub trait Filesystem: Send + Sync + 'static {
    /// The handshake: ask for capabilities. An error refuses the mount.
    fn init(&mut self, config: &mut KernelConfig) -> io::Result<()> {
        Ok(())
    }

    /// The entry `name` in directory `parent`.
    fn lookup(&self, parent: u64, name: &[u8], reply: ReplyEntry) {
        reply.error(Errno::ENOSYS);
    }

    /// The kernel dropped `nlookup` references to `ino`.
    fn forget(&self, ino: u64, nlookup: u64) {}

    /// Attributes of `ino`.
    fn getattr(&self, ino: u64, fh: Option<u64>, reply: ReplyAttr) {
        reply.error(Errno::ENOSYS);
    }

    /// The target of the symbolic link `ino`.
    fn readlink(&self, ino: u64, reply: ReplyData) {
        reply.error(Errno::ENOSYS);
    }

    /// Opens file `ino` with `flags` (`open(2)`'s).
    fn open(&self, ino: u64, flags: i32, reply: ReplyOpen) {
        reply.opened(0, 0);
    }

    /// At most `size` bytes of `ino` from `offset`.
    fn read(&self, ino: u64, fh: u64, offset: u64, size: u32, reply: ReplyData) {
        reply.error(Errno::ENOSYS);
    }

    /// A descriptor of `ino` was closed.
    fn flush(&self, ino: u64, fh: u64, lock_owner: u64, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    /// The last reference to an open file went away.
    fn release(&self, ino: u64, fh: u64, reply: ReplyEmpty) {
        reply.ok();
    }

    /// Opens directory `ino`.
    fn opendir(&self, ino: u64, flags: i32, reply: ReplyOpen) {
        reply.opened(0, 0);
    }

    /// Entries of `ino` after `offset`.
    fn readdir(&self, ino: u64, fh: u64, offset: u64, reply: ReplyDirectory) {
        reply.error(Errno::ENOSYS);
    }

    /// Entries of `ino` after `offset`, with their attributes.
    fn readdirplus(&self, ino: u64, fh: u64, offset: u64, reply: ReplyDirectoryPlus) {
        reply.error(Errno::ENOSYS);
    }

    /// The last reference to an open directory went away.
    fn releasedir(&self, ino: u64, fh: u64, reply: ReplyEmpty) {
        reply.ok();
    }

    /// `statfs(2)`.
    fn statfs(&self, ino: u64, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, 0, 0, 512, 255, 0);
    }

    /// The extended attribute `name` of `ino`.
    fn getxattr(&self, ino: u64, name: &[u8], size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    /// The names of the extended attributes of `ino`.
    fn listxattr(&self, ino: u64, size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    /// `access(2)` of `ino` with `mask`.
    fn access(&self, ino: u64, mask: i32, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    /// A request that would change the tree (its opcode, `abi::opcode`).
    fn modify(&self, opcode: u32, ino: u64, reply: Reply) {
        reply.error(Errno::ENOSYS);
    }

    /// The filesystem is being unmounted.
    fn destroy(&self) {}
}

/// A mounted filesystem's connection, after the handshake.
pub struct Session<FS: Filesystem> {
    fs: Arc<FS>,
    channel: Arc<Channel>,
    config: SessionConfig,
    /// The user who mounted: the one `Acl::Owner` serves.
    owner: u32,
}

impl<FS: Filesystem> Session<FS> {
    /// Takes over `fd` (a `/dev/fuse` descriptor just mounted) and
    /// completes the INIT handshake with the kernel.
    pub fn new(mut fs: FS, fd: OwnedFd, config: SessionConfig) -> io::Result<Self> {
        let channel = Arc::new(Channel::new(fd));
        handshake(&mut fs, &channel)?;
        // SAFETY: geteuid cannot fail and has no preconditions.
        let owner = unsafe { libc::geteuid() };
        Ok(Session {
            fs: Arc::new(fs),
            channel,
            config,
            owner,
        })
    }

    /// A sender of invalidations on this connection.
    pub fn notifier(&self) -> Notifier {
        Notifier::new(self.channel.clone())
    }

    /// Serves requests on `config.threads` threads (this one included)
    /// until the kernel ends the connection; Ok if it ended by unmounting.
    pub fn run(self) -> io::Result<()> {
        let threads = self.config.threads.max(1);
        let shared = Arc::new(self);
        let mut handles = Vec::with_capacity(threads - 1);
        for i in 1..threads {
            let session = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("fuse-{i}"))
                .spawn(move || session.serve());
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => warn!("cannot start FUSE thread {i}: {e}"),
            }
        }
        let mut result = shared.serve();
        for handle in handles {
            let ended = handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a FUSE thread panicked")));
            if result.is_ok() {
                result = ended;
            }
        }
        result
    }

    /// One thread's loop.
    fn serve(&self) -> io::Result<()> {
        let mut buf = vec![0u8; BUFFER_SIZE];
        loop {
            let n = match self.channel.receive(&mut buf) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(()),
                Err(e) => {
                    error!("reading /dev/fuse: {e}");
                    return Err(e);
                }
            };
            match Request::decode(&buf[..n]) {
                Ok(request) => self.dispatch(request),
                Err(e) => {
                    warn!("{e}");
                    if let Some(unique) = e.unique {
                        Reply::new(unique, self.channel.clone()).error(Errno::EIO);
                    }
                }
            }
        }
    }

    /// Whether `uid` may make requests.
    fn allowed(&self, uid: u32) -> bool {
        match self.config.acl {
            Acl::All => true,
            Acl::RootAndOwner => uid == self.owner || uid == 0,
            Acl::Owner => uid == self.owner,
        }
    }

    fn dispatch(&self, request: Request<'_>) {
        let header = request.header;
        let ino = header.nodeid;
        let fs = &*self.fs;
        let reply = Reply::new(header.unique, self.channel.clone());
        // Requests the kernel sends on its own behalf (write-back, read-
        // ahead, releases) carry no meaningful caller.
        let anyone = matches!(
            request.operation,
            Operation::Init { .. }
                | Operation::Destroy
                | Operation::Read { .. }
                | Operation::ReadDir { .. }
                | Operation::ReadDirPlus { .. }
                | Operation::Forget { .. }
                | Operation::BatchForget { .. }
                | Operation::Release { .. }
                | Operation::ReleaseDir { .. }
                | Operation::Interrupt { .. }
        );
        if !anyone && !self.allowed(header.uid) {
            return reply.error(Errno::EACCES);
        }
        match request.operation {
            Operation::Init { .. } => {
                error!("a second FUSE INIT");
                reply.error(Errno::EIO);
            }
            Operation::Lookup { name } => fs.lookup(ino, name, reply.into()),
            // FORGET and BATCH_FORGET take no reply.
            Operation::Forget { nlookup } => {
                reply.disarm();
                fs.forget(ino, nlookup);
            }
            Operation::BatchForget { forgets } => {
                reply.disarm();
                for (ino, nlookup) in forgets {
                    fs.forget(ino, nlookup);
                }
            }
            Operation::GetAttr { fh } => fs.getattr(ino, fh, reply.into()),
            Operation::ReadLink => fs.readlink(ino, reply.into()),
            Operation::Open { flags } => fs.open(ino, flags, reply.into()),
            Operation::Read { fh, offset, size } => fs.read(ino, fh, offset, size, reply.into()),
            Operation::Flush { fh, lock_owner } => fs.flush(ino, fh, lock_owner, reply.into()),
            Operation::Release { fh } => fs.release(ino, fh, reply.into()),
            Operation::OpenDir { flags } => fs.opendir(ino, flags, reply.into()),
            Operation::ReadDir { fh, offset, size } => {
                fs.readdir(ino, fh, offset, ReplyDirectory::new(reply, size))
            }
            Operation::ReadDirPlus { fh, offset, size } => {
                fs.readdirplus(ino, fh, offset, ReplyDirectoryPlus::new(reply, size))
            }
            Operation::ReleaseDir { fh } => fs.releasedir(ino, fh, reply.into()),
            Operation::StatFs => fs.statfs(ino, reply.into()),
            Operation::GetXattr { name, size } => fs.getxattr(ino, name, size, reply.into()),
            Operation::ListXattr { size } => fs.listxattr(ino, size, reply.into()),
            Operation::Access { mask } => fs.access(ino, mask, reply.into()),
            Operation::Interrupt { unique } => {
                debug!("FUSE request {unique} interrupted; interrupts are not handled");
                reply.error(Errno::ENOSYS);
            }
            Operation::Destroy => {
                fs.destroy();
                ReplyEmpty::from(reply).ok();
            }
            Operation::Modify(op) => fs.modify(op, ino, reply),
            Operation::Other(op) => {
                debug!("FUSE opcode {op} is not supported");
                reply.error(Errno::ENOSYS);
            }
        }
    }
}

/// Reads INIT, lets the filesystem choose its capabilities, and answers.
fn handshake<FS: Filesystem>(fs: &mut FS, channel: &Arc<Channel>) -> io::Result<()> {
    let mut buf = vec![0u8; BUFFER_SIZE];
    let n = channel.receive(&mut buf).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENODEV) {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the kernel ended the connection before INIT",
            )
        } else {
            e
        }
    })?;
    let request =
        Request::decode(&buf[..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let reply = Reply::new(request.header.unique, channel.clone());
    let Operation::Init {
        major,
        minor,
        max_readahead,
        flags,
    } = request.operation
    else {
        reply.error(Errno::EIO);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("FUSE opcode {} before INIT", request.header.opcode),
        ));
    };
    if major != abi::KERNEL_VERSION || minor < abi::MIN_KERNEL_MINOR_VERSION {
        reply.error(Errno::EPROTO);
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "the kernel speaks FUSE {major}.{minor}; {}.{} or later is needed",
                abi::KERNEL_VERSION,
                abi::MIN_KERNEL_MINOR_VERSION
            ),
        ));
    }
    let mut config = KernelConfig {
        offered: flags,
        requested: DEFAULT_CAPABILITIES & flags,
        minor,
    };
    if let Err(e) = fs.init(&mut config) {
        reply.error(Errno(e.raw_os_error().unwrap_or(libc::EIO)));
        return Err(e);
    }
    let out = init_out(&config, max_readahead);
    debug!(
        "FUSE INIT: kernel {major}.{minor}, offered {flags:#x}, granted {:#x}",
        config.requested & config.offered
    );
    ReplyData::from(reply).data(&out);
    Ok(())
}

/// `fuse_init_out` for what `config` settled.
fn init_out(config: &KernelConfig, max_readahead: u32) -> Vec<u8> {
    let minor = config.minor.min(abi::KERNEL_MINOR_VERSION);
    let mut granted = config.requested & config.offered;
    if granted >> 32 != 0 {
        granted |= init_flag::INIT_EXT;
    }
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as u32,
        _ => 4096,
    };
    let max_pages = (MAX_WRITE / page).clamp(1, u32::from(u16::MAX)) as u16;
    let mut w = Writer::with_capacity(size::INIT_OUT);
    w.u32(abi::KERNEL_VERSION).u32(minor).u32(max_readahead);
    w.u32(granted as u32);
    w.u16(MAX_BACKGROUND).u16(CONGESTION_THRESHOLD);
    w.u32(MAX_WRITE);
    if minor < 23 {
        debug_assert_eq!(w.len(), size::INIT_OUT_COMPAT_22);
        return w.into_bytes();
    }
    // time_gran: timestamps are exact to the nanosecond.
    w.u32(1).u16(max_pages).u16(0).u32((granted >> 32) as u32);
    w.bytes(&[0; 28]);
    debug_assert_eq!(w.len(), size::INIT_OUT);
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_out_layout_and_version() {
        let config = KernelConfig {
            offered: init_flag::ASYNC_READ | init_flag::DO_READDIRPLUS | (1 << 33),
            requested: init_flag::ASYNC_READ | init_flag::DO_READDIRPLUS | init_flag::MAX_PAGES,
            minor: 44,
        };
        let out = init_out(&config, 131072);
        assert_eq!(out.len(), size::INIT_OUT);
        let u32_at = |i: usize| u32::from_le_bytes(out[i..i + 4].try_into().unwrap());
        let u16_at = |i: usize| u16::from_le_bytes(out[i..i + 2].try_into().unwrap());
        assert_eq!((u32_at(0), u32_at(4), u32_at(8)), (7, 38, 131072));
        // Granted: what was both asked and offered (MAX_PAGES was not).
        assert_eq!(
            u64::from(u32_at(12)),
            init_flag::ASYNC_READ | init_flag::DO_READDIRPLUS
        );
        assert_eq!(
            (u16_at(16), u16_at(18)),
            (MAX_BACKGROUND, CONGESTION_THRESHOLD)
        );
        assert_eq!((u32_at(20), u32_at(24)), (MAX_WRITE, 1));
        assert_eq!(u16_at(28), 256);
        assert_eq!(u32_at(32), 0, "flags2: nothing above bit 31 asked");

        let old = KernelConfig {
            minor: 19,
            ..config
        };
        let out = init_out(&old, 4096);
        assert_eq!(out.len(), size::INIT_OUT_COMPAT_22);
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()), 19);
    }

    #[test]
    fn asking_for_what_is_not_offered_is_refused() {
        let mut config = KernelConfig {
            offered: init_flag::DO_READDIRPLUS,
            requested: 0,
            minor: 38,
        };
        assert!(config.request(init_flag::DO_READDIRPLUS));
        assert!(!config.request(init_flag::CACHE_SYMLINKS));
        assert_eq!(config.requested, init_flag::DO_READDIRPLUS);
        assert!(!config.offers(init_flag::NO_OPENDIR_SUPPORT));
    }
}
