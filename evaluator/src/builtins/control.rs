//! Builtins: control flow, errors, imports and the environment.

use super::{expect_string, gen, lazy, sync};
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{Args, BuiltinDef, NixAttrs, NixString, Value};
use crate::vm::{
    coerce_to_string, deep_force_polling, force, try_force, Coercion, EvalState, GenCo, GenFuture,
};
use std::path::PathBuf;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    gen("throw", 1, throw),
    gen("abort", 1, abort),
    sync("import", 1, import),
    gen("scopedImport", 2, scoped_import),
    lazy(gen("tryEval", 1, try_eval), 0b1),
    lazy(gen("seq", 2, seq), 0b10),
    lazy(gen("deepSeq", 2, deep_seq), 0b11),
    lazy(gen("trace", 2, trace), 0b10),
    lazy(gen("traceVerbose", 2, trace_verbose), 0b11),
    lazy(gen("warn", 2, warn), 0b10),
    lazy(sync("addErrorContext", 2, add_error_context), 0b11),
    lazy(sync("break", 1, break_), 0b1),
    gen("findFile", 2, find_file),
    sync("getEnv", 1, get_env),
];

fn throw(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let msg = coerce_to_string(&co, &state, args[0].clone(), Coercion::PATH_PART).await?;
        Err(ErrorKind::Throw(msg.to_string()))
    })
}

fn abort(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let msg = coerce_to_string(&co, &state, args[0].clone(), Coercion::PATH_PART).await?;
        Err(ErrorKind::Abort(msg.to_string()))
    })
}

/// The path an `import`-like builtin refers to.
pub(crate) fn path_arg(v: &Value) -> EvalResult<PathBuf> {
    match v {
        Value::Path(p) => Ok((**p).clone()),
        Value::String(s) => {
            let p = s.to_string();
            if !p.starts_with('/') {
                return Err(ErrorKind::other(format!(
                    "string '{p}' doesn't represent an absolute path"
                )));
            }
            Ok(PathBuf::from(p))
        }
        Value::Attrs(a) => match a.get(b"outPath").map(Value::shallow) {
            Some(Value::String(s)) => Ok(PathBuf::from(s.to_string())),
            _ => Err(crate::vm::type_error("path", v)),
        },
        other => Err(crate::vm::type_error("path", other)),
    }
}

fn import(state: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let path = path_arg(&args[0])?;
    state.loader().import(&path)
}

fn scoped_import(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let scope = super::expect_attrs(&args[0])?;
        let path = path_arg(&args[1])?;
        let f = state.loader().scoped_import(&path, &scope)?;
        Ok(crate::vm::call(&co, f, Value::Attrs(scope)).await)
    })
}

fn try_eval(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let (success, value) = match try_force(&co, args[0].clone()).await {
            Ok(v) => (true, v),
            Err(_) => (false, Value::Bool(false)),
        };
        Ok(Value::attrs(NixAttrs::from_sorted(vec![
            (NixString::interned(b"success"), Value::Bool(success)),
            (NixString::interned(b"value"), value),
        ])))
    })
}

fn seq(_: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move { Ok(args[1].clone()) })
}

fn deep_seq(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        deep_force_polling(&co, args[0].clone(), || state.check_interrupt()).await?;
        Ok(args[1].clone())
    })
}

fn print_trace(v: &Value) {
    let text = match v {
        Value::String(s) => s.to_string(),
        other => crate::printer::print_value(other),
    };
    eprintln!("trace: {text}");
}

fn trace(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        deep_force_polling(&co, args[0].clone(), || state.check_interrupt()).await?;
        print_trace(&args[0]);
        Ok(args[1].clone())
    })
}

fn trace_verbose(_: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    // Only traces with `--trace-verbose`, which we do not offer.
    Box::pin(async move { Ok(args[1].clone()) })
}

fn warn(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let msg = force(&co, args[0].clone()).await;
        match &msg {
            Value::String(s) => eprintln!("evaluation warning: {s}"),
            other => {
                return Err(ErrorKind::other(format!(
                    "expected a string but found {}: {}",
                    crate::printer::type_with_article(other),
                    crate::printer::print_shallow(other)
                )))
            }
        }
        Ok(args[1].clone())
    })
}

fn add_error_context(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    Ok(args[1].clone())
}

fn break_(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    Ok(args[0].clone())
}

fn get_env(state: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let name = expect_string(&args[0])?;
    if state.options.pure_eval {
        return Ok(Value::string(""));
    }
    let name = name.to_string();
    let value = std::env::var(&name).ok();
    state.record_input(crate::record::InputKind::Env, &name, || {
        crate::record::env_fingerprint(value.as_deref())
    });
    Ok(Value::string(value.unwrap_or_default()))
}

fn find_file(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let Value::List(entries) = &args[0] else {
            return Err(crate::vm::type_error("list", &args[0]));
        };
        let wanted = coerce_to_string(&co, &state, args[1].clone(), Coercion::PATH_PART).await?;
        let wanted = wanted.to_string();
        // The search path's entries come from `-I` (part of what is
        // evaluated) and from `NIX_PATH`, an input like `getEnv`'s; what
        // each lookup probes is recorded by the I/O door.
        state.record_input(crate::record::InputKind::Env, "NIX_PATH", || {
            crate::record::env_fingerprint(std::env::var("NIX_PATH").ok().as_deref())
        });
        for e in entries.iter() {
            let e = match force(&co, e.clone()).await {
                Value::Attrs(a) => a,
                other => return Err(crate::vm::type_error("set", &other)),
            };
            let prefix = match e.get(b"prefix") {
                Some(p) => force(&co, p.clone()).await,
                None => Value::string(""),
            };
            let prefix = expect_string(&prefix)?.to_string();
            let path = match e.get(b"path") {
                Some(p) => force(&co, p.clone()).await,
                None => {
                    return Err(ErrorKind::other(
                        "attribute 'path' missing in a search path entry",
                    ))
                }
            };
            let path = coerce_to_string(&co, &state, path, Coercion::PATH_PART)
                .await?
                .to_string();
            let rest = if prefix.is_empty() {
                Some(wanted.as_str())
            } else if wanted == prefix {
                Some("")
            } else {
                wanted
                    .strip_prefix(&prefix)
                    .and_then(|r| r.strip_prefix('/'))
            };
            let Some(rest) = rest else { continue };
            let path = if path.contains("://") {
                // A URL entry (`nixpkgs=https://.../x.tar.gz`): the unpacked
                // tarball; one that cannot be fetched is skipped with a
                // warning, as C++ Nix does.
                match crate::inputs::fetch_url(
                    &state,
                    &path,
                    true,
                    "source",
                    crate::inputs::Expected::Nothing,
                ) {
                    Ok(d) => d.store_path,
                    Err(ErrorKind::Interrupted) => return Err(ErrorKind::Interrupted),
                    Err(e) => {
                        eprintln!(
                            "warning: Nix search path entry '{path}' cannot be downloaded, ignoring ({e})"
                        );
                        continue;
                    }
                }
            } else {
                path
            };
            let candidate = if rest.is_empty() {
                PathBuf::from(&path)
            } else {
                PathBuf::from(&path).join(rest)
            };
            let candidate = if candidate.is_absolute() {
                candidate
            } else {
                state.options.cwd.join(candidate)
            };
            if state.io.path_exists(&candidate) {
                return Ok(Value::path(crate::path::canon_path(
                    &candidate.to_string_lossy(),
                )));
            }
        }
        // Files C++ Nix builds in (`<nix/fetchurl.nix>`), which `import`
        // knows (see `store::corepkg_source`).
        if let Some(rest) = wanted.strip_prefix("nix/") {
            return Ok(Value::path(format!(
                "{}{rest}",
                crate::store::COREPKGS_PREFIX
            )));
        }
        // A catchable error, as in C++ Nix: nixpkgs probes optional entries
        // such as <nixpkgs-overlays> under tryEval.
        Err(ErrorKind::Throw(if state.options.pure_eval {
            format!(
                "cannot look up '<{wanted}>' in pure evaluation mode (use '--impure' to override)"
            )
        } else {
            format!(
                "file '{wanted}' was not found in the Nix search path (add it using $NIX_PATH or -I)"
            )
        }))
    })
}
