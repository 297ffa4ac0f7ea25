//! Builtins: version strings (`splitVersion`, `compareVersions`,
//! `parseDrvName`), with C++ Nix's component rules.

use super::strings::expect_string_no_ctx;
use super::sync;
use crate::errors::EvalResult;
use crate::value::{Args, BuiltinDef, NixAttrs, NixString, Value};
use crate::vm::EvalState;
use std::cmp::Ordering;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    sync("splitVersion", 1, split_version),
    sync("compareVersions", 2, compare_versions_builtin),
    sync("parseDrvName", 1, parse_drv_name),
];

/// The next component of a version at `*pos`: separators (`.`, `-`) are
/// skipped, then either a run of digits or a run of other characters.
/// Empty at the end.
fn next_component<'a>(s: &'a [u8], pos: &mut usize) -> &'a [u8] {
    while *pos < s.len() && matches!(s[*pos], b'.' | b'-') {
        *pos += 1;
    }
    let start = *pos;
    if start == s.len() {
        return &s[start..];
    }
    if s[start].is_ascii_digit() {
        while *pos < s.len() && s[*pos].is_ascii_digit() {
            *pos += 1;
        }
    } else {
        while *pos < s.len() && !s[*pos].is_ascii_digit() && !matches!(s[*pos], b'.' | b'-') {
            *pos += 1;
        }
    }
    &s[start..*pos]
}

/// A component as a number if it is one that fits a C `int`, as C++ Nix's
/// `string2Int<int>` reads it (longer digit runs compare as text).
fn as_int(c: &[u8]) -> Option<i32> {
    std::str::from_utf8(c).ok()?.parse().ok()
}

/// C++ Nix's `componentsLT`: numbers by value, "" and "pre" before
/// everything, words before numbers, words by bytes.
fn component_less(c1: &[u8], c2: &[u8]) -> bool {
    let (n1, n2) = (as_int(c1), as_int(c2));
    match (n1, n2) {
        (Some(a), Some(b)) => a < b,
        _ if c1.is_empty() && n2.is_some() => true,
        _ if c1 == b"pre" && c2 != b"pre" => true,
        _ if c2 == b"pre" => false,
        (_, Some(_)) => true,
        (Some(_), _) => false,
        _ => c1 < c2,
    }
}

/// Compares two version strings as `builtins.compareVersions` and
/// `nix-env` do.
pub fn compare_versions(v1: &[u8], v2: &[u8]) -> Ordering {
    let (mut p1, mut p2) = (0, 0);
    while p1 < v1.len() || p2 < v2.len() {
        let c1 = next_component(v1, &mut p1);
        let c2 = next_component(v2, &mut p2);
        if component_less(c1, c2) {
            return Ordering::Less;
        }
        if component_less(c2, c1) {
            return Ordering::Greater;
        }
    }
    Ordering::Equal
}

fn split_version(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let s = expect_string_no_ctx(&args[0])?;
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut parts = Vec::new();
    while pos < bytes.len() {
        let c = next_component(bytes, &mut pos);
        if c.is_empty() {
            break;
        }
        parts.push(Value::String(NixString::plain(c)));
    }
    Ok(Value::list(parts))
}

fn compare_versions_builtin(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let a = expect_string_no_ctx(&args[0])?;
    let b = expect_string_no_ctx(&args[1])?;
    Ok(Value::Int(
        match compare_versions(a.as_bytes(), b.as_bytes()) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        },
    ))
}

/// Splits `name-version` at the first dash not followed by a letter.
pub fn split_drv_name(s: &[u8]) -> (&[u8], &[u8]) {
    for i in 0..s.len() {
        if s[i] == b'-' && i + 1 < s.len() && !s[i + 1].is_ascii_alphabetic() {
            return (&s[..i], &s[i + 1..]);
        }
    }
    (s, b"")
}

fn parse_drv_name(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let s = expect_string_no_ctx(&args[0])?;
    let (name, version) = split_drv_name(s.as_bytes());
    Ok(Value::attrs(NixAttrs::from_sorted(vec![
        (
            NixString::interned(b"name"),
            Value::String(NixString::plain(name)),
        ),
        (
            NixString::interned(b"version"),
            Value::String(NixString::plain(version)),
        ),
    ])))
}

#[cfg(test)]
mod tests {
    use super::compare_versions;
    use crate::eval::eval_strict_to_string as eval;
    use std::cmp::Ordering::*;

    #[test]
    fn version_order() {
        let cases: &[(&str, &str, std::cmp::Ordering)] = &[
            ("1.0", "2.3", Less),
            ("2.1", "2.3", Less),
            ("2.3", "2.3", Equal),
            ("2.5", "2.3", Greater),
            ("3.1", "2.3", Greater),
            ("2.3.1", "2.3", Greater),
            ("2.3.1", "2.3a", Greater),
            ("2.3pre1", "2.3", Less),
            ("2.3pre3", "2.3pre12", Less),
            ("2.3a", "2.3c", Less),
            ("2.3pre1", "2.3c", Less),
            ("2.3pre1", "2.3q", Less),
            // Digit runs beyond a C int compare as words, which sort before numbers.
            ("20230101000000000", "9", Less),
            ("2147483648", "2147483647", Less),
        ];
        for (a, b, o) in cases {
            assert_eq!(
                compare_versions(a.as_bytes(), b.as_bytes()),
                *o,
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn builtins() {
        assert_eq!(
            eval("builtins.splitVersion \"1.2.3pre-beta\"").unwrap(),
            "[ \"1\" \"2\" \"3\" \"pre\" \"beta\" ]"
        );
        assert_eq!(
            eval("builtins.parseDrvName \"nix-0.12pre12876\"").unwrap(),
            "{ name = \"nix\"; version = \"0.12pre12876\"; }"
        );
        assert_eq!(
            eval("builtins.parseDrvName \"foo-bar\"").unwrap(),
            "{ name = \"foo-bar\"; version = \"\"; }"
        );
        assert_eq!(
            eval("builtins.compareVersions \"1.0\" \"1.0.1\"").unwrap(),
            "-1"
        );
    }
}
