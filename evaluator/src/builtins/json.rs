//! Builtins: JSON (`toJSON`, `fromJSON`).

use super::gen;
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{BuiltinDef, NixString, StringBuilder, Value};
use crate::vm::{call, coerce_to_string, force, Coercion, EvalState, GenCo, GenFuture};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[gen("toJSON", 1, to_json)];

fn to_json(co: GenCo, state: Rc<EvalState>, args: Vec<Value>) -> GenFuture {
    Box::pin(async move {
        Ok(Value::String(
            value_to_json(&co, &state, args[0].clone()).await?,
        ))
    })
}

/// Serialises a value as `builtins.toJSON` does (string contexts are kept).
pub async fn value_to_json(co: &GenCo, state: &Rc<EvalState>, v: Value) -> EvalResult<NixString> {
    let mut b = StringBuilder::default();
    write_json(co, state, v, &mut b).await?;
    Ok(b.finish())
}

fn write_json<'a>(
    co: &'a GenCo,
    state: &'a Rc<EvalState>,
    v: Value,
    out: &'a mut StringBuilder,
) -> Pin<Box<dyn Future<Output = EvalResult<()>> + 'a>> {
    Box::pin(async move {
        let v = force(co, v).await;
        match &v {
            Value::Null => out.push_bytes(b"null"),
            Value::Bool(b) => out.push_bytes(if *b { b"true" } else { b"false" }),
            Value::Int(i) => out.push_bytes(i.to_string().as_bytes()),
            Value::Float(f) => out.push_bytes(json_float(*f).as_bytes()),
            Value::String(s) => {
                out.add_context(s.context());
                out.push_bytes(json_quote(&s.to_str_lossy()).as_bytes());
            }
            Value::Path(_) => {
                let s = coerce_to_string(co, state, v.clone(), Coercion::INTERPOLATION).await?;
                out.add_context(s.context());
                out.push_bytes(json_quote(&s.to_str_lossy()).as_bytes());
            }
            Value::List(l) => {
                out.push_bytes(b"[");
                for (i, item) in l.iter().enumerate() {
                    if i > 0 {
                        out.push_bytes(b",");
                    }
                    write_json(co, state, item.clone(), out).await?;
                }
                out.push_bytes(b"]");
            }
            Value::Attrs(a) => {
                if let Some(f) = a.get(b"__toString") {
                    let s = call(co, f.clone(), v.clone()).await;
                    let s = coerce_to_string(co, state, s, Coercion::INTERPOLATION).await?;
                    out.add_context(s.context());
                    out.push_bytes(json_quote(&s.to_str_lossy()).as_bytes());
                    return Ok(());
                }
                if let Some(p) = a.get(b"outPath") {
                    return write_json(co, state, p.clone(), out).await;
                }
                out.push_bytes(b"{");
                for (i, (k, item)) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_bytes(b",");
                    }
                    out.push_bytes(json_quote(&k.to_str_lossy()).as_bytes());
                    out.push_bytes(b":");
                    write_json(co, state, item.clone(), out).await?;
                }
                out.push_bytes(b"}");
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
    })
}

/// A float as nlohmann::json prints it (shortest round-trip form).
pub fn json_float(f: f64) -> String {
    if f.is_finite() {
        let s = format!("{f:?}");
        // Rust prints 1e20 as 1e20; JSON wants the same digits C++ gives.
        s
    } else {
        "null".into()
    }
}

/// A JSON string literal.
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
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
