//! The life of a mount: check the mountpoint, start the evaluator, check
//! the root, mount, serve until a signal or an external unmount, unmount.
//!
//! Mounting as root calls mount(2) directly with type `fuse.attrfs`.
//! Without the privilege (EPERM, or EACCES opening `/dev/fuse`), or with
//! `-o auto_unmount`, it goes
//! through `fusermount3` (`attrfs_fuse::fusermount`), which also gives
//! `fuse.attrfs`. Either way the session on the `/dev/fuse` descriptor is
//! `attrfs_fuse::Session`.
//!
//! SIGINT, SIGTERM and SIGHUP are blocked in every thread and taken by a
//! dedicated thread with `sigwait`, so no handler runs in the middle of a
//! FUSE thread. Before the filesystem is mounted a signal just ends the
//! process (there is nothing to clean up); afterwards it unmounts (lazily
//! if the mount is busy) and the process exits once the session ends.

use std::ffi::{CString, OsString};
use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::live::{self, Generations};
use attrfs_fuse::{fusermount, Acl, Session, SessionConfig};
use attrfs_vfs::{AttrPath, EvalService, NodeKind, ServiceConfig, ServiceError};
use parking_lot::Mutex;
use tracing::{error, info, warn};

use crate::answer_cache;
use crate::fuse::AttrFs;
use crate::{source, MountArgs};

/// The filesystem type name: the mount shows up as `fuse.attrfs`.
const SUBTYPE: &str = "attrfs";

/// Why `attrfs mount` stopped before or while mounting.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The mountpoint does not exist.
    #[error("mountpoint {0} does not exist")]
    MissingMountpoint(PathBuf),
    /// The mountpoint is not a directory.
    #[error("mountpoint {0} is not a directory")]
    NotADirectory(PathBuf),
    /// The mountpoint has entries; mounting would hide them.
    #[error("mountpoint {0} is not empty (attrfs mounts only on an empty directory)")]
    NotEmpty(PathBuf),
    /// Something is already mounted there.
    #[error("mountpoint {0} is busy: something is already mounted there")]
    Busy(PathBuf),
    /// The mountpoint cannot be inspected.
    #[error("cannot use mountpoint {0}: {1}")]
    Mountpoint(PathBuf, io::Error),
    /// A `-o` option attrfs cannot honour.
    #[error("{0}")]
    BadOption(String),
    /// The evaluator could not start (e.g. the file does not parse).
    #[error("{0}")]
    Start(#[from] ServiceError),
    /// The root value cannot be mounted.
    #[error("{0}")]
    Root(String),
    /// mount(2) or fusermount3 failed.
    #[error("cannot mount on {0}: {1}")]
    Mount(PathBuf, io::Error),
}

impl MountError {
    /// Usage mistakes exit 2, failures of the expression or the system 1.
    fn exit_code(&self) -> u8 {
        match self {
            MountError::BadOption(_) => 2,
            _ => 1,
        }
    }
}

/// Runs `attrfs mount` to completion and returns the exit code.
pub fn run(args: &MountArgs) -> ExitCode {
    // Checked first, as `attrfs eval` does: the same arguments are
    // refused with the same message whatever the mountpoint.
    if let Err(e) = args.invocation() {
        eprintln!("attrfs mount: {e}");
        return ExitCode::from(2);
    }
    let config = match service_config(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("attrfs mount: {message}");
            return ExitCode::from(2);
        }
    };
    let options = match MountOptions::parse(&args.options) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("attrfs mount: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let mountpoint = match check_mountpoint(args.mountpoint()) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("attrfs mount: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let factory = match source::make_backend(args) {
        Ok(factory) => factory,
        Err(message) => {
            eprintln!("attrfs mount: {message}");
            return ExitCode::from(2);
        }
    };

    // Before any thread exists, so that every thread inherits the mask.
    let signals = Signals::block();
    let phase = std::sync::Arc::new(Mutex::new(Phase::Starting));
    let (events_tx, events) = mpsc::channel();
    signals.spawn_waiter(phase.clone(), events_tx.clone());

    let cache = answer_cache::MountCache::open(args).map(std::sync::Arc::new);
    let stored = cache.as_ref().and_then(|c| c.validate());
    // Stored answers that hold need no evaluation: the worker starts with
    // the first question they cannot answer.
    let factory = match stored {
        Some(_) => match source::make_lazy_backend(args) {
            Ok(lazy) => lazy,
            Err(_) => factory,
        },
        None => factory,
    };
    let first = cache.as_ref().map(|c| (&**c, stored));
    let service = match start_service(factory, config.clone(), first) {
        Ok(service) => service,
        Err(e) => {
            eprintln!("attrfs mount: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let generations = Generations::new(service);
    let current = generations.clone();
    let fs = AttrFs::new(generations.clone());
    let inodes = fs.inodes();

    // Held across mounting: a signal that arrives meanwhile waits until the
    // unmounter is in place instead of leaving a stale mount behind.
    let mut phase_guard = phase.lock();
    let (session, unmounter) = match mount(fs, &mountpoint, &options) {
        Ok(mounted) => mounted,
        Err(e) => {
            eprintln!("attrfs mount: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    *phase_guard = Phase::Mounted;
    drop(phase_guard);
    info!("mounted on {}", mountpoint.display());
    // The built-in test tree reads no sources.
    if !args.no_watch && !args.fake_tree {
        let again = args.clone();
        let timeout = config.eval_timeout;
        let cache = cache.clone();
        let start: live::Start = Box::new(move || {
            let failed = attrfs_vfs::process::FailedInputs::default();
            let factory = source::make_backend_reporting(&again, Some(failed.clone())).map_err(
                |message| live::Failure {
                    message,
                    inputs: Vec::new(),
                },
            )?;
            if let Some(cache) = &cache {
                cache.renew();
            }
            let fresh = cache.as_ref().map(|c| (&**c, None));
            start_service(factory, config.clone(), fresh).map_err(|e| live::Failure {
                message: e.to_string(),
                inputs: std::mem::take(&mut *failed.lock()),
            })
        });
        let notifier = session.notifier();
        if let Err(e) = live::spawn(generations, inodes, notifier, start, timeout) {
            warn!("cannot start watching the sources ({e}); edits will not be noticed");
        }
    }
    // Held until this function returns; its end of the pipe closing (on any
    // exit, even an abort) is the reaper's cue.
    let _reaper = spawn_reaper(&mountpoint);

    let session_events = events_tx;
    let spawned = thread::Builder::new()
        .name("attrfs-session".to_owned())
        .spawn(move || {
            let result = session.run();
            let _ = session_events.send(Event::SessionEnded(result));
        });
    if let Err(e) = spawned {
        error!("cannot start the FUSE session thread: {e}");
        unmounter.unmount(&mountpoint);
        return ExitCode::FAILURE;
    }

    let code = match events.recv() {
        Ok(Event::Signal(signal)) => {
            info!(
                "received {}, unmounting {}",
                signal_name(signal),
                mountpoint.display()
            );
            unmounter.unmount(&mountpoint);
            // The session ends when the kernel drops the connection. A lazy
            // unmount of a busy mount may keep it alive; the process exit
            // closes /dev/fuse, which ends it in any case.
            match events.recv_timeout(Duration::from_secs(5)) {
                Ok(Event::SessionEnded(Err(e))) => warn!("the FUSE session ended with: {e}"),
                Ok(_) => {}
                Err(_) => warn!("the FUSE session did not end within 5 s; exiting anyway"),
            }
            ExitCode::SUCCESS
        }
        Ok(Event::SessionEnded(Ok(()))) => {
            if is_mount_point(&mountpoint) {
                // The connection was aborted (e.g. through
                // /sys/fs/fuse/connections) but the mount is still there:
                // do not leave it behind as "transport endpoint is not
                // connected".
                warn!(
                    "the FUSE connection ended; unmounting {}",
                    mountpoint.display()
                );
                unmounter.unmount(&mountpoint);
            } else {
                info!("{} was unmounted", mountpoint.display());
            }
            ExitCode::SUCCESS
        }
        Ok(Event::SessionEnded(Err(e))) => {
            error!("the FUSE session failed: {e}");
            unmounter.unmount(&mountpoint);
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    };
    // Answers evaluated since the last commit are stored before exiting,
    // once the evaluation that answered the last read has synced them.
    if let Some(cache) = &cache {
        current.current().settle(Duration::from_secs(1));
        cache.flush();
    }
    code
}

fn service_config(args: &MountArgs) -> Result<ServiceConfig, String> {
    let timeout = Duration::try_from_secs_f64(args.eval_timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            format!(
                "--eval-timeout {} is not a positive number of seconds",
                args.eval_timeout
            )
        })?;
    let cache_size = std::num::NonZeroUsize::new(args.cache_size)
        .ok_or_else(|| "--cache-size must be at least 1".to_owned())?;
    if args.workers == 0 || args.workers > 64 {
        return Err(format!(
            "--workers {} is not between 1 and 64",
            args.workers
        ));
    }
    Ok(ServiceConfig {
        eval_timeout: timeout,
        cache_size,
        // An evaluation that ignores its interrupt this long is abandoned;
        // a fraction of the timeout, but never so short that a busy
        // machine's scheduling delay counts as "ignored".
        stuck_grace: (timeout / 4).max(Duration::from_secs(2)),
        workers: args.workers,
        read_ahead: !args.no_read_ahead,
        ..ServiceConfig::default()
    })
}

/// Starts the evaluator and checks that the root can be mounted, so that a
/// broken expression is reported before anything is mounted.
fn start_service(
    factory: attrfs_vfs::BackendFactory,
    config: ServiceConfig,
    cache: Option<(
        &answer_cache::MountCache,
        Option<Vec<attrfs_vfs::inputs::Input>>,
    )>,
) -> Result<EvalService, MountError> {
    let service = EvalService::start(factory, config)?;
    if let Some((cache, stored)) = cache {
        cache.attach(&service, stored);
    }
    let root = service
        .stat(&AttrPath::root())
        .map_err(|e| MountError::Root(format!("cannot evaluate the root value: {e}")))?;
    if let Some(message) = &root.error {
        return Err(MountError::Root(message.clone()));
    }
    if root.kind != NodeKind::Directory {
        return Err(MountError::Root(format!(
            "the root value is a {}, not an attribute set or list; there is nothing to mount",
            root.nix_type
        )));
    }
    Ok(service)
}

/// Checks the mountpoint and returns its canonical path.
pub fn check_mountpoint(path: &Path) -> Result<PathBuf, MountError> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(MountError::MissingMountpoint(path.to_owned()))
        }
        Err(e) => return Err(MountError::Mountpoint(path.to_owned(), e)),
    };
    if !metadata.is_dir() {
        return Err(MountError::NotADirectory(path.to_owned()));
    }
    let canonical =
        fs::canonicalize(path).map_err(|e| MountError::Mountpoint(path.to_owned(), e))?;
    if is_mount_point(&canonical) {
        return Err(MountError::Busy(path.to_owned()));
    }
    let mut entries =
        fs::read_dir(&canonical).map_err(|e| MountError::Mountpoint(path.to_owned(), e))?;
    if entries.next().is_some() {
        return Err(MountError::NotEmpty(path.to_owned()));
    }
    Ok(canonical)
}

/// Whether `path` (canonical) is the mount point of some mount, per
/// `/proc/self/mountinfo`.
fn is_mount_point(path: &Path) -> bool {
    let Ok(mountinfo) = fs::read(Path::new("/proc/self/mountinfo")) else {
        return false;
    };
    mountinfo.split(|&b| b == b'\n').any(|line| {
        line.split(|&b| b == b' ')
            .nth(4)
            .is_some_and(|field| unescape_mountinfo(field) == path.as_os_str().as_bytes())
    })
}

/// Undoes the octal escapes (`\040` for a space, ...) of mountinfo fields.
fn unescape_mountinfo(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (field[i], octal) {
            (b'\\', Some(digits)) => {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// The parsed `-o` options.
#[derive(Debug, Default)]
struct MountOptions {
    fsname: Option<String>,
    acl: Acl,
    auto_unmount: bool,
    /// Let the kernel check permissions from the mode bits. Off by default:
    /// every node is world-readable and nothing writable anyway, and with it
    /// the kernel refreshes expired attributes before any permission check,
    /// which makes `getxattr user.nix.error` on a failing value fail with the
    /// same EIO as its `stat`.
    default_permissions: bool,
    /// mount(2) flags beyond the fixed `MS_RDONLY | MS_NOSUID | MS_NODEV`.
    flags: libc::c_ulong,
    /// Options passed to the kernel in mount(2)'s data string.
    data: Vec<String>,
    /// The same options, for the `fusermount3` path.
    helper: Vec<String>,
}

impl MountOptions {
    fn parse(values: &[String]) -> Result<Self, MountError> {
        let mut options = MountOptions::default();
        for option in values
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|o| !o.is_empty())
        {
            let flag = |options: &mut MountOptions, bit: libc::c_ulong, name: &str| {
                options.flags |= bit;
                options.helper.push(name.to_owned());
            };
            match option {
                "ro" | "nosuid" | "nodev" => {}
                "default_permissions" => options.default_permissions = true,
                "rw" => {
                    return Err(MountError::BadOption(
                        "-o rw: attrfs is a read-only filesystem".to_owned(),
                    ))
                }
                "suid" | "dev" => {
                    return Err(MountError::BadOption(format!(
                        "-o {option}: attrfs always mounts nosuid,nodev"
                    )))
                }
                "allow_other" => options.acl = Acl::All,
                "allow_root" => options.acl = Acl::RootAndOwner,
                "auto_unmount" => options.auto_unmount = true,
                "noexec" => flag(&mut options, libc::MS_NOEXEC, option),
                "noatime" => flag(&mut options, libc::MS_NOATIME, option),
                "sync" => flag(&mut options, libc::MS_SYNCHRONOUS, option),
                "dirsync" => flag(&mut options, libc::MS_DIRSYNC, option),
                "exec" | "atime" | "async" => {}
                _ => {
                    if let Some(name) = option.strip_prefix("fsname=") {
                        options.fsname = Some(name.to_owned());
                    } else if option.starts_with("subtype=") {
                        return Err(MountError::BadOption(
                            "-o subtype: the filesystem type is always fuse.attrfs".to_owned(),
                        ));
                    } else {
                        // Kernel options such as max_read=N or blksize=N;
                        // the kernel rejects what it does not know.
                        options.data.push(option.to_owned());
                        options.helper.push(option.to_owned());
                    }
                }
            }
        }
        Ok(options)
    }

    fn fsname(&self) -> &str {
        self.fsname.as_deref().unwrap_or(SUBTYPE)
    }
}

/// How to undo the mount.
enum Unmounter {
    /// We called mount(2) ourselves.
    Direct,
    /// fusermount3 mounted.
    Fusermount(Mutex<fusermount::Mount>),
}

impl Unmounter {
    /// Unmounts, and makes sure of it: with `auto_unmount`, unmounting
    /// only closes the socket to the fusermount3 helper, which does not
    /// always unmount, and a stale mount without its daemon is the worst
    /// outcome. So the result is checked in `/proc/self/mountinfo` and the
    /// mount detached by other means if it is still there.
    fn unmount(&self, mountpoint: &Path) {
        let result = match self {
            Unmounter::Direct => umount_direct(mountpoint),
            Unmounter::Fusermount(mount) => mount.lock().unmount(mountpoint),
        };
        if let Err(e) = &result {
            warn!("unmounting {}: {e}", mountpoint.display());
        }
        // The helper unmounts asynchronously: give it a moment.
        for _ in 0..20 {
            if !is_mount_point(mountpoint) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        warn!(
            "{} is still mounted; detaching it with fusermount3 -u -z",
            mountpoint.display()
        );
        let detached = fusermount::unmount(mountpoint, true).is_ok();
        if !detached && umount_direct(mountpoint).is_err() {
            error!("could not unmount {}", mountpoint.display());
        }
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn umount_direct(mountpoint: &Path) -> io::Result<()> {
    let target = cstring(mountpoint)?;
    // SAFETY: `target` is a valid NUL-terminated path.
    if unsafe { libc::umount2(target.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        // Busy (a shell sits in it, a file is open): detach it now, the
        // kernel finishes when the last user leaves.
        Some(libc::EBUSY) => {
            warn!(
                "{} is busy; detaching it (lazy unmount)",
                mountpoint.display()
            );
            // SAFETY: as above.
            if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
        // Already gone (unmounted from outside meanwhile).
        Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
        _ => Err(error),
    }
}

/// Mounts `fs` and returns the session to run and how to unmount.
fn mount(
    fs: AttrFs,
    mountpoint: &Path,
    options: &MountOptions,
) -> Result<(Session<AttrFs>, Unmounter), MountError> {
    let mount_error = |e| MountError::Mount(mountpoint.to_owned(), e);
    let config = SessionConfig {
        // FUSE threads only consult caches and hand requests to the
        // service, so a couple suffice to keep cached answers flowing
        // while others wait.
        threads: thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 4),
        acl: options.acl,
    };

    if !options.auto_unmount {
        match mount_direct(mountpoint, options) {
            Ok(fd) => {
                let session = Session::new(fs, fd, config).map_err(|e| {
                    // The kernel mount exists but the handshake failed.
                    let _ = umount_direct(mountpoint);
                    mount_error(e)
                })?;
                return Ok((session, Unmounter::Direct));
            }
            // EPERM: mount(2) needs CAP_SYS_ADMIN. EACCES: /dev/fuse itself
            // is not open to this user (mode 0600 on some systems); the
            // setuid helper opens it.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                info!("not allowed to mount directly ({e}); using fusermount3");
            }
            Err(e) => return Err(mount_error(e)),
        }
    }

    let mut helper_options = vec![
        format!("fsname={}", options.fsname()),
        format!("subtype={SUBTYPE}"),
        "ro".to_owned(),
        "nosuid".to_owned(),
        "nodev".to_owned(),
    ];
    helper_options.extend(options.helper.iter().cloned());
    match options.acl {
        Acl::Owner => {}
        // allow_root is filtered by the session; the kernel sees allow_other.
        Acl::RootAndOwner | Acl::All => helper_options.push("allow_other".to_owned()),
    }
    if options.auto_unmount {
        if options.acl == Acl::Owner {
            return Err(mount_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "-o auto_unmount needs allow_other or allow_root (fusermount3 refuses it otherwise)",
            )));
        }
        helper_options.push("auto_unmount".to_owned());
    }
    if options.default_permissions {
        helper_options.push("default_permissions".to_owned());
    }
    let (fd, helper_mount) = fusermount::mount(mountpoint, &helper_options).map_err(mount_error)?;
    let unmounter = Unmounter::Fusermount(Mutex::new(helper_mount));
    let session = match Session::new(fs, fd, config) {
        Ok(session) => session,
        Err(e) => {
            unmounter.unmount(mountpoint);
            return Err(mount_error(e));
        }
    };
    Ok((session, unmounter))
}

/// mount(2) with type `fuse.attrfs` on a fresh /dev/fuse descriptor.
fn mount_direct(mountpoint: &Path, options: &MountOptions) -> io::Result<OwnedFd> {
    // SAFETY: a plain open(2) of a constant path.
    let raw = unsafe { libc::open(c"/dev/fuse".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` was just opened and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut data = format!("fd={raw},rootmode=40000,user_id={uid},group_id={gid}");
    if options.default_permissions {
        data.push_str(",default_permissions");
    }
    if options.acl != Acl::Owner {
        // RootAndOwner also needs allow_other; the session filters by uid.
        data.push_str(",allow_other");
    }
    for option in &options.data {
        data.push(',');
        data.push_str(option);
    }
    let source = CString::new(options.fsname())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "fsname contains NUL"))?;
    let target = cstring(mountpoint)?;
    let fstype = CString::new(format!("fuse.{SUBTYPE}"))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad type"))?;
    let data = CString::new(data)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "option contains NUL"))?;
    let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | options.flags;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive
    // the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// What the main thread waits for once mounted.
enum Event {
    Signal(libc::c_int),
    SessionEnded(io::Result<()>),
}

/// Whether a signal should end the process (nothing mounted yet) or
/// unmount.
enum Phase {
    Starting,
    Mounted,
}

struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    /// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and so in
    /// every thread started afterwards).
    fn block() -> Self {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before
        // use; pthread_sigmask only reads it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, signal);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Signals { set }
        }
    }

    fn spawn_waiter(self, phase: std::sync::Arc<Mutex<Phase>>, events: mpsc::Sender<Event>) {
        let spawned = thread::Builder::new()
            .name("attrfs-signals".to_owned())
            .spawn(move || loop {
                let mut signal: libc::c_int = 0;
                // SAFETY: `self.set` is an initialised signal set and
                // `signal` a valid out-pointer.
                if unsafe { libc::sigwait(&self.set, &mut signal) } != 0 {
                    continue;
                }
                match *phase.lock() {
                    Phase::Starting => {
                        eprintln!("attrfs mount: interrupted by {}", signal_name(signal));
                        std::process::exit(128 + signal);
                    }
                    Phase::Mounted => {
                        if events.send(Event::Signal(signal)).is_err() {
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            // Without it signals stay blocked; `attrfs umount` still works.
            error!("cannot start the signal thread: {e}");
        }
    }
}

fn signal_name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// The `major:minor` device of the topmost mount at `path` (canonical), per
/// `/proc/self/mountinfo`.
fn mount_device(path: &Path) -> Option<String> {
    let mountinfo = fs::read(Path::new("/proc/self/mountinfo")).ok()?;
    // From the end: the topmost mount at a path is listed last.
    mountinfo
        .rsplit(|&b| b == b'\n')
        .filter(|line| {
            line.split(|&b| b == b' ')
                .nth(4)
                .is_some_and(|field| unescape_mountinfo(field) == path.as_os_str().as_bytes())
        })
        .filter_map(|line| line.split(|&b| b == b' ').nth(2))
        .map(|dev| String::from_utf8_lossy(dev).into_owned())
        .next()
}

/// Starts `attrfs __reap-mount`, which unmounts if this process dies
/// without unmounting (a crash, SIGKILL, an abort): otherwise the mount
/// would stay behind as "transport endpoint is not connected". The same
/// job as fusermount3's `auto_unmount`, without requiring `allow_other`.
fn spawn_reaper(mountpoint: &Path) -> Option<std::process::ChildStdin> {
    let dev = mount_device(mountpoint)?;
    let exe = std::env::current_exe().ok()?;
    let spawned = Command::new(exe)
        .arg("__reap-mount")
        .arg(mountpoint)
        .arg(dev)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        // Never keep the mount busy.
        .current_dir("/")
        .spawn();
    match spawned {
        Ok(mut child) => child.stdin.take(),
        Err(e) => {
            warn!("cannot start the unmount-on-crash helper: {e}");
            None
        }
    }
}

/// `attrfs __reap-mount MOUNTPOINT DEV`: waits for EOF on stdin (the mount
/// daemon exited), then detaches the mount if it is still the same one.
pub fn reap_command(mountpoint: &Path, dev: &str) -> ExitCode {
    // Ctrl-C and a closing terminal reach the whole process group; the
    // daemon handles those itself, and this helper must outlive it.
    // SAFETY: setting signal dispositions to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let mut buf = [0u8; 64];
    let mut stdin = io::stdin();
    loop {
        match io::Read::read(&mut stdin, &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if mount_device(mountpoint).as_deref() != Some(dev) {
        // Unmounted cleanly, or something else is mounted there now.
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "attrfs: the daemon for {} exited without unmounting; detaching the mount",
        mountpoint.display()
    );
    let detached = cstring(mountpoint).is_ok_and(|target| {
        // SAFETY: `target` is a valid NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) == 0 }
    }) || fusermount::unmount(mountpoint, true).is_ok();
    if detached {
        ExitCode::SUCCESS
    } else {
        eprintln!("attrfs: could not unmount {}", mountpoint.display());
        ExitCode::FAILURE
    }
}

/// `attrfs umount MOUNTPOINT`: `fusermount3 -u`, falling back to `umount`.
pub fn umount_command(mountpoint: &Path) -> ExitCode {
    let mut complaints: Vec<OsString> = Vec::new();
    for (program, args) in [("fusermount3", &["-u"][..]), ("umount", &[][..])] {
        match Command::new(program).args(args).arg(mountpoint).output() {
            Ok(output) if output.status.success() => return ExitCode::SUCCESS,
            Ok(output) => complaints.push(OsString::from(
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            )),
            Err(e) => complaints.push(OsString::from(format!("{program}: {e}"))),
        }
    }
    eprintln!("attrfs umount: cannot unmount {}:", mountpoint.display());
    for complaint in complaints {
        eprintln!("  {}", complaint.to_string_lossy());
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(br"/mnt/a\040b"), b"/mnt/a b");
        assert_eq!(unescape_mountinfo(br"/plain"), b"/plain");
        assert_eq!(unescape_mountinfo(br"/x\\"), br"/x\\");
    }

    #[test]
    fn options() {
        let options =
            MountOptions::parse(&["allow_other,noexec".into(), "max_read=4096".into()]).unwrap();
        assert_eq!(options.acl, Acl::All);
        assert_eq!(options.flags, libc::MS_NOEXEC);
        assert_eq!(options.data, ["max_read=4096"]);
        assert_eq!(options.fsname(), "attrfs");
        assert!(MountOptions::parse(&["rw".into()]).is_err());
        assert_eq!(
            MountOptions::parse(&["fsname=nixpkgs".into()])
                .unwrap()
                .fsname(),
            "nixpkgs"
        );
    }

    fn quick() -> ServiceConfig {
        ServiceConfig {
            eval_timeout: Duration::from_secs(2),
            ..ServiceConfig::default()
        }
    }

    #[test]
    fn a_root_that_fails_or_is_not_a_directory_is_refused() {
        use attrfs_vfs::fake::{self, FakeValue};
        let failing = fake::factory(FakeValue::Fail("error: boom".into()));
        match start_service(failing, quick(), None) {
            Err(MountError::Root(message)) => assert_eq!(message, "error: boom"),
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("a failing root was accepted"),
        }
        let string = fake::factory(FakeValue::Str(b"x".to_vec()));
        match start_service(string, quick(), None) {
            Err(e @ MountError::Root(_)) => {
                assert!(
                    e.to_string().contains("a string, not an attribute set"),
                    "{e}"
                );
                assert_eq!(e.exit_code(), 1);
            }
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("a string root was accepted"),
        }
        let broken: attrfs_vfs::BackendFactory = Box::new(|_| Err("error: syntax error".into()));
        assert!(matches!(
            start_service(broken, quick(), None),
            Err(MountError::Start(ServiceError::Backend(_)))
        ));
        assert!(start_service(fake::factory(fake::sample_tree()), quick(), None).is_ok());
    }

    #[test]
    fn mountpoint_checks() {
        let dir = std::env::temp_dir().join(format!("attrfs-mp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert!(matches!(
            check_mountpoint(&dir),
            Err(MountError::MissingMountpoint(_))
        ));
        fs::create_dir(&dir).unwrap();
        assert!(check_mountpoint(&dir).is_ok());
        fs::write(dir.join("f"), "x").unwrap();
        assert!(matches!(
            check_mountpoint(&dir),
            Err(MountError::NotEmpty(_))
        ));
        assert!(matches!(
            check_mountpoint(&dir.join("f")),
            Err(MountError::NotADirectory(_))
        ));
        fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            check_mountpoint(Path::new("/proc")),
            Err(MountError::Busy(_))
        ));
    }
}
