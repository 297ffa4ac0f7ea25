//! Builtins: fetchers. This evaluator never touches the network, so every
//! fetcher ends in an error naming what it would have fetched, after the
//! same argument checks as C++ Nix (so that mistakes are reported the same
//! way). The one offline answer C++ Nix gives is kept: `fetchurl` and
//! `fetchTarball` with a `sha256` return the expected store path if it is
//! already present.

use super::strings::expect_string_no_ctx;
use super::{gen, sync};
use crate::errors::{ErrorKind, EvalResult};
use crate::flake::flakeref::{self, Attr};
use crate::inputs::{self, Expected};
use crate::value::{Args, BuiltinDef, NixString, Value};
use crate::vm::{
    coerce_to_string, force, force_attrs, type_error, Coercion, EvalState, GenCo, GenFuture,
};
use attrfs_store::hash::{Hash, HashAlgo};
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    gen("fetchurl", 1, fetchurl),
    gen("fetchTarball", 1, fetch_tarball),
    gen("fetchGit", 1, fetch_git),
    gen("fetchMercurial", 1, fetch_mercurial),
    gen("fetchTree", 1, fetch_tree),
    gen("fetchClosure", 1, fetch_closure),
    gen("getFlake", 1, get_flake),
    sync("parseFlakeRef", 1, parse_flake_ref),
    gen("flakeRefToString", 1, flake_ref_to_string),
];

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
    if hash.is_none() && state.options.pure_eval {
        return Err(ErrorKind::other(format!(
            "in pure evaluation mode, '{who}' requires a 'sha256' argument"
        )));
    }
    let expected = match &hash {
        Some(h) if unpack => Expected::Nar(h),
        Some(h) => Expected::Flat(h),
        None => Expected::Nothing,
    };
    let d = inputs::fetch_url(state, &url, unpack, &name, expected)?;
    Ok(Value::String(crate::store::store_path_string(
        &d.store_path,
    )))
}

fn fetchurl(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move { fetch(&co, &state, args[0].clone(), "fetchurl", false, "").await })
}

fn fetch_tarball(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(
        async move { fetch(&co, &state, args[0].clone(), "fetchTarball", true, "source").await },
    )
}

/// A Nix value as a flake-reference attribute (strings, paths, integers,
/// Booleans), as `fetchTree` and `fetchGit` take them.
async fn input_attr(
    co: &GenCo,
    state: &Rc<EvalState>,
    who: &str,
    key: &str,
    v: Value,
) -> EvalResult<Attr> {
    let v = force(co, v).await;
    Ok(match &v {
        Value::Int(i) if *i < 0 => {
            return Err(ErrorKind::other(format!(
                "negative value given for '{who}' argument '{key}': {i}"
            )))
        }
        Value::Int(i) => Attr::Int(*i as u64),
        Value::Bool(b) => Attr::Bool(*b),
        Value::String(_) | Value::Path(_) => Attr::Str(
            coerce_to_string(co, state, v.clone(), Coercion::PATH_PART)
                .await?
                .to_string(),
        ),
        other => {
            return Err(ErrorKind::other(format!(
                "argument '{key}' to '{who}' is {}, which is not supported",
                crate::printer::type_with_article(other)
            )))
        }
    })
}

/// Arguments `fetchGit` accepts besides `url`.
const FETCH_GIT_ARGS: &[&str] = &["name", "ref", "rev", "submodules", "shallow", "allRefs"];

fn fetch_git(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let arg = force(&co, args[0].clone()).await;
        let mut input = flakeref::Attrs::new();
        input.insert("type".into(), Attr::Str("git".into()));
        match &arg {
            Value::Attrs(a) => {
                for (k, v) in a.iter() {
                    let key = k.to_str_lossy().into_owned();
                    if key != "url" && !FETCH_GIT_ARGS.contains(&key.as_str()) {
                        return Err(ErrorKind::other(format!(
                            "unsupported argument '{key}' to 'fetchGit'"
                        )));
                    }
                    let value = input_attr(&co, &state, "fetchGit", &key, v.clone()).await?;
                    input.insert(key, value);
                }
                if !input.contains_key("url") {
                    return Err(ErrorKind::other(
                        "attribute 'url' is missing in call to 'fetchGit'",
                    ));
                }
            }
            _ => {
                let url = input_attr(&co, &state, "fetchGit", "url", arg.clone()).await?;
                input.insert("url".into(), url);
            }
        }
        if let Some(Attr::Str(r)) = input.get("rev") {
            if !(r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit())) {
                return Err(ErrorKind::other(format!(
                    "hash '{r}' has wrong length for hash type 'sha1'"
                )));
            }
        }
        if state.options.pure_eval && !input.contains_key("rev") {
            return Err(ErrorKind::other(
                "in pure evaluation mode, 'fetchGit' requires a locked input",
            ));
        }
        let fetched = inputs::fetch(&state, &input)?;
        Ok(fetched.tree_attrs(true))
    })
}

fn fetch_mercurial(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let arg = force(&co, args[0].clone()).await;
        let url = match &arg {
            Value::Attrs(a) => a.get(b"url").cloned().unwrap_or(Value::Null),
            _ => arg.clone(),
        };
        let url = coerce_to_string(&co, &state, url, Coercion::PATH_PART).await?;
        Err(ErrorKind::Unsupported(format!(
            "builtins.fetchMercurial: Mercurial repositories are not supported by attrfs (url '{url}')"
        )))
    })
}

/// Extensions that make a `file:` URL a tarball for `fetchTree`.
const TARBALL_EXTENSIONS: &[&str] = &[
    ".zip", ".tar", ".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst",
];

/// Whether `fetchTree`/`getFlake` are enabled (`flakes` or `fetch-tree`).
pub(crate) fn require_fetch_tree(state: &EvalState) -> EvalResult<()> {
    let on = state
        .options
        .experimental_features
        .iter()
        .any(|f| f == "flakes" || f == "fetch-tree");
    if on {
        Ok(())
    } else {
        Err(ErrorKind::other(
            "experimental Nix feature 'fetch-tree' is disabled; \
             use '--extra-experimental-features fetch-tree' to override",
        ))
    }
}

fn fetch_tree(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let arg = force(&co, args[0].clone()).await;
        let mut input = flakeref::Attrs::new();
        match &arg {
            Value::Attrs(a) => {
                for (k, v) in a.iter() {
                    let key = k.to_str_lossy().into_owned();
                    let value = input_attr(&co, &state, "fetchTree", &key, v.clone()).await?;
                    input.insert(key, value);
                }
                if !input.contains_key("type") {
                    return Err(ErrorKind::other(
                        "attribute 'type' is missing in call to 'fetchTree'",
                    ));
                }
            }
            Value::String(s) => {
                input = flakeref::parse(&s.to_str_lossy()).map_err(ErrorKind::other)?;
            }
            other => return Err(type_error("set", other)),
        }
        let url = match input.get("url").or(input.get("path")) {
            Some(Attr::Str(u)) => u.clone(),
            _ => String::new(),
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
        require_fetch_tree(&state)?;
        if state.options.pure_eval && !inputs::is_locked(&input) {
            return Err(ErrorKind::other(format!(
                "in pure evaluation mode, 'fetchTree' requires a locked input, at '{}'",
                flakeref::to_string(&input).unwrap_or(url)
            )));
        }
        let fetched = inputs::fetch(&state, &input)?;
        Ok(fetched.tree_attrs(false))
    })
}

fn fetch_closure(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
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
        Err(ErrorKind::Unsupported(format!(
            "builtins.fetchClosure: copying from binary caches is not supported by attrfs (store '{from}')"
        )))
    })
}

fn get_flake(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let flake = force(&co, args[0].clone()).await;
        let flake = expect_string_no_ctx(&flake)?;
        require_fetch_tree(&state)?;
        crate::flake::get_flake(&co, &state, &flake.to_str_lossy()).await
    })
}

fn parse_flake_ref(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
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

fn flake_ref_to_string(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
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
        // Nothing listens on this loopback port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/a.tar.gz");
        let e = err(&format!("builtins.fetchurl \"{url}\""));
        assert!(e.contains(&format!("unable to download '{url}'")), "{e}");
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
        assert!(err("builtins.fetchGit { url = \"/x\"; foo = 1; }")
            .contains("unsupported argument 'foo' to 'fetchGit'"));
        assert!(err("builtins.fetchGit { url = \"/x\"; rev = \"abc\"; }")
            .contains("hash 'abc' has wrong length for hash type 'sha1'"));
        assert!(
            err("builtins.fetchTree { type = \"file\"; url = \"file:///x\"; owner = -1; }")
                .contains("negative value given for 'fetchTree' argument 'owner': -1")
        );
        assert!(err("builtins.fetchTree \"file:./relative-path.tar.gz\"").contains(
            "tarball 'file:./relative-path.tar.gz' must use an absolute path. The 'file' scheme does not support relative paths."
        ));
        assert!(err("builtins.fetchTree { type = \"path\"; path = \"/\"; }")
            .contains("experimental Nix feature 'fetch-tree' is disabled"));
        assert!(err("builtins.getFlake \"github:NixOS/nixpkgs\"")
            .contains("experimental Nix feature 'fetch-tree' is disabled"));
        assert!(err("builtins.fetchMercurial \"https://e.com/r\"")
            .contains("Mercurial repositories are not supported"));
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
