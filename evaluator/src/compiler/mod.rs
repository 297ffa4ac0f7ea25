//! The bytecode compiler: rnix syntax tree -> [`Lambda`]s.
//!
//! Identifiers are resolved statically: locals by stack slot, variables of
//! enclosing functions and thunks as upvalues, globals as constants; only
//! names found nowhere lexically fall back to the enclosing `with`s at run
//! time. Recursive bindings (`let`, `rec`, formals with defaults) are
//! compiled as docs/evaluator.md ("Recursive bindings") describes: declare every name, push the values
//! (thunks, whose captures of not-yet-pushed siblings are *deferred*), then
//! finalise the deferred captures.

mod bindings;
pub mod cache;
mod lints;
mod scope;

pub use lints::{LintLevel, Lints};

use crate::bytecode::{ChunkBuilder, Formals, Lambda, Op, UpvalueRef, UpvalueSource};
use crate::errors::{Error, ErrorKind};
use crate::path::canon_path;
use crate::source::{SourceFile, Span};
use crate::value::{NixString, Value};
use rnix::ast::{self, AstToken, InterpolPart};
use rowan::ast::AstNode;
use rustc_hash::FxHashMap;
use scope::Scope;
use std::path::PathBuf;
use std::rc::Rc;

/// The global scope: names every file sees (`builtins`, `true`, `map`, ...).
pub type Globals = FxHashMap<String, Value>;

/// What the compiler needs to know about its surroundings.
pub struct CompileEnv<'a> {
    /// The global scope.
    pub globals: &'a Globals,
    /// Directory that relative path literals resolve against.
    pub base_dir: PathBuf,
    /// `$HOME` for `~/` paths.
    pub home: Option<PathBuf>,
    /// Syntax lints to apply.
    pub lints: Lints,
}

struct Ctx {
    chunk: ChunkBuilder,
    /// Index of each context-free string constant already in the chunk, so
    /// that a name used many times (`callPackage`, `lib`, `meta`) is one
    /// constant and one allocation.
    strings: FxHashMap<NixString, u32>,
    scope: Scope,
    /// What a closure or thunk of this code holds itself.
    upvalues: Vec<UpvalueSource>,
    /// Whether this is a thunk's code (else a function's, or a file's
    /// `scopedImport` function): what it makes shares the environment
    /// its thunk holds, not the thunk (docs/evaluator.md, "Captured
    /// variables").
    thunk: bool,
    /// Whether its code (or code it makes) reads the environment it is
    /// made in.
    captures_env: bool,
    /// Code position of the most recent jump target: a `Force` there cannot
    /// be elided, as control may arrive from elsewhere.
    last_label: usize,
    /// Constants that are values of globals, with the global's name: a
    /// compiled-file image refers to them by name (see [`GlobalUses`]).
    globals: Vec<(u32, Box<str>)>,
}

impl Ctx {
    /// A finished context's lambda, its tables without the spare capacity
    /// their vectors grew: compiled code is kept for the whole evaluation
    /// and was a third of hello.drvPath's peak heap.
    fn into_lambda(
        self,
        takes_argument: bool,
        name: Option<String>,
        span: Span,
        formals: Option<Rc<Formals>>,
    ) -> Lambda {
        let upvalues = self.upvalues.into_boxed_slice();
        let has_deferred = upvalues
            .iter()
            .any(|u| matches!(u, UpvalueSource::Deferred(_)));
        Lambda {
            takes_argument,
            chunk: self.chunk.finish().into(),
            upvalues,
            captures_env: self.captures_env,
            name: name.map(NixString::from),
            span,
            formals,
            has_deferred,
        }
    }

    fn new(thunk: bool) -> Self {
        Ctx {
            chunk: ChunkBuilder::default(),
            strings: FxHashMap::default(),
            scope: Scope::default(),
            upvalues: Vec::new(),
            thunk,
            captures_env: false,
            last_label: 0,
            globals: Vec::new(),
        }
    }
}

/// Where an identifier was found.
enum Resolved {
    /// A local of context `ctx` (index into the context stack).
    Local { ctx: usize, slot: u32, init: bool },
    /// A global constant.
    Global(Value),
    /// Must be looked up in the enclosing `with`s at run time.
    With,
}

type CResult<T> = Result<T, Error>;

/// Which constants of which compiled lambdas are values of globals, by the
/// global's name: `__currentTime` or `__storeDir` compile to plain
/// constants, which a compiled-file image must not freeze (see
/// [`cache`]). Keyed by the lambda's address, valid while the tree lives.
pub type GlobalUses = FxHashMap<*const Lambda, Vec<(u32, Box<str>)>>;

/// Compiles one parsed file (or expression) into a zero-argument lambda.
pub fn compile(root: &ast::Expr, file: &Rc<SourceFile>, env: &CompileEnv) -> CResult<Rc<Lambda>> {
    compile_root(root, file, env, None)
}

/// [`compile`], also telling which constants are globals' values (what a
/// compiled-file image needs to refer to them by name).
pub fn compile_recording(
    root: &ast::Expr,
    file: &Rc<SourceFile>,
    env: &CompileEnv,
) -> CResult<(Rc<Lambda>, GlobalUses)> {
    let mut uses = GlobalUses::default();
    let lambda = compile_root(root, file, env, Some(&mut uses))?;
    Ok((lambda, uses))
}

fn compile_root(
    root: &ast::Expr,
    file: &Rc<SourceFile>,
    env: &CompileEnv,
    record: Option<&mut GlobalUses>,
) -> CResult<Rc<Lambda>> {
    let mut c = Compiler {
        env,
        file: file.clone(),
        ctxs: vec![Ctx::new(true)],
        record,
    };
    c.compile_expr(root)?;
    c.emit(Op::Force, root.syntax());
    c.emit(Op::Return, root.syntax());
    let mut ctx = c.ctxs.pop().expect("root context");
    let globals = std::mem::take(&mut ctx.globals);
    let span = c.span_of(root.syntax());
    let lambda = Rc::new(ctx.into_lambda(false, None, span, None));
    c.note_globals(&lambda, globals);
    Ok(lambda)
}

/// Compiles a file for `scopedImport`: a one-argument lambda whose argument
/// is the scope set; its attribute names are lexical variables of the file
/// (shadowing globals), as C++ Nix's static environment makes them.
pub fn compile_scoped(
    root: &ast::Expr,
    file: &Rc<SourceFile>,
    env: &CompileEnv,
    names: &[NixString],
) -> CResult<Rc<Lambda>> {
    let mut c = Compiler {
        env,
        file: file.clone(),
        ctxs: vec![Ctx::new(false)],
        record: None,
    };
    let node = root.syntax();
    c.ctx().scope.stack_depth = 1;
    for name in names {
        let slot = c.depth();
        c.emit(Op::GetLocal(0), node);
        let k = c.constant(Value::String(name.clone()));
        c.emit(Op::Select(k), node);
        let i = c.ctx().scope.declare(Some(name.to_string()), slot, false);
        c.ctx().scope.locals[i].initialised = true;
    }
    c.compile_expr(root)?;
    c.emit(Op::Return, node);
    let ctx = c.ctxs.pop().expect("root context");
    let span = c.span_of(node);
    Ok(Rc::new(ctx.into_lambda(
        true,
        Some("scopedImport".into()),
        span,
        None,
    )))
}

struct Compiler<'a, 'r> {
    env: &'a CompileEnv<'a>,
    file: Rc<SourceFile>,
    ctxs: Vec<Ctx>,
    /// Where to note the globals' constants of each finished lambda, when
    /// the caller wants an image of the result.
    record: Option<&'r mut GlobalUses>,
}

impl Compiler<'_, '_> {
    // ---- emission -------------------------------------------------------

    fn ctx(&mut self) -> &mut Ctx {
        self.ctxs.last_mut().expect("a context")
    }

    fn span_of(&self, node: &rnix::SyntaxNode) -> Span {
        let r = node.text_range();
        Span::new(
            self.file.base + u32::from(r.start()),
            self.file.base + u32::from(r.end()),
        )
    }

    fn error(&self, kind: ErrorKind, node: &rnix::SyntaxNode) -> Error {
        Error::new(kind, Some(self.span_of(node)))
    }

    /// Emits an instruction and applies its stack effect.
    fn emit(&mut self, op: Op, node: &rnix::SyntaxNode) -> usize {
        let span = self.span_of(node);
        self.emit_span(op, span)
    }

    fn emit_span(&mut self, op: Op, span: Span) -> usize {
        if let Op::Force = op {
            if self.top_is_whnf() {
                return self.ctx().chunk.code.len() - 1;
            }
            // A captured variable then `Force` is one instruction, unless
            // a jump lands between them or the two would report different
            // positions.
            let ctx = self.ctx();
            let len = ctx.chunk.code.len();
            if len > 0 && ctx.last_label != len && ctx.chunk.spans[len - 1] == span.start {
                if let Op::GetUpvalue(i) = ctx.chunk.code[len - 1] {
                    ctx.chunk.code[len - 1] = Op::ForceUpvalue(i);
                    return len - 1;
                }
            }
        }
        let effect: i64 = match op {
            Op::Constant(_)
            | Op::GetLocal(_)
            | Op::GetUpvalue(_)
            | Op::ForceUpvalue(_)
            | Op::MakeClosure(_)
            | Op::MakeThunk(_)
            | Op::MakeSelectThunk(_)
            | Op::MakeArithThunk(_) => 1,
            Op::Pop | Op::Call | Op::JumpIfFalse(_) | Op::SelectDyn | Op::SelectDynOr(_) => -1,
            Op::HasAttrStepDyn(_) => -1,
            Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Less
            | Op::LessEq
            | Op::More
            | Op::MoreEq
            | Op::Equal
            | Op::NotEqual
            | Op::Concat
            | Op::Update => -1,
            Op::AttrsDyn => -2,
            Op::Attrs(i) => 1 - self.ctx().chunk.names[i as usize].0.len() as i64,
            Op::CallN(n) => -(n as i64),
            Op::List(n) | Op::Interpolate(n) | Op::InterpolatePath(n) | Op::ResolveWith(_, n) => {
                1 - n as i64
            }
            Op::ScopeEnd(n) => -(n as i64),
            _ => 0,
        };
        let ctx = self.ctx();
        ctx.scope.stack_depth = (ctx.scope.stack_depth as i64 + effect) as u32;
        ctx.chunk.code.push(op);
        ctx.chunk.spans.push(span.start);
        ctx.chunk.code.len() - 1
    }

    /// Whether the value the last instruction left on the stack is surely
    /// not a thunk, so a following `Force` is useless.
    fn top_is_whnf(&mut self) -> bool {
        let ctx = self.ctx();
        let len = ctx.chunk.code.len();
        if len == 0 || ctx.last_label == len {
            return false;
        }
        match ctx.chunk.code[len - 1] {
            Op::Constant(i) => !matches!(ctx.chunk.constants[i as usize], Value::Thunk(_)),
            Op::Force
            | Op::ForceUpvalue(_)
            | Op::MakeClosure(_)
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Less
            | Op::LessEq
            | Op::More
            | Op::MoreEq
            | Op::Equal
            | Op::NotEqual
            | Op::Not
            | Op::Concat
            | Op::Update
            | Op::Attrs(_)
            | Op::List(_)
            | Op::Interpolate(_)
            | Op::InterpolatePath(_)
            | Op::HasAttrEnd
            | Op::AssertBool => true,
            _ => false,
        }
    }

    fn here(&mut self) -> u32 {
        self.ctx().chunk.code.len() as u32
    }

    /// Points the jump at `at` to the current position.
    fn patch_jump(&mut self, at: usize) {
        let target = self.here();
        self.ctx().last_label = target as usize;
        let op = &mut self.ctx().chunk.code[at];
        *op = match *op {
            Op::Jump(_) => Op::Jump(target),
            Op::JumpIfFalse(_) => Op::JumpIfFalse(target),
            Op::JumpIfFalseKeep(_) => Op::JumpIfFalseKeep(target),
            Op::JumpIfTrueKeep(_) => Op::JumpIfTrueKeep(target),
            Op::SelectOr(n, _) => Op::SelectOr(n, target),
            Op::SelectDynOr(_) => Op::SelectDynOr(target),
            Op::HasAttrStep(n, _) => Op::HasAttrStep(n, target),
            Op::HasAttrStepDyn(_) => Op::HasAttrStepDyn(target),
            other => other,
        };
    }

    fn set_depth(&mut self, d: u32) {
        self.ctx().scope.stack_depth = d;
    }

    fn depth(&mut self) -> u32 {
        self.ctx().scope.stack_depth
    }

    fn constant(&mut self, v: Value) -> u32 {
        let ctx = self.ctx();
        if let Value::String(s) = &v {
            if !s.has_context() {
                if let Some(&i) = ctx.strings.get(s) {
                    return i;
                }
                let i = ctx.chunk.constants.len() as u32;
                ctx.strings.insert(s.clone(), i);
                ctx.chunk.constants.push(v);
                return i;
            }
        }
        let c = &mut ctx.chunk.constants;
        c.push(v);
        (c.len() - 1) as u32
    }

    /// A constant that is the value of global `name`: never shared with an
    /// equal literal (`__storeDir` and `"/nix/store"` stay two constants),
    /// so an image can refer to exactly this one by name.
    fn global_constant(&mut self, v: Value, name: &str) -> u32 {
        let ctx = self.ctx();
        ctx.chunk.constants.push(v);
        let i = (ctx.chunk.constants.len() - 1) as u32;
        if self.record.is_some() {
            self.ctx().globals.push((i, name.into()));
        }
        i
    }

    fn note_globals(&mut self, lambda: &Rc<Lambda>, globals: Vec<(u32, Box<str>)>) {
        if let Some(record) = self.record.as_deref_mut() {
            if !globals.is_empty() {
                record.insert(Rc::as_ptr(lambda), globals);
            }
        }
    }

    fn emit_constant(&mut self, v: Value, node: &rnix::SyntaxNode) {
        let i = self.constant(v);
        self.emit(Op::Constant(i), node);
    }

    /// Applies a lint: a warning on stderr or a compile error. The message is
    /// only built when the lint is enabled (path literals are everywhere).
    fn lint(
        &self,
        level: LintLevel,
        msg: impl FnOnce() -> String,
        node: &rnix::SyntaxNode,
    ) -> CResult<()> {
        match level {
            LintLevel::Ignore => Ok(()),
            LintLevel::Warn => {
                eprintln!("warning: {}", msg());
                Ok(())
            }
            LintLevel::Fatal => Err(self.error(ErrorKind::Other(msg()), node)),
        }
    }

    fn string_constant(&mut self, s: &str) -> u32 {
        self.constant(Value::String(NixString::interned(s.as_bytes())))
    }

    // ---- contexts ---------------------------------------------------------

    /// Compiles `body` in a fresh context and emits the closure or thunk.
    /// Returns whether it has deferred upvalues.
    fn compile_lambda_ctx(
        &mut self,
        node: &rnix::SyntaxNode,
        thunk: bool,
        name: Option<String>,
        formals: Option<Rc<Formals>>,
        body: impl FnOnce(&mut Self) -> CResult<()>,
    ) -> CResult<bool> {
        self.ctxs.push(Ctx::new(thunk));
        let r = body(self);
        let mut ctx = self.ctxs.pop().expect("pushed above");
        r?;
        let globals = std::mem::take(&mut ctx.globals);
        let span = self.span_of(node);
        let lambda = Rc::new(ctx.into_lambda(!thunk, name, span, formals));
        let has_deferred = lambda.has_deferred;
        self.note_globals(&lambda, globals);
        let lambdas = &mut self.ctx().chunk.lambdas;
        lambdas.push(lambda);
        let idx = (lambdas.len() - 1) as u32;
        let made = &self.ctx().chunk.lambdas[idx as usize];
        let op = if !thunk {
            Op::MakeClosure(idx)
        } else if made.is_select_path() {
            Op::MakeSelectThunk(idx)
        } else if made.is_arith_path() {
            Op::MakeArithThunk(idx)
        } else {
            Op::MakeThunk(idx)
        };
        self.emit(op, node);
        Ok(has_deferred)
    }

    /// Compiles an expression into a thunk whose trace names the attribute
    /// it is the value of.
    fn compile_thunk_named(&mut self, expr: &ast::Expr, name: Option<String>) -> CResult<bool> {
        self.compile_lambda_ctx(expr.syntax(), true, name, None, |c| {
            c.compile_expr(expr)?;
            c.emit(Op::Force, expr.syntax());
            c.emit(Op::Return, expr.syntax());
            Ok(())
        })
    }

    /// Compiles an expression in a lazy position: directly if that costs
    /// nothing and cannot fail, otherwise as a thunk. In `recursive` binding
    /// groups only literals and initialised variables are direct, so every
    /// deferred capture sits in a thunk stored in the group's own slot.
    /// Returns whether a thunk with deferred upvalues was made.
    fn compile_value(&mut self, expr: &ast::Expr, recursive: bool) -> CResult<bool> {
        self.compile_value_named(expr, recursive, None)
    }

    /// [`Compiler::compile_value`] for the value of a named attribute.
    fn compile_value_named(
        &mut self,
        expr: &ast::Expr,
        recursive: bool,
        name: Option<String>,
    ) -> CResult<bool> {
        if self.is_cheap(expr, recursive) {
            self.compile_expr(expr)?;
            Ok(false)
        } else {
            self.compile_thunk_named(expr, name)
        }
    }

    fn is_cheap(&self, expr: &ast::Expr, recursive: bool) -> bool {
        match expr {
            ast::Expr::Literal(_) => true,
            // Without unescaping it: compile_string does that once.
            ast::Expr::Str(s) => !s
                .syntax()
                .children()
                .any(|c| c.kind() == rnix::SyntaxKind::NODE_INTERPOL),
            ast::Expr::Paren(p) => p.expr().is_some_and(|e| self.is_cheap(&e, recursive)),
            ast::Expr::Ident(i) => with_ident_text(i, |name| match self.resolve(name) {
                Resolved::Local { init, .. } => init,
                Resolved::Global(_) => true,
                Resolved::With => false,
            }),
            ast::Expr::Lambda(_) => !recursive,
            ast::Expr::List(_) => !recursive,
            _ => false,
        }
    }

    // ---- variables --------------------------------------------------------

    fn resolve(&self, name: &str) -> Resolved {
        for (i, ctx) in self.ctxs.iter().enumerate().rev() {
            if let Some(l) = ctx.scope.resolve(name) {
                return Resolved::Local {
                    ctx: i,
                    slot: l.slot,
                    init: l.initialised,
                };
            }
        }
        if let Some(v) = self.env.globals.get(name) {
            return Resolved::Global(v.clone());
        }
        Resolved::With
    }

    /// Makes the local `slot` of context `target` readable from context
    /// `at` (an inner one) and says where `at`'s code reads it: a local of
    /// the making frame is copied into what `at`'s closure or thunk holds;
    /// anything from further out is read through the environment it
    /// shares (docs/evaluator.md, "Captured variables"), except the values
    /// a making thunk holds itself, which are copied.
    fn capture(&mut self, at: usize, target: usize, slot: u32, init: bool) -> UpvalueRef {
        let source = if target + 1 == at {
            if init {
                UpvalueSource::Local(slot)
            } else {
                UpvalueSource::Deferred(slot)
            }
        } else {
            let in_maker = self.capture(at - 1, target, slot, init);
            match (self.ctxs[at - 1].thunk, in_maker.depth) {
                (true, 0) => UpvalueSource::Upvalue(in_maker),
                // The environment shared is a making thunk's own: the
                // same depths.
                (true, _) => {
                    self.ctxs[at].captures_env = true;
                    return in_maker;
                }
                // The environment shared is the making closure: one more.
                (false, depth) => {
                    self.ctxs[at].captures_env = true;
                    return UpvalueRef {
                        depth: depth + 1,
                        index: in_maker.index,
                    };
                }
            }
        };
        let ups = &mut self.ctxs[at].upvalues;
        let index = match ups.iter().position(|u| *u == source) {
            Some(i) => i,
            None => {
                ups.push(source);
                ups.len() - 1
            }
        };
        UpvalueRef {
            depth: 0,
            index: index as u32,
        }
    }

    fn emit_load(&mut self, ctx: usize, slot: u32, init: bool, node: &rnix::SyntaxNode) {
        let cur = self.ctxs.len() - 1;
        if ctx == cur {
            self.emit(Op::GetLocal(slot), node);
        } else {
            let idx = self.capture(cur, ctx, slot, init);
            self.emit(Op::GetUpvalue(idx), node);
        }
    }

    fn compile_ident(&mut self, name: &str, node: &rnix::SyntaxNode) -> CResult<()> {
        match self.resolve(name) {
            Resolved::Local { ctx, slot, init } => self.emit_load(ctx, slot, init, node),
            Resolved::Global(v) => {
                let i = self.global_constant(v, name);
                self.emit(Op::Constant(i), node);
            }
            Resolved::With => {
                let mut withs: smallvec::SmallVec<[(usize, u32, bool); 4]> = Default::default();
                for (i, ctx) in self.ctxs.iter().enumerate().rev() {
                    for l in ctx.scope.with_slots() {
                        withs.push((i, l.slot, l.initialised));
                    }
                }
                if withs.is_empty() {
                    return Err(self.error(ErrorKind::UndefinedVariable(name.into()), node));
                }
                let n = withs.len() as u32;
                // Namespaces are forced by `ResolveWith`, innermost first and
                // only until the name is found (C++ Nix never forces an
                // outer `with` for a name an inner one has).
                for (ctx, slot, init) in withs {
                    self.emit_load(ctx, slot, init, node);
                }
                let name_c = self.string_constant(name);
                self.emit(Op::ResolveWith(name_c, n), node);
            }
        }
        Ok(())
    }

    // ---- expressions ------------------------------------------------------

    fn compile_expr(&mut self, expr: &ast::Expr) -> CResult<()> {
        let node = expr.syntax();
        match expr {
            ast::Expr::Literal(l) => self.compile_literal(l),
            ast::Expr::Ident(i) if with_ident_text(i, |n| n == "__curPos") => {
                // A parser-level construct in C++ Nix: the position itself.
                let span = self.span_of(node);
                let (line, column) = self.file.line_col(span.start - self.file.base);
                let pos = crate::value::NixAttrs::from_sorted(vec![
                    (NixString::from("column"), Value::Int(column as i64)),
                    (
                        NixString::from("file"),
                        Value::string(self.file.name.as_str()),
                    ),
                    (NixString::from("line"), Value::Int(line as i64)),
                ]);
                self.emit_constant(Value::attrs(pos), node);
                Ok(())
            }
            ast::Expr::Ident(i) => with_ident_text(i, |name| self.compile_ident(name, node)),
            ast::Expr::Paren(p) => self.compile_expr(&child(p.expr(), node)?),
            ast::Expr::Root(r) => self.compile_expr(&child(r.expr(), node)?),
            ast::Expr::Str(s) => self.compile_string(s),
            ast::Expr::Path(p) => self.compile_path(p),
            ast::Expr::List(l) => {
                let mut n = 0;
                for item in l.items() {
                    self.compile_value(&item, false)?;
                    n += 1;
                }
                self.emit(Op::List(n), node);
                Ok(())
            }
            ast::Expr::Apply(a) => self.compile_apply(a),
            ast::Expr::IfElse(i) => {
                self.compile_expr(&child(i.condition(), node)?)?;
                self.emit(Op::Force, node);
                let to_else = self.emit(Op::JumpIfFalse(0), node);
                let d = self.depth();
                self.compile_expr(&child(i.body(), node)?)?;
                let to_end = self.emit(Op::Jump(0), node);
                self.patch_jump(to_else);
                self.set_depth(d);
                self.compile_expr(&child(i.else_body(), node)?)?;
                self.patch_jump(to_end);
                Ok(())
            }
            ast::Expr::Assert(a) => {
                let cond = child(a.condition(), node)?;
                self.compile_expr(&cond)?;
                self.emit(Op::Force, cond.syntax());
                let to_fail = self.emit(Op::JumpIfFalse(0), node);
                let d = self.depth();
                self.compile_expr(&child(a.body(), node)?)?;
                let to_end = self.emit(Op::Jump(0), node);
                self.patch_jump(to_fail);
                let text = self.string_constant(&cond.syntax().text().to_string());
                self.emit(Op::AssertFail(text), node);
                self.set_depth(d + 1);
                self.patch_jump(to_end);
                Ok(())
            }
            ast::Expr::Select(s) => self.compile_select(s),
            ast::Expr::HasAttr(h) => self.compile_has_attr(h),
            ast::Expr::UnaryOp(u) => {
                let operand = child(u.expr(), node)?;
                match u.operator() {
                    Some(ast::UnaryOpKind::Invert) => {
                        self.compile_expr(&operand)?;
                        self.emit(Op::Force, node);
                        self.emit(Op::Not, node);
                    }
                    Some(ast::UnaryOpKind::Negate) | None
                        if self.operator_is_rebound(ast::BinOpKind::Sub) =>
                    {
                        // C++ Nix parses `-e` as `__sub 0 e`: a lexical
                        // `__sub` replaces it, as it does binary `-`.
                        self.compile_operator_call("__sub", None, &operand, node)?;
                    }
                    Some(ast::UnaryOpKind::Negate) | None => {
                        self.emit_constant(Value::Int(0), node);
                        self.compile_expr(&operand)?;
                        self.emit(Op::Force, node);
                        self.emit(Op::Sub, node);
                    }
                }
                Ok(())
            }
            ast::Expr::BinOp(b) => self.compile_binop(b),
            ast::Expr::Lambda(l) => self.compile_lambda(l, None),
            ast::Expr::LetIn(l) => self.compile_let(l),
            ast::Expr::LegacyLet(l) => self.compile_legacy_let(l),
            ast::Expr::AttrSet(s) => self.compile_attr_set(s),
            ast::Expr::With(w) => {
                let mark = self.ctx().scope.locals.len();
                let ns = child(w.namespace(), node)?;
                let slot = self.depth();
                self.compile_value(&ns, false)?;
                let idx = self.ctx().scope.declare(None, slot, true);
                self.ctx().scope.locals[idx].initialised = true;
                self.compile_expr(&child(w.body(), node)?)?;
                let n = self.ctx().scope.truncate(mark);
                self.emit(Op::ScopeEnd(n), node);
                Ok(())
            }
            ast::Expr::Error(_) => {
                Err(self.error(ErrorKind::Parse("unexpected input".into()), node))
            }
        }
    }

    fn compile_literal(&mut self, l: &ast::Literal) -> CResult<()> {
        let node = l.syntax();
        let v = match l.kind() {
            ast::LiteralKind::Integer(i) => match i.value() {
                Ok(v) => Value::Int(v),
                Err(_) => {
                    return Err(self.error(
                        ErrorKind::Parse(format!("invalid integer '{}'", i.syntax().text())),
                        node,
                    ))
                }
            },
            // Like C++ Nix's strtod check: out of range (infinite or
            // subnormal) is an error, not inf or a denormal.
            ast::LiteralKind::Float(f) => match f.value() {
                Ok(v) if v.is_finite() && (v == 0.0 || v.abs() >= f64::MIN_POSITIVE) => {
                    Value::Float(v)
                }
                _ => {
                    return Err(self.error(
                        ErrorKind::Parse(format!("invalid float '{}'", f.syntax().text())),
                        node,
                    ))
                }
            },
            ast::LiteralKind::Uri(u) => {
                let text = u.syntax().text();
                self.lint(
                    self.env.lints.url_literals,
                    || format!("URL literals are disallowed. Consider using a string literal \"{text}\" instead (lint-url-literals)"),
                    node,
                )?;
                Value::string(text)
            }
        };
        self.emit_constant(v, node);
        Ok(())
    }

    fn compile_string(&mut self, s: &ast::Str) -> CResult<()> {
        let node = s.syntax();
        let parts = s.normalized_parts();
        for p in &parts {
            if let InterpolPart::Literal(l) = p {
                if l.contains('\0') {
                    return Err(self.error(
                        ErrorKind::other(format!(
                            "input string '{l}' cannot be represented as Nix string because it contains null bytes"
                        )),
                        node,
                    ));
                }
            }
        }
        if parts.iter().all(|p| matches!(p, InterpolPart::Literal(_))) {
            let mut text = String::new();
            for p in &parts {
                if let InterpolPart::Literal(l) = p {
                    text.push_str(l);
                }
            }
            self.emit_constant(Value::string(crate::source::literal_bytes(&text)), node);
            return Ok(());
        }
        let mut n = 0;
        for p in parts {
            match p {
                InterpolPart::Literal(l) => {
                    self.emit_constant(Value::string(crate::source::literal_bytes(&l)), node)
                }
                InterpolPart::Interpolation(i) => {
                    let e = child(i.expr(), i.syntax())?;
                    self.compile_expr(&e)?;
                    self.emit(Op::Force, e.syntax());
                }
            }
            n += 1;
        }
        self.emit(Op::Interpolate(n), node);
        Ok(())
    }

    /// `f a b c` as one call of `f` with three arguments (`Op::CallN`),
    /// so that a builtin gets them at once rather than as partial
    /// applications. Only applications written directly in the function
    /// position are gathered, not through parentheses: `(f a) b` starts
    /// where its inner call does not, and each call keeps its own error
    /// position. Argument values (thunks, constants, variables, lambdas)
    /// neither fail nor evaluate anything, so making them all before the
    /// first call is not observable.
    fn compile_apply(&mut self, a: &ast::Apply) -> CResult<()> {
        let node = a.syntax();
        let mut args = vec![child(a.argument(), node)?];
        let mut head = child(a.lambda(), node)?;
        while let ast::Expr::Apply(inner) = &head {
            let inner_node = inner.syntax();
            args.push(child(inner.argument(), inner_node)?);
            head = child(inner.lambda(), inner_node)?;
        }
        self.compile_expr(&head)?;
        self.emit(Op::Force, node);
        for arg in args.iter().rev() {
            self.compile_value(arg, false)?;
        }
        match args.len() {
            1 => self.emit(Op::Call, node),
            n => self.emit(Op::CallN(n as u32), node),
        };
        Ok(())
    }

    fn compile_path(&mut self, p: &ast::Path) -> CResult<()> {
        let node = p.syntax();
        let parts: Vec<_> = p.parts().collect();
        let first = match parts.first() {
            Some(InterpolPart::Literal(l)) => l.syntax().text().to_string(),
            _ => return Err(self.error(ErrorKind::Parse("invalid path".into()), node)),
        };
        if first.starts_with('<') && first.ends_with('>') {
            // `<name>` is `__findFile __nixPath "name"`, honouring user overrides.
            self.compile_ident("__findFile", node)?;
            self.emit(Op::Force, node);
            self.compile_ident("__nixPath", node)?;
            self.emit(Op::Call, node);
            self.emit(Op::Force, node);
            self.emit_constant(Value::string(&first[1..first.len() - 1]), node);
            self.emit(Op::Call, node);
            return Ok(());
        }
        let interpolated = parts.len() > 1;
        let lints = self.env.lints;
        let literal_text = || node.text().to_string();
        if first.starts_with('/') {
            self.lint(
                lints.absolute_path_literals,
                || format!("absolute path literals are not portable. Consider replacing path literal '{}' by a string, relative path, or parameter (lint-absolute-path-literals)", literal_text()),
                node,
            )?;
        } else if first.starts_with('~') {
            self.lint(
                lints.absolute_path_literals,
                || format!("home path literals are not portable. Consider replacing path literal '{}' by a string, relative path, or parameter (lint-absolute-path-literals)", literal_text()),
                node,
            )?;
        } else if !first.starts_with("./") && !first.starts_with("../") {
            self.lint(
                lints.short_path_literals,
                || {
                    let t = literal_text();
                    format!("relative path literal '{t}' should be prefixed with '.' for clarity: './{t}' (lint-short-path-literals)")
                },
                node,
            )?;
        }
        let resolved = if let Some(rest) = first.strip_prefix("~/") {
            match &self.env.home {
                Some(h) => h.join(rest),
                None => {
                    return Err(self.error(
                        ErrorKind::other("the contents of HOME are unknown, cannot resolve '~'"),
                        node,
                    ))
                }
            }
        } else if first.starts_with('/') {
            PathBuf::from(&first)
        } else {
            self.env.base_dir.join(&first)
        };
        let mut text = canon_path(&resolved.to_string_lossy());
        if interpolated && first.ends_with('/') && text != "/" {
            text.push('/');
        }
        if !interpolated {
            self.emit_constant(Value::path(text), node);
            return Ok(());
        }
        self.emit_constant(Value::path(text), node);
        let mut n = 1;
        for p in &parts[1..] {
            match p {
                InterpolPart::Literal(l) => {
                    self.emit_constant(Value::string(l.syntax().text()), node)
                }
                InterpolPart::Interpolation(i) => {
                    let e = child(i.expr(), i.syntax())?;
                    self.compile_expr(&e)?;
                    self.emit(Op::Force, e.syntax());
                }
            }
            n += 1;
        }
        self.emit(Op::InterpolatePath(n), node);
        Ok(())
    }

    /// Pushes an attribute name: a constant if static, else the forced key expression.
    /// Returns the static name, if any.
    fn compile_attr_key(&mut self, attr: &ast::Attr) -> CResult<Option<NixString>> {
        if let Some(name) = static_attr_name(attr) {
            return Ok(Some(name));
        }
        match attr {
            ast::Attr::Dynamic(d) => {
                let e = child(d.expr(), d.syntax())?;
                self.compile_expr(&e)?;
                self.emit(Op::Force, d.syntax());
            }
            ast::Attr::Str(s) => {
                self.compile_string(s)?;
            }
            ast::Attr::Ident(_) => unreachable!("identifiers are static"),
        }
        Ok(None)
    }

    fn compile_select(&mut self, s: &ast::Select) -> CResult<()> {
        let node = s.syntax();
        self.compile_expr(&child(s.expr(), node)?)?;
        let attrs: Vec<ast::Attr> = child(s.attrpath(), node)?.attrs().collect();
        let default = s.default_expr();
        let base_depth = self.depth() - 1;
        let mut fail_jumps = Vec::new();
        for (i, attr) in attrs.iter().enumerate() {
            self.emit(Op::Force, node);
            let name = self.compile_attr_key(attr)?;
            let at = attr.syntax();
            let op = match (name, default.is_some()) {
                (Some(n), false) => Op::Select(self.constant(Value::String(n))),
                (Some(n), true) => Op::SelectOr(self.constant(Value::String(n)), 0),
                (None, false) => Op::SelectDyn,
                (None, true) => Op::SelectDynOr(0),
            };
            let at_idx = self.emit(op, at);
            if default.is_some() {
                fail_jumps.push(at_idx);
            }
            let _ = i;
        }
        if let Some(d) = default {
            let to_end = self.emit(Op::Jump(0), node);
            for j in fail_jumps {
                self.patch_jump(j);
            }
            self.set_depth(base_depth);
            self.compile_expr(&d)?;
            self.patch_jump(to_end);
        }
        Ok(())
    }

    fn compile_has_attr(&mut self, h: &ast::HasAttr) -> CResult<()> {
        let node = h.syntax();
        self.compile_expr(&child(h.expr(), node)?)?;
        let attrs: Vec<ast::Attr> = child(h.attrpath(), node)?.attrs().collect();
        let mut jumps = Vec::new();
        for attr in &attrs {
            self.emit(Op::Force, node);
            let name = self.compile_attr_key(attr)?;
            let op = match name {
                Some(n) => Op::HasAttrStep(self.constant(Value::String(n)), 0),
                None => Op::HasAttrStepDyn(0),
            };
            jumps.push(self.emit(op, attr.syntax()));
        }
        self.emit(Op::HasAttrEnd, node);
        for j in jumps {
            self.patch_jump(j);
        }
        Ok(())
    }

    fn compile_binop(&mut self, b: &ast::BinOp) -> CResult<()> {
        use ast::BinOpKind as K;
        let node = b.syntax();
        let op = b
            .operator()
            .ok_or_else(|| self.error(ErrorKind::Parse("missing operator".into()), node))?;
        let lhs = child(b.lhs(), node)?;
        let rhs = child(b.rhs(), node)?;
        match op {
            K::And | K::Or | K::Implication => {
                self.compile_expr(&lhs)?;
                self.emit(Op::Force, lhs.syntax());
                self.emit(Op::AssertBool, lhs.syntax());
                let jump = match op {
                    K::And => Op::JumpIfFalseKeep(0),
                    K::Or => Op::JumpIfTrueKeep(0),
                    _ => {
                        self.emit(Op::Not, node);
                        Op::JumpIfTrueKeep(0)
                    }
                };
                let j = self.emit(jump, node);
                self.emit(Op::Pop, node);
                self.compile_expr(&rhs)?;
                self.emit(Op::Force, rhs.syntax());
                self.emit(Op::AssertBool, rhs.syntax());
                self.patch_jump(j);
                Ok(())
            }
            K::PipeLeft | K::PipeRight => Err(self.error(
                ErrorKind::other("experimental Nix feature 'pipe-operators' is disabled; add '--extra-experimental-features pipe-operators' to enable it"),
                node,
            )),
            K::Sub | K::Mul | K::Div | K::Less | K::LessOrEq | K::More | K::MoreOrEq
                if self.operator_is_rebound(op) =>
            {
                // C++ Nix parses these as calls of `__sub`, `__mul`, `__div`
                // and `__lessThan`, so a lexical binding of those names
                // replaces the operator.
                let (name, swap, negate) = match op {
                    K::Sub => ("__sub", false, false),
                    K::Mul => ("__mul", false, false),
                    K::Div => ("__div", false, false),
                    K::Less => ("__lessThan", false, false),
                    K::More => ("__lessThan", true, false),
                    K::LessOrEq => ("__lessThan", true, true),
                    _ => ("__lessThan", false, true),
                };
                let (a, b) = if swap { (&rhs, &lhs) } else { (&lhs, &rhs) };
                self.compile_operator_call(name, Some(a), b, node)?;
                if negate {
                    self.emit(Op::Force, node);
                    self.emit(Op::Not, node);
                }
                Ok(())
            }
            _ => {
                self.compile_expr(&lhs)?;
                self.emit(Op::Force, lhs.syntax());
                self.compile_expr(&rhs)?;
                self.emit(Op::Force, rhs.syntax());
                let op = match op {
                    K::Concat => Op::Concat,
                    K::Update => Op::Update,
                    K::Add => Op::Add,
                    K::Sub => Op::Sub,
                    K::Mul => Op::Mul,
                    K::Div => Op::Div,
                    K::Equal => Op::Equal,
                    K::NotEqual => Op::NotEqual,
                    K::Less => Op::Less,
                    K::LessOrEq => Op::LessEq,
                    K::More => Op::More,
                    K::MoreOrEq => Op::MoreEq,
                    K::And | K::Or | K::Implication | K::PipeLeft | K::PipeRight => {
                        unreachable!("handled above")
                    }
                };
                self.emit(op, node);
                Ok(())
            }
        }
    }

    /// `name first second`: an operator as the call C++ Nix parses it
    /// into, of the function `name` bound lexically. A missing `first` is
    /// the `0` of unary minus (`__sub 0 e`).
    fn compile_operator_call(
        &mut self,
        name: &str,
        first: Option<&ast::Expr>,
        second: &ast::Expr,
        node: &rnix::SyntaxNode,
    ) -> CResult<()> {
        self.compile_ident(name, node)?;
        self.emit(Op::Force, node);
        match first {
            Some(e) => {
                self.compile_value(e, false)?;
            }
            None => {
                self.emit_constant(Value::Int(0), node);
            }
        }
        self.emit(Op::Call, node);
        self.emit(Op::Force, node);
        self.compile_value(second, false)?;
        self.emit(Op::Call, node);
        Ok(())
    }

    /// Whether the function an operator stands for is bound lexically.
    fn operator_is_rebound(&self, op: ast::BinOpKind) -> bool {
        use ast::BinOpKind as K;
        let name = match op {
            K::Sub => "__sub",
            K::Mul => "__mul",
            K::Div => "__div",
            _ => "__lessThan",
        };
        matches!(self.resolve(name), Resolved::Local { .. })
    }

    fn compile_lambda(&mut self, l: &ast::Lambda, name: Option<String>) -> CResult<()> {
        let node = l.syntax();
        let param = child(l.param(), node)?;
        let body = child(l.body(), node)?;
        let formals = match &param {
            ast::Param::Pattern(p) => Some(Rc::new(self.formals_of(p)?)),
            ast::Param::IdentParam(_) => None,
        };
        let formals2 = formals.clone();
        self.compile_lambda_ctx(node, false, name, formals, move |c| {
            // Slot 0 is the argument.
            c.ctx().scope.stack_depth = 1;
            match &param {
                ast::Param::IdentParam(i) => {
                    let name = ident_text(&child(i.ident(), i.syntax())?);
                    let idx = c.ctx().scope.declare(Some(name), 0, false);
                    c.ctx().scope.locals[idx].initialised = true;
                }
                ast::Param::Pattern(p) => {
                    let formals = formals2.expect("pattern has formals");
                    c.compile_formals(p, &formals)?;
                }
            }
            c.compile_expr(&body)?;
            c.emit(Op::Return, body.syntax());
            Ok(())
        })?;
        Ok(())
    }

    fn formals_of(&self, p: &ast::Pattern) -> CResult<Formals> {
        let mut entries: Vec<(NixString, bool, u32)> = Vec::new();
        for e in p.pat_entries() {
            let name = ident_text(&child(e.ident(), e.syntax())?);
            if entries
                .iter()
                .any(|(n, _, _)| n.as_bytes() == name.as_bytes())
            {
                return Err(self.error(ErrorKind::DuplicateFormal(name), e.syntax()));
            }
            let pos = self.span_of(e.syntax()).start;
            entries.push((
                NixString::interned(name.as_bytes()),
                e.default().is_some(),
                pos,
            ));
        }
        if let Some(bind) = p.pat_bind().and_then(|b| b.ident()) {
            let name = ident_text(&bind);
            if entries
                .iter()
                .any(|(n, _, _)| n.as_bytes() == name.as_bytes())
            {
                return Err(self.error(ErrorKind::DuplicateFormal(name), bind.syntax()));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Formals {
            positions: entries.iter().map(|e| e.2).collect(),
            entries: entries.into_iter().map(|(n, d, _)| (n, d)).collect(),
            ellipsis: p.ellipsis_token().is_some(),
            span: self.span_of(p.syntax()),
        })
    }

    fn compile_formals(&mut self, p: &ast::Pattern, formals: &Rc<Formals>) -> CResult<()> {
        let node = p.syntax();
        if let Some(bind) = p.pat_bind().and_then(|b| b.ident()) {
            let idx = self.ctx().scope.declare(Some(ident_text(&bind)), 0, false);
            self.ctx().scope.locals[idx].initialised = true;
        }
        self.emit(Op::GetLocal(0), node);
        self.emit(Op::Force, node);
        let fi = {
            let f = &mut self.ctx().chunk.formals;
            f.push(formals.clone());
            (f.len() - 1) as u32
        };
        self.emit(Op::ValidateFormals(fi), node);
        let args_slot = self.depth() - 1;
        let idx = self.ctx().scope.declare(None, args_slot, false);
        self.ctx().scope.locals[idx].initialised = true;

        // The formals form one recursive binding group: defaults may refer to
        // any formal.
        let entries: Vec<ast::PatEntry> = p.pat_entries().collect();
        let first_local = self.ctx().scope.locals.len();
        let base = self.depth();
        for (i, e) in entries.iter().enumerate() {
            let name = ident_text(&child(e.ident(), e.syntax())?);
            self.ctx().scope.declare(Some(name), base + i as u32, false);
        }
        let mut finalise = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let name = ident_text(&child(e.ident(), e.syntax())?);
            let name_c = self.string_constant(&name);
            self.emit(Op::GetLocal(args_slot), e.syntax());
            match e.default() {
                None => {
                    self.emit(Op::Select(name_c), e.syntax());
                }
                Some(d) => {
                    let j = self.emit(Op::SelectOr(name_c, 0), e.syntax());
                    let to_end = self.emit(Op::Jump(0), e.syntax());
                    self.patch_jump(j);
                    self.set_depth(base + i as u32);
                    if self.compile_value(&d, true)? {
                        finalise.push(base + i as u32);
                    }
                    self.patch_jump(to_end);
                }
            }
            self.ctx().scope.locals[first_local + i].initialised = true;
        }
        for slot in finalise {
            self.emit(Op::Finalise(slot), node);
        }
        Ok(())
    }
}

/// The text of an identifier (`or` included).
/// Calls `f` with an identifier's name, borrowed from the syntax tree
/// (identifiers are compiled by the hundred thousand; no `String` each).
fn with_ident_text<R>(i: &ast::Ident, f: impl FnOnce(&str) -> R) -> R {
    match i.ident_token() {
        Some(t) => f(t.text()),
        None => f(&i.syntax().text().to_string()),
    }
}

pub(crate) fn ident_text(i: &ast::Ident) -> String {
    i.ident_token()
        .map(|t| t.text().to_string())
        .unwrap_or_else(|| i.syntax().text().to_string())
}

fn child<T>(c: Option<T>, parent: &rnix::SyntaxNode) -> CResult<T> {
    c.ok_or_else(|| {
        Error::new(
            ErrorKind::Parse(format!("incomplete expression '{}'", parent.text())),
            None,
        )
    })
}

/// The name of an attribute if it is known without evaluation: identifiers,
/// strings without interpolation, and `${"literal"}` (as C++ Nix's parser does).
pub(crate) fn static_attr_name(attr: &ast::Attr) -> Option<NixString> {
    fn literal_str(s: &ast::Str) -> Option<NixString> {
        let mut out = String::new();
        for p in s.normalized_parts() {
            match p {
                InterpolPart::Literal(l) => out.push_str(&l),
                InterpolPart::Interpolation(_) => return None,
            }
        }
        Some(NixString::interned(out.as_bytes()))
    }
    match attr {
        ast::Attr::Ident(i) => Some(with_ident_text(i, |n| NixString::interned(n.as_bytes()))),
        ast::Attr::Str(s) => literal_str(s),
        ast::Attr::Dynamic(d) => match d.expr()? {
            ast::Expr::Str(s) => literal_str(&s),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::eval::testing::ok;

    #[test]
    fn operators_are_calls_of_their_lexically_bound_functions() {
        // C++ Nix 2.8's answers: its parser turns `a - b`, `-a`, `a * b`,
        // `a / b` and the comparisons into calls of `__sub`, `__mul`,
        // `__div` and `__lessThan`, resolved lexically (never by `with`).
        assert_eq!(ok("let __sub = a: b: 42; in 5 - 3"), "42");
        assert_eq!(ok("let __sub = a: b: 42; in -3"), "42");
        assert_eq!(ok("let __sub = a: b: 42; in -3.5"), "42");
        assert_eq!(ok("let __sub = a: b: [ a b ]; x = 3; in -x"), "[ 0 3 ]");
        assert_eq!(ok("rec { __sub = a: b: 42; x = -5; }.x"), "42");
        assert_eq!(ok("({ __sub }: -1) { __sub = a: b: b; }"), "1");
        assert_eq!(ok("let __mul = a: b: 42; in 2 * 3"), "42");
        assert_eq!(ok("let __div = a: b: [ a b ]; in 6 / 3"), "[ 6 3 ]");
        assert_eq!(ok("let __lessThan = a: b: [ a b ]; in 1 > 2"), "[ 2 1 ]");
        assert_eq!(ok("let __lessThan = a: b: false; in 1 <= 2"), "true");
        assert_eq!(
            ok("with { __sub = a: b: 42; }; [ (5 - 3) (-3) ]"),
            "[ 2 -3 ]"
        );
        // Unbound, they are the builtins.
        assert_eq!(ok("[ (-3) (- -3) (5 - 3) (-(1.5)) ]"), "[ -3 3 2 -1.5 ]");
    }
}
