//! The protocol between generator frames (builtins written as `async` code)
//! and the VM, and the helpers builtins use to speak it.
//!
//! A generator never recurses into the VM: it yields a [`VMRequest`] and is
//! resumed with a [`VMResponse`] once the VM has done the work on its own
//! frame stack. If that work fails, the generator is dropped while the error
//! unwinds, unless it asked with [`VMRequest::TryForce`].

use crate::errors::{ErrorKind, EvalResult};
use crate::value::{NixAttrs, NixList, NixString, Value};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// What a generator asks of the VM.
pub enum VMRequest {
    /// Force a value to weak head normal form.
    Force(Value),
    /// Force, but hand catchable errors (`throw`, `assert`) back instead of unwinding.
    TryForce(Value),
    /// Apply a forced function to an argument; the response is the unforced result.
    Call(Value, Value),
    /// Apply a forced function to two arguments (`f a b`); the response is
    /// the unforced result.
    Call2(Value, Value, Value),
}

/// What the VM answers.
pub enum VMResponse {
    /// Initial resumption.
    Empty,
    /// The requested value.
    Value(Value),
    /// A caught error (only for [`VMRequest::TryForce`]).
    Error(ErrorKind),
}

/// The handle a generator uses to talk to the VM.
pub type GenCo = genawaiter::rc::Co<VMRequest, VMResponse>;
/// The future a generator builtin returns.
pub type GenFuture = Pin<Box<dyn Future<Output = EvalResult<Value>>>>;
/// A generator frame's generator.
pub type Gen = genawaiter::rc::Gen<VMRequest, VMResponse, GenFuture>;

/// Forces a value to weak head normal form.
pub async fn force(co: &GenCo, v: Value) -> Value {
    match v {
        Value::Thunk(t) => {
            if let Some(v) = t.value() {
                return v;
            }
            match co.yield_(VMRequest::Force(Value::Thunk(t))).await {
                VMResponse::Value(v) => v,
                _ => unreachable!("the VM answers Force with a value"),
            }
        }
        v => v,
    }
}

/// Forces a value, returning catchable errors instead of unwinding.
pub async fn try_force(co: &GenCo, v: Value) -> Result<Value, ErrorKind> {
    if v.is_whnf() {
        return Ok(v.into_shallow());
    }
    match co.yield_(VMRequest::TryForce(v)).await {
        VMResponse::Value(v) => Ok(v),
        VMResponse::Error(e) => Err(e),
        VMResponse::Empty => unreachable!("the VM answers TryForce"),
    }
}

/// Calls a function with one argument and forces the result.
pub async fn call(co: &GenCo, f: Value, arg: Value) -> Value {
    let f = force(co, f).await;
    let r = match co.yield_(VMRequest::Call(f, arg)).await {
        VMResponse::Value(v) => v,
        _ => unreachable!("the VM answers Call with a value"),
    };
    force(co, r).await
}

/// Calls a function with two arguments and forces the result.
pub async fn call2(co: &GenCo, f: Value, a: Value, b: Value) -> Value {
    let f = force(co, f).await;
    let r = match co.yield_(VMRequest::Call2(f, a, b)).await {
        VMResponse::Value(v) => v,
        _ => unreachable!("the VM answers Call2 with a value"),
    };
    force(co, r).await
}

/// A type error in C++ Nix wording.
pub fn type_error(expected: &'static str, found: &Value) -> ErrorKind {
    ErrorKind::TypeError {
        expected,
        found: found.describe(),
    }
}

/// Forces and checks for an attribute set.
pub async fn force_attrs(co: &GenCo, v: Value) -> EvalResult<Rc<NixAttrs>> {
    match force(co, v).await {
        Value::Attrs(a) => Ok(a),
        other => Err(type_error("set", &other)),
    }
}

/// Forces and checks for a list.
pub async fn force_list(co: &GenCo, v: Value) -> EvalResult<NixList> {
    match force(co, v).await {
        Value::List(l) => Ok(l),
        other => Err(type_error("list", &other)),
    }
}

/// Forces and checks for a Boolean.
pub async fn force_bool(co: &GenCo, v: Value) -> EvalResult<bool> {
    match force(co, v).await {
        Value::Bool(b) => Ok(b),
        other => Err(type_error("Boolean", &other)),
    }
}

/// Forces and checks for an integer.
pub async fn force_int(co: &GenCo, v: Value) -> EvalResult<i64> {
    match force(co, v).await {
        Value::Int(i) => Ok(i),
        other => Err(type_error("integer", &other)),
    }
}

/// Forces and checks for a string (no coercion).
pub async fn force_string(co: &GenCo, v: Value) -> EvalResult<NixString> {
    match force(co, v).await {
        Value::String(s) => Ok(s),
        other => Err(type_error("string", &other)),
    }
}

/// Nesting depth at which deep traversals stop with a stack overflow, as
/// C++ Nix's default `max-call-depth` makes its recursive ones do.
pub const MAX_DEPTH: usize = 10_000;

/// Forces a value and everything reachable from it. Iterative (an explicit
/// work list, depth-first in attribute order like C++ Nix), so resuming the
/// generator costs the same at any depth; sets and lists already visited
/// are skipped, so cyclic values terminate.
pub fn deep_force(co: &GenCo, v: Value) -> Pin<Box<dyn Future<Output = EvalResult<Value>> + '_>> {
    deep_force_polling(co, v, || Ok(()))
}

/// [`deep_force`], calling `poll` every few thousand values (to look at the
/// interrupt flag: walking values already forced reaches no VM loop that
/// would).
pub fn deep_force_polling<'a>(
    co: &'a GenCo,
    v: Value,
    poll: impl Fn() -> EvalResult<()> + 'a,
) -> Pin<Box<dyn Future<Output = EvalResult<Value>> + 'a>> {
    Box::pin(async move {
        let mut seen = rustc_hash::FxHashSet::default();
        let mut work: Vec<(Value, usize)> = vec![(v.clone(), 0)];
        let mut visited: u32 = 0;
        while let Some((item, depth)) = work.pop() {
            if depth > MAX_DEPTH {
                return Err(ErrorKind::StackOverflow);
            }
            visited = visited.wrapping_add(1);
            if visited.is_multiple_of(4096) {
                poll()?;
            }
            let item = force(co, item).await;
            match &item {
                Value::List(l) if seen.insert(Rc::as_ptr(l) as *const u8 as usize) => {
                    work.extend(l.iter().rev().map(|x| (x.clone(), depth + 1)));
                }
                Value::Attrs(a) if seen.insert(Rc::as_ptr(a) as *const u8 as usize) => {
                    work.extend(a.values().rev().map(|x| (x.clone(), depth + 1)));
                }
                _ => {}
            }
        }
        Ok(force(co, v).await)
    })
}
