//! Callable values: closures and builtins.

use super::Value;
use crate::bytecode::Lambda;
use crate::errors::EvalResult;
use crate::vm::{EvalState, GenCo, GenFuture};
use std::rc::Rc;

/// A compiled Nix function together with the variables it captured. A
/// suspended thunk of compiled code holds one too (a zero-argument body).
pub struct Closure {
    /// The code.
    pub lambda: Rc<Lambda>,
    /// Captured variables, in the order of `lambda.upvalues`.
    pub upvalues: Upvalues,
}

/// The variables a closure or thunk captured. Most capture at most two, so
/// those are stored inline: the closure or thunk is then one allocation,
/// not two (docs/notes-performance.md, "Changes and what each bought").
pub enum Upvalues {
    /// Nothing captured.
    None,
    /// One variable.
    One([Value; 1]),
    /// Two variables.
    Two([Value; 2]),
    /// Three or more, in their own allocation.
    Many(Box<[Value]>),
}

const _: () = assert!(std::mem::size_of::<Upvalues>() <= 32);

impl Upvalues {
    /// The captures of a lambda with `n` upvalues, the `i`th being `get(i)`.
    #[inline]
    pub fn build(n: usize, mut get: impl FnMut(usize) -> Value) -> Self {
        match n {
            0 => Upvalues::None,
            1 => Upvalues::One([get(0)]),
            2 => Upvalues::Two([get(0), get(1)]),
            _ => {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    v.push(get(i));
                }
                Upvalues::Many(v.into_boxed_slice())
            }
        }
    }
}

impl std::ops::Deref for Upvalues {
    type Target = [Value];

    #[inline]
    fn deref(&self) -> &[Value] {
        match self {
            Upvalues::None => &[],
            Upvalues::One(v) => v,
            Upvalues::Two(v) => v,
            Upvalues::Many(v) => v,
        }
    }
}

impl std::ops::DerefMut for Upvalues {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Value] {
        match self {
            Upvalues::None => &mut [],
            Upvalues::One(v) => v,
            Upvalues::Two(v) => v,
            Upvalues::Many(v) => v,
        }
    }
}

/// How a builtin runs.
#[derive(Clone, Copy)]
pub enum BuiltinFn {
    /// Runs to completion without calling back into the VM.
    Sync(fn(&Rc<EvalState>, Vec<Value>) -> EvalResult<Value>),
    /// A generator: may ask the VM to force values or call functions.
    Gen(fn(GenCo, Rc<EvalState>, Vec<Value>) -> GenFuture),
    /// Run by the VM as a frame of its own (hot loops over lists).
    Native(crate::vm::Native),
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
