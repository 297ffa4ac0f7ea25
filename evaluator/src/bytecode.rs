//! Bytecode: the instruction set, chunks and compiled lambdas.
//!
//! Operand-taking instructions assume their operands were forced by a
//! preceding [`Op::Force`]: forcing is the only instruction that can suspend
//! a frame, which keeps every other instruction a plain function of the stack.

use crate::image::PendingChunk;
use crate::source::Span;
use crate::value::{NixString, Value};
use std::cell::UnsafeCell;
use std::rc::Rc;

/// One instruction. Jump targets are absolute indices into the chunk.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// Push `constants[i]`.
    Constant(u32),
    /// Drop the top of the stack.
    Pop,
    /// Push the local in slot `i` of the current frame.
    GetLocal(u32),
    /// Push a captured variable.
    GetUpvalue(UpvalueRef),
    /// Force the top of the stack to weak head normal form (may suspend).
    Force,
    /// `GetUpvalue(r)` then `Force`, as one instruction (the commonest
    /// pair: a captured variable used where its value is needed).
    ForceUpvalue(UpvalueRef),
    /// Push a closure of `lambdas[i]`, capturing its upvalues.
    MakeClosure(u32),
    /// Push a thunk of `lambdas[i]`, capturing its upvalues.
    MakeThunk(u32),
    /// Push `x.a.b` for a thunk of `lambdas[i]`, whose body is one captured
    /// variable followed by attribute selections
    /// ([`Lambda::is_select_path`]): the attribute's value itself when the
    /// variable and each set on the way are evaluated and have the
    /// attribute, else a thunk as [`Op::MakeThunk`] makes.
    MakeSelectThunk(u32),
    /// Push `n - 1`, `i < n` and the like for a thunk of `lambdas[i]`,
    /// whose body is one integer operation on two captured variables or
    /// constants ([`Lambda::is_arith_path`]): the result itself when both
    /// operands are already evaluated integers and the operation cannot
    /// fail, else a thunk as [`Op::MakeThunk`] makes.
    MakeArithThunk(u32),
    /// Fill the deferred upvalues of the thunk in local slot `i`.
    Finalise(u32),
    /// `[f, arg]` -> `f arg`; `f` already forced.
    Call,
    /// `[f, arg1, ..., argN]` -> `f arg1 ... argN` (N >= 2); `f` already
    /// forced. A builtin gets all the arguments it takes in one call
    /// instead of a partial application per argument; a closure is
    /// called with the first and its result applied to the others.
    CallN(u32),
    /// End of the chunk: the top of the stack is the result.
    Return,
    /// Unconditional jump.
    Jump(u32),
    /// Pop a Boolean; jump if false.
    JumpIfFalse(u32),
    /// Peek a Boolean; jump if false, leaving it.
    JumpIfFalseKeep(u32),
    /// Peek a Boolean; jump if true, leaving it.
    JumpIfTrueKeep(u32),
    /// Type-check the top of the stack as a Boolean.
    AssertBool,
    /// Boolean negation.
    Not,
    /// Arithmetic negation.
    Negate,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `<`
    Less,
    /// `<=`
    LessEq,
    /// `>`
    More,
    /// `>=`
    MoreEq,
    /// `==` (may need the VM for deep comparison)
    Equal,
    /// `!=`
    NotEqual,
    /// `++`
    Concat,
    /// `//`
    Update,
    /// Pop `names[i].len()` values and build a set with those (sorted) names.
    Attrs(u32),
    /// `[attrs, key, value]` -> attrs with a dynamic key inserted (null key: skipped).
    AttrsDyn,
    /// Replace a forced set with its attribute `constants[i]` (a string).
    Select(u32),
    /// Like `Select`, but if missing (or not a set) pop and jump to the default.
    SelectOr(u32, u32),
    /// `[attrs, key]` -> attribute.
    SelectDyn,
    /// `[attrs, key]` -> attribute, or pop both and jump.
    SelectDynOr(u32),
    /// One step of `?`: replace a set with its attribute, or push false and jump.
    HasAttrStep(u32, u32),
    /// `[value, key]` version of `HasAttrStep`.
    HasAttrStepDyn(u32),
    /// End of `?`: replace the top with `true`.
    HasAttrEnd,
    /// Pop `n` values into a list.
    List(u32),
    /// Pop `n` forced values and concatenate them as string interpolation does.
    Interpolate(u32),
    /// Like `Interpolate`, but the first part is a path and the result a path.
    InterpolatePath(u32),
    /// Pop `n` forced `with` namespaces (innermost first) and look up `constants[i]`.
    ResolveWith(u32, u32),
    /// Remove `n` values beneath the top of the stack (end of a scope).
    ScopeEnd(u32),
    /// Fail an assertion whose source text is `constants[i]`.
    AssertFail(u32),
    /// Check a forced argument against `formals[i]` (types, missing, unexpected).
    ValidateFormals(u32),
}

/// Where running code finds a captured variable (docs/evaluator.md,
/// "Captured variables"): `depth` environments up the chain that starts
/// at the running closure or thunk (0: a value it holds itself; 1: one
/// held by the closure it was made in, ...), then the `index`th value
/// held there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpvalueRef {
    /// Environments to go up.
    pub depth: u32,
    /// Which value held there.
    pub index: u32,
}

/// Where a value a closure or thunk holds itself comes from when it is
/// made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpvalueSource {
    /// A local of the enclosing frame.
    Local(u32),
    /// A captured variable of the enclosing frame, copied: the enclosing
    /// frame is a thunk's, whose own values are not shared.
    Upvalue(UpvalueRef),
    /// A local of the enclosing frame that is not initialised yet (recursive
    /// bindings); filled by [`Op::Finalise`].
    Deferred(u32),
}

/// The formal parameters of a `{ a, b ? 1, ... }:` lambda.
#[derive(Debug, Clone)]
pub struct Formals {
    /// Names and whether each has a default, sorted by name.
    pub entries: Vec<(NixString, bool)>,
    /// Source offset of each entry's name (for `unsafeGetAttrPos` on
    /// `functionArgs`), parallel to `entries`.
    pub positions: Rc<[u32]>,
    /// Whether `...` is present.
    pub ellipsis: bool,
    /// Source span of the pattern.
    pub span: Span,
}

/// The sorted names of a literal set and each name's definition offset.
pub type AttrNames = (Rc<[NixString]>, Rc<[u32]>);

/// Compiled code and its tables.
///
/// Boxed slices, not vectors: compiled code lives as long as any closure or
/// thunk of it, and was the biggest part of a nixpkgs evaluation's heap after
/// the values (docs/notes-performance.md, "Where the bytes go"), so a chunk
/// carries neither capacities nor spare room. The compiler builds one in a
/// [`ChunkBuilder`].
#[derive(Default)]
pub struct Chunk {
    /// Instructions.
    pub code: Box<[Op]>,
    /// Source offset of each instruction: where an error it raises points
    /// (only the start of a span is ever shown, so only that is kept: 4
    /// bytes an instruction less, on every loaded file).
    pub spans: Box<[u32]>,
    /// Literal values.
    pub constants: Box<[Value]>,
    /// Nested lambdas and thunks.
    pub lambdas: Box<[Rc<Lambda>]>,
    /// Sorted name lists for [`Op::Attrs`], with each name's definition offset.
    pub names: Box<[AttrNames]>,
    /// Formal parameter tables.
    pub formals: Box<[Rc<Formals>]>,
}

/// A [`Chunk`] being compiled: its tables still growing.
#[derive(Default)]
pub struct ChunkBuilder {
    /// Instructions.
    pub code: Vec<Op>,
    /// Source offset of each instruction.
    pub spans: Vec<u32>,
    /// Literal values.
    pub constants: Vec<Value>,
    /// Nested lambdas and thunks.
    pub lambdas: Vec<Rc<Lambda>>,
    /// Sorted name lists for [`Op::Attrs`].
    pub names: Vec<AttrNames>,
    /// Formal parameter tables.
    pub formals: Vec<Rc<Formals>>,
}

impl Chunk {
    /// Where instruction `ip` points in the source (an empty span at its
    /// offset), if there is such an instruction.
    #[inline]
    pub fn span(&self, ip: usize) -> Option<Span> {
        self.spans.get(ip).map(|&at| Span::new(at, at))
    }

    /// Where instruction `ip`, which exists, points in the source.
    #[inline]
    pub fn span_at(&self, ip: usize) -> Span {
        let at = self.spans[ip];
        Span::new(at, at)
    }
}

/// A lambda's [`Chunk`], there from the start (compiled) or decoded from
/// its compiled-file image the first time anything reads it: most lambdas
/// of a nixpkgs file are never called, and decoding their code, constants
/// and tables was most of the cost of loading the file
/// (docs/notes-performance.md, "Session 9"). It derefs to the chunk, so
/// readers write `lambda.chunk.code` either way; a read of a decoded chunk
/// costs one test of its state.
///
/// A chunk's checks (table indices, jump targets, environment references,
/// spans) run when it is decoded; one that fails them (past the cache
/// entry's checksum: a bug or a forged entry) is code raising an error
/// that says so, never wrong code ([`crate::image::decode`]).
pub struct LazyChunk(UnsafeCell<ChunkState>);

enum ChunkState {
    Ready(Chunk),
    Pending(Box<PendingChunk>),
}

// The state is no bigger than the chunk: the pending box sits where the
// chunk's code pointer cannot be null.
const _: () = assert!(std::mem::size_of::<LazyChunk>() == std::mem::size_of::<Chunk>());

impl LazyChunk {
    /// A chunk to decode from its image when first read.
    pub(crate) fn pending(p: PendingChunk) -> Self {
        LazyChunk(UnsafeCell::new(ChunkState::Pending(Box::new(p))))
    }

    /// Whether the chunk has been compiled or decoded (read at least once
    /// if it came from an image).
    pub fn is_decoded(&self) -> bool {
        // SAFETY: a shared read; the state is written only in `decode`,
        // while no reference into it lives.
        matches!(unsafe { &*self.0.get() }, ChunkState::Ready(_))
    }

    #[cold]
    #[inline(never)]
    fn decode(&self) -> &Chunk {
        // SAFETY: the state is pending, so no reference to a chunk in it
        // was ever handed out; the reference read here ends before the
        // write. Decoding reads only the image (bytes, strings, globals'
        // values): it runs no code and reaches no other lambda's state,
        // so nothing re-enters this cell meanwhile (the type is not
        // `Sync`: no other thread does either).
        let chunk = match unsafe { &*self.0.get() } {
            ChunkState::Ready(c) => return c,
            ChunkState::Pending(p) => p.decode(),
        };
        // SAFETY: as above; the old state is dropped after the write, so
        // whatever its drop reaches finds the cell already ready.
        let old = unsafe { std::ptr::replace(self.0.get(), ChunkState::Ready(chunk)) };
        drop(old);
        match unsafe { &*self.0.get() } {
            ChunkState::Ready(c) => c,
            ChunkState::Pending(_) => unreachable!("the state was written ready just above"),
        }
    }
}

impl From<Chunk> for LazyChunk {
    fn from(c: Chunk) -> Self {
        LazyChunk(UnsafeCell::new(ChunkState::Ready(c)))
    }
}

impl std::ops::Deref for LazyChunk {
    type Target = Chunk;

    #[inline(always)]
    fn deref(&self) -> &Chunk {
        // SAFETY: a shared read; once ready the state never changes again,
        // so the reference stays valid for as long as `self` is borrowed.
        match unsafe { &*self.0.get() } {
            ChunkState::Ready(c) => c,
            ChunkState::Pending(_) => self.decode(),
        }
    }
}

impl std::ops::DerefMut for LazyChunk {
    fn deref_mut(&mut self) -> &mut Chunk {
        let _ = std::ops::Deref::deref(self);
        match self.0.get_mut() {
            ChunkState::Ready(c) => c,
            ChunkState::Pending(_) => unreachable!("decoded just above"),
        }
    }
}

impl ChunkBuilder {
    /// The finished chunk (each table exactly as long as its contents).
    pub fn finish(self) -> Chunk {
        Chunk {
            code: self.code.into_boxed_slice(),
            spans: self.spans.into_boxed_slice(),
            constants: self.constants.into_boxed_slice(),
            lambdas: self.lambdas.into_boxed_slice(),
            names: self.names.into_boxed_slice(),
            formals: self.formals.into_boxed_slice(),
        }
    }
}

impl Lambda {
    /// Whether this is a thunk body rather than a function.
    pub fn is_thunk(&self) -> bool {
        self.chunk.formals.is_empty() && !self.takes_argument
    }

    /// Whether this is the body of a thunk of `x.a.b`: its one captured
    /// variable, forced, then attribute selections by constant names
    /// (`inherit (x) a;`, `x.a` as an argument or attribute value).
    /// Nothing such a body does fails or evaluates anything once `x` and
    /// the sets on the way are evaluated and have the attributes, so its
    /// value can be taken without making the thunk
    /// ([`Op::MakeSelectThunk`]).
    pub fn is_select_path(&self) -> bool {
        let path = match &*self.chunk.code {
            [Op::GetUpvalue(_), Op::Force, path @ .., Op::Return] => path,
            [Op::ForceUpvalue(_), path @ .., Op::Return] => path,
            _ => return false,
        };
        path.chunks(2)
            .all(|step| matches!(step, [Op::Select(_), Op::Force]))
    }

    /// The operands and operation of a thunk body that is one arithmetic
    /// operation or comparison (`+`, `-`, `*`, `<`, `<=`, `>`, `>=`) of two
    /// captured variables or constants (`n - 1`, `i + 1`, `n < 2` as
    /// arguments or attribute values). Once both operands are evaluated
    /// integers, nothing such a body does evaluates anything else, and it
    /// fails only on overflow, so its value can be taken without making
    /// the thunk ([`Op::MakeArithThunk`]); `/` is left out (division by
    /// zero).
    pub fn arith_path(&self) -> Option<(ArithOperand, ArithOperand, Op)> {
        let code = &*self.chunk.code;
        let (a, rest) = arith_operand(code)?;
        let (b, rest) = arith_operand(rest)?;
        let op = match rest {
            [op, Op::Force, Op::Return] | [op, Op::Return] => *op,
            _ => return None,
        };
        matches!(
            op,
            Op::Add | Op::Sub | Op::Mul | Op::Less | Op::LessEq | Op::More | Op::MoreEq
        )
        .then_some((a, b, op))
    }

    /// Whether [`Lambda::arith_path`] accepts this body.
    pub fn is_arith_path(&self) -> bool {
        self.arith_path().is_some()
    }
}

/// The operand at the start of `code`, as a forced captured variable or a
/// constant, and the code after it.
fn arith_operand(code: &[Op]) -> Option<(ArithOperand, &[Op])> {
    match code {
        [Op::ForceUpvalue(r), rest @ ..] | [Op::GetUpvalue(r), Op::Force, rest @ ..] => {
            Some((ArithOperand::Upvalue(*r), rest))
        }
        [Op::Constant(k), rest @ ..] => Some((ArithOperand::Constant(*k), rest)),
        _ => None,
    }
}

/// One operand of a body [`Lambda::is_arith_path`] accepts.
#[derive(Debug, Clone, Copy)]
pub enum ArithOperand {
    /// A captured variable.
    Upvalue(UpvalueRef),
    /// `constants[i]`.
    Constant(u32),
}

/// A compiled function body or thunk body.
pub struct Lambda {
    /// Whether frames of it have an argument in slot 0 (functions).
    pub takes_argument: bool,
    /// The code: compiled, or, loaded from the compiled-file cache,
    /// decoded when first read (see [`LazyChunk`]).
    pub chunk: LazyChunk,
    /// The values a closure or thunk of it holds itself (read at depth 0),
    /// and where each comes from when it is made.
    pub upvalues: Box<[UpvalueSource]>,
    /// Whether a closure or thunk of it holds the environment it was made
    /// in, for its reads at depth 1 and up: the making closure itself, or
    /// for code made by a thunk's code, the environment that thunk holds.
    pub captures_env: bool,
    /// Name for traces: `f` in `f = x: ...`, or for a thunk the attribute
    /// whose value it is. A [`NixString`], so that lambdas loaded from the
    /// compiled-file cache share it with the attribute names of the file.
    pub name: Option<NixString>,
    /// Source span of the whole lambda or thunk expression.
    pub span: Span,
    /// Formals, for `functionArgs` and error messages.
    pub formals: Option<Rc<Formals>>,
    /// Whether any upvalue is deferred.
    pub has_deferred: bool,
}

// Compiled code is kept for as long as closures of it live: a million
// lambdas for a walk over nixpkgs. Keep it compact.
const _: () = assert!(std::mem::size_of::<Lambda>() <= 144);
