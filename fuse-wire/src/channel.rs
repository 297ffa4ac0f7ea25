//! The `/dev/fuse` descriptor: requests are read from it, replies and
//! notifications written to it, each message in one system call.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// A connection to the kernel. Shared by every thread of a session and by
/// every reply and notifier: `read` and `writev` on `/dev/fuse` are each
/// one whole message, so no lock is needed.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
}

impl Channel {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Channel { fd }
    }

    /// Reads one request into `buf`, retrying what is not an answer
    /// (EINTR, and ENOENT: the request was interrupted before it was
    /// read). ENODEV means the filesystem was unmounted; end of file is
    /// turned into ENODEV too (a socket standing in for `/dev/fuse`).
    pub(crate) fn receive(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes, and
            // the descriptor is open for as long as `self` lives.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                return Ok(n as usize);
            }
            if n == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENODEV));
            }
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR | libc::ENOENT | libc::EAGAIN) => continue,
                _ => return Err(error),
            }
        }
    }

    /// Writes one message made of `parts`.
    pub(crate) fn send(&self, parts: &[&[u8]]) -> io::Result<()> {
        let iov: Vec<libc::iovec> = parts
            .iter()
            .map(|part| libc::iovec {
                iov_base: part.as_ptr() as *mut libc::c_void,
                iov_len: part.len(),
            })
            .collect();
        let total: usize = parts.iter().map(|p| p.len()).sum();
        loop {
            // SAFETY: every iovec points into a slice of `parts`, alive
            // and unchanged for the duration of the call; the kernel only
            // reads them.
            let n = unsafe {
                libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int)
            };
            if n >= 0 {
                return if n as usize == total {
                    Ok(())
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "short write to /dev/fuse",
                    ))
                };
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EINTR) {
                return Err(error);
            }
        }
    }
}
