//! Printing values the way `nix-instantiate --eval` does.

pub use crate::value::display::{format_float, quote_bytes, quote_string};
use crate::value::{NixAttrs, Value};
use rustc_hash::FxHashSet;
use std::rc::Rc;

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
