//! Builtins the VM runs as frames of its own instead of generators: the
//! hot loops that call a Nix function per list element, and the forcing of
//! a builtin's strict arguments. A generator costs an allocation to start
//! and a resumption (and its request and response) per value it waits for;
//! a native frame is popped, does its step and pushes the next force or
//! call directly.

use super::ops::{eq_fast, identical};
use super::{
    coerce_fast, coerce_to_string, nix_eq, type_error, BytecodeFrame, Coercion, Frame, Gen, GenCo,
    GenFrame, GenFuture, GenState, Vm,
};
use crate::builtins::is_callable;
use crate::errors::{Error, ErrorKind};
use crate::source::Span;
use crate::value::{
    Args, BuiltinApp, BuiltinDef, BuiltinFn, NixList, NixString, StringBuilder, Value,
};
use std::rc::Rc;

/// Which native builtin (see [`crate::value::BuiltinFn::Native`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Native {
    /// `foldl' op nul list`.
    FoldlStrict,
    /// `filter f list`.
    Filter,
    /// `any f list`.
    Any,
    /// `all f list`.
    All,
    /// `concatMap f list`.
    ConcatMap,
    /// `concatStringsSep sep list`.
    ConcatStringsSep,
    /// `elem x list`.
    Elem,
    /// `concatLists lists`.
    ConcatLists,
}

/// What the value on top of the stack is when a native frame resumes.
#[derive(Clone, Copy)]
enum Awaiting {
    Nothing,
    Function,
    List,
    Accumulator,
}

/// The state of a `foldl'` in progress.
pub(super) struct Fold {
    f: Value,
    acc: Value,
    list: Value,
    /// The list, once the function and the list are forced and checked
    /// (`ready`): each step then reads them from here instead of checking
    /// them again.
    items: NixList,
    ready: bool,
    next: usize,
    awaiting: Awaiting,
    span: Option<Span>,
}

impl Fold {
    /// The span the frame reports errors at.
    pub(super) fn span(&self) -> Option<Span> {
        self.span
    }
}

impl Vm {
    /// The frame of a fully applied native builtin.
    fn native_frame(native: Native, args: Args, span: Option<Span>) -> Frame {
        match native {
            Native::FoldlStrict => {
                let mut args = args.into_iter();
                let mut next = || args.next().unwrap_or(Value::Null);
                let (f, acc, list) = (next(), next(), next());
                Frame::Fold(Box::new(Fold {
                    f,
                    acc,
                    list,
                    items: NixList::default(),
                    ready: false,
                    next: 0,
                    awaiting: Awaiting::Nothing,
                    span,
                }))
            }
            _ => Vm::walk_frame(native, args, span),
        }
    }

    /// One step of `foldl'`, with C++ Nix's strictness: the function and
    /// the list are forced first, the initial accumulator only if the list
    /// is empty, and every result of `op acc x` before the next call.
    ///
    /// `resumed` is the value the frame waited for when the caller has it
    /// in hand (a `Return` straight into the fold), else it is taken from
    /// the stack. A call of a closure is not pushed but handed back, for
    /// the caller to run at once: the bytecode loop switches to it, with no
    /// trip through the frame loop per element.
    #[inline(never)]
    pub(super) fn fold_step(
        &mut self,
        mut st: Box<Fold>,
        resumed: Option<Value>,
    ) -> Result<Option<BytecodeFrame>, Error> {
        let span = st.span;
        match std::mem::replace(&mut st.awaiting, Awaiting::Nothing) {
            Awaiting::Nothing => {}
            awaiting => {
                let v = match resumed {
                    Some(v) => v,
                    None => self.pop(),
                };
                let slot = match awaiting {
                    Awaiting::Function => &mut st.f,
                    Awaiting::List => &mut st.list,
                    _ => &mut st.acc,
                };
                // The slot holds `Value::Null` or the thunk just forced:
                // releasing the null skips its drop glue.
                std::mem::replace(slot, v).release();
            }
        }
        if !st.ready {
            if !st.f.is_whnf() {
                let f = st.f.clone();
                return self.await_fold(st, Awaiting::Function, f);
            }
            st.f = st.f.shallow();
            if !is_callable(&st.f) {
                return Err(Error::new(type_error("function", &st.f), span));
            }
            if !st.list.is_whnf() {
                let list = st.list.clone();
                return self.await_fold(st, Awaiting::List, list);
            }
            st.items = match st.list.shallow() {
                Value::List(l) => l,
                other => return Err(Error::new(type_error("list", &other), span)),
            };
            st.ready = true;
        }
        if (st.next > 0 || st.items.is_empty()) && !st.acc.is_whnf() {
            let acc = st.acc.clone();
            return self.await_fold(st, Awaiting::Accumulator, acc);
        }
        let Some(x) = st.items.get(st.next).cloned() else {
            let acc = std::mem::replace(&mut st.acc, Value::Null);
            self.stack.push(acc.into_shallow());
            return Ok(None);
        };
        st.next += 1;
        let acc = std::mem::replace(&mut st.acc, Value::Null);
        st.awaiting = Awaiting::Accumulator;
        if self.frames.len() + 2 >= self.max_frames {
            return Err(Error::new(ErrorKind::StackOverflow, span));
        }
        if let Value::Closure(c) = &st.f {
            let c = c.clone();
            self.frames.push(Frame::Fold(st));
            // `a: b: ...` gets both arguments at once (`Vm::curried_inner`).
            return Ok(Some(match self.curried_inner(c, acc) {
                Ok(inner) => self.enter_closure(inner, x),
                Err((c, acc)) => {
                    self.frames.push(Frame::ApplyArg(x, span));
                    self.enter_closure(c, acc)
                }
            }));
        }
        let f = st.f.clone();
        self.frames.push(Frame::Fold(st));
        self.frames.push(Frame::ApplyArg(x, span));
        if let Some(frame) = self.call_value(f, acc, span)? {
            self.push_frame(frame).map_err(|k| Error::new(k, span))?;
        }
        Ok(None)
    }

    /// Suspends the fold until `v` is forced; it resumes with the value on
    /// top of the stack.
    fn await_fold(
        &mut self,
        mut st: Box<Fold>,
        what: Awaiting,
        v: Value,
    ) -> Result<Option<BytecodeFrame>, Error> {
        let span = st.span;
        st.awaiting = what;
        self.frames.push(Frame::Fold(st));
        let Value::Thunk(t) = v else {
            unreachable!("only unevaluated thunks are awaited")
        };
        self.push_force(t)
            .map_err(|k: ErrorKind| Error::new(k, span))?;
        Ok(None)
    }
}

/// A fully applied builtin whose strict arguments are being forced, in
/// order, before it runs: what a generator that forced them and then
/// called the builtin did, without the generator.
pub(super) struct PendingCall {
    def: &'static BuiltinDef,
    args: Args,
    /// The first argument not yet known to be forced.
    next: usize,
    /// Whether `args[next]` is being forced (its value is on top of the
    /// stack when the frame resumes).
    awaiting: bool,
    span: Option<Span>,
}

impl PendingCall {
    /// The span the frame reports errors at.
    pub(super) fn span(&self) -> Option<Span> {
        self.span
    }
}

impl Vm {
    /// Applies builtin `def` to `args` (what a partial application held
    /// plus what this call gives, at most its arity): a new partial
    /// application on the stack while they are fewer than its arity,
    /// else the call.
    pub(super) fn apply_builtin(
        &mut self,
        def: &'static BuiltinDef,
        args: Args,
        span: Option<Span>,
    ) -> Result<Option<Frame>, Error> {
        if args.len() < def.arity {
            self.stack
                .push(Value::Builtin(Rc::new(BuiltinApp { def, args })));
            return Ok(None);
        }
        self.start_builtin(def, args, span)
    }

    /// Calls a fully applied builtin: at once if its strict arguments are
    /// in weak head normal form (a native one forces its own), else
    /// through a frame that forces them first.
    fn start_builtin(
        &mut self,
        def: &'static BuiltinDef,
        args: Args,
        span: Option<Span>,
    ) -> Result<Option<Frame>, Error> {
        let strict = |i: usize| def.lazy_args & (1 << i) == 0;
        let unforced = args
            .iter()
            .enumerate()
            .position(|(i, a)| strict(i) && !a.is_whnf());
        match unforced {
            Some(next) => {
                let call = PendingCall {
                    def,
                    args,
                    next,
                    awaiting: false,
                    span,
                };
                let boxed = match self.spare_call.take() {
                    Some(mut spare) => {
                        // The spare's arguments were taken: nothing is
                        // freed by the assignment.
                        *spare = call;
                        spare
                    }
                    None => Box::new(call),
                };
                Ok(Some(Frame::Args(boxed)))
            }
            None => self.run_builtin(def, args, span),
        }
    }

    /// One step of a [`PendingCall`]: takes the argument just forced and
    /// forces the next strict one, or runs the builtin.
    pub(super) fn run_pending(&mut self, mut st: Box<PendingCall>) -> Result<(), Error> {
        if std::mem::replace(&mut st.awaiting, false) {
            st.args[st.next] = self.pop();
            st.next += 1;
        }
        let def = st.def;
        while st.next < st.args.len() {
            let strict = def.lazy_args & (1 << st.next) == 0;
            if strict {
                if let Value::Thunk(t) = &st.args[st.next] {
                    if !t.is_evaluated() {
                        let (t, span) = (t.clone(), st.span);
                        st.awaiting = true;
                        self.frames.push(Frame::Args(st));
                        return self.push_force(t).map_err(|k| Error::new(k, span));
                    }
                }
            }
            st.next += 1;
        }
        let (args, span) = (std::mem::take(&mut st.args), st.span);
        self.spare_call = Some(st);
        if let Some(frame) = self.run_builtin(def, args, span)? {
            self.push_frame(frame).map_err(|k| Error::new(k, span))?;
        }
        Ok(())
    }

    /// Runs a builtin whose strict arguments are all in weak head normal
    /// form: a `Sync` one pushes its result, a `Gen` one becomes a
    /// generator frame.
    fn run_builtin(
        &mut self,
        def: &'static BuiltinDef,
        mut args: Args,
        span: Option<Span>,
    ) -> Result<Option<Frame>, Error> {
        for (i, a) in args.iter_mut().enumerate() {
            if def.lazy_args & (1 << i) == 0 {
                if let Value::Thunk(t) = a {
                    if let Some(v) = t.value() {
                        *a = v;
                    }
                }
            }
        }
        match def.func {
            BuiltinFn::Sync(f) => match f(&self.state, args) {
                Ok(v) => {
                    self.stack.push(v);
                    Ok(None)
                }
                Err(k) => Err(Error::new(k, span)),
            },
            BuiltinFn::Gen(g) => {
                let state = self.state.clone();
                Ok(Some(Frame::Generator(Box::new(GenFrame {
                    gen: Gen::new(move |co| g(co, state, args)),
                    state: GenState::Start,
                    span,
                }))))
            }
            BuiltinFn::Native(native) => Ok(Some(Vm::native_frame(native, args, span))),
        }
    }
}

/// What a [`Walk`] waits for: the value on top of the stack when its frame
/// resumes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    Nothing,
    /// The first argument (function, separator or needle), forced.
    First,
    /// The list argument, forced.
    Second,
    /// The current element, forced.
    Element,
    /// The result of calling the function on the current element.
    Result,
    /// The current element coerced to a string by a generator.
    Coerced,
    /// Whether the needle equals the current element, from a generator.
    Equal,
}

/// What a [`Walk`] has built so far.
enum Output {
    None,
    /// `filter`'s kept elements.
    Kept(Vec<Value>),
    /// `concatMap`'s lists and their total length.
    Lists(Vec<NixList>, usize),
    /// `concatStringsSep`'s string.
    Text(StringBuilder),
}

/// A list builtin in progress (`filter`, `any`, `all`, `concatMap`,
/// `concatStringsSep`, `elem`, `concatLists`): one frame that forces or calls per element
/// and is resumed with the value, where a generator took a resumption per
/// element. Elements that need no VM (evaluated, plain strings, scalars)
/// are handled in a loop without leaving the frame.
pub(super) struct Walk {
    op: Native,
    /// The function, separator or needle.
    first: Value,
    /// `elem`'s needle as it was passed: an element that is the same
    /// value (the same thunk, closure, set or list) is equal to it once
    /// forced, without comparing, as in C++ Nix, where `elem f [ f ]` is
    /// true even for a function.
    needle: Value,
    /// The list argument; `list` once it is forced and checked.
    second: Value,
    list: NixList,
    /// Whether the arguments are forced and checked.
    ready: bool,
    /// The element being worked on.
    next: usize,
    wait: Wait,
    out: Output,
    span: Option<Span>,
}

impl Walk {
    /// The span the frame reports errors at.
    pub(super) fn span(&self) -> Option<Span> {
        self.span
    }
}

/// Where a step of a [`Walk`] left it.
enum Step {
    /// Go on (with the next element, if the step handled one).
    Continue(Box<Walk>),
    /// The frame is pushed again, below what it waits for.
    Suspended,
    /// The builtin's result.
    Done(Value),
}

impl Vm {
    /// The frame of a fully applied list builtin run by a [`Walk`].
    fn walk_frame(op: Native, args: Args, span: Option<Span>) -> Frame {
        let mut args = args.into_iter();
        let mut next = || args.next().unwrap_or(Value::Null);
        let (first, second) = match op {
            // The one argument is the list.
            Native::ConcatLists => (Value::Null, next()),
            _ => (next(), next()),
        };
        let needle = match op {
            Native::Elem => first.clone(),
            _ => Value::Null,
        };
        Frame::Walk(Box::new(Walk {
            op,
            first,
            needle,
            second,
            list: NixList::default(),
            ready: false,
            next: 0,
            wait: Wait::Nothing,
            out: Output::None,
            span,
        }))
    }

    /// One step of a [`Walk`]: takes the value it waited for, then goes as
    /// far as it can without the VM.
    pub(super) fn run_walk(&mut self, mut st: Box<Walk>) -> Result<(), Error> {
        let waited = std::mem::replace(&mut st.wait, Wait::Nothing);
        if waited != Wait::Nothing {
            let v = self.pop();
            if let Value::Thunk(t) = &v {
                if !t.is_evaluated() {
                    // A call's result, not forced yet.
                    return self.await_walk(st, waited, v);
                }
            }
            match self.walk_resume(st, waited, v.into_shallow())? {
                Step::Continue(s) => st = s,
                Step::Suspended => return Ok(()),
                Step::Done(v) => {
                    self.stack.push(v);
                    return Ok(());
                }
            }
        }
        if !st.ready {
            match self.walk_prologue(st)? {
                Step::Continue(s) => st = s,
                Step::Suspended => return Ok(()),
                Step::Done(v) => {
                    self.stack.push(v);
                    return Ok(());
                }
            }
        }
        while let Some(x) = st.list.get(st.next).cloned() {
            match self.walk_step(st, x)? {
                Step::Continue(s) => st = s,
                Step::Suspended => return Ok(()),
                Step::Done(v) => {
                    self.stack.push(v);
                    return Ok(());
                }
            }
        }
        let result = match std::mem::replace(&mut st.out, Output::None) {
            Output::Kept(kept) if kept.len() == st.list.len() => Value::List(st.list.clone()),
            Output::Kept(kept) => Value::list(kept),
            Output::Lists(mut parts, total) => {
                if parts.len() == 1 {
                    Value::List(parts.swap_remove(0))
                } else {
                    let mut out = Vec::with_capacity(total);
                    for p in &parts {
                        out.extend(p.iter().cloned());
                    }
                    Value::list(out)
                }
            }
            Output::Text(b) => Value::String(b.finish()),
            // `any` and `elem` found nothing; `all` found no counterexample.
            Output::None => Value::Bool(matches!(st.op, Native::All)),
        };
        self.stack.push(result);
        Ok(())
    }

    /// Takes the value the walk waited for.
    fn walk_resume(&mut self, mut st: Box<Walk>, waited: Wait, v: Value) -> Result<Step, Error> {
        let span = st.span;
        match waited {
            Wait::First => st.first = v,
            Wait::Second => st.second = v,
            Wait::Element => return self.walk_element(st, v),
            Wait::Result => {
                let next = st.next;
                st.next += 1;
                match (st.op, v) {
                    (Native::Filter, Value::Bool(keep)) => {
                        if keep {
                            if let Output::Kept(kept) = &mut st.out {
                                kept.push(st.list[next].clone());
                            }
                        }
                    }
                    (Native::Any, Value::Bool(b)) | (Native::All, Value::Bool(b)) => {
                        if b == matches!(st.op, Native::Any) {
                            return Ok(Step::Done(Value::Bool(b)));
                        }
                    }
                    (Native::ConcatMap, Value::List(l)) => {
                        if let Output::Lists(parts, total) = &mut st.out {
                            *total += l.len();
                            parts.push(l);
                        }
                    }
                    (Native::ConcatMap, other) => {
                        return Err(Error::new(type_error("list", &other), span))
                    }
                    (_, other) => return Err(Error::new(type_error("Boolean", &other), span)),
                }
            }
            Wait::Coerced => {
                if let Value::String(s) = &v {
                    walk_text(&mut st, s);
                }
                st.next += 1;
            }
            Wait::Equal => {
                if let Value::Bool(true) = v {
                    return Ok(Step::Done(v));
                }
                st.next += 1;
            }
            Wait::Nothing => {}
        }
        Ok(Step::Continue(st))
    }

    /// Forces and checks the arguments in C++ Nix 2.8's order: `elem`
    /// forces the list first and stops at an empty one (its needle is only
    /// ever compared); the others force and check their first argument
    /// first, so `filter (throw "f") [ ]` is the `throw` and
    /// `concatStringsSep 1 (throw "l")` the type error.
    fn walk_prologue(&mut self, mut st: Box<Walk>) -> Result<Step, Error> {
        let span = st.span;
        let order = match st.op {
            Native::Elem | Native::ConcatLists => [Wait::Second, Wait::First],
            _ => [Wait::First, Wait::Second],
        };
        for which in order {
            let v = match which {
                Wait::First => st.first.clone(),
                _ => st.second.clone(),
            };
            if !v.is_whnf() {
                return self.await_walk(st, which, v).map(|()| Step::Suspended);
            }
            let v = v.into_shallow();
            // What is checked as soon as it is forced.
            match (st.op, which) {
                (Native::Filter | Native::Elem, Wait::Second) => {
                    let list = expect_list(&v, span)?;
                    if list.is_empty() {
                        return Ok(Step::Done(match st.op {
                            Native::Elem => Value::Bool(false),
                            _ => v,
                        }));
                    }
                    st.list = list;
                }
                (Native::Filter | Native::Any | Native::All | Native::ConcatMap, Wait::First)
                    if !is_callable(&v) =>
                {
                    return Err(Error::new(type_error("function", &v), span));
                }
                (
                    Native::Any
                    | Native::All
                    | Native::ConcatMap
                    | Native::ConcatStringsSep
                    | Native::ConcatLists,
                    Wait::Second,
                ) => {
                    st.list = expect_list(&v, span)?;
                }
                (Native::ConcatStringsSep, Wait::First) => {
                    let Value::String(sep) = &v else {
                        return Err(Error::new(type_error("string", &v), span));
                    };
                    let mut b = StringBuilder::default();
                    b.add_context(sep.context());
                    st.out = Output::Text(b);
                }
                _ => {}
            }
            match which {
                Wait::First => st.first = v,
                _ => st.second = v,
            }
        }
        st.out = match st.op {
            Native::Filter => Output::Kept(Vec::new()),
            Native::ConcatMap | Native::ConcatLists => {
                Output::Lists(Vec::with_capacity(st.list.len()), 0)
            }
            Native::ConcatStringsSep => std::mem::replace(&mut st.out, Output::None),
            _ => Output::None,
        };
        st.ready = true;
        Ok(Step::Continue(st))
    }

    /// Works on element `x` (unforced) of the list.
    fn walk_step(&mut self, mut st: Box<Walk>, x: Value) -> Result<Step, Error> {
        let span = st.span;
        match st.op {
            Native::Filter | Native::Any | Native::All | Native::ConcatMap => {
                let f = st.first.clone();
                st.wait = Wait::Result;
                self.frames.push(Frame::Walk(st));
                if let Some(frame) = self.call_value(f, x, span)? {
                    self.push_frame(frame).map_err(|k| Error::new(k, span))?;
                }
                Ok(Step::Suspended)
            }
            _ if !x.is_whnf() => self
                .await_walk(st, Wait::Element, x)
                .map(|()| Step::Suspended),
            _ => self.walk_element(st, x.into_shallow()),
        }
    }

    /// Works on a forced element of `concatStringsSep`, `elem` or
    /// `concatLists`, starting
    /// a generator for the coercions and comparisons that need the VM.
    fn walk_element(&mut self, mut st: Box<Walk>, x: Value) -> Result<Step, Error> {
        let span = st.span;
        if matches!(st.op, Native::ConcatLists) {
            let Value::List(l) = x else {
                return Err(Error::new(type_error("list", &x), span));
            };
            // Only non-empty parts: one of them alone is the result as is.
            if let (false, Output::Lists(parts, total)) = (l.is_empty(), &mut st.out) {
                *total += l.len();
                parts.push(l);
            }
            st.next += 1;
            return Ok(Step::Continue(st));
        }
        if matches!(st.op, Native::Elem) {
            // Both forced (the needle by the prologue), the element as it
            // is in the list is compared for identity first.
            if identical(&st.needle, &st.list[st.next]) {
                return Ok(Step::Done(Value::Bool(true)));
            }
            return match eq_fast(&st.first, &x) {
                Some(true) => Ok(Step::Done(Value::Bool(true))),
                Some(false) => {
                    st.next += 1;
                    Ok(Step::Continue(st))
                }
                None => {
                    let needle = st.first.clone();
                    self.walk_generator(st, Wait::Equal, move |co| -> GenFuture {
                        Box::pin(async move { Ok(Value::Bool(nix_eq(&co, needle, x).await?)) })
                    })
                }
            };
        }
        match coerce_fast(&self.state, &x, Coercion::INTERPOLATION) {
            Some(s) => {
                walk_text(&mut st, &s.map_err(|k| Error::new(k, span))?);
                st.next += 1;
                Ok(Step::Continue(st))
            }
            None => {
                let state = self.state.clone();
                self.walk_generator(st, Wait::Coerced, move |co| -> GenFuture {
                    Box::pin(async move {
                        let s = coerce_to_string(&co, &state, x, Coercion::INTERPOLATION).await?;
                        Ok(Value::String(s))
                    })
                })
            }
        }
    }

    /// Runs `f` as a generator frame above the walk, which resumes with
    /// its result.
    fn walk_generator(
        &mut self,
        mut st: Box<Walk>,
        what: Wait,
        f: impl FnOnce(GenCo) -> GenFuture + 'static,
    ) -> Result<Step, Error> {
        let span = st.span;
        st.wait = what;
        self.frames.push(Frame::Walk(st));
        self.push_frame(Frame::Generator(Box::new(GenFrame {
            gen: Gen::new(f),
            state: GenState::Start,
            span,
        })))
        .map_err(|k| Error::new(k, span))?;
        Ok(Step::Suspended)
    }

    /// Suspends the walk until `v` is forced.
    fn await_walk(&mut self, mut st: Box<Walk>, what: Wait, v: Value) -> Result<(), Error> {
        let span = st.span;
        st.wait = what;
        self.frames.push(Frame::Walk(st));
        let Value::Thunk(t) = v else {
            unreachable!("only unevaluated thunks are awaited")
        };
        self.push_force(t).map_err(|k| Error::new(k, span))
    }
}

/// Appends an element's string to `concatStringsSep`'s result, after the
/// separator unless it is the first.
fn walk_text(st: &mut Walk, s: &NixString) {
    if let (Output::Text(b), Value::String(sep)) = (&mut st.out, &st.first) {
        if st.next > 0 {
            b.push(sep);
        }
        b.push(s);
    }
}

/// The forced list argument, or C++ Nix's type error.
fn expect_list(v: &Value, span: Option<Span>) -> Result<NixList, Error> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(Error::new(type_error("list", other), span)),
    }
}

#[cfg(test)]
mod tests {
    use crate::eval::testing::{err, ok};

    #[test]
    fn strict_arguments_are_forced_in_order_before_the_builtin_runs() {
        assert_eq!(ok("let x = 1 + 2; in toString x"), "\"3\"");
        assert_eq!(ok("let l = [ 1 ] ++ [ 2 ]; in builtins.length l"), "2");
        // Both arguments of a two-argument builtin, in order.
        assert!(err("builtins.elemAt (throw \"first\") (throw \"second\")").contains("first"));
        assert!(err("builtins.elemAt [ 1 ] (throw \"second\")").contains("second"));
        // A generator builtin gets its arguments forced too.
        assert_eq!(
            ok("let s = { a = 1; }; in builtins.toJSON (s // { })"),
            "\"{\\\"a\\\":1}\""
        );
        assert_eq!(
            ok("(builtins.tryEval (toString (throw \"x\"))).success"),
            "false"
        );
    }

    #[test]
    fn partial_applications_keep_their_arguments() {
        // Through calls of one argument and of several at once, of
        // builtins run by a generator, synchronously and natively; the
        // expected values are C++ Nix 2.8's.
        assert_eq!(
            ok(
                "let s = builtins.substring 1; t = s 2; f = builtins.foldl' (a: b: a + b); \
                r = builtins.replaceStrings [ \"a\" ]; \
                in [ (t \"abcdef\") (s 0 \"xy\") (builtins.substring 1 2 \"abcdef\") \
                (f 0 [ 1 2 3 ]) ((f 10) [ 1 ]) (map (builtins.add 1) [ 1 2 ]) \
                ((r [ \"b\" ]) \"aa\") (r [ \"c\" ] \"ab\") (builtins.typeOf t) \
                (builtins.isFunction (builtins.concatStringsSep \",\")) ]"
            ),
            "[ \"bc\" \"\" \"bc\" 6 11 [ 2 3 ] \"bb\" \"cb\" \"lambda\" true ]"
        );
        // A partial application's argument is forced when the call is
        // complete, not before.
        assert_eq!(
            ok("let f = builtins.substring 0 (throw \"len\"); in builtins.typeOf f"),
            "\"lambda\""
        );
        assert!(err("let f = builtins.substring 1 (throw \"len\"); in f \"abc\"").contains("len"));
    }

    #[test]
    fn list_walks_force_and_check_in_cpp_nix_order() {
        // elem stops at an empty list before forcing the needle.
        assert_eq!(ok("builtins.elem (throw \"n\") [ ]"), "false");
        // filter forces its function first, even for an empty list.
        assert!(err("builtins.filter (throw \"the f\") [ ]").contains("the f"));
        let both = err("builtins.filter (throw \"the f\") (throw \"the l\")");
        assert!(both.contains("error: the f") && !both.contains("error: the l"));
        assert!(err("builtins.filter 1 [ ]").contains("expected a function but found an integer"));
        assert!(err("builtins.filter (x: true) (throw \"the l\")").contains("the l"));
        assert!(err("builtins.elem (throw \"n\") [ 1 ]").contains("n"));
        // The others force and check the function first.
        assert!(err("builtins.any (throw \"f\") [ ]").contains("f"));
        assert!(err("builtins.all 1 [ ]").contains("expected a function but found an integer"));
        assert!(err("builtins.concatMap (x: x) \"s\"").contains("expected a list"));
        assert!(err("builtins.concatStringsSep 1 (throw \"l\")")
            .contains("expected a string but found an integer"));
        assert!(err("builtins.concatStringsSep \",\" 1").contains("expected a list"));
    }

    #[test]
    fn list_walks_call_force_and_stop_like_the_generators_did() {
        assert_eq!(
            ok("builtins.filter (x: x) [ true false true ]"),
            "[ true true ]"
        );
        assert_eq!(
            ok("let l = [ 1 2 ]; in builtins.filter (x: true) l == l"),
            "true"
        );
        // filter does not force the elements it keeps; the predicate may.
        assert_eq!(
            ok("builtins.length (builtins.filter (x: true) [ (throw \"no\") ])"),
            "1"
        );
        assert!(err("builtins.filter (x: 1) [ 1 ]").contains("expected a Boolean"));
        // any and all stop at the first deciding element.
        assert_eq!(
            ok("builtins.any (x: x == 2) [ 1 2 (throw \"no\") ]"),
            "true"
        );
        assert_eq!(ok("builtins.all (x: x == 2) [ 1 (throw \"no\") ]"), "false");
        assert_eq!(ok("builtins.any builtins.isInt [ \"a\" 1 ]"), "true");
        assert_eq!(ok("builtins.all (x: x) [ ]"), "true");
        assert_eq!(ok("builtins.any (x: x) [ ]"), "false");
        // Any callable: partial builtins, functors, results that are thunks.
        assert_eq!(
            ok("builtins.filter { __functor = self: x: x > 1; } [ 1 2 3 ]"),
            "[ 2 3 ]"
        );
        assert_eq!(
            ok("builtins.concatMap (builtins.genList (x: x)) [ 1 2 3 ]"),
            "[ 0 0 1 0 1 2 ]"
        );
        assert_eq!(
            ok("builtins.concatMap (x: if x == 1 then [ 1 2 ] else [ ]) [ 0 1 2 ]"),
            "[ 1 2 ]"
        );
        assert!(err("builtins.concatMap (x: x) [ [ 1 ] 2 ]")
            .contains("expected a list but found an integer"));
        assert_eq!(
            ok("builtins.concatLists [ [ 1 ] [ ] (builtins.genList (x: x) 2) ]"),
            "[ 1 0 1 ]"
        );
        assert_eq!(ok("builtins.concatLists [ [ ] [ ] ]"), "[ ]");
        assert!(err("builtins.concatLists [ [ 1 ] 2 ]")
            .contains("expected a list but found an integer"));
        assert!(err("builtins.concatLists 1").contains("expected a list but found an integer"));
        assert!(err("builtins.concatLists [ [ ] (throw \"x\") ]").contains("x"));
        // A caught error inside the walk.
        assert_eq!(
            ok("builtins.length (builtins.filter (n: (builtins.tryEval \
                (if n == 3 then throw \"x\" else n)).success) [ 1 2 3 4 ])"),
            "3"
        );
        assert_eq!(
            ok("(builtins.tryEval (builtins.filter (x: throw \"e\") [ 1 ])).success"),
            "false"
        );
        // Long lists run in constant frame depth.
        assert_eq!(
            ok("builtins.length (builtins.filter (x: x > 5) (builtins.genList (x: x) 100000))"),
            "99994"
        );
    }

    #[test]
    fn concat_strings_sep_coerces_each_element_as_interpolation_does() {
        assert_eq!(
            ok("builtins.concatStringsSep \",\" (map toString [ 1 2 3 ])"),
            "\"1,2,3\""
        );
        assert_eq!(
            ok(
                "builtins.concatStringsSep \",\" [ \"a\" { outPath = \"o\"; } \
                { __toString = s: \"t\"; } ]"
            ),
            "\"a,o,t\""
        );
        assert_eq!(ok("builtins.concatStringsSep \",\" [ \"\" \"\" ]"), "\",\"");
        assert!(err("builtins.concatStringsSep \",\" [ \"a\" 1 ]")
            .contains("cannot coerce an integer to a string"));
        assert!(err("builtins.concatStringsSep \",\" [ \"a\" { } ]")
            .contains("cannot coerce a set to a string"));
        assert!(err("builtins.concatStringsSep \",\" [ \"a\" (throw \"x\") ]").contains("x"));
        // The separator's context is kept even for an empty list.
        assert_eq!(
            ok("let sep = \"${builtins.toFile \"a\" \"b\"}\"; in \
                builtins.attrNames (builtins.getContext (builtins.concatStringsSep sep [ ]))"),
            "[ \"/nix/store/g76zcpqc540lrc8i6g7xy6ip0npn2hnp-a\" ]"
        );
    }

    #[test]
    fn elem_compares_like_equality() {
        assert_eq!(ok("builtins.elem 2 [ 1 2 (throw \"x\") ]"), "true");
        assert!(err("builtins.elem 3 [ 1 2 (throw \"x\") ]").contains("x"));
        assert_eq!(
            ok("builtins.elem { a = 1; } [ { a = 2; } { a = 1; } ]"),
            "true"
        );
        assert_eq!(ok("builtins.elem [ 1 ] [ [ 2 ] [ 1 ] ]"), "true");
        assert_eq!(ok("builtins.elem 1 [ 1.0 ]"), "true");
        assert_eq!(ok("builtins.elem (x: x) [ (x: x) ]"), "false");
    }

    #[test]
    fn elem_finds_the_same_value_even_a_function_once_forced() {
        // C++ Nix 2.8: the same value (here a let-bound function, passed
        // and listed as itself) is equal without comparing...
        assert_eq!(ok("let f = x: x; in builtins.elem f [ 1 f ]"), "true");
        assert_eq!(
            ok("let f = x: x; in builtins.seq f (builtins.elem f [ f ])"),
            "true"
        );
        // ...but only itself: a call's result is a new value, and
        // functions are never equal by comparison.
        assert_eq!(
            ok("let f = x: x; in builtins.elem f (builtins.map (x: x) [ f ])"),
            "false"
        );
        // Both are forced before the identity is looked at.
        assert!(err("let t = throw \"thrown t\"; in builtins.elem t [ t ]").contains("thrown t"));
    }
}
