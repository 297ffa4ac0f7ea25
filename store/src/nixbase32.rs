//! Nix's own base32 ("nix32"), as printed in store paths and `sha256:1b8m…`.
//!
//! It is not RFC 4648 base32: the alphabet omits `e`, `o`, `u` and `t`, and
//! the digits are produced from the *end* of the byte string, so the first
//! character carries the most significant bits of the last byte. There is no
//! padding; `n` bytes take `ceil(8n / 5)` characters.
//!
//! C++ Nix calls the encoder `printHash32`; the decoder is the base-32 branch
//! of its `Hash` constructor. Both are reproduced here bit for bit.

use thiserror::Error;

/// The 32 digits, in value order.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Why a string is not valid nix32 for the requested length.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input length does not correspond to any byte length.
    #[error("invalid nix-base32 length {0}")]
    InvalidLength(usize),
    /// A character outside [`ALPHABET`] was found.
    #[error("invalid character {0:?} in nix-base32 string")]
    InvalidCharacter(char),
    /// The leading digit sets bits beyond the end of the decoded bytes.
    #[error("nix-base32 string has bits set beyond its length")]
    Overflow,
}

/// Number of nix32 characters needed for `byte_len` bytes.
pub const fn encoded_len(byte_len: usize) -> usize {
    if byte_len == 0 {
        0
    } else {
        (byte_len * 8 - 1) / 5 + 1
    }
}

/// Number of bytes that `char_len` nix32 characters decode to, if that is a
/// length [`encode`] can produce.
pub const fn decoded_len(char_len: usize) -> Option<usize> {
    let bytes = char_len * 5 / 8;
    if encoded_len(bytes) == char_len {
        Some(bytes)
    } else {
        None
    }
}

/// Encodes bytes the way C++ Nix's `printHash32` does.
pub fn encode(bytes: &[u8]) -> String {
    let len = encoded_len(bytes.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let bit = n * 5;
        let i = bit / 8;
        let j = bit % 8;
        let low = u16::from(bytes[i]) >> j;
        let high = match bytes.get(i + 1) {
            Some(&next) => u16::from(next) << (8 - j),
            None => 0,
        };
        let digit = ((low | high) & 0x1f) as usize;
        out.push(char::from(ALPHABET[digit]));
    }
    out
}

/// The value of one nix32 digit, if `c` is one.
pub fn digit_value(c: u8) -> Option<u8> {
    ALPHABET.iter().position(|&a| a == c).map(|v| v as u8)
}

/// Decodes a nix32 string whose byte length follows from its own length.
pub fn decode(s: &str) -> Result<Vec<u8>, DecodeError> {
    let len = decoded_len(s.len()).ok_or(DecodeError::InvalidLength(s.len()))?;
    decode_to_len(s, len)
}

/// Decodes a nix32 string into exactly `byte_len` bytes.
///
/// The string must be exactly [`encoded_len`]`(byte_len)` characters long.
pub fn decode_to_len(s: &str, byte_len: usize) -> Result<Vec<u8>, DecodeError> {
    let input = s.as_bytes();
    if input.len() != encoded_len(byte_len) {
        return Err(DecodeError::InvalidLength(input.len()));
    }
    if let Some(bad) = s.chars().find(|&c| !is_digit(c)) {
        return Err(DecodeError::InvalidCharacter(bad));
    }
    let mut out = vec![0u8; byte_len];
    for (n, &c) in input.iter().rev().enumerate() {
        let digit = digit_value(c).ok_or(DecodeError::InvalidCharacter(char::from(c)))?;
        let bit = n * 5;
        let i = bit / 8;
        let j = bit % 8;
        out[i] |= digit << j;
        let carry = u16::from(digit) >> (8 - j);
        if i + 1 < byte_len {
            out[i + 1] |= carry as u8;
        } else if carry != 0 {
            return Err(DecodeError::Overflow);
        }
    }
    Ok(out)
}

/// Whether `c` is a nix32 digit.
fn is_digit(c: char) -> bool {
    c.is_ascii() && digit_value(c as u8).is_some()
}

/// Whether every character of `s` is a nix32 digit.
pub fn is_valid_str(s: &str) -> bool {
    s.chars().all(is_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Reference values from C++ Nix 2.8 (`nix-hash --to-base32`, `nix hash to-base32`).
    const VECTORS: &[(&str, &str)] = &[
        ("900150983cd24fb0d6963f7d28e17f72", "3jgzhjhz9zjvbb0kyj7jc500ch"),
        ("a9993e364706816aba3e25717850c26c9cd0d89d", "kpcd173cq987hw957sx6m0868wv3x6d9"),
        (
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
        ),
        (
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7xac99vxfc4ii84hawjbk876blyk1jfhkbbyx",
        ),
        ("0000000000000000000000000000000000000001", "04000000000000000000000000000000"),
        ("ff00000000000000000000000000000000000000", "0000000000000000000000000000007z"),
        ("ffffffffffffffffffffffffffffffff", "7zzzzzzzzzzzzzzzzzzzzzzzzz"),
    ];

    #[test]
    fn known_vectors_encode() {
        for (h, expected) in VECTORS {
            assert_eq!(encode(&hex(h)), *expected, "encoding {h}");
        }
    }

    #[test]
    fn known_vectors_decode() {
        for (h, encoded) in VECTORS {
            assert_eq!(decode(encoded).unwrap(), hex(h), "decoding {encoded}");
        }
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let s = encode(&bytes);
            assert_eq!(s.len(), encoded_len(len));
            assert_eq!(decode_to_len(&s, len).unwrap(), bytes);
            assert_eq!(decode(&s).unwrap(), bytes);
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(encoded_len(16), 26);
        assert_eq!(encoded_len(20), 32);
        assert_eq!(encoded_len(32), 52);
        assert_eq!(encoded_len(64), 103);
        assert_eq!(decoded_len(52), Some(32));
        assert_eq!(decoded_len(53), Some(33));
        assert_eq!(decoded_len(54), None);
    }

    #[test]
    fn rejects_bad_characters() {
        // 'e', 'o', 'u', 't' are not nix32 digits.
        for bad in ['e', 'o', 'u', 't', 'A', '-', 'é'] {
            let s = format!("{bad}pcd173cq987hw957sx6m0868wv3x6d9");
            let s = if bad == 'é' {
                s[..s.len() - 1].to_string()
            } else {
                s
            };
            assert_eq!(
                decode_to_len(&s, 20),
                Err(DecodeError::InvalidCharacter(bad)),
                "{s}"
            );
        }
    }

    #[test]
    fn rejects_bad_length() {
        assert_eq!(decode("abc"), Err(DecodeError::InvalidLength(3)));
        assert_eq!(decode_to_len("00", 20), Err(DecodeError::InvalidLength(2)));
    }

    #[test]
    fn rejects_overflow() {
        // 32 bytes take 52 digits = 260 bits; the top 4 bits of the first digit must be 0.
        let mut s = "1".repeat(52);
        assert!(decode_to_len(&s, 32).is_ok());
        s.replace_range(0..1, "z");
        assert_eq!(decode_to_len(&s, 32), Err(DecodeError::Overflow));
        // 20 bytes take exactly 160 bits: no overflow possible.
        assert!(decode_to_len(&"z".repeat(32), 20).is_ok());
    }
}
