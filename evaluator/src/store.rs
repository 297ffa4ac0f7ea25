//! The evaluator's virtual store: glue between evaluation and the store
//! arithmetic of `attrfs-store`.
//!
//! Nothing is ever written to `/nix/store`. Instead, every store object an
//! evaluation "creates" is remembered in a [`StoreState`]:
//!
//! - the outputs of derivations instantiated by `derivationStrict` (the
//!   derivations themselves are in `EvalState`'s table:
//!   [`EvalState::derivation_aterm`], [`EvalState::derivation_inputs`]);
//! - sources added by path interpolation, `builtins.path` and
//!   `filterSource` (the original path and what the filter left out);
//! - text files from `builtins.toFile` (contents and references).
//!
//! The evaluator reads files through a [`StoreView`] wrapped around the
//! caller's [`EvalIO`]: paths inside known sources and text files are served
//! from their origin, so `readFile "${./x}"` or `import (builtins.path {...})`
//! work as in C++ Nix, and reading inside the (never built) output of a known
//! derivation fails with an error naming the derivation
//! (import-from-derivation is not supported).
//!
//! `<nix/…>` sources built into C++ Nix (`fetchurl.nix`) live under
//! [`COREPKGS_PREFIX`]; see [`corepkg_source`].

use crate::errors::{ErrorKind, EvalResult};
use crate::io::{EvalIO, FileType, Metadata};
use crate::value::{ContextElem, NixContext, NixString};
use crate::vm::{io_msg, EvalState};
use attrfs_store::nar::{flat_hash, nar_hash_sha256, Kind, NarError, NarSource};
use attrfs_store::path::{make_fixed_output_path, make_text_path_for, IngestionMethod, STORE_DIR};
use attrfs_store::{Derivation, Hash, HashAlgo, StorePath};
use rustc_hash::{FxHashMap, FxHashSet};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Where `<nix/…>` resolves when no search path entry provides the file
/// (as in C++ Nix): `<nix/fetchurl.nix>` is `/__corepkgs__/fetchurl.nix`.
pub const COREPKGS_PREFIX: &str = "/__corepkgs__/";

/// C++ Nix's `<nix/fetchurl.nix>`: a fixed-output derivation built by the
/// builtin `fetchurl` builder. Attribute for attribute what Nix 2.8 writes,
/// so the `.drv` files of the nixpkgs bootstrap match.
const FETCHURL_NIX: &str = r#"
{ system ? "", url, hash ? "", md5 ? "", sha1 ? "", sha256 ? "", sha512 ? ""
, outputHash ?
    if hash != "" then hash
    else if sha512 != "" then sha512
    else if sha1 != "" then sha1
    else if md5 != "" then md5
    else sha256
, outputHashAlgo ?
    if hash != "" then ""
    else if sha512 != "" then "sha512"
    else if sha1 != "" then "sha1"
    else if md5 != "" then "md5"
    else "sha256"
, executable ? false
, unpack ? false
, name ? baseNameOf (toString url)
}:
derivation {
  inherit name url executable unpack outputHash outputHashAlgo;
  builder = "builtin:fetchurl";
  system = "builtin";
  outputHashMode = if unpack || executable then "recursive" else "flat";
  preferLocalBuild = true;
  impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
  urls = [ url ];
}
"#;

/// The source of a built-in `<nix/…>` file, given the path `findFile`
/// resolved it to (under [`COREPKGS_PREFIX`]); `None` for other paths.
pub fn corepkg_source(path: &Path) -> Option<&'static str> {
    let rest = path.to_str()?.strip_prefix(COREPKGS_PREFIX)?;
    match rest {
        "fetchurl.nix" => Some(FETCHURL_NIX),
        _ => None,
    }
}

/// Entries left out of a filtered source (absolute paths at the origin; a
/// left-out directory's contents are not listed).
pub type Excluded = Rc<FxHashSet<PathBuf>>;

/// A store object other than a derivation.
enum StoreObject {
    /// A source added from the filesystem.
    Source {
        /// The path it was added from.
        origin: PathBuf,
        /// What a filter left out, if there was one.
        excluded: Option<Excluded>,
    },
    /// Fetched contents not fetched yet (a locked input whose store path
    /// is known from its hash): fetched on first access, then a `Source`.
    Lazy(Materialise),
    /// A text file (`builtins.toFile`).
    Text {
        /// The file's contents.
        contents: Rc<[u8]>,
        /// The store paths it refers to.
        references: Vec<String>,
    },
}

/// Fetches a store object's contents and says where they are now.
pub type Materialise = Rc<dyn Fn() -> Result<PathBuf, String>>;

/// Everything an evaluation put into its virtual store, besides the
/// derivations themselves (which `EvalState` records).
#[derive(Default)]
pub struct StoreState {
    /// Output path -> (derivation path, output name).
    outputs: RefCell<FxHashMap<String, (String, String)>>,
    objects: RefCell<FxHashMap<String, StoreObject>>,
    /// Inputs fetched in this evaluation, by their description.
    pub(crate) fetch_memo: RefCell<FxHashMap<String, crate::inputs::Fetched>>,
    /// attrfs's cache and the Nix store it reads fetched contents from.
    cache: std::cell::OnceCell<attrfs_fetch::Cache>,
}

impl StoreState {
    /// Records the outputs of an instantiated derivation.
    pub(crate) fn add_outputs(&self, drv_path: &str, outputs: &[(String, String)]) {
        let mut map = self.outputs.borrow_mut();
        for (name, path) in outputs {
            map.insert(path.clone(), (drv_path.to_string(), name.clone()));
        }
    }

    /// The derivation and output name a store path is an output of.
    pub(crate) fn output_of(&self, store_path: &str) -> Option<(String, String)> {
        self.outputs.borrow().get(store_path).cloned()
    }

    /// How a path inside the store is to be read.
    fn route(&self, path: &Path) -> Route {
        let bytes = path.as_os_str().as_bytes();
        let Some(rest) = bytes
            .strip_prefix(STORE_DIR.as_bytes())
            .and_then(|r| r.strip_prefix(b"/"))
        else {
            return Route::Outside;
        };
        let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let store_path = &bytes[..STORE_DIR.len() + 1 + end];
        let sub = rest[end..].strip_prefix(b"/").unwrap_or(&[]);
        let Ok(store_path) = std::str::from_utf8(store_path) else {
            return Route::Outside;
        };
        let lazy = match self.objects.borrow().get(store_path) {
            Some(StoreObject::Lazy(f)) => Some(f.clone()),
            _ => None,
        };
        if let Some(fetch) = lazy {
            match fetch() {
                Ok(origin) => {
                    self.objects.borrow_mut().insert(
                        store_path.to_string(),
                        StoreObject::Source {
                            origin,
                            excluded: None,
                        },
                    );
                }
                Err(msg) => return Route::Failed(msg),
            }
        }
        let objects = self.objects.borrow();
        match objects.get(store_path) {
            Some(StoreObject::Text { contents, .. }) => {
                if sub.is_empty() {
                    Route::Text(contents.clone())
                } else {
                    Route::Missing
                }
            }
            Some(StoreObject::Source { origin, excluded }) => {
                let mut real = origin.clone();
                for component in Path::new(std::ffi::OsStr::from_bytes(sub)).components() {
                    real.push(component);
                    if excluded.as_ref().is_some_and(|e| e.contains(&real)) {
                        return Route::Missing;
                    }
                }
                Route::Source {
                    real,
                    excluded: excluded.clone(),
                    origin: origin.clone(),
                    object: PathBuf::from(store_path),
                }
            }
            Some(StoreObject::Lazy(_)) => Route::Missing,
            None => match self.outputs.borrow().get(store_path) {
                Some((drv, output)) => Route::Output {
                    drv: drv.clone(),
                    output: output.clone(),
                },
                None => Route::Outside,
            },
        }
    }
}

/// Where [`StoreView`] sends an access.
enum Route {
    /// Not a known store object: the underlying filesystem.
    Outside,
    /// Inside a source: where it really is.
    Source {
        real: PathBuf,
        excluded: Option<Excluded>,
        /// Where the source's root really is.
        origin: PathBuf,
        /// The source's store path.
        object: PathBuf,
    },
    /// A text file.
    Text(Rc<[u8]>),
    /// Inside a known object but filtered out (or below a text file).
    Missing,
    /// Inside a derivation output.
    Output { drv: String, output: String },
    /// Inside fetched contents that could not be fetched.
    Failed(String),
}

/// The [`EvalIO`] the evaluator uses: the caller's filesystem with the
/// virtual store laid over it (see the module documentation).
pub struct StoreView {
    inner: Box<dyn EvalIO>,
    store: Rc<StoreState>,
}

impl StoreView {
    /// Lays `store` over `inner`.
    pub fn new(inner: Box<dyn EvalIO>, store: Rc<StoreState>) -> Self {
        StoreView { inner, store }
    }

    /// A file read as the store routes its path: `read` through the inner
    /// door for a file on disk (a source's real path), `text` of the
    /// contents of a text added to the store.
    fn read_routed<T>(
        &self,
        path: &Path,
        read: impl FnOnce(&dyn EvalIO, &Path) -> io::Result<T>,
        text: impl FnOnce(&[u8]) -> T,
    ) -> io::Result<T> {
        match self.store.route(path) {
            Route::Outside => read(&*self.inner, path),
            Route::Source { real, .. } => read(&*self.inner, &real),
            Route::Text(c) => Ok(text(&c)),
            Route::Missing => Err(not_found()),
            Route::Failed(m) => Err(io::Error::other(m)),
            Route::Output { drv, output } => {
                read(&*self.inner, path).map_err(|e| ifd_error(&drv, &output, e))
            }
        }
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

/// The error for reading inside an output that has not been built.
/// (The caller's message names the path.)
fn ifd_error(drv: &str, output: &str, err: io::Error) -> io::Error {
    if err.kind() != io::ErrorKind::NotFound {
        return err;
    }
    io::Error::other(format!(
        "it is inside output '{output}' of derivation '{drv}', which would have \
         to be built first (import from derivation is not supported)"
    ))
}

impl EvalIO for StoreView {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.read_routed(path, |io, p| io.read_file(p), <[u8]>::to_vec)
    }

    fn read_file_hashed(&self, path: &Path) -> io::Result<(Vec<u8>, crate::io::Digest)> {
        self.read_routed(
            path,
            |io, p| io.read_file_hashed(p),
            |c| (c.to_vec(), crate::io::sha256(c)),
        )
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>> {
        match self.store.route(path) {
            Route::Outside => self.inner.read_dir(path),
            Route::Source { real, excluded, .. } => {
                let mut entries = self.inner.read_dir(&real)?;
                if let Some(ex) = excluded {
                    entries.retain(|(name, _)| !ex.contains(&real.join(name)));
                }
                Ok(entries)
            }
            Route::Text(_) => Err(io::Error::other("Not a directory")),
            Route::Missing => Err(not_found()),
            Route::Failed(m) => Err(io::Error::other(m)),
            Route::Output { drv, output } => self
                .inner
                .read_dir(path)
                .map_err(|e| ifd_error(&drv, &output, e)),
        }
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        match self.store.route(path) {
            Route::Outside => self.inner.file_type(path),
            Route::Source { real, .. } => self.inner.file_type(&real),
            Route::Text(_) => Ok(FileType::Regular),
            Route::Missing => Err(not_found()),
            Route::Failed(m) => Err(io::Error::other(m)),
            Route::Output { drv, output } => self
                .inner
                .file_type(path)
                .map_err(|e| ifd_error(&drv, &output, e)),
        }
    }

    fn path_exists(&self, path: &Path) -> bool {
        match self.store.route(path) {
            Route::Outside | Route::Output { .. } => self.inner.path_exists(path),
            Route::Source { real, .. } => self.inner.path_exists(&real),
            Route::Text(_) => true,
            Route::Missing | Route::Failed(_) => false,
        }
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        match self.store.route(path) {
            Route::Outside => self.inner.read_link(path),
            Route::Source { real, .. } => self.inner.read_link(&real),
            Route::Text(_) => Err(io::Error::other("Invalid argument")),
            Route::Missing => Err(not_found()),
            Route::Failed(m) => Err(io::Error::other(m)),
            Route::Output { drv, output } => self
                .inner
                .read_link(path)
                .map_err(|e| ifd_error(&drv, &output, e)),
        }
    }

    fn is_executable(&self, path: &Path) -> io::Result<bool> {
        match self.store.route(path) {
            Route::Outside => self.inner.is_executable(path),
            Route::Source { real, .. } => self.inner.is_executable(&real),
            Route::Text(_) => Ok(false),
            Route::Missing => Err(not_found()),
            Route::Failed(m) => Err(io::Error::other(m)),
            Route::Output { drv, output } => self
                .inner
                .is_executable(path)
                .map_err(|e| ifd_error(&drv, &output, e)),
        }
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        match self.store.route(path) {
            Route::Outside => self.inner.canonicalize(path),
            // Followed where the source really is, then seen from the
            // store again (a link out of the source leads out of it).
            Route::Source {
                real,
                origin,
                object,
                ..
            } => {
                let target = self.inner.canonicalize(&real)?;
                let root = self.inner.canonicalize(&origin)?;
                Ok(match target.strip_prefix(&root) {
                    Ok(rest) if rest.as_os_str().is_empty() => object,
                    Ok(rest) => object.join(rest),
                    Err(_) => target,
                })
            }
            Route::Text(_) => Ok(path.to_path_buf()),
            Route::Missing => Err(not_found()),
            Route::Failed(m) => Err(io::Error::other(m)),
            Route::Output { drv, output } => self
                .inner
                .canonicalize(path)
                .map_err(|e| ifd_error(&drv, &output, e)),
        }
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        match self.store.route(path) {
            Route::Outside => self.inner.metadata(path),
            Route::Source { real, .. } => self.inner.metadata(&real),
            // As a store object: read-only, modified at the epoch + 1.
            Route::Text(c) => Ok(Metadata {
                kind: FileType::Regular,
                mode: 0o100444,
                size: c.len() as u64,
                mtime: 1,
                mtime_nsec: 0,
                ino: 0,
            }),
            Route::Missing => Err(not_found()),
            Route::Failed(m) => Err(io::Error::other(m)),
            Route::Output { drv, output } => self
                .inner
                .metadata(path)
                .map_err(|e| ifd_error(&drv, &output, e)),
        }
    }
}

/// A [`NarSource`] over the evaluator's I/O.
struct IoSource<'a>(&'a dyn EvalIO);

impl NarSource for IoSource<'_> {
    fn kind(&self, path: &Path) -> io::Result<Kind> {
        Ok(match self.0.file_type(path)? {
            FileType::Regular => Kind::Regular,
            FileType::Directory => Kind::Directory,
            FileType::Symlink => Kind::Symlink,
            FileType::Unknown => Kind::Unknown,
        })
    }

    fn is_executable(&self, path: &Path) -> io::Result<bool> {
        self.0.is_executable(path)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0.read_file(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        Ok(self
            .0
            .read_dir(path)?
            .into_iter()
            .map(|(name, _)| OsString::from(name))
            .collect())
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        self.0.read_link(path)
    }
}

/// A NAR error worded like C++ Nix (`getting status of '/x': No such file
/// or directory`).
fn nar_error(e: NarError) -> ErrorKind {
    match e {
        NarError::Io { what, path, source } => {
            ErrorKind::Io(format!("{what} '{}': {}", path.display(), io_msg(&source)))
        }
        other => ErrorKind::Io(other.to_string()),
    }
}

/// The last component of a path string, as C++ Nix's `baseNameOf`
/// (trailing slashes ignored).
pub fn base_name(path: &str) -> &str {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// A store path as a string whose context is that path.
pub fn store_path_string(path: &str) -> NixString {
    let mut ctx = NixContext::new();
    ctx.insert(ContextElem::Plain(path.to_string()));
    NixString::new(path.as_bytes(), Some(ctx))
}

/// Computes the store path of a source path and returns it as a string
/// whose context is that path, remembering where it came from.
///
/// `name` overrides the base name (without it, as for `"${./p}"`, names
/// ending in `.drv` are refused like C++ Nix does); `recursive` selects
/// NAR hashing (a `source` path) or flat hashing of a single file (a
/// fixed-output path); `excluded` lists what a `builtins.path` filter left
/// out.
pub fn add_path_to_store(
    state: &EvalState,
    path: &Path,
    name: Option<&str>,
    recursive: bool,
    excluded: Option<Excluded>,
) -> EvalResult<NixString> {
    let path_str = path.to_string_lossy();
    let name = match name {
        Some(n) => n.to_string(),
        None => {
            if path_str.ends_with(".drv") {
                return Err(ErrorKind::other(
                    "file names are not allowed to end in '.drv'",
                ));
            }
            base_name(&path_str).to_string()
        }
    };
    let source = IoSource(&*state.io);
    let (method, hash) = if recursive {
        let mut filter = |p: &Path, _: Kind| -> Result<bool, Infallible> {
            Ok(!excluded.as_ref().is_some_and(|e| e.contains(p)))
        };
        let (hash, _) = nar_hash_sha256(&source, path, &mut filter).map_err(nar_error)?;
        (IngestionMethod::Recursive, hash)
    } else {
        let hash = flat_hash(HashAlgo::Sha256, &source, path).map_err(nar_error)?;
        (IngestionMethod::Flat, hash)
    };
    let store_path = make_fixed_output_path(method, &hash, &name, [""; 0])
        .map_err(|e| ErrorKind::other(e.to_string()))?
        .to_string();
    state.store.objects.borrow_mut().insert(
        store_path.clone(),
        StoreObject::Source {
            origin: path.to_path_buf(),
            excluded,
        },
    );
    Ok(store_path_string(&store_path))
}

/// Adds the tree at `origin` (minus `excluded`) as a source named `name`
/// and returns its store path and NAR hash (sha256), for fetched inputs.
pub fn add_source_tree(
    state: &EvalState,
    origin: &Path,
    name: &str,
    excluded: Option<Excluded>,
) -> EvalResult<(String, Hash)> {
    let source = IoSource(&*state.fetch_io);
    let mut filter = |p: &Path, _: Kind| -> Result<bool, Infallible> {
        Ok(!excluded.as_ref().is_some_and(|e| e.contains(p)))
    };
    let (hash, _) = nar_hash_sha256(&source, origin, &mut filter).map_err(nar_error)?;
    let store_path = make_fixed_output_path(IngestionMethod::Recursive, &hash, name, [""; 0])
        .map_err(|e| ErrorKind::other(e.to_string()))?
        .to_string();
    register_fetched(state, &store_path, origin.to_path_buf(), excluded);
    Ok((store_path, hash))
}

/// Records fetched contents: `store_path` (absolute) is read from
/// `origin` (in `/nix/store` or attrfs's cache, or a local work tree with
/// `excluded` left out).
pub fn register_fetched(
    state: &EvalState,
    store_path: &str,
    origin: PathBuf,
    excluded: Option<Excluded>,
) {
    state.store.objects.borrow_mut().insert(
        store_path.to_string(),
        StoreObject::Source { origin, excluded },
    );
}

/// Records a store path whose contents are fetched by `fetch` on first
/// access (its path is already known from a locked hash).
pub fn register_lazy(state: &EvalState, store_path: &str, fetch: Materialise) {
    let mut objects = state.store.objects.borrow_mut();
    if !objects.contains_key(store_path) {
        objects.insert(store_path.to_string(), StoreObject::Lazy(fetch));
    }
}

/// Where a path really is on disk: inside a fetched or added source, its
/// origin; anything else is itself.
pub fn real_path(state: &EvalState, path: &Path) -> PathBuf {
    match state.store.route(path) {
        Route::Source { real, .. } => real,
        _ => path.to_path_buf(),
    }
}

/// Where the contents of a known store object are, fetching them first if
/// they were registered lazily; `None` for an unknown path.
pub fn materialise(state: &EvalState, store_path: &str) -> Option<Result<PathBuf, String>> {
    match state.store.route(Path::new(store_path)) {
        Route::Source { real, .. } => Some(Ok(real)),
        Route::Failed(m) => Some(Err(m)),
        _ => None,
    }
}

/// The store path a source would get with an expected hash (`builtins.path
/// { sha256 = ...; }`), to compare with the computed one.
pub fn expected_source_path(recursive: bool, hash: &Hash, name: &str) -> EvalResult<String> {
    let method = if recursive {
        IngestionMethod::Recursive
    } else {
        IngestionMethod::Flat
    };
    make_fixed_output_path(method, hash, name, [""; 0])
        .map(|p| p.to_string())
        .map_err(|e| ErrorKind::other(e.to_string()))
}

/// Adds a text file (`builtins.toFile`): its store path, referring to
/// `references` (absolute store paths).
pub fn add_text_to_store(
    state: &EvalState,
    name: &str,
    contents: &[u8],
    references: Vec<String>,
) -> EvalResult<String> {
    let store_path = make_text_path_for(name, contents, &references)
        .map_err(|e| ErrorKind::other(e.to_string()))?
        .to_string();
    state.store.objects.borrow_mut().insert(
        store_path.clone(),
        StoreObject::Text {
            contents: Rc::from(contents),
            references,
        },
    );
    Ok(store_path)
}

/// Checks that a string is an absolute store path (possibly with a path
/// below it) and returns the store path part.
pub fn to_store_path(path: &str) -> EvalResult<String> {
    StorePath::from_absolute_path_prefix(path)
        .map(|(p, _)| p.to_string())
        .map_err(|_| ErrorKind::other(format!("path '{path}' is not in the Nix store")))
}

impl EvalState {
    /// attrfs's cache of fetched contents (set up from the environment on
    /// first use: `$ATTRFS_CACHE_DIR`, `$XDG_CACHE_HOME`, `$ATTRFS_NIX_STORE`).
    pub fn fetch_cache(&self) -> &attrfs_fetch::Cache {
        self.store.cache.get_or_init(attrfs_fetch::Cache::from_env)
    }

    /// The parsed `.drv` of a derivation this evaluation instantiated.
    fn parsed_derivation(&self, drv_path: &str) -> Option<Derivation> {
        let known = self.known_derivation(drv_path)?;
        Derivation::from_aterm(&known.aterm).ok()
    }

    /// The inputs of a derivation this evaluation instantiated, one line
    /// each: `<drv path>!<output>` for every output used of every input
    /// derivation, then every input source path, each group sorted.
    pub fn derivation_inputs(&self, drv_path: &str) -> Option<Vec<String>> {
        let drv = self.parsed_derivation(drv_path)?;
        let mut lines = Vec::new();
        for (input, outputs) in &drv.input_drvs {
            for o in outputs {
                lines.push(format!("{input}!{o}"));
            }
        }
        lines.extend(drv.input_srcs.iter().cloned());
        Some(lines)
    }

    /// If `store_path` is an output of a derivation this evaluation
    /// instantiated: that derivation's `.drv` path and the output name.
    pub fn output_derivation(&self, store_path: &str) -> Option<(String, String)> {
        self.store.output_of(store_path)
    }

    /// The closure of a store path: itself and everything it refers to,
    /// transitively (C++ Nix's `computeFSClosure`), as far as this
    /// evaluation knows references (derivations and text files; sources
    /// have none).
    pub(crate) fn store_closure(&self, path: &str) -> EvalResult<BTreeSet<String>> {
        if self.known_derivation(path).is_none() && !self.store.objects.borrow().contains_key(path)
        {
            return Err(ErrorKind::other(format!("path '{path}' is not valid")));
        }
        let mut seen = BTreeSet::new();
        let mut todo = vec![path.to_string()];
        while let Some(p) = todo.pop() {
            if seen.contains(&p) {
                continue;
            }
            if let Some(drv) = self.parsed_derivation(&p) {
                todo.extend(drv.input_srcs.iter().cloned());
                todo.extend(drv.input_drvs.keys().cloned());
            } else if let Some(StoreObject::Text { references, .. }) =
                self.store.objects.borrow().get(&p)
            {
                todo.extend(references.iter().cloned());
            }
            seen.insert(p);
        }
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use crate::eval::eval_strict_to_string as eval;
    use std::path::PathBuf;

    /// A small tree: files, an executable, a symlink, directories.
    fn tree(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("attrfs-store-{tag}-{}", std::process::id()));
        let src = root.join("src");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir_all(src.join("skip")).unwrap();
        std::fs::write(src.join("a.txt"), "a\n").unwrap();
        std::fs::write(src.join("sub/b.nix"), "\"b\"\n").unwrap();
        std::fs::write(src.join("sub/c.txt"), "x\n").unwrap();
        std::fs::write(src.join("skip/x"), "s\n").unwrap();
        std::fs::write(src.join("run.sh"), "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(src.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
        src
    }

    /// Store paths as C++ Nix 2.8 computes them for this tree.
    #[test]
    fn source_paths_match_cpp_nix() {
        let src = tree("paths");
        let s = src.display();
        let expr = format!(
            r#"let f = p: t: baseNameOf p != "skip" && baseNameOf p != "c.txt"; in [
              "${{{s}}}"
              (builtins.path {{ path = {s}; name = "other"; filter = f; }})
              (builtins.path {{ path = {s}/a.txt; recursive = false; }})
              "${{{s}/run.sh}}"
              (builtins.filterSource f {s})
            ]"#
        );
        assert_eq!(
            eval(&expr).unwrap(),
            "[ \"/nix/store/kyj3c5y9as5k6kzcfsjjd7v1x52r17br-src\" \
             \"/nix/store/x7a51hgp8d7j2mi3qhh95rasf93a880s-other\" \
             \"/nix/store/4n850xfg5fma3bgggih1j19ayi5l7kp2-a.txt\" \
             \"/nix/store/78sw4kgnlwlwp82n9crq3226z2pb1g91-run.sh\" \
             \"/nix/store/f18z1y5f5zkd50ny5g47zf98drh4hj9r-src\" ]"
        );
        let _ = std::fs::remove_dir_all(src.parent().unwrap());
    }

    /// Store paths the evaluation created can be read back; filtered
    /// entries stay hidden.
    #[test]
    fn virtual_store_reads() {
        let src = tree("reads");
        let s = src.display();
        let expr = format!(
            r#"let
              p = builtins.path {{ path = {s}; filter = p: t: baseNameOf p != "sub"; }};
              t = builtins.toFile "t" "hello";
            in [
              (builtins.readFile "${{{s}}}/sub/b.nix")
              (import "${{{s}}}/sub/b.nix")
              (builtins.attrNames (builtins.readDir p))
              (builtins.pathExists "${{p}}/sub")
              (builtins.readFile t)
            ]"#
        );
        assert_eq!(
            eval(&expr).unwrap(),
            "[ \"\\\"b\\\"\\n\" \"b\" [ \"a.txt\" \"link\" \"run.sh\" \"skip\" ] false \"hello\" ]"
        );
        let _ = std::fs::remove_dir_all(src.parent().unwrap());
    }

    /// `realpath` inside a store object follows links where the contents
    /// really are and answers in store paths; a link out of the object
    /// leads out of it.
    #[test]
    fn canonical_paths_inside_sources_are_store_paths() {
        use std::path::Path;
        let src = tree("canonical");
        std::os::unix::fs::symlink(src.parent().unwrap(), src.join("out")).unwrap();
        let ev = crate::Evaluator::new(crate::EvalOptions::default());
        let object = "/nix/store/kyj3c5y9as5k6kzcfsjjd7v1x52r17br-src";
        super::register_fetched(&ev.state, object, src.clone(), None);
        let io = &ev.state.io;
        let canonical = |p: &str| io.canonicalize(Path::new(p)).unwrap();
        assert_eq!(
            canonical(&format!("{object}/link")),
            Path::new(object).join("a.txt")
        );
        assert_eq!(
            canonical(&format!("{object}/sub/../sub")),
            Path::new(object).join("sub")
        );
        assert_eq!(canonical(object), Path::new(object));
        assert_eq!(
            canonical(&format!("{object}/out")),
            src.parent().unwrap().canonicalize().unwrap()
        );
        let meta = io.metadata(Path::new(&format!("{object}/link"))).unwrap();
        assert_eq!(meta.kind, crate::io::FileType::Symlink);
        assert!(io
            .canonicalize(Path::new(&format!("{object}/nope")))
            .is_err());

        // Pure mode allows the store path and refuses where the link leads.
        let pure = crate::Evaluator::new(crate::EvalOptions {
            pure_eval: true,
            ..crate::EvalOptions::default()
        });
        super::register_fetched(&pure.state, object, src.clone(), None);
        let io = &pure.state.io;
        assert_eq!(
            io.canonicalize(Path::new(&format!("{object}/link")))
                .unwrap(),
            Path::new(object).join("a.txt")
        );
        let refused = io
            .canonicalize(Path::new(&format!("{object}/out")))
            .unwrap_err();
        assert!(
            refused.to_string().contains("forbidden in pure eval mode"),
            "{refused}"
        );
        let _ = std::fs::remove_dir_all(src.parent().unwrap());
    }

    #[test]
    fn import_from_derivation_is_a_clear_error() {
        let e = eval(
            r#"let d = derivation { name = "x"; system = "x86_64-linux"; builder = "/bin/sh"; };
               in import "${d}/default.nix""#,
        )
        .unwrap_err();
        assert!(
            e.contains("inside output 'out' of derivation '/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv'")
                && e.contains("import from derivation is not supported"),
            "{e}"
        );
    }

    #[test]
    fn fetchurl_corepkg() {
        // What C++ Nix 2.8 gives for this `<nix/fetchurl.nix>` call.
        assert_eq!(
            eval(
                r#"(import <nix/fetchurl.nix> { url = "http://example.org/foo.tar.gz";
                   sha256 = "0000000000000000000000000000000000000000000000000000"; }).drvPath"#
            )
            .unwrap(),
            "\"/nix/store/7kx8nzn72bghash8pywmkhx93d73km63-foo.tar.gz.drv\""
        );
    }
}
