//! Builtins: JSON (`toJSON`, `fromJSON`).
//!
//! `toJSON` writes what C++ Nix's nlohmann::json `dump()` writes: floats in
//! nlohmann's format, control characters as `\u00XX`, sets peeled through
//! `__toString` and `outPath`, and an error for strings that are not UTF-8
//! (reported after the whole value has been evaluated, as C++ Nix builds
//! the document before serialising it). `fromJSON` reads integers as
//! integers and everything with a fraction or exponent as a float.

use super::{gen, sync};
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{Args, BuiltinDef, NixString, StringBuilder, Value};
use crate::vm::{call, force, EvalState, GenCo, GenFuture};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

mod parse;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] =
    &[gen("toJSON", 1, to_json), sync("fromJSON", 1, from_json)];

fn to_json(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        Ok(Value::String(
            value_to_json(&co, &state, args[0].clone()).await?,
        ))
    })
}

/// Serialises a value as `builtins.toJSON` does (string contexts are kept).
pub async fn value_to_json(co: &GenCo, state: &Rc<EvalState>, v: Value) -> EvalResult<NixString> {
    let mut w = JsonWriter {
        out: StringBuilder::default(),
        utf8_error: None,
        depth: 0,
        written: 0,
    };
    w.value(co, state, v, true).await?;
    match w.utf8_error {
        Some(e) => Err(e),
        None => Ok(w.out.finish()),
    }
}

struct JsonWriter {
    out: StringBuilder,
    /// The first string that is not valid UTF-8, reported at the end.
    utf8_error: Option<ErrorKind>,
    /// Current nesting, bounded like C++ Nix's recursion.
    depth: usize,
    /// Values written so far: the interrupt is polled every
    /// `POLL_EVERY` of them, since a value already forced reaches no VM
    /// loop that would poll it.
    written: u32,
}

/// How many values [`JsonWriter`] writes between two looks at the
/// interrupt flag.
const POLL_EVERY: u32 = 4096;

impl JsonWriter {
    fn string(&mut self, s: &NixString) {
        self.out.add_context(s.context());
        self.bytes(s.as_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        match json_quote_bytes(b) {
            Ok(q) => self.out.push_bytes(q.as_bytes()),
            Err(e) => {
                self.utf8_error.get_or_insert(e);
            }
        }
    }

    fn value<'a>(
        &'a mut self,
        co: &'a GenCo,
        state: &'a Rc<EvalState>,
        v: Value,
        copy_to_store: bool,
    ) -> Pin<Box<dyn Future<Output = EvalResult<()>> + 'a>> {
        Box::pin(async move {
            if self.depth >= crate::vm::MAX_DEPTH {
                return Err(ErrorKind::StackOverflow);
            }
            self.depth += 1;
            let r = self.value_inner(co, state, v, copy_to_store).await;
            self.depth -= 1;
            r
        })
    }

    async fn value_inner(
        &mut self,
        co: &GenCo,
        state: &Rc<EvalState>,
        v: Value,
        copy_to_store: bool,
    ) -> EvalResult<()> {
        {
            self.written = self.written.wrapping_add(1);
            if self.written.is_multiple_of(POLL_EVERY) {
                state.check_interrupt()?;
            }
            let v = force(co, v).await;
            match &v {
                Value::Null => self.out.push_bytes(b"null"),
                Value::Bool(b) => self.out.push_bytes(if *b { b"true" } else { b"false" }),
                Value::Int(i) => self.out.push_bytes(i.to_string().as_bytes()),
                Value::Float(f) => self.out.push_bytes(json_float(*f).as_bytes()),
                Value::String(s) => self.string(s),
                Value::Path(p) => {
                    let s = if copy_to_store {
                        state.copy_path_to_store(p)?
                    } else {
                        NixString::from(p.to_string_lossy().into_owned())
                    };
                    self.string(&s);
                }
                Value::List(l) => {
                    self.out.push_bytes(b"[");
                    for (i, item) in l.iter().enumerate() {
                        if i > 0 {
                            self.out.push_bytes(b",");
                        }
                        self.value(co, state, item.clone(), copy_to_store).await?;
                    }
                    self.out.push_bytes(b"]");
                }
                Value::Attrs(_) => {
                    let (peeled, through_to_string) = peel(co, v.clone()).await?;
                    match &peeled {
                        Value::Attrs(a) => {
                            self.out.push_bytes(b"{");
                            for (i, (k, item)) in a.iter().enumerate() {
                                if i > 0 {
                                    self.out.push_bytes(b",");
                                }
                                self.bytes(k.as_bytes());
                                self.out.push_bytes(b":");
                                self.value(co, state, item.clone(), copy_to_store).await?;
                            }
                            self.out.push_bytes(b"}");
                        }
                        // A path returned by `__toString` is not copied (a C++ Nix quirk).
                        _ => {
                            let copy = copy_to_store && !through_to_string;
                            self.value(co, state, peeled, copy).await?
                        }
                    }
                }
                Value::Closure(_) | Value::Builtin(_) => {
                    return Err(ErrorKind::other(format!(
                        "cannot convert {} to JSON",
                        crate::printer::type_with_article(&v)
                    )))
                }
                Value::Thunk(_) => unreachable!("forced above"),
            }
            Ok(())
        }
    }
}

/// Follows `__toString` and `outPath` from a forced set as far as they go,
/// as C++ Nix's `peelToStringOutPath` does. Returns the final value and
/// whether a `__toString` was called, which must then have produced a
/// string or path.
async fn peel(co: &GenCo, mut v: Value) -> EvalResult<(Value, bool)> {
    let mut through_to_string = false;
    loop {
        v = force(co, v).await;
        let Value::Attrs(a) = &v else {
            if through_to_string && !matches!(v, Value::String(_) | Value::Path(_)) {
                return Err(ErrorKind::other(format!(
                    "`__toString` should return a string, but got {}: {}",
                    crate::printer::type_with_article(&v),
                    crate::printer::print_shallow(&v)
                )));
            }
            return Ok((v, through_to_string));
        };
        if let Some(f) = a.get(b"__toString") {
            v = call(co, f.clone(), v.clone()).await;
            through_to_string = true;
        } else if let Some(p) = a.get(b"outPath") {
            v = p.clone();
        } else {
            if through_to_string {
                return Err(ErrorKind::other(format!(
                    "`__toString` must return a string, but got {}: {}",
                    crate::printer::type_with_article(&v),
                    crate::printer::print_shallow(&v)
                )));
            }
            return Ok((v, false));
        }
    }
}

/// A float as nlohmann::json prints it: the shortest digits that read back
/// the same, in fixed notation for decimal exponents from -4 to 15
/// (always with a fraction, `1.0`) and as `1.5e+20` / `1e-05` beyond;
/// `null` for infinities and NaN.
pub fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let mut out = String::new();
    if f.is_sign_negative() {
        out.push('-');
    }
    let f = f.abs();
    if f == 0.0 {
        out.push_str("0.0");
        return out;
    }
    // Shortest round-trip digits and the exponent of the first one.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let k = digits.len() as i32;
    // The value is 0.DIGITS * 10^n.
    let n = exp + 1;
    const MIN_EXP: i32 = -4;
    const MAX_EXP: i32 = 15;
    if k <= n && n <= MAX_EXP {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
        out.push_str(".0");
    } else if 0 < n && n <= MAX_EXP {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if MIN_EXP < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        out.push_str(&format!("e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs()));
    }
    out
}

/// A JSON string literal of UTF-8 text, escaped as nlohmann::json does.
pub fn json_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// [`json_quote`] for bytes, with nlohmann's error for invalid UTF-8.
pub fn json_quote_bytes(b: &[u8]) -> EvalResult<String> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(json_quote(s)),
        Err(e) => {
            let start = e.valid_up_to();
            let msg = match e.error_len() {
                // nlohmann reports the byte at which its decoder gave up:
                // the lead byte itself if it cannot start a sequence,
                // else the first byte that does not continue it.
                Some(len) => {
                    let at = if matches!(b[start], 0xc2..=0xf4) {
                        start + len
                    } else {
                        start
                    };
                    format!(
                        "[json.exception.type_error.316] invalid UTF-8 byte at index {at}: 0x{:02X}",
                        b[at]
                    )
                }
                None => format!(
                    "[json.exception.type_error.316] incomplete UTF-8 string; last byte: 0x{:02X}",
                    b[b.len() - 1]
                ),
            };
            Err(ErrorKind::other(format!("JSON serialization error: {msg}")))
        }
    }
}

// ---------------------------------------------------------------------------
// fromJSON

fn from_json(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let s = super::strings::expect_string_no_ctx(&args[0])?;
    parse::parse(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::json_float;
    use crate::eval::eval_strict_to_string as eval;

    #[test]
    fn floats_like_nlohmann() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (1e-5, "1e-05"),
            (123456789.123, "123456789.123"),
            (1e15, "1e+15"),
            (1e14, "100000000000000.0"),
            (-0.0, "-0.0"),
            (1.5e300, "1.5e+300"),
            (0.0001, "0.0001"),
            (1.0 / 3.0, "0.3333333333333333"),
            (-2.5, "-2.5"),
            (5e-324, "5e-324"),
        ];
        for (f, s) in cases {
            assert_eq!(json_float(f), s, "{f}");
        }
        assert_eq!(json_float(f64::INFINITY), "null");
    }

    #[test]
    fn to_json() {
        assert_eq!(
            eval(r#"builtins.toJSON { a = [ 1 2.5 null true (builtins.fromJSON ''"x\n\u0001\u007f"'') ]; }"#)
                .unwrap(),
            "\"{\\\"a\\\":[1,2.5,null,true,\\\"x\\\\n\\\\u0001\u{7f}\\\"]}\""
        );
        assert_eq!(
            eval("builtins.toJSON { __toString = s: \"str\"; }").unwrap(),
            r#""\"str\"""#
        );
        assert!(eval("builtins.toJSON { __toString = self: 42; }")
            .unwrap_err()
            .contains("`__toString` should return a string, but got an integer: 42"));
        assert!(eval("builtins.toJSON (x: x)")
            .unwrap_err()
            .contains("cannot convert a function to JSON"));
    }

    #[test]
    fn from_json() {
        assert_eq!(
            eval(r#"builtins.fromJSON ''{"b": [1, 1.0, 1e2, -3, null, "x"], "a": {"a": 1, "a": 2}}''"#)
                .unwrap(),
            "{ a = { a = 2; }; b = [ 1 1 100 -3 null \"x\" ]; }"
        );
        assert_eq!(
            eval(r#"builtins.typeOf (builtins.fromJSON "1.0")"#).unwrap(),
            "\"float\""
        );
        assert!(eval(r#"builtins.fromJSON ''18446744073709551615''"#)
            .unwrap_err()
            .contains("unsigned json number 18446744073709551615 outside of Nix integer range"));
        assert!(eval(r#"builtins.fromJSON ''"a\u0000b"''"#)
            .unwrap_err()
            .contains("cannot be represented as Nix string because it contains null bytes"));
        assert!(eval("builtins.fromJSON \"[1,\"").is_err());
        assert_eq!(
            eval(r#"builtins.fromJSON ''[-0, -0.0, 123456789012345678901234567890, "\ud83d\ude00"]''"#)
                .unwrap(),
            "[ 0 -0 1.23457e+29 \"😀\" ]"
        );
        // The reader keeps its own stack; dropping the result recurses, so
        // give this thread room for that.
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(|| {
                let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
                assert!(super::parse::parse(deep.as_bytes()).is_ok());
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
