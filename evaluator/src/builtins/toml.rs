//! Builtins: `fromTOML`, parsed by the `toml` crate and converted as C++
//! Nix converts toml11's values. Dates and times are an error unless the
//! experimental feature `parse-toml-timestamps` is enabled; then they
//! become `{ _type = "timestamp"; value = "..."; }` with toml11's
//! normalised text.

use super::sync;
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{Args, BuiltinDef, NixAttrs, NixString, Value};
use crate::vm::EvalState;
use std::fmt::Write;
use std::rc::Rc;
use toml::value::{Datetime, Offset};

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[sync("fromTOML", 1, from_toml)];

/// Why a conversion failed; both are reported after "while parsing TOML: ".
enum Failure {
    /// A Nix evaluation error (printed with its "error: " prefix, as C++
    /// Nix's `what()` shows it).
    Nix(String),
    /// A plain message.
    Plain(String),
}

fn from_toml(state: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let s = super::strings::expect_string_no_ctx(&args[0])?;
    let timestamps = state
        .options
        .experimental_features
        .iter()
        .any(|f| f == "parse-toml-timestamps");
    let text = String::from_utf8_lossy(s.as_bytes());
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ErrorKind::other(format!("while parsing TOML: {}", parse_error(&text, &e)))
    })?;
    convert_table(table, timestamps).map_err(|f| {
        ErrorKind::other(match f {
            Failure::Nix(m) => format!("while parsing TOML: error: {m}"),
            Failure::Plain(m) => format!("while parsing TOML: {m}"),
        })
    })
}

/// The message for a syntax error. Integers out of range get toml11's
/// message (C++ Nix's parser), others the `toml` crate's.
fn parse_error(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.to_string();
    };
    let token = text.get(span.clone()).unwrap_or("");
    let digits: String = token.chars().filter(|c| *c != '_').collect();
    let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(&digits);
    let is_decimal = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit());
    if !is_decimal || digits.parse::<i64>().is_ok() {
        return e.to_string();
    }
    let before = &text[..span.start];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[span.start..]
        .find('\n')
        .map_or(text.len(), |i| span.start + i);
    let pad = " ".repeat(line_no.to_string().len());
    let caret = " ".repeat(span.end - line_start);
    format!(
        "[error] toml::parse_dec_integer: too large integer: current max digits = 2^63\n \
         --> fromTOML\n {pad} |\n {line_no} | {}\n {pad} | {caret}^-- must be < 2^63\n",
        &text[line_start..line_end]
    )
}

fn string(s: String) -> Result<NixString, Failure> {
    if s.contains('\0') {
        return Err(Failure::Nix(format!(
            "input string '{}' cannot be represented as Nix string because it contains null bytes",
            s.replace('\0', "\u{2400}")
        )));
    }
    Ok(NixString::from(s))
}

fn convert_table(table: toml::Table, timestamps: bool) -> Result<Value, Failure> {
    // The table's map is ordered by key, as Nix sets are.
    let mut entries = Vec::with_capacity(table.len());
    for (k, v) in table {
        entries.push((string(k)?, convert(v, timestamps)?));
    }
    Ok(Value::attrs(NixAttrs::from_sorted(entries)))
}

fn convert(v: toml::Value, timestamps: bool) -> Result<Value, Failure> {
    Ok(match v {
        toml::Value::String(s) => Value::String(string(s)?),
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Array(items) => Value::list(
            items
                .into_iter()
                .map(|v| convert(v, timestamps))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => convert_table(t, timestamps)?,
        toml::Value::Datetime(dt) => {
            if !timestamps {
                return Err(Failure::Plain("Dates and times are not supported".into()));
            }
            Value::attrs(NixAttrs::from_sorted(vec![
                (NixString::from("_type"), Value::string("timestamp")),
                (
                    NixString::from("value"),
                    Value::string(format_datetime(&dt)),
                ),
            ]))
        }
    })
}

/// A date/time as toml11 prints it: `T` between date and time, fractions
/// of a second in groups of three digits (milli, micro, nano) as far as
/// they are non-zero, `Z` for a zero offset.
pub fn format_datetime(dt: &Datetime) -> String {
    let mut out = String::new();
    if let Some(d) = &dt.date {
        let _ = write!(out, "{:04}-{:02}-{:02}", d.year, d.month, d.day);
    }
    if let Some(t) = &dt.time {
        if dt.date.is_some() {
            out.push('T');
        }
        let _ = write!(out, "{:02}:{:02}:{:02}", t.hour, t.minute, t.second);
        let ns = t.nanosecond;
        let (milli, micro, nano) = (ns / 1_000_000, ns / 1000 % 1000, ns % 1000);
        if nano != 0 {
            let _ = write!(out, ".{milli:03}{micro:03}{nano:03}");
        } else if micro != 0 {
            let _ = write!(out, ".{milli:03}{micro:03}");
        } else if milli != 0 {
            let _ = write!(out, ".{milli:03}");
        }
    }
    match dt.offset {
        None => {}
        Some(Offset::Z) | Some(Offset::Custom { minutes: 0 }) => out.push('Z'),
        Some(Offset::Custom { minutes }) => {
            let sign = if minutes < 0 { '-' } else { '+' };
            let m = minutes.unsigned_abs();
            let _ = write!(out, "{sign}{:02}:{:02}", m / 60, m % 60);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::eval::eval_strict_to_string as eval;

    #[test]
    fn from_toml() {
        assert_eq!(
            eval(
                r#"builtins.fromTOML ''
                  x = 1
                  s = "a"
                  f = 1.5
                  [table]
                  y = [ 2, true ]
                  [[arr]]
                  a = 1
                  [[arr]]
                ''"#
            )
            .unwrap(),
            r#"{ arr = [ { a = 1; } { } ]; f = 1.5; s = "a"; table = { y = [ 2 true ]; }; x = 1; }"#
        );
        assert!(eval("builtins.fromTOML \"d = 1979-05-27\"")
            .unwrap_err()
            .contains("while parsing TOML: Dates and times are not supported"));
        assert_eq!(
            eval("builtins.fromTOML \"attr = -9223372036854775809\"").unwrap_err().lines().nth(1),
            Some("       error: while parsing TOML: [error] toml::parse_dec_integer: too large integer: current max digits = 2^63")
        );
        assert!(eval("builtins.fromTOML \"x = \"")
            .unwrap_err()
            .contains("while parsing TOML"));
    }

    #[test]
    fn timestamps() {
        let dt: toml::value::Datetime = "1979-05-27 07:32:00.1234+00:00".parse().unwrap();
        assert_eq!(super::format_datetime(&dt), "1979-05-27T07:32:00.123400Z");
        let dt: toml::value::Datetime = "00:32:00.123456789".parse().unwrap();
        assert_eq!(super::format_datetime(&dt), "00:32:00.123456789");
        let dt: toml::value::Datetime = "1979-05-27T00:32:00-07:00".parse().unwrap();
        assert_eq!(super::format_datetime(&dt), "1979-05-27T00:32:00-07:00");
    }
}
