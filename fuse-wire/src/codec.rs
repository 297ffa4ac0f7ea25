//! Little-endian reading and writing of the protocol's fields.
//!
//! A [`Reader`] walks a message front to back and fails, instead of
//! panicking, on a message shorter than its layout says; a [`Writer`]
//! appends fields to a reply.

/// A message that does not hold what its layout says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the field needs.
    #[error("message too short: {needed} more bytes needed at offset {at}, {left} left")]
    Short {
        /// Where the field starts.
        at: usize,
        /// The bytes the field needs.
        needed: usize,
        /// The bytes left.
        left: usize,
    },
    /// A name that should end with a NUL byte does not.
    #[error("name at offset {0} is not NUL-terminated")]
    Unterminated(usize),
    /// The header's length is not the length of the message read.
    #[error("header says {header} bytes, {read} were read")]
    Length {
        /// The header's `len`.
        header: u32,
        /// The bytes `read(2)` returned.
        read: usize,
    },
}

/// Reads fields from the front of a message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let left = self.bytes.len() - self.at;
        if n > left {
            return Err(DecodeError::Short {
                at: self.at,
                needed: n,
                left,
            });
        }
        let field = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(field)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// A `uint16_t`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    /// A `uint32_t`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    /// A `uint64_t`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    /// Skips `n` bytes (padding, fields nobody reads).
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(drop)
    }

    /// A NUL-terminated name, without its NUL.
    pub fn name(&mut self) -> Result<&'a [u8], DecodeError> {
        let rest = &self.bytes[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::Unterminated(self.at))?;
        let name = &rest[..len];
        self.at += len + 1;
        Ok(name)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at..];
        self.at = self.bytes.len();
        rest
    }
}

/// Appends fields to a reply.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// An empty reply body with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Writer {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// A `uint16_t`.
    pub fn u16(&mut self, value: u16) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// A `uint32_t`.
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// An `int32_t`.
    pub fn i32(&mut self, value: i32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// A `uint64_t`.
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Raw bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// Zero bytes up to the next multiple of 8 (directory entries).
    pub fn pad_to_8(&mut self) -> &mut Self {
        let padded = crate::abi::dirent_align(self.bytes.len());
        self.bytes.resize(padded, 0);
        self
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes written.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes written, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_fields_and_stops_at_the_end() {
        let bytes = [1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, b'a', 0, 9];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u16(), Ok(1));
        assert_eq!(r.u32(), Ok(2));
        assert_eq!(r.u64(), Ok(3));
        assert_eq!(r.name(), Ok(&b"a"[..]));
        assert_eq!(
            r.u32(),
            Err(DecodeError::Short {
                at: 16,
                needed: 4,
                left: 1
            })
        );
        assert_eq!(r.rest(), &[9]);
        assert_eq!(
            Reader::new(b"abc").name(),
            Err(DecodeError::Unterminated(0))
        );
    }

    #[test]
    fn writes_little_endian_fields_and_pads() {
        let mut w = Writer::default();
        w.u32(0x0102_0304).u16(5).bytes(b"x").pad_to_8();
        assert_eq!(w.as_slice(), &[4, 3, 2, 1, 5, 0, b'x', 0]);
        w.u64(1).i32(-2);
        assert_eq!(w.len(), 20);
        assert_eq!(&w.as_slice()[16..], &(-2i32).to_le_bytes());
    }
}
