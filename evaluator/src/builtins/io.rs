//! Builtins: reading the filesystem (`readFile`, `readDir`,
//! `readFileType`, `pathExists`, `toPath`), all through the evaluator's
//! I/O trait (`state.io`), which also serves the sources the evaluation
//! added to its virtual store.

use super::gen;
use crate::errors::{ErrorKind, EvalResult};
use crate::io::FileType;
use crate::path::canon_path;
use crate::value::{Args, BuiltinDef, NixAttrs, NixContext, NixString, Thunk, Value};
use crate::vm::{coerce_to_string, force, Coercion, EvalState, GenCo, GenFuture};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    gen("readFile", 1, read_file),
    gen("readDir", 1, read_dir),
    gen("readFileType", 1, read_file_type),
    gen("pathExists", 1, path_exists),
    gen("toPath", 1, to_path),
];

/// A path argument as C++ Nix's `coerceToPath` reads it: a path value, or
/// anything that coerces to a string (without copying paths to the store)
/// holding an absolute path, which is then canonicalised. Also returns the
/// string's context.
pub(crate) async fn coerce_to_path(
    co: &GenCo,
    state: &Rc<EvalState>,
    v: Value,
) -> EvalResult<(PathBuf, Option<NixContext>)> {
    let v = force(co, v).await;
    if let Value::Path(p) = &v {
        return Ok(((**p).clone(), None));
    }
    let s = coerce_to_string(co, state, v, Coercion::PATH_PART).await?;
    let text = s.to_str_lossy();
    if !text.starts_with('/') {
        return Err(ErrorKind::other(format!(
            "string '{text}' doesn't represent an absolute path"
        )));
    }
    Ok((PathBuf::from(canon_path(&text)), s.context().cloned()))
}

/// C++ Nix's message for an I/O failure on `path`.
pub(crate) fn io_error(path: &Path, e: &std::io::Error, doing: &str) -> ErrorKind {
    if e.kind() == std::io::ErrorKind::NotFound {
        ErrorKind::Io(format!("path '{}' does not exist", path.display()))
    } else {
        ErrorKind::Io(format!(
            "{doing} '{}': {}",
            path.display(),
            crate::vm::io_msg(e)
        ))
    }
}

/// The bytes of a file, as `readFile` and `hashFile` read them.
pub(crate) fn read_bytes(state: &EvalState, path: &Path) -> EvalResult<Vec<u8>> {
    state
        .io
        .read_file(path)
        .map_err(|e| io_error(path, &e, "opening file"))
}

fn read_file(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let (path, _) = coerce_to_path(&co, &state, args[0].clone()).await?;
        let bytes = read_bytes(&state, &path)?;
        if bytes.contains(&0) {
            return Err(ErrorKind::other(format!(
                "the contents of the file '{}' cannot be represented as a Nix string",
                path.display()
            )));
        }
        Ok(Value::String(NixString::plain(bytes)))
    })
}

/// `readFileType` itself, applied lazily to entries whose type the
/// directory listing does not tell.
static READ_FILE_TYPE: BuiltinDef = gen("readFileType", 1, read_file_type);

fn read_dir(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let (path, _) = coerce_to_path(&co, &state, args[0].clone()).await?;
        let entries = match state.io.read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                return Err(ErrorKind::Io(format!(
                    "'{}' is not a directory",
                    path.display()
                )))
            }
            Err(e) => return Err(io_error(&path, &e, "reading directory")),
        };
        let mut out = Vec::with_capacity(entries.len());
        for (name, kind) in entries {
            let value = match kind {
                FileType::Unknown => {
                    let entry = Value::path(path.join(&name));
                    let f = Value::Builtin(Rc::new(crate::value::BuiltinApp {
                        def: &READ_FILE_TYPE,
                        args: Args::new(),
                    }));
                    Value::Thunk(Thunk::apply(f, entry))
                }
                k => Value::string(k.nix_name()),
            };
            out.push((NixString::from(name), value));
        }
        Ok(Value::attrs(NixAttrs::from_unsorted_first_wins(out)))
    })
}

fn read_file_type(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let (path, _) = coerce_to_path(&co, &state, args[0].clone()).await?;
        let kind = state
            .io
            .file_type(&path)
            .map_err(|e| io_error(&path, &e, "getting status of"))?;
        Ok(Value::string(kind.nix_name()))
    })
}

fn path_exists(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let arg = force(&co, args[0].clone()).await;
        // A trailing slash (or `/.`) asks for a directory.
        let must_be_dir = match &arg {
            Value::String(s) => s.as_bytes().ends_with(b"/") || s.as_bytes().ends_with(b"/."),
            _ => false,
        };
        let (path, _) = coerce_to_path(&co, &state, arg).await?;
        let exists = match state.io.file_type(&path) {
            Err(_) => false,
            Ok(FileType::Directory) => true,
            Ok(_) if !must_be_dir => true,
            Ok(FileType::Symlink) => state.io.read_dir(&path).is_ok(),
            Ok(_) => false,
        };
        Ok(Value::Bool(exists))
    })
}

fn to_path(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let (path, context) = coerce_to_path(&co, &state, args[0].clone()).await?;
        Ok(Value::String(NixString::new(
            path.to_string_lossy().into_owned().into_bytes(),
            context,
        )))
    })
}

#[cfg(test)]
mod tests {
    use crate::eval::testing::{err, ok};

    #[test]
    fn reading_files_and_directories() {
        let dir = std::env::temp_dir().join(format!("attrfs-io-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("f"), "hello").unwrap();
        let d = dir.display();
        assert_eq!(ok(&format!("builtins.readFile {d}/f")), "\"hello\"");
        assert_eq!(ok(&format!("builtins.readFile \"{d}/f\"")), "\"hello\"");
        assert_eq!(
            ok(&format!("builtins.readDir {d}")),
            "{ f = \"regular\"; sub = \"directory\"; }"
        );
        assert_eq!(
            ok(&format!("builtins.readFileType {d}/sub")),
            "\"directory\""
        );
        assert_eq!(ok(&format!("builtins.pathExists {d}/f")), "true");
        assert_eq!(ok(&format!("builtins.pathExists \"{d}/f/\"")), "false");
        assert_eq!(ok(&format!("builtins.pathExists \"{d}/sub/.\"")), "true");
        assert_eq!(ok(&format!("builtins.pathExists {d}/nope")), "false");
        assert!(err(&format!("builtins.readDir {d}/f")).contains("is not a directory"));
        assert!(err(&format!("builtins.readFile {d}/nope")).contains("does not exist"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn path_strings() {
        assert_eq!(ok("builtins.toPath \"/a/../b//c/\""), "\"/b/c\"");
        assert!(err("builtins.toPath \"foo/bar\"")
            .contains("string 'foo/bar' doesn't represent an absolute path"));
        assert!(
            err("builtins.pathExists \"zorglub\"").contains("doesn't represent an absolute path")
        );
        assert!(err("builtins.toPath [ ]").contains("cannot coerce a list to a string"));
    }
}
