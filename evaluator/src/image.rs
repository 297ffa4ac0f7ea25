//! Compiled-file images: a file's compiled [`Lambda`] tree as bytes, and back.
//!
//! This is what the compiled-file cache ([`crate::compiler::cache`]) stores,
//! so that an unchanged file is neither parsed nor compiled again. An image
//! is position-independent: source offsets are kept relative to the file's
//! first byte and rebased onto wherever the file lands in this evaluation's
//! [`crate::source::SourceMap`], so errors and `unsafeGetAttrPos` point where
//! a fresh compile would. Constants that are globals' values (`map`,
//! `__currentTime`, `builtins`) are stored by name and looked up in this
//! evaluation's global scope, so nothing of one evaluation's state is
//! frozen into the image.
//!
//! The layout is hand-written (LEB128 integers over one byte buffer, every
//! distinct string once in a table up front, so loading makes one
//! [`NixString`] per distinct string of the file and shares it, then the
//! globals the file names, then its lambda). It carries no version of its
//! own: the cache key covers the build that wrote it. Each lambda is its
//! header (flags, name, span, captures, formals) and then its chunk behind
//! the chunk's length, nested lambdas inside the chunk: loading a file
//! decodes its tables and its own lambda's header only, and each chunk is
//! decoded when first read ([`crate::bytecode::LazyChunk`],
//! [`PendingChunk`]), most of a nixpkgs file's never. Decoding checks
//! bounds and every table index, jump target and environment reference an
//! instruction uses, so a damaged image is an error, never a panic or a
//! wrong read in the VM: at load for the tables, the globals and the
//! lengths, else when the damaged chunk is first read (see [`decode`]).

use crate::bytecode::{
    AttrNames, Chunk, ChunkBuilder, Formals, Lambda, LazyChunk, Op, UpvalueRef, UpvalueSource,
};
use crate::compiler::{GlobalUses, Globals};
use crate::source::{SourceFile, Span};
use crate::value::{NixAttrs, NixString, Value};
use rustc_hash::FxHashMap;
use std::cell::OnceCell;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;

/// Lambdas nested deeper than this are not imaged, nor decoded: the
/// encoder recurses once per level, and a decoded tree is dropped
/// recursively: a damaged image must not lead to a deeper one.
const MAX_DEPTH: usize = 10_000;

/// Why a compiled file cannot be imaged; it is then simply not cached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A constant that has no image (a string with context, a function
    /// that is not a global, ...).
    #[error("constant of kind {0} cannot be stored")]
    Constant(&'static str),
    /// A source offset outside the file being imaged.
    #[error("source offset {0} lies outside the file")]
    Offset(u32),
    /// Lambdas nested deeper than [`MAX_DEPTH`].
    #[error("lambdas nested too deeply")]
    TooDeep,
}

/// Why bytes are not a valid image; the file is then compiled afresh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end in the middle of an item.
    #[error("image truncated")]
    Truncated,
    /// Bytes remain after the image.
    #[error("trailing bytes after the image")]
    Trailing,
    /// An item that no encoder writes.
    #[error("malformed image: {0}")]
    Malformed(&'static str),
    /// A global the image refers to is not in this evaluation's scope.
    #[error("unknown global '{0}'")]
    UnknownGlobal(String),
}

/// The image of `lambda`, compiled from `file`; `uses` says which of its
/// constants are globals' values (from [`crate::compiler::compile_recording`]).
pub fn encode(
    lambda: &Lambda,
    file: &SourceFile,
    uses: &GlobalUses,
) -> Result<Vec<u8>, EncodeError> {
    let mut enc = Encoder {
        base: file.base,
        len: file.len(),
        uses,
        strings: FxHashMap::default(),
        table: Vec::new(),
        globals: FxHashMap::default(),
        global_names: Vec::new(),
        out: Vec::with_capacity(4096),
    };
    enc.lambda(lambda, 0)?;
    let body = std::mem::take(&mut enc.out);
    for name in std::mem::take(&mut enc.global_names) {
        enc.string(name);
    }
    let globals = std::mem::take(&mut enc.out);
    let mut image = Vec::with_capacity(body.len() + enc.table.len() * 8 + 16);
    put_u64(&mut image, enc.table.len() as u64);
    for s in &enc.table {
        put_u64(&mut image, s.len() as u64);
        image.extend_from_slice(s);
    }
    put_u64(&mut image, enc.globals.len() as u64);
    image.extend_from_slice(&globals);
    image.extend_from_slice(&body);
    Ok(image)
}

/// The lambda an image describes (the bytes of `entry` from `start` on),
/// its spans rebased onto `file` and its globals taken from `globals`.
///
/// Only the string table, the globals the image names and the file's own
/// lambda's header are decoded here: each chunk is decoded when first read
/// ([`crate::bytecode::LazyChunk`]), with every check it had, and the
/// image stays with the lambdas until then. A chunk that fails those
/// checks (the entry's checksum passed, so this takes a bug or a forged
/// entry) becomes code raising an error, and `on_damage` is called, once:
/// the cache removes the entry.
pub fn decode(
    entry: Vec<u8>,
    start: usize,
    file: &SourceFile,
    globals: &Globals,
    on_damage: Option<Box<dyn Fn()>>,
) -> Result<Rc<Lambda>, DecodeError> {
    let (base, end) = (file.base, file.base + file.len());
    let image = entry.get(start..).ok_or(DecodeError::Truncated)?;
    let empty = Strings::default();
    let mut d = Decoder::new(image, base, end, &empty, &[]);
    let n = d.len()?;
    let mut table = Vec::with_capacity(n);
    for _ in 0..n {
        let len = d.len()?;
        let from = d.pos;
        d.take(len)?;
        let (Ok(from), Ok(len)) = (u32::try_from(from), u32::try_from(len)) else {
            return Err(DecodeError::Malformed("image too large"));
        };
        table.push(LazyString {
            interned: OnceCell::new(),
            from,
            len,
        });
    }
    let strings = Strings(table.into_boxed_slice());
    let n = d.len()?;
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        let i = d.u64()?;
        let s = strings
            .0
            .get(i as usize)
            .ok_or(DecodeError::Malformed("string index"))?;
        let name = std::str::from_utf8(s.bytes(image))
            .map_err(|_| DecodeError::Malformed("global name not UTF-8"))?;
        let v = globals
            .get(name)
            .cloned()
            .ok_or_else(|| DecodeError::UnknownGlobal(name.to_string()))?;
        values.push(v);
    }
    let pos = d.pos;
    let mut d = Decoder::new(image, base, end, &strings, &values);
    d.pos = pos;
    let header = d.header(0, &[], false)?;
    let body = d.body()?;
    if body.1 != image.len() {
        return Err(DecodeError::Trailing);
    }
    let image = Rc::new(FileImage {
        entry: entry.into_boxed_slice(),
        start,
        strings,
        globals: values.into_boxed_slice(),
        abort: globals.get("abort").cloned(),
        on_damage: std::cell::Cell::new(on_damage),
        base,
        end,
    });
    Ok(Rc::new(header.lambda(&image, body)))
}

/// A captured variable's reference, if code that reads environments of
/// the sizes `envs` (see [`Tables::envs`]) has it.
fn upvalue_ref(index: u32, depth: u32, envs: &[u32]) -> Result<UpvalueRef, DecodeError> {
    match envs.get(depth as usize) {
        Some(&n) if index < n => Ok(UpvalueRef { depth, index }),
        _ => Err(DecodeError::Malformed("upvalue reference")),
    }
}

fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

// Value tags.
const V_NULL: u8 = 0;
const V_TRUE: u8 = 1;
const V_FALSE: u8 = 2;
const V_INT: u8 = 3;
const V_FLOAT: u8 = 4;
const V_STRING: u8 = 5;
const V_PATH: u8 = 6;
const V_ATTRS: u8 = 7;
const V_GLOBAL: u8 = 8;

// Lambda flags.
const L_TAKES_ARGUMENT: u8 = 1;
const L_HAS_DEFERRED: u8 = 2;
const L_NAMED: u8 = 4;
/// The lambda's formals follow its upvalues.
const L_FORMALS: u8 = 8;
/// A closure or thunk of it holds the environment it is made in.
const L_CAPTURES_ENV: u8 = 16;
/// Every flag.
const L_ALL: u8 = 31;

// Entries of a chunk's formals table.
/// The formals of the chunk's own lambda (in its header).
const F_OWN: u8 = 0;
/// Formals that follow.
const F_INLINE: u8 = 1;

struct Encoder<'a> {
    base: u32,
    len: u32,
    uses: &'a GlobalUses,
    strings: FxHashMap<&'a [u8], u64>,
    table: Vec<&'a [u8]>,
    /// The globals the image names, by name: their index in `global_names`.
    globals: FxHashMap<&'a [u8], u64>,
    global_names: Vec<&'a [u8]>,
    out: Vec<u8>,
}

impl<'a> Encoder<'a> {
    fn u(&mut self, v: u64) {
        put_u64(&mut self.out, v);
    }

    fn string(&mut self, s: &'a [u8]) {
        let next = self.table.len() as u64;
        let i = *self.strings.entry(s).or_insert(next);
        if i == next {
            self.table.push(s);
        }
        self.u(i);
    }

    fn global(&mut self, name: &'a [u8]) {
        let next = self.global_names.len() as u64;
        let i = *self.globals.entry(name).or_insert(next);
        if i == next {
            self.global_names.push(name);
        }
        self.u(i);
    }

    fn offset(&mut self, at: u32) -> Result<(), EncodeError> {
        match at.checked_sub(self.base).filter(|r| *r <= self.len) {
            Some(r) => {
                self.u(r as u64);
                Ok(())
            }
            None => Err(EncodeError::Offset(at)),
        }
    }

    fn span(&mut self, s: Span) -> Result<(), EncodeError> {
        self.offset(s.start)?;
        let len = s
            .end
            .checked_sub(s.start)
            .ok_or(EncodeError::Offset(s.end))?;
        self.u(len as u64);
        Ok(())
    }

    fn lambda(&mut self, l: &'a Lambda, depth: usize) -> Result<(), EncodeError> {
        if depth > MAX_DEPTH {
            return Err(EncodeError::TooDeep);
        }
        let mut flags = 0;
        if l.takes_argument {
            flags |= L_TAKES_ARGUMENT;
        }
        if l.has_deferred {
            flags |= L_HAS_DEFERRED;
        }
        if l.captures_env {
            flags |= L_CAPTURES_ENV;
        }
        if l.name.is_some() {
            flags |= L_NAMED;
        }
        if l.formals.is_some() {
            flags |= L_FORMALS;
        }
        self.out.push(flags);
        if let Some(name) = &l.name {
            self.string(name.as_bytes());
        }
        self.span(l.span)?;
        self.u(l.upvalues.len() as u64);
        for u in &l.upvalues {
            let v = match *u {
                UpvalueSource::Local(i) => (i as u64) << 2,
                UpvalueSource::Upvalue(r) => ((r.index as u64) << 2) | 1,
                UpvalueSource::Deferred(i) => ((i as u64) << 2) | 2,
            };
            self.u(v);
            if let UpvalueSource::Upvalue(r) = *u {
                self.u(r.depth as u64);
            }
        }
        if let Some(f) = &l.formals {
            self.formals(f)?;
        }
        let globals = self
            .uses
            .get(&(l as *const Lambda))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // The chunk after its length, so that decoding the lambda can
        // leave it for later (see `PendingChunk`).
        let outer = std::mem::take(&mut self.out);
        let chunk = self.chunk(&l.chunk, l.formals.as_ref(), globals, depth);
        let body = std::mem::replace(&mut self.out, outer);
        chunk?;
        self.u(body.len() as u64);
        self.out.extend_from_slice(&body);
        Ok(())
    }

    fn chunk(
        &mut self,
        c: &'a Chunk,
        own_formals: Option<&Rc<Formals>>,
        globals: &'a [(u32, Box<str>)],
        depth: usize,
    ) -> Result<(), EncodeError> {
        self.u(c.constants.len() as u64);
        // In constant order (as the compiler notes them), walked once: a
        // chunk like all-packages.nix's has thousands of both.
        let mut globals: Vec<&(u32, Box<str>)> = globals.iter().collect();
        globals.sort_unstable_by_key(|(k, _)| *k);
        let mut globals = globals.into_iter().peekable();
        for (i, v) in c.constants.iter().enumerate() {
            match globals.next_if(|(k, _)| *k as usize == i) {
                Some((_, name)) => {
                    self.out.push(V_GLOBAL);
                    self.global(name.as_bytes());
                }
                None => self.value(v, 0)?,
            }
        }
        self.u(c.lambdas.len() as u64);
        for l in c.lambdas.iter() {
            self.lambda(l, depth + 1)?;
        }
        self.u(c.names.len() as u64);
        for (names, positions) in c.names.iter() {
            self.u(names.len() as u64);
            for n in names.iter() {
                self.string(n.as_bytes());
            }
            for p in positions.iter() {
                self.offset(*p)?;
            }
        }
        self.u(c.formals.len() as u64);
        for f in c.formals.iter() {
            // The compiler puts a lambda's formals in its own chunk's
            // table too; the lambda's header has them.
            if own_formals.is_some_and(|o| Rc::ptr_eq(o, f)) {
                self.out.push(F_OWN);
            } else {
                self.out.push(F_INLINE);
                self.formals(f)?;
            }
        }
        self.u(c.code.len() as u64);
        for op in c.code.iter() {
            self.op(*op);
        }
        // Spans as deltas from the previous instruction's start: most
        // instructions sit close together, so most deltas fit one byte.
        let mut prev = self.base as i64;
        for &at in c.spans.iter() {
            if at < self.base || at - self.base > self.len {
                return Err(EncodeError::Offset(at));
            }
            let delta = at as i64 - prev;
            self.u(((delta << 1) ^ (delta >> 63)) as u64);
            prev = at as i64;
        }
        if c.spans.len() != c.code.len() {
            return Err(EncodeError::Constant(
                "chunk without a span per instruction",
            ));
        }
        Ok(())
    }

    fn formals(&mut self, f: &'a Formals) -> Result<(), EncodeError> {
        self.u(f.entries.len() as u64);
        for (name, default) in &f.entries {
            self.string(name.as_bytes());
            self.out.push(*default as u8);
        }
        for p in f.positions.iter() {
            self.offset(*p)?;
        }
        self.out.push(f.ellipsis as u8);
        self.span(f.span)
    }

    fn value(&mut self, v: &'a Value, depth: usize) -> Result<(), EncodeError> {
        match v {
            Value::Null => self.out.push(V_NULL),
            Value::Bool(true) => self.out.push(V_TRUE),
            Value::Bool(false) => self.out.push(V_FALSE),
            Value::Int(i) => {
                self.out.push(V_INT);
                self.u(((i << 1) ^ (i >> 63)) as u64);
            }
            Value::Float(f) => {
                self.out.push(V_FLOAT);
                self.out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::String(s) if !s.has_context() => {
                self.out.push(V_STRING);
                self.string(s.as_bytes());
            }
            Value::String(_) => return Err(EncodeError::Constant("string with context")),
            Value::Path(p) => {
                self.out.push(V_PATH);
                self.string(p.as_os_str().as_bytes());
            }
            // `__curPos`: a set of plain values. Sets whose attributes
            // carry definition positions are not constants any compile
            // makes, and are refused rather than stored without them.
            Value::Attrs(a)
                if depth < 8 && a.keys().all(|k| a.position(k.as_bytes()).is_none()) =>
            {
                self.out.push(V_ATTRS);
                self.u(a.len() as u64);
                for (k, v) in a.iter() {
                    self.string(k.as_bytes());
                    self.value(v, depth + 1)?;
                }
            }
            Value::Attrs(_) => return Err(EncodeError::Constant("set")),
            Value::List(_) => return Err(EncodeError::Constant("list")),
            Value::Closure(_) => return Err(EncodeError::Constant("function")),
            Value::Builtin(_) => return Err(EncodeError::Constant("builtin")),
            Value::Thunk(_) => return Err(EncodeError::Constant("thunk")),
        }
        Ok(())
    }

    fn op(&mut self, op: Op) {
        let (tag, a, b): (u8, Option<u32>, Option<u32>) = match op {
            Op::Constant(i) => (0, Some(i), None),
            Op::Pop => (1, None, None),
            Op::GetLocal(i) => (2, Some(i), None),
            Op::GetUpvalue(r) => (3, Some(r.index), Some(r.depth)),
            Op::Force => (4, None, None),
            Op::MakeClosure(i) => (5, Some(i), None),
            Op::MakeThunk(i) => (6, Some(i), None),
            Op::Finalise(i) => (7, Some(i), None),
            Op::Call => (8, None, None),
            Op::Return => (9, None, None),
            Op::Jump(t) => (10, Some(t), None),
            Op::JumpIfFalse(t) => (11, Some(t), None),
            Op::JumpIfFalseKeep(t) => (12, Some(t), None),
            Op::JumpIfTrueKeep(t) => (13, Some(t), None),
            Op::AssertBool => (14, None, None),
            Op::Not => (15, None, None),
            Op::Negate => (16, None, None),
            Op::Add => (17, None, None),
            Op::Sub => (18, None, None),
            Op::Mul => (19, None, None),
            Op::Div => (20, None, None),
            Op::Less => (21, None, None),
            Op::LessEq => (22, None, None),
            Op::More => (23, None, None),
            Op::MoreEq => (24, None, None),
            Op::Equal => (25, None, None),
            Op::NotEqual => (26, None, None),
            Op::Concat => (27, None, None),
            Op::Update => (28, None, None),
            Op::Attrs(i) => (29, Some(i), None),
            Op::AttrsDyn => (30, None, None),
            Op::Select(i) => (31, Some(i), None),
            Op::SelectOr(i, t) => (32, Some(i), Some(t)),
            Op::SelectDyn => (33, None, None),
            Op::SelectDynOr(t) => (34, Some(t), None),
            Op::HasAttrStep(i, t) => (35, Some(i), Some(t)),
            Op::HasAttrStepDyn(t) => (36, Some(t), None),
            Op::HasAttrEnd => (37, None, None),
            Op::List(n) => (38, Some(n), None),
            Op::Interpolate(n) => (39, Some(n), None),
            Op::InterpolatePath(n) => (40, Some(n), None),
            Op::ResolveWith(i, n) => (41, Some(i), Some(n)),
            Op::ScopeEnd(n) => (42, Some(n), None),
            Op::AssertFail(i) => (43, Some(i), None),
            Op::ValidateFormals(i) => (44, Some(i), None),
            Op::CallN(n) => (45, Some(n), None),
            Op::MakeSelectThunk(i) => (46, Some(i), None),
            Op::ForceUpvalue(r) => (47, Some(r.index), Some(r.depth)),
            Op::MakeArithThunk(i) => (48, Some(i), None),
        };
        self.out.push(tag);
        for x in [a, b].into_iter().flatten() {
            self.u(x as u64);
        }
    }
}

/// A file's image as the lambdas loaded from it keep it, until the last
/// of them is dropped: what decoding their chunks reads.
struct FileImage {
    /// The cache entry the image was read from.
    entry: Box<[u8]>,
    /// Where the image starts in `entry`.
    start: usize,
    /// The image's string table.
    strings: Strings,
    /// The values of the globals the image names, in its order.
    globals: Box<[Value]>,
    /// `abort`, for the code standing in for a damaged chunk.
    abort: Option<Value>,
    /// Called (and taken) when a chunk fails to decode.
    on_damage: std::cell::Cell<Option<Box<dyn Fn()>>>,
    /// Where the file lies in the source map.
    base: u32,
    end: u32,
}

/// A lambda's chunk not decoded yet: where its bytes lie in the file's
/// image and what checking them needs. Decoded by
/// [`crate::bytecode::LazyChunk`] when first read.
pub struct PendingChunk {
    image: Rc<FileImage>,
    /// Where the chunk's bytes start and end in the image.
    at: usize,
    end: usize,
    /// How deeply its lambda is nested.
    depth: u32,
    /// The sizes of the environments its code reads ([`Tables::envs`]).
    envs: Box<[u32]>,
    /// Whether it is the code of a function (else of a thunk).
    closure: bool,
    /// Its lambda's formals, which its formals table shares.
    formals: Option<Rc<Formals>>,
}

impl PendingChunk {
    /// The chunk, checked as [`decode`] once checked the whole image; if a
    /// check fails, code raising an error that says so.
    pub(crate) fn decode(&self) -> Chunk {
        let image = &*self.image;
        let bytes = &image.entry[image.start..];
        let mut d = Decoder::new(bytes, image.base, image.end, &image.strings, &image.globals);
        d.pos = self.at;
        let context = Context {
            envs: &self.envs,
            closure: self.closure,
            formals: self.formals.as_ref(),
            depth: self.depth as usize,
            end: self.end,
            image: &self.image,
        };
        match d.chunk(&context) {
            Ok(chunk) => chunk,
            Err(e) => {
                if let Some(f) = image.on_damage.take() {
                    f();
                }
                damaged_chunk(e, image.base, image.abort.clone())
            }
        }
    }
}

/// Code raising the error of a chunk that failed to decode: `abort` with
/// a message saying what happened, not catchable by `tryEval` (a damaged
/// cache must not pass for a failing package), or, where there is no
/// `abort` (tests' global scopes), a failed assertion.
fn damaged_chunk(e: DecodeError, at: u32, abort: Option<Value>) -> Chunk {
    let message = Value::string(format!(
        "the compiled-file cache entry of this file is damaged ({e}); \
         it has been removed, evaluate again"
    ));
    let (code, constants) = match abort {
        Some(abort) => (
            vec![Op::Constant(0), Op::Constant(1), Op::Call, Op::Return],
            vec![abort, message],
        ),
        None => (vec![Op::AssertFail(0)], vec![message]),
    };
    ChunkBuilder {
        spans: vec![at; code.len()],
        code,
        constants,
        ..ChunkBuilder::default()
    }
    .finish()
}

/// An image's string table: each string made (interned) when a decoded
/// part of the image first uses it.
#[derive(Default)]
struct Strings(Box<[LazyString]>);

/// A string of the table: where it lies in the image, and the string once
/// made.
struct LazyString {
    interned: OnceCell<NixString>,
    from: u32,
    len: u32,
}

impl LazyString {
    /// Its bytes in `image` (the image `decode` found it in).
    fn bytes<'i>(&self, image: &'i [u8]) -> &'i [u8] {
        let from = self.from as usize;
        &image[from..from + self.len as usize]
    }
}

struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: u32,
    end: u32,
    strings: &'a Strings,
    globals: &'a [Value],
}

/// How many entries the tables of the chunk being decoded have, for
/// checking the instructions' operands.
struct Tables<'e> {
    constants: usize,
    lambdas: usize,
    names: usize,
    formals: usize,
    /// How many values each environment the code reads holds: `[0]` the
    /// ones its closure or thunk holds itself, `[d]` the ones `d`
    /// environments up (docs/evaluator.md, "Captured variables").
    envs: &'e [u32],
    code: usize,
}

/// What decoding a chunk needs to know of its lambda.
struct Context<'c> {
    /// See [`Tables::envs`].
    envs: &'c [u32],
    /// Whether the chunk is a function's code (else a thunk's).
    closure: bool,
    /// Its lambda's formals.
    formals: Option<&'c Rc<Formals>>,
    /// How deeply its lambda is nested (bounded by [`MAX_DEPTH`]).
    depth: usize,
    /// Where its bytes end.
    end: usize,
    /// The image: what the nested lambdas keep.
    image: &'c Rc<FileImage>,
}

/// A lambda's header: everything but its chunk.
struct Header {
    /// How deeply the lambda is nested.
    depth: u32,
    flags: u8,
    name: Option<NixString>,
    span: Span,
    upvalues: Box<[UpvalueSource]>,
    formals: Option<Rc<Formals>>,
    /// See [`Tables::envs`].
    envs: Box<[u32]>,
}

impl Header {
    fn takes_argument(&self) -> bool {
        self.flags & L_TAKES_ARGUMENT != 0
    }

    /// The lambda, its chunk at `at` in `image`, decoded later.
    fn lambda(self, image: &Rc<FileImage>, (at, end): (usize, usize)) -> Lambda {
        Lambda {
            takes_argument: self.takes_argument(),
            chunk: LazyChunk::pending(PendingChunk {
                image: Rc::clone(image),
                at,
                end,
                depth: self.depth,
                envs: self.envs,
                closure: self.flags & L_TAKES_ARGUMENT != 0,
                formals: self.formals.clone(),
            }),
            upvalues: self.upvalues,
            captures_env: self.flags & L_CAPTURES_ENV != 0,
            name: self.name,
            span: self.span,
            formals: self.formals,
            has_deferred: self.flags & L_HAS_DEFERRED != 0,
        }
    }
}

type DResult<T> = Result<T, DecodeError>;

impl<'a> Decoder<'a> {
    fn new(
        bytes: &'a [u8],
        base: u32,
        end: u32,
        strings: &'a Strings,
        globals: &'a [Value],
    ) -> Self {
        Decoder {
            bytes,
            pos: 0,
            base,
            end,
            strings,
            globals,
        }
    }

    fn byte(&mut self) -> DResult<u8> {
        let b = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// A LEB128 integer. Most are below 128 (table indices, counts, span
    /// lengths): one byte, taken without the loop.
    #[inline]
    fn u64(&mut self) -> DResult<u64> {
        match self.bytes.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(b as u64)
            }
            _ => self.u64_long(),
        }
    }

    #[inline(never)]
    fn u64_long(&mut self) -> DResult<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(DecodeError::Malformed("integer overflow"));
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError::Malformed("integer overflow"));
            }
        }
    }

    fn u32(&mut self) -> DResult<u32> {
        u32::try_from(self.u64()?).map_err(|_| DecodeError::Malformed("index overflow"))
    }

    /// A count of items still to come: each takes at least a byte, so a
    /// count larger than what remains is damage (and no huge allocation).
    fn len(&mut self) -> DResult<usize> {
        let n = self.u64()?;
        if n > (self.bytes.len() - self.pos) as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(n as usize)
    }

    fn take(&mut self, n: usize) -> DResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn string(&mut self) -> DResult<NixString> {
        let i = self.u64()?;
        let s = self
            .strings
            .0
            .get(i as usize)
            .ok_or(DecodeError::Malformed("string index"))?;
        let bytes = self.bytes;
        Ok(s.interned
            .get_or_init(|| NixString::interned(s.bytes(bytes)))
            .clone())
    }

    fn offset(&mut self) -> DResult<u32> {
        let r = self.u32()?;
        match self.base.checked_add(r).filter(|o| *o <= self.end) {
            Some(o) => Ok(o),
            None => Err(DecodeError::Malformed("offset outside the file")),
        }
    }

    fn span(&mut self) -> DResult<Span> {
        let start = self.offset()?;
        let len = self.u32()?;
        let end = start
            .checked_add(len)
            .filter(|e| *e <= self.end)
            .ok_or(DecodeError::Malformed("span outside the file"))?;
        Ok(Span::new(start, end))
    }

    /// The header of a lambda made by code that reads environments of the
    /// sizes `maker` (see [`Tables::envs`]), the code of a function if
    /// `maker_closure` (else of a thunk, or nothing: the file's own
    /// lambda).
    fn header(&mut self, depth: usize, maker: &[u32], maker_closure: bool) -> DResult<Header> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::Malformed("lambdas nested too deeply"));
        }
        let flags = self.byte()?;
        if flags & !L_ALL != 0 {
            return Err(DecodeError::Malformed("lambda flags"));
        }
        let name = if flags & L_NAMED != 0 {
            Some(self.string()?)
        } else {
            None
        };
        let span = self.span()?;
        let n = self.len()?;
        let mut upvalues = Vec::with_capacity(n);
        for _ in 0..n {
            let v = self.u64()?;
            let i = u32::try_from(v >> 2).map_err(|_| DecodeError::Malformed("upvalue"))?;
            upvalues.push(match v & 3 {
                0 => UpvalueSource::Local(i),
                1 => UpvalueSource::Upvalue(upvalue_ref(i, self.u32()?, maker)?),
                2 => UpvalueSource::Deferred(i),
                _ => return Err(DecodeError::Malformed("upvalue kind")),
            });
        }
        let formals = if flags & L_FORMALS != 0 {
            Some(Rc::new(self.formals()?))
        } else {
            None
        };
        // What its code reads: its own values, then the environment it
        // shares: the making closure, or what a making thunk shares.
        let own = u32::try_from(upvalues.len()).map_err(|_| DecodeError::Malformed("upvalues"))?;
        let envs = if flags & L_CAPTURES_ENV != 0 {
            let shared = if maker_closure {
                maker
            } else {
                maker.get(1..).unwrap_or_default()
            };
            if shared.is_empty() {
                return Err(DecodeError::Malformed(
                    "environment captured where there is none",
                ));
            }
            let mut envs = Vec::with_capacity(shared.len() + 1);
            envs.push(own);
            envs.extend_from_slice(shared);
            envs.into_boxed_slice()
        } else {
            Box::new([own])
        };
        Ok(Header {
            depth: depth as u32,
            flags,
            name,
            span,
            upvalues: upvalues.into_boxed_slice(),
            formals,
            envs,
        })
    }

    /// The length of the chunk that follows a lambda's header: where it
    /// starts and ends.
    fn body(&mut self) -> DResult<(usize, usize)> {
        let n = self.len()?;
        Ok((self.pos, self.pos + n))
    }

    /// A chunk, its nested lambdas' chunks left for later.
    fn chunk(&mut self, cx: &Context) -> DResult<Chunk> {
        let n = self.len()?;
        let mut constants = Vec::with_capacity(n);
        for _ in 0..n {
            constants.push(self.value(0)?);
        }
        let n = self.len()?;
        let mut lambdas = Vec::with_capacity(n);
        for _ in 0..n {
            let header = self.header(cx.depth + 1, cx.envs, cx.closure)?;
            let body = self.body()?;
            self.pos = body.1;
            lambdas.push(Rc::new(header.lambda(cx.image, body)));
        }
        let n = self.len()?;
        let mut names: Vec<AttrNames> = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.len()?;
            let mut list = Vec::with_capacity(k);
            for _ in 0..k {
                list.push(self.string()?);
            }
            let mut positions = Vec::with_capacity(k);
            for _ in 0..k {
                positions.push(self.offset()?);
            }
            names.push((list.into(), positions.into()));
        }
        let n = self.len()?;
        let mut formals = Vec::with_capacity(n);
        for _ in 0..n {
            formals.push(match self.byte()? {
                F_OWN => cx
                    .formals
                    .cloned()
                    .ok_or(DecodeError::Malformed("own formals of a lambda without"))?,
                F_INLINE => Rc::new(self.formals()?),
                _ => return Err(DecodeError::Malformed("formals entry")),
            });
        }
        let n = self.len()?;
        let tables = Tables {
            constants: constants.len(),
            lambdas: lambdas.len(),
            names: names.len(),
            formals: formals.len(),
            envs: cx.envs,
            code: n,
        };
        let mut code = Vec::with_capacity(n);
        for _ in 0..n {
            code.push(self.op(&tables)?);
        }
        let mut spans = Vec::with_capacity(n);
        let mut prev = self.base as i64;
        for _ in 0..n {
            let z = self.u64()?;
            let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
            let start = prev
                .checked_add(delta)
                .filter(|s| *s >= self.base as i64 && *s <= self.end as i64)
                .ok_or(DecodeError::Malformed("span outside the file"))?;
            prev = start;
            spans.push(start as u32);
        }
        if self.pos != cx.end {
            return Err(DecodeError::Malformed("chunk length"));
        }
        Ok(ChunkBuilder {
            code,
            spans,
            constants,
            lambdas,
            names,
            formals,
        }
        .finish())
    }

    fn formals(&mut self) -> DResult<Formals> {
        let n = self.len()?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let default = match self.byte()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::Malformed("formal default flag")),
            };
            entries.push((name, default));
        }
        let mut positions = Vec::with_capacity(n);
        for _ in 0..n {
            positions.push(self.offset()?);
        }
        let ellipsis = match self.byte()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::Malformed("ellipsis flag")),
        };
        Ok(Formals {
            entries,
            positions: positions.into(),
            ellipsis,
            span: self.span()?,
        })
    }

    fn value(&mut self, depth: usize) -> DResult<Value> {
        Ok(match self.byte()? {
            V_NULL => Value::Null,
            V_TRUE => Value::Bool(true),
            V_FALSE => Value::Bool(false),
            V_INT => {
                let z = self.u64()?;
                Value::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            V_FLOAT => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Float(f64::from_bits(u64::from_le_bytes(a)))
            }
            V_STRING => Value::String(self.string()?),
            V_PATH => {
                let s = self.string()?;
                Value::Path(Rc::new(PathBuf::from(std::ffi::OsStr::from_bytes(
                    s.as_bytes(),
                ))))
            }
            V_ATTRS if depth < 8 => {
                let n = self.len()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.string()?;
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                }
                if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
                    return Err(DecodeError::Malformed("set not sorted"));
                }
                Value::attrs(NixAttrs::from_sorted(entries))
            }
            V_GLOBAL => {
                let i = self.u64()?;
                self.globals
                    .get(i as usize)
                    .cloned()
                    .ok_or(DecodeError::Malformed("global index"))?
            }
            _ => return Err(DecodeError::Malformed("value tag")),
        })
    }

    fn op(&mut self, t: &Tables) -> DResult<Op> {
        let check = |i: u32, len: usize, what: &'static str| {
            if (i as usize) < len {
                Ok(i)
            } else {
                Err(DecodeError::Malformed(what))
            }
        };
        let constant = |d: &mut Self| check(d.u32()?, t.constants, "constant index");
        // Every chunk ends in `Return`, so jump targets lie inside the code.
        let target = |d: &mut Self| check(d.u32()?, t.code, "jump target");
        Ok(match self.byte()? {
            0 => Op::Constant(constant(self)?),
            1 => Op::Pop,
            2 => Op::GetLocal(self.u32()?),
            3 => Op::GetUpvalue(upvalue_ref(self.u32()?, self.u32()?, t.envs)?),
            4 => Op::Force,
            5 => Op::MakeClosure(check(self.u32()?, t.lambdas, "lambda index")?),
            6 => Op::MakeThunk(check(self.u32()?, t.lambdas, "lambda index")?),
            7 => Op::Finalise(self.u32()?),
            8 => Op::Call,
            9 => Op::Return,
            10 => Op::Jump(target(self)?),
            11 => Op::JumpIfFalse(target(self)?),
            12 => Op::JumpIfFalseKeep(target(self)?),
            13 => Op::JumpIfTrueKeep(target(self)?),
            14 => Op::AssertBool,
            15 => Op::Not,
            16 => Op::Negate,
            17 => Op::Add,
            18 => Op::Sub,
            19 => Op::Mul,
            20 => Op::Div,
            21 => Op::Less,
            22 => Op::LessEq,
            23 => Op::More,
            24 => Op::MoreEq,
            25 => Op::Equal,
            26 => Op::NotEqual,
            27 => Op::Concat,
            28 => Op::Update,
            29 => Op::Attrs(check(self.u32()?, t.names, "names index")?),
            30 => Op::AttrsDyn,
            31 => Op::Select(constant(self)?),
            32 => Op::SelectOr(constant(self)?, target(self)?),
            33 => Op::SelectDyn,
            34 => Op::SelectDynOr(target(self)?),
            35 => Op::HasAttrStep(constant(self)?, target(self)?),
            36 => Op::HasAttrStepDyn(target(self)?),
            37 => Op::HasAttrEnd,
            38 => Op::List(self.u32()?),
            39 => Op::Interpolate(self.u32()?),
            40 => Op::InterpolatePath(self.u32()?),
            41 => Op::ResolveWith(constant(self)?, self.u32()?),
            42 => Op::ScopeEnd(self.u32()?),
            43 => Op::AssertFail(constant(self)?),
            44 => Op::ValidateFormals(check(self.u32()?, t.formals, "formals index")?),
            45 => match self.u32()? {
                n @ 2.. => Op::CallN(n),
                _ => return Err(DecodeError::Malformed("argument count")),
            },
            46 => Op::MakeSelectThunk(check(self.u32()?, t.lambdas, "lambda index")?),
            47 => Op::ForceUpvalue(upvalue_ref(self.u32()?, self.u32()?, t.envs)?),
            48 => Op::MakeArithThunk(check(self.u32()?, t.lambdas, "lambda index")?),
            _ => return Err(DecodeError::Malformed("instruction")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiler::{compile, compile_recording, CompileEnv};
    use crate::source::SourceMap;
    use std::fmt::Write;

    /// A file using most of the language: every kind of instruction,
    /// constant, table and span the compiler makes.
    const SOURCE: &str = r#"
{ a, b ? a + 1, ... }@args:
let
  inherit (args) c;
  rec' = rec { x = 1; y = x + 2; z = { inner = y; }; };
  f = { p ? __storeDir, q }: p + q;
  s = "text ${toString a} more\n";
  ind = ''
    indented ${s}
  '';
  fl = 1.5e3 * -2;
  n = -9223372036854775807 - 1;
  paths = [ ./rel/file.nix ../up ~/home.nix /abs/${s}/x ];
  pos = __curPos;
  dyn = { ${s} = 1; "quoted name" = 2; } // { inherit b; };
  sel = rec'.z.inner or null;
  has = rec' ? z.inner && !(rec' ? w);
  w = with rec'; with { y = 0; }; x + y;
  ch = assert a != null; if a < 2 then [ 1 2.0 "s" ] ++ [ null ] else { };
  "é unicode" = "ünï";
  storeLiteral = "/nix/store";
  store = __storeDir;
  calls = f { q = 1; } (f { q = 2; }) c;
  curried = x: y: z: [ a x y (v: [ v z a s ]) ];
in { inherit rec' f s ind fl n paths pos dyn sel has w ch store storeLiteral calls curried; t = true; }
"#;

    fn globals(store_dir: &str) -> Globals {
        let mut g = Globals::default();
        g.insert("true".into(), Value::Bool(true));
        g.insert("false".into(), Value::Bool(false));
        g.insert("null".into(), Value::Null);
        g.insert("toString".into(), Value::attrs(NixAttrs::default()));
        g.insert("__storeDir".into(), Value::string(store_dir));
        g
    }

    fn env(globals: &Globals) -> CompileEnv<'_> {
        CompileEnv {
            globals,
            base_dir: "/src/dir".into(),
            home: Some("/home/u".into()),
            lints: Default::default(),
        }
    }

    fn file(map: &SourceMap, text: &str) -> Rc<SourceFile> {
        map.add(
            "/src/dir/f.nix".into(),
            Some("/src/dir/f.nix".into()),
            text.into(),
        )
    }

    fn parse(text: &str) -> rnix::ast::Expr {
        let parsed = rnix::Root::parse(text);
        assert!(parsed.errors().is_empty(), "{:?}", parsed.errors());
        parsed.tree().expr().expect("an expression")
    }

    /// `image` decoded from behind a header, as the cache has it.
    fn load(image: &[u8], file: &SourceFile, globals: &Globals) -> DResult<Rc<Lambda>> {
        let mut entry = b"head".to_vec();
        entry.extend_from_slice(image);
        decode(entry, 4, file, globals, None)
    }

    /// How many chunks of `l` (decoding them all) are the stand-in for
    /// one that failed to decode.
    fn damaged(l: &Lambda) -> usize {
        let own = l.chunk.constants.iter().any(|c| {
            matches!(c, Value::String(s)
                if s.as_str().is_some_and(|s| s.contains("cache entry of this file is damaged")))
        });
        own as usize + l.chunk.lambdas.iter().map(|l| damaged(l)).sum::<usize>()
    }

    /// Everything a lambda holds, as text.
    fn dump(l: &Lambda, out: &mut String) {
        let _ = writeln!(
            out,
            "lambda {:?} {:?} arg={} deferred={} ups={:?} env={}",
            l.name, l.span, l.takes_argument, l.has_deferred, l.upvalues, l.captures_env
        );
        if let Some(f) = &l.formals {
            dump_formals(f, out);
        }
        let c = &l.chunk;
        for (op, at) in c.code.iter().zip(&c.spans) {
            let _ = writeln!(out, "  {op:?} @ {at}");
        }
        for v in &c.constants {
            out.push_str("  const ");
            dump_value(v, out);
            out.push('\n');
        }
        for (names, positions) in &c.names {
            let _ = writeln!(out, "  names {names:?} {positions:?}");
        }
        for f in &c.formals {
            dump_formals(f, out);
        }
        for l in &c.lambdas {
            dump(l, out);
        }
    }

    fn dump_formals(f: &Formals, out: &mut String) {
        let _ = writeln!(
            out,
            "  formals {:?} {:?} {} {:?}",
            f.entries, f.positions, f.ellipsis, f.span
        );
    }

    fn dump_value(v: &Value, out: &mut String) {
        match v {
            Value::Attrs(a) => {
                out.push_str("{ ");
                for (k, v) in a.iter() {
                    let _ = write!(out, "{k:?} = ");
                    dump_value(v, out);
                    out.push_str("; ");
                }
                out.push('}');
            }
            Value::Float(f) => {
                let _ = write!(out, "float {:x}", f.to_bits());
            }
            v => {
                let _ = write!(out, "{v:?}");
            }
        }
    }

    #[test]
    fn an_image_loads_as_a_fresh_compile_at_another_offset() {
        let g = globals("/nix/store");
        let map = SourceMap::default();
        let _padding = map.add("pad".into(), None, "x".repeat(1000).into());
        let a = file(&map, SOURCE);
        let _more = map.add("pad2".into(), None, "y".repeat(77).into());
        let b = file(&map, SOURCE);
        assert_ne!(a.base, b.base);

        let (lambda_a, uses) = compile_recording(&parse(SOURCE), &a, &env(&g)).unwrap();
        let image = encode(&lambda_a, &a, &uses).unwrap();
        let loaded = load(&image, &b, &g).unwrap();
        let fresh_b = compile(&parse(SOURCE), &b, &env(&g)).unwrap();

        let (mut want, mut got) = (String::new(), String::new());
        dump(&fresh_b, &mut want);
        dump(&loaded, &mut got);
        assert_eq!(got, want);
        // Globals refer to this evaluation's values; the equal literal
        // next to `__storeDir` keeps its own.
        let other = globals("/other/store");
        let loaded = load(&image, &b, &other).unwrap();
        let mut with_other = String::new();
        dump(&loaded, &mut with_other);
        assert_eq!(
            with_other.matches("\"/other/store\"").count(),
            2,
            "{with_other}"
        );
        assert_eq!(with_other.matches("\"/nix/store\"").count(), 1);
        // Encoding is deterministic: the same compile, the same bytes.
        let (again, uses) = compile_recording(&parse(SOURCE), &a, &env(&g)).unwrap();
        assert_eq!(encode(&again, &a, &uses).unwrap(), image);
    }

    #[test]
    fn chunks_are_decoded_when_first_read() {
        let g = globals("/nix/store");
        let map = SourceMap::default();
        let text = "{ used = x: x + 1; unused = y: [ y ]; }";
        let f = file(&map, text);
        let (lambda, uses) = compile_recording(&parse(text), &f, &env(&g)).unwrap();
        let image = encode(&lambda, &f, &uses).unwrap();
        let root = load(&image, &f, &g).unwrap();
        assert!(!root.chunk.is_decoded());
        // Reading the file's code decodes it and its nested lambdas'
        // headers (the two functions), not their code.
        let functions = &root.chunk.lambdas;
        assert!(root.chunk.is_decoded());
        assert_eq!(functions.len(), 2);
        assert!(functions.iter().all(|l| l.takes_argument));
        assert!(functions.iter().all(|l| !l.chunk.is_decoded()));
        assert!(functions[0].chunk.code.len() > 1);
        assert!(functions[0].chunk.is_decoded());
        assert!(!functions[1].chunk.is_decoded());
    }

    #[test]
    fn a_chunk_that_fails_to_decode_is_code_raising_an_error() {
        let mut g = globals("/nix/store");
        let abort = Value::string("stands in for abort");
        g.insert("abort".into(), abort.clone());
        let map = SourceMap::default();
        let text = "{ f = x: x + 1; g = y: y; }";
        let f = file(&map, text);
        let (lambda, uses) = compile_recording(&parse(text), &f, &env(&g)).unwrap();
        let image = encode(&lambda, &f, &uses).unwrap();
        let sound = load(&image, &f, &g).unwrap();
        assert_eq!(damaged(&sound), 0);
        // Some byte flipped in a function's code: the file loads, and
        // that chunk is found damaged when it is read.
        let calls = Rc::new(std::cell::Cell::new(0));
        let found = (0..image.len()).find_map(|i| {
            let mut bad = image.clone();
            bad[i] ^= 0x7f;
            let counter = calls.clone();
            let on_damage = Box::new(move || counter.set(counter.get() + 1));
            let l = decode(bad, 0, &f, &g, Some(on_damage)).ok()?;
            (damaged(&l) > 0).then_some(l)
        });
        let l = found.expect("a flipped byte the load does not see");
        assert_eq!(calls.get(), 1, "the entry is reported damaged once");
        let stand_in = std::iter::once(&l)
            .chain(l.chunk.lambdas.iter())
            .find(|l| damaged(l) == 1 && l.chunk.lambdas.iter().all(|n| damaged(n) == 0))
            .unwrap();
        let c = &stand_in.chunk;
        assert!(matches!(
            &c.code[..],
            [Op::Constant(0), Op::Constant(1), Op::Call, Op::Return]
        ));
        assert!(
            matches!(&c.constants[0], Value::String(s) if s.as_bytes() == b"stands in for abort")
        );
        assert!(c.spans.iter().all(|&s| s == f.base));
    }

    #[test]
    fn a_missing_global_is_an_error() {
        let g = globals("/nix/store");
        let map = SourceMap::default();
        let a = file(&map, SOURCE);
        let (lambda, uses) = compile_recording(&parse(SOURCE), &a, &env(&g)).unwrap();
        let image = encode(&lambda, &a, &uses).unwrap();
        let mut fewer = g.clone();
        fewer.remove("__storeDir");
        assert!(matches!(
            load(&image, &a, &fewer),
            Err(DecodeError::UnknownGlobal(n)) if n == "__storeDir"
        ));
    }

    #[test]
    fn damaged_images_are_errors_not_panics() {
        let g = globals("/nix/store");
        let map = SourceMap::default();
        let a = file(&map, SOURCE);
        let (lambda, uses) = compile_recording(&parse(SOURCE), &a, &env(&g)).unwrap();
        let image = encode(&lambda, &a, &uses).unwrap();
        for cut in 0..image.len() {
            assert!(load(&image[..cut], &a, &g).is_err(), "cut at {cut}");
        }
        let mut longer = image.clone();
        longer.push(0);
        assert_eq!(load(&longer, &a, &g).err(), Some(DecodeError::Trailing));
        // A flipped byte may still decode (the cache's checksum is what
        // refuses those); it must never panic.
        for i in 0..image.len() {
            for bit in [0x01, 0x80, 0xff] {
                let mut bad = image.clone();
                bad[i] ^= bit;
                // Decoding every chunk neither (a damaged one is code
                // raising an error).
                if let Ok(l) = load(&bad, &a, &g) {
                    damaged(&l);
                }
            }
        }
        // A shorter file than the image was made for: spans past its end.
        let short = file(&map, "1");
        assert!(load(&image, &short, &g).is_err());
    }

    #[test]
    fn reads_past_the_environments_are_refused() {
        // `c`'s code reads `a` one environment up (the closure of `b`):
        // decoded without that environment, it would read past the chain.
        let g = globals("/nix/store");
        let map = SourceMap::default();
        let text = "a: b: c: [ a b c ]";
        let f = file(&map, text);
        let (mut root, uses) = compile_recording(&parse(text), &f, &env(&g)).unwrap();
        let image = encode(&root, &f, &uses).unwrap();
        assert!(load(&image, &f, &g).is_ok());
        let mut l = Rc::get_mut(&mut root).unwrap();
        for _ in 0..3 {
            l = Rc::get_mut(&mut l.chunk.lambdas[0]).unwrap();
        }
        assert!(l.captures_env);
        assert!(l
            .chunk
            .code
            .iter()
            .any(|op| matches!(op, Op::GetUpvalue(r) if r.depth == 1)));
        l.captures_env = false;
        let image = encode(&root, &f, &uses).unwrap();
        // Found when that code is first read: it is then code raising an
        // error instead.
        let loaded = load(&image, &f, &g).unwrap();
        assert_eq!(damaged(&loaded), 1);
        let mut l = &loaded;
        for _ in 0..3 {
            l = &l.chunk.lambdas[0];
        }
        assert!(matches!(&l.chunk.code[..], [Op::AssertFail(0)]));
    }

    #[test]
    fn constants_without_an_image_are_refused() {
        let g = globals("/nix/store");
        let map = SourceMap::default();
        let a = file(&map, "1");
        let (mut lambda, uses) = compile_recording(&parse("1"), &a, &env(&g)).unwrap();
        let l = Rc::get_mut(&mut lambda).unwrap();
        l.chunk.constants[0] = Value::list(Vec::new());
        assert_eq!(
            encode(l, &a, &uses).err(),
            Some(EncodeError::Constant("list"))
        );
    }
}
