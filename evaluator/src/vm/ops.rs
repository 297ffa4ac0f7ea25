//! Operator semantics: arithmetic, equality, ordering, `+` on strings and
//! paths, string interpolation. Each has a fast path for values that need no
//! further forcing and an `async` version that asks the VM.

use super::{coerce_to_string, force, type_error, Coercion, EvalState, GenCo};
use crate::errors::{ErrorKind, EvalResult};
use crate::path::canon_path;
use crate::value::{NixString, StringBuilder, Value};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// The four arithmetic operators.
#[derive(Clone, Copy, Debug)]
pub enum Arith {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// Numeric arithmetic with C++ Nix's overflow and division rules.
pub fn arith(op: Arith, a: Value, b: Value) -> EvalResult<Value> {
    match (&a, &b) {
        (Value::Int(x), Value::Int(y)) => {
            let (x, y) = (*x, *y);
            let (r, verb, sym) = match op {
                Arith::Add => (x.checked_add(y), "adding", "+"),
                Arith::Sub => (x.checked_sub(y), "subtracting", "-"),
                Arith::Mul => (x.checked_mul(y), "multiplying", "*"),
                Arith::Div => {
                    if y == 0 {
                        return Err(ErrorKind::DivisionByZero);
                    }
                    (x.checked_div(y), "dividing", "/")
                }
            };
            r.map(Value::Int)
                .ok_or_else(|| ErrorKind::Overflow(format!("{verb} {x} {sym} {y}")))
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let x = as_float(&a);
            let y = as_float(&b);
            Ok(Value::Float(match op {
                Arith::Add => x + y,
                Arith::Sub => x - y,
                Arith::Mul => x * y,
                Arith::Div => {
                    if y == 0.0 {
                        return Err(ErrorKind::DivisionByZero);
                    }
                    x / y
                }
            }))
        }
        (Value::Int(_) | Value::Float(_), other) | (other, _) => match op {
            Arith::Add => Err(ErrorKind::other(format!(
                "cannot add {} to {}",
                crate::printer::type_with_article(&b),
                crate::printer::type_with_article(&a)
            ))),
            _ => Err(type_error("integer", other)),
        },
    }
}

fn as_float(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

/// `+` where the left side is a string or path, when no coercion needs the VM.
pub fn add_strings_fast(state: &EvalState, a: &Value, b: &Value) -> EvalResult<Option<Value>> {
    Ok(match (a, b) {
        (Value::String(x), Value::String(y)) => Some(Value::String(x.concat(y))),
        (Value::Path(p), Value::String(s)) => {
            if s.has_context() {
                return Err(ErrorKind::other(format!(
                    "a string that refers to a store path cannot be appended to a path ('{}')",
                    s
                )));
            }
            Some(Value::path(canon_path(&format!(
                "{}{}",
                p.display(),
                s.to_str_lossy()
            ))))
        }
        (Value::Path(p), Value::Path(q)) => Some(Value::path(canon_path(&format!(
            "{}{}",
            p.display(),
            q.display()
        )))),
        (Value::String(x), Value::Path(p)) => {
            let s = state.copy_path_to_store(p)?;
            Some(Value::String(x.concat(&s)))
        }
        _ => None,
    })
}

/// `+` with a string or path on the left, coercing the right side.
pub async fn add_strings(
    co: &GenCo,
    state: &Rc<EvalState>,
    a: Value,
    b: Value,
) -> EvalResult<Value> {
    match &a {
        Value::Path(_) => {
            let s = coerce_to_string(co, state, b, Coercion::PATH_PART).await?;
            add_strings_fast(state, &a, &Value::String(s))?
                .ok_or_else(|| ErrorKind::other("cannot append to a path"))
        }
        _ => {
            // As in C++ Nix's `ExprConcatStrings`, paths are copied to the
            // store only when the first operand is a string: after a set
            // (`fetchzip { ... } + /subdir`, a derivation's `outPath`) they
            // stay plain text, and so does a path in the set's `outPath`.
            let mode = if matches!(a, Value::String(_)) {
                Coercion::INTERPOLATION
            } else {
                Coercion::PATH_PART
            };
            let x = coerce_to_string(co, state, a, mode).await?;
            let y = coerce_to_string(co, state, b, mode).await?;
            Ok(Value::String(x.concat(&y)))
        }
    }
}

/// Interpolation when every part is already a string (or a leading path).
pub fn interpolate_fast(parts: &[Value], is_path: bool) -> Option<EvalResult<Value>> {
    let rest = if is_path { &parts[1..] } else { parts };
    if !rest.iter().all(|p| matches!(p, Value::String(_))) {
        return None;
    }
    let mut b = StringBuilder::default();
    for p in rest {
        if let Value::String(s) = p {
            b.push(s);
        }
    }
    let s = b.finish();
    if is_path {
        return Some(path_append(&parts[0], &s));
    }
    Some(Ok(Value::String(s)))
}

fn path_append(base: &Value, s: &NixString) -> EvalResult<Value> {
    if s.has_context() {
        return Err(ErrorKind::other(format!(
            "a string that refers to a store path cannot be appended to a path ('{}')",
            s
        )));
    }
    let base = match base {
        Value::Path(p) => p.to_string_lossy().into_owned(),
        Value::String(b) => b.to_string(),
        other => return Err(type_error("path", other)),
    };
    Ok(Value::path(canon_path(&format!(
        "{}{}",
        base,
        s.to_str_lossy()
    ))))
}

/// String or path interpolation with full coercion.
pub async fn interpolate(
    co: &GenCo,
    state: &Rc<EvalState>,
    parts: Vec<Value>,
    is_path: bool,
) -> EvalResult<Value> {
    let mut b = StringBuilder::default();
    let mut iter = parts.into_iter();
    let first = if is_path { iter.next() } else { None };
    let mode = if is_path {
        Coercion::PATH_PART
    } else {
        Coercion::INTERPOLATION
    };
    for p in iter {
        let s = coerce_to_string(co, state, p, mode).await?;
        b.push(&s);
    }
    let s = b.finish();
    match first {
        Some(base) => path_append(&base, &s),
        None => Ok(Value::String(s)),
    }
}

/// Equality that needs no forcing, if it can be decided so.
pub fn eq_fast(a: &Value, b: &Value) -> Option<bool> {
    Some(match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Int(x), Value::Float(y)) => (*x as f64) == *y,
        (Value::Float(x), Value::Int(y)) => *x == (*y as f64),
        (Value::String(x), Value::String(y)) => x.as_bytes() == y.as_bytes(),
        (Value::Path(x), Value::Path(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            if Rc::ptr_eq(x, y) || (x.is_empty() && y.is_empty()) {
                true
            } else if x.len() != y.len() {
                false
            } else {
                return None;
            }
        }
        (Value::Attrs(x), Value::Attrs(y)) => {
            if Rc::ptr_eq(x, y) {
                true
            } else {
                return None;
            }
        }
        // Functions are never equal, except by the identity check that
        // list and set comparison applies to their elements.
        (Value::Closure(_) | Value::Builtin(_), Value::Closure(_) | Value::Builtin(_)) => false,
        (Value::Thunk(_), _) | (_, Value::Thunk(_)) => return None,
        _ => false,
    })
}

/// Identity of two values as they were passed (C++ Nix's "value identity
/// optimisation": the same thunk, closure, set or list), checked once both
/// are forced.
pub(super) fn identical(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Thunk(x), Value::Thunk(y)) => x.ptr_eq(y),
        (Value::Closure(x), Value::Closure(y)) => Rc::ptr_eq(x, y),
        (Value::Attrs(x), Value::Attrs(y)) => Rc::ptr_eq(x, y),
        (Value::List(x), Value::List(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

/// Deep equality, forcing as needed (`==`).
pub fn nix_eq(
    co: &GenCo,
    a: Value,
    b: Value,
) -> Pin<Box<dyn Future<Output = EvalResult<bool>> + '_>> {
    Box::pin(async move {
        let a = force(co, a).await;
        let b = force(co, b).await;
        if let Some(r) = eq_fast(&a, &b) {
            return Ok(r);
        }
        match (&a, &b) {
            (Value::List(x), Value::List(y)) => {
                for (i, j) in x.iter().zip(y.iter()) {
                    // Forced first, as C++ Nix does: `[ t ] == [ t ]` is
                    // `t`'s error if it throws, and true otherwise, even
                    // for a function (identity, before comparing).
                    let (fi, fj) = (force(co, i.clone()).await, force(co, j.clone()).await);
                    if identical(i, j) {
                        continue;
                    }
                    if !nix_eq(co, fi, fj).await? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            (Value::Attrs(x), Value::Attrs(y)) => {
                if is_derivation(co, &a).await && is_derivation(co, &b).await {
                    if let (Some(p), Some(q)) = (x.get(b"outPath"), y.get(b"outPath")) {
                        return nix_eq(co, p.clone(), q.clone()).await;
                    }
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for ((k1, v1), (k2, v2)) in x.iter().zip(y.iter()) {
                    if k1 != k2 {
                        return Ok(false);
                    }
                    let (f1, f2) = (force(co, v1.clone()).await, force(co, v2.clone()).await);
                    if identical(v1, v2) {
                        continue;
                    }
                    if !nix_eq(co, f1, f2).await? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    })
}

/// Whether a forced value is a derivation (forces its `type` attribute).
pub async fn is_derivation(co: &GenCo, v: &Value) -> bool {
    if let Value::Attrs(a) = v {
        if let Some(t) = a.get(b"type") {
            return matches!(force(co, t.clone()).await, Value::String(s) if s.as_bytes() == b"derivation");
        }
    }
    false
}

/// `<` without forcing, if decidable.
pub fn less_fast(a: &Value, b: &Value) -> Option<EvalResult<bool>> {
    Some(Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Int(x), Value::Float(y)) => (*x as f64) < *y,
        (Value::Float(x), Value::Int(y)) => *x < (*y as f64),
        (Value::String(x), Value::String(y)) => x.as_bytes() < y.as_bytes(),
        (Value::Path(x), Value::Path(y)) => x.as_os_str() < y.as_os_str(),
        (Value::List(_), Value::List(_)) => return None,
        _ => {
            return Some(Err(ErrorKind::other(format!(
                "cannot compare {} with {}",
                crate::printer::type_with_article(a),
                crate::printer::type_with_article(b)
            ))))
        }
    }))
}

/// `<` with list comparison (lexicographic, elements compared by `==` then `<`).
pub fn nix_less(
    co: &GenCo,
    a: Value,
    b: Value,
) -> Pin<Box<dyn Future<Output = EvalResult<bool>> + '_>> {
    Box::pin(async move {
        let a = force(co, a).await;
        let b = force(co, b).await;
        if let Some(r) = less_fast(&a, &b) {
            return r;
        }
        let (Value::List(x), Value::List(y)) = (&a, &b) else {
            unreachable!("less_fast handles everything but lists")
        };
        for i in 0.. {
            if i == x.len() {
                return Ok(i != y.len());
            }
            if i == y.len() {
                return Ok(false);
            }
            if !nix_eq(co, x[i].clone(), y[i].clone()).await? {
                return nix_less(co, x[i].clone(), y[i].clone()).await;
            }
        }
        Ok(false)
    })
}

#[cfg(test)]
mod tests {
    use crate::eval::testing::{err, ok};

    #[test]
    fn elements_are_forced_then_taken_as_equal_when_identical() {
        // C++ Nix 2.8's eqValues: force both, then the same value is equal
        // (a function too), else compare (functions never are).
        assert_eq!(ok("let f = x: x; in [ f ] == [ f ]"), "true");
        assert_eq!(ok("let f = x: x; in { a = f; } == { a = f; }"), "true");
        assert_eq!(ok("[ (x: x) ] == [ (x: x) ]"), "false");
        assert_eq!(ok("let f = x: x; in f == f"), "false");
        assert!(err("let t = throw \"thrown t\"; in [ t ] == [ t ]").contains("thrown t"));
        assert!(
            err("let t = throw \"thrown t\"; in { a = t; } == { a = t; }").contains("thrown t")
        );
    }

    #[test]
    fn set_plus_path_is_text_not_a_store_copy() {
        // nixpkgs 20.09's profont: `fetchzip { ... } + /subdir`.
        assert_eq!(
            ok(r#"{ outPath = "/nix/store/abc-x"; } + /attrfs-no-such-dir"#),
            r#""/nix/store/abc-x/attrfs-no-such-dir""#
        );
        assert_eq!(
            ok(r#"builtins.tryEval ({ outPath = "/nix/store/abc-x"; } + /attrfs-no-such-dir)"#),
            r#"{ success = true; value = "/nix/store/abc-x/attrfs-no-such-dir"; }"#
        );
        // A path in the set's own outPath is not copied either.
        assert_eq!(
            ok(r#"{ outPath = /attrfs-no-such-dir; } + "a""#),
            r#""/attrfs-no-such-dira""#
        );
        // A derivation keeps its context and adds none for the path.
        assert_eq!(
            ok(
                r#"let d = derivation { name = "x"; builder = "b"; system = "s"; };
                  in builtins.attrNames (builtins.getContext (d + /attrfs-no-such-dir))"#
            ),
            r#"[ "/nix/store/5wq5jx7219pmi3xklyhl77fjbqvy6qaj-x.drv" ]"#
        );
    }

    #[test]
    fn string_plus_path_copies_and_its_io_error_is_not_catchable() {
        // After a string, the path is added to the store, so a missing one
        // is an I/O error, which C++ Nix's tryEval does not catch either.
        let e = err(r#"builtins.tryEval ("a" + /attrfs-no-such-dir)"#);
        assert!(e.contains("getting status of '/attrfs-no-such-dir'"), "{e}");
        let e = err(r#"builtins.tryEval "${/attrfs-no-such-dir}""#);
        assert!(e.contains("getting status of '/attrfs-no-such-dir'"), "{e}");
    }
}
