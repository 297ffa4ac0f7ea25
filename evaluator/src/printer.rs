//! Printing values the way `nix-instantiate --eval` does.

use crate::value::{NixAttrs, Value};
use rustc_hash::FxHashSet;
use std::rc::Rc;

/// A float as C++ streams print a double (`%g`, six significant digits).
pub fn format_float(x: f64) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.5e}", x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let decimals = (5 - exp).max(0) as usize;
        let s = format!("{:.*}", decimals, x);
        strip_zeros(&s)
    } else {
        let m = strip_zeros(mantissa);
        format!("{}e{}{:02}", m, if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// A string literal with Nix escapes, as bytes: bytes that are not valid
/// UTF-8 are printed as they are, like C++ Nix does.
pub fn quote_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'"');
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'$' if bytes.get(i + 1) == Some(&b'{') => out.extend_from_slice(b"\\$"),
            b => out.push(b),
        }
    }
    out.push(b'"');
    out
}

/// A string literal with Nix escapes (lossy for bytes that are not UTF-8).
pub fn quote_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&quote_bytes(bytes)).into_owned()
}

/// Whether a name can stand unquoted as an attribute name.
pub fn is_identifier(s: &[u8]) -> bool {
    let Some(&first) = s.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return false;
    }
    if !s
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'\'' | b'-'))
    {
        return false;
    }
    !matches!(
        s,
        b"if" | b"then" | b"else" | b"assert" | b"with" | b"let" | b"in" | b"rec" | b"inherit"
    )
}

/// An attribute name, quoted if needed.
pub fn attr_name(s: &[u8]) -> String {
    if is_identifier(s) {
        String::from_utf8_lossy(s).into_owned()
    } else {
        quote_string(s)
    }
}

/// "an integer", "a set", ... (C++ Nix's `showType` with article).
pub fn type_with_article(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a Boolean",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a float",
        Value::String(_) => "a string",
        Value::Path(_) => "a path",
        Value::Attrs(_) => "a set",
        Value::List(_) => "a list",
        Value::Closure(_) => "a function",
        Value::Builtin(b) if b.args.is_empty() => "a built-in function",
        Value::Builtin(_) => "a partially applied built-in function",
        Value::Thunk(_) => "a thunk",
    }
}

/// A value printed without forcing anything (unevaluated parts as `<CODE>`).
pub fn print_shallow(v: &Value) -> String {
    let mut out = Vec::new();
    Printer {
        seen: FxHashSet::default(),
        out: &mut out,
        depth_limit: 3,
    }
    .print(v, 0, None);
    String::from_utf8_lossy(&out).into_owned()
}

/// Prints a (deeply forced) value like `nix-instantiate --eval`: repeated
/// sets and lists (by identity, as C++ Nix tracks them) print as `«repeated»`.
pub fn print_value(v: &Value) -> String {
    String::from_utf8_lossy(&print_value_bytes(v)).into_owned()
}

/// [`print_value`] with string bytes exactly as they are.
pub fn print_value_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    Printer {
        seen: FxHashSet::default(),
        out: &mut out,
        depth_limit: usize::MAX,
    }
    .print(v, 0, None);
    out
}

struct Printer<'a> {
    seen: FxHashSet<usize>,
    out: &'a mut Vec<u8>,
    depth_limit: usize,
}

impl Printer<'_> {
    fn push_str(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }
}

impl Printer<'_> {
    /// `cell` is the identity of the thunk the value was reached through:
    /// C++ Nix stores small lists inline in each value cell.
    fn print(&mut self, v: &Value, depth: usize, cell: Option<usize>) {
        match v {
            Value::Null => self.push_str("null"),
            Value::Bool(b) => self.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => self.push_str(&i.to_string()),
            Value::Float(f) => self.push_str(&format_float(*f)),
            Value::String(s) => self.out.extend_from_slice(&quote_bytes(s.as_bytes())),
            Value::Path(p) => self.push_str(&p.to_string_lossy()),
            Value::Closure(_) => self.push_str("<LAMBDA>"),
            Value::Builtin(b) => self.push_str(if b.args.is_empty() {
                "<PRIMOP>"
            } else {
                "<PRIMOP-APP>"
            }),
            Value::Thunk(t) => match t.value() {
                Some(inner) => self.print(&inner, depth, Some(t.addr())),
                None => self.push_str("<CODE>"),
            },
            Value::Attrs(a) => self.print_attrs(a, depth),
            Value::List(l) => {
                if l.is_empty() {
                    self.push_str("[ ]");
                    return;
                }
                // C++ Nix keys lists by their element storage, which small
                // lists keep inline in each value cell: reached through a
                // thunk, the thunk is that cell; otherwise the list is shared.
                let shared = Rc::as_ptr(l) as *const u8 as usize;
                let key = if l.len() <= 2 {
                    cell.unwrap_or(shared)
                } else {
                    shared
                };
                if !self.seen.insert(key) {
                    self.push_str("«repeated»");
                    return;
                }
                if depth >= self.depth_limit {
                    self.push_str("[ ... ]");
                    return;
                }
                self.push_str("[ ");
                for item in l.iter() {
                    self.print(item, depth + 1, None);
                    self.out.push(b' ');
                }
                self.out.push(b']');
            }
        }
    }

    fn print_attrs(&mut self, a: &Rc<NixAttrs>, depth: usize) {
        if a.is_empty() {
            self.push_str("{ }");
            return;
        }
        if !self.seen.insert(Rc::as_ptr(a) as *const u8 as usize) {
            self.push_str("«repeated»");
            return;
        }
        if depth >= self.depth_limit {
            self.push_str("{ ... }");
            return;
        }
        self.push_str("{ ");
        for (k, v) in a.iter() {
            if is_identifier(k.as_bytes()) {
                self.out.extend_from_slice(k.as_bytes());
            } else {
                self.out.extend_from_slice(&quote_bytes(k.as_bytes()));
            }
            self.push_str(" = ");
            self.print(v, depth + 1, None);
            self.push_str("; ");
        }
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_cpp_streams() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(2.75), "2.75");
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(1e20), "1e+20");
        assert_eq!(format_float(123456789.0), "1.23457e+08");
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(0.00001), "1e-05");
        assert_eq!(format_float(-2.5), "-2.5");
    }

    #[test]
    fn string_escapes() {
        assert_eq!(quote_string(b"a\"b\\c\n${x}$y"), r#""a\"b\\c\n\${x}$y""#);
    }
}
