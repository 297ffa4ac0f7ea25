//! A message from the kernel, decoded.
//!
//! Every request starts with `fuse_in_header`; what follows depends on the
//! opcode. [`Request::decode`] checks the header's length against the
//! bytes read and reads each field through a bounds-checked
//! [`Reader`], so a short or malformed message is an error, never a panic
//! or a read past its end. Names borrow from the read buffer.

use crate::abi::{opcode, size, GETATTR_FH};
use crate::codec::{DecodeError, Reader};

/// The fields of `fuse_in_header` a filesystem may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The total length of the message.
    pub len: u32,
    /// What is asked (see [`crate::abi::opcode`]).
    pub opcode: u32,
    /// The request's identity: its reply carries it back.
    pub unique: u64,
    /// The inode the request is about.
    pub nodeid: u64,
    /// The caller's user.
    pub uid: u32,
    /// The caller's group.
    pub gid: u32,
    /// The caller's process.
    pub pid: u32,
}

/// What a request asks, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation<'a> {
    /// The handshake: the kernel's version and what it offers.
    Init {
        /// Major protocol version.
        major: u32,
        /// Minor protocol version.
        minor: u32,
        /// The kernel's read-ahead limit.
        max_readahead: u32,
        /// Offered capabilities (`flags`, and `flags2` above bit 31).
        flags: u64,
    },
    /// A name in the directory `nodeid`.
    Lookup {
        /// The name, without NUL.
        name: &'a [u8],
    },
    /// The kernel drops `nlookup` references to `nodeid`. No reply.
    Forget {
        /// References dropped.
        nlookup: u64,
    },
    /// FORGET for many inodes at once: `(nodeid, nlookup)` pairs. No reply.
    BatchForget {
        /// The inodes and their dropped references.
        forgets: Vec<(u64, u64)>,
    },
    /// `stat`.
    GetAttr {
        /// The file handle, when the request is about an open file.
        fh: Option<u64>,
    },
    /// The target of a symbolic link.
    ReadLink,
    /// `open(2)` of a file.
    Open {
        /// The open flags (`O_RDONLY`, `O_TRUNC`, ...).
        flags: i32,
    },
    /// Reads from an open file.
    Read {
        /// The handle `open` gave.
        fh: u64,
        /// Where to start.
        offset: u64,
        /// How many bytes at most.
        size: u32,
    },
    /// A `close` of a file descriptor.
    Flush {
        /// The handle `open` gave.
        fh: u64,
        /// Who held the descriptor.
        lock_owner: u64,
    },
    /// The last reference to an open file went away.
    Release {
        /// The handle `open` gave.
        fh: u64,
    },
    /// `opendir`.
    OpenDir {
        /// The open flags.
        flags: i32,
    },
    /// Directory entries from `offset` on, at most `size` bytes of them.
    ReadDir {
        /// The handle `opendir` gave.
        fh: u64,
        /// The offset of the last entry already received (0 at first).
        offset: u64,
        /// The reply's room.
        size: u32,
    },
    /// READDIR, each entry with its attributes.
    ReadDirPlus {
        /// The handle `opendir` gave.
        fh: u64,
        /// The offset of the last entry already received (0 at first).
        offset: u64,
        /// The reply's room.
        size: u32,
    },
    /// The last reference to an open directory went away.
    ReleaseDir {
        /// The handle `opendir` gave.
        fh: u64,
    },
    /// `statfs(2)`.
    StatFs,
    /// An extended attribute's value.
    GetXattr {
        /// The attribute's name.
        name: &'a [u8],
        /// The caller's buffer; 0 asks for the length only.
        size: u32,
    },
    /// The names of the extended attributes.
    ListXattr {
        /// The caller's buffer; 0 asks for the length only.
        size: u32,
    },
    /// `access(2)`.
    Access {
        /// `R_OK | W_OK | X_OK`, or `F_OK`.
        mask: i32,
    },
    /// The caller of request `unique` was interrupted by a signal.
    Interrupt {
        /// The request interrupted.
        unique: u64,
    },
    /// The filesystem is being unmounted.
    Destroy,
    /// A request that would change the tree (`write`, `mkdir`, `setattr`,
    /// `setxattr`, ...): its opcode.
    Modify(u32),
    /// Anything else: its opcode.
    Other(u32),
}

/// A decoded request: its header and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The header.
    pub header: Header,
    /// The operation and its arguments.
    pub operation: Operation<'a>,
}

/// Why a message could not be decoded; the header, if it could be read,
/// says which request to answer with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FUSE request {opcode:?}: {error}")]
pub struct RequestError {
    /// The request's identity, if the header was readable.
    pub unique: Option<u64>,
    /// Its opcode, if the header was readable.
    pub opcode: Option<u32>,
    /// What was wrong.
    pub error: DecodeError,
}

/// The opcodes of requests that modify the tree.
const MODIFYING: [u32; 16] = [
    opcode::SETATTR,
    opcode::SYMLINK,
    opcode::MKNOD,
    opcode::MKDIR,
    opcode::UNLINK,
    opcode::RMDIR,
    opcode::RENAME,
    opcode::LINK,
    opcode::WRITE,
    opcode::SETXATTR,
    opcode::REMOVEXATTR,
    opcode::CREATE,
    opcode::FALLOCATE,
    opcode::RENAME2,
    opcode::COPY_FILE_RANGE,
    opcode::TMPFILE,
];

impl<'a> Request<'a> {
    /// Decodes one message as `read(2)` returned it from `/dev/fuse`.
    pub fn decode(message: &'a [u8]) -> Result<Self, RequestError> {
        let mut r = Reader::new(message);
        let header = decode_header(&mut r).map_err(|error| RequestError {
            unique: None,
            opcode: None,
            error,
        })?;
        let fail = |error| RequestError {
            unique: Some(header.unique),
            opcode: Some(header.opcode),
            error,
        };
        if header.len as usize != message.len() {
            return Err(fail(DecodeError::Length {
                header: header.len,
                read: message.len(),
            }));
        }
        let operation = decode_operation(header.opcode, &mut r).map_err(fail)?;
        Ok(Request { header, operation })
    }
}

fn decode_header(r: &mut Reader<'_>) -> Result<Header, DecodeError> {
    let header = Header {
        len: r.u32()?,
        opcode: r.u32()?,
        unique: r.u64()?,
        nodeid: r.u64()?,
        uid: r.u32()?,
        gid: r.u32()?,
        pid: r.u32()?,
    };
    // total_extlen and padding: extensions come only with capabilities
    // (security contexts, supplementary groups) never requested here.
    r.skip(size::IN_HEADER - 36)?;
    Ok(header)
}

/// A `fuse_read_in`: `(fh, offset, size)`.
fn read_in(r: &mut Reader<'_>) -> Result<(u64, u64, u32), DecodeError> {
    let fh = r.u64()?;
    let offset = r.u64()?;
    let size = r.u32()?;
    // read_flags, lock_owner, flags, padding.
    r.skip(size::READ_IN - 20)?;
    Ok((fh, offset, size))
}

/// A `fuse_open_in`'s flags.
fn open_in(r: &mut Reader<'_>) -> Result<i32, DecodeError> {
    let flags = r.u32()? as i32;
    r.skip(size::OPEN_IN - 4)?;
    Ok(flags)
}

/// A `fuse_release_in`'s handle.
fn release_in(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    let fh = r.u64()?;
    r.skip(size::RELEASE_IN - 8)?;
    Ok(fh)
}

fn decode_operation<'a>(op: u32, r: &mut Reader<'a>) -> Result<Operation<'a>, DecodeError> {
    Ok(match op {
        opcode::INIT => {
            let major = r.u32()?;
            let minor = r.u32()?;
            let max_readahead = r.u32()?;
            let mut flags = u64::from(r.u32()?);
            // 7.36 and later: flags2, then unused words.
            if flags & crate::abi::init_flag::INIT_EXT != 0 {
                flags |= u64::from(r.u32()?) << 32;
            }
            Operation::Init {
                major,
                minor,
                max_readahead,
                flags,
            }
        }
        opcode::LOOKUP => Operation::Lookup { name: r.name()? },
        opcode::FORGET => Operation::Forget { nlookup: r.u64()? },
        opcode::BATCH_FORGET => {
            let count = r.u32()?;
            r.skip(4)?;
            // Never trust the count for an allocation: at most what the
            // message can hold.
            let fits = r.clone().rest().len() / size::FORGET_ONE;
            let mut forgets = Vec::with_capacity((count as usize).min(fits));
            for _ in 0..count {
                forgets.push((r.u64()?, r.u64()?));
            }
            Operation::BatchForget { forgets }
        }
        opcode::GETATTR => {
            let flags = r.u32()?;
            r.skip(4)?;
            let fh = r.u64()?;
            Operation::GetAttr {
                fh: (flags & GETATTR_FH != 0).then_some(fh),
            }
        }
        opcode::READLINK => Operation::ReadLink,
        opcode::OPEN => Operation::Open { flags: open_in(r)? },
        opcode::READ => {
            let (fh, offset, size) = read_in(r)?;
            Operation::Read { fh, offset, size }
        }
        opcode::FLUSH => {
            let fh = r.u64()?;
            r.skip(8)?;
            Operation::Flush {
                fh,
                lock_owner: r.u64()?,
            }
        }
        opcode::RELEASE => Operation::Release { fh: release_in(r)? },
        opcode::OPENDIR => Operation::OpenDir { flags: open_in(r)? },
        opcode::READDIR => {
            let (fh, offset, size) = read_in(r)?;
            Operation::ReadDir { fh, offset, size }
        }
        opcode::READDIRPLUS => {
            let (fh, offset, size) = read_in(r)?;
            Operation::ReadDirPlus { fh, offset, size }
        }
        opcode::RELEASEDIR => Operation::ReleaseDir { fh: release_in(r)? },
        opcode::STATFS => Operation::StatFs,
        opcode::GETXATTR => {
            let size = r.u32()?;
            r.skip(4)?;
            Operation::GetXattr {
                size,
                name: r.name()?,
            }
        }
        opcode::LISTXATTR => {
            let size = r.u32()?;
            r.skip(4)?;
            Operation::ListXattr { size }
        }
        opcode::ACCESS => {
            let mask = r.u32()? as i32;
            r.skip(4)?;
            Operation::Access { mask }
        }
        opcode::INTERRUPT => Operation::Interrupt { unique: r.u64()? },
        opcode::DESTROY => Operation::Destroy,
        op if MODIFYING.contains(&op) => Operation::Modify(op),
        op => Operation::Other(op),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Writer;

    /// A message as the kernel would send it: `fuse_in_header` and `body`.
    pub(crate) fn message(opcode: u32, nodeid: u64, body: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        let len = (size::IN_HEADER + body.len()) as u32;
        w.u32(len).u32(opcode).u64(77).u64(nodeid);
        w.u32(1000).u32(100).u32(4242).u16(0).u16(0);
        assert_eq!(w.len(), size::IN_HEADER);
        w.bytes(body);
        w.into_bytes()
    }

    fn decode(bytes: &[u8]) -> Operation<'_> {
        let request = Request::decode(bytes).unwrap();
        assert_eq!(request.header.unique, 77);
        assert_eq!(
            (request.header.uid, request.header.gid, request.header.pid),
            (1000, 100, 4242)
        );
        request.operation
    }

    fn read_in(fh: u64, offset: u64, size_: u32) -> Vec<u8> {
        let mut w = Writer::default();
        w.u64(fh).u64(offset).u32(size_).u32(0).u64(9).u32(0).u32(0);
        assert_eq!(w.len(), size::READ_IN);
        w.into_bytes()
    }

    #[test]
    fn init_with_and_without_flags2() {
        let mut w = Writer::default();
        w.u32(7).u32(41).u32(131072).u32(0x4000_2001);
        w.u32(0x3).bytes(&[0; 44]);
        assert_eq!(w.len(), 64);
        let bytes = message(opcode::INIT, 0, w.as_slice());
        assert_eq!(
            decode(&bytes),
            Operation::Init {
                major: 7,
                minor: 41,
                max_readahead: 131072,
                flags: 0x3_4000_2001
            }
        );
        let mut old = Writer::default();
        old.u32(7).u32(19).u32(4096).u32(1);
        assert_eq!(old.len(), size::INIT_IN_COMPAT);
        let bytes = message(opcode::INIT, 0, old.as_slice());
        assert!(matches!(
            decode(&bytes),
            Operation::Init {
                minor: 19,
                flags: 1,
                ..
            }
        ));
    }

    #[test]
    fn lookup_and_getxattr_names() {
        let bytes = message(opcode::LOOKUP, 1, b"hello\0");
        assert_eq!(decode(&bytes), Operation::Lookup { name: b"hello" });
        let mut w = Writer::default();
        w.u32(256).u32(0).bytes(b"user.nix.type\0");
        assert_eq!(size::GETXATTR_IN, 8);
        let bytes = message(opcode::GETXATTR, 1, w.as_slice());
        assert_eq!(
            decode(&bytes),
            Operation::GetXattr {
                name: b"user.nix.type",
                size: 256
            }
        );
        let bytes = message(opcode::LISTXATTR, 1, &[0; 8]);
        assert_eq!(decode(&bytes), Operation::ListXattr { size: 0 });
    }

    #[test]
    fn forgets() {
        let bytes = message(opcode::FORGET, 5, &3u64.to_le_bytes());
        assert_eq!(size::FORGET_IN, 8);
        assert_eq!(decode(&bytes), Operation::Forget { nlookup: 3 });
        let mut w = Writer::default();
        w.u32(2).u32(0).u64(5).u64(1).u64(6).u64(2);
        assert_eq!(w.len(), size::BATCH_FORGET_IN + 2 * size::FORGET_ONE);
        let bytes = message(opcode::BATCH_FORGET, 0, w.as_slice());
        assert_eq!(
            decode(&bytes),
            Operation::BatchForget {
                forgets: vec![(5, 1), (6, 2)]
            }
        );
        // A count larger than the message: an error, not a huge allocation.
        let mut w = Writer::default();
        w.u32(u32::MAX).u32(0).u64(5).u64(1);
        let bytes = message(opcode::BATCH_FORGET, 0, w.as_slice());
        assert!(Request::decode(&bytes).is_err());
    }

    #[test]
    fn getattr_open_read_flush_release() {
        let mut w = Writer::default();
        w.u32(GETATTR_FH).u32(0).u64(12);
        assert_eq!(w.len(), size::GETATTR_IN);
        let bytes = message(opcode::GETATTR, 2, w.as_slice());
        assert_eq!(decode(&bytes), Operation::GetAttr { fh: Some(12) });
        let bytes = message(opcode::GETATTR, 2, &[0; 16]);
        assert_eq!(decode(&bytes), Operation::GetAttr { fh: None });

        let mut w = Writer::default();
        w.u32(libc::O_RDONLY as u32 | libc::O_TRUNC as u32).u32(0);
        let bytes = message(opcode::OPEN, 2, w.as_slice());
        assert_eq!(
            decode(&bytes),
            Operation::Open {
                flags: libc::O_TRUNC
            }
        );
        let bytes = message(opcode::OPENDIR, 2, &[0; size::OPEN_IN]);
        assert_eq!(decode(&bytes), Operation::OpenDir { flags: 0 });

        let body = read_in(3, 4096, 8192);
        for (op, expected) in [
            (
                opcode::READ,
                Operation::Read {
                    fh: 3,
                    offset: 4096,
                    size: 8192,
                },
            ),
            (
                opcode::READDIR,
                Operation::ReadDir {
                    fh: 3,
                    offset: 4096,
                    size: 8192,
                },
            ),
            (
                opcode::READDIRPLUS,
                Operation::ReadDirPlus {
                    fh: 3,
                    offset: 4096,
                    size: 8192,
                },
            ),
        ] {
            assert_eq!(decode(&message(op, 2, &body)), expected);
        }

        let mut w = Writer::default();
        w.u64(3).u32(0).u32(0).u64(99);
        assert_eq!(w.len(), size::FLUSH_IN);
        let bytes = message(opcode::FLUSH, 2, w.as_slice());
        assert_eq!(
            decode(&bytes),
            Operation::Flush {
                fh: 3,
                lock_owner: 99
            }
        );
        let mut w = Writer::default();
        w.u64(3).u32(0).u32(0).u64(0);
        assert_eq!(w.len(), size::RELEASE_IN);
        let bytes = message(opcode::RELEASE, 2, w.as_slice());
        assert_eq!(decode(&bytes), Operation::Release { fh: 3 });
        let bytes = message(opcode::RELEASEDIR, 2, w.as_slice());
        assert_eq!(decode(&bytes), Operation::ReleaseDir { fh: 3 });
    }

    #[test]
    fn the_small_ones() {
        assert_eq!(
            decode(&message(opcode::READLINK, 2, &[])),
            Operation::ReadLink
        );
        assert_eq!(decode(&message(opcode::STATFS, 1, &[])), Operation::StatFs);
        assert_eq!(
            decode(&message(opcode::DESTROY, 0, &[])),
            Operation::Destroy
        );
        let mut w = Writer::default();
        w.u32(libc::W_OK as u32).u32(0);
        assert_eq!(w.len(), size::ACCESS_IN);
        assert_eq!(
            decode(&message(opcode::ACCESS, 1, w.as_slice())),
            Operation::Access { mask: libc::W_OK }
        );
        assert_eq!(
            decode(&message(opcode::INTERRUPT, 0, &76u64.to_le_bytes())),
            Operation::Interrupt { unique: 76 }
        );
        assert_eq!(
            decode(&message(opcode::MKDIR, 1, b"anything")),
            Operation::Modify(opcode::MKDIR)
        );
        assert_eq!(
            decode(&message(opcode::WRITE, 1, &[])),
            Operation::Modify(opcode::WRITE)
        );
        assert_eq!(
            decode(&message(opcode::LSEEK, 1, &[])),
            Operation::Other(opcode::LSEEK)
        );
        assert_eq!(decode(&message(9999, 1, &[])), Operation::Other(9999));
    }

    #[test]
    fn malformed_messages_are_errors() {
        // Too short for a header.
        let error = Request::decode(&[0; 10]).unwrap_err();
        assert_eq!((error.unique, error.opcode), (None, None));
        // The header's length disagrees with the read.
        let mut bytes = message(opcode::LOOKUP, 1, b"x\0");
        bytes.push(0);
        let error = Request::decode(&bytes).unwrap_err();
        assert_eq!(error.unique, Some(77));
        assert!(matches!(error.error, DecodeError::Length { .. }));
        // A name without its NUL, a body shorter than its structure.
        assert!(Request::decode(&message(opcode::LOOKUP, 1, b"x")).is_err());
        assert!(Request::decode(&message(opcode::READ, 1, &[0; 39])).is_err());
        assert!(Request::decode(&message(opcode::GETATTR, 1, &[0; 15])).is_err());
    }
}
