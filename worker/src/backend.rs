//! The evaluator-backed backend: Nix values from `attrfs-eval` rendered as
//! nodes. It runs in the worker process (see [`crate::serve`]); the mount
//! daemon never links it in its own address space's request path.
//!
//! Mapping (README.md, "The mapping"): sets and lists are
//! directories; derivations are directories with synthetic `.drv` and
//! `.context`; strings are files of their exact bytes; numbers, Booleans and
//! null are files of their Nix spelling (no trailing newline, like strings);
//! paths are symlinks; functions are files describing them. A derivation met
//! inside another derivation's directory (its outputs `out`, `dev`, `all`...
//! and its inputs) is a symlink to its output path unless
//! `deep_derivations` is set, and a set or list identical to one of its
//! ancestors is a symlink to that ancestor, so `find` and `grep -r` end.

use crate::inputs::to_wire;
use crate::spec::RootSpec;
use attrfs_eval::eval::Evaluator;
use attrfs_eval::printer::format_float;
use attrfs_eval::value::Value;
use attrfs_eval::{Error, ErrorKind, EvalOptions};
use attrfs_vfs::inputs::Input;
use attrfs_vfs::{
    xattr, AttrPath, Backend, DirEntry, Interrupt, Node, NodeError, NodeKind, Segment, Stat,
    XattrList,
};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::rc::Rc;

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

/// The values from the root down to a resolved directory, for the rules
/// that look at ancestors (derivations inside derivations, links back to an
/// ancestor). Shared by every path below, so a memo entry costs one link.
struct Chain {
    value: Value,
    /// Whether this value or one of its ancestors is a derivation.
    in_derivation: bool,
    parent: Option<Rc<Chain>>,
}

impl Chain {
    fn root(value: Value, in_derivation: bool) -> Rc<Chain> {
        Rc::new(Chain {
            value,
            in_derivation,
            parent: None,
        })
    }
}

/// A memoised path: its shape, and for a directory the chain down to it.
#[derive(Clone)]
struct Resolved {
    shape: Shape,
    chain: Option<Rc<Chain>>,
}

/// A [`Backend`] over an evaluator. Lives on the evaluation thread.
pub struct EvalBackend {
    ev: Evaluator,
    root_chain: Rc<Chain>,
    deep_derivations: bool,
    memo: LruCache<AttrPath, Resolved, rustc_hash::FxBuildHasher>,
}

/// Why the root could not be evaluated, and what it read before failing.
#[derive(Debug)]
pub struct RootFailure {
    /// The error, rendered like C++ Nix.
    pub message: String,
    /// The inputs recorded until the failure.
    pub inputs: Vec<Input>,
}

fn render_error(ev: &Evaluator, e: &Error) -> NodeError {
    if interrupted(&e.kind) {
        NodeError::Interrupted
    } else {
        NodeError::EvalFailed(ev.short_error(e))
    }
}

/// Whether an evaluation failed because it was interrupted, and not
/// because of the value: such a failure says nothing about the value and
/// must never be rendered, cached or taken for an answer (a derivation
/// whose `type` was interrupted is still a derivation).
fn interrupted(kind: &ErrorKind) -> bool {
    match kind {
        ErrorKind::Interrupted => true,
        ErrorKind::Located(e) => interrupted(&e.kind),
        _ => false,
    }
}

/// Passes an interrupted evaluation on as [`NodeError::Interrupted`] and
/// hands any other outcome to the caller.
fn unless_interrupted<T>(r: Result<T, Error>) -> Result<Result<T, Error>, NodeError> {
    match r {
        Err(e) if interrupted(&e.kind) => Err(NodeError::Interrupted),
        r => Ok(r),
    }
}

impl EvalBackend {
    /// Loads and forces the root; the error is the root's failure and the
    /// inputs read up to it (worth watching: fixing one of them is what
    /// makes the root evaluate again).
    pub fn new(spec: &RootSpec, interrupt: Interrupt) -> Result<Self, RootFailure> {
        let mut options = EvalOptions {
            interrupt: interrupt.clone(),
            ..EvalOptions::default()
        };
        spec.invocation.configure(&mut options);
        if spec.compile_cache {
            options.compile_cache = attrfs_eval::compiler::cache::CacheConfig::from_env();
        }
        let ev = Evaluator::new(options);
        let root = spec
            .invocation
            .root(&ev)
            .and_then(|v| ev.force(v))
            .map_err(|e| RootFailure {
                message: ev.render_error(&e),
                inputs: to_wire(ev.take_new_inputs()),
            })?;
        let cap = NonZeroUsize::new(spec.value_cache.max(16)).unwrap_or(NonZeroUsize::MIN);
        let mut backend = EvalBackend {
            ev,
            root_chain: Chain::root(Value::Null, false),
            deep_derivations: spec.deep_derivations,
            memo: LruCache::with_hasher(cap, rustc_hash::FxBuildHasher),
        };
        let in_derivation = matches!(backend.is_derivation(&root), Ok(true));
        backend.root_chain = Chain::root(root, in_derivation);
        Ok(backend)
    }

    fn force(&self, v: Value) -> Result<Value, Error> {
        if v.is_whnf() {
            return Ok(v.shallow());
        }
        self.ev.force(v)
    }

    /// Whether `v` is a derivation (a set whose `type` is
    /// `"derivation"`); a `type` that fails to evaluate says no, one whose
    /// evaluation was interrupted says nothing.
    fn is_derivation(&self, v: &Value) -> Result<bool, NodeError> {
        let Some(t) = v.as_attrs().and_then(|a| a.get(b"type")) else {
            return Ok(false);
        };
        Ok(matches!(
            unless_interrupted(self.force(t.clone()))?,
            Ok(Value::String(s)) if s.as_bytes() == b"derivation"
        ))
    }

    /// A string attribute of a derivation (`drvPath`, `outPath`), forced;
    /// the inner error says why it could not be had.
    fn derivation_string(
        &self,
        v: &Value,
        name: &str,
    ) -> Result<Result<String, String>, NodeError> {
        let Some(attr) = v.as_attrs().and_then(|a| a.get_str(name)).cloned() else {
            return Ok(Err(format!("the derivation has no attribute '{name}'")));
        };
        Ok(match unless_interrupted(self.force(attr))? {
            Ok(Value::String(s)) => Ok(s.to_string()),
            Ok(other) => Err(format!(
                "'{name}' is {}",
                attrfs_eval::printer::type_with_article(&other)
            )),
            Err(e) => Err(self.ev.short_error(&e)),
        })
    }

    /// Walks to `path`, forcing along the way. The last element's own
    /// failure is returned as `Ok(Err(message))`.
    ///
    /// The walk starts from the parent when the parent was resolved before
    /// (the usual case: a directory is listed before its entries are
    /// looked up), so resolving a path costs one step, not one per segment.
    fn resolve(&mut self, path: &AttrPath) -> Result<Result<Shape, String>, NodeError> {
        if let Some(r) = self.memo.get(path) {
            return Ok(Ok(r.shape.clone()));
        }
        let segs = path.segments();
        let (mut chain, done) = match path.parent() {
            Some(parent) => match self.memo.get(&parent) {
                Some(Resolved {
                    chain: Some(chain), ..
                }) => (chain.clone(), parent.len()),
                Some(_) => return Err(NodeError::NotADirectory),
                None => (self.root_chain.clone(), 0),
            },
            None => (self.root_chain.clone(), 0),
        };
        for (i, seg) in segs.iter().enumerate().skip(done) {
            let last = i + 1 == segs.len();
            let name = match seg {
                Segment::Name(n) => n,
                Segment::Drv | Segment::Context => return Err(NodeError::NotFound),
            };
            let child = match &chain.value {
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
            let shape = self.shape_of(&child, &chain)?;
            // Only directories need the chain (their entries look at
            // ancestors); most entries of a walk are files.
            let directory = matches!(child, Value::Attrs(_) | Value::List(_));
            if !matches!(shape, Shape::Value(_)) || !directory {
                if !last {
                    return Err(NodeError::NotADirectory);
                }
                self.memo.put(
                    path.clone(),
                    Resolved {
                        shape: shape.clone(),
                        chain: None,
                    },
                );
                return Ok(Ok(shape));
            }
            let in_derivation = chain.in_derivation || self.is_derivation(&child)?;
            chain = Rc::new(Chain {
                value: child,
                in_derivation,
                parent: Some(chain),
            });
        }
        let shape = Shape::Value(chain.value.clone());
        self.memo.put(
            path.clone(),
            Resolved {
                shape: shape.clone(),
                chain: Some(chain),
            },
        );
        Ok(Ok(shape))
    }

    /// How `v`, an entry of the directory at the end of `chain`, shows up.
    fn shape_of(&self, v: &Value, chain: &Rc<Chain>) -> Result<Shape, NodeError> {
        let same = |a: &Value, b: &Value| match (a, b) {
            (Value::Attrs(x), Value::Attrs(y)) => Rc::ptr_eq(x, y) && !x.is_empty(),
            (Value::List(x), Value::List(y)) => Rc::ptr_eq(x, y) && !x.is_empty(),
            _ => false,
        };
        if !self.deep_derivations && chain.in_derivation {
            let derivation = self.is_derivation(v)?;
            // A derivation's outputs (`out`, ...) are the derivation
            // itself, so the store-path rule must come before the ancestor
            // rule.
            if derivation {
                return Ok(Shape::DrvLink(v.clone()));
            }
            if let Value::Attrs(a) = v {
                if a.contains(b"callPackage") {
                    return Ok(Shape::PackageSet(a.len()));
                }
            }
        }
        // The link lives in the directory at the end of the chain: `.` is
        // that directory, each step up one more `..`.
        let mut up = 0;
        let mut link = Some(chain);
        while let Some(ancestor) = link {
            if same(&ancestor.value, v) {
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
                return Ok(Shape::Link(target.into_bytes(), ty));
            }
            up += 1;
            link = ancestor.parent.as_ref();
        }
        Ok(Shape::Value(v.clone()))
    }

    /// Where the attribute at `path` is defined, if it is one and that is
    /// known.
    fn position_of(&mut self, path: &AttrPath) -> Result<Option<String>, NodeError> {
        let (Some(parent), Some(Segment::Name(name))) = (path.parent(), path.last()) else {
            return Ok(None);
        };
        let a = match self.resolve(&parent) {
            Ok(Ok(Shape::Value(Value::Attrs(a)))) => a,
            Err(NodeError::Interrupted) => return Err(NodeError::Interrupted),
            _ => return Ok(None),
        };
        Ok(a.position(name).and_then(|p| self.ev.position_of_offset(p)))
    }

    /// The bytes a file node holds, with its type name.
    fn file_bytes(&self, v: &Value) -> Option<(Vec<u8>, &'static str)> {
        Some(match v {
            Value::String(s) => (s.as_bytes().to_vec(), "string"),
            Value::Int(i) => (i.to_string().into_bytes(), "int"),
            Value::Float(f) => (format_float(*f).into_bytes(), "float"),
            Value::Bool(b) => (b.to_string().into_bytes(), "bool"),
            Value::Null => (b"null".to_vec(), "null"),
            Value::Closure(_) => (self.ev.describe_function(v)?.into_bytes(), "lambda"),
            Value::Builtin(_) => (self.ev.describe_function(v)?.into_bytes(), "primop"),
            _ => return None,
        })
    }

    /// ATerm text and input list of the derivation at `path`.
    fn derivation_files(&mut self, path: &AttrPath) -> Result<(Vec<u8>, Vec<u8>), NodeError> {
        let Ok(Shape::Value(v)) = self.resolve(path)? else {
            return Err(NodeError::NotFound);
        };
        if !self.is_derivation(&v)? {
            return Err(NodeError::NotFound);
        }
        let drv_path = self
            .derivation_string(&v, "drvPath")?
            .map_err(|_| NodeError::EvalFailed("the derivation has no drvPath".into()))?;
        let aterm = self.ev.derivation_aterm(&drv_path).ok_or_else(|| {
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
    fn stat(&mut self, path: &AttrPath) -> Result<Stat, NodeError> {
        self.stat_inner(path)
    }

    fn list(&mut self, path: &AttrPath) -> Result<Vec<DirEntry>, NodeError> {
        self.list_inner(path)
    }

    fn read(&mut self, path: &AttrPath) -> Result<Vec<u8>, NodeError> {
        self.read_inner(path)
    }

    fn xattrs(&mut self, path: &AttrPath) -> Result<XattrList, NodeError> {
        self.xattrs_inner(path)
    }

    fn take_inputs(&mut self) -> Vec<Input> {
        to_wire(self.ev.take_new_inputs())
    }
}

impl EvalBackend {
    /// Renders the node: the value's weak head normal form decides the
    /// kind, and a file's bytes its size; nothing else is evaluated.
    fn stat_inner(&mut self, path: &AttrPath) -> Result<Stat, NodeError> {
        if let Some(seg @ (Segment::Drv | Segment::Context)) = path.last() {
            let parent = path.parent().unwrap_or_default();
            let (drv, ctx) = self.derivation_files(&parent)?;
            let bytes = if *seg == Segment::Drv { drv } else { ctx };
            return Ok(Stat::file("string", bytes));
        }
        let shape = match self.resolve(path)? {
            Ok(s) => s,
            Err(msg) => return Ok(Node::failed(msg).into()),
        };
        Ok(match &shape {
            Shape::Link(target, ty) => Node::symlink(*ty, target.clone()).into(),
            Shape::DrvLink(_) => Node {
                target: None,
                ..Node::symlink("derivation", Vec::new())
            }
            .into(),
            Shape::PackageSet(n) => Stat::file("set", package_set_text(*n).into_bytes()),
            Shape::Value(v) => match v {
                Value::Attrs(_) if self.is_derivation(v)? => Node::directory("derivation").into(),
                Value::Attrs(_) => Node::directory("set").into(),
                Value::List(_) => Node::directory("list").into(),
                Value::Path(p) => {
                    Node::symlink("path", p.to_string_lossy().as_bytes().to_vec()).into()
                }
                other => match self.file_bytes(other) {
                    Some((bytes, ty)) => Stat::file(ty, bytes),
                    None => Node::failed("value cannot be rendered").into(),
                },
            },
        })
    }

    /// The node's extended attributes, the costly ones included: a
    /// derivation's `drvPath` and `outPath` (a whole `derivationStrict`),
    /// a string's context, the attribute's position.
    fn xattrs_inner(&mut self, path: &AttrPath) -> Result<XattrList, NodeError> {
        let mut node = self.stat_inner(path)?.node;
        if node.error.is_none() {
            if let Ok(Shape::Value(v)) = self.resolve(path)? {
                match &v {
                    Value::Attrs(_) if self.is_derivation(&v)? => {
                        for (name, attr) in
                            [(xattr::DRV_PATH, "drvPath"), (xattr::OUT_PATH, "outPath")]
                        {
                            match self.derivation_string(&v, attr)? {
                                Ok(p) => node = node.with_xattr(name, p),
                                Err(e) => tracing::warn!("{path}: {attr}: {e}"),
                            }
                        }
                    }
                    Value::String(s) => {
                        if let Some(ctx) = s.context() {
                            let lines: Vec<String> = ctx.iter().map(|c| c.encode()).collect();
                            node = node.with_xattr(xattr::CONTEXT, lines.join("\n"));
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(pos) = self.position_of(path)? {
            node = node.with_xattr(xattr::POSITION, pos);
        }
        Ok(node.into_xattrs())
    }

    fn list_inner(&mut self, path: &AttrPath) -> Result<Vec<DirEntry>, NodeError> {
        let shape = self.resolve(path)?.map_err(NodeError::EvalFailed)?;
        let Shape::Value(v) = shape else {
            return Err(NodeError::NotADirectory);
        };
        // The kind of a child already evaluated, where its value alone
        // decides it: a set or list may still turn out to be a link (to an
        // ancestor, to a store path), so those stay unknown.
        let kind_of_value = |v: &Value| -> Option<NodeKind> {
            match v {
                Value::Attrs(_) | Value::List(_) => None,
                Value::Path(_) => Some(NodeKind::Symlink),
                _ => Some(NodeKind::File),
            }
        };
        let kind_of = |x: &Value| -> Option<NodeKind> {
            match x {
                Value::Thunk(t) => t.value().and_then(|v| kind_of_value(&v)),
                v => kind_of_value(v),
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
                if self.is_derivation(&v)? {
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
