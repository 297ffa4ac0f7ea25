//! The VM: an explicit frame stack of bytecode frames, generator frames and
//! thunk-update markers (docs/evaluator.md, "The VM loop"). Nix recursion grows the frame
//! stack on the heap, never the Rust stack.

mod coerce;
mod generators;
mod loader;
mod namespaces;
mod native;
mod ops;
mod state;

pub use coerce::{coerce_fast, coerce_to_string, Coercion};
pub use generators::{
    call, call2, deep_force, deep_force_polling, force, force_attrs, force_bool, force_int,
    force_list, force_string, try_force, type_error, Gen, GenCo, GenFuture, VMRequest, VMResponse,
    MAX_DEPTH,
};
pub use loader::{Loader, SourceScope, SourceUnit};
pub use native::Native;
pub use ops::{nix_eq, nix_less};
pub use state::{io_msg, EvalOptions, EvalState, KnownDerivation, SearchPathEntry};

use crate::bytecode::{ArithOperand, Lambda, Op, UpvalueRef, UpvalueSource};
use crate::errors::{Error, ErrorKind, EvalResult};
use crate::source::Span;
use crate::value::{BuiltinApp, Closure, Entered, NixAttrs, NixString, Thunk, Upvalues, Value};
use genawaiter::GeneratorState;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// Frames beyond this many end the evaluation with a stack overflow error.
const MAX_FRAMES: usize = 2_000_000;
/// Trace entries kept per error (innermost first), like C++ Nix's elision
/// of long traces.
const TRACE_LIMIT: usize = 24;
/// Instructions between checks of the interrupt flag.
const INTERRUPT_INTERVAL: u32 = 4096;

struct BytecodeFrame {
    lambda: Rc<Lambda>,
    env: Env,
    ip: usize,
    base: usize,
}

/// Where a bytecode frame's upvalues are: in the closure it calls, or in
/// the thunk it is forcing (which holds them while it runs).
#[derive(Clone)]
enum Env {
    Closure(Rc<Closure>),
    Thunk(Thunk),
}

impl Env {
    /// Captured variable `r`, or its value if it is a forced thunk (what
    /// a read followed by `Force` wants), without cloning and dropping the
    /// thunk.
    ///
    /// A slot holding an evaluated thunk is given the thunk's value
    /// ([`Closure::upvalue_settled`]): the module system reads `config`,
    /// `lib` and the like many times from one closure, and each later read
    /// then skips the thunk (a dependent load, usually a cache miss).
    #[inline]
    fn upvalue_shallow(&self, r: UpvalueRef) -> Value {
        match self {
            Env::Closure(c) => c.upvalue_settled(r),
            Env::Thunk(t) => t.upvalue_settled(r),
        }
    }
}

/// `v`, or its value if it is a forced thunk.
#[inline]
fn shallow_ref(v: &Value) -> Value {
    match v {
        Value::Thunk(t) => t.value().unwrap_or_else(|| v.clone()),
        v => v.clone(),
    }
}

enum GenState {
    Start,
    AwaitValue,
    AwaitCatch { stack_len: usize },
    Caught(ErrorKind),
}

struct GenFrame {
    gen: Gen,
    state: GenState,
    span: Option<Span>,
}

enum Frame {
    Bytecode(BytecodeFrame),
    Generator(Box<GenFrame>),
    /// When the frame above completes, store its (forced) result in the
    /// thunk; on an error, make it pending again.
    ThunkUpdate(Thunk),
    /// When the frame above completes, force its result and apply it to
    /// this argument (curried calls from generators without resuming them).
    ApplyArg(Value, Option<Span>),
    /// A `foldl'` in progress (vm/native.rs).
    Fold(Box<native::Fold>),
    /// A builtin call forcing its strict arguments (vm/native.rs).
    Args(Box<native::PendingCall>),
    /// A list builtin in progress (vm/native.rs).
    Walk(Box<native::Walk>),
}

thread_local! {
    /// What a deferred capture holds until `Op::Finalise` fills it.
    static DEFERRED: Thunk = Thunk::apply(Value::Null, Value::Null);
}

fn deferred_placeholder() -> Value {
    DEFERRED.with(|t| Value::Thunk(t.clone()))
}

fn is_deferred_placeholder(v: &Value) -> bool {
    matches!(v, Value::Thunk(t) if DEFERRED.with(|d| d.ptr_eq(t)))
}

/// Runs evaluations. One per top-level request; cheap to create.
pub struct Vm {
    state: Rc<EvalState>,
    stack: Vec<Value>,
    frames: Vec<Frame>,
    /// `MAX_FRAMES`, or the lower `--max-call-depth`.
    max_frames: usize,
    until_check: u32,
    /// The box of the last builtin call whose arguments were forced
    /// (`Frame::Args`), emptied, for the next such call to reuse: lib's
    /// `hasPrefix` and `hasSuffix` make one per call (`substring`'s length
    /// argument is a pending thunk), about a million on the NixOS toplevel.
    spare_call: Option<Box<native::PendingCall>>,
}

impl Vm {
    /// Runs a generator to completion on a fresh VM.
    pub fn run<F>(state: &Rc<EvalState>, f: F) -> Result<Value, Error>
    where
        F: FnOnce(GenCo) -> GenFuture,
    {
        let mut vm = Vm {
            state: state.clone(),
            stack: Vec::with_capacity(256),
            frames: Vec::with_capacity(64),
            max_frames: state
                .options
                .max_call_depth
                .map_or(MAX_FRAMES, |d| d.min(MAX_FRAMES)),
            until_check: INTERRUPT_INTERVAL,
            spare_call: None,
        };
        vm.frames.push(Frame::Generator(Box::new(GenFrame {
            gen: Gen::new(f),
            state: GenState::Start,
            span: None,
        })));
        vm.execute()
    }

    fn execute(&mut self) -> Result<Value, Error> {
        loop {
            // Generator-driven loops (foldl', map's forcing, sort...) pass
            // through here rather than the bytecode loop: poll here too.
            self.until_check = self.until_check.saturating_sub(1);
            if self.until_check == 0 {
                self.until_check = INTERRUPT_INTERVAL;
                if let Err(k) = self.state.check_interrupt() {
                    self.unwind(Error::new(k, None))?;
                    continue;
                }
            }
            let Some(frame) = self.frames.pop() else {
                return Ok(self.stack.pop().unwrap_or(Value::Null));
            };
            let r = match frame {
                Frame::Bytecode(f) => self.run_bytecode(f),
                Frame::Generator(g) => self.run_generator(g),
                Frame::ThunkUpdate(t) => self.finish_thunk(t),
                Frame::ApplyArg(arg, span) => self.apply_arg(arg, span),
                Frame::Fold(st) => match self.fold_step(st, None) {
                    Ok(Some(callee)) => {
                        self.frames.push(Frame::Bytecode(callee));
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                },
                Frame::Args(st) => self.run_pending(st),
                Frame::Walk(st) => self.run_walk(st),
            };
            if let Err(e) = r {
                self.unwind(e)?;
            }
        }
    }

    /// Pops frames until a generator that asked to catch this error,
    /// collecting the trace of what was being evaluated on the way.
    fn unwind(&mut self, mut err: Error) -> Result<(), Error> {
        let mut traced = 0usize;
        while let Some(frame) = self.frames.pop() {
            if let Frame::Bytecode(bf) = &frame {
                if traced < TRACE_LIMIT {
                    let l = &bf.lambda;
                    let message = match (&l.name, l.takes_argument) {
                        (Some(n), false) => Some(format!("while evaluating the attribute '{n}'")),
                        (Some(n), true) => Some(format!("while calling '{n}'")),
                        (None, true) => Some("while calling anonymous lambda".to_string()),
                        (None, false) => None,
                    };
                    if let Some(message) = message {
                        err.trace.push(crate::errors::TraceEntry {
                            span: Some(l.span),
                            message,
                        });
                        traced += 1;
                    }
                }
            }
            match frame {
                Frame::ThunkUpdate(t) => t.restore(),
                Frame::Generator(mut g) => {
                    if let GenState::AwaitCatch { stack_len } = g.state {
                        if err.kind.is_catchable() {
                            self.stack.truncate(stack_len);
                            g.state = GenState::Caught(err.kind);
                            self.frames.push(Frame::Generator(g));
                            return Ok(());
                        }
                    }
                    if err.span.is_none() {
                        err.span = g.span;
                    }
                }
                Frame::Fold(st) => {
                    if err.span.is_none() {
                        err.span = st.span();
                    }
                }
                Frame::Args(st) => {
                    if err.span.is_none() {
                        err.span = st.span();
                    }
                }
                Frame::Walk(st) => {
                    if err.span.is_none() {
                        err.span = st.span();
                    }
                }
                Frame::Bytecode(_) | Frame::ApplyArg(..) => {}
            }
        }
        Err(err)
    }

    fn push_frame(&mut self, f: Frame) -> EvalResult<()> {
        if self.frames.len() >= self.max_frames {
            return Err(ErrorKind::StackOverflow);
        }
        self.frames.push(f);
        Ok(())
    }

    /// Sets up frames to force a thunk, or pushes its value if it has one.
    fn push_force(&mut self, t: Thunk) -> EvalResult<()> {
        if let Some(v) = t.value() {
            self.stack.push(v);
            return Ok(());
        }
        match t.enter() {
            Some(entered) => self.push_entered(t, entered),
            None => Err(ErrorKind::InfiniteRecursion),
        }
    }

    /// Sets up frames to run what forcing `t` entered.
    fn push_entered(&mut self, t: Thunk, entered: Entered) -> EvalResult<()> {
        self.push_frame(Frame::ThunkUpdate(t.clone()))?;
        match entered {
            Entered::Code(lambda) => {
                let base = self.stack.len();
                self.push_frame(Frame::Bytecode(BytecodeFrame {
                    lambda,
                    env: Env::Thunk(t),
                    ip: 0,
                    base,
                }))
            }
            Entered::Apply(func, arg) if func.is_whnf() => {
                // The function is a value: call it directly, no generator.
                match self.call_value(func.into_shallow(), arg, None) {
                    Ok(Some(frame)) => self.push_frame(frame),
                    Ok(None) => Ok(()),
                    Err(e) => Err(ErrorKind::Located(Box::new(e))),
                }
            }
            Entered::Apply(func, arg) => {
                // The function is a thunk (`map`'s function not forced
                // yet): force it, then apply it to the argument.
                self.push_frame(Frame::ApplyArg(arg, None))?;
                match func {
                    Value::Thunk(t) => self.push_force(t),
                    _ => unreachable!("values in weak head normal form are called above"),
                }
            }
        }
    }

    fn finish_thunk(&mut self, t: Thunk) -> Result<(), Error> {
        let top = self.stack.pop().unwrap_or(Value::Null);
        match top {
            Value::Thunk(inner) => {
                if let Some(v) = inner.value() {
                    t.update(v.clone());
                    self.stack.push(v);
                } else {
                    self.frames.push(Frame::ThunkUpdate(t));
                    self.push_force(inner).map_err(Error::from)?;
                }
            }
            v => {
                t.update(v.clone());
                self.stack.push(v);
            }
        }
        Ok(())
    }

    fn apply_arg(&mut self, arg: Value, span: Option<Span>) -> Result<(), Error> {
        let f = self.pop();
        if let Value::Thunk(t) = &f {
            if !t.is_evaluated() {
                self.frames.push(Frame::ApplyArg(arg, span));
                return self.push_force(t.clone()).map_err(|k| Error::new(k, span));
            }
        }
        if let Some(frame) = self.call_value(f.into_shallow(), arg, span)? {
            self.push_frame(frame).map_err(|k| Error::new(k, span))?;
        }
        Ok(())
    }

    fn run_generator(&mut self, mut g: Box<GenFrame>) -> Result<(), Error> {
        let mut response = match std::mem::replace(&mut g.state, GenState::Start) {
            GenState::Start => VMResponse::Empty,
            GenState::AwaitValue | GenState::AwaitCatch { .. } => {
                VMResponse::Value(self.stack.pop().unwrap_or(Value::Null))
            }
            GenState::Caught(e) => VMResponse::Error(e),
        };
        loop {
            match g.gen.resume_with(response) {
                GeneratorState::Complete(Ok(v)) => {
                    self.stack.push(v);
                    return Ok(());
                }
                GeneratorState::Complete(Err(kind)) => return Err(Error::new(kind, g.span)),
                GeneratorState::Yielded(req) => match req {
                    VMRequest::Force(v) | VMRequest::TryForce(v) if v.is_whnf() => {
                        response = VMResponse::Value(v.into_shallow());
                    }
                    VMRequest::Force(Value::Thunk(t)) => {
                        g.state = GenState::AwaitValue;
                        let span = g.span;
                        self.frames.push(Frame::Generator(g));
                        return self.push_force(t).map_err(|k| Error::new(k, span));
                    }
                    VMRequest::TryForce(Value::Thunk(t)) => {
                        g.state = GenState::AwaitCatch {
                            stack_len: self.stack.len(),
                        };
                        let span = g.span;
                        self.frames.push(Frame::Generator(g));
                        return self.push_force(t).map_err(|k| Error::new(k, span));
                    }
                    VMRequest::Force(_) | VMRequest::TryForce(_) => {
                        unreachable!("non-thunks are in weak head normal form")
                    }
                    VMRequest::Call(f, arg) => {
                        g.state = GenState::AwaitValue;
                        let span = g.span;
                        self.frames.push(Frame::Generator(g));
                        if let Some(frame) = self.call_value(f, arg, span)? {
                            self.push_frame(frame).map_err(|k| Error::new(k, span))?;
                        }
                        return Ok(());
                    }
                    VMRequest::Call2(f, a, b) => {
                        g.state = GenState::AwaitValue;
                        let span = g.span;
                        self.frames.push(Frame::Generator(g));
                        self.frames.push(Frame::ApplyArg(b, span));
                        if let Some(frame) = self.call_value(f, a, span)? {
                            self.push_frame(frame).map_err(|k| Error::new(k, span))?;
                        }
                        return Ok(());
                    }
                },
            }
        }
    }

    /// Applies a forced function. Either the result is pushed on the stack
    /// (`None`) or a frame is returned that will leave it there.
    /// The frame of a call of closure `c`: its argument goes on the stack
    /// as the frame's slot 0.
    #[inline]
    fn enter_closure(&mut self, c: Rc<Closure>, arg: Value) -> BytecodeFrame {
        let base = self.stack.len();
        self.stack.push(arg);
        BytecodeFrame {
            lambda: c.lambda.clone(),
            env: Env::Closure(c),
            ip: 0,
            base,
        }
    }

    /// The inner closure of `c arg` when `c` is a curried lambda `a: b:
    /// ...` whose body is nothing but the inner lambda (`MakeClosure`,
    /// `Return`), made as that body would make it, without running the
    /// outer frame: a call of two arguments then enters the inner body at
    /// once. `Err` gives the arguments back for any other closure.
    #[inline]
    fn curried_inner(
        &mut self,
        c: Rc<Closure>,
        arg: Value,
    ) -> Result<Rc<Closure>, (Rc<Closure>, Value)> {
        let [Op::MakeClosure(k), Op::Return] = *c.lambda.chunk.code else {
            return Err((c, arg));
        };
        let lambda = &c.lambda.chunk.lambdas[k as usize];
        // The outer frame's only local is its argument (slot 0); anything
        // else takes the ordinary call.
        let sources = &lambda.upvalues;
        if sources
            .iter()
            .any(|s| matches!(s, UpvalueSource::Local(i) if *i != 0))
        {
            return Err((c, arg));
        }
        // What `Vm::capture` would copy from the outer frame, taken from the
        // argument and the closure directly: no frame is built for it (its
        // stack slot, code and environment counted and released).
        let get = |i: usize| match sources[i] {
            UpvalueSource::Local(_) => arg.clone(),
            UpvalueSource::Upvalue(r) => c.upvalue(r).clone(),
            UpvalueSource::Deferred(_) => deferred_placeholder(),
        };
        let env = lambda.captures_env.then(|| c.clone());
        let upvalues = Upvalues::build(sources.len(), get, env);
        let lambda = lambda.clone();
        // The argument, copied by the capture: a scalar (`foldl'`'s usual
        // accumulator) is forgotten rather than dropped out of line.
        arg.release();
        Ok(Rc::new(Closure { lambda, upvalues }))
    }

    fn call_value(
        &mut self,
        f: Value,
        arg: Value,
        span: Option<Span>,
    ) -> Result<Option<Frame>, Error> {
        match f {
            Value::Closure(c) => Ok(Some(Frame::Bytecode(self.enter_closure(c, arg)))),
            Value::Builtin(app) => self.call_builtin(&app, arg, span),
            Value::Attrs(a) if a.contains(b"__functor") => {
                let functor = a.get(b"__functor").cloned().unwrap_or(Value::Null);
                let this = Value::Attrs(a);
                let gen = Gen::new(move |co| -> GenFuture {
                    Box::pin(async move {
                        let g = call(&co, functor, this).await;
                        match co.yield_(VMRequest::Call(g, arg)).await {
                            VMResponse::Value(v) => Ok(v),
                            _ => unreachable!("Call answers with a value"),
                        }
                    })
                });
                Ok(Some(Frame::Generator(Box::new(GenFrame {
                    gen,
                    state: GenState::Start,
                    span,
                }))))
            }
            other => Err(Error::new(
                ErrorKind::other(format!(
                    "attempt to call something which is not a function but {}",
                    other.describe()
                )),
                span,
            )),
        }
    }

    fn call_builtin(
        &mut self,
        app: &Rc<BuiltinApp>,
        arg: Value,
        span: Option<Span>,
    ) -> Result<Option<Frame>, Error> {
        let mut args = app.args.clone();
        args.push(arg);
        self.apply_builtin(app.def, args, span)
    }

    /// Runs a generator for an operator that needs the VM (deep equality,
    /// list comparison, string coercion through `__toString`).
    fn suspend_into(&mut self, f: BytecodeFrame, span: Span, gen: Gen) -> Result<(), Error> {
        self.frames.push(Frame::Bytecode(f));
        self.push_frame(Frame::Generator(Box::new(GenFrame {
            gen,
            state: GenState::Start,
            span: Some(span),
        })))
        .map_err(|k| Error::new(k, Some(span)))
    }

    /// What a closure or thunk of `lambda` made by frame `f` captures:
    /// the values it holds itself, and the environment it shares
    /// (docs/evaluator.md, "Captured variables"): the frame's closure, or
    /// for a thunk's frame the environment the thunk holds.
    #[inline]
    fn capture(&self, f: &BytecodeFrame, lambda: &Lambda) -> Upvalues {
        let sources = &lambda.upvalues;
        let locals = &self.stack[f.base..];
        let build = |made_by: &Closure, env: Option<Rc<Closure>>| {
            let get = |i: usize| match sources[i] {
                UpvalueSource::Local(s) => locals[s as usize].clone(),
                UpvalueSource::Upvalue(r) => made_by.upvalue(r).clone(),
                UpvalueSource::Deferred(_) => deferred_placeholder(),
            };
            Upvalues::build(sources.len(), get, env)
        };
        match &f.env {
            Env::Closure(c) => build(c, lambda.captures_env.then(|| c.clone())),
            // Only clones are made while the cell is read (its contract).
            Env::Thunk(t) => t.with_captures(|c| {
                let env = if lambda.captures_env {
                    c.upvalues.env_rc()
                } else {
                    None
                };
                build(c, env)
            }),
        }
    }

    /// The value of a thunk of `lambda`, a variable followed by attribute
    /// selections ([`Lambda::is_select_path`]), if it is there to take
    /// without evaluating anything: the variable and each set on the way
    /// evaluated, each attribute present. The last attribute's value is
    /// taken as it is, evaluated or not: forcing it is what forcing the
    /// thunk would have done. (A trace through it then lacks the thunk's
    /// own "while evaluating the attribute" line.)
    fn select_now(&self, f: &BytecodeFrame, lambda: &Lambda) -> Option<Value> {
        let (Op::GetUpvalue(r) | Op::ForceUpvalue(r)) = *lambda.chunk.code.first()? else {
            return None;
        };
        let mut v = self.captured_now(f, lambda, r)?;
        for op in lambda.chunk.code.iter() {
            if let Op::Select(k) = op {
                let Some(Value::String(name)) = lambda.chunk.constants.get(*k as usize) else {
                    return None;
                };
                let next = match &v {
                    Value::Attrs(a) => a.get_key(name)?,
                    _ => return None,
                };
                v = shallow_ref(next);
            }
        }
        Some(v)
    }

    /// Captured variable `r` of a closure or thunk of `lambda` about to be
    /// made by frame `f`, as the making frame sees it (its value if it is
    /// an evaluated thunk): one the new closure would hold itself, or one
    /// of its environment's (the thunk's environment is the making closure
    /// itself, or a making thunk's own environment). `None` for a capture
    /// not filled yet (`rec`, `let`).
    // Out of line, as the compiler happened to leave it before session 9:
    // inlined into `arith_now`'s operand closure (called twice), it keeps
    // that closure out of the bytecode loop, which cost fib27 3.5% more
    // instructions and a quarter more time (docs/notes-performance.md,
    // "Session 9").
    #[inline(never)]
    fn captured_now(&self, f: &BytecodeFrame, lambda: &Lambda, r: UpvalueRef) -> Option<Value> {
        Some(if r.depth == 0 {
            match lambda.upvalues.get(r.index as usize)? {
                UpvalueSource::Local(s) => shallow_ref(self.stack.get(f.base + *s as usize)?),
                UpvalueSource::Upvalue(r) => f.env.upvalue_shallow(*r),
                UpvalueSource::Deferred(_) => return None,
            }
        } else {
            let depth = match f.env {
                Env::Closure(_) => r.depth - 1,
                Env::Thunk(_) => r.depth,
            };
            f.env.upvalue_shallow(UpvalueRef { depth, ..r })
        })
    }

    /// The value of a thunk of `lambda`, an integer operation on captured
    /// variables or constants ([`Lambda::arith_path`]), if it can be taken
    /// without evaluating anything: both operands evaluated integers and
    /// the operation not overflowing. Anything else (a pending operand, a
    /// float, a string, an overflow) makes the thunk, whose forcing does
    /// what it always did, errors included.
    fn arith_now(&self, f: &BytecodeFrame, lambda: &Lambda) -> Option<Value> {
        let (a, b, op) = lambda.arith_path()?;
        let int = |operand: ArithOperand| -> Option<i64> {
            match operand {
                ArithOperand::Upvalue(r) => match self.captured_now(f, lambda, r)? {
                    Value::Int(i) => Some(i),
                    _ => None,
                },
                ArithOperand::Constant(k) => match lambda.chunk.constants.get(k as usize)? {
                    Value::Int(i) => Some(*i),
                    _ => None,
                },
            }
        };
        let (x, y) = (int(a)?, int(b)?);
        Some(match op {
            Op::Add => Value::Int(x.checked_add(y)?),
            Op::Sub => Value::Int(x.checked_sub(y)?),
            Op::Mul => Value::Int(x.checked_mul(y)?),
            Op::Less => Value::Bool(x < y),
            Op::LessEq => Value::Bool(x <= y),
            Op::More => Value::Bool(x > y),
            Op::MoreEq => Value::Bool(x >= y),
            _ => return None,
        })
    }

    #[inline]
    fn pop(&mut self) -> Value {
        // Not `unwrap_or(Value::Null)`: that drops the unused default,
        // an out-of-line call on every pop.
        match self.stack.pop() {
            Some(v) => v,
            None => Value::Null,
        }
    }

    fn run_bytecode(&mut self, mut f: BytecodeFrame) -> Result<(), Error> {
        // The running frame's code, borrowed once per frame rather than
        // reached through its lambda for every instruction: whatever
        // replaces `f` sets it again (`switch_to!`).
        let mut code: &[Op] = &f.lambda.chunk.code;
        macro_rules! switch_to {
            ($frame:expr) => {{
                f = $frame;
                code = &f.lambda.chunk.code;
                continue;
            }};
        }
        loop {
            self.until_check -= 1;
            if self.until_check == 0 {
                self.until_check = INTERRUPT_INTERVAL;
                if self.state.interrupt.load(Ordering::Relaxed) {
                    let span = f.lambda.chunk.span(f.ip);
                    return Err(Error::new(ErrorKind::Interrupted, span));
                }
            }
            let op = code[f.ip];
            f.ip += 1;
            macro_rules! fail {
                ($kind:expr) => {{
                    let kind = $kind;
                    let span = f.lambda.chunk.span(f.ip - 1);
                    // Keep the failing frame for the trace; unwinding drops it.
                    self.frames.push(Frame::Bytecode(BytecodeFrame {
                        lambda: f.lambda.clone(),
                        env: f.env.clone(),
                        ip: f.ip,
                        base: f.base,
                    }));
                    return Err(Error::new(kind, span));
                }};
            }
            macro_rules! tri {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(k) => fail!(k),
                    }
                };
            }
            match op {
                Op::Constant(i) => {
                    let v = f.lambda.chunk.constants[i as usize].clone();
                    self.stack.push(v);
                }
                Op::Pop => {
                    self.stack.pop();
                }
                Op::GetLocal(i) => {
                    let slot = &mut self.stack[f.base + i as usize];
                    // A local whose thunk was forced is replaced by its
                    // value: later reads (and the `Force` that usually
                    // follows) skip the thunk.
                    if let Value::Thunk(t) = slot {
                        if let Some(v) = t.value() {
                            *slot = v;
                        }
                    }
                    let v = slot.clone();
                    self.stack.push(v);
                }
                Op::GetUpvalue(_) | Op::ForceUpvalue(_) | Op::Force => {
                    if let Op::GetUpvalue(r) | Op::ForceUpvalue(r) = op {
                        let v = f.env.upvalue_shallow(r);
                        self.stack.push(v);
                        if let Op::GetUpvalue(_) = op {
                            continue;
                        }
                    }
                    if let Some(Value::Thunk(t)) = self.stack.last() {
                        if let Some(v) = t.value() {
                            *self.stack.last_mut().expect("checked") = v;
                        } else {
                            let t = t.clone();
                            self.stack.pop();
                            let span = f.lambda.chunk.span_at(f.ip - 1);
                            if self.frames.len() >= self.max_frames {
                                fail!(ErrorKind::StackOverflow);
                            }
                            // Compiled thunks run inline in this loop; their
                            // Return finishes the update (see Op::Return).
                            match t.enter() {
                                Some(Entered::Code(lambda)) => {
                                    self.frames.push(Frame::Bytecode(f));
                                    self.frames.push(Frame::ThunkUpdate(t.clone()));
                                    switch_to!(BytecodeFrame {
                                        lambda,
                                        env: Env::Thunk(t),
                                        ip: 0,
                                        base: self.stack.len(),
                                    });
                                }
                                Some(Entered::Apply(func, arg)) => {
                                    // An application of a closure (`map`'s
                                    // and `genList`'s elements) runs inline
                                    // too; anything else takes push_entered.
                                    self.frames.push(Frame::Bytecode(f));
                                    match func.into_shallow() {
                                        Value::Closure(c) => {
                                            self.frames.push(Frame::ThunkUpdate(t));
                                            switch_to!(self.enter_closure(c, arg));
                                        }
                                        func => {
                                            return self
                                                .push_entered(t, Entered::Apply(func, arg))
                                                .map_err(|k| Error::new(k, Some(span)));
                                        }
                                    }
                                }
                                None => fail!(ErrorKind::InfiniteRecursion),
                            }
                        }
                    }
                }
                Op::MakeClosure(i) => {
                    let lambda = f.lambda.chunk.lambdas[i as usize].clone();
                    let upvalues = self.capture(&f, &lambda);
                    self.stack
                        .push(Value::Closure(Rc::new(Closure { lambda, upvalues })));
                }
                Op::MakeThunk(i) => {
                    let lambda = f.lambda.chunk.lambdas[i as usize].clone();
                    let upvalues = self.capture(&f, &lambda);
                    self.stack
                        .push(Value::Thunk(Thunk::suspended(lambda, upvalues)));
                }
                Op::MakeArithThunk(i) | Op::MakeSelectThunk(i) => {
                    // A thunk whose value may be there to take at once.
                    let lambda = &f.lambda.chunk.lambdas[i as usize];
                    let now = if matches!(op, Op::MakeArithThunk(_)) {
                        self.arith_now(&f, lambda)
                    } else {
                        self.select_now(&f, lambda)
                    };
                    let v = match now {
                        Some(v) => v,
                        None => {
                            let lambda = lambda.clone();
                            let upvalues = self.capture(&f, &lambda);
                            Value::Thunk(Thunk::suspended(lambda, upvalues))
                        }
                    };
                    self.stack.push(v);
                }
                Op::Finalise(slot) => {
                    if let Value::Thunk(t) = &self.stack[f.base + slot as usize] {
                        let stack = &self.stack;
                        let base = f.base;
                        t.finalise(|lambda, ups| {
                            for (i, src) in lambda.upvalues.iter().enumerate() {
                                // Only placeholders are filled: a formal's
                                // slot may hold the caller's (already
                                // finalised) thunk instead of its default.
                                if let UpvalueSource::Deferred(s) = src {
                                    if is_deferred_placeholder(&ups[i]) {
                                        ups[i] = stack[base + *s as usize].clone();
                                    }
                                }
                            }
                        });
                    }
                }
                Op::Call => {
                    let arg = self.pop();
                    let func = self.pop();
                    let span = f.lambda.chunk.span(f.ip - 1);
                    let func = match func {
                        Value::Closure(c) => {
                            if self.frames.len() >= self.max_frames {
                                fail!(ErrorKind::StackOverflow);
                            }
                            let callee = self.enter_closure(c, arg);
                            self.frames.push(Frame::Bytecode(f));
                            switch_to!(callee);
                        }
                        other => other,
                    };
                    match self.call_value(func, arg, span)? {
                        None => {}
                        Some(frame) => {
                            self.frames.push(Frame::Bytecode(f));
                            return self.push_frame(frame).map_err(|k| Error::new(k, span));
                        }
                    }
                }
                Op::CallN(n) => {
                    let n = n as usize;
                    let span = f.lambda.chunk.span(f.ip - 1);
                    if self.frames.len() + n >= self.max_frames {
                        fail!(ErrorKind::StackOverflow);
                    }
                    let first = self.stack.len() - n;
                    let func = std::mem::replace(&mut self.stack[first - 1], Value::Null);
                    // How many arguments the function takes in this call;
                    // the others are applied to its result in turn.
                    let taken = match &func {
                        Value::Builtin(app) => (app.def.arity - app.args.len()).min(n),
                        _ => 1,
                    };
                    let rest = self.stack.split_off(first + taken);
                    let mut args = self.stack.drain(first..);
                    self.frames.push(Frame::Bytecode(f));
                    for arg in rest.into_iter().rev() {
                        self.frames.push(Frame::ApplyArg(arg, span));
                    }
                    let frame = match func {
                        Value::Closure(mut c) => {
                            let mut arg = args.next().unwrap_or(Value::Null);
                            drop(args);
                            self.stack.pop();
                            // `f a b` of a curried `a: b: ...` enters the
                            // inner body at once (`Vm::curried_inner`),
                            // taking the next argument from its apply marker.
                            for _ in 1..n {
                                match self.curried_inner(c, arg) {
                                    Ok(inner) => {
                                        let Some(Frame::ApplyArg(next, _)) = self.frames.pop()
                                        else {
                                            unreachable!("pushed above, one per argument")
                                        };
                                        (c, arg) = (inner, next);
                                    }
                                    Err(back) => {
                                        (c, arg) = back;
                                        break;
                                    }
                                }
                            }
                            Some(Frame::Bytecode(self.enter_closure(c, arg)))
                        }
                        Value::Builtin(app) => {
                            let mut all = app.args.clone();
                            all.extend(args);
                            self.stack.pop();
                            self.apply_builtin(app.def, all, span)?
                        }
                        other => {
                            let arg = args.next().unwrap_or(Value::Null);
                            drop(args);
                            self.stack.pop();
                            self.call_value(other, arg, span)?
                        }
                    };
                    match frame {
                        Some(Frame::Bytecode(callee)) => {
                            // The caller was pushed above; run the callee
                            // here, as `Call` does.
                            switch_to!(callee);
                        }
                        Some(frame) => {
                            return self.push_frame(frame).map_err(|k| Error::new(k, span))
                        }
                        None => {
                            if let Some(Frame::Bytecode(_)) = self.frames.last() {
                                if let Some(Frame::Bytecode(next)) = self.frames.pop() {
                                    switch_to!(next);
                                }
                            }
                            return Ok(());
                        }
                    }
                }
                Op::Return => {
                    let result = self.pop();
                    self.stack.truncate(f.base);
                    // Finish thunk updates inline while the result is in
                    // weak head normal form, then continue with the next
                    // bytecode frame without a trip through the outer loop.
                    let mut result = result;
                    loop {
                        match self.frames.last() {
                            Some(Frame::ThunkUpdate(_)) if result.is_whnf() => {
                                let Some(Frame::ThunkUpdate(t)) = self.frames.pop() else {
                                    unreachable!("checked above")
                                };
                                // A thunk's value replaces it; anything else
                                // is stored as it is (no clone and drop).
                                if let Value::Thunk(inner) = &result {
                                    if let Some(v) = inner.value() {
                                        result = v;
                                    }
                                }
                                t.update(result.clone());
                            }
                            _ => break,
                        }
                    }
                    // The frame to go on with in this loop, if any.
                    let next = match self.frames.last() {
                        Some(Frame::Bytecode(_)) => {
                            self.stack.push(result);
                            match self.frames.pop() {
                                Some(Frame::Bytecode(next)) => Some(next),
                                _ => unreachable!("checked above"),
                            }
                        }
                        // A curried call from a builtin (`foldl'`'s `f acc
                        // x`): a closure result is applied right here.
                        Some(Frame::ApplyArg(..)) if matches!(result, Value::Closure(_)) => {
                            let Some(Frame::ApplyArg(arg, _)) = self.frames.pop() else {
                                unreachable!("checked above")
                            };
                            let Value::Closure(c) = result else {
                                unreachable!("checked above")
                            };
                            Some(self.enter_closure(c, arg))
                        }
                        // The next step of a `foldl'` (`op acc x` returned):
                        // taken here, and its call run in this loop.
                        Some(Frame::Fold(_)) => {
                            let Some(Frame::Fold(st)) = self.frames.pop() else {
                                unreachable!("checked above")
                            };
                            self.fold_step(st, Some(result))?
                        }
                        _ => {
                            self.stack.push(result);
                            None
                        }
                    };
                    if let Some(next) = next {
                        switch_to!(next);
                    }
                    return Ok(());
                }
                Op::Jump(t) => f.ip = t as usize,
                Op::JumpIfFalse(t) => {
                    let v = self.pop();
                    if let Value::Bool(b) = v {
                        // A Boolean owns nothing: skip the out-of-line drop.
                        std::mem::forget(v);
                        if !b {
                            f.ip = t as usize
                        }
                    } else {
                        fail!(type_error("Boolean", &v))
                    }
                }
                Op::JumpIfFalseKeep(t) => {
                    if let Some(Value::Bool(false)) = self.stack.last() {
                        f.ip = t as usize;
                    }
                }
                Op::JumpIfTrueKeep(t) => {
                    if let Some(Value::Bool(true)) = self.stack.last() {
                        f.ip = t as usize;
                    }
                }
                Op::AssertBool => match self.stack.last() {
                    Some(Value::Bool(_)) => {}
                    Some(other) => fail!(type_error("Boolean", other)),
                    None => {}
                },
                Op::Not => match self.pop() {
                    Value::Bool(b) => self.stack.push(Value::Bool(!b)),
                    other => fail!(type_error("Boolean", &other)),
                },
                Op::Negate => {
                    let v = self.pop();
                    let r = tri!(ops::arith(ops::Arith::Sub, Value::Int(0), v));
                    self.stack.push(r);
                }
                Op::Add | Op::Sub | Op::Mul | Op::Div => {
                    let b = self.pop();
                    let a = self.pop();
                    // Integers, the common case, without the generic path's
                    // call; overflow and division by zero take that path
                    // for its error.
                    if let (Value::Int(x), Value::Int(y)) = (&a, &b) {
                        let r = match op {
                            Op::Add => x.checked_add(*y),
                            Op::Sub => x.checked_sub(*y),
                            Op::Mul => x.checked_mul(*y),
                            _ if *y != 0 => x.checked_div(*y),
                            _ => None,
                        };
                        if let Some(r) = r {
                            self.stack.push(Value::Int(r));
                            // Integers own nothing: skip the out-of-line drop.
                            std::mem::forget((a, b));
                            continue;
                        }
                    }
                    let kind = match op {
                        Op::Add => ops::Arith::Add,
                        Op::Sub => ops::Arith::Sub,
                        Op::Mul => ops::Arith::Mul,
                        _ => ops::Arith::Div,
                    };
                    match (kind, &a, &b) {
                        (ops::Arith::Add, x, _)
                            if !matches!(x, Value::Int(_) | Value::Float(_)) =>
                        {
                            match tri!(ops::add_strings_fast(&self.state, &a, &b)) {
                                Some(v) => self.stack.push(v),
                                None => {
                                    let span = f.lambda.chunk.span_at(f.ip - 1);
                                    let state = self.state.clone();
                                    let gen = Gen::new(move |co| -> GenFuture {
                                        Box::pin(async move {
                                            ops::add_strings(&co, &state, a, b).await
                                        })
                                    });
                                    return self.suspend_into(f, span, gen);
                                }
                            }
                        }
                        _ => {
                            let r = tri!(ops::arith(kind, a, b));
                            self.stack.push(r);
                        }
                    }
                }
                Op::Equal | Op::NotEqual => {
                    let b = self.pop();
                    let a = self.pop();
                    let negate = matches!(op, Op::NotEqual);
                    match ops::eq_fast(&a, &b) {
                        Some(r) => self.stack.push(Value::Bool(r != negate)),
                        None => {
                            let span = f.lambda.chunk.span_at(f.ip - 1);
                            let gen = Gen::new(move |co| -> GenFuture {
                                Box::pin(async move {
                                    let r = nix_eq(&co, a, b).await?;
                                    Ok(Value::Bool(r != negate))
                                })
                            });
                            return self.suspend_into(f, span, gen);
                        }
                    }
                }
                Op::Less | Op::LessEq | Op::More | Op::MoreEq => {
                    let b = self.pop();
                    let a = self.pop();
                    // a <= b is !(b < a); a > b is b < a; a >= b is !(a < b)
                    if let (Value::Int(x), Value::Int(y)) = (&a, &b) {
                        let r = match op {
                            Op::Less => x < y,
                            Op::LessEq => x <= y,
                            Op::More => x > y,
                            _ => x >= y,
                        };
                        self.stack.push(Value::Bool(r));
                        std::mem::forget((a, b));
                        continue;
                    }
                    let (x, y, negate) = match op {
                        Op::Less => (a, b, false),
                        Op::LessEq => (b, a, true),
                        Op::More => (b, a, false),
                        _ => (a, b, true),
                    };
                    match ops::less_fast(&x, &y) {
                        Some(Ok(r)) => self.stack.push(Value::Bool(r != negate)),
                        Some(Err(k)) => fail!(k),
                        None => {
                            let span = f.lambda.chunk.span_at(f.ip - 1);
                            let gen = Gen::new(move |co| -> GenFuture {
                                Box::pin(async move {
                                    let r = nix_less(&co, x, y).await?;
                                    Ok(Value::Bool(r != negate))
                                })
                            });
                            return self.suspend_into(f, span, gen);
                        }
                    }
                }
                Op::Concat => {
                    let b = self.pop();
                    let a = self.pop();
                    match (a, b) {
                        (Value::List(x), Value::List(y)) => {
                            if x.is_empty() {
                                self.stack.push(Value::List(y));
                            } else if y.is_empty() {
                                self.stack.push(Value::List(x));
                            } else {
                                let mut v = Vec::with_capacity(x.len() + y.len());
                                v.extend(x.iter().cloned());
                                v.extend(y.iter().cloned());
                                self.stack.push(Value::list(v));
                            }
                        }
                        (Value::List(_), other) | (other, _) => {
                            fail!(type_error("list", &other))
                        }
                    }
                }
                Op::Update => {
                    let b = self.pop();
                    let a = self.pop();
                    match (a, b) {
                        (Value::Attrs(x), Value::Attrs(y)) => {
                            self.stack.push(Value::Attrs(x.update(&y)))
                        }
                        (Value::Attrs(_), other) | (other, _) => fail!(type_error("set", &other)),
                    }
                }
                Op::Attrs(i) => {
                    // The entries are made straight from the stack: one
                    // allocation, not a vector of the values first.
                    let (names, positions) = &f.lambda.chunk.names[i as usize];
                    let first = self.stack.len() - names.len();
                    let values = self.stack.drain(first..);
                    let entries = names.iter().cloned().zip(values).collect();
                    let set = NixAttrs::from_sorted_with_positions(entries, positions.clone());
                    self.stack.push(Value::Attrs(Rc::new(set)));
                }
                Op::AttrsDyn => {
                    let pos = f.lambda.chunk.spans[f.ip - 1];
                    let value = self.pop();
                    let key = self.pop();
                    let key = match key {
                        Value::Null => continue,
                        Value::String(s) => s,
                        other => fail!(type_error("string", &other)),
                    };
                    if let Some(c) = key.context().and_then(|c| c.iter().next()) {
                        fail!(ErrorKind::other(format!(
                            "the string '{}' is not allowed to refer to a store path (such as '{}')",
                            key,
                            c.encode()
                        )));
                    }
                    if let Some(Value::Attrs(a)) = self.stack.last_mut() {
                        let a = Rc::make_mut(a);
                        if !a.insert_new_at(key.without_context(), value, pos) {
                            fail!(ErrorKind::other(format!(
                                "dynamic attribute '{}' already defined",
                                key
                            )));
                        }
                    }
                }
                Op::Select(i) => {
                    let top = self.pop();
                    let name = &f.lambda.chunk.constants[i as usize];
                    let Value::String(name) = name else {
                        unreachable!("Select names are strings")
                    };
                    match top {
                        Value::Attrs(a) => match a.get_key(name) {
                            Some(v) => self.stack.push(v.clone()),
                            None => fail!(ErrorKind::AttrMissing {
                                name: name.to_string()
                            }),
                        },
                        other => fail!(type_error("set", &other)),
                    }
                }
                Op::SelectOr(i, target) => {
                    let top = self.pop();
                    let Value::String(name) = &f.lambda.chunk.constants[i as usize] else {
                        unreachable!("Select names are strings")
                    };
                    match top.as_attrs().and_then(|a| a.get_key(name)) {
                        Some(v) => self.stack.push(v.clone()),
                        None => f.ip = target as usize,
                    }
                }
                Op::SelectDyn | Op::SelectDynOr(_) => {
                    let key = self.pop();
                    let top = self.pop();
                    let key = match key {
                        Value::String(s) => s,
                        other => fail!(type_error("string", &other)),
                    };
                    let found = match (&top, op) {
                        (Value::Attrs(a), _) => a.get_key(&key).cloned(),
                        (other, Op::SelectDyn) => fail!(type_error("set", other)),
                        _ => None,
                    };
                    match (found, op) {
                        (Some(v), _) => self.stack.push(v),
                        (None, Op::SelectDynOr(t)) => f.ip = t as usize,
                        (None, _) => fail!(ErrorKind::AttrMissing {
                            name: key.to_string()
                        }),
                    }
                }
                Op::HasAttrStep(i, target) => {
                    let top = self.pop();
                    let Value::String(name) = &f.lambda.chunk.constants[i as usize] else {
                        unreachable!("attribute names are strings")
                    };
                    match top.as_attrs().and_then(|a| a.get_key(name)) {
                        Some(v) => self.stack.push(v.clone()),
                        None => {
                            self.stack.push(Value::Bool(false));
                            f.ip = target as usize;
                        }
                    }
                }
                Op::HasAttrStepDyn(target) => {
                    let key = self.pop();
                    let top = self.pop();
                    let key = match key {
                        Value::String(s) => s,
                        other => fail!(type_error("string", &other)),
                    };
                    match top.as_attrs().and_then(|a| a.get_key(&key)) {
                        Some(v) => self.stack.push(v.clone()),
                        None => {
                            self.stack.push(Value::Bool(false));
                            f.ip = target as usize;
                        }
                    }
                }
                Op::HasAttrEnd => {
                    self.pop();
                    self.stack.push(Value::Bool(true));
                }
                Op::List(n) => {
                    let items = self.stack.split_off(self.stack.len() - n as usize);
                    self.stack.push(Value::list(items));
                }
                Op::Interpolate(n) | Op::InterpolatePath(n) => {
                    let parts = self.stack.split_off(self.stack.len() - n as usize);
                    let is_path = matches!(op, Op::InterpolatePath(_));
                    match ops::interpolate_fast(&parts, is_path) {
                        Some(r) => {
                            let v = tri!(r);
                            self.stack.push(v);
                        }
                        None => {
                            let span = f.lambda.chunk.span_at(f.ip - 1);
                            let state = self.state.clone();
                            let gen = Gen::new(move |co| -> GenFuture {
                                Box::pin(async move {
                                    ops::interpolate(&co, &state, parts, is_path).await
                                })
                            });
                            return self.suspend_into(f, span, gen);
                        }
                    }
                }
                Op::ResolveWith(name, n) => {
                    // The namespaces stay on the stack while they are
                    // searched (no vector per lookup) and are dropped after.
                    let first = self.stack.len() - n as usize;
                    let Value::String(name) = &f.lambda.chunk.constants[name as usize] else {
                        unreachable!("variable names are strings")
                    };
                    let namespaces = &self.stack[first..];
                    let mut found = None;
                    let mut pending = None;
                    // Namespaces known not to have the name are skipped,
                    // and what this search learns is remembered.
                    let missing = namespaces::Missing::of(name);
                    let mut learned = false;
                    for (i, ns) in namespaces.iter().enumerate() {
                        if !ns.is_whnf() {
                            pending = Some(i);
                            break;
                        }
                        match ns.shallow() {
                            Value::Attrs(a) => {
                                if missing.has(i, &a) {
                                    continue;
                                }
                                if let Some(v) = a.get_key(name) {
                                    found = Some(v.clone());
                                    if learned {
                                        namespaces::remember(name, &namespaces[..i]);
                                    }
                                    break;
                                }
                                learned = true;
                            }
                            other => fail!(type_error("set", &other)),
                        }
                    }
                    let rest = pending.map(|i| namespaces[i..].to_vec());
                    self.stack.truncate(first);
                    match (found, rest) {
                        (Some(v), _) => self.stack.push(v),
                        (None, Some(rest)) => {
                            // An unevaluated namespace: force the rest one by
                            // one, stopping at the first that has the name.
                            let span = f.lambda.chunk.span_at(f.ip - 1);
                            let name = name.clone();
                            let gen = Gen::new(move |co| -> GenFuture {
                                Box::pin(async move {
                                    for ns in rest {
                                        match force(&co, ns).await {
                                            Value::Attrs(a) => {
                                                if let Some(v) = a.get_key(&name) {
                                                    return Ok(v.clone());
                                                }
                                            }
                                            other => return Err(type_error("set", &other)),
                                        }
                                    }
                                    Err(ErrorKind::UndefinedVariable(name.to_string()))
                                })
                            });
                            return self.suspend_into(f, span, gen);
                        }
                        (None, None) => fail!(ErrorKind::UndefinedVariable(name.to_string())),
                    }
                }
                Op::ScopeEnd(n) => {
                    let top = self.pop();
                    let len = self.stack.len();
                    self.stack.truncate(len - n as usize);
                    self.stack.push(top);
                }
                Op::AssertFail(i) => {
                    let text = match &f.lambda.chunk.constants[i as usize] {
                        Value::String(s) => s.to_string(),
                        _ => String::new(),
                    };
                    fail!(ErrorKind::AssertionFailed(text));
                }
                Op::ValidateFormals(i) => {
                    let formals = f.lambda.chunk.formals[i as usize].clone();
                    let func = f
                        .lambda
                        .name
                        .clone()
                        .unwrap_or_else(|| "anonymous lambda".into());
                    let args = match self.stack.last() {
                        Some(Value::Attrs(a)) => a.clone(),
                        Some(other) => fail!(type_error("set", other)),
                        None => fail!(ErrorKind::other("missing argument")),
                    };
                    for (name, has_default) in &formals.entries {
                        if !has_default && !args.contains_key(name) {
                            fail!(ErrorKind::MissingArgument {
                                func: func.to_string(),
                                arg: name.to_string()
                            });
                        }
                    }
                    if !formals.ellipsis {
                        for k in args.keys() {
                            if formals
                                .entries
                                .binary_search_by(|(n, _)| n.as_bytes().cmp(k.as_bytes()))
                                .is_err()
                            {
                                fail!(ErrorKind::UnexpectedArgument {
                                    func: func.to_string(),
                                    arg: k.to_string()
                                });
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A string value (helper for builtins).
pub fn string_value(s: impl Into<NixString>) -> Value {
    Value::String(s.into())
}

#[cfg(test)]
mod tests {
    use crate::eval::testing::{err, ok};

    #[test]
    fn calls_of_several_arguments() {
        // `Op::CallN`: a builtin gets all its arguments at once, whatever
        // was applied to it before; extra arguments go to its result; a
        // closure's result takes the rest one by one (C++ Nix 2.8 agrees
        // on every value here).
        assert_eq!(ok("builtins.substring 1 2 \"hello\""), "\"el\"");
        assert_eq!(
            ok("let f = builtins.substring 1; in f 2 \"hello\""),
            "\"el\""
        );
        assert_eq!(ok("builtins.head [ (x: y: x + y) ] 1 2"), "3");
        assert_eq!(ok("let f = a: b: c: a + b + c; in f 1 2 3"), "6");
        assert_eq!(ok("let f = a: builtins.add a; in f 1 2"), "3");
        assert_eq!(
            ok("let s = { __functor = self: a: b: a + b; }; in s 1 2"),
            "3"
        );
        assert_eq!(
            ok("let g = builtins.foldl' (a: b: x: a x + b) (x: x) [ 1 2 3 ]; in g 10"),
            "16"
        );
        // Arguments stay lazy, and an error in one is caught where it is
        // forced.
        assert_eq!(ok("let f = a: b: a; in f 1 (throw \"no\")"), "1");
        assert_eq!(
            ok("builtins.tryEval (builtins.substring (throw \"a\") 1 \"x\")"),
            "{ success = false; value = false; }"
        );
        // Too many arguments: the error names the result that was called,
        // at the call's position.
        let e = err("builtins.isAttrs {} 2");
        assert!(e.contains("not a function but a Boolean"), "{e}");
        let e = err("let f = x: x; in f 1 2");
        assert!(e.contains("not a function but an integer"), "{e}");
        assert!(e.contains("1:18"), "{e}");
    }

    #[test]
    fn integer_operations_taken_without_a_thunk() {
        // `Op::MakeArithThunk`: `n - 1` of an evaluated integer `n` is the
        // result itself; anything that could fail or evaluate stays a lazy
        // thunk (values and errors checked against C++ Nix 2.8).
        assert_eq!(
            ok("let fib = n: if n < 2 then n else fib (n - 1) + fib (n - 2); in fib 20"),
            "6765"
        );
        assert_eq!(
            ok("let f = n: [ (n - 1) (n < 2) (n * 3) (2 >= n) (n + 0.5) (1 + 2) ]; in f 5"),
            "[ 4 false 15 false 5.5 3 ]"
        );
        // Operands that are not integers, or not evaluated yet, are left
        // to the thunk: unforced, they are no error.
        assert_eq!(ok("let n = \"a\"; x = n - 1; in 1"), "1");
        assert_eq!(
            ok("let f = n: m: [ (n - m) ]; in builtins.length (f 3 (throw \"x\"))"),
            "1"
        );
        assert_eq!(ok("let a = b - 1; b = 2; in a"), "1");
        assert_eq!(ok("rec { a = b - 1; b = 2; }.a"), "1");
        let e = err("let f = n: m: [ (n - m) ]; in f 3 \"s\"");
        assert!(e.contains("expected an integer but found a string"), "{e}");
        // An overflow is the thunk's error, when it is forced.
        assert_eq!(ok("let n = 9223372036854775807; x = n + 1; in 1"), "1");
        let e = err("let n = 9223372036854775807; x = n + 1; in x");
        assert!(e.contains("overflow"), "{e}");
    }

    #[test]
    fn selections_taken_without_a_thunk() {
        // `Op::MakeSelectThunk`: `x.a` from an evaluated `x` is the
        // attribute's value itself; anything else stays a lazy thunk.
        assert_eq!(ok("let f = s: let v = s.a; in v; in f { a = 1; }"), "1");
        assert_eq!(
            ok("let f = s: { inherit (s.a) b c; }; in f { a = { b = 1; c = 2; }; }"),
            "{ b = 1; c = 2; }"
        );
        // Taking an attribute does not force its value...
        assert_eq!(
            ok("let f = s: let v = s.a; in 1; in f { a = throw \"no\"; }"),
            "1"
        );
        assert_eq!(
            ok("let f = s: let v = s.a; in (builtins.tryEval v).success; in f { a = throw \"no\"; }"),
            "false"
        );
        // ...and a missing attribute or a value that is not a set is an
        // error only when forced.
        assert_eq!(ok("let f = s: let v = s.a.b; in 2; in f { a = 1; }"), "2");
        assert_eq!(ok("let f = s: let v = s.a; in 2; in f { }"), "2");
        let e = err("let f = s: let v = s.a; in [ v ]; in f { b = 1; }");
        assert!(e.contains("attribute 'a' missing"), "{e}");
        // A set not evaluated when the selection is made.
        assert_eq!(
            ok("let f = s: let v = s.a; in v; in f (builtins.listToAttrs [ { name = \"a\"; value = 3; } ])"),
            "3"
        );
    }

    #[test]
    fn folds_run_in_the_bytecode_loop() {
        // `foldl'`'s next call is made from the `Return` of the last one
        // (`Vm::fold_step`); the strictness and the errors are C++ Nix
        // 2.8's (each value here checked against nix-instantiate).
        assert_eq!(ok("builtins.foldl' (a: b: a + b) 0 [ 1 2 3 ]"), "6");
        assert_eq!(ok("builtins.foldl' builtins.add 0 [ 1 2 3 ]"), "6");
        assert_eq!(
            ok("builtins.foldl' { __functor = self: a: b: a + b; } 0 [ 1 2 3 ]"),
            "6"
        );
        assert_eq!(
            ok("builtins.foldl' (a: builtins.foldl' (x: y: x + y) a) 0 [ [ 1 2 ] [ 3 4 ] ]"),
            "10"
        );
        assert_eq!(
            ok("builtins.foldl' (a: b: [ a b ]) 0 [ 1 2 3 ]"),
            "[ [ [ 0 1 ] 2 ] 3 ]"
        );
        // The initial accumulator is forced only if the list is empty or
        // the function uses it; every result is forced before the next call.
        assert_eq!(ok("builtins.foldl' (x: y: y) (throw \"acc\") [ 1 ]"), "1");
        assert!(err("builtins.foldl' (x: y: y) (throw \"acc\") [ ]").contains("acc"));
        assert!(err("builtins.foldl' (a: b: b) 0 [ (throw \"e\") 2 ]").contains("e"));
        // The function first, then the list.
        let e = err("builtins.foldl' (throw \"f\") (throw \"acc\") (throw \"list\")");
        assert!(e.contains("error: f"), "{e}");
        let e = err("builtins.foldl' 1 0 [ 1 ]");
        assert!(e.contains("function") && e.contains("integer"), "{e}");
        let e = err("builtins.foldl' (a: b: a) 0 1");
        assert!(e.contains("list") && e.contains("integer"), "{e}");
        // An error in the middle is caught, and keeps its trace.
        assert_eq!(
            ok("builtins.tryEval (builtins.foldl' (a: b: assert b < 3; a + b) 0 [ 1 2 3 ])"),
            "{ success = false; value = false; }"
        );
        let e = err("builtins.foldl' (a: b: a + b) 0 [ 1 \"x\" ]");
        assert!(e.contains("while calling anonymous lambda"), "{e}");
        assert!(e.contains("cannot add a string to an integer"), "{e}");
    }

    #[test]
    fn curried_calls_skip_the_outer_frame() {
        // `Vm::curried_inner`: `f a b` of `a: b: ...` and `foldl'`'s calls
        // make the inner closure without running the outer body; values,
        // laziness and error messages are as before (C++ Nix 2.8 agrees).
        assert_eq!(ok("let f = a: b: c: a + b + c; in f 1 2 3"), "6");
        assert_eq!(ok("let f = a: b: c: a + b + c; g = f 1 2; in g 3"), "6");
        assert_eq!(ok("let f = a: b: a; in f 1 (throw \"no\")"), "1");
        assert_eq!(ok("let f = a: let y = a; in b: y + b; in f 1 2"), "3");
        // The inner closure's captures: the argument, the outer closure's
        // own values and its environment, read at every depth.
        assert_eq!(
            ok("let k = 10; f = a: b: [ a b k ]; in f 1 2"),
            "[ 1 2 10 ]"
        );
        assert_eq!(
            ok("let g = x: let f = a: b: c: [ a b c x ]; in f; in g 0 1 2 3"),
            "[ 1 2 3 0 ]"
        );
        assert_eq!(
            ok("let f = { x, y ? 2 }: z: x + y + z; in f { x = 1; } 3"),
            "6"
        );
        assert_eq!(
            ok("builtins.foldl' (a: b: a ++ [ b ]) [ ] [ 1 2 3 ]"),
            "[ 1 2 3 ]"
        );
        assert_eq!(
            ok("let f = n: acc: if n == 0 then acc else f (n - 1) (acc + n); in f 100 0"),
            "5050"
        );
        assert_eq!(
            ok("builtins.foldl' (a: { b }: a + b) 0 [ { b = 1; } { b = 2; } ]"),
            "3"
        );
        let e = err("let f = a: { b }: a + b; in f 1 { c = 2; }");
        assert!(e.contains("without required argument 'b'"), "{e}");
        let e = err("let f = a: b: a.x + b; in f { } 2");
        assert!(e.contains("attribute 'x' missing"), "{e}");
        let e = err("let f = a: b: a; in f 1 2 3");
        assert!(e.contains("not a function but an integer"), "{e}");
    }
}
