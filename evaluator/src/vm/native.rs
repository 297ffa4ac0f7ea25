//! Builtins the VM runs as frames of its own instead of generators: the
//! hot loops that call a Nix function per list element, and the forcing of
//! a builtin's strict arguments. A generator costs an allocation to start
//! and a resumption (and its request and response) per value it waits for;
//! a native frame is popped, does its step and pushes the next force or
//! call directly.

use super::{type_error, Frame, Gen, GenFrame, GenState, Vm};
use crate::builtins::is_callable;
use crate::errors::{Error, ErrorKind};
use crate::source::Span;
use crate::value::{BuiltinDef, BuiltinFn, NixList, Value};

/// Which native builtin (see [`crate::value::BuiltinFn::Native`]).
#[derive(Clone, Copy, Debug)]
pub enum Native {
    /// `foldl' op nul list`.
    FoldlStrict,
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
    pub(super) fn native_frame(native: Native, args: Vec<Value>, span: Option<Span>) -> Frame {
        match native {
            Native::FoldlStrict => {
                let mut args = args.into_iter();
                let mut next = || args.next().unwrap_or(Value::Null);
                let (f, acc, list) = (next(), next(), next());
                Frame::Fold(Box::new(Fold {
                    f,
                    acc,
                    list,
                    next: 0,
                    awaiting: Awaiting::Nothing,
                    span,
                }))
            }
        }
    }

    /// One step of `foldl'`, with C++ Nix's strictness: the function and
    /// the list are forced first, the initial accumulator only if the list
    /// is empty, and every result of `op acc x` before the next call.
    pub(super) fn run_fold(&mut self, mut st: Box<Fold>) -> Result<(), Error> {
        let span = st.span;
        match std::mem::replace(&mut st.awaiting, Awaiting::Nothing) {
            Awaiting::Nothing => {}
            Awaiting::Function => st.f = self.pop(),
            Awaiting::List => st.list = self.pop(),
            Awaiting::Accumulator => st.acc = self.pop(),
        }
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
        let list: NixList = match st.list.shallow() {
            Value::List(l) => l,
            other => return Err(Error::new(type_error("list", &other), span)),
        };
        if (st.next > 0 || list.is_empty()) && !st.acc.is_whnf() {
            let acc = st.acc.clone();
            return self.await_fold(st, Awaiting::Accumulator, acc);
        }
        let Some(x) = list.get(st.next).cloned() else {
            self.stack.push(st.acc.shallow());
            return Ok(());
        };
        st.next += 1;
        let f = st.f.clone();
        let acc = std::mem::replace(&mut st.acc, Value::Null);
        st.awaiting = Awaiting::Accumulator;
        self.frames.push(Frame::Fold(st));
        self.frames.push(Frame::ApplyArg(x, span));
        if let Some(frame) = self.call_value(f, acc, span)? {
            self.push_frame(frame).map_err(|k| Error::new(k, span))?;
        }
        Ok(())
    }

    /// Suspends the fold until `v` is forced; it resumes with the value on
    /// top of the stack.
    fn await_fold(&mut self, mut st: Box<Fold>, what: Awaiting, v: Value) -> Result<(), Error> {
        let span = st.span;
        st.awaiting = what;
        self.frames.push(Frame::Fold(st));
        let Value::Thunk(t) = v else {
            unreachable!("only unevaluated thunks are awaited")
        };
        self.push_force(t)
            .map_err(|k: ErrorKind| Error::new(k, span))
    }
}

/// A fully applied builtin whose strict arguments are being forced, in
/// order, before it runs: what a generator that forced them and then
/// called the builtin did, without the generator.
pub(super) struct PendingCall {
    def: &'static BuiltinDef,
    args: Vec<Value>,
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
    /// Calls a fully applied `Sync` or `Gen` builtin: at once if its strict
    /// arguments are in weak head normal form, else through a frame that
    /// forces them first.
    pub(super) fn start_builtin(
        &mut self,
        def: &'static BuiltinDef,
        args: Vec<Value>,
        span: Option<Span>,
    ) -> Result<Option<Frame>, Error> {
        let strict = |i: usize| def.lazy_args & (1 << i) == 0;
        let unforced = args
            .iter()
            .enumerate()
            .position(|(i, a)| strict(i) && !a.is_whnf());
        match unforced {
            Some(next) => Ok(Some(Frame::Args(Box::new(PendingCall {
                def,
                args,
                next,
                awaiting: false,
                span,
            })))),
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
        let PendingCall { args, span, .. } = *st;
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
        mut args: Vec<Value>,
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
