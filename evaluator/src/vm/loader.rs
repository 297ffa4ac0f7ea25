//! Source loading: from a path or a text to a value the VM can run.
//!
//! Everything that turns Nix source into code goes through here: the root
//! file or `-E` expression of an evaluation, `--arg` expressions, `import`,
//! `scopedImport`, the built-in Nix sources (`derivation`) and the flake
//! call expression. The steps are always the same (read through
//! [`EvalIO`](crate::io::EvalIO), register the text in the source map,
//! parse, build the compile environment, compile), and they happen in one
//! function, [`Loader::compile_source`]: a cache of compiled files, or a
//! record of what was compiled, belongs there and sees every source.

use super::state::{io_msg, EvalState};
use crate::bytecode::Lambda;
use crate::compiler::{self, base_dir_of, CompileEnv, Globals};
use crate::errors::{Error, ErrorKind, EvalResult};
use crate::io::FileType;
use crate::source::Span;
use crate::value::{Closure, NixAttrs, NixString, Thunk, Value};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
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
        }
    }

    /// The text of the file at `path`.
    pub fn file(path: &Path, text: Rc<str>) -> Self {
        SourceUnit {
            name: path.display().to_string(),
            path: Some(path.to_path_buf()),
            text,
            base_dir: base_dir_of(path),
        }
    }
}

/// What compiled code sees besides its own bindings.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
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

/// The files loaded so far, by resolved path, so that every `import` of a
/// file gives the same value (evaluated once), as in C++ Nix.
#[derive(Default)]
pub(super) struct ImportCache(RefCell<FxHashMap<PathBuf, Value>>);

/// The loader of one evaluation state: `state.loader()`.
pub struct Loader<'s> {
    state: &'s EvalState,
}

impl<'s> Loader<'s> {
    pub(super) fn new(state: &'s EvalState) -> Self {
        Loader { state }
    }

    /// Parses and compiles a source text: the one place text becomes code.
    /// The text is registered in the source map first, so that errors
    /// (syntax and static ones, such as an undefined variable) point into it.
    pub fn compile_source(&self, unit: SourceUnit, scope: Scope) -> Result<Rc<Lambda>, Error> {
        // C++ Nix ends comments and lines at a lone carriage return too; rnix
        // does not, so turn those into newlines (same length, spans intact).
        let text: Rc<str> = if unit.text.contains('\r') {
            normalise_cr(&unit.text).into()
        } else {
            unit.text
        };
        let file = self.state.sources.add(unit.name, unit.path, text.clone());
        let parsed = rnix::Root::parse(&text);
        if let Some(e) = parsed.errors().first() {
            return Err(crate::syntax::parse_error(e, &file));
        }
        let root = parsed.tree().expr().ok_or_else(|| {
            Error::new(
                ErrorKind::Parse("unexpected end of file".into()),
                Some(Span::new(file.base, file.base)),
            )
        })?;
        let options = &self.state.options;
        let (globals, home, lints) = match scope {
            Scope::Prelude(globals) => (globals, None, Default::default()),
            _ => (&**self.state.globals(), options.home.clone(), options.lints),
        };
        let env = CompileEnv {
            globals,
            base_dir: unit.base_dir,
            home,
            lints,
        };
        match scope {
            Scope::Scoped(names) => compiler::compile_scoped(&root, &file, &env, names),
            Scope::Globals | Scope::Prelude(_) => compiler::compile(&root, &file, &env),
        }
    }

    /// The (unevaluated) value of a source text in the global scope.
    pub fn load(&self, unit: SourceUnit) -> Result<Value, Error> {
        let lambda = self.compile_source(unit, Scope::Globals)?;
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
        };
        match self.compile_source(unit, Scope::Prelude(globals)) {
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
        if let Some(v) = self.state.imports.0.borrow().get(&path) {
            return Ok(v.clone());
        }
        let unit = self.read(&path)?;
        let v = self
            .load(unit)
            .map_err(|e| ErrorKind::Located(Box::new(e)))?;
        self.state.imports.0.borrow_mut().insert(path, v.clone());
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
            .compile_source(unit, Scope::Scoped(&names))
            .map_err(|e| ErrorKind::Located(Box::new(e)))?;
        Ok(Value::Closure(Rc::new(Closure {
            lambda,
            upvalues: Rc::from(Vec::new()),
        })))
    }

    /// The file an import of `path` reads: `dir` (or a symlink to one)
    /// means `dir/default.nix`.
    pub fn resolve(&self, path: &Path) -> EvalResult<PathBuf> {
        let io = &self.state.io;
        let is_dir = match io.file_type(path) {
            Ok(FileType::Directory) => true,
            Ok(FileType::Symlink) => std::fs::canonicalize(path).is_ok_and(|t| t.is_dir()),
            _ => false,
        };
        Ok(if is_dir {
            path.join("default.nix")
        } else {
            path.to_path_buf()
        })
    }

    /// The source text of a resolved path: a built-in `<nix/…>` file, or
    /// the file read through the evaluator's I/O.
    fn read(&self, path: &Path) -> EvalResult<SourceUnit> {
        if let Some(text) = crate::store::corepkg_source(path) {
            return Ok(SourceUnit::file(path, Rc::from(text)));
        }
        let bytes = self.state.io.read_file(path).map_err(|e| {
            ErrorKind::Io(format!("opening file '{}': {}", path.display(), io_msg(&e)))
        })?;
        let text = crate::source::decode_source(&bytes);
        Ok(SourceUnit::file(path, text.into()))
    }
}

/// The value of compiled top-level code: a thunk that runs it when forced.
fn suspended(lambda: Rc<Lambda>) -> Value {
    Value::Thunk(Thunk::suspended(lambda, Rc::from(Vec::new())))
}

/// Replaces each `\r` not followed by `\n` with `\n`.
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
