//! The real backend: Nix values from `attrfs-eval` rendered as nodes.
//!
//! Mapping (DESIGN.md, "The filesystem mapping"): sets and lists are
//! directories; derivations are directories with synthetic `.drv` and
//! `.context`; strings are files of their exact bytes; numbers, Booleans and
//! null are files of their Nix spelling (no trailing newline, like strings);
//! paths are symlinks; functions are files describing them. A derivation met
//! inside another derivation's directory (its outputs `out`, `dev`, `all`...
//! and its inputs) is a symlink to its output path unless
//! `deep_derivations` is set, and a set or list identical to one of its
//! ancestors is a symlink to that ancestor, so `find` and `grep -r` end.

use crate::backend::{Backend, BackendFactory, Interrupt, NodeError};
use crate::node::{xattr, AttrPath, DirEntry, Node, NodeKind, Segment};
use attrfs_eval::eval::{AutoArg, Evaluator, Source};
use attrfs_eval::printer::format_float;
use attrfs_eval::value::Value;
use attrfs_eval::{Error, ErrorKind, EvalOptions};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::rc::Rc;

/// What to mount: the same inputs as `attrfs eval`.
#[derive(Clone, Debug)]
pub struct RootSpec {
    /// File or expression.
    pub source: Source,
    /// `--arg`/`--argstr`.
    pub args: Vec<(String, AutoArg)>,
    /// `-A` paths.
    pub attr: Vec<String>,
    /// `-I` entries (before `NIX_PATH`).
    pub include: Vec<String>,
    /// Show derivations inside derivations as directories.
    pub deep_derivations: bool,
    /// How many forced values to keep (LRU) per mount.
    pub value_cache: usize,
    /// For a flake source: evaluate impurely (`--impure`).
    pub impure: bool,
}

/// A factory building [`EvalBackend`]s for a root.
pub fn factory(spec: RootSpec) -> BackendFactory {
    Box::new(move |interrupt| {
        EvalBackend::new(&spec, interrupt).map(|b| Box::new(b) as Box<dyn Backend>)
    })
}

/// Checks that a root parses and evaluates to weak head normal form, for a
/// clear error before mounting. Runs on the calling thread.
pub fn check_root(spec: &RootSpec) -> Result<(), String> {
    EvalBackend::new(spec, Interrupt::default()).map(drop)
}

/// How a forced value shows up in the tree.
#[derive(Clone)]
enum Shape {
    /// Rendered from the value itself.
    Value(Value),
    /// A symlink (to an ancestor), with the value's type name.
    Link(Vec<u8>, &'static str),
    /// A derivation inside a derivation's directory: a symlink to its output
    /// path, computed only when the link is read (it can cost a whole
    /// `derivationStrict`, and `find` or `grep -r` never read links).
    DrvLink(Value),
    /// A package set (a set with `callPackage`, such as a whole nixpkgs)
    /// inside a derivation's directory: a file describing it, not a
    /// directory, so that walking a derivation stays bounded.
    PackageSet(usize),
}

/// A [`Backend`] over an evaluator. Lives on the evaluation thread.
pub struct EvalBackend {
    ev: Evaluator,
    root: Value,
    deep_derivations: bool,
    memo: LruCache<AttrPath, Shape>,
    /// What to rebuild from when memory runs over the budget.
    spec: RootSpec,
    interrupt: Interrupt,
    requests: u64,
    memory_budget: u64,
}

/// Requests between two looks at the process's resident memory.
const MEMORY_CHECK_INTERVAL: u64 = 64;

/// Resident memory of this process in bytes (Linux), if known.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Half the machine's memory, at most 8 GiB: past it the evaluator starts
/// afresh (everything evaluated stays reachable from the root otherwise, so
/// walking a huge tree would grow without bound).
fn default_memory_budget() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(8 << 30);
    (total / 2).min(8 << 30)
}

fn render_error(ev: &Evaluator, e: &Error) -> NodeError {
    if matches!(e.kind, ErrorKind::Interrupted) {
        NodeError::Interrupted
    } else {
        NodeError::EvalFailed(e.short(&ev.state.sources))
    }
}

impl EvalBackend {
    /// Loads and forces the root.
    pub fn new(spec: &RootSpec, interrupt: Interrupt) -> Result<Self, String> {
        let mut options = EvalOptions::default();
        let mut search: Vec<_> = spec
            .include
            .iter()
            .map(|s| attrfs_eval::SearchPathEntry::parse(s))
            .collect();
        search.append(&mut options.search_path);
        options.search_path = search;
        options.interrupt = interrupt.clone();
        if let Source::Flake(_) = spec.source {
            attrfs_eval::flake::configure(&mut options, spec.impure);
        }
        let ev = Evaluator::new(options);
        let root = ev
            .root(&spec.source, &spec.args, &spec.attr)
            .and_then(|v| ev.force(v))
            .map_err(|e| ev.render_error(&e))?;
        let cap = NonZeroUsize::new(spec.value_cache.max(16)).unwrap_or(NonZeroUsize::MIN);
        Ok(EvalBackend {
            ev,
            root,
            deep_derivations: spec.deep_derivations,
            memo: LruCache::new(cap),
            spec: spec.clone(),
            interrupt,
            requests: 0,
            memory_budget: default_memory_budget(),
        })
    }

    /// Starts over with a fresh evaluator when memory is over budget. The
    /// service keeps its rendered answers, so this only costs re-evaluation
    /// of what is asked next.
    fn check_memory(&mut self) {
        self.requests += 1;
        if !self.requests.is_multiple_of(MEMORY_CHECK_INTERVAL) {
            return;
        }
        let Some(rss) = resident_bytes() else { return };
        if rss <= self.memory_budget {
            return;
        }
        tracing::warn!(
            "evaluator memory {} MiB over the budget of {} MiB: starting a fresh evaluator",
            rss >> 20,
            self.memory_budget >> 20
        );
        self.memo.clear();
        self.root = Value::Null;
        match EvalBackend::new(&self.spec, self.interrupt.clone()) {
            Ok(fresh) => *self = fresh,
            Err(e) => tracing::error!("could not restart the evaluator: {e}"),
        }
    }

    fn force(&self, v: Value) -> Result<Value, Error> {
        if v.is_whnf() {
            return Ok(v.shallow());
        }
        self.ev.force(v)
    }

    fn is_derivation(&self, v: &Value) -> bool {
        match v {
            Value::Attrs(a) => match a.get(b"type") {
                Some(t) => {
                    matches!(self.force(t.clone()), Ok(Value::String(s)) if s.as_bytes() == b"derivation")
                }
                None => false,
            },
            _ => false,
        }
    }

    fn string_attr(&self, v: &Value, name: &str) -> Option<String> {
        let a = v.as_attrs()?;
        let x = a.get_str(name)?.clone();
        match self.force(x) {
            Ok(Value::String(s)) => Some(s.to_string()),
            _ => None,
        }
    }

    /// Walks to `path`, forcing along the way. The last element's own
    /// failure is returned as `Ok(Err(message))`.
    fn resolve(&mut self, path: &AttrPath) -> Result<Result<Shape, String>, NodeError> {
        if let Some(s) = self.memo.get(path) {
            return Ok(Ok(s.clone()));
        }
        let segs = path.segments();
        // Ancestor values from the root, for the derivation and cycle rules.
        let mut ancestors: Vec<Value> = vec![self.root.clone()];
        let mut current = self.root.clone();
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let name = match seg {
                Segment::Name(n) => n,
                Segment::Drv | Segment::Context => return Err(NodeError::NotFound),
            };
            let child = match &current {
                Value::Attrs(a) => a.get(name).cloned().ok_or(NodeError::NotFound)?,
                Value::List(l) => seg
                    .as_index()
                    .and_then(|i| l.get(i).cloned())
                    .ok_or(NodeError::NotFound)?,
                _ => return Err(NodeError::NotADirectory),
            };
            let child = match self.force(child) {
                Ok(v) => v,
                Err(e) => {
                    let err = render_error(&self.ev, &e);
                    return match (last, err) {
                        (_, NodeError::Interrupted) => Err(NodeError::Interrupted),
                        (true, NodeError::EvalFailed(m)) => Ok(Err(m)),
                        (_, err) => Err(err),
                    };
                }
            };
            let shape = self.shape_of(&child, &ancestors, i + 1);
            if let Shape::Link(..) | Shape::DrvLink(_) | Shape::PackageSet(_) = shape {
                if !last {
                    return Err(NodeError::NotADirectory);
                }
                self.memo.put(path.clone(), shape.clone());
                return Ok(Ok(shape));
            }
            ancestors.push(child.clone());
            current = child;
        }
        let shape = Shape::Value(current);
        self.memo.put(path.clone(), shape.clone());
        Ok(Ok(shape))
    }

    fn shape_of(&self, v: &Value, ancestors: &[Value], depth: usize) -> Shape {
        let same = |a: &Value, b: &Value| match (a, b) {
            (Value::Attrs(x), Value::Attrs(y)) => Rc::ptr_eq(x, y) && !x.is_empty(),
            (Value::List(x), Value::List(y)) => Rc::ptr_eq(x, y) && !x.is_empty(),
            _ => false,
        };
        // A derivation's outputs (`out`, ...) are the derivation itself, so
        // the store-path rule must come before the ancestor rule.
        if !self.deep_derivations
            && self.is_derivation(v)
            && ancestors.iter().any(|a| self.is_derivation(a))
        {
            return Shape::DrvLink(v.clone());
        }
        if !self.deep_derivations {
            if let Value::Attrs(a) = v {
                if a.contains(b"callPackage")
                    && !self.is_derivation(v)
                    && ancestors.iter().any(|x| self.is_derivation(x))
                {
                    return Shape::PackageSet(a.len());
                }
            }
        }
        if let Some(pos) = ancestors.iter().position(|a| same(a, v)) {
            // The link lives in the directory at depth `depth - 1`.
            let up = depth - 1 - pos;
            let target = if up == 0 {
                ".".to_string()
            } else {
                vec![".."; up].join("/")
            };
            let ty = if matches!(v, Value::List(_)) {
                "list"
            } else {
                "set"
            };
            return Shape::Link(target.into_bytes(), ty);
        }
        Shape::Value(v.clone())
    }

    fn position_of(&mut self, path: &AttrPath) -> Option<String> {
        let parent = path.parent()?;
        let Some(Segment::Name(name)) = path.last() else {
            return None;
        };
        let Ok(Ok(Shape::Value(Value::Attrs(a)))) = self.resolve(&parent) else {
            return None;
        };
        let offset = a.position(name)?;
        self.ev
            .state
            .sources
            .position(attrfs_eval::source::Span::new(offset, offset))
            .map(|p| p.to_string())
    }

    /// The bytes a file node holds, with its type name.
    fn file_bytes(&self, v: &Value) -> Option<(Vec<u8>, &'static str)> {
        Some(match v {
            Value::String(s) => (s.as_bytes().to_vec(), "string"),
            Value::Int(i) => (i.to_string().into_bytes(), "int"),
            Value::Float(f) => (format_float(*f).into_bytes(), "float"),
            Value::Bool(b) => (b.to_string().into_bytes(), "bool"),
            Value::Null => (b"null".to_vec(), "null"),
            Value::Closure(c) => {
                let mut text = String::from("<LAMBDA>");
                if let Some(f) = &c.lambda.formals {
                    let names: Vec<String> = f
                        .entries
                        .iter()
                        .map(|(n, d)| {
                            if *d {
                                format!("{n} ? …")
                            } else {
                                n.to_string()
                            }
                        })
                        .chain(f.ellipsis.then(|| "...".to_string()))
                        .collect();
                    text.push_str(&format!("\narguments: {{ {} }}", names.join(", ")));
                }
                if let Some(p) = self.ev.state.sources.position(c.lambda.span) {
                    text.push_str(&format!("\ndefined at: {p}"));
                }
                text.push('\n');
                (text.into_bytes(), "lambda")
            }
            Value::Builtin(b) => (
                format!(
                    "<PRIMOP{}> builtins.{}\n",
                    if b.args.is_empty() { "" } else { "-APP" },
                    b.def.name
                )
                .into_bytes(),
                "primop",
            ),
            _ => return None,
        })
    }

    /// ATerm text and input list of the derivation at `path`.
    fn derivation_files(&mut self, path: &AttrPath) -> Result<(Vec<u8>, Vec<u8>), NodeError> {
        let Ok(Shape::Value(v)) = self.resolve(path)? else {
            return Err(NodeError::NotFound);
        };
        if !self.is_derivation(&v) {
            return Err(NodeError::NotFound);
        }
        let drv_path = self
            .string_attr(&v, "drvPath")
            .ok_or_else(|| NodeError::EvalFailed("the derivation has no drvPath".into()))?;
        let aterm = self.ev.state.derivation_aterm(&drv_path).ok_or_else(|| {
            NodeError::EvalFailed(format!("no derivation text known for '{drv_path}'"))
        })?;
        let drv = attrfs_store::derivation::Derivation::from_aterm(&aterm)
            .map_err(|e| NodeError::EvalFailed(e.to_string()))?;
        let mut context = String::new();
        for (input, outputs) in &drv.input_drvs {
            for o in outputs {
                context.push_str(&format!("{input}!{o}\n"));
            }
        }
        for src in &drv.input_srcs {
            context.push_str(src);
            context.push('\n');
        }
        Ok((aterm.into_bytes(), context.into_bytes()))
    }
}

fn package_set_text(attributes: usize) -> String {
    format!(
        "a package set of {attributes} attributes inside a derivation; \
         not expanded here (mount with --deep-derivations, or select it with -A)\n"
    )
}

impl Backend for EvalBackend {
    fn stat(&mut self, path: &AttrPath) -> Result<Node, NodeError> {
        let r = self.stat_inner(path);
        self.check_memory();
        r
    }

    fn list(&mut self, path: &AttrPath) -> Result<Vec<DirEntry>, NodeError> {
        let r = self.list_inner(path);
        self.check_memory();
        r
    }

    fn read(&mut self, path: &AttrPath) -> Result<Vec<u8>, NodeError> {
        let r = self.read_inner(path);
        self.check_memory();
        r
    }
}

impl EvalBackend {
    fn stat_inner(&mut self, path: &AttrPath) -> Result<Node, NodeError> {
        if let Some(seg @ (Segment::Drv | Segment::Context)) = path.last() {
            let parent = path.parent().unwrap_or_default();
            let (drv, ctx) = self.derivation_files(&parent)?;
            let bytes = if *seg == Segment::Drv { drv } else { ctx };
            return Ok(Node::file("string", bytes.len() as u64));
        }
        let shape = match self.resolve(path)? {
            Ok(s) => s,
            Err(msg) => return Ok(Node::failed(msg)),
        };
        let mut node = match &shape {
            Shape::Link(target, ty) => Node::symlink(ty, target.clone()),
            Shape::DrvLink(_) => Node {
                target: None,
                ..Node::symlink("derivation", Vec::new())
            },
            Shape::PackageSet(n) => Node::file("set", package_set_text(*n).len() as u64),
            Shape::Value(v) => match v {
                Value::Attrs(_) if self.is_derivation(v) => {
                    let mut n = Node::directory("derivation");
                    if let Some(p) = self.string_attr(v, "drvPath") {
                        n = n.with_xattr(xattr::DRV_PATH, p);
                    }
                    if let Some(p) = self.string_attr(v, "outPath") {
                        n = n.with_xattr(xattr::OUT_PATH, p);
                    }
                    n
                }
                Value::Attrs(_) => Node::directory("set"),
                Value::List(_) => Node::directory("list"),
                Value::Path(p) => Node::symlink("path", p.to_string_lossy().as_bytes().to_vec()),
                other => match self.file_bytes(other) {
                    Some((bytes, ty)) => {
                        let mut n = Node::file(ty, bytes.len() as u64);
                        if let Value::String(s) = other {
                            if let Some(ctx) = s.context() {
                                let lines: Vec<String> = ctx.iter().map(|c| c.encode()).collect();
                                n = n.with_xattr(xattr::CONTEXT, lines.join("\n"));
                            }
                        }
                        n
                    }
                    None => Node::failed("value cannot be rendered"),
                },
            },
        };
        if let Some(pos) = self.position_of(path) {
            node = node.with_xattr(xattr::POSITION, pos);
        }
        Ok(node)
    }

    fn list_inner(&mut self, path: &AttrPath) -> Result<Vec<DirEntry>, NodeError> {
        let shape = self.resolve(path)?.map_err(NodeError::EvalFailed)?;
        let Shape::Value(v) = shape else {
            return Err(NodeError::NotADirectory);
        };
        let kind_of = |x: &Value| -> Option<NodeKind> {
            match x {
                Value::Thunk(t) => t.value().and_then(|v| match v {
                    Value::Attrs(_) | Value::List(_) | Value::Path(_) => None,
                    _ => Some(NodeKind::File),
                }),
                Value::Attrs(_) | Value::List(_) | Value::Path(_) => None,
                _ => Some(NodeKind::File),
            }
        };
        match &v {
            Value::Attrs(a) => {
                let mut out: Vec<DirEntry> = a
                    .iter()
                    .map(|(k, x)| DirEntry {
                        name: Segment::name(k.as_bytes()),
                        kind: kind_of(x),
                    })
                    .collect();
                if self.is_derivation(&v) {
                    out.push(DirEntry::with_kind(Segment::Drv, NodeKind::File));
                    out.push(DirEntry::with_kind(Segment::Context, NodeKind::File));
                }
                Ok(out)
            }
            Value::List(l) => Ok(l
                .iter()
                .enumerate()
                .map(|(i, x)| DirEntry {
                    name: Segment::index(i),
                    kind: kind_of(x),
                })
                .collect()),
            _ => Err(NodeError::NotADirectory),
        }
    }

    fn read_inner(&mut self, path: &AttrPath) -> Result<Vec<u8>, NodeError> {
        if let Some(seg @ (Segment::Drv | Segment::Context)) = path.last() {
            let parent = path.parent().unwrap_or_default();
            let (drv, ctx) = self.derivation_files(&parent)?;
            return Ok(if *seg == Segment::Drv { drv } else { ctx });
        }
        match self.resolve(path)? {
            Ok(Shape::Value(v)) => self
                .file_bytes(&v)
                .map(|(b, _)| b)
                .ok_or(NodeError::NotAFile),
            Ok(Shape::Link(..)) => Err(NodeError::NotAFile),
            Ok(Shape::PackageSet(n)) => Ok(package_set_text(n).into_bytes()),
            Ok(Shape::DrvLink(v)) => {
                // The link target: the output path, forced now.
                let out = v
                    .as_attrs()
                    .and_then(|a| a.get_str("outPath").cloned())
                    .ok_or(NodeError::NotAFile)?;
                match self.force(out) {
                    Ok(Value::String(s)) => Ok(s.as_bytes().to_vec()),
                    Ok(other) => Err(NodeError::EvalFailed(format!(
                        "outPath is {}",
                        attrfs_eval::printer::type_with_article(&other)
                    ))),
                    Err(e) => Err(render_error(&self.ev, &e)),
                }
            }
            Err(msg) => Err(NodeError::EvalFailed(msg)),
        }
    }
}
