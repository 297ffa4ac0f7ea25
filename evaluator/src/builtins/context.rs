//! Builtins: string contexts (`getContext`, `appendContext`, `hasContext`,
//! `unsafeDiscardStringContext`, `unsafeDiscardOutputDependency`,
//! `addDrvOutputDependencies`), `storePath` and `placeholder`.
//!
//! A context element is one of `Plain(path)` (C++ Nix's `/nix/store/…`),
//! `Output { output, drv }` (`!out!/nix/store/….drv`) and `Derivation(drv)`
//! (`=/nix/store/….drv`); see `value/string.rs`.

use super::{gen, sync};
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{Args, BuiltinDef, ContextElem, NixAttrs, NixContext, NixString, Value};
use crate::vm::{
    coerce_to_string, force_attrs, force_bool, force_list, Coercion, EvalState, GenCo, GenFuture,
};
use attrfs_store::StorePath;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    sync("getContext", 1, get_context),
    gen("appendContext", 2, append_context),
    sync("hasContext", 1, has_context),
    gen("unsafeDiscardStringContext", 1, discard_context),
    gen(
        "unsafeDiscardOutputDependency",
        1,
        discard_output_dependency,
    ),
    gen("addDrvOutputDependencies", 1, add_drv_output_dependencies),
    gen("storePath", 1, store_path),
    sync("placeholder", 1, placeholder),
];

fn string_arg(v: &Value) -> EvalResult<NixString> {
    super::expect_string(v)
}

fn get_context(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let s = string_arg(&args[0])?;
    #[derive(Default)]
    struct Info {
        path: bool,
        all_outputs: bool,
        outputs: Vec<Value>,
    }
    let mut infos: BTreeMap<&str, Info> = BTreeMap::new();
    for elem in s.context().into_iter().flatten() {
        match elem {
            ContextElem::Plain(p) => infos.entry(p).or_default().path = true,
            ContextElem::Derivation(d) => infos.entry(d).or_default().all_outputs = true,
            ContextElem::Output { output, drv } => infos
                .entry(drv)
                .or_default()
                .outputs
                .push(Value::string(output.as_str())),
        }
    }
    let entries = infos
        .into_iter()
        .map(|(path, info)| {
            let mut attrs = Vec::new();
            if info.all_outputs {
                attrs.push((NixString::interned(b"allOutputs"), Value::Bool(true)));
            }
            if !info.outputs.is_empty() {
                attrs.push((NixString::interned(b"outputs"), Value::list(info.outputs)));
            }
            if info.path {
                attrs.push((NixString::interned(b"path"), Value::Bool(true)));
            }
            (
                NixString::from(path),
                Value::attrs(NixAttrs::from_sorted(attrs)),
            )
        })
        .collect();
    Ok(Value::attrs(NixAttrs::from_sorted(entries)))
}

fn is_store_path(s: &str) -> bool {
    StorePath::from_absolute_path(s).is_ok()
}

fn append_context(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let s = string_arg(&args[0])?;
        let additions = force_attrs(&co, args[1].clone()).await?;
        let mut ctx: NixContext = s.context().cloned().unwrap_or_default();
        for (name, info) in additions.iter() {
            let name = name.to_string();
            if !is_store_path(&name) {
                return Err(ErrorKind::other(format!(
                    "context key '{name}' is not a store path"
                )));
            }
            let info = force_attrs(&co, info.clone()).await?;
            if let Some(v) = info.get(b"path") {
                if force_bool(&co, v.clone()).await? {
                    ctx.insert(ContextElem::Plain(name.clone()));
                }
            }
            if let Some(v) = info.get(b"allOutputs") {
                if force_bool(&co, v.clone()).await? {
                    if !name.ends_with(".drv") {
                        return Err(ErrorKind::other(format!(
                            "tried to add all-outputs context of {name}, which is not a derivation, to a string"
                        )));
                    }
                    ctx.insert(ContextElem::Derivation(name.clone()));
                }
            }
            if let Some(v) = info.get(b"outputs") {
                let outputs = force_list(&co, v.clone()).await?;
                if !outputs.is_empty() && !name.ends_with(".drv") {
                    return Err(ErrorKind::other(format!(
                        "tried to add derivation output context of {name}, which is not a derivation, to a string"
                    )));
                }
                for o in outputs.iter() {
                    let o = super::derivations::force_string_no_ctx(&co, o.clone()).await?;
                    ctx.insert(ContextElem::Output {
                        output: o.to_string(),
                        drv: name.clone(),
                    });
                }
            }
        }
        Ok(Value::String(s.with_context(Some(ctx))))
    })
}

fn has_context(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    Ok(Value::Bool(string_arg(&args[0])?.has_context()))
}

/// `coerceToString` as the context builtins use it: paths are added to
/// the store.
async fn coerce(co: &GenCo, state: &Rc<EvalState>, v: Value) -> EvalResult<NixString> {
    coerce_to_string(co, state, v, Coercion::INTERPOLATION).await
}

fn discard_context(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let s = coerce(&co, &state, args[0].clone()).await?;
        Ok(Value::String(s.without_context()))
    })
}

fn discard_output_dependency(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let s = coerce(&co, &state, args[0].clone()).await?;
        let ctx = s.context().map(|c| {
            c.iter()
                .map(|e| match e {
                    ContextElem::Derivation(d) => ContextElem::Plain(d.clone()),
                    other => other.clone(),
                })
                .collect()
        });
        Ok(Value::String(s.with_context(ctx)))
    })
}

fn add_drv_output_dependencies(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let s = coerce(&co, &state, args[0].clone()).await?;
        let elems: Vec<&ContextElem> = s.context().into_iter().flatten().collect();
        let [elem] = elems[..] else {
            return Err(ErrorKind::other(format!(
                "context of string '{s}' must have exactly one element, but has {}",
                elems.len()
            )));
        };
        let drv = match elem {
            ContextElem::Plain(p) if p.ends_with(".drv") => p.clone(),
            ContextElem::Plain(p) => {
                return Err(ErrorKind::other(format!("path '{p}' is not a derivation")))
            }
            ContextElem::Output { output, .. } => {
                return Err(ErrorKind::other(format!(
                    "`addDrvOutputDependencies` can only act on derivations, not on a derivation output such as '{output}'"
                )))
            }
            ContextElem::Derivation(d) => d.clone(),
        };
        Ok(Value::String(
            s.with_context(Some([ContextElem::Derivation(drv)].into())),
        ))
    })
}

fn store_path(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let s = coerce_to_string(&co, &state, args[0].clone(), Coercion::PATH_PART).await?;
        let path = s.to_string();
        if !path.starts_with('/') {
            return Err(ErrorKind::other(format!(
                "string '{path}' doesn't represent an absolute path"
            )));
        }
        let path = crate::path::canon_path(&path);
        let store_path = crate::store::to_store_path(&path)?;
        let mut ctx = s.context().cloned().unwrap_or_default();
        ctx.insert(ContextElem::Plain(store_path));
        Ok(Value::String(NixString::new(path.as_bytes(), Some(ctx))))
    })
}

fn placeholder(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let s = string_arg(&args[0])?;
    if let Some(first) = s.context().and_then(|c| c.iter().next()) {
        return Err(ErrorKind::other(format!(
            "the string '{s}' is not allowed to refer to a store path (such as '{}')",
            first.encode()
        )));
    }
    Ok(Value::string(attrfs_store::placeholder(&s.to_str_lossy())))
}

#[cfg(test)]
mod tests {
    use crate::eval::eval_strict_to_string as eval;

    /// Contexts through interpolation, `getContext`, `appendContext`,
    /// the discarding builtins, `storePath`, `placeholder`, and a
    /// derivation depending on `!out!`, `=` and plain contexts; the
    /// expected value is what C++ Nix 2.8 prints for this expression.
    #[test]
    fn contexts_match_cpp_nix() {
        let expr = r#"let
  d = derivationStrict { name = "x"; system = "x86_64-linux"; builder = "/bin/sh"; outputs = [ "out" "dev" ]; };
  f = builtins.toFile "f" "hello";
  s = "${d.out} ${d.dev} ${d.drvPath} ${f}";
  key = builtins.unsafeDiscardStringContext d.drvPath;
in {
  ctx = builtins.getContext s;
  has = [ (builtins.hasContext s) (builtins.hasContext "x") (builtins.hasContext (builtins.unsafeDiscardStringContext s)) ];
  dod = builtins.getContext (builtins.unsafeDiscardOutputDependency s);
  app = builtins.getContext (builtins.appendContext "x" { ${key} = { outputs = [ "out" "foo" ]; allOutputs = true; path = true; }; });
  appS = builtins.appendContext "x" { ${key} = { path = true; }; };
  ph = builtins.placeholder "out";
  phDev = builtins.placeholder "dev";
  sp = builtins.getContext (builtins.storePath "${builtins.unsafeDiscardStringContext f}");
  dep = derivationStrict { name = "y"; system = "x86_64-linux"; builder = "/bin/sh"; a = s; b = builtins.unsafeDiscardOutputDependency d.drvPath; };
}
"#;
        let expected = r#"{ app = { "/nix/store/gk9jafzyszc4y6jy0ib8cllh4g3d7jd1-x.drv" = { allOutputs = true; outputs = [ "foo" "out" ]; path = true; }; }; appS = "x"; ctx = { "/nix/store/gk9jafzyszc4y6jy0ib8cllh4g3d7jd1-x.drv" = { allOutputs = true; outputs = [ "dev" "out" ]; }; "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; dep = { drvPath = "/nix/store/hkks9282rmnlhdxzr9y3q2vjbd176jzg-y.drv"; out = "/nix/store/js3n0qmxd7h3bh2rnjbdhpdkpdacvzbp-y"; }; dod = { "/nix/store/gk9jafzyszc4y6jy0ib8cllh4g3d7jd1-x.drv" = { outputs = [ "dev" "out" ]; path = true; }; "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; has = [ true false false ]; ph = "/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"; phDev = "/02qcpld1y6xhs5gz9bchpxaw0xdhmsp5dv88lh25r2ss44kh8dxz"; sp = { "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; }"#;
        assert_eq!(eval(expr).unwrap(), expected);
    }

    #[test]
    fn add_drv_output_dependencies() {
        let d = r#"(derivationStrict { name = "x"; system = "s"; builder = "b"; })"#;
        assert_eq!(
            eval(&format!(
                "builtins.attrNames (builtins.getContext (builtins.addDrvOutputDependencies \
                 (builtins.unsafeDiscardOutputDependency {d}.drvPath))).${{builtins.unsafeDiscardStringContext {d}.drvPath}}"
            ))
            .unwrap(),
            "[ \"allOutputs\" ]"
        );
        let e = eval(&format!("builtins.addDrvOutputDependencies {d}.out")).unwrap_err();
        assert!(e.contains("can only act on derivations"), "{e}");
        let e = eval(r#"builtins.addDrvOutputDependencies "x""#).unwrap_err();
        assert!(
            e.contains("must have exactly one element, but has 0"),
            "{e}"
        );
    }

    #[test]
    fn context_errors() {
        let e = eval(r#"builtins.appendContext "x" { "/tmp/x" = { path = true; }; }"#).unwrap_err();
        assert!(e.contains("is not a store path"), "{e}");
        let e = eval(r#"builtins.storePath "/tmp/x""#).unwrap_err();
        assert!(e.contains("path '/tmp/x' is not in the Nix store"), "{e}");
    }
}
