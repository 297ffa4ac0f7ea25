//! Coercion of values to strings, in its three flavours.

use super::{call, force, EvalState, GenCo};
use crate::errors::{ErrorKind, EvalResult};
use crate::printer::type_with_article;
use crate::value::{NixString, StringBuilder, Value};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// How far a coercion goes.
#[derive(Clone, Copy, Debug)]
pub struct Coercion {
    /// Also coerce null, Booleans, numbers and lists (`toString`).
    pub more: bool,
    /// Paths become store paths (interpolation), not their own text.
    pub copy_to_store: bool,
}

impl Coercion {
    /// `"${x}"` and `"a" + x`.
    pub const INTERPOLATION: Coercion = Coercion {
        more: false,
        copy_to_store: true,
    };
    /// `builtins.toString`.
    pub const TO_STRING: Coercion = Coercion {
        more: true,
        copy_to_store: false,
    };
    /// Parts appended to a path.
    pub const PATH_PART: Coercion = Coercion {
        more: false,
        copy_to_store: false,
    };
}

/// A coercion that needs no VM, or `None` if the value needs one (sets,
/// lists, unforced thunks) or cannot be coerced (the slow path reports it).
pub fn coerce_fast(state: &EvalState, v: &Value, mode: Coercion) -> Option<EvalResult<NixString>> {
    Some(match v {
        Value::String(s) => Ok(s.clone()),
        Value::Path(p) => {
            if mode.copy_to_store {
                state.copy_path_to_store(p)
            } else {
                Ok(NixString::from(p.to_string_lossy().into_owned()))
            }
        }
        Value::Int(i) if mode.more => Ok(NixString::decimal(*i)),
        Value::Bool(true) if mode.more => Ok(NixString::from("1")),
        Value::Bool(false) | Value::Null if mode.more => Ok(NixString::from("")),
        Value::Thunk(t) => return coerce_fast(state, &t.value()?, mode),
        _ => return None,
    })
}

/// Coerces a value to a string, as C++ Nix's `coerceToString` does.
pub fn coerce_to_string<'a>(
    co: &'a GenCo,
    state: &'a Rc<EvalState>,
    v: Value,
    mode: Coercion,
) -> Pin<Box<dyn Future<Output = EvalResult<NixString>> + 'a>> {
    Box::pin(async move {
        let v = force(co, v).await;
        match &v {
            Value::String(s) => return Ok(s.clone()),
            Value::Path(p) => {
                return if mode.copy_to_store {
                    state.copy_path_to_store(p)
                } else {
                    Ok(NixString::from(p.to_string_lossy().into_owned()))
                }
            }
            Value::Attrs(a) => {
                if let Some(f) = a.get(b"__toString") {
                    let r = call(co, f.clone(), v.clone()).await;
                    return coerce_to_string(co, state, r, mode).await;
                }
                if let Some(p) = a.get(b"outPath") {
                    return coerce_to_string(co, state, p.clone(), mode).await;
                }
            }
            _ => {}
        }
        if mode.more {
            match &v {
                Value::Null => return Ok(NixString::from("")),
                Value::Bool(true) => return Ok(NixString::from("1")),
                Value::Bool(false) => return Ok(NixString::from("")),
                Value::Int(i) => return Ok(NixString::decimal(*i)),
                Value::Float(f) => return Ok(NixString::from(format!("{f:.6}"))),
                Value::List(l) => {
                    let mut b = StringBuilder::default();
                    for (i, item) in l.iter().enumerate() {
                        let item = force(co, item.clone()).await;
                        let s = coerce_to_string(co, state, item.clone(), mode).await?;
                        b.push(&s);
                        let empty_list = matches!(&item, Value::List(x) if x.is_empty());
                        if i + 1 < l.len() && !empty_list {
                            b.push_bytes(b" ");
                        }
                    }
                    return Ok(b.finish());
                }
                _ => {}
            }
        }
        Err(ErrorKind::other(format!(
            "cannot coerce {} to a string: {}",
            type_with_article(&v),
            crate::printer::print_shallow(&v)
        )))
    })
}
