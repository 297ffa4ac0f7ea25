//! Cryptographic hashes as Nix names, parses and prints them.
//!
//! A [`Hash`](struct@Hash) is an algorithm plus its digest. Nix accepts a hash written in
//! base16, nix32 or base64, optionally prefixed by `algo:`, or as an SRI
//! string `algo-<base64>`; which encoding is meant follows from the length
//! (SRI excepted). [`Hash::parse_any`] reproduces that logic, including the
//! error messages, for `outputHash`, `builtins.convertHash` and friends.
//!
//! [`compress_hash`] is the XOR-fold Nix uses to shorten a sha256 into the
//! 20-byte hash part of a store path.

use std::fmt;
use std::io;
use std::str::FromStr;

use data_encoding::BASE64;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use thiserror::Error;

use crate::nixbase32;

/// The largest digest size of any supported algorithm (sha512).
const MAX_DIGEST_LEN: usize = 64;

/// A hash algorithm Nix knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlgo {
    /// MD5 (16 bytes).
    Md5,
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes), the one store paths are built on.
    Sha256,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashAlgo {
    /// Every algorithm, in Nix's order.
    pub const ALL: [HashAlgo; 4] = [
        HashAlgo::Md5,
        HashAlgo::Sha1,
        HashAlgo::Sha256,
        HashAlgo::Sha512,
    ];

    /// The name Nix uses (`md5`, `sha1`, `sha256`, `sha512`).
    pub const fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// The algorithm called `name`, if Nix knows one by that name.
    pub fn from_name(name: &str) -> Option<HashAlgo> {
        HashAlgo::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Digest size in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            HashAlgo::Md5 => 16,
            HashAlgo::Sha1 => 20,
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha512 => 64,
        }
    }

    /// Length of the digest written in base16.
    pub const fn base16_len(self) -> usize {
        self.digest_len() * 2
    }

    /// Length of the digest written in nix32.
    pub const fn nix32_len(self) -> usize {
        nixbase32::encoded_len(self.digest_len())
    }

    /// Length of the digest written in padded base64.
    pub const fn base64_len(self) -> usize {
        (4 * self.digest_len() / 3 + 3) & !3
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgo {
    type Err = HashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashAlgo::from_name(s).ok_or_else(|| HashError::UnknownAlgo(s.to_string()))
    }
}

/// An encoding for printing a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFormat {
    /// Lower-case hexadecimal.
    Base16,
    /// Nix's base32 (see [`crate::nixbase32`]).
    Nix32,
    /// Padded standard base64.
    Base64,
    /// Subresource Integrity: `algo-<base64>`.
    Sri,
}

impl HashFormat {
    /// The format named as in `builtins.convertHash`'s `toHashFormat`
    /// (`base16`, `nix32`, `base32` as a legacy alias, `base64`, `sri`).
    pub fn from_name(name: &str) -> Option<HashFormat> {
        match name {
            "base16" => Some(HashFormat::Base16),
            "nix32" | "base32" => Some(HashFormat::Nix32),
            "base64" => Some(HashFormat::Base64),
            "sri" => Some(HashFormat::Sri),
            _ => None,
        }
    }
}

impl FromStr for HashFormat {
    type Err = HashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashFormat::from_name(s).ok_or_else(|| HashError::UnknownFormat(s.to_string()))
    }
}

/// Why a hash could not be parsed or built. Messages follow C++ Nix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashError {
    /// The algorithm name is not one of `md5`, `sha1`, `sha256`, `sha512`.
    #[error("unknown hash algorithm '{0}'")]
    UnknownAlgo(String),
    /// The format name is not one [`HashFormat::from_name`] knows.
    #[error("unknown hash format '{0}', expect 'base16', 'base32', 'nix32', 'base64', or 'sri'")]
    UnknownFormat(String),
    /// The digest's length matches no encoding of the algorithm.
    #[error("hash '{hash}' has wrong length for hash type '{algo}'")]
    WrongLength {
        /// The digest text (without any `algo:` / `algo-` prefix).
        hash: String,
        /// The algorithm it was read as.
        algo: HashAlgo,
    },
    /// A base16-length digest with a non-hex character.
    #[error("invalid base-16 hash '{0}'")]
    InvalidBase16(String),
    /// A nix32-length digest with a bad character or overflowing bits.
    #[error("invalid base-32 hash '{0}'")]
    InvalidNix32(String),
    /// A base64-length digest that decodes to the wrong size.
    #[error("invalid base-64 hash '{0}'")]
    InvalidBase64(String),
    /// An SRI digest that decodes to the wrong size.
    #[error("invalid SRI hash '{0}'")]
    InvalidSri(String),
    /// A character outside the base64 alphabet.
    #[error("invalid character in Base64 string: '{0}'")]
    InvalidBase64Char(char),
    /// No algorithm in the string and none from the context.
    #[error("hash '{0}' does not include a type, nor is the type otherwise known from context")]
    MissingAlgo(String),
    /// No algorithm in a string that must carry one.
    #[error("hash '{0}' does not include a type")]
    MissingAlgoPrefix(String),
    /// A string expected in SRI form is not.
    #[error("hash '{0}' is not SRI")]
    NotSri(String),
    /// The algorithm in the string differs from the expected one.
    #[error("hash '{hash}' should have type '{expected}'")]
    AlgoMismatch {
        /// The whole string as given.
        hash: String,
        /// The algorithm the context asked for.
        expected: HashAlgo,
    },
    /// An empty hash without an algorithm to make a placeholder of.
    #[error("empty hash requires explicit hash type")]
    EmptyWithoutAlgo,
    /// Raw digest bytes whose length does not fit the algorithm.
    #[error("a {algo} digest is {expected} bytes, not {actual}")]
    DigestLength {
        /// The algorithm.
        algo: HashAlgo,
        /// Its digest length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
}

/// A digest together with the algorithm that produced it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hash {
    algo: HashAlgo,
    bytes: [u8; MAX_DIGEST_LEN],
}

impl Hash {
    /// Wraps raw digest bytes, which must have the algorithm's length.
    pub fn new(algo: HashAlgo, digest: &[u8]) -> Result<Hash, HashError> {
        if digest.len() != algo.digest_len() {
            return Err(HashError::DigestLength {
                algo,
                expected: algo.digest_len(),
                actual: digest.len(),
            });
        }
        let mut bytes = [0u8; MAX_DIGEST_LEN];
        bytes[..digest.len()].copy_from_slice(digest);
        Ok(Hash { algo, bytes })
    }

    /// Wraps a sha256 digest (infallible, the length being known).
    pub fn from_sha256(digest: [u8; 32]) -> Hash {
        let mut bytes = [0u8; MAX_DIGEST_LEN];
        bytes[..32].copy_from_slice(&digest);
        Hash {
            algo: HashAlgo::Sha256,
            bytes,
        }
    }

    /// The all-zero hash of `algo` (what Nix substitutes for an empty `outputHash`).
    pub fn zero(algo: HashAlgo) -> Hash {
        Hash {
            algo,
            bytes: [0u8; MAX_DIGEST_LEN],
        }
    }

    /// Hashes `data` with `algo` (`builtins.hashString`).
    pub fn digest(algo: HashAlgo, data: impl AsRef<[u8]>) -> Hash {
        let mut hasher = Hasher::new(algo);
        hasher.update(data.as_ref());
        hasher.finish()
    }

    /// The sha256 of `data` as a plain array.
    pub fn sha256(data: impl AsRef<[u8]>) -> [u8; 32] {
        Sha256::digest(data.as_ref()).into()
    }

    /// The algorithm.
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algo.digest_len()]
    }

    /// Parses a hash the way C++ Nix's `Hash::parseAny` does: `algo:digest`,
    /// `algo-<base64>` (SRI) or a bare digest, where the digest's encoding
    /// is told by its length. `expected`, when given, supplies the algorithm
    /// for a bare digest and must agree with a prefixed one.
    pub fn parse_any(s: &str, expected: Option<HashAlgo>) -> Result<Hash, HashError> {
        let (prefix, rest, is_sri) = split_algo_prefix(s);
        let parsed = prefix.map(str::parse::<HashAlgo>).transpose()?;
        let algo = match (parsed, expected) {
            (None, None) => return Err(HashError::MissingAlgo(rest.to_string())),
            (Some(p), Some(e)) if p != e => {
                return Err(HashError::AlgoMismatch {
                    hash: s.to_string(),
                    expected: e,
                })
            }
            (Some(p), _) => p,
            (None, Some(e)) => e,
        };
        Hash::parse_digest(rest, algo, is_sri)
    }

    /// Parses a hash that must name its algorithm (`algo:digest` or SRI),
    /// as C++ Nix's `Hash::parseAnyPrefixed`.
    pub fn parse_prefixed(s: &str) -> Result<Hash, HashError> {
        let (prefix, rest, is_sri) = split_algo_prefix(s);
        let Some(prefix) = prefix else {
            return Err(HashError::MissingAlgoPrefix(rest.to_string()));
        };
        Hash::parse_digest(rest, prefix.parse()?, is_sri)
    }

    /// Parses an SRI hash (`sha256-<base64>`) and nothing else.
    pub fn parse_sri(s: &str) -> Result<Hash, HashError> {
        let Some((prefix, rest)) = s.split_once('-') else {
            return Err(HashError::NotSri(s.to_string()));
        };
        Hash::parse_digest(rest, prefix.parse()?, true)
    }

    /// Parses a bare base16, nix32 or base64 digest of a known algorithm
    /// (C++ Nix's `Hash::parseNonSRIUnprefixed`).
    pub fn parse_unprefixed(s: &str, algo: HashAlgo) -> Result<Hash, HashError> {
        Hash::parse_digest(s, algo, false)
    }

    /// Like [`Hash::parse_any`], but an empty string yields the all-zero
    /// hash of `expected` (C++ Nix's `newHashAllowEmpty`, used for
    /// `outputHash = ""`; Nix also prints a warning, which is the caller's).
    pub fn parse_allow_empty(s: &str, expected: Option<HashAlgo>) -> Result<Hash, HashError> {
        if s.is_empty() {
            expected.map(Hash::zero).ok_or(HashError::EmptyWithoutAlgo)
        } else {
            Hash::parse_any(s, expected)
        }
    }

    /// Decodes a digest without prefix; the encoding follows from the length,
    /// except for SRI which is always base64.
    fn parse_digest(rest: &str, algo: HashAlgo, is_sri: bool) -> Result<Hash, HashError> {
        if !is_sri && rest.len() == algo.base16_len() {
            let digest =
                decode_base16(rest).ok_or_else(|| HashError::InvalidBase16(rest.to_string()))?;
            Hash::new(algo, &digest)
        } else if !is_sri && rest.len() == algo.nix32_len() {
            let digest = nixbase32::decode_to_len(rest, algo.digest_len())
                .map_err(|_| HashError::InvalidNix32(rest.to_string()))?;
            Hash::new(algo, &digest)
        } else if is_sri || rest.len() == algo.base64_len() {
            let digest = decode_base64_lenient(rest)?;
            if digest.len() != algo.digest_len() {
                return Err(if is_sri {
                    HashError::InvalidSri(rest.to_string())
                } else {
                    HashError::InvalidBase64(rest.to_string())
                });
            }
            Hash::new(algo, &digest)
        } else {
            Err(HashError::WrongLength {
                hash: rest.to_string(),
                algo,
            })
        }
    }

    /// The digest in lower-case hexadecimal.
    pub fn to_base16(&self) -> String {
        encode_base16(self.as_bytes())
    }

    /// The digest in nix32.
    pub fn to_nix32(&self) -> String {
        nixbase32::encode(self.as_bytes())
    }

    /// The digest in padded base64.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.as_bytes())
    }

    /// The hash as SRI: `sha256-<base64>`.
    pub fn to_sri(&self) -> String {
        format!("{}-{}", self.algo, self.to_base64())
    }

    /// The hash in `format`, prefixed with `algo:` if `include_algo`
    /// (SRI always carries its algorithm), as C++ Nix's `Hash::to_string`.
    pub fn to_string_as(&self, format: HashFormat, include_algo: bool) -> String {
        let digest = match format {
            HashFormat::Base16 => self.to_base16(),
            HashFormat::Nix32 => self.to_nix32(),
            HashFormat::Base64 => self.to_base64(),
            HashFormat::Sri => return self.to_sri(),
        };
        if include_algo {
            format!("{}:{}", self.algo, digest)
        } else {
            digest
        }
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({}:{})", self.algo, self.to_base16())
    }
}

/// Prints the hash in SRI form, as C++ Nix does in its messages.
impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sri())
    }
}

/// Splits an `algo:` or SRI `algo-` prefix off, as C++ Nix's
/// `getParsedTypeAndSRI`: returns the prefix, the rest and whether it was SRI.
fn split_algo_prefix(s: &str) -> (Option<&str>, &str, bool) {
    if let Some((prefix, rest)) = s.split_once(':') {
        (Some(prefix), rest, false)
    } else if let Some((prefix, rest)) = s.split_once('-') {
        (Some(prefix), rest, true)
    } else {
        (None, s, false)
    }
}

/// A streaming hasher for any [`HashAlgo`]; also an [`io::Write`] sink.
#[derive(Clone)]
pub enum Hasher {
    /// MD5 state.
    Md5(Md5),
    /// SHA-1 state.
    Sha1(Sha1),
    /// SHA-256 state.
    Sha256(Sha256),
    /// SHA-512 state.
    Sha512(Sha512),
}

impl Hasher {
    /// A fresh hasher for `algo`.
    pub fn new(algo: HashAlgo) -> Hasher {
        match algo {
            HashAlgo::Md5 => Hasher::Md5(Md5::new()),
            HashAlgo::Sha1 => Hasher::Sha1(Sha1::new()),
            HashAlgo::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlgo::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// The algorithm being computed.
    pub fn algo(&self) -> HashAlgo {
        match self {
            Hasher::Md5(_) => HashAlgo::Md5,
            Hasher::Sha1(_) => HashAlgo::Sha1,
            Hasher::Sha256(_) => HashAlgo::Sha256,
            Hasher::Sha512(_) => HashAlgo::Sha512,
        }
    }

    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Hash {
        let algo = self.algo();
        let mut bytes = [0u8; MAX_DIGEST_LEN];
        match self {
            Hasher::Md5(h) => bytes[..16].copy_from_slice(&h.finalize()),
            Hasher::Sha1(h) => bytes[..20].copy_from_slice(&h.finalize()),
            Hasher::Sha256(h) => bytes[..32].copy_from_slice(&h.finalize()),
            Hasher::Sha512(h) => bytes[..64].copy_from_slice(&h.finalize()),
        }
        Hash { algo, bytes }
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// XOR-folds `hash` into `N` bytes (C++ Nix's `compressHash`): byte `i` of
/// the input is XORed into byte `i % N` of the output.
pub fn compress_hash<const N: usize>(hash: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    if N == 0 {
        return out;
    }
    for (i, b) in hash.iter().enumerate() {
        out[i % N] ^= b;
    }
    out
}

/// Lower-case hexadecimal of `bytes`.
pub fn encode_base16(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Decodes hexadecimal (either case); `None` on an odd length or a non-hex digit.
pub fn decode_base16(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Decodes base64 as leniently as C++ Nix's `base64Decode`: stops at the
/// first `=`, skips newlines, drops leftover bits, rejects other characters.
fn decode_base64_lenient(s: &str) -> Result<Vec<u8>, HashError> {
    fn value(c: char) -> Option<u32> {
        match c {
            'A'..='Z' => Some(c as u32 - 'A' as u32),
            'a'..='z' => Some(c as u32 - 'a' as u32 + 26),
            '0'..='9' => Some(c as u32 - '0' as u32 + 52),
            '+' => Some(62),
            '/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.chars() {
        if c == '=' {
            break;
        }
        if c == '\n' {
            continue;
        }
        let v = value(c).ok_or(HashError::InvalidBase64Char(c))?;
        acc = (acc << 6 | v) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `builtins.hashString <algo> "abc"` and its other encodings, from C++
    /// Nix 2.8 (`nix hash to-base32` / `to-base64` / `to-sri`).
    const ABC: &[(HashAlgo, &str, &str, &str)] = &[
        (
            HashAlgo::Md5,
            "900150983cd24fb0d6963f7d28e17f72",
            "3jgzhjhz9zjvbb0kyj7jc500ch",
            "kAFQmDzST7DWlj99KOF/cg==",
        ),
        (
            HashAlgo::Sha1,
            "a9993e364706816aba3e25717850c26c9cd0d89d",
            "kpcd173cq987hw957sx6m0868wv3x6d9",
            "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=",
        ),
        (
            HashAlgo::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
        ),
        (
            HashAlgo::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7xac99vxfc4ii84hawjbk876blyk1jfhkbbyx",
            "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==",
        ),
    ];

    #[test]
    fn hash_string_vectors() {
        for &(algo, hex, nix32, b64) in ABC {
            let h = Hash::digest(algo, "abc");
            assert_eq!(h.algo(), algo);
            assert_eq!(h.to_base16(), hex);
            assert_eq!(h.to_nix32(), nix32);
            assert_eq!(h.to_base64(), b64);
            assert_eq!(h.to_sri(), format!("{algo}-{b64}"));
            assert_eq!(
                h.to_string_as(HashFormat::Base16, true),
                format!("{algo}:{hex}")
            );
            assert_eq!(h.to_string_as(HashFormat::Nix32, false), nix32);
            assert_eq!(
                h.to_string_as(HashFormat::Base64, true),
                format!("{algo}:{b64}")
            );
            assert_eq!(
                h.to_string_as(HashFormat::Sri, false),
                format!("{algo}-{b64}")
            );
        }
    }

    #[test]
    fn empty_string_sha256() {
        assert_eq!(
            Hash::digest(HashAlgo::Sha256, "").to_base16(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parses_every_encoding_with_and_without_prefix() {
        for &(algo, hex, nix32, b64) in ABC {
            let expected = Hash::digest(algo, "abc");
            for digest in [hex, &hex.to_uppercase(), nix32, b64] {
                assert_eq!(
                    Hash::parse_any(digest, Some(algo)),
                    Ok(expected),
                    "{digest}"
                );
                assert_eq!(
                    Hash::parse_unprefixed(digest, algo),
                    Ok(expected),
                    "{digest}"
                );
                let prefixed = format!("{algo}:{digest}");
                assert_eq!(Hash::parse_any(&prefixed, None), Ok(expected), "{prefixed}");
                assert_eq!(Hash::parse_any(&prefixed, Some(algo)), Ok(expected));
                assert_eq!(Hash::parse_prefixed(&prefixed), Ok(expected));
            }
            let sri = format!("{algo}-{b64}");
            assert_eq!(Hash::parse_any(&sri, None), Ok(expected));
            assert_eq!(Hash::parse_any(&sri, Some(algo)), Ok(expected));
            assert_eq!(Hash::parse_prefixed(&sri), Ok(expected));
            assert_eq!(Hash::parse_sri(&sri), Ok(expected));
            // SRI does not need padding.
            let unpadded = sri.trim_end_matches('=');
            assert_eq!(Hash::parse_any(unpadded, None), Ok(expected));
        }
    }

    // Error wording checked against C++ Nix 2.8 (`outputHash` with
    // `outputHashAlgo = "sha256"`, and `nix hash to-base16`).
    #[test]
    fn parse_errors_match_nix() {
        let sha256 = Some(HashAlgo::Sha256);
        let err = |s: &str, algo| Hash::parse_any(s, algo).unwrap_err().to_string();
        assert_eq!(
            err("x", sha256),
            "hash 'x' has wrong length for hash type 'sha256'"
        );
        assert_eq!(
            err("sha256:zz", sha256),
            "hash 'zz' has wrong length for hash type 'sha256'"
        );
        assert_eq!(
            err("md5-AAAA", sha256),
            "hash 'md5-AAAA' should have type 'sha256'"
        );
        assert_eq!(err("sha256-AAAA", sha256), "invalid SRI hash 'AAAA'");
        assert_eq!(err("foo:abc", sha256), "unknown hash algorithm 'foo'");
        assert_eq!(
            err("sha1:0000000000000000000000000000000000000000", sha256),
            "hash 'sha1:0000000000000000000000000000000000000000' should have type 'sha256'"
        );
        let sha1 = Some(HashAlgo::Sha1);
        assert_eq!(
            err("kpcd173cq987hw957sx6m0868wv3x6de", sha1),
            "invalid base-32 hash 'kpcd173cq987hw957sx6m0868wv3x6de'"
        );
        assert_eq!(
            err("a9993e364706816aba3e25717850c26c9cd0d89g", sha1),
            "invalid base-16 hash 'a9993e364706816aba3e25717850c26c9cd0d89g'"
        );
        assert_eq!(
            err("a9993e364706816aba3e25717850c26c9cd0d89d", None),
            "hash 'a9993e364706816aba3e25717850c26c9cd0d89d' does not include a type, nor is the type otherwise known from context"
        );
        assert_eq!(
            err("qZk+NkcGgWq6PiVxeFDCbJzQ2J!=", sha1),
            "invalid character in Base64 string: '!'"
        );
        assert_eq!(
            err("AAAAAAAAAAAAAAAAAAAAAAAAAA==", sha1),
            "invalid base-64 hash 'AAAAAAAAAAAAAAAAAAAAAAAAAA=='"
        );
        assert_eq!(
            Hash::parse_prefixed("abc").unwrap_err().to_string(),
            "hash 'abc' does not include a type"
        );
        assert_eq!(
            Hash::parse_sri("sha256:abc").unwrap_err().to_string(),
            "hash 'sha256:abc' is not SRI"
        );
    }

    #[test]
    fn nix32_with_leading_z_for_sha1_is_accepted() {
        // 160 bits fill 32 digits exactly, so every digit value is allowed (Nix agrees).
        let h = Hash::parse_any("zpcd173cq987hw957sx6m0868wv3x6d9", Some(HashAlgo::Sha1)).unwrap();
        assert_eq!(h.to_base16(), "a9993e364706816aba3e25717850c26c9cd0d8fd");
    }

    #[test]
    fn nix32_overflow_is_invalid() {
        let s = format!("z{}", &ABC[2].2[1..]);
        assert_eq!(
            Hash::parse_any(&s, Some(HashAlgo::Sha256)),
            Err(HashError::InvalidNix32(s.clone()))
        );
    }

    #[test]
    fn base64_skips_newlines_like_nix() {
        let h = Hash::parse_any("sha1-qZk+NkcGgWq6\nPiVxeFDCbJzQ2J0=", None).unwrap();
        assert_eq!(h, Hash::digest(HashAlgo::Sha1, "abc"));
    }

    #[test]
    fn allow_empty_gives_zero_hash() {
        let h = Hash::parse_allow_empty("", Some(HashAlgo::Sha256)).unwrap();
        assert_eq!(h.to_base16(), "0".repeat(64));
        assert_eq!(
            Hash::parse_allow_empty("", None),
            Err(HashError::EmptyWithoutAlgo)
        );
    }

    #[test]
    fn algo_and_format_names() {
        for algo in HashAlgo::ALL {
            assert_eq!(algo.name().parse::<HashAlgo>(), Ok(algo));
        }
        assert_eq!(
            "blake3".parse::<HashAlgo>().unwrap_err().to_string(),
            "unknown hash algorithm 'blake3'"
        );
        assert_eq!(HashFormat::from_name("base32"), Some(HashFormat::Nix32));
        assert_eq!(HashFormat::from_name("nix32"), Some(HashFormat::Nix32));
        assert_eq!(HashFormat::from_name("sri"), Some(HashFormat::Sri));
        assert!("hex".parse::<HashFormat>().is_err());
        assert_eq!(HashAlgo::Sha256.base64_len(), 44);
        assert_eq!(HashAlgo::Sha1.base64_len(), 28);
        assert_eq!(HashAlgo::Md5.base64_len(), 24);
        assert_eq!(HashAlgo::Sha512.base64_len(), 88);
        assert_eq!(HashAlgo::Sha512.nix32_len(), 103);
    }

    #[test]
    fn new_checks_length() {
        assert!(Hash::new(HashAlgo::Sha1, &[0; 20]).is_ok());
        assert_eq!(
            Hash::new(HashAlgo::Sha1, &[0; 32]).unwrap_err().to_string(),
            "a sha1 digest is 20 bytes, not 32"
        );
    }

    #[test]
    fn streaming_equals_one_shot() {
        use std::io::Write;
        let mut h = Hasher::new(HashAlgo::Sha512);
        h.write_all(b"a").unwrap();
        h.update(b"bc");
        assert_eq!(h.finish(), Hash::digest(HashAlgo::Sha512, "abc"));
    }

    #[test]
    fn compress_folds_with_xor() {
        let input: Vec<u8> = (1..=32).collect();
        let out: [u8; 20] = compress_hash(&input);
        for (i, b) in out.iter().enumerate() {
            let expected = if i < 12 {
                (i as u8 + 1) ^ (i as u8 + 21)
            } else {
                i as u8 + 1
            };
            assert_eq!(*b, expected, "byte {i}");
        }
    }

    #[test]
    fn base16_helpers() {
        assert_eq!(decode_base16("00fFaA"), Some(vec![0, 255, 170]));
        assert_eq!(decode_base16("0"), None);
        assert_eq!(decode_base16("zz"), None);
        assert_eq!(encode_base16(&[0, 255, 170]), "00ffaa");
    }
}
