//! The reversible encoding of attribute names as file names.
//!
//! A Nix attribute name is any string: it may be empty, be `.` or `..`,
//! contain `/` or NUL, or look like one of the synthetic entries (`.drv`,
//! `.context`) of a derivation directory. None of those can be a file name
//! as they are, so names are percent-encoded by these rules:
//!
//! | attribute name | file name |
//! | --- | --- |
//! | empty | `%` |
//! | a `%` anywhere | `%25` |
//! | a `/` anywhere | `%2F` |
//! | a NUL byte anywhere | `%00` |
//! | a leading `.` (so `.` → `%2E`, `..` → `%2E.`, `.drv` → `%2Edrv`) | `%2E` |
//! | every other byte | itself |
//!
//! File names that start with `.` are therefore reserved for the synthetic
//! entries: `.drv` and `.context` in derivation directories (plus the `.`
//! and `..` every directory has). An attribute whose name starts with a dot
//! is real data, and showing it as `%2E...` also keeps it visible to `ls`
//! without `-a`.
//!
//! Decoding accepts exactly the encodings this module produces (upper-case
//! hex, no needless escapes), so every attribute has one file name and
//! every file name at most one attribute: `a%2fb` or `%61` name nothing.

use crate::node::Segment;

/// The file name of the synthetic `.drv` entry.
pub const DRV_FILE_NAME: &[u8] = b".drv";
/// The file name of the synthetic `.context` entry.
pub const CONTEXT_FILE_NAME: &[u8] = b".context";

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn escape(out: &mut Vec<u8>, byte: u8) {
    out.push(b'%');
    out.push(HEX[usize::from(byte >> 4)]);
    out.push(HEX[usize::from(byte & 0x0f)]);
}

/// The file name of an attribute name.
pub fn encode_name(name: &[u8]) -> Vec<u8> {
    if name.is_empty() {
        return b"%".to_vec();
    }
    let mut out = Vec::with_capacity(name.len() + 2);
    for (i, &byte) in name.iter().enumerate() {
        match byte {
            b'%' | b'/' | 0 => escape(&mut out, byte),
            b'.' if i == 0 => escape(&mut out, byte),
            _ => out.push(byte),
        }
    }
    out
}

/// The file name of a path segment (attribute or synthetic entry).
pub fn encode(segment: &Segment) -> Vec<u8> {
    match segment {
        Segment::Name(name) => encode_name(name),
        Segment::Drv => DRV_FILE_NAME.to_vec(),
        Segment::Context => CONTEXT_FILE_NAME.to_vec(),
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The attribute name a file name encodes, or `None` if the file name is
/// not the canonical encoding of any attribute name.
pub fn decode_name(file_name: &[u8]) -> Option<Vec<u8>> {
    if file_name == b"%" {
        return Some(Vec::new());
    }
    let mut out = Vec::with_capacity(file_name.len());
    let mut rest = file_name;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let [hi, lo, ..] = tail else {
                return None;
            };
            out.push((hex_value(*hi)? << 4) | hex_value(*lo)?);
            rest = &tail[2..];
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    // Only the canonical spelling is accepted; re-encoding is the simplest
    // exact statement of "canonical".
    (encode_name(&out) == file_name).then_some(out)
}

/// The path segment a file name stands for: a synthetic entry or an
/// attribute. `None` for names that encode nothing (including `.` and `..`,
/// which the filesystem layer resolves itself).
pub fn decode(file_name: &[u8]) -> Option<Segment> {
    match file_name {
        DRV_FILE_NAME => Some(Segment::Drv),
        CONTEXT_FILE_NAME => Some(Segment::Context),
        _ => decode_name(file_name).map(Segment::name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(name: &[u8]) -> Vec<u8> {
        let encoded = encode_name(name);
        assert_eq!(
            decode(&encoded),
            Some(Segment::Name(name.into())),
            "{name:?} encoded as {encoded:?}"
        );
        encoded
    }

    #[test]
    fn the_documented_table() {
        assert_eq!(round_trip(b""), b"%");
        assert_eq!(round_trip(b"."), b"%2E");
        assert_eq!(round_trip(b".."), b"%2E.");
        assert_eq!(round_trip(b"a/b"), b"a%2Fb");
        assert_eq!(round_trip(b"%"), b"%25");
        assert_eq!(round_trip(b"50%"), b"50%25");
        assert_eq!(round_trip(b"a\0b"), b"a%00b");
        assert_eq!(round_trip(b".drv"), b"%2Edrv");
        assert_eq!(round_trip(b".context"), b"%2Econtext");
        assert_eq!(round_trip(b"x.y"), b"x.y");
        assert_eq!(round_trip(b"hello"), b"hello");
        assert_eq!(round_trip("é ü".as_bytes()), "é ü".as_bytes());
        assert_eq!(round_trip(b"\xff\xfe"), b"\xff\xfe");
    }

    #[test]
    fn encoded_names_are_valid_file_names() {
        for name in [&b""[..], b".", b"..", b"/", b"//", b"\0", b".drv", b"%2E"] {
            let encoded = round_trip(name);
            assert!(!encoded.is_empty());
            assert!(!encoded.contains(&b'/'));
            assert!(!encoded.contains(&0));
            assert_ne!(encoded, b".");
            assert_ne!(encoded, b"..");
            assert!(!encoded.starts_with(b"."), "{encoded:?} could collide");
        }
    }

    #[test]
    fn synthetic_entries_do_not_collide_with_attributes() {
        assert_eq!(decode(b".drv"), Some(Segment::Drv));
        assert_eq!(decode(b".context"), Some(Segment::Context));
        assert_eq!(encode(&Segment::Drv), b".drv");
        assert_eq!(encode(&Segment::Context), b".context");
        assert_ne!(encode(&Segment::name(".drv")), encode(&Segment::Drv));
    }

    #[test]
    fn non_canonical_file_names_name_nothing() {
        for bad in [
            &b"a%2fb"[..],
            b"%61",
            b"%",
            b"%%",
            b"%2",
            b"%G0",
            b".hidden",
            b".",
            b"..",
            b"%2E%2E",
        ] {
            if bad == b"%" {
                continue; // the empty attribute name
            }
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_short_byte_string_round_trips() {
        let alphabet = [b'a', b'.', b'/', b'%', 0, b'2', b'E', b'F'];
        let mut names = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = names
                .iter()
                .flat_map(|n| {
                    alphabet.iter().map(move |&b| {
                        let mut m = n.clone();
                        m.push(b);
                        m
                    })
                })
                .collect();
            for name in &longer {
                round_trip(name);
            }
            names = longer;
        }
    }

    #[test]
    fn distinct_names_get_distinct_file_names() {
        let names: [&[u8]; 8] = [b"", b"%", b".", b"%2E", b"..", b"%2E.", b"a/b", b"a%2Fb"];
        let encoded: std::collections::HashSet<Vec<u8>> =
            names.iter().map(|n| encode_name(n)).collect();
        assert_eq!(encoded.len(), names.len());
    }
}
