//! Thunks: suspended computations, updated in place once forced.

use super::{Closure, Upvalues, Value};
use crate::bytecode::Lambda;
use std::cell::{Ref, RefCell};
use std::rc::Rc;

/// What a thunk holds.
pub enum ThunkRepr {
    /// Not forced yet.
    Pending(Pending),
    /// Being forced right now. It keeps its work: forcing it again
    /// meanwhile is infinite recursion, the running code reads its upvalues
    /// from here, and after an error (which `tryEval` may catch) it is
    /// pending again, as C++ Nix re-evaluates a thunk whose evaluation threw.
    Forcing(Pending),
    /// The value in weak head normal form.
    Evaluated(Value),
}

/// The work of a thunk not forced yet.
pub enum Pending {
    /// Compiled code (a zero-argument body) with its captured upvalues,
    /// inline: a thunk is one allocation.
    Code(Closure),
    /// A pending function application, made by lazy builtins such as `map`.
    Apply {
        /// The function (not yet forced).
        func: Value,
        /// The argument.
        arg: Value,
    },
}

/// What forcing a thunk has to run, handed out by [`Thunk::enter`].
pub(crate) enum Entered {
    /// Run this code; its upvalues stay in the thunk ([`Thunk::upvalue`]).
    Code(Rc<Lambda>),
    /// Apply the function to the argument.
    Apply(Value, Value),
}

/// A shared, lazily evaluated value.
#[derive(Clone)]
pub struct Thunk(pub(crate) Rc<RefCell<ThunkRepr>>);

impl Thunk {
    /// A thunk of compiled code.
    pub fn suspended(lambda: Rc<Lambda>, upvalues: Upvalues) -> Self {
        Thunk(Rc::new(RefCell::new(ThunkRepr::Pending(Pending::Code(
            Closure { lambda, upvalues },
        )))))
    }

    /// A thunk of `func arg`.
    pub fn apply(func: Value, arg: Value) -> Self {
        Thunk(Rc::new(RefCell::new(ThunkRepr::Pending(Pending::Apply {
            func,
            arg,
        }))))
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

    /// Marks a pending thunk as being forced and says what to run; `None`
    /// if it is being forced already (or evaluated: callers check first).
    pub(crate) fn enter(&self) -> Option<Entered> {
        let mut r = self.0.borrow_mut();
        let entered = match &*r {
            ThunkRepr::Pending(Pending::Code(c)) => Entered::Code(c.lambda.clone()),
            ThunkRepr::Pending(Pending::Apply { func, arg }) => {
                Entered::Apply(func.clone(), arg.clone())
            }
            _ => return None,
        };
        let ThunkRepr::Pending(p) = std::mem::replace(&mut *r, ThunkRepr::Evaluated(Value::Null))
        else {
            unreachable!("matched above")
        };
        *r = ThunkRepr::Forcing(p);
        Some(entered)
    }

    /// Captured variable `i` of the code this thunk is running (entered
    /// with [`Entered::Code`]).
    #[inline]
    pub(crate) fn upvalue(&self, i: usize) -> Value {
        match &*self.0.borrow() {
            ThunkRepr::Forcing(Pending::Code(c)) => c.upvalues[i].clone(),
            _ => unreachable!("upvalues are read only while the thunk's code runs"),
        }
    }

    /// `read` applied to captured variable `i` of the code this thunk is
    /// running, without cloning it first.
    #[inline]
    pub(crate) fn with_upvalue<R>(&self, i: usize, read: impl FnOnce(&Value) -> R) -> R {
        match &*self.0.borrow() {
            ThunkRepr::Forcing(Pending::Code(c)) => read(&c.upvalues[i]),
            _ => unreachable!("upvalues are read only while the thunk's code runs"),
        }
    }

    /// Makes a thunk being forced pending again, after an error unwound
    /// its evaluation.
    pub(crate) fn restore(&self) {
        let mut r = self.0.borrow_mut();
        if let ThunkRepr::Forcing(_) = &*r {
            let ThunkRepr::Forcing(p) =
                std::mem::replace(&mut *r, ThunkRepr::Evaluated(Value::Null))
            else {
                unreachable!("matched above")
            };
            *r = ThunkRepr::Pending(p);
        }
    }

    /// Stores the result of forcing.
    pub(crate) fn update(&self, v: Value) {
        let old = std::mem::replace(&mut *self.0.borrow_mut(), ThunkRepr::Evaluated(v));
        // What the code captured is freed here, outside the borrow (its
        // teardown may reach this thunk again through a cycle).
        drop(old);
    }

    /// Fills deferred upvalues of a freshly built thunk of code
    /// (recursive bindings): `fill` gets its lambda and its upvalues.
    pub(crate) fn finalise(&self, fill: impl FnOnce(&Lambda, &mut [Value])) {
        if let ThunkRepr::Pending(Pending::Code(c)) = &mut *self.0.borrow_mut() {
            fill(&c.lambda, &mut c.upvalues);
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
            // A scalar value owns nothing to recurse into: the thunk is
            // freed in place, without the bounded teardown's bookkeeping.
            if let ThunkRepr::Evaluated(
                Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_),
            ) = &*r
            {
                return;
            }
            let repr = std::mem::replace(&mut *r, ThunkRepr::Evaluated(Value::Null));
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

#[cfg(test)]
mod tests {
    use crate::eval::testing::{err, ok};

    #[test]
    fn a_caught_error_leaves_the_thunk_pending() {
        // Forced again after tryEval caught its error, a thunk evaluates
        // again (and fails again), rather than looking like a cycle.
        let e = err("let x = throw \"boom\"; in [ (builtins.tryEval x).success x ]");
        assert!(e.contains("boom"), "{e}");
        assert!(!e.contains("infinite recursion"), "{e}");
        // The same for an application made by a lazy builtin.
        let e = err(
            "let l = map (x: throw \"m${toString x}\") [ 1 ]; h = builtins.head l; \
             in [ (builtins.tryEval h).success h ]",
        );
        assert!(e.contains("m1"), "{e}");
        assert!(!e.contains("infinite recursion"), "{e}");
        assert_eq!(
            ok("let x = throw \"boom\"; in [ (builtins.tryEval x).success (builtins.tryEval x).success ]"),
            "[ false false ]"
        );
        assert!(err("let x = x + 1; in x").contains("infinite recursion"));
    }

    #[test]
    fn captures_of_every_size_and_deferred_ones() {
        // Zero, one, two (inline) and three or more captures (their own
        // allocation), in thunks and closures, some deferred (rec).
        assert_eq!(
            ok("let a = 1; b = 2; c = 3; d = 4; \
                t0 = 10; t1 = a + 0; t2 = a + b; t3 = a + b + c; t4 = a + b + c + d; \
                f = x: x + a + b + c + d; \
                in [ t0 t1 t2 t3 t4 (f 0) ]"),
            "[ 10 1 3 6 10 10 ]"
        );
        assert_eq!(
            ok("rec { a = b + 1; b = c + 1; c = d + e; d = 1; e = f 2; f = x: x * d; }.a"),
            "5"
        );
        assert_eq!(
            ok("let f = { x ? y + z, y ? 1, z ? x0, ... }: x; x0 = 2; in [ (f {}) (f { y = 5; }) ]"),
            "[ 3 7 ]"
        );
    }
}
