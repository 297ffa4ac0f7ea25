//! Callable values: closures and builtins.

use super::Value;
use crate::bytecode::Lambda;
use crate::errors::EvalResult;
use crate::vm::{EvalState, GenCo, GenFuture};
use std::rc::Rc;

/// A compiled Nix function together with the variables it captured.
pub struct Closure {
    /// The code.
    pub lambda: Rc<Lambda>,
    /// Captured variables, in the order of `lambda.upvalues`.
    pub upvalues: Rc<[Value]>,
}

/// How a builtin runs.
#[derive(Clone, Copy)]
pub enum BuiltinFn {
    /// Runs to completion without calling back into the VM.
    Sync(fn(&Rc<EvalState>, Vec<Value>) -> EvalResult<Value>),
    /// A generator: may ask the VM to force values or call functions.
    Gen(fn(GenCo, Rc<EvalState>, Vec<Value>) -> GenFuture),
}

/// The static description of a builtin.
pub struct BuiltinDef {
    /// Name without `builtins.`.
    pub name: &'static str,
    /// Number of arguments.
    pub arity: usize,
    /// Bit i set: argument i is passed unforced (the default forces all to
    /// weak head normal form before the call).
    pub lazy_args: u8,
    /// The implementation.
    pub func: BuiltinFn,
}

/// A builtin with the arguments applied so far.
pub struct BuiltinApp {
    /// Which builtin.
    pub def: &'static BuiltinDef,
    /// Arguments given so far (fewer than `def.arity`).
    pub args: Vec<Value>,
}
