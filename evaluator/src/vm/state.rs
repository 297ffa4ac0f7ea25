//! State shared by every evaluation: sources, the global scope, the import
//! cache, options and the interrupt flag.

use crate::compiler::{Globals, Lints};
use crate::errors::{ErrorKind, EvalResult};
use crate::io::EvalIO;
use crate::source::SourceMap;
use crate::value::{NixString, Value};
use rustc_hash::FxHashMap;
use std::cell::{OnceCell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// One `-I`/`NIX_PATH` entry: `prefix=path` or a bare path (empty prefix).
#[derive(Clone, Debug)]
pub struct SearchPathEntry {
    /// The prefix (`nixpkgs` in `nixpkgs=/path`), empty for bare entries.
    pub prefix: String,
    /// The path or URL.
    pub path: String,
}

impl SearchPathEntry {
    /// Parses `prefix=path` or `path`.
    pub fn parse(s: &str) -> Self {
        match s.split_once('=') {
            Some((p, path)) => SearchPathEntry {
                prefix: p.into(),
                path: path.into(),
            },
            None => SearchPathEntry {
                prefix: String::new(),
                path: s.into(),
            },
        }
    }
}

/// Splits `NIX_PATH` at colons as C++ Nix does: an entry whose path is a
/// URL (`nixpkgs=https://host/x.tar.gz`) keeps the colon of its scheme
/// (only that one: a URL with a port cannot be given in `NIX_PATH`, in C++
/// Nix either; `-I` takes it).
pub fn split_nix_path(s: &str) -> Vec<&str> {
    let is_url = |p: &str| {
        [
            "http://", "https://", "file://", "channel:", "git://", "s3://", "ssh://", "flake:",
        ]
        .iter()
        .any(|scheme| p.starts_with(scheme))
    };
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b':' {
            let entry = &s[start..];
            let value = entry.split_once('=').map_or(entry, |(_, v)| v);
            let mut end = i;
            if is_url(value) {
                end = s[i + 1..].find(':').map_or(s.len(), |j| i + 1 + j);
            }
            out.push(&s[start..end]);
            start = end + 1;
            i = end + 1;
            continue;
        }
        i += 1;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

#[cfg(test)]
mod nix_path_tests {
    use super::split_nix_path;

    #[test]
    fn url_entries_keep_their_scheme() {
        assert_eq!(
            split_nix_path("a=/x:nixpkgs=https://host/n.tar.gz:/y"),
            ["a=/x", "nixpkgs=https://host/n.tar.gz", "/y"]
        );
        assert_eq!(split_nix_path("/a:/b"), ["/a", "/b"]);
        assert_eq!(
            split_nix_path("x=channel:nixos-unstable"),
            ["x=channel:nixos-unstable"]
        );
    }
}

/// Options fixed for the life of an [`EvalState`].
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// `-I` entries then `NIX_PATH` entries, in lookup order.
    pub search_path: Vec<SearchPathEntry>,
    /// `$HOME`, for `~/` paths.
    pub home: Option<PathBuf>,
    /// `builtins.currentSystem`.
    pub system: String,
    /// `builtins.storeDir`.
    pub store_dir: String,
    /// Directory `-E` expressions resolve relative paths against.
    pub cwd: PathBuf,
    /// Set from another thread to cancel the running evaluation.
    pub interrupt: Arc<AtomicBool>,
    /// Syntax lints.
    pub lints: Lints,
    /// Enabled experimental features (`--extra-experimental-features`).
    pub experimental_features: Vec<String>,
    /// `--pure-eval`: no search path, environment, clock or current
    /// system, and no file outside the store.
    pub pure_eval: bool,
    /// `--max-call-depth`: nesting (VM frames: calls and forced thunks)
    /// past which evaluation stops with a stack overflow error; `None` is
    /// the VM's own bound.
    pub max_call_depth: Option<usize>,
    /// The compiled-file cache, if files are to be loaded through it (the
    /// commands turn it on from the environment; off by default, so that
    /// a library user or test writes nothing unless it asks).
    pub compile_cache: Option<crate::compiler::cache::CacheConfig>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        let mut search_path = Vec::new();
        if let Ok(p) = std::env::var("NIX_PATH") {
            search_path.extend(
                split_nix_path(&p)
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .map(SearchPathEntry::parse),
            );
        }
        EvalOptions {
            search_path,
            home: std::env::var_os("HOME").map(PathBuf::from),
            system: "x86_64-linux".into(),
            store_dir: "/nix/store".into(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            interrupt: Arc::new(AtomicBool::new(false)),
            lints: Lints::default(),
            experimental_features: Vec::new(),
            pure_eval: false,
            max_call_depth: None,
            compile_cache: None,
        }
    }
}

/// What the evaluation knows about a derivation it instantiated
/// (`derivationStrict`), by `.drv` path.
#[derive(Debug, Clone)]
pub struct KnownDerivation {
    /// The exact ATerm text of the `.drv` file.
    pub aterm: String,
    /// Its hash modulo fixed-output derivations (for dependents' hashes).
    pub hash_modulo: [u8; 32],
    /// Its output names.
    pub outputs: Vec<String>,
}

/// Everything an evaluation shares.
pub struct EvalState {
    /// All source texts.
    pub sources: SourceMap,
    /// File access.
    pub io: Box<dyn EvalIO>,
    /// The same filesystem for the fetchers: what they add to the store is
    /// read from where it is, whatever pure mode allows the evaluator.
    pub(crate) fetch_io: Box<dyn EvalIO>,
    /// Options.
    pub options: EvalOptions,
    /// Set from another thread to cancel the running evaluation.
    pub interrupt: Arc<AtomicBool>,
    globals: OnceCell<Rc<Globals>>,
    /// Files loaded by `import`, by resolved path: each is evaluated once
    /// (see `loader.rs`).
    pub(super) imports: RefCell<FxHashMap<PathBuf, Value>>,
    /// Store paths computed for source paths, by source path.
    pub(crate) path_cache: RefCell<FxHashMap<PathBuf, NixString>>,
    /// Derivations instantiated so far, by `.drv` path.
    derivations: RefCell<FxHashMap<String, Rc<KnownDerivation>>>,
    /// The virtual store: sources, text files and derivation outputs this
    /// evaluation created (see `store.rs`).
    pub(crate) store: Rc<crate::store::StoreState>,
    /// Every input the evaluation read (see `record.rs`).
    pub(crate) inputs: Rc<crate::record::InputLog>,
}

impl EvalState {
    /// A new state with the builtins installed.
    pub fn new(io: Box<dyn EvalIO>, options: EvalOptions) -> Rc<Self> {
        let store = Rc::new(crate::store::StoreState::default());
        // Pure mode restricts what the evaluator sees (store paths only),
        // above the store view that maps store paths to where their
        // contents are; fetchers read the trees they put in the store
        // through the store view alone.
        // The recording door is the innermost, so that whatever is read,
        // through whichever view, is recorded once as the real path it is.
        let fetched = attrfs_fetch::Cache::from_env();
        let inputs = Rc::new(crate::record::InputLog::new(vec![
            PathBuf::from(&options.store_dir),
            fetched.nix_store().to_path_buf(),
            fetched.root().join("store"),
        ]));
        let raw: Rc<dyn EvalIO> = Rc::new(crate::record::RecordingIO::new(io, inputs.clone()));
        let view = |raw: &Rc<dyn EvalIO>| -> Box<dyn EvalIO> {
            Box::new(crate::store::StoreView::new(
                Box::new(crate::io::SharedIO(raw.clone())),
                store.clone(),
            ))
        };
        let fetch_io = view(&raw);
        let io: Rc<dyn EvalIO> = if options.pure_eval {
            Rc::new(crate::io::PureIO::new(view(&raw), &options.store_dir))
        } else {
            Rc::from(view(&raw))
        };
        let state = Rc::new(EvalState {
            // Released source texts are read again as the evaluation reads.
            sources: SourceMap::with_reader(io.clone(), super::loader::text_of_file),
            io: Box::new(crate::io::SharedIO(io)),
            fetch_io,
            interrupt: options.interrupt.clone(),
            options,
            globals: OnceCell::new(),
            imports: RefCell::default(),
            path_cache: RefCell::default(),
            derivations: RefCell::default(),
            store,
            inputs,
        });
        let globals = crate::builtins::globals(&state);
        let _ = state.globals.set(Rc::new(globals));
        state
    }

    /// The global scope.
    pub fn globals(&self) -> &Rc<Globals> {
        self.globals
            .get()
            .expect("globals are set in EvalState::new")
    }

    /// Records an input that is not a file read (see `record.rs`).
    pub fn record_input(
        &self,
        kind: crate::record::InputKind,
        name: &str,
        fingerprint: impl FnOnce() -> String,
    ) {
        self.inputs.record(kind, name, fingerprint);
    }

    /// Fails with [`ErrorKind::Interrupted`] once the interrupt flag is set;
    /// for long loops inside builtins (the VM polls on its own).
    pub fn check_interrupt(&self) -> EvalResult<()> {
        if self.interrupt.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(ErrorKind::Interrupted);
        }
        Ok(())
    }

    /// Records a derivation instantiated by `derivationStrict`.
    pub fn register_derivation(&self, drv_path: String, drv: KnownDerivation) {
        self.derivations.borrow_mut().insert(drv_path, Rc::new(drv));
    }

    /// A derivation instantiated in this evaluation.
    pub fn known_derivation(&self, drv_path: &str) -> Option<Rc<KnownDerivation>> {
        self.derivations.borrow().get(drv_path).cloned()
    }

    /// The `.drv` text of a derivation instantiated in this evaluation.
    pub fn derivation_aterm(&self, drv_path: &str) -> Option<String> {
        self.known_derivation(drv_path).map(|d| d.aterm.clone())
    }

    /// `{ column; file; line; }` for a global source offset (as
    /// `unsafeGetAttrPos` and `__curPos` give), or null if unknown.
    pub fn position_value(&self, offset: u32) -> Value {
        match self
            .sources
            .position(crate::source::Span::new(offset, offset))
        {
            Some(p) => Value::attrs(crate::value::NixAttrs::from_sorted(vec![
                (NixString::interned(b"column"), Value::Int(p.column as i64)),
                (NixString::interned(b"file"), Value::string(p.file)),
                (NixString::interned(b"line"), Value::Int(p.line as i64)),
            ])),
            None => Value::Null,
        }
    }

    /// Adds a source path to the (virtual) store: its store path as a string
    /// with that path as context.
    pub fn copy_path_to_store(&self, path: &Path) -> EvalResult<NixString> {
        if let Some(s) = self.path_cache.borrow().get(path) {
            return Ok(s.clone());
        }
        let s = crate::store::add_path_to_store(self, path, None, true, None)?;
        self.path_cache
            .borrow_mut()
            .insert(path.to_path_buf(), s.clone());
        Ok(s)
    }
}

/// An I/O error's message without Rust's "(os error N)" suffix.
pub fn io_msg(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        // A refusal with its own message (pure evaluation) keeps it.
        std::io::ErrorKind::PermissionDenied if e.get_ref().is_none() => "Permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}
