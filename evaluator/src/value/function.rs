//! Callable values: closures and builtins.

use super::Value;
use crate::bytecode::{Lambda, UpvalueRef};
use crate::errors::EvalResult;
use crate::vm::{EvalState, GenCo, GenFuture};
use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::rc::Rc;

/// A compiled Nix function together with the variables it captured. A
/// suspended thunk of compiled code holds one too (a zero-argument body).
pub struct Closure {
    /// The code.
    pub lambda: Rc<Lambda>,
    /// What it captured.
    pub upvalues: Upvalues,
}

impl Closure {
    /// The captured variable `r` names, `r.depth` environments up from
    /// this one.
    #[inline]
    pub fn upvalue(&self, r: UpvalueRef) -> &Value {
        &self.environment(r.depth).upvalues[r.index as usize]
    }

    /// The closure `depth` environments up from this one.
    #[inline]
    fn environment(&self, depth: u32) -> &Closure {
        let mut env = self;
        for _ in 0..depth {
            env = env.upvalues.env().expect(
                "code reads an environment only if its closure holds one (compiler, image decoder)",
            );
        }
        env
    }

    /// The captured variable `r` names as code reading it wants it: if its
    /// slot holds a thunk that has been evaluated, the thunk's value, which
    /// then replaces the thunk in the slot, so that the next read of the
    /// variable finds the value without going through the thunk (as a
    /// frame's local is replaced, `Op::GetLocal`).
    ///
    /// Only the VM calls this, while it runs the code of this closure or
    /// of one made in it, and holds no other reference into the slot (the
    /// contract of [`Upvalues`]' slots).
    #[inline]
    pub(crate) fn upvalue_settled(&self, r: UpvalueRef) -> Value {
        settle(self.environment(r.depth).upvalues.slot(r.index as usize))
    }
}

/// What [`Closure::upvalue_settled`] reads from a slot. The thunk it
/// replaces is dropped here: its value was cloned first, so dropping it
/// frees at most the thunk's own cell and never reaches other values.
fn settle(slot: &Slot) -> Value {
    // SAFETY: a shared read of the slot; no reference into it is held
    // while it is written (below and in `Upvalues`' contract).
    let forced = match unsafe { &*slot.get() } {
        Value::Thunk(t) => match t.value() {
            Some(v) => v,
            None => return Value::Thunk(t.clone()),
        },
        v => return v.clone(),
    };
    // SAFETY: the reference read above ended; nothing else refers to the
    // slot now (`Upvalues`' contract). Replacing an evaluated thunk by its
    // value changes nothing any reader can observe: every read of a
    // variable takes an evaluated thunk's value (`shallow`).
    let old = unsafe { std::ptr::replace(slot.get(), forced.clone()) };
    drop(old);
    forced
}

/// What a closure or thunk captured, in two parts (docs/evaluator.md,
/// "Captured variables"): the values it holds itself, copied when it was
/// made (mostly locals of the frame that made it), and the environment it
/// was made in, shared: a closure made by a closure's frame holds that
/// closure, however many of its variables it reads, as C++ Nix's closures
/// point at their environment instead of copying from it.
///
/// One value is stored inline (with or without an environment): the
/// closure or thunk is then one allocation. The two parts are fields, not
/// variants of one enum: reading a variable then loads the environment and
/// tests one tag, where seven variants' niche-encoded tags cost a chain of
/// comparisons on every read (docs/notes-performance.md, "Session 7").
///
/// The values sit in [`UnsafeCell`]s: reading a variable whose thunk has
/// been evaluated replaces the thunk by its value in place
/// ([`Closure::upvalue_settled`]). What keeps that sound: a reference to a
/// value held here (from `Deref`, [`Closure::upvalue`]) is used and
/// dropped before the VM runs any more code; the VM writes a slot only in
/// `upvalue_settled`, when no such reference lives.
pub struct Upvalues {
    env: Option<Rc<Closure>>,
    own: Own,
}

/// The values a closure or thunk holds itself.
enum Own {
    /// None (the closure or thunk reads only its environment, or nothing).
    Zero,
    /// One value, inline.
    One([Slot; 1]),
    /// Two or more, in their own allocation.
    Many(Box<[Slot]>),
}

/// A value held, replaced in place by its thunk's value once that is
/// evaluated (see [`Upvalues`]).
type Slot = UnsafeCell<Value>;

const _: () = assert!(std::mem::size_of::<Upvalues>() <= 32);

impl Upvalues {
    /// Nothing captured.
    pub fn none() -> Self {
        Upvalues {
            env: None,
            own: Own::Zero,
        }
    }

    /// The captures of a lambda with `n` values of its own, the `i`th
    /// being `get(i)`, and environment `env`. Inlined into each place a
    /// closure or thunk is made: out of line, its prologue and the moves of
    /// its result cost 0.7% of the NixOS toplevel's instructions.
    #[inline(always)]
    pub fn build(n: usize, mut get: impl FnMut(usize) -> Value, env: Option<Rc<Closure>>) -> Self {
        let own = match n {
            0 => Own::Zero,
            1 => Own::One([UnsafeCell::new(get(0))]),
            _ => {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    v.push(UnsafeCell::new(get(i)));
                }
                Own::Many(v.into_boxed_slice())
            }
        };
        Upvalues { env, own }
    }

    /// The environment, if one was captured.
    #[inline]
    pub fn env(&self) -> Option<&Closure> {
        self.env.as_deref()
    }

    /// The `i`th value held, as its cell.
    #[inline]
    fn slot(&self, i: usize) -> &Slot {
        let slots: &[Slot] = match &self.own {
            Own::Zero => &[],
            Own::One(v) => v,
            Own::Many(v) => v,
        };
        &slots[i]
    }

    /// The environment, shared once more.
    #[inline]
    pub fn env_rc(&self) -> Option<Rc<Closure>> {
        self.env.clone()
    }
}

impl std::ops::Deref for Upvalues {
    type Target = [Value];

    /// The values held, without the environment.
    #[inline]
    fn deref(&self) -> &[Value] {
        let slots: &[Slot] = match &self.own {
            Own::Zero => &[],
            Own::One(v) => v,
            Own::Many(v) => v,
        };
        // SAFETY: `UnsafeCell<Value>` has `Value`'s layout; the slots are
        // not written while the reference lives (the type's contract).
        unsafe { &*(slots as *const [Slot] as *const [Value]) }
    }
}

impl std::ops::DerefMut for Upvalues {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Value] {
        let slots: &mut [Slot] = match &mut self.own {
            Own::Zero => &mut [],
            Own::One(v) => v,
            Own::Many(v) => v,
        };
        // SAFETY: `UnsafeCell<Value>` has `Value`'s layout, and the
        // exclusive borrow rules out any other reference.
        unsafe { &mut *(slots as *mut [Slot] as *mut [Value]) }
    }
}

/// The most arguments a builtin takes (`foldl'`, `substring`,
/// `replaceStrings`, ...). The constructors of [`BuiltinDef`]s in
/// `builtins/` refuse a larger arity at compile time, so [`Args`] never
/// leaves its inline storage.
pub const MAX_ARITY: usize = 3;

/// The arguments of a builtin call, or those a partial application holds
/// so far, in order: at most [`MAX_ARITY`], held inline instead of in a
/// heap vector, so that a call of a one-argument builtin (`toString x`,
/// `head l`, `stringLength s`, about 1.6M on the NixOS toplevel) allocates
/// nothing for its argument (docs/notes-performance.md, "Session 9").
/// Builtins read it as a slice (`args[0]`) or take it apart by value
/// (`into_iter`, `pop`).
///
/// Not a `SmallVec`: its heap case costs a capacity test on every access,
/// and its clone and drop are out-of-line loops (53 and 38 instructions a
/// call measured on an empty one), where this clones and drops only its
/// live values, inline. The slots past `len` hold `Value::Null`, which owns
/// nothing: they are overwritten without a drop and left without one.
pub struct Args {
    vals: ManuallyDrop<[Value; MAX_ARITY]>,
    len: u8,
}

const _: () = assert!(std::mem::size_of::<Args>() <= 56);

impl Args {
    /// No arguments.
    #[inline(always)]
    pub fn new() -> Self {
        const NULL: Value = Value::Null;
        Args {
            vals: ManuallyDrop::new([NULL; MAX_ARITY]),
            len: 0,
        }
    }

    /// Appends an argument. More than [`MAX_ARITY`] is a bug in the VM
    /// (a call is given at most its builtin's arity, which
    /// `builtins::check_arity` bounds), and panics.
    #[inline(always)]
    pub fn push(&mut self, v: Value) {
        let slot = &mut self.vals[self.len as usize];
        // The slot past the end holds a null: nothing to drop.
        std::mem::replace(slot, v).release();
        self.len += 1;
    }

    /// Removes and returns the last argument.
    #[inline]
    pub fn pop(&mut self) -> Option<Value> {
        let last = self.len.checked_sub(1)?;
        self.len = last;
        Some(std::mem::replace(
            &mut self.vals[last as usize],
            Value::Null,
        ))
    }
}

impl Default for Args {
    #[inline]
    fn default() -> Self {
        Args::new()
    }
}

impl Drop for Args {
    #[inline]
    fn drop(&mut self) {
        let len = self.len as usize;
        for v in &mut self.vals[..len] {
            std::mem::replace(v, Value::Null).release();
        }
    }
}

impl Clone for Args {
    // Always inlined: out of line (as the whole-program optimisation of
    // the `dist` profile left it), cloning the empty arguments of a
    // one-argument builtin's call cost 31 instructions.
    #[inline(always)]
    fn clone(&self) -> Self {
        let mut a = Args::new();
        for v in self.iter() {
            a.push(v.clone());
        }
        a
    }
}

impl std::ops::Deref for Args {
    type Target = [Value];

    #[inline]
    fn deref(&self) -> &[Value] {
        &self.vals[..self.len as usize]
    }
}

impl std::ops::DerefMut for Args {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Value] {
        let len = self.len as usize;
        &mut self.vals[..len]
    }
}

impl Extend<Value> for Args {
    #[inline]
    fn extend<I: IntoIterator<Item = Value>>(&mut self, iter: I) {
        for v in iter {
            self.push(v);
        }
    }
}

impl FromIterator<Value> for Args {
    #[inline]
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        let mut a = Args::new();
        a.extend(iter);
        a
    }
}

impl IntoIterator for Args {
    type Item = Value;
    type IntoIter = ArgsIntoIter;

    #[inline]
    fn into_iter(self) -> ArgsIntoIter {
        ArgsIntoIter {
            args: self,
            next: 0,
        }
    }
}

/// The arguments of an [`Args`] taken by value, in order.
pub struct ArgsIntoIter {
    /// What is left from `next` on; the slots before it were taken (and
    /// hold nulls, which `Args`' drop passes over for nothing).
    args: Args,
    next: u8,
}

impl Iterator for ArgsIntoIter {
    type Item = Value;

    #[inline]
    fn next(&mut self) -> Option<Value> {
        if self.next >= self.args.len {
            return None;
        }
        let i = self.next as usize;
        self.next += 1;
        Some(std::mem::replace(&mut self.args.vals[i], Value::Null))
    }
}

/// How a builtin runs.
#[derive(Clone, Copy)]
pub enum BuiltinFn {
    /// Runs to completion without calling back into the VM.
    Sync(fn(&Rc<EvalState>, Args) -> EvalResult<Value>),
    /// A generator: may ask the VM to force values or call functions.
    Gen(fn(GenCo, Rc<EvalState>, Args) -> GenFuture),
    /// Run by the VM as a frame of its own (hot loops over lists).
    Native(crate::vm::Native),
}

/// The static description of a builtin.
pub struct BuiltinDef {
    /// Name without `builtins.`.
    pub name: &'static str,
    /// Number of arguments, at most [`MAX_ARITY`].
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
    pub args: Args,
}

#[cfg(test)]
mod tests {
    use super::{Args, Value, MAX_ARITY};
    use crate::eval::testing::ok;
    use std::rc::Rc;

    #[test]
    fn builtin_arguments_hold_and_release_their_values() {
        // `Args` manages its inline slots itself: every way of taking an
        // argument out, and every drop, must release each value exactly
        // once. A shared list's count shows it.
        let list = Rc::new(vec![Value::Int(1)]);
        let count = || Rc::strong_count(&list);
        let mut a = Args::new();
        assert!(a.is_empty());
        a.push(Value::List(list.clone()));
        a.push(Value::Int(2));
        a.push(Value::List(list.clone()));
        assert_eq!((a.len(), count()), (MAX_ARITY, 3));
        assert!(matches!(a[1], Value::Int(2)));
        let b = a.clone();
        assert_eq!(count(), 5);
        drop(b);
        assert_eq!(count(), 3);
        assert!(matches!(a.pop(), Some(Value::List(_))));
        assert_eq!((a.len(), count()), (2, 2));
        // A slot freed by `pop` takes a new value.
        a.push(Value::List(list.clone()));
        assert_eq!((a.len(), count()), (3, 3));
        a[1] = Value::List(list.clone());
        assert_eq!(count(), 4);
        let mut it = a.into_iter();
        assert!(matches!(it.next(), Some(Value::List(_))));
        assert_eq!(count(), 3);
        // What the iterator did not hand out is released with it.
        drop(it);
        assert_eq!(count(), 1);
        let mut e: Args = [Value::Int(1)].into_iter().collect();
        assert_eq!(e.pop().map(|v| matches!(v, Value::Int(1))), Some(true));
        assert!(e.pop().is_none() && e.is_empty());
    }

    #[test]
    #[should_panic]
    fn more_arguments_than_any_builtin_takes_is_a_bug() {
        let mut a = Args::new();
        for _ in 0..=MAX_ARITY {
            a.push(Value::Null);
        }
    }

    #[test]
    fn variables_read_through_environments() {
        // Closures made by closures read their makers' variables through
        // the environment they share, at every depth; code made by a
        // thunk's code copies the thunk's own values and shares its
        // environment (docs/evaluator.md, "Captured variables"). The
        // expected values are C++ Nix 2.8's.
        let cases = [
            (
                "let a = 1; in let f = b: let c = 3; g = d: e: \
                 [ a b c d e (let h = x: [ x a b c d e ]; in h 0) ]; in g; in (f 2) 4 5",
                "[ 1 2 3 4 5 [ 0 1 2 3 4 5 ] ]",
            ),
            (
                "(x: let t = let u = [ x y ]; in u; y = 2; in t) 1",
                "[ 1 2 ]",
            ),
            (
                "(a: let b = a + 1; t = (c: [ a b c (d: [ d c b a ]) ]); \
                 in [ (builtins.elemAt (t 3) 2) ((builtins.elemAt (t 3) 3) 4) ]) 1",
                "[ 3 [ 4 3 2 1 ] ]",
            ),
            (
                "let f = a: b: c: d: e: [ e d c b a ]; g = f 1; h = g 2 3; \
                 in [ (h 4 5) (h 6 7) (g 0 0 0 0) ]",
                "[ [ 5 4 3 2 1 ] [ 7 6 3 2 1 ] [ 0 0 0 0 1 ] ]",
            ),
            // Selections from an environment's set, taken at once or not.
            (
                "(a: b: let s = { x = { y = a; }; z = b; }; \
                 in [ s.x.y ((c: s.x.y) 0) ((c: { inherit (s) z; }) 0).z ]) 1 2",
                "[ 1 1 2 ]",
            ),
            (
                "let mk = n: if n == 0 then [] else [ (x: x + n) ] ++ mk (n - 1); \
                 in map (f: f 10) (mk 5)",
                "[ 15 14 13 12 11 ]",
            ),
            // Formals' defaults (deferred captures) and `with`.
            (
                "let f = a: { b ? a, c ? b + d, d ? 3 }: [ a b c d ]; \
                 in [ (f 1 { }) (f 1 { d = 5; }) ]",
                "[ [ 1 1 4 3 ] [ 1 1 6 5 ] ]",
            ),
            ("(a: with { w = a; }; (b: c: w + b + c) 2 3) 1", "6"),
            // A captured thunk read again after it was evaluated (its slot
            // then holds the value: `Closure::upvalue_settled`), from a
            // closure, from a thunk's code and through an environment,
            // keeps its value and its identity (`[ f ] == [ f ]` compares
            // the function by identity).
            (
                "let f = (y: x: x + y) 1; s = { a = 1; }; \
                 g = z: [ ([ f ] == [ f ]) (f z) s.a ([ f ] == [ f ]) (f z) s.a \
                 (let t = [ (f 0) s.a ([ f ] == [ f ]) ]; in t) ((w: [ (f w) s.a ]) 5) ]; \
                 in [ (g 1) (g 2) ]",
                "[ [ true 2 1 true 2 1 [ 1 1 true ] [ 6 1 ] ] \
                 [ true 3 1 true 3 1 [ 1 1 true ] [ 6 1 ] ] ]",
            ),
        ];
        for (expr, want) in cases {
            assert_eq!(ok(expr), want, "{expr}");
        }
    }
}
