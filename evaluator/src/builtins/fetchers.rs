//! Builtins: fetchers. This evaluator never touches the network, so every
//! fetcher ends in an error naming what it would have fetched, after the
//! same argument checks as C++ Nix (so that mistakes are reported the same
//! way). The one offline answer C++ Nix gives is kept: `fetchurl` and
//! `fetchTarball` with a `sha256` return the expected store path if it is
//! already present.

use super::strings::expect_string_no_ctx;
use super::{gen, sync};
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{BuiltinDef, ContextElem, NixContext, NixString, Value};
use crate::vm::{
    coerce_to_string, force, force_attrs, type_error, Coercion, EvalState, GenCo, GenFuture,
};
use attrfs_store::hash::{Hash, HashAlgo};
use std::path::Path;
use std::rc::Rc;

mod flakeref;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    gen("fetchurl", 1, fetchurl),
    gen("fetchTarball", 1, fetch_tarball),
    gen("fetchGit", 1, fetch_git),
    gen("fetchMercurial", 1, fetch_mercurial),
    gen("fetchTree", 1, fetch_tree),
    gen("fetchClosure", 1, fetch_closure),
    sync("getFlake", 1, get_flake),
    sync("parseFlakeRef", 1, parse_flake_ref),
    gen("flakeRefToString", 1, flake_ref_to_string),
];

/// The error for anything that would need the network.
fn unsupported(who: &str, what: &str, url: &str) -> ErrorKind {
    ErrorKind::Unsupported(format!(
        "builtins.{who}: remote fetching is not supported ({what} '{url}')"
    ))
}

/// The longest store path name C++ Nix accepts.
const MAX_NAME_LEN: usize = 211;

/// C++ Nix's store path name check, with its messages.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "name '{name}' must be no longer than {MAX_NAME_LEN} characters"
        ));
    }
    for bad in [".", ".."] {
        if name == bad {
            return Err(format!("name '{name}' is not valid"));
        }
        if name.starts_with(&format!("{bad}-")) {
            return Err(format!(
                "name '{name}' is not valid: first dash-separated component must not be '{bad}'"
            ));
        }
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_' | '?' | '=')))
    {
        return Err(format!("name '{name}' contains illegal character '{c}'"));
    }
    Ok(())
}

/// The last component of a URL, as C++ Nix's `baseNameOf` takes it.
fn base_name_of(url: &str) -> &str {
    let trimmed = url.strip_suffix('/').unwrap_or(url);
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// `fetchurl` and `fetchTarball` (C++ Nix's shared `fetch`).
async fn fetch(
    co: &GenCo,
    state: &Rc<EvalState>,
    arg: Value,
    who: &str,
    unpack: bool,
    default_name: &str,
) -> EvalResult<Value> {
    let arg = force(co, arg).await;
    let mut url = None;
    let mut hash = None;
    let mut name = default_name.to_string();
    let mut name_passed = false;
    let is_attrs = matches!(arg, Value::Attrs(_));
    if let Value::Attrs(a) = &arg {
        for (k, v) in a.iter() {
            let v = force(co, v.clone()).await;
            match k.as_bytes() {
                b"url" => url = Some(expect_string_no_ctx(&v)?.to_string()),
                b"sha256" => {
                    let text = expect_string_no_ctx(&v)?.to_string();
                    hash = Some(
                        Hash::parse_allow_empty(&text, Some(HashAlgo::Sha256))
                            .map_err(|e| ErrorKind::other(e.to_string()))?,
                    );
                }
                b"name" => {
                    name_passed = true;
                    name = expect_string_no_ctx(&v)?.to_string();
                }
                other => {
                    return Err(ErrorKind::other(format!(
                        "unsupported argument '{}' to '{who}'",
                        String::from_utf8_lossy(other)
                    )))
                }
            }
        }
    } else {
        url = Some(expect_string_no_ctx(&arg)?.to_string());
    }
    let url = url.ok_or_else(|| ErrorKind::other("'url' argument required"))?;
    if name.is_empty() {
        name = base_name_of(&url).to_string();
    }
    if let Err(e) = check_name(&name) {
        let resolution = if name_passed {
            format!("Please change the value for the 'name' attribute passed to '{who}', so that it can create a valid store path.")
        } else if is_attrs {
            format!("Please add a valid 'name' attribute to the argument for '{who}', so that it can create a valid store path.")
        } else {
            format!("Please pass an attribute set with 'url' and 'name' attributes to '{who}',  so that it can create a valid store path.")
        };
        return Err(ErrorKind::other(format!(
            "invalid store path name when fetching URL '{url}': {e}. {resolution}"
        )));
    }
    // A pinned download that is already in the store needs no network.
    if let Some(hash) = hash.filter(|h| h.algo() == HashAlgo::Sha256) {
        let path = crate::store::expected_source_path(unpack, &hash, &name)?;
        if state.io.path_exists(Path::new(&path)) {
            let context = NixContext::from([ContextElem::Plain(path.clone())]);
            return Ok(Value::String(NixString::new(
                path.into_bytes(),
                Some(context),
            )));
        }
    }
    Err(unsupported(who, "url", &url))
}

fn fetchurl(co: GenCo, state: Rc<EvalState>, args: Vec<Value>) -> GenFuture {
    Box::pin(async move { fetch(&co, &state, args[0].clone(), "fetchurl", false, "").await })
}

fn fetch_tarball(co: GenCo, state: Rc<EvalState>, args: Vec<Value>) -> GenFuture {
    Box::pin(
        async move { fetch(&co, &state, args[0].clone(), "fetchTarball", true, "source").await },
    )
}

/// The `url` of a fetcher argument: the argument itself (a string or path)
/// or its `url` attribute.
async fn url_of(co: &GenCo, state: &Rc<EvalState>, arg: Value, who: &str) -> EvalResult<String> {
    let arg = force(co, arg).await;
    let url = match &arg {
        Value::Attrs(a) => match a.get(b"url") {
            Some(u) => u.clone(),
            None => {
                return Err(ErrorKind::other(format!(
                    "attribute 'url' is missing in call to '{who}'"
                )))
            }
        },
        _ => arg.clone(),
    };
    let url = coerce_to_string(co, state, url, Coercion::PATH_PART).await?;
    Ok(url.to_string())
}

async fn fetch_repo(co: &GenCo, state: &Rc<EvalState>, arg: Value, who: &str) -> EvalResult<Value> {
    let url = url_of(co, state, arg, who).await?;
    if url.starts_with('/') || url.starts_with("file:") || url.starts_with("path:") {
        return Err(ErrorKind::Unsupported(format!(
            "builtins.{who}: fetching a local repository is not supported (url '{url}')"
        )));
    }
    Err(unsupported(who, "url", &url))
}

fn fetch_git(co: GenCo, state: Rc<EvalState>, args: Vec<Value>) -> GenFuture {
    Box::pin(async move { fetch_repo(&co, &state, args[0].clone(), "fetchGit").await })
}

fn fetch_mercurial(co: GenCo, state: Rc<EvalState>, args: Vec<Value>) -> GenFuture {
    Box::pin(async move { fetch_repo(&co, &state, args[0].clone(), "fetchMercurial").await })
}

/// Extensions that make a `file:` URL a tarball for `fetchTree`.
const TARBALL_EXTENSIONS: &[&str] = &[
    ".zip", ".tar", ".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst",
];

fn fetch_tree(co: GenCo, state: Rc<EvalState>, args: Vec<Value>) -> GenFuture {
    Box::pin(async move {
        let arg = force(&co, args[0].clone()).await;
        let url = match &arg {
            Value::Attrs(a) => {
                let mut url = None;
                let mut kind = None;
                for (k, v) in a.iter() {
                    let v = force(&co, v.clone()).await;
                    let key = k.to_str_lossy();
                    match &v {
                        Value::Int(i) if *i < 0 => {
                            return Err(ErrorKind::other(format!(
                                "negative value given for 'fetchTree' argument '{key}': {i}"
                            )))
                        }
                        Value::Int(_) | Value::Bool(_) => {}
                        Value::String(_) | Value::Path(_) => {
                            let s = coerce_to_string(&co, &state, v.clone(), Coercion::PATH_PART)
                                .await?
                                .to_string();
                            match &*key {
                                "type" => kind = Some(s),
                                "url" | "path" => url = Some(s),
                                "owner" | "repo" if url.is_none() => url = Some(s),
                                _ => {}
                            }
                        }
                        other => {
                            return Err(ErrorKind::other(format!(
                                "argument '{key}' to 'fetchTree' is {}, which is not supported",
                                crate::printer::type_with_article(other)
                            )))
                        }
                    }
                }
                let kind = kind.ok_or_else(|| {
                    ErrorKind::other("attribute 'type' is missing in call to 'fetchTree'")
                })?;
                url.unwrap_or(kind)
            }
            Value::String(s) => s.to_string(),
            other => return Err(type_error("set", other)),
        };
        if let Some(rest) = url.strip_prefix("file:") {
            if !rest.starts_with('/') {
                let kind = if TARBALL_EXTENSIONS.iter().any(|e| url.ends_with(e)) {
                    "tarball"
                } else {
                    "file"
                };
                return Err(ErrorKind::other(format!(
                    "{kind} '{url}' must use an absolute path. The 'file' scheme does not support relative paths."
                )));
            }
        }
        let local = url.starts_with('/')
            || ["path:", "file:", "git+file:", "hg+file:", "tarball+file:"]
                .iter()
                .any(|p| url.starts_with(p));
        if local {
            return Err(ErrorKind::Unsupported(format!(
                "builtins.fetchTree: fetching local inputs is not supported (url '{url}')"
            )));
        }
        Err(unsupported("fetchTree", "url", &url))
    })
}

fn fetch_closure(co: GenCo, _: Rc<EvalState>, args: Vec<Value>) -> GenFuture {
    Box::pin(async move {
        let arg = force_attrs(&co, args[0].clone()).await?;
        let from = match arg.get(b"fromStore") {
            Some(v) => expect_string_no_ctx(&force(&co, v.clone()).await)?.to_string(),
            None => {
                return Err(ErrorKind::other(
                    "attribute 'fromStore' is missing in call to 'fetchClosure'",
                ))
            }
        };
        Err(unsupported("fetchClosure", "store", &from))
    })
}

fn get_flake(_: &Rc<EvalState>, args: Vec<Value>) -> EvalResult<Value> {
    let flake = expect_string_no_ctx(&args[0])?;
    Err(unsupported("getFlake", "flake", &flake.to_str_lossy()))
}

fn parse_flake_ref(_: &Rc<EvalState>, args: Vec<Value>) -> EvalResult<Value> {
    let text = expect_string_no_ctx(&args[0])?;
    let attrs = flakeref::parse(&text.to_str_lossy()).map_err(ErrorKind::other)?;
    let entries = attrs
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                flakeref::Attr::Str(s) => Value::string(s),
                flakeref::Attr::Int(i) => Value::Int(i64::try_from(i).unwrap_or(i64::MAX)),
                flakeref::Attr::Bool(b) => Value::Bool(b),
            };
            (NixString::from(k), value)
        })
        .collect();
    Ok(Value::attrs(crate::value::NixAttrs::from_sorted(entries)))
}

fn flake_ref_to_string(co: GenCo, _: Rc<EvalState>, args: Vec<Value>) -> GenFuture {
    Box::pin(async move {
        let Value::Attrs(set) = &args[0] else {
            return Err(type_error("set", &args[0]));
        };
        let mut attrs = flakeref::Attrs::new();
        for (k, v) in set.iter() {
            let name = k.to_str_lossy().into_owned();
            let value = match force(&co, v.clone()).await {
                Value::Int(i) if i < 0 => {
                    return Err(ErrorKind::other(format!(
                        "negative value given for flake ref attr {name}: {i}"
                    )))
                }
                Value::Int(i) => flakeref::Attr::Int(i as u64),
                Value::Bool(b) => flakeref::Attr::Bool(b),
                Value::String(s) => flakeref::Attr::Str(s.to_str_lossy().into_owned()),
                other => {
                    return Err(ErrorKind::other(format!(
                        "flake reference attribute sets may only contain integers, Booleans, \
                         and strings, but attribute '{name}' is {}",
                        crate::printer::type_with_article(&other)
                    )))
                }
            };
            attrs.insert(name, value);
        }
        Ok(Value::string(
            flakeref::to_string(&attrs).map_err(ErrorKind::other)?,
        ))
    })
}

#[cfg(test)]
mod tests {
    use crate::eval::eval_strict_to_string as eval;

    fn err(e: &str) -> String {
        eval(e).expect_err(e)
    }

    #[test]
    fn fetchers_fail_clearly() {
        assert!(err("builtins.fetchurl \"https://example.com/a.tar.gz\"").contains(
            "builtins.fetchurl: remote fetching is not supported (url 'https://example.com/a.tar.gz')"
        ));
        assert!(
            err("builtins.fetchurl \"https://example.com/~wiggle~\"").contains(
                "invalid store path name when fetching URL 'https://example.com/~wiggle~': \
             name '~wiggle~' contains illegal character '~'. Please pass an attribute set"
            )
        );
        assert!(
            err("builtins.fetchurl { url = \"https://e.com/x\"; name = \"~w~\"; }")
                .contains("Please change the value for the 'name' attribute passed to 'fetchurl'")
        );
        assert!(
            err("builtins.fetchTarball { url = \"https://e.com/x\"; foo = 1; }")
                .contains("unsupported argument 'foo' to 'fetchTarball'")
        );
        assert!(err("builtins.fetchGit { url = \"https://github.com/NixOS/nix\"; }")
            .contains("builtins.fetchGit: remote fetching is not supported (url 'https://github.com/NixOS/nix')"));
        assert!(
            err("builtins.fetchGit /tmp").contains("fetching a local repository is not supported")
        );
        assert!(
            err("builtins.fetchTree { type = \"file\"; url = \"file:///x\"; owner = -1; }")
                .contains("negative value given for 'fetchTree' argument 'owner': -1")
        );
        assert!(err("builtins.fetchTree \"file:./relative-path.tar.gz\"").contains(
            "tarball 'file:./relative-path.tar.gz' must use an absolute path. The 'file' scheme does not support relative paths."
        ));
        assert!(err("builtins.getFlake \"github:NixOS/nixpkgs\"")
            .contains("remote fetching is not supported (flake 'github:NixOS/nixpkgs')"));
    }

    #[test]
    fn flake_refs() {
        let ok = |e: &str| eval(e).unwrap_or_else(|err| panic!("{e}: {err}"));
        assert_eq!(
            ok(
                "builtins.flakeRefToString { type = \"github\"; owner = \"NixOS\"; \
                repo = \"nixpkgs\"; ref = \"23.05\"; dir = \"lib\"; }"
            ),
            "\"github:NixOS/nixpkgs/23.05?dir=lib\""
        );
        assert_eq!(
            ok("builtins.parseFlakeRef \"github:NixOS/nixpkgs/23.05?dir=lib\""),
            "{ dir = \"lib\"; owner = \"NixOS\"; ref = \"23.05\"; repo = \"nixpkgs\"; type = \"github\"; }"
        );
        assert!(
            err("let n = -1; in builtins.flakeRefToString { type = \"github\"; repo = n; }")
                .contains("negative value given for flake ref attr repo: -1")
        );
    }
}
