//! Flakes: a flake reference fetched, its `flake.lock` followed, its
//! outputs called, as C++ Nix's `getFlake` and `nix eval` do.
//!
//! - [`flakeref`]: flake references in URL and attribute-set form.
//! - [`get_flake`]: the flake value (`outputs // sourceInfo // { outPath,
//!   inputs, outputs, sourceInfo, _type = "flake"; }`). The root is fetched
//!   here (a path tree, the tracked files of a Git work tree, or any
//!   fetchable input); the lock file is then walked by `call-flake.nix`,
//!   which fetches every locked input with `fetchTree`. Lock files are read,
//!   never written: an input missing from `flake.lock` is an error naming it.
//! - [`resolve_local`]: what a path on the command line means (`.`,
//!   `/etc/nixos`): a `git+file:` flake if it is inside a Git work tree, else
//!   a `path:` flake.
//! - [`attr_candidates`]: how `nix eval` resolves `#X` (`packages.<system>.X`,
//!   `legacyPackages.<system>.X`, then `X`).

pub mod flakeref;

use crate::errors::{ErrorKind, EvalResult};
use crate::io::EvalIO;
use crate::value::{NixAttrs, NixString, Value};
use crate::vm::{call, EvalOptions, EvalState, GenCo, SourceUnit};
use flakeref::{Attr, Attrs};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The call-flake expression (see the module documentation).
const CALL_FLAKE: &str = include_str!("call-flake.nix");

/// Sets up options for evaluating a flake: the `flakes` feature, and pure
/// evaluation unless `impure`.
pub fn configure(options: &mut EvalOptions, impure: bool) {
    if !options.experimental_features.iter().any(|f| f == "flakes") {
        options.experimental_features.push("flakes".into());
    }
    options.pure_eval = !impure;
    if !impure {
        options.search_path.clear();
    }
}

/// A flake reference as given on the command line, with its `#fragment`
/// split off. Local paths become `path:` or `git+file:` references.
pub fn parse_cli_ref(
    io: &dyn EvalIO,
    text: &str,
    cwd: &Path,
) -> Result<(Attrs, Option<String>), String> {
    let (reference, fragment) = match text.split_once('#') {
        Some((r, f)) => (r, Some(f.to_string())),
        None => (text, None),
    };
    // As in C++ Nix, a bare word (`nixpkgs`) is an indirect reference even
    // if a directory of that name exists; paths start with `/` or `.`.
    let looks_local = reference.starts_with('/') || reference.starts_with('.');
    let attrs = if looks_local {
        resolve_local(io, &cwd.join(reference))?
    } else {
        flakeref::parse(reference)?
    };
    Ok((attrs, fragment))
}

/// A local directory as a flake reference: a Git input (its work tree's
/// tracked files, `dir` set to the subdirectory) when it is inside a Git
/// work tree, else a `path` input.
pub fn resolve_local(io: &dyn EvalIO, path: &Path) -> Result<Attrs, String> {
    let path = io
        .canonicalize(path)
        .map_err(|e| format!("path '{}' does not exist: {e}", path.display()))?;
    if !io.path_exists(&path.join("flake.nix")) {
        return Err(format!(
            "path '{}' is not a flake (because it doesn't contain a 'flake.nix' file)",
            path.display()
        ));
    }
    let mut attrs = Attrs::new();
    let git_root = path
        .ancestors()
        .find(|a| io.path_exists(&a.join(".git")))
        .map(Path::to_path_buf);
    match git_root {
        Some(root) => {
            attrs.insert("type".into(), Attr::Str("git".into()));
            attrs.insert(
                "url".into(),
                Attr::Str(format!("file://{}", root.display())),
            );
            let rel = path.strip_prefix(&root).unwrap_or(Path::new(""));
            if !rel.as_os_str().is_empty() {
                attrs.insert("dir".into(), Attr::Str(rel.display().to_string()));
            }
        }
        None => {
            attrs.insert("type".into(), Attr::Str("path".into()));
            attrs.insert("path".into(), Attr::Str(path.display().to_string()));
        }
    }
    Ok(attrs)
}

/// The attribute paths `nix eval REF#X` tries, in order.
pub fn attr_candidates(fragment: &str, system: &str) -> Vec<String> {
    vec![
        format!("packages.{system}.{fragment}"),
        format!("legacyPackages.{system}.{fragment}"),
        fragment.to_string(),
    ]
}

/// `builtins.getFlake`: a flake reference (a URL or attribute form) whose
/// pure-evaluation lock check C++ Nix applies.
pub async fn get_flake(co: &GenCo, state: &Rc<EvalState>, reference: &str) -> EvalResult<Value> {
    let attrs = flakeref::parse(reference).map_err(ErrorKind::other)?;
    if state.options.pure_eval && !crate::inputs::is_locked(&attrs) {
        return Err(ErrorKind::other(format!(
            "cannot call 'getFlake' on unlocked flake reference '{reference}' (use --impure to override)"
        )));
    }
    call_flake(co, state, &attrs).await
}

/// The value of the flake at `reference` (attribute form, `dir` allowed).
pub async fn call_flake(co: &GenCo, state: &Rc<EvalState>, reference: &Attrs) -> EvalResult<Value> {
    let mut input = reference.clone();
    let subdir = match input.remove("dir") {
        Some(Attr::Str(d)) => d.trim_matches('/').to_string(),
        _ => String::new(),
    };
    let name = flakeref::to_string(reference).unwrap_or_else(|_| format!("{reference:?}"));
    let root = crate::inputs::fetch(state, &input)?;
    let flake_dir = if subdir.is_empty() {
        PathBuf::from(&root.store_path)
    } else {
        Path::new(&root.store_path).join(&subdir)
    };
    if !state.io.path_exists(&flake_dir.join("flake.nix")) {
        return Err(ErrorKind::other(format!(
            "source tree referenced by '{name}' does not contain a '{}flake.nix' file",
            if subdir.is_empty() {
                String::new()
            } else {
                format!("{subdir}/")
            }
        )));
    }
    let lock = match state.io.read_file(&flake_dir.join("flake.lock")) {
        Ok(bytes) => Value::string(String::from_utf8_lossy(&bytes).into_owned()),
        Err(_) => Value::Null,
    };
    let root_src = root.tree_attrs(false);
    let f = state
        .loader()
        .load(SourceUnit::expr(
            "«attrfs call-flake»",
            CALL_FLAKE,
            PathBuf::from("/"),
        ))
        .map_err(|e| ErrorKind::Located(Box::new(e)))?;
    let arg = Value::attrs(NixAttrs::from_unsorted_first_wins(vec![
        (NixString::from("lockFileStr"), lock),
        (NixString::from("rootSrc"), root_src),
        (NixString::from("rootSubdir"), Value::string(subdir)),
        (NixString::from("rootName"), Value::string(name)),
    ]));
    Ok(call(co, f, arg).await)
}

/// The value of `REF#ATTRPATH` as `nix eval` finds it: the whole flake
/// without a fragment, else the first of [`attr_candidates`] that exists.
pub fn load_installable(ev: &crate::Evaluator, text: &str) -> Result<Value, crate::Error> {
    let state = ev.state.clone();
    let (reference, fragment) = parse_cli_ref(&*state.fetch_io, text, &state.options.cwd)
        .map_err(|m| crate::Error::new(ErrorKind::other(m), None))?;
    let flake_name = text.split('#').next().unwrap_or(text).to_string();
    ev.run(move |co| {
        Box::pin(async move {
            let flake = call_flake(&co, &state, &reference).await?;
            let Some(fragment) = fragment.filter(|f| !f.is_empty()) else {
                return Ok(flake);
            };
            let candidates = attr_candidates(&fragment, &state.options.system);
            'candidate: for candidate in &candidates {
                let mut v = flake.clone();
                for component in crate::attrpath::split_attr_path(candidate) {
                    match crate::vm::force(&co, v).await {
                        Value::Attrs(a) => match a.get(component.as_bytes()) {
                            Some(x) => v = x.clone(),
                            None => continue 'candidate,
                        },
                        _ => continue 'candidate,
                    }
                }
                return Ok(v);
            }
            let quoted: Vec<String> = candidates.iter().map(|c| format!("'{c}'")).collect();
            Err(ErrorKind::other(format!(
                "flake '{flake_name}' does not provide attribute {}",
                match quoted.as_slice() {
                    [a, b, c] => format!("{a}, {b} or {c}"),
                    other => other.join(", "),
                }
            )))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdIO;

    #[test]
    fn command_line_references() {
        let base = std::env::temp_dir().join(format!("attrfs-flakeref-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("plain")).unwrap();
        std::fs::write(base.join("plain/flake.nix"), "{ outputs = _: { }; }").unwrap();
        let (attrs, fragment) = parse_cli_ref(&StdIO, "./plain#a.b", &base).unwrap();
        assert_eq!(fragment.as_deref(), Some("a.b"));
        assert_eq!(attrs.get("type"), Some(&Attr::Str("path".into())));
        let (attrs, fragment) =
            parse_cli_ref(&StdIO, "github:NixOS/nixpkgs/nixos-20.09", &base).unwrap();
        assert_eq!(fragment, None);
        assert_eq!(attrs.get("ref"), Some(&Attr::Str("nixos-20.09".into())));
        assert!(parse_cli_ref(&StdIO, ".", &base)
            .unwrap_err()
            .contains("is not a flake (because it doesn't contain a 'flake.nix' file)"));
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn attribute_candidates_as_nix_eval() {
        assert_eq!(
            attr_candidates("hello", "x86_64-linux"),
            [
                "packages.x86_64-linux.hello",
                "legacyPackages.x86_64-linux.hello",
                "hello"
            ]
        );
    }
}
