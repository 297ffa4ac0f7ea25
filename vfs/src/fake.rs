//! An in-memory [`Backend`] over a static tree of fake values, with
//! injectable misbehaviour: values that fail, hang until interrupted, take
//! a while, ignore the interrupt, or panic.
//!
//! It stands in for the evaluator in this crate's tests and behind mountd's
//! hidden `--fake-tree` flag (the FUSE integration tests), so the service,
//! the name encoding and the FUSE adapter can be exercised before the real
//! evaluator exists. It follows the same rendering rules the real backend
//! must: see the table in the crate documentation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{Backend, BackendFactory, Interrupt, NodeError, Stat};
use crate::node::{xattr, AttrPath, DirEntry, Node, NodeKind, Segment, XattrList};

/// A fake Nix value.
#[derive(Clone, Debug)]
pub enum FakeValue {
    /// An attribute set, entries in display order.
    Set(Vec<(Vec<u8>, FakeValue)>),
    /// A derivation: a set with the synthetic `.drv` and `.context` entries.
    Derivation(Box<FakeDerivation>),
    /// A list.
    List(Vec<FakeValue>),
    /// The list `[ 0 1 ... n-1 ]`, without storing its elements: for
    /// listings too large to spell out.
    Range(usize),
    /// A string.
    Str(Vec<u8>),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// `null`.
    Null,
    /// A path (a symlink to it).
    Path(Vec<u8>),
    /// A function, described by the given text.
    Lambda(String),
    /// A rendered symlink with the given Nix type and target (derivation
    /// outputs, cycles back to an ancestor).
    Symlink(String, Vec<u8>),
    /// A value whose evaluation throws this message.
    Fail(String),
    /// A value whose evaluation loops until interrupted.
    Hang,
    /// A value that takes this long to evaluate (interruptibly), then is
    /// the inner value.
    Slow(Duration, Box<FakeValue>),
    /// A value whose evaluation ignores the interrupt for this long, then
    /// fails.
    Stuck(Duration),
    /// A value whose evaluation panics the backend.
    Panic,
}

/// The parts of a fake derivation.
#[derive(Clone, Debug)]
pub struct FakeDerivation {
    /// Its attributes (`name`, `system`, outputs, ...).
    pub attrs: Vec<(Vec<u8>, FakeValue)>,
    /// The contents of `.drv`.
    pub drv_text: String,
    /// The lines of `.context`.
    pub context: Vec<String>,
    /// `user.nix.drvPath`.
    pub drv_path: String,
    /// `user.nix.outPath`.
    pub out_path: String,
}

/// Shorthand for a set entry.
pub fn attr(name: &str, value: FakeValue) -> (Vec<u8>, FakeValue) {
    (name.as_bytes().to_vec(), value)
}

/// Shorthand for a string value.
pub fn string(text: &str) -> FakeValue {
    FakeValue::Str(text.as_bytes().to_vec())
}

/// The tree mounted by `attrfs mount --fake-tree`, exercising every kind of
/// node, every awkward name and every misbehaviour the integration tests
/// check.
pub fn sample_tree() -> FakeValue {
    let out = "/nix/store/00000000000000000000000000000000-hello-2.12";
    let drv = "/nix/store/11111111111111111111111111111111-hello-2.12.drv";
    let derivation = FakeDerivation {
        attrs: vec![
            attr("builder", string("/bin/sh")),
            attr("name", string("hello-2.12")),
            attr("out", FakeValue::Symlink("derivation".into(), out.into())),
            attr("outPath", string(out)),
            attr("drvPath", string(drv)),
            attr("system", string("x86_64-linux")),
            attr("type", string("derivation")),
        ],
        drv_text: format!(
            "Derive([(\"out\",\"{out}\",\"\",\"\")],[],[],\"x86_64-linux\",\"/bin/sh\",[],[(\"builder\",\"/bin/sh\"),(\"name\",\"hello-2.12\"),(\"out\",\"{out}\"),(\"system\",\"x86_64-linux\")])"
        ),
        context: vec![
            "/nix/store/22222222222222222222222222222222-bash-5.2.drv!out".into(),
            "/nix/store/33333333333333333333333333333333-hello.tar.gz".into(),
        ],
        drv_path: drv.into(),
        out_path: out.into(),
    };
    FakeValue::Set(vec![
        attr("answer", FakeValue::Int(42)),
        attr("big", FakeValue::Range(10_000)),
        attr(
            "broken",
            FakeValue::Fail("error: this value is broken".into()),
        ),
        attr(
            "fn",
            FakeValue::Lambda("{ a, b ? 1 }: ... (fake.nix:3:8)".into()),
        ),
        attr("hang", FakeValue::Hang),
        attr("hello", string("Hello, world!\n")),
        attr(
            "nested",
            FakeValue::Set(vec![
                attr("a", FakeValue::Set(vec![attr("b", string("deep\n"))])),
                attr(
                    "list",
                    FakeValue::List(vec![
                        FakeValue::Int(1),
                        string("two"),
                        FakeValue::Set(vec![attr("three", FakeValue::Int(3))]),
                    ]),
                ),
                attr("needle", string("a haystack with a needle in it\n")),
                // Longer than a file name may be: left out of listings.
                attr(&"long".repeat(80), string("unreachable\n")),
            ]),
        ),
        attr("nothing", FakeValue::Null),
        attr("path", FakeValue::Path(b"/etc/hostname".to_vec())),
        attr("ratio", FakeValue::Float(0.75)),
        attr("pkg", FakeValue::Derivation(Box::new(derivation))),
        attr("self", FakeValue::Symlink("set".into(), b".".to_vec())),
        attr(
            "slow",
            FakeValue::Slow(
                Duration::from_millis(500),
                Box::new(string("worth the wait\n")),
            ),
        ),
        attr("yes", FakeValue::Bool(true)),
        // The awkward names.
        attr("", string("empty name\n")),
        attr(".", string("dot\n")),
        attr("..", string("dotdot\n")),
        attr(".drv", string("an attribute called .drv\n")),
        attr("a/b", string("slash\n")),
        attr("100%", string("percent\n")),
    ])
}

/// Counters shared by every backend a fake factory builds, for tests that
/// check what reached the evaluation thread.
#[derive(Debug, Default)]
pub struct FakeStats {
    /// Backends built (1, plus one per restart).
    pub backends: AtomicUsize,
    /// Calls of `stat`, `list`, `read` and `xattrs` together.
    pub calls: AtomicUsize,
}

/// A factory of fake backends over `tree`.
pub fn factory(tree: FakeValue) -> BackendFactory {
    factory_with_stats(tree).0
}

/// A factory of fake backends over `tree`, and the counters they update.
pub fn factory_with_stats(tree: FakeValue) -> (BackendFactory, Arc<FakeStats>) {
    let tree = Arc::new(tree);
    let stats = Arc::new(FakeStats::default());
    let shared = stats.clone();
    let factory: BackendFactory = Box::new(move |interrupt| {
        shared.backends.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(FakeBackend {
            tree: tree.clone(),
            interrupt,
            stats: shared.clone(),
        }) as Box<dyn Backend>)
    });
    (factory, stats)
}

/// A [`Backend`] over a fake tree.
pub struct FakeBackend {
    tree: Arc<FakeValue>,
    interrupt: Interrupt,
    stats: Arc<FakeStats>,
}

/// What a path leads to.
enum Target<'a> {
    Value(&'a FakeValue),
    /// An element of a [`FakeValue::Range`].
    Number(usize),
    Drv(&'a FakeDerivation),
    Context(&'a FakeDerivation),
}

impl FakeBackend {
    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    /// Forces a value to weak head normal form: runs its misbehaviour.
    /// `Ok(Err(message))` is a value that throws.
    fn force<'a>(
        &self,
        mut value: &'a FakeValue,
    ) -> Result<Result<&'a FakeValue, String>, NodeError> {
        loop {
            match value {
                FakeValue::Fail(message) => return Ok(Err(message.clone())),
                FakeValue::Hang => loop {
                    if self.interrupted() {
                        return Err(NodeError::Interrupted);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                },
                FakeValue::Slow(duration, inner) => {
                    let until = Instant::now() + *duration;
                    while Instant::now() < until {
                        if self.interrupted() {
                            return Err(NodeError::Interrupted);
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    value = inner;
                }
                FakeValue::Stuck(duration) => {
                    std::thread::sleep(*duration);
                    return Ok(Err("error: the stuck value finally gave up".into()));
                }
                FakeValue::Panic => panic!("the fake value panics"),
                _ => return Ok(Ok(value)),
            }
        }
    }

    /// Walks `path`, forcing every value on the way. `Ok(Err(message))`
    /// means the last value throws.
    fn resolve(&self, path: &AttrPath) -> Result<Result<Target<'_>, String>, NodeError> {
        let mut current = Target::Value(&self.tree);
        for (depth, segment) in path.segments().iter().enumerate() {
            let value = match current {
                Target::Value(value) => match self.force(value)? {
                    Ok(value) => value,
                    Err(message) => {
                        return Err(NodeError::EvalFailed(format!(
                            "{message}\n(while evaluating {})",
                            AttrPath::from_segments(
                                path.segments()[..depth]
                                    .iter()
                                    .map(|s| (*s).clone())
                                    .collect()
                            )
                        )))
                    }
                },
                _ => return Err(NodeError::NotADirectory),
            };
            current = match (value, segment) {
                (FakeValue::Set(attrs), Segment::Name(name)) => lookup(attrs, name)
                    .map(Target::Value)
                    .ok_or(NodeError::NotFound)?,
                (FakeValue::Derivation(d), Segment::Name(name)) => lookup(&d.attrs, name)
                    .map(Target::Value)
                    .ok_or(NodeError::NotFound)?,
                (FakeValue::Derivation(d), Segment::Drv) => Target::Drv(d),
                (FakeValue::Derivation(d), Segment::Context) => Target::Context(d),
                (FakeValue::List(items), _) => segment
                    .as_index()
                    .and_then(|i| items.get(i))
                    .map(Target::Value)
                    .ok_or(NodeError::NotFound)?,
                (FakeValue::Range(n), _) => segment
                    .as_index()
                    .filter(|i| i < n)
                    .map(Target::Number)
                    .ok_or(NodeError::NotFound)?,
                (FakeValue::Set(_), _) => return Err(NodeError::NotFound),
                _ => return Err(NodeError::NotADirectory),
            };
        }
        Ok(match current {
            Target::Value(value) => self.force(value)?.map(Target::Value),
            other => Ok(other),
        })
    }

    fn contents(target: &Target<'_>) -> Option<Vec<u8>> {
        Some(match target {
            Target::Number(n) => n.to_string().into_bytes(),
            Target::Drv(d) => d.drv_text.clone().into_bytes(),
            Target::Context(d) => d
                .context
                .iter()
                .flat_map(|l| format!("{l}\n").into_bytes())
                .collect(),
            Target::Value(value) => match value {
                FakeValue::Str(bytes) => bytes.clone(),
                FakeValue::Int(i) => i.to_string().into_bytes(),
                FakeValue::Float(f) => f.to_string().into_bytes(),
                FakeValue::Bool(b) => b.to_string().into_bytes(),
                FakeValue::Null => b"null".to_vec(),
                FakeValue::Lambda(text) => text.clone().into_bytes(),
                _ => return None,
            },
        })
    }
}

fn lookup<'a>(attrs: &'a [(Vec<u8>, FakeValue)], name: &[u8]) -> Option<&'a FakeValue> {
    attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn type_of(value: &FakeValue) -> &'static str {
    match value {
        FakeValue::Set(_) => "set",
        FakeValue::Derivation(_) => "derivation",
        FakeValue::List(_) | FakeValue::Range(_) => "list",
        FakeValue::Str(_) => "string",
        FakeValue::Int(_) => "int",
        FakeValue::Float(_) => "float",
        FakeValue::Bool(_) => "bool",
        FakeValue::Null => "null",
        FakeValue::Path(_) => "path",
        FakeValue::Lambda(_) => "lambda",
        FakeValue::Symlink(..) => "set",
        FakeValue::Fail(_)
        | FakeValue::Hang
        | FakeValue::Slow(..)
        | FakeValue::Stuck(_)
        | FakeValue::Panic => "thunk",
    }
}

impl Backend for FakeBackend {
    fn stat(&mut self, path: &AttrPath) -> Result<Stat, NodeError> {
        self.stats.calls.fetch_add(1, Ordering::SeqCst);
        let target = match self.resolve(path)? {
            Ok(target) => target,
            Err(message) => return Ok(Node::failed(message).into()),
        };
        let contents = Self::contents(&target);
        Ok(match (target, contents) {
            (Target::Number(_), Some(bytes)) => Stat::file("int", bytes),
            (Target::Drv(_) | Target::Context(_), Some(bytes)) => Stat::file("string", bytes),
            (Target::Value(value), Some(bytes)) => Stat::file(type_of(value), bytes),
            (Target::Value(value), None) => match value {
                FakeValue::Path(target) => Node::symlink("path", target.clone()),
                FakeValue::Symlink(nix_type, target) => {
                    Node::symlink(nix_type.clone(), target.clone())
                }
                _ => Node::directory(type_of(value)),
            }
            .into(),
            (_, None) => return Err(NodeError::NotAFile),
        })
    }

    fn list(&mut self, path: &AttrPath) -> Result<Vec<DirEntry>, NodeError> {
        self.stats.calls.fetch_add(1, Ordering::SeqCst);
        let value = match self.resolve(path)? {
            Ok(Target::Value(value)) => value,
            Ok(_) => return Err(NodeError::NotADirectory),
            Err(message) => return Err(NodeError::EvalFailed(message)),
        };
        let names = |attrs: &[(Vec<u8>, FakeValue)]| -> Vec<DirEntry> {
            attrs
                .iter()
                .map(|(name, _)| DirEntry::new(Segment::name(name)))
                .collect()
        };
        match value {
            FakeValue::Set(attrs) => Ok(names(attrs)),
            FakeValue::Derivation(d) => {
                let mut entries = vec![
                    DirEntry::with_kind(Segment::Drv, NodeKind::File),
                    DirEntry::with_kind(Segment::Context, NodeKind::File),
                ];
                entries.extend(names(&d.attrs));
                Ok(entries)
            }
            FakeValue::List(items) => Ok((0..items.len())
                .map(|i| DirEntry::new(Segment::index(i)))
                .collect()),
            // Range elements are numbers, known without forcing anything.
            FakeValue::Range(n) => Ok((0..*n)
                .map(|i| DirEntry::with_kind(Segment::index(i), NodeKind::File))
                .collect()),
            _ => Err(NodeError::NotADirectory),
        }
    }

    fn read(&mut self, path: &AttrPath) -> Result<Vec<u8>, NodeError> {
        self.stats.calls.fetch_add(1, Ordering::SeqCst);
        match self.resolve(path)? {
            Ok(target) => Self::contents(&target).ok_or(NodeError::NotAFile),
            Err(message) => Err(NodeError::EvalFailed(message)),
        }
    }

    fn xattrs(&mut self, path: &AttrPath) -> Result<XattrList, NodeError> {
        let stat = self.stat(path)?;
        let mut node = stat.node.with_xattr(xattr::POSITION, "fake.nix:1:1");
        if let Ok(Target::Value(FakeValue::Derivation(d))) = self.resolve(path)? {
            node = node
                .with_xattr(xattr::DRV_PATH, d.drv_path.as_bytes())
                .with_xattr(xattr::OUT_PATH, d.out_path.as_bytes());
        }
        Ok(node.into_xattrs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn backend() -> Box<dyn Backend> {
        factory(sample_tree())(Arc::new(AtomicBool::new(false))).unwrap()
    }

    fn path(names: &[&str]) -> AttrPath {
        AttrPath::from_segments(names.iter().map(Segment::name).collect())
    }

    #[test]
    fn renders_the_sample_tree() {
        let mut b = backend();
        assert_eq!(
            b.stat(&AttrPath::root()).unwrap().node.kind,
            NodeKind::Directory
        );
        let hello = b.stat(&path(&["hello"])).unwrap();
        assert_eq!((hello.node.kind, hello.node.size), (NodeKind::File, 14));
        assert_eq!(hello.contents.as_deref(), Some(&b"Hello, world!\n"[..]));
        assert_eq!(b.read(&path(&["hello"])).unwrap(), b"Hello, world!\n");
        assert_eq!(b.read(&path(&["answer"])).unwrap(), b"42");
        assert_eq!(b.read(&path(&["nested", "list", "1"])).unwrap(), b"two");
        assert_eq!(b.read(&path(&["big", "9999"])).unwrap(), b"9999");
        assert_eq!(b.stat(&path(&["big", "10000"])), Err(NodeError::NotFound));
        assert_eq!(
            b.stat(&path(&["hello", "x"])),
            Err(NodeError::NotADirectory)
        );
        assert_eq!(b.stat(&path(&["nope"])), Err(NodeError::NotFound));
        let link = b.stat(&path(&["path"])).unwrap().node;
        assert_eq!(link.target.as_deref(), Some(&b"/etc/hostname"[..]));
    }

    #[test]
    fn failing_values_are_nodes_and_fail_their_children() {
        let mut b = backend();
        let broken = b.stat(&path(&["broken"])).unwrap().node;
        assert_eq!(broken.error.as_deref(), Some("error: this value is broken"));
        assert!(matches!(
            b.stat(&path(&["broken", "x"])),
            Err(NodeError::EvalFailed(_))
        ));
        assert!(matches!(
            b.read(&path(&["broken"])),
            Err(NodeError::EvalFailed(_))
        ));
    }

    #[test]
    fn derivations_list_their_synthetic_entries() {
        let mut b = backend();
        let entries = b.list(&path(&["pkg"])).unwrap();
        assert_eq!(entries[0].name, Segment::Drv);
        assert_eq!(entries[1].name, Segment::Context);
        let drv = b.read(&path(&["pkg"]).child(Segment::Drv)).unwrap();
        assert!(drv.starts_with(b"Derive("));
        // The costly attributes come with `xattrs`, not with `stat`.
        let node = b.stat(&path(&["pkg"])).unwrap().node;
        assert!(node.xattr(xattr::DRV_PATH).is_none());
        let xattrs = b.xattrs(&path(&["pkg"])).unwrap();
        assert!(xattrs.iter().any(|(n, _)| n == xattr::DRV_PATH));
    }

    #[test]
    fn hanging_values_stop_when_interrupted() {
        let flag = Arc::new(AtomicBool::new(false));
        let mut b = factory(sample_tree())(flag.clone()).unwrap();
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            flag.store(true, Ordering::SeqCst);
        });
        assert_eq!(b.stat(&path(&["hang"])), Err(NodeError::Interrupted));
        setter.join().unwrap();
    }
}
