//! Builtins: arithmetic, bit operations, rounding and `lessThan`.
//!
//! `add`, `sub`, `mul` and `div` follow C++ Nix's primops, which are also
//! what its `-`, `*` and `/` operators call: a float on either side makes
//! the operation a float one (the other side must then be a number, "a
//! float" in the error), otherwise both sides must be integers, and integer
//! overflow is an error.

use super::{expect_int, gen, sync};
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{Args, BuiltinDef, Value};
use crate::vm::{nix_less, type_error, EvalState, GenCo, GenFuture};
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    sync("add", 2, add),
    sync("sub", 2, sub),
    sync("mul", 2, mul),
    sync("div", 2, div),
    sync("bitAnd", 2, |_, a| bit_op(&a, |x, y| x & y)),
    sync("bitOr", 2, |_, a| bit_op(&a, |x, y| x | y)),
    sync("bitXor", 2, |_, a| bit_op(&a, |x, y| x ^ y)),
    sync("ceil", 1, |_, a| round(&a[0], f64::ceil)),
    sync("floor", 1, |_, a| round(&a[0], f64::floor)),
    gen("lessThan", 2, less_than),
];

/// A number as a float, or C++ Nix's "expected a float" error.
fn expect_float(v: &Value) -> EvalResult<f64> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        other => Err(type_error("float", other)),
    }
}

/// The shared shape of `add`, `sub` and `mul`.
fn arith(
    args: &[Value],
    float: fn(f64, f64) -> f64,
    int: fn(i64, i64) -> Option<i64>,
    verb: &str,
    sym: &str,
) -> EvalResult<Value> {
    let (a, b) = (&args[0], &args[1]);
    if matches!(a, Value::Float(_)) || matches!(b, Value::Float(_)) {
        return Ok(Value::Float(float(expect_float(a)?, expect_float(b)?)));
    }
    let (x, y) = (expect_int(a)?, expect_int(b)?);
    int(x, y)
        .map(Value::Int)
        .ok_or_else(|| ErrorKind::Overflow(format!("{verb} {x} {sym} {y}")))
}

fn add(_: &Rc<EvalState>, a: Args) -> EvalResult<Value> {
    arith(&a, |x, y| x + y, i64::checked_add, "adding", "+")
}

fn sub(_: &Rc<EvalState>, a: Args) -> EvalResult<Value> {
    arith(&a, |x, y| x - y, i64::checked_sub, "subtracting", "-")
}

fn mul(_: &Rc<EvalState>, a: Args) -> EvalResult<Value> {
    arith(&a, |x, y| x * y, i64::checked_mul, "multiplying", "*")
}

fn div(_: &Rc<EvalState>, a: Args) -> EvalResult<Value> {
    let (x, y) = (&a[0], &a[1]);
    let divisor = expect_float(y)?;
    if divisor == 0.0 {
        return Err(ErrorKind::DivisionByZero);
    }
    if matches!(x, Value::Float(_)) || matches!(y, Value::Float(_)) {
        return Ok(Value::Float(expect_float(x)? / divisor));
    }
    let (i, j) = (expect_int(x)?, expect_int(y)?);
    i.checked_div(j)
        .map(Value::Int)
        .ok_or_else(|| ErrorKind::Overflow(format!("dividing {i} / {j}")))
}

fn bit_op(a: &[Value], op: fn(i64, i64) -> i64) -> EvalResult<Value> {
    Ok(Value::Int(op(expect_int(&a[0])?, expect_int(&a[1])?)))
}

/// `ceil`/`floor`: a float rounded to an integer, which must fit.
fn round(v: &Value, f: fn(f64) -> f64) -> EvalResult<Value> {
    let x = expect_float(v)?;
    let r = f(x);
    // -2^63 is exact as a float; the range is [-2^63, 2^63).
    const MIN: f64 = i64::MIN as f64;
    if (MIN..-MIN).contains(&r) {
        return Ok(Value::Int(r as i64));
    }
    match v {
        // An integer near 2^63 rounds to 2^63 as a float: C++ Nix 2.8 then
        // returned whatever the cast gave (undefined behaviour, INT64_MIN
        // on x86-64); later versions make it this error, as does attrfs
        // (docs/notes-difftest.md).
        Value::Int(i) => Err(ErrorKind::other(format!(
            "Due to a bug (see https://github.com/NixOS/nix/issues/12899) the NixInt \
             argument {i} caused undefined behavior in previous Nix versions.\n\t\
             Future Nix versions might implement the correct behavior."
        ))),
        _ => Err(ErrorKind::other(format!(
            "NixFloat argument {} is not in the range of NixInt",
            crate::printer::format_float(x)
        ))),
    }
}

fn less_than(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let mut args = args.into_iter();
        let (a, b) = (args.next(), args.next());
        let (Some(a), Some(b)) = (a, b) else {
            unreachable!("lessThan has two arguments")
        };
        Ok(Value::Bool(nix_less(&co, a, b).await?))
    })
}

#[cfg(test)]
mod tests {
    use crate::eval::testing::{err, ok};

    #[test]
    fn arithmetic() {
        assert_eq!(ok("builtins.add 1 2"), "3");
        assert_eq!(ok("builtins.add 1 2.5"), "3.5");
        assert_eq!(ok("builtins.sub 1 2"), "-1");
        assert_eq!(ok("builtins.mul 3 2.0"), "6");
        assert_eq!(ok("builtins.div 7 2"), "3");
        assert_eq!(ok("builtins.div 7 2.0"), "3.5");
        assert!(err("builtins.add \"foo\" 1").contains("expected an integer but found a string"));
        assert!(err("builtins.add 1.0 \"foo\"").contains("expected a float but found a string"));
        assert!(err("builtins.div 1 \"foo\"").contains("expected a float but found a string"));
        assert!(err("builtins.div \"foo\" 0").contains("division by zero"));
        assert!(err("builtins.add 9223372036854775807 1")
            .contains("integer overflow in adding 9223372036854775807 + 1"));
        assert!(err("builtins.div (-9223372036854775807 - 1) (-1)")
            .contains("integer overflow in dividing -9223372036854775808 / -1"));
    }

    #[test]
    fn bits_rounding_comparison() {
        assert_eq!(ok("builtins.bitAnd 12 10"), "8");
        assert_eq!(ok("builtins.bitOr 12 10"), "14");
        assert_eq!(ok("builtins.bitXor 12 10"), "6");
        assert!(err("builtins.bitAnd 1.1 2").contains("expected an integer but found a float"));
        assert_eq!(ok("builtins.ceil 1.5"), "2");
        assert_eq!(ok("builtins.floor (-1.5)"), "-2");
        assert!(err("builtins.floor 9223372036854775807")
            .contains("the NixInt argument 9223372036854775807 caused undefined behavior"));
        assert_eq!(
            ok("builtins.ceil (-9223372036854775807)"),
            "-9223372036854775808"
        );
        // In range but not exact as a float: the float's value, as in 2.8.
        assert_eq!(ok("builtins.ceil 9007199254740993"), "9007199254740992");
        assert_eq!(
            ok("builtins.floor (-9223372036854775807 - 1)"),
            "-9223372036854775808"
        );
        assert!(err("builtins.ceil 1.0e30").contains("is not in the range of NixInt"));
        assert!(err("builtins.ceil \"foo\"").contains("expected a float but found a string"));
        assert_eq!(ok("builtins.lessThan 1 2"), "true");
        assert_eq!(ok("builtins.lessThan [ 1 2 ] [ 1 3 ]"), "true");
    }
}
