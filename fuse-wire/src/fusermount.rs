//! Mounting through `fusermount3`, the setuid helper of the fuse3
//! package: the way for a user without `CAP_SYS_ADMIN`, and the only way
//! to `auto_unmount` (the helper stays behind and unmounts when the
//! daemon's end of the socket closes, however it died).
//!
//! The helper is given one end of a Unix socket pair in the environment
//! variable `_FUSE_COMMFD`; it opens `/dev/fuse`, mounts, and sends the
//! descriptor back as `SCM_RIGHTS` ancillary data.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

/// The helper's name.
pub const FUSERMOUNT: &str = "fusermount3";

/// A mount made by the helper, and how to undo it.
#[derive(Debug)]
pub struct Mount {
    /// With `auto_unmount`: the socket the helper watches, and the helper.
    watched: Option<(UnixStream, Child)>,
}

/// Mounts on `mountpoint` with the comma-joined `options` (mount options
/// and the helper's own: `fsname=`, `subtype=`, `auto_unmount`,
/// `allow_other`, ...). Returns the `/dev/fuse` descriptor of the mount.
pub fn mount(mountpoint: &Path, options: &[String]) -> io::Result<(OwnedFd, Mount)> {
    let auto_unmount = options.iter().any(|o| o == "auto_unmount");
    let (ours, theirs) = UnixStream::pair()?;
    let theirs_fd: RawFd = theirs.as_raw_fd();
    let mut command = Command::new(FUSERMOUNT);
    command
        .env("_FUSE_COMMFD", theirs_fd.to_string())
        .arg("-o")
        .arg(options.join(","))
        .arg("--")
        .arg(mountpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // A helper that stays (auto_unmount) must not write into a pipe nobody
    // reads: its complaints go where ours go.
    command.stderr(if auto_unmount {
        Stdio::inherit()
    } else {
        Stdio::piped()
    });
    // SAFETY: between fork and exec only fcntl(2) runs, which is
    // async-signal-safe; it makes the helper's end survive the exec.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(theirs_fd, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {FUSERMOUNT}: {e}")))?;
    drop(theirs);
    let received = receive_fd(&ours);
    if auto_unmount {
        return match received {
            Ok(fd) => Ok((
                fd,
                Mount {
                    watched: Some((ours, child)),
                },
            )),
            Err(e) => {
                let status = child.wait()?;
                Err(io::Error::other(format!(
                    "{FUSERMOUNT} failed ({status}): {e}"
                )))
            }
        };
    }
    drop(ours);
    let mut complaint = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut complaint);
    }
    let status = child.wait()?;
    match received {
        Ok(fd) if status.success() => Ok((fd, Mount { watched: None })),
        Ok(_) | Err(_) => {
            let complaint = complaint.trim();
            let message = if complaint.is_empty() {
                format!("{FUSERMOUNT} failed ({status})")
            } else {
                complaint.to_owned()
            };
            let kind = if complaint.contains("allow_other") || complaint.contains("ermission") {
                io::ErrorKind::PermissionDenied
            } else {
                io::ErrorKind::Other
            };
            Err(io::Error::new(kind, message))
        }
    }
}

impl Mount {
    /// Unmounts: with `auto_unmount`, by closing the socket the helper
    /// watches (it unmounts and exits); otherwise `fusermount3 -u`.
    pub fn unmount(&mut self, mountpoint: &Path) -> io::Result<()> {
        if let Some((socket, mut child)) = self.watched.take() {
            drop(socket);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if child.try_wait()?.is_some() {
                    return Ok(());
                }
                thread::sleep(Duration::from_millis(10));
            }
            debug!("{FUSERMOUNT} has not exited yet after the socket closed");
            return Ok(());
        }
        unmount(mountpoint, false)
    }
}

/// `fusermount3 -u` (`-z` for a lazy unmount of a busy mount).
pub fn unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    let mut command = Command::new(FUSERMOUNT);
    command.arg("-u");
    if lazy {
        command.arg("-z");
    }
    let output = command
        .arg("--")
        .arg(OsStr::new(mountpoint))
        .stdin(Stdio::null())
        .output()?;
    if output.status.success() {
        Ok(())
    } else {
        let complaint = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        warn!("{FUSERMOUNT} -u: {complaint}");
        Err(io::Error::other(complaint))
    }
}

/// Receives the descriptor the helper sends, or says why none came.
fn receive_fd(socket: &UnixStream) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    // Room for one cmsghdr with one int, suitably aligned.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = loop {
        // SAFETY: `msg` points at `iov` and `control`, both alive and
        // writable for the duration of the call.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n;
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINTR) {
            return Err(error);
        }
    };
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{FUSERMOUNT} exited without passing the /dev/fuse descriptor"),
        ));
    }
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR walk
    // only within `msg_controllen` bytes of `control`, and the data of an
    // SCM_RIGHTS message with a length for one int holds one descriptor,
    // which the kernel installed in this process for us to own.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            if header.cmsg_level == libc::SOL_SOCKET
                && header.cmsg_type == libc::SCM_RIGHTS
                && header.cmsg_len as usize >= libc::CMSG_LEN(4) as usize
            {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return Ok(OwnedFd::from_raw_fd(fd));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{FUSERMOUNT} sent no descriptor"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Sends `fd` over `socket` the way fusermount3 does.
    fn send_fd(socket: &UnixStream, fd: RawFd) {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = [0u64; 8];
        // SAFETY: test code building a valid SCM_RIGHTS message in
        // buffers that outlive the call.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd);
            assert_eq!(libc::sendmsg(socket.as_raw_fd(), &msg, 0), 1);
        }
    }

    #[test]
    fn a_descriptor_passed_with_scm_rights_is_received() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        send_fd(&theirs, b.as_raw_fd());
        let received = receive_fd(&ours).unwrap();
        a.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        let mut received = std::fs::File::from(received);
        received.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
    }

    #[test]
    fn a_helper_that_sends_nothing_is_an_error() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let error = receive_fd(&ours).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(b"x").unwrap();
        assert_eq!(
            receive_fd(&ours).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
