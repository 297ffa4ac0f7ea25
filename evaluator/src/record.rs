//! What an evaluation depended on: every input it read, recorded where it
//! was read.
//!
//! The live view (re-evaluate when a source changes) and a persistent cache
//! (reuse answers while the sources are unchanged) both need the same fact:
//! the complete set of things outside the expression that its value
//! depends on. Rather than teach each builtin to report what it touched,
//! the evaluator records at its doors:
//!
//! * the filesystem door, [`RecordingIO`], sits under everything else that
//!   wraps the caller's [`EvalIO`] (the store view, pure mode), so every
//!   file read, directory listing and probe (`pathExists`, a file's type, a
//!   symlink's target, the executable bit) of any builtin, `import`,
//!   search-path lookup (`<nixpkgs>` probes with `pathExists`) or source
//!   added to the store is seen once, whoever asked;
//! * the few inputs that are not files report themselves:
//!   `builtins.getEnv` and `<...>` lookups (`NIX_PATH`) as
//!   [`InputKind::Env`], fetched trees
//!   ([`InputKind::Fetch`] for content named by a hash,
//!   [`InputKind::Tree`] for a local path or Git work tree) and what makes
//!   an evaluation impossible to reuse ([`InputKind::Impure`]:
//!   `builtins.currentTime` once forced, a download without a hash).
//!
//! Each [`Input`] has a fingerprint of what was observed: a file's SHA-256,
//! a listing's SHA-256, the type a probe saw or that the path was missing.
//! [`Input::current`] observes the same thing again (through the real
//! filesystem), so a user of the log can tell whether the input is still
//! what the evaluation saw: that is how a watcher tells a real change from
//! an editor's temporary file, and how a cache tells a valid entry.
//!
//! Paths inside the Nix store and inside attrfs's store of fetched objects
//! are not recorded: store objects never change (their names are hashes of
//! their contents). What the caller configures is not an input either but
//! part of what is evaluated: the source, `--arg`s, `-A`, `-I` entries,
//! `currentSystem` and `storeDir` (the evaluator's options), `$HOME` for
//! `~/` paths (read once, when the options are made); a cache keys on
//! those alongside the inputs.
//!
//! The log is per [`crate::Evaluator`], cumulative, first observation
//! first; [`crate::Evaluator::take_new_inputs`] hands out what was recorded
//! since the previous call (how a worker reports inputs along its
//! answers).

use crate::io::{Digest, EvalIO, FileType, Metadata};
use rustc_hash::FxHashSet;
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// What sort of input an [`Input`] is, and so how its fingerprint is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputKind {
    /// A file's contents were read. Fingerprint: `sha256:<hex>` of the
    /// bytes, or the failure (`missing`, `error`).
    File,
    /// A directory was listed. Fingerprint: `sha256:<hex>` of the sorted
    /// `name type` lines, or the failure.
    Dir,
    /// The type of a path was asked (without following a final symlink).
    /// Fingerprint: `regular`, `directory`, `symlink`, `unknown`, `missing`.
    FileType,
    /// Whether a path exists (following symlinks): `true` or `false`.
    Exists,
    /// A symlink's target: the target, or the failure.
    Link,
    /// Whether a file is executable: `true`, `false` or the failure.
    Executable,
    /// An environment variable (`builtins.getEnv`): its value, or `unset`.
    Env,
    /// A fetched store object named by its hash; the name says what was
    /// fetched (a URL, a flake reference) and the fingerprint is its store
    /// path and NAR hash. Cannot change unless the expression does.
    Fetch,
    /// A local tree taken whole (a `path` input, a Git work tree); the name
    /// is its root, the fingerprint its NAR hash. Changes with anything
    /// below it, so a watcher watches it recursively.
    Tree,
    /// Something that makes the evaluation's result unrepeatable (the
    /// clock, a download without a hash); the name says what. An
    /// evaluation with such an input must not be cached.
    Impure,
}

impl InputKind {
    /// Every kind, in wire order (a kind's index is its code).
    pub const ALL: [InputKind; 10] = [
        InputKind::File,
        InputKind::Dir,
        InputKind::FileType,
        InputKind::Exists,
        InputKind::Link,
        InputKind::Executable,
        InputKind::Env,
        InputKind::Fetch,
        InputKind::Tree,
        InputKind::Impure,
    ];

    /// The lower-case name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            InputKind::File => "file",
            InputKind::Dir => "dir",
            InputKind::FileType => "type",
            InputKind::Exists => "exists",
            InputKind::Link => "link",
            InputKind::Executable => "executable",
            InputKind::Env => "env",
            InputKind::Fetch => "fetch",
            InputKind::Tree => "tree",
            InputKind::Impure => "impure",
        }
    }

    /// Whether the input is a path on the local filesystem (which a watcher
    /// can watch).
    pub fn is_local_path(self) -> bool {
        matches!(
            self,
            InputKind::File
                | InputKind::Dir
                | InputKind::FileType
                | InputKind::Exists
                | InputKind::Link
                | InputKind::Executable
                | InputKind::Tree
        )
    }
}

/// One recorded input: what was consulted and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Input {
    /// What sort of input.
    pub kind: InputKind,
    /// The path (for local kinds), variable name, or description.
    pub name: String,
    /// What was observed (see [`InputKind`] for each kind's format).
    pub fingerprint: String,
}

impl Input {
    /// Observes the input again on the real filesystem and in this
    /// process's environment. `None` for kinds that cannot be observed
    /// again cheaply or at all ([`InputKind::Fetch`], [`InputKind::Tree`],
    /// [`InputKind::Impure`]).
    pub fn current(&self) -> Option<String> {
        let path = Path::new(&self.name);
        let io = crate::io::StdIO;
        Some(match self.kind {
            InputKind::File => file_fingerprint(&io.read_file(path)),
            InputKind::Dir => dir_fingerprint(&io.read_dir(path)),
            InputKind::FileType => type_fingerprint(&io.file_type(path)),
            InputKind::Exists => io.path_exists(path).to_string(),
            InputKind::Link => link_fingerprint(&io.read_link(path)),
            InputKind::Executable => exec_fingerprint(&io.is_executable(path)),
            InputKind::Env => env_fingerprint(std::env::var(&self.name).ok().as_deref()),
            InputKind::Fetch | InputKind::Tree | InputKind::Impure => return None,
        })
    }

    /// Whether observing the input again gives what the evaluation saw.
    /// Inputs that cannot be observed again count as unchanged, except
    /// [`InputKind::Impure`], which never holds.
    pub fn is_unchanged(&self) -> bool {
        match self.kind {
            InputKind::Impure => false,
            _ => self.current().is_none_or(|now| now == self.fingerprint),
        }
    }
}

/// A failure as a fingerprint: `missing` for a path that is not there,
/// `error` for anything else (the error text is not part of it: it may
/// vary between runs for the same state).
fn failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "missing".to_owned(),
        _ => "error".to_owned(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    digest_hex(&crate::io::sha256(bytes))
}

fn digest_hex(digest: &[u8]) -> String {
    format!("sha256:{}", attrfs_store::hash::encode_base16(digest))
}

/// The fingerprint of a file read.
pub fn file_fingerprint(read: &io::Result<Vec<u8>>) -> String {
    match read {
        Ok(bytes) => sha256_hex(bytes),
        Err(e) => failure(e),
    }
}

/// [`file_fingerprint`] of a read whose digest is already known.
fn hashed_file_fingerprint(read: &io::Result<(Vec<u8>, Digest)>) -> String {
    match read {
        Ok((_, digest)) => digest_hex(digest),
        Err(e) => failure(e),
    }
}

/// The fingerprint of a directory listing.
pub fn dir_fingerprint(listing: &io::Result<Vec<(String, FileType)>>) -> String {
    match listing {
        Ok(entries) => {
            let mut sorted: Vec<&(String, FileType)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            let mut h = Sha256::new();
            for (name, kind) in sorted {
                h.update(name.as_bytes());
                h.update(b" ");
                h.update(kind.nix_name().as_bytes());
                h.update(b"\n");
            }
            format!(
                "sha256:{}",
                attrfs_store::hash::encode_base16(&h.finalize())
            )
        }
        Err(e) => failure(e),
    }
}

fn type_fingerprint(t: &io::Result<FileType>) -> String {
    match t {
        Ok(t) => t.nix_name().to_owned(),
        Err(e) => failure(e),
    }
}

fn link_fingerprint(t: &io::Result<PathBuf>) -> String {
    match t {
        Ok(target) => format!("-> {}", target.display()),
        Err(e) => failure(e),
    }
}

fn exec_fingerprint(t: &io::Result<bool>) -> String {
    match t {
        Ok(b) => b.to_string(),
        Err(e) => failure(e),
    }
}

/// The fingerprint of an environment variable's value.
pub fn env_fingerprint(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("= {v}"),
        None => "unset".to_owned(),
    }
}

/// The inputs of one evaluator, in the order first seen.
#[derive(Default)]
pub struct InputLog {
    inner: RefCell<LogInner>,
}

#[derive(Default)]
struct LogInner {
    inputs: Vec<Input>,
    seen: FxHashSet<(InputKind, String)>,
    /// How many of `inputs` [`InputLog::take_new`] has handed out.
    taken: usize,
    /// Path prefixes that are never recorded (stores of immutable objects).
    immutable: Vec<PathBuf>,
}

impl InputLog {
    /// A log that records nothing under the given immutable roots (the
    /// store directory, attrfs's store of fetched objects).
    pub fn new(immutable: Vec<PathBuf>) -> Self {
        InputLog {
            inner: RefCell::new(LogInner {
                immutable,
                ..LogInner::default()
            }),
        }
    }

    /// Records an input unless one of that kind and name is already
    /// recorded (the first observation is what the evaluation used).
    pub fn record(&self, kind: InputKind, name: &str, fingerprint: impl FnOnce() -> String) {
        let mut inner = self.inner.borrow_mut();
        if kind.is_local_path()
            && inner
                .immutable
                .iter()
                .any(|root| Path::new(name).starts_with(root))
        {
            return;
        }
        if !inner.seen.insert((kind, name.to_owned())) {
            return;
        }
        inner.inputs.push(Input {
            kind,
            name: name.to_owned(),
            fingerprint: fingerprint(),
        });
    }

    /// Whether an input of that kind and name is recorded.
    fn has(&self, kind: InputKind, path: &Path) -> bool {
        let inner = self.inner.borrow();
        let name = path.to_string_lossy();
        inner.seen.contains(&(kind, name.into_owned()))
    }

    /// Every input recorded so far.
    pub fn all(&self) -> Vec<Input> {
        self.inner.borrow().inputs.clone()
    }

    /// The inputs recorded since the previous call.
    pub fn take_new(&self) -> Vec<Input> {
        let mut inner = self.inner.borrow_mut();
        let new = inner.inputs[inner.taken..].to_vec();
        inner.taken = inner.inputs.len();
        new
    }

    /// Whether an input makes the evaluation unrepeatable.
    pub fn is_impure(&self) -> bool {
        self.inner
            .borrow()
            .inputs
            .iter()
            .any(|i| i.kind == InputKind::Impure)
    }
}

/// The recording door: an [`EvalIO`] that passes everything to the one it
/// wraps and records what was asked and seen in an [`InputLog`].
pub struct RecordingIO {
    inner: Box<dyn EvalIO>,
    log: Rc<InputLog>,
}

impl RecordingIO {
    /// Wraps `inner`, recording into `log`.
    pub fn new(inner: Box<dyn EvalIO>, log: Rc<InputLog>) -> Self {
        RecordingIO { inner, log }
    }

    fn record(&self, kind: InputKind, path: &Path, fingerprint: impl FnOnce() -> String) {
        // Paths are names of inputs; one that is not UTF-8 is recorded
        // lossily, and its re-observation then sees it missing (a change,
        // never a missed one).
        self.log.record(kind, &path.to_string_lossy(), fingerprint);
    }
}

impl EvalIO for RecordingIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let r = self.inner.read_file(path);
        // Hashing is the costly part: skipped for a file already recorded
        // (read again through `readFile` after `import`, say).
        if !self.log.has(InputKind::File, path) {
            self.record(InputKind::File, path, || file_fingerprint(&r));
        }
        r
    }

    fn read_file_hashed(&self, path: &Path) -> io::Result<(Vec<u8>, Digest)> {
        let r = self.inner.read_file_hashed(path);
        if !self.log.has(InputKind::File, path) {
            self.record(InputKind::File, path, || hashed_file_fingerprint(&r));
        }
        r
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>> {
        let r = self.inner.read_dir(path);
        if !self.log.has(InputKind::Dir, path) {
            self.record(InputKind::Dir, path, || dir_fingerprint(&r));
        }
        r
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        let r = self.inner.file_type(path);
        self.record(InputKind::FileType, path, || type_fingerprint(&r));
        r
    }

    fn path_exists(&self, path: &Path) -> bool {
        let r = self.inner.path_exists(path);
        self.record(InputKind::Exists, path, || r.to_string());
        r
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        let r = self.inner.read_link(path);
        self.record(InputKind::Link, path, || link_fingerprint(&r));
        r
    }

    fn is_executable(&self, path: &Path) -> io::Result<bool> {
        let r = self.inner.is_executable(path);
        self.record(InputKind::Executable, path, || exec_fingerprint(&r));
        r
    }

    /// Recorded as the path's type: what the evaluation does with the
    /// canonical path (import the file it names, resolve relative paths
    /// from it) records the files it reads in turn.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let r = self.inner.canonicalize(path);
        let seen = self.inner.file_type(path);
        self.record(InputKind::FileType, path, || type_fingerprint(&seen));
        r
    }

    /// Recorded as the path's type: callers ask whether it exists and
    /// what it is, not for its times or size.
    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let r = self.inner.metadata(path);
        let seen = self.inner.file_type(path);
        self.record(InputKind::FileType, path, || type_fingerprint(&seen));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Evaluator, Source};
    use crate::vm::EvalOptions;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "attrfs-record-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn evaluate(dir: &Path, expr: &str) -> (String, Vec<Input>, bool) {
        let ev = Evaluator::new(EvalOptions {
            cwd: dir.to_path_buf(),
            ..EvalOptions::default()
        });
        let v = ev
            .root(&Source::Expr(expr.to_owned()), &[], &[])
            .and_then(|v| ev.deep_force(v))
            .map(|v| crate::printer::print_value(&v))
            .unwrap_or_else(|e| ev.render_error(&e));
        let impure = ev.inputs_are_impure();
        (v, ev.take_new_inputs(), impure)
    }

    fn find<'a>(inputs: &'a [Input], kind: InputKind, path: &Path) -> &'a Input {
        let name = path.to_string_lossy();
        inputs
            .iter()
            .find(|i| i.kind == kind && i.name == name)
            .unwrap_or_else(|| panic!("no {kind:?} {name} in {inputs:#?}"))
    }

    #[test]
    fn imports_reads_listings_and_probes_are_recorded_with_fingerprints() {
        let dir = temp_dir("files");
        std::fs::write(dir.join("more.nix"), "{ x = 1; }").unwrap();
        std::fs::write(dir.join("data.txt"), "hello").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        let (value, inputs, impure) = evaluate(
            &dir,
            "[ (import ./more.nix).x (builtins.readFile ./data.txt) \
               (builtins.attrNames (builtins.readDir ./sub)) (builtins.pathExists ./nope) ]",
        );
        assert_eq!(value, r#"[ 1 "hello" [ ] false ]"#);
        assert!(!impure);
        let more = find(&inputs, InputKind::File, &dir.join("more.nix"));
        assert_eq!(
            more.fingerprint,
            file_fingerprint(&Ok(b"{ x = 1; }".to_vec()))
        );
        assert!(more.is_unchanged());
        assert!(find(&inputs, InputKind::File, &dir.join("data.txt")).is_unchanged());
        assert!(find(&inputs, InputKind::Dir, &dir.join("sub")).is_unchanged());
        // (`pathExists` asks for the type, as C++ Nix's `lstat`.)
        let nope = find(&inputs, InputKind::FileType, &dir.join("nope"));
        assert_eq!(nope.fingerprint, "missing");

        // Each input is observed again as it is now.
        std::fs::write(dir.join("more.nix"), "{ x = 2; }").unwrap();
        std::fs::write(dir.join("sub/new"), "").unwrap();
        std::fs::write(dir.join("nope"), "").unwrap();
        assert!(!more.is_unchanged());
        assert!(!find(&inputs, InputKind::Dir, &dir.join("sub")).is_unchanged());
        assert!(!nope.is_unchanged());
        // ...and a rewrite with the same bytes is no change.
        std::fs::write(dir.join("data.txt"), "hello").unwrap();
        assert!(find(&inputs, InputKind::File, &dir.join("data.txt")).is_unchanged());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn new_inputs_are_handed_out_once() {
        let dir = temp_dir("take");
        std::fs::write(dir.join("a.nix"), "1").unwrap();
        std::fs::write(dir.join("b.nix"), "2").unwrap();
        let ev = Evaluator::new(EvalOptions {
            cwd: dir.clone(),
            ..EvalOptions::default()
        });
        let v = ev
            .root(&Source::Expr("import ./a.nix".into()), &[], &[])
            .and_then(|v| ev.force(v));
        assert!(v.is_ok());
        let first = ev.take_new_inputs();
        assert!(first.iter().any(|i| i.name.ends_with("a.nix")));
        assert!(ev.take_new_inputs().is_empty());
        let v = ev
            .root(
                &Source::Expr("import ./a.nix + import ./b.nix".into()),
                &[],
                &[],
            )
            .and_then(|v| ev.force(v));
        assert!(v.is_ok());
        let second = ev.take_new_inputs();
        assert!(second.iter().any(|i| i.name.ends_with("b.nix")));
        assert!(
            !second
                .iter()
                .any(|i| i.kind == InputKind::File && i.name.ends_with("a.nix")),
            "a.nix was handed out already: {second:#?}"
        );
        assert_eq!(ev.all_inputs().len(), first.len() + second.len());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn environment_and_clock_are_inputs() {
        let dir = temp_dir("env");
        let (_, inputs, impure) = evaluate(&dir, "builtins.getEnv \"ATTRFS_RECORD_TEST_UNSET\"");
        let env = find(
            &inputs,
            InputKind::Env,
            Path::new("ATTRFS_RECORD_TEST_UNSET"),
        );
        assert_eq!(env.fingerprint, "unset");
        assert!(env.is_unchanged());
        assert!(!impure, "reading the environment is repeatable");

        let (_, inputs, impure) = evaluate(&dir, "builtins.length [ builtins.currentTime ]");
        assert!(!impure, "an unforced clock is not read");
        assert!(inputs.iter().all(|i| i.kind != InputKind::Impure));
        let (value, inputs, impure) = evaluate(&dir, "builtins.currentTime > 0");
        assert_eq!(value, "true");
        assert!(impure);
        assert!(!find(
            &inputs,
            InputKind::Impure,
            Path::new("builtins.currentTime")
        )
        .is_unchanged());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sources_added_to_the_store_are_inputs_file_by_file() {
        let dir = temp_dir("store");
        std::fs::create_dir(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/a.c"), "int main;").unwrap();
        let (value, inputs, impure) = evaluate(&dir, "builtins.stringLength \"${./src}\"");
        assert!(value.parse::<u32>().is_ok(), "{value}");
        assert!(!impure);
        assert!(find(&inputs, InputKind::File, &dir.join("src/a.c")).is_unchanged());
        assert!(find(&inputs, InputKind::Dir, &dir.join("src")).is_unchanged());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn search_path_lookups_record_nix_path_and_their_probes() {
        let dir = temp_dir("search");
        std::fs::create_dir(dir.join("pkgs")).unwrap();
        std::fs::write(dir.join("pkgs/default.nix"), "7").unwrap();
        let ev = Evaluator::new(EvalOptions {
            cwd: dir.clone(),
            search_path: vec![crate::SearchPathEntry::parse(&format!(
                "x={}",
                dir.join("pkgs").display()
            ))],
            ..EvalOptions::default()
        });
        let v = ev
            .root(&Source::Expr("import <x>".into()), &[], &[])
            .and_then(|v| ev.force(v))
            .map(|v| crate::printer::print_value(&v));
        assert_eq!(v.ok().as_deref(), Some("7"));
        let inputs = ev.take_new_inputs();
        assert!(find(&inputs, InputKind::Env, Path::new("NIX_PATH")).is_unchanged());
        assert!(find(&inputs, InputKind::File, &dir.join("pkgs/default.nix")).is_unchanged());
        assert!(inputs
            .iter()
            .any(|i| i.kind == InputKind::FileType && i.name.ends_with("pkgs")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fetched_local_trees_and_unhashed_downloads_are_inputs() {
        let dir = temp_dir("fetch");
        std::fs::create_dir(dir.join("tree")).unwrap();
        std::fs::write(dir.join("tree/a"), "a").unwrap();
        std::fs::write(dir.join("file.txt"), "data").unwrap();
        let ev = Evaluator::new(EvalOptions {
            cwd: dir.clone(),
            experimental_features: vec!["fetch-tree".into()],
            ..EvalOptions::default()
        });
        let expr = format!(
            "[ (builtins.fetchTree {{ type = \"path\"; path = \"{}\"; }}).narHash ]",
            dir.join("tree").display()
        );
        let v = ev
            .root(&Source::Expr(expr), &[], &[])
            .and_then(|v| ev.deep_force(v))
            .map(|v| crate::printer::print_value(&v))
            .unwrap_or_else(|e| ev.render_error(&e));
        assert!(v.starts_with("[ \"sha256-"), "{v}");
        let inputs = ev.take_new_inputs();
        let tree = find(&inputs, InputKind::Tree, &dir.join("tree"));
        assert!(tree.fingerprint.starts_with("sha256-"), "{tree:?}");
        assert!(inputs.iter().any(|i| i.kind == InputKind::Fetch));
        assert!(
            !ev.inputs_are_impure(),
            "a local tree is watched, not impure"
        );

        let url = format!("file://{}", dir.join("file.txt").display());
        let v = ev
            .root(
                &Source::Expr(format!("builtins.readFile (builtins.fetchurl \"{url}\")")),
                &[],
                &[],
            )
            .and_then(|v| ev.force(v))
            .map(|v| crate::printer::print_value(&v))
            .unwrap_or_else(|e| ev.render_error(&e));
        assert_eq!(v, "\"data\"");
        assert!(ev.inputs_are_impure(), "{:#?}", ev.all_inputs());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn store_paths_are_not_inputs() {
        let log = InputLog::new(vec![PathBuf::from("/nix/store")]);
        log.record(InputKind::File, "/nix/store/abc-x/default.nix", || {
            "sha256:0".into()
        });
        log.record(InputKind::File, "/home/u/x.nix", || "sha256:1".into());
        log.record(InputKind::File, "/home/u/x.nix", || "sha256:2".into());
        let all = log.all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].fingerprint, "sha256:1", "the first observation wins");
    }
}
