//! Thunks: suspended computations, updated in place once forced.
//!
//! A thunk's state lives in an [`UnsafeCell`] rather than a `RefCell`. The
//! borrow flag would make a thunk 72 bytes, which mimalloc rounds up to 80;
//! without it a thunk is 64 (16 of `Rc` counts, 48 of state): 16 bytes less
//! for each of the millions a nixpkgs evaluation keeps alive, and no flag
//! to set and clear on every read. What keeps that sound is one rule, kept
//! inside this module: **a reference into the cell never outlives the
//! method that made it, and while it lives nothing runs that could reach
//! this thunk**: the methods read, clone (which only counts references)
//! and move states in and out; a state taken out is dropped only after the
//! reference is gone, because dropping it can free other thunks and, by a
//! cycle, reach this one. The few methods that lend a reference to a
//! closure (`with_captures`, `finalise`) are crate-private and say what
//! their closure may do; `upvalue_settled` writes a captured variable's
//! slot through its own cell (`Upvalues`) and hands back what it held.

use super::{Closure, Upvalues, Value};
use crate::bytecode::{Lambda, UpvalueRef};
use std::cell::UnsafeCell;
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

/// A thunk's shared state (see the module's doc for the rule that makes
/// it sound).
pub struct ThunkCell(UnsafeCell<ThunkRepr>);

const _: () = assert!(std::mem::size_of::<ThunkCell>() <= 48);

/// A shared, lazily evaluated value.
#[derive(Clone)]
pub struct Thunk(pub(crate) Rc<ThunkCell>);

impl Thunk {
    fn new(repr: ThunkRepr) -> Self {
        Thunk(Rc::new(ThunkCell(UnsafeCell::new(repr))))
    }

    /// Shared access to the state, for the length of `read`, which must
    /// not reach this thunk's state by any other way (the module's rule).
    #[inline]
    fn read<R>(&self, read: impl FnOnce(&ThunkRepr) -> R) -> R {
        // SAFETY: by the module's rule no mutable reference into the cell
        // exists while a method runs, and `read` creates none.
        read(unsafe { &*self.0 .0.get() })
    }

    /// Replaces the state, returning the old one for the caller to drop
    /// (after this returns: dropping it may reach this thunk).
    #[inline]
    fn replace(&self, new: ThunkRepr) -> ThunkRepr {
        // SAFETY: by the module's rule no other reference into the cell
        // exists while a method runs, and this one ends here.
        std::mem::replace(unsafe { &mut *self.0 .0.get() }, new)
    }

    /// A thunk of compiled code.
    pub fn suspended(lambda: Rc<Lambda>, upvalues: Upvalues) -> Self {
        Thunk::new(ThunkRepr::Pending(Pending::Code(Closure {
            lambda,
            upvalues,
        })))
    }

    /// A thunk of `func arg`.
    pub fn apply(func: Value, arg: Value) -> Self {
        Thunk::new(ThunkRepr::Pending(Pending::Apply { func, arg }))
    }

    /// The value if already evaluated.
    #[inline]
    pub fn value(&self) -> Option<Value> {
        self.read(|r| match r {
            ThunkRepr::Evaluated(v) => Some(v.clone()),
            _ => None,
        })
    }

    /// Whether forcing it needs no work.
    #[inline]
    pub fn is_evaluated(&self) -> bool {
        self.read(|r| matches!(r, ThunkRepr::Evaluated(_)))
    }

    /// Whether it is being forced right now.
    pub fn is_forcing(&self) -> bool {
        self.read(|r| matches!(r, ThunkRepr::Forcing(_)))
    }

    /// Marks a pending thunk as being forced and says what to run; `None`
    /// if it is being forced already (or evaluated: callers check first).
    #[inline]
    pub(crate) fn enter(&self) -> Option<Entered> {
        // SAFETY: by the module's rule no other reference into the cell
        // exists while a method runs; this one ends here, and nothing runs
        // while it lives but reference counting (the clones).
        let repr = unsafe { &mut *self.0 .0.get() };
        let ThunkRepr::Pending(p) = repr else {
            return None;
        };
        let entered = match p {
            Pending::Code(c) => Entered::Code(c.lambda.clone()),
            Pending::Apply { func, arg } => Entered::Apply(func.clone(), arg.clone()),
        };
        // Pending becomes Forcing with the same work, moved within the
        // cell: no placeholder state written, nothing dropped. (Replacing
        // it twice through a placeholder, as before, cost a third of a
        // thunk's forcing in copies and an out-of-line drop.)
        // SAFETY: `p` is read out once and written back at once, as the
        // payload of the new state; nothing can observe the cell between.
        unsafe {
            let work = std::ptr::read(p);
            std::ptr::write(repr, ThunkRepr::Forcing(work));
        }
        Some(entered)
    }

    /// Captured variable `r` of the code this thunk is running, settled
    /// ([`Closure::upvalue_settled`]).
    #[inline]
    pub(crate) fn upvalue_settled(&self, r: UpvalueRef) -> Value {
        // Writing the slot through its cell is what a shared reference to
        // this state allows; the thunk the slot held is dropped while the
        // state is read, which frees at most that thunk's own cell (its
        // value was cloned first), never anything that reaches this one.
        self.read(|repr| match repr {
            ThunkRepr::Forcing(Pending::Code(c)) => c.upvalue_settled(r),
            _ => unreachable!("upvalues are read only while the thunk's code runs"),
        })
    }

    /// `read` applied to what the code this thunk is running captured (the
    /// values it holds and its environment): it may look at them and clone
    /// them, nothing else (a closure or thunk made by that code copies and shares from
    /// them).
    #[inline]
    pub(crate) fn with_captures<R>(&self, read: impl FnOnce(&Closure) -> R) -> R {
        self.read(|repr| match repr {
            ThunkRepr::Forcing(Pending::Code(c)) => read(c),
            _ => unreachable!("upvalues are read only while the thunk's code runs"),
        })
    }

    /// Makes a thunk being forced pending again, after an error unwound
    /// its evaluation.
    pub(crate) fn restore(&self) {
        if self.is_forcing() {
            let ThunkRepr::Forcing(p) = self.replace(ThunkRepr::Evaluated(Value::Null)) else {
                unreachable!("matched above")
            };
            let _ = self.replace(ThunkRepr::Pending(p));
        }
    }

    /// Stores the result of forcing.
    pub(crate) fn update(&self, v: Value) {
        let old = self.replace(ThunkRepr::Evaluated(v));
        // What the code captured is freed here, after the replacement (its
        // teardown may reach this thunk again through a cycle).
        drop(old);
    }

    /// Fills deferred upvalues of a freshly built thunk of code
    /// (recursive bindings): `fill` gets its lambda and its upvalues. It
    /// may overwrite placeholders (scalars: nothing is dropped) with clones,
    /// and must not force, update or drop anything else.
    pub(crate) fn finalise(&self, fill: impl FnOnce(&Lambda, &mut [Value])) {
        // SAFETY: by the module's rule no other reference into the cell
        // exists while a method runs; this one ends with `fill`, which
        // keeps the rule by its contract above.
        if let ThunkRepr::Pending(Pending::Code(c)) = unsafe { &mut *self.0 .0.get() } {
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
        // A value whose drop cannot recurse (a scalar, a string, or one
        // whose referent is shared: its count is only decremented) is
        // dropped with the thunk in place, without the bounded teardown's
        // bookkeeping (two thread-local accesses): most thunks die holding
        // a value still referenced elsewhere.
        let shallow = self.read(|r| match r {
            ThunkRepr::Evaluated(v) => v.drop_is_shallow(),
            _ => false,
        });
        if !shallow {
            let repr = self.replace(ThunkRepr::Evaluated(Value::Null));
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
