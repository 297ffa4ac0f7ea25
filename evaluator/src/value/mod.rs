//! Nix values.
//!
//! [`Value`] is 16 bytes: scalars inline, everything else behind one `Rc`.
//! It deliberately implements neither `PartialEq` nor `Hash`: comparing two
//! values may force thunks, which only the VM can do (docs/evaluator.md,
//! "Why `Value` has no `PartialEq`").

mod attrs;
pub mod display;
mod function;
mod string;
mod teardown;
mod thunk;

pub use attrs::NixAttrs;
pub use function::{
    Args, ArgsIntoIter, BuiltinApp, BuiltinDef, BuiltinFn, Closure, Upvalues, MAX_ARITY,
};
pub use string::{merge_contexts, ContextElem, NixContext, NixString, StringBuilder};
pub(crate) use thunk::Entered;
pub use thunk::{Pending, Thunk, ThunkRepr};

use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A Nix list: shared, copied only on change.
pub type NixList = Rc<Vec<Value>>;

/// A Nix value, possibly unevaluated.
#[derive(Clone)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// 64-bit signed integer
    Int(i64),
    /// IEEE double
    Float(f64),
    /// A string with context
    String(NixString),
    /// An absolute, canonical path
    Path(Rc<PathBuf>),
    /// An attribute set
    Attrs(Rc<NixAttrs>),
    /// A list
    List(NixList),
    /// A Nix function with its captured variables
    Closure(Rc<Closure>),
    /// A builtin, possibly partially applied
    Builtin(Rc<BuiltinApp>),
    /// A suspended or already evaluated computation
    Thunk(Thunk),
}

const _: () = assert!(std::mem::size_of::<Value>() <= 16);

impl Value {
    /// Drops the value, skipping the out-of-line drop glue for the
    /// variants that own nothing (null, Booleans, numbers): on a hot path
    /// where those are the usual case, the glue's call is most of a
    /// drop's cost.
    #[inline(always)]
    pub fn release(self) {
        if matches!(
            self,
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_)
        ) {
            std::mem::forget(self);
        } else {
            drop(self);
        }
    }

    /// Whether dropping this value cannot recurse into other values: it
    /// owns nothing (scalars), only bytes (strings, paths), or a reference
    /// to something still referenced elsewhere. Such a value needs no
    /// bounded teardown (`teardown::dispose`).
    #[inline]
    pub(crate) fn drop_is_shallow(&self) -> bool {
        match self {
            Value::Null
            | Value::Bool(_)
            | Value::Int(_)
            | Value::Float(_)
            | Value::String(_)
            | Value::Path(_) => true,
            Value::Attrs(a) => Rc::strong_count(a) > 1,
            Value::List(l) => Rc::strong_count(l) > 1,
            Value::Closure(c) => Rc::strong_count(c) > 1,
            Value::Builtin(b) => Rc::strong_count(b) > 1,
            Value::Thunk(t) => Rc::strong_count(&t.0) > 1,
        }
    }

    /// A string value from text.
    pub fn string(s: impl Into<NixString>) -> Value {
        Value::String(s.into())
    }

    /// A path value.
    pub fn path(p: impl Into<PathBuf>) -> Value {
        Value::Path(Rc::new(p.into()))
    }

    /// An attribute set value.
    pub fn attrs(a: NixAttrs) -> Value {
        Value::Attrs(Rc::new(a))
    }

    /// A list value.
    pub fn list(v: Vec<Value>) -> Value {
        Value::List(Rc::new(v))
    }

    /// If this is an evaluated thunk, its value; otherwise itself.
    pub fn shallow(&self) -> Value {
        match self {
            Value::Thunk(t) => t.value().unwrap_or_else(|| self.clone()),
            v => v.clone(),
        }
    }

    /// [`Value::shallow`] of a value the caller owns: moved, not cloned,
    /// unless it is an evaluated thunk.
    #[inline]
    pub fn into_shallow(self) -> Value {
        match self {
            Value::Thunk(ref t) => t.value().unwrap_or(self),
            v => v,
        }
    }

    /// Whether this value is in weak head normal form (not an unevaluated thunk).
    pub fn is_whnf(&self) -> bool {
        match self {
            Value::Thunk(t) => t.is_evaluated(),
            _ => true,
        }
    }

    /// The name `builtins.typeOf` gives.
    pub fn type_of(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Path(_) => "path",
            Value::Attrs(_) => "set",
            Value::List(_) => "list",
            Value::Closure(_) | Value::Builtin(_) => "lambda",
            Value::Thunk(t) => match t.value() {
                Some(v) => v.type_of(),
                None => "thunk",
            },
        }
    }

    /// How C++ Nix describes a value in type errors ("an integer: 1", "a set", ...).
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("a Boolean: {b}"),
            Value::Int(i) => format!("an integer: {i}"),
            Value::Float(f) => format!("a float: {}", display::format_float(*f)),
            Value::String(s) => format!("a string: {}", display::quote_string(s.as_bytes())),
            Value::Path(p) => format!("a path: {}", p.display()),
            Value::Attrs(_) => "a set".into(),
            Value::List(_) => "a list".into(),
            Value::Closure(_) => "a function".into(),
            Value::Builtin(b) if b.args.is_empty() => "a built-in function".into(),
            Value::Builtin(_) => "a partially applied built-in function".into(),
            Value::Thunk(t) => match t.value() {
                Some(v) => v.describe(),
                None => "a thunk".into(),
            },
        }
    }

    /// The attribute set, if this (forced) value is one.
    pub fn as_attrs(&self) -> Option<&Rc<NixAttrs>> {
        match self {
            Value::Attrs(a) => Some(a),
            _ => None,
        }
    }

    /// Whether this is a function (closure or builtin).
    pub fn is_function(&self) -> bool {
        matches!(self, Value::Closure(_) | Value::Builtin(_))
    }

    /// The path, if this is one.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            Value::Path(p) => Some(p),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Path(p) => write!(f, "{}", p.display()),
            Value::Attrs(a) => write!(f, "{{ {} attrs }}", a.len()),
            Value::List(l) => write!(f, "[ {} items ]", l.len()),
            Value::Closure(_) => write!(f, "<LAMBDA>"),
            Value::Builtin(_) => write!(f, "<PRIMOP>"),
            Value::Thunk(t) => match t.value() {
                Some(v) => v.fmt(f),
                None => write!(f, "<thunk>"),
            },
        }
    }
}
