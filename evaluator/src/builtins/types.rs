//! Builtins: type predicates.

use super::sync;
use crate::errors::EvalResult;
use crate::value::{Args, BuiltinDef, Value};
use crate::vm::EvalState;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    sync("typeOf", 1, |_, a| Ok(Value::string(a[0].type_of()))),
    sync("isNull", 1, |_, a| {
        Ok(Value::Bool(matches!(a[0], Value::Null)))
    }),
    sync("isInt", 1, |_, a| {
        Ok(Value::Bool(matches!(a[0], Value::Int(_))))
    }),
    sync("isFloat", 1, |_, a| {
        Ok(Value::Bool(matches!(a[0], Value::Float(_))))
    }),
    sync("isBool", 1, |_, a| {
        Ok(Value::Bool(matches!(a[0], Value::Bool(_))))
    }),
    sync("isString", 1, |_, a| {
        Ok(Value::Bool(matches!(a[0], Value::String(_))))
    }),
    sync("isPath", 1, |_, a| {
        Ok(Value::Bool(matches!(a[0], Value::Path(_))))
    }),
    sync("isAttrs", 1, |_, a| {
        Ok(Value::Bool(matches!(a[0], Value::Attrs(_))))
    }),
    sync("isList", 1, |_, a| {
        Ok(Value::Bool(matches!(a[0], Value::List(_))))
    }),
    sync("isFunction", 1, is_function),
];

fn is_function(_: &Rc<EvalState>, a: Args) -> EvalResult<Value> {
    Ok(Value::Bool(a[0].is_function()))
}
