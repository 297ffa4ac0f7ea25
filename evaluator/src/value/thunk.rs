//! Thunks: suspended computations, updated in place once forced.

use super::{Closure, Value};
use crate::bytecode::Lambda;
use std::cell::{Ref, RefCell};
use std::rc::Rc;

/// What a thunk holds.
pub enum ThunkRepr {
    /// Compiled code with its captured upvalues.
    Suspended {
        /// The code (a zero-argument chunk).
        lambda: Rc<Lambda>,
        /// Captured variables.
        upvalues: Rc<[Value]>,
    },
    /// A pending function application, made by lazy builtins such as `map`.
    Apply {
        /// The function (not yet forced).
        func: Value,
        /// The argument.
        arg: Value,
    },
    /// Being forced right now (the VM's update frame keeps the original, so
    /// that a caught error can restore it).
    Blackhole,
    /// The value in weak head normal form.
    Evaluated(Value),
}

/// A shared, lazily evaluated value.
#[derive(Clone)]
pub struct Thunk(pub(crate) Rc<RefCell<ThunkRepr>>);

impl Thunk {
    /// A thunk of compiled code.
    pub fn suspended(lambda: Rc<Lambda>, upvalues: Rc<[Value]>) -> Self {
        Thunk(Rc::new(RefCell::new(ThunkRepr::Suspended {
            lambda,
            upvalues,
        })))
    }

    /// A thunk of `func arg`.
    pub fn apply(func: Value, arg: Value) -> Self {
        Thunk(Rc::new(RefCell::new(ThunkRepr::Apply { func, arg })))
    }

    /// The value if already evaluated.
    #[inline]
    pub fn value(&self) -> Option<Value> {
        match &*self.0.borrow() {
            ThunkRepr::Evaluated(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Whether forcing it needs no work.
    #[inline]
    pub fn is_evaluated(&self) -> bool {
        matches!(&*self.0.borrow(), ThunkRepr::Evaluated(_))
    }

    /// Read access to the state.
    pub fn repr(&self) -> Ref<'_, ThunkRepr> {
        self.0.borrow()
    }

    /// Marks the thunk as being forced and returns what it held.
    pub(crate) fn enter(&self) -> Option<ThunkRepr> {
        let mut r = self.0.borrow_mut();
        match &*r {
            ThunkRepr::Suspended { .. } | ThunkRepr::Apply { .. } => {
                Some(std::mem::replace(&mut *r, ThunkRepr::Blackhole))
            }
            _ => None,
        }
    }

    /// Puts back a state taken by [`Thunk::enter`]: after a caught error
    /// (C++ Nix re-evaluates a thunk whose evaluation threw), or to hand the
    /// thunk to another forcing path.
    pub(crate) fn restore_from(&self, repr: ThunkRepr) {
        *self.0.borrow_mut() = repr;
    }

    /// Stores the result of forcing.
    pub(crate) fn update(&self, v: Value) {
        *self.0.borrow_mut() = ThunkRepr::Evaluated(v);
    }

    /// Fills deferred upvalues of a freshly built thunk (recursive bindings).
    pub(crate) fn finalise(&self, fill: impl FnOnce(&mut [Value])) {
        if let ThunkRepr::Suspended { upvalues, .. } = &mut *self.0.borrow_mut() {
            match Rc::get_mut(upvalues) {
                Some(u) => fill(u),
                None => {
                    let mut v: Vec<Value> = upvalues.to_vec();
                    fill(&mut v);
                    *upvalues = v.into();
                }
            }
        }
    }

    /// Pointer identity.
    pub fn ptr_eq(&self, other: &Thunk) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// An address usable as identity for cycle detection.
    pub fn addr(&self) -> usize {
        Rc::as_ptr(&self.0) as *const u8 as usize
    }
}

impl Drop for Thunk {
    // Most drops release one of several references: that check is inlined
    // into every `Value` drop, the teardown of the last reference is not.
    #[inline]
    fn drop(&mut self) {
        if Rc::strong_count(&self.0) == 1 {
            self.drop_last();
        }
    }
}

impl Thunk {
    /// Last reference: free what it holds with bounded recursion.
    #[inline(never)]
    fn drop_last(&mut self) {
        if let Ok(mut r) = self.0.try_borrow_mut() {
            let repr = std::mem::replace(&mut *r, ThunkRepr::Blackhole);
            drop(r);
            super::teardown::dispose(repr);
        }
    }
}

impl From<Closure> for Value {
    fn from(c: Closure) -> Self {
        Value::Closure(Rc::new(c))
    }
}
