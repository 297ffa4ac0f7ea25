//! Source loading: from a path or a text to a value the VM can run.
//!
//! Everything that turns Nix source into code goes through here: the root
//! file or `-E` expression of an evaluation, `--arg` expressions, `import`,
//! `scopedImport`, the built-in Nix sources (`derivation`) and the flake
//! call expression. The steps are always the same (read through
//! [`EvalIO`](crate::io::EvalIO), register the text in the source map,
//! parse, build the compile environment, compile), and they happen in one
//! function, [`Loader::compile_source`]: a cache of compiled files, or a
//! record of what was compiled, belongs there and sees every source
//! (docs/evaluator.md, "Loading source").

use super::state::{io_msg, EvalState};
use crate::bytecode::Lambda;
use crate::compiler::{self, CompileEnv, Globals};
use crate::errors::{Error, ErrorKind, EvalResult};
use crate::io::{Digest, FileType};
use crate::path::{base_dir_of, canon_path};
use crate::value::{Closure, NixAttrs, NixString, Thunk, Upvalues, Value};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A source text to compile, and where it comes from.
#[derive(Clone, Debug)]
pub struct SourceUnit {
    /// The name errors show: the file's path, `«string»` for `-E`, or
    /// `<nix/NAME.nix>` for a built-in source.
    pub name: String,
    /// The file it was read from, if any.
    pub path: Option<PathBuf>,
    /// The text.
    pub text: Rc<str>,
    /// The directory relative path literals resolve against.
    pub base_dir: PathBuf,
    /// The SHA-256 of the bytes the text was decoded from, if known.
    pub digest: Option<Digest>,
}

impl SourceUnit {
    /// An expression that is not a file (`-E`, `--arg`), resolving
    /// relative paths against `base_dir`.
    pub fn expr(name: &str, text: &str, base_dir: PathBuf) -> Self {
        SourceUnit {
            name: name.into(),
            path: None,
            text: Rc::from(text),
            base_dir,
            digest: None,
        }
    }

    /// The text of the file at `path`.
    pub fn file(path: &Path, text: Rc<str>) -> Self {
        SourceUnit {
            name: path.display().to_string(),
            path: Some(path.to_path_buf()),
            text,
            base_dir: base_dir_of(path),
            digest: None,
        }
    }
}

/// What compiled code sees besides its own bindings.
#[derive(Clone, Copy)]
pub enum SourceScope<'a> {
    /// The global scope (builtins), as every file and expression.
    Globals,
    /// The global scope and these names looked up in an attribute set the
    /// code is called with (`scopedImport`): the result is a function of
    /// that set.
    Scoped(&'a [NixString]),
    /// A built-in Nix source compiled while the global scope is being
    /// built, against the part that exists (no lints, no `~`).
    Prelude(&'a Globals),
}

/// The loader of one evaluation state: `state.loader()`. Files it imports
/// are kept in the state (`EvalState::imports`, by resolved path), so that
/// every `import` of a file gives the same value, evaluated once, as in
/// C++ Nix.
pub struct Loader<'s> {
    state: &'s EvalState,
}

impl EvalState {
    /// The loader: source texts and files to values (`import`,
    /// `scopedImport`, the root of an evaluation).
    pub fn loader(&self) -> Loader<'_> {
        Loader { state: self }
    }
}

impl<'s> Loader<'s> {
    /// Parses and compiles a source text: the one place text becomes code.
    /// The text is registered in the source map first, so that errors
    /// (syntax and static ones, such as an undefined variable) point into it.
    pub fn compile_source(
        &self,
        unit: SourceUnit,
        scope: SourceScope,
    ) -> Result<Rc<Lambda>, Error> {
        // C++ Nix ends comments and lines at a lone carriage return too; rnix
        // does not, so turn those into newlines (same length, spans intact).
        let text: Rc<str> = if unit.text.contains('\r') {
            normalise_cr(&unit.text).into()
        } else {
            unit.text
        };
        let file = self
            .state
            .sources
            .add_read(unit.name, unit.path, text, unit.digest);
        let options = &self.state.options;
        let (globals, home, lints) = match scope {
            SourceScope::Prelude(globals) => (globals, None, Default::default()),
            _ => (&**self.state.globals(), options.home.clone(), options.lints),
        };
        let env = CompileEnv {
            globals,
            base_dir: unit.base_dir,
            home,
            lints,
        };
        match scope {
            // Not cached: the scope is a value of this evaluation.
            SourceScope::Scoped(names) => {
                compiler::compile_scoped(&crate::syntax::parse(&file)?, &file, &env, names)
            }
            // Built into the binary and small: nothing to gain.
            SourceScope::Prelude(_) => {
                compiler::compile(&crate::syntax::parse(&file)?, &file, &env)
            }
            SourceScope::Globals => {
                let lambda =
                    compiler::cache::compile_cached(&file, &env, options.compile_cache.as_ref())?;
                // Compiled: the text is needed again only for an error's
                // snippet, and a file on disk can be read again for that.
                let on_disk = file
                    .path
                    .as_deref()
                    .is_some_and(|p| crate::store::corepkg_source(p).is_none());
                if on_disk {
                    self.state.sources.release_text(&file);
                }
                Ok(lambda)
            }
        }
    }

    /// The (unevaluated) value of a source text in the global scope.
    pub fn load(&self, unit: SourceUnit) -> Result<Value, Error> {
        let lambda = self.compile_source(unit, SourceScope::Globals)?;
        Ok(suspended(lambda))
    }

    /// The value of a built-in Nix source, compiled against the part of
    /// the global scope built so far.
    pub fn prelude(&self, name: &str, text: &'static str, globals: &Globals) -> Value {
        let unit = SourceUnit {
            name: format!("<nix/{name}.nix>"),
            path: None,
            text: Rc::from(text),
            base_dir: PathBuf::from("/"),
            digest: None,
        };
        match self.compile_source(unit, SourceScope::Prelude(globals)) {
            Ok(lambda) => suspended(lambda),
            // Fixed text shipped in the binary, tested by every evaluation.
            Err(e) => panic!("the built-in Nix source {name} does not compile: {e:?}"),
        }
    }

    /// The value of a file as `import` gives it (a directory means its
    /// `default.nix`), loaded once per evaluation. Errors in the file are
    /// [`ErrorKind::Located`] in it; errors reading it are the caller's.
    pub fn import(&self, path: &Path) -> EvalResult<Value> {
        let path = self.resolve(path)?;
        if let Some(v) = self.state.imports.borrow().get(&path) {
            return Ok(v.clone());
        }
        let unit = self.read(&path)?;
        let v = self
            .load(unit)
            .map_err(|e| ErrorKind::Located(Box::new(e)))?;
        self.state.imports.borrow_mut().insert(path, v.clone());
        Ok(v)
    }

    /// The root file of an evaluation (`attrfs eval FILE`): [`Self::import`]
    /// with the error as the command reports it.
    pub fn root_file(&self, path: &Path) -> Result<Value, Error> {
        self.import(path).map_err(|k| match k {
            ErrorKind::Located(e) => *e,
            k => Error::new(k, None),
        })
    }

    /// A function of the scope set evaluating the file with the scope's
    /// names bound (`scopedImport`; not cached, the scope differs).
    pub fn scoped_import(&self, path: &Path, scope: &NixAttrs) -> EvalResult<Value> {
        let path = self.resolve(path)?;
        let unit = self.read(&path)?;
        let names: Vec<NixString> = scope.keys().cloned().collect();
        let lambda = self
            .compile_source(unit, SourceScope::Scoped(&names))
            .map_err(|e| ErrorKind::Located(Box::new(e)))?;
        Ok(Value::Closure(Rc::new(Closure {
            lambda,
            upvalues: Upvalues::none(),
        })))
    }

    /// The file an import of `path` reads. As in C++ Nix, a final symlink
    /// is followed (so that relative paths in the file resolve where it
    /// really is), and a directory means its `default.nix`.
    pub fn resolve(&self, path: &Path) -> EvalResult<PathBuf> {
        let io = &self.state.io;
        let mut path = path.to_path_buf();
        for _ in 0..MAX_LINKS {
            match io.file_type(&path) {
                Ok(FileType::Symlink) => {
                    let target = io.read_link(&path).map_err(|e| {
                        ErrorKind::Io(format!("reading link '{}': {}", path.display(), io_msg(&e)))
                    })?;
                    let joined = base_dir_of(&path).join(target);
                    path = PathBuf::from(canon_path(&joined.to_string_lossy()));
                }
                Ok(FileType::Directory) => return Ok(path.join("default.nix")),
                _ => return Ok(path),
            }
        }
        Err(ErrorKind::Io(format!(
            "too many symbolic links encountered while traversing the path '{}'",
            path.display()
        )))
    }

    /// The source text of a resolved path: a built-in `<nix/…>` file, or
    /// the file read through the evaluator's I/O.
    fn read(&self, path: &Path) -> EvalResult<SourceUnit> {
        if let Some(text) = crate::store::corepkg_source(path) {
            return Ok(SourceUnit::file(path, Rc::from(text)));
        }
        let (bytes, digest) = self.state.io.read_file_hashed(path).map_err(|e| {
            ErrorKind::Io(format!("opening file '{}': {}", path.display(), io_msg(&e)))
        })?;
        let text = crate::source::decode_source_shared(&bytes);
        Ok(SourceUnit {
            digest: Some(digest),
            ..SourceUnit::file(path, text)
        })
    }
}

/// Links followed from an imported path before giving up (C++ Nix's bound).
const MAX_LINKS: usize = 1024;

fn suspended(lambda: Rc<Lambda>) -> Value {
    Value::Thunk(Thunk::suspended(lambda, Upvalues::none()))
}

/// Replaces each `\r` not followed by `\n` with `\n`.
/// A file's text as [`Loader::compile_source`] registers the text that
/// [`Loader::read`] read: how a released text is read again.
pub(crate) fn text_of_file(bytes: &[u8]) -> Rc<str> {
    let text = crate::source::decode_source_shared(bytes);
    if text.contains('\r') {
        normalise_cr(&text).into()
    } else {
        text
    }
}

fn normalise_cr(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if c == '\r' && bytes.get(i + 1) != Some(&b'\n') {
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::io::{EvalIO, FileType, Metadata};
    use crate::{EvalOptions, Evaluator, Source};
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::io;
    use std::path::{Component, Path, PathBuf};
    use std::rc::Rc;

    enum Entry {
        File(&'static str),
        Dir,
        Link(&'static str),
    }

    /// A filesystem that exists only behind the evaluator's door, counting
    /// the files read: whatever bypasses [`EvalIO`] finds nothing.
    struct MemIO {
        entries: BTreeMap<PathBuf, Entry>,
        reads: Rc<RefCell<Vec<PathBuf>>>,
    }

    impl MemIO {
        fn new(entries: &[(&str, Entry)], reads: Rc<RefCell<Vec<PathBuf>>>) -> Self {
            let mut map = BTreeMap::new();
            map.insert(PathBuf::from("/"), Entry::Dir);
            for (p, e) in entries {
                let e = match e {
                    Entry::File(t) => Entry::File(t),
                    Entry::Dir => Entry::Dir,
                    Entry::Link(t) => Entry::Link(t),
                };
                map.insert(PathBuf::from(p), e);
            }
            MemIO {
                entries: map,
                reads,
            }
        }

        fn entry(&self, path: &Path) -> io::Result<&Entry> {
            self.entries
                .get(path)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        /// The path with every link followed, the final one too.
        fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
            let mut out = PathBuf::from("/");
            let mut todo: Vec<PathBuf> = vec![path.to_path_buf()];
            let mut hops = 0;
            while let Some(p) = todo.pop() {
                let mut parts: Vec<Component> = p.components().collect();
                parts.reverse();
                while let Some(c) = parts.pop() {
                    match c {
                        Component::RootDir => out = PathBuf::from("/"),
                        Component::CurDir | Component::Prefix(_) => {}
                        Component::ParentDir => {
                            out.pop();
                        }
                        Component::Normal(name) => {
                            let next = out.join(name);
                            if let Entry::Link(target) = self.entry(&next)? {
                                hops += 1;
                                if hops > 40 {
                                    return Err(io::Error::other("too many links"));
                                }
                                let rest: PathBuf = parts.iter().rev().collect();
                                todo.push(rest);
                                todo.push(PathBuf::from(target));
                                break;
                            }
                            out = next;
                        }
                    }
                }
            }
            Ok(out)
        }
    }

    impl EvalIO for MemIO {
        fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
            let real = self.resolve(path)?;
            self.reads.borrow_mut().push(real.clone());
            match self.entry(&real)? {
                Entry::File(t) => Ok(t.as_bytes().to_vec()),
                _ => Err(io::Error::other("Is a directory")),
            }
        }

        fn read_dir(&self, _: &Path) -> io::Result<Vec<(String, FileType)>> {
            Err(io::Error::other("not needed by these tests"))
        }

        fn file_type(&self, path: &Path) -> io::Result<FileType> {
            let parent = path
                .parent()
                .map_or(Ok(PathBuf::from("/")), |p| self.resolve(p))?;
            let name = path.file_name().map_or(PathBuf::new(), PathBuf::from);
            Ok(match self.entry(&parent.join(name))? {
                Entry::File(_) => FileType::Regular,
                Entry::Dir => FileType::Directory,
                Entry::Link(_) => FileType::Symlink,
            })
        }

        fn path_exists(&self, path: &Path) -> bool {
            self.resolve(path).is_ok()
        }

        fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
            match self.entry(path)? {
                Entry::Link(t) => Ok(PathBuf::from(t)),
                _ => Err(io::Error::other("Invalid argument")),
            }
        }

        fn is_executable(&self, _: &Path) -> io::Result<bool> {
            Ok(false)
        }

        fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
            self.resolve(path)
        }

        fn metadata(&self, _: &Path) -> io::Result<Metadata> {
            Err(io::Error::other("not needed by these tests"))
        }
    }

    fn evaluator(reads: &Rc<RefCell<Vec<PathBuf>>>) -> Evaluator {
        let io = MemIO::new(
            &[
                ("/m", Entry::Dir),
                ("/m/dir", Entry::Dir),
                ("/m/dir/default.nix", Entry::File("{ x = import ./y.nix; }")),
                ("/m/dir/y.nix", Entry::File("41 + 1")),
                ("/m/link", Entry::Link("dir")),
                ("/m/other", Entry::Dir),
                ("/m/other/f.nix", Entry::File("import ./y.nix")),
                ("/m/other/y.nix", Entry::File("\"other\"")),
                ("/m/a", Entry::Dir),
                ("/m/a/y.nix", Entry::File("\"a\"")),
                ("/m/a/link.nix", Entry::Link("../other/f.nix")),
                ("/m/a/loop.nix", Entry::Link("loop.nix")),
            ],
            reads.clone(),
        );
        Evaluator::with_io(Box::new(io), EvalOptions::default())
    }

    fn eval(ev: &Evaluator, source: Source) -> Result<String, String> {
        ev.root(&source, &[], &[])
            .and_then(|v| ev.deep_force(v))
            .map(|v| crate::printer::print_value(&v))
            .map_err(|e| ev.render_error(&e))
    }

    #[test]
    fn a_link_to_a_directory_imports_its_default_nix_through_the_door() {
        let reads = Rc::default();
        let ev = evaluator(&reads);
        assert_eq!(
            eval(&ev, Source::Expr("(import /m/link).x".into())),
            Ok("42".into())
        );
        assert_eq!(
            eval(&ev, Source::File("/m/link".into())),
            Ok("{ x = 42; }".into())
        );
    }

    #[test]
    fn an_imported_link_is_followed_so_relative_paths_resolve_where_the_file_is() {
        let reads = Rc::default();
        let ev = evaluator(&reads);
        for source in [
            Source::Expr("import /m/a/link.nix".into()),
            Source::File("/m/a/link.nix".into()),
        ] {
            assert_eq!(eval(&ev, source), Ok("\"other\"".into()));
        }
        let e = eval(&ev, Source::Expr("import /m/a/loop.nix".into())).unwrap_err();
        assert!(e.contains("too many symbolic links"), "{e}");
    }

    #[test]
    fn a_file_is_read_once_however_often_it_is_imported() {
        let reads = Rc::default();
        let ev = evaluator(&reads);
        let e = "[ (import /m/dir/y.nix) (import /m/link/y.nix) (import /m/dir).x ]";
        assert_eq!(eval(&ev, Source::Expr(e.into())), Ok("[ 42 42 42 ]".into()));
        let y = reads
            .borrow()
            .iter()
            .filter(|p| p.ends_with("y.nix"))
            .count();
        // `/m/link/y.nix` is another path for the same file: read again,
        // as C++ Nix does (its cache is by the path as resolved lexically).
        assert_eq!(y, 2, "{:?}", reads.borrow());
    }

    /// The compiled-file cache keys a file by the digest of the bytes read
    /// (not a second hash of its text): a change of content, even of the
    /// same length at the same path, is a different entry, and the old
    /// content finds its own entry again.
    #[test]
    fn the_compiled_file_cache_keys_a_file_by_the_bytes_read() {
        let dir = std::env::temp_dir().join(format!("attrfs-loader-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let with = |text: &'static str| {
            let io = MemIO::new(
                &[("/m", Entry::Dir), ("/m/c.nix", Entry::File(text))],
                Rc::default(),
            );
            let options = EvalOptions {
                compile_cache: Some(crate::compiler::cache::CacheConfig {
                    dir: dir.clone(),
                    max_bytes: 1 << 20,
                }),
                ..EvalOptions::default()
            };
            let ev = Evaluator::with_io(Box::new(io), options);
            eval(&ev, Source::Expr("import /m/c.nix".into()))
        };
        let entries = || {
            std::fs::read_dir(&dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                        .count()
                })
                .unwrap_or(0)
        };
        // The `-E` text and the file.
        assert_eq!(with("1 + 1"), Ok("2".into()));
        assert_eq!(entries(), 2);
        assert_eq!(with("1 + 2"), Ok("3".into()));
        assert_eq!(entries(), 3, "new content, new entry");
        assert_eq!(with("1 + 1"), Ok("2".into()));
        assert_eq!(entries(), 3, "the old content's entry is found again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_in_an_imported_file_point_into_it() {
        let reads = Rc::default();
        let ev = evaluator(&reads);
        let e = eval(&ev, Source::Expr("import /m/nope.nix".into())).unwrap_err();
        assert!(e.contains("opening file '/m/nope.nix'"), "{e}");
        let e = eval(&ev, Source::File("/m/nope.nix".into())).unwrap_err();
        assert!(e.contains("opening file '/m/nope.nix'"), "{e}");
    }
}
