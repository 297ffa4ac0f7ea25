//! Builtins: derivations (`derivationStrict`, and `derivation` written in
//! Nix on top of it as in C++ Nix).
//!
//! `derivationStrict` turns an attribute set into a store derivation the
//! way C++ Nix 2.8 does: every attribute but a few special ones becomes an
//! environment variable (coerced to a string, or to JSON in `__json` with
//! `__structuredAttrs`), the string contexts met on the way become the
//! input derivations and sources, and the output and `.drv` paths follow
//! from the store arithmetic of `attrfs-store`. The `.drv` text and hash
//! modulo are recorded in the evaluation's table of derivations.

use super::gen;
use crate::builtins::json::{json_quote, value_to_json};
use crate::errors::{ErrorKind, EvalResult};
use crate::io::FileType;
use crate::store::{add_path_to_store, add_text_to_store, base_name, store_path_string, Excluded};
use crate::value::{Args, BuiltinDef, ContextElem, NixAttrs, NixContext, NixString, Value};
use crate::vm::{
    call2, coerce_to_string, force, force_bool, force_list, Coercion, EvalState, GenCo, GenFuture,
    KnownDerivation,
};
use attrfs_store::path::IngestionMethod;
use attrfs_store::{Derivation, DerivationError, Hash, HashAlgo, Output, StorePath};
use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    gen("derivationStrict", 1, derivation_strict),
    gen("path", 1, path),
    gen("filterSource", 2, filter_source),
    gen("toFile", 2, to_file),
];

/// Builtins defined in Nix source, compiled at start-up: name and source.
pub(super) const NIX_DEFINED: &[(&str, &str)] = &[("derivation", DERIVATION_NIX)];

/// `derivation`: calls `derivationStrict` and builds the set C++ Nix's
/// `derivation.nix` builds: the attributes given, one set per output (each
/// also the result for its own output name), `all`, `drvAttrs`, `drvPath`,
/// `outPath`, `outputName` and `type = "derivation"`. Lazy in the same
/// places: `outputs` is read before anything is instantiated, the
/// derivation is instantiated when a path is asked for. (Start-up
/// sources see the global scope without `builtins`, hence the `__` names.)
const DERIVATION_NIX: &str = r#"
drvAttrs@{ outputs ? [ "out" ], ... }:
let
  strict = derivationStrict drvAttrs;
  forOutput = outputName: {
    name = outputName;
    value = common // {
      inherit outputName;
      type = "derivation";
      outPath = __getAttr outputName strict;
      drvPath = strict.drvPath;
    };
  };
  byOutput = map forOutput outputs;
  common = drvAttrs // __listToAttrs byOutput // {
    inherit drvAttrs;
    all = map (o: o.value) byOutput;
  };
in (__head byOutput).value
"#;

/// Coercion of environment values: like `toString`, but paths are added to
/// the store.
const ENV_COERCION: Coercion = Coercion {
    more: true,
    copy_to_store: true,
};

/// An error worded like C++ Nix's `EvalError`.
fn err(msg: impl Into<String>) -> ErrorKind {
    ErrorKind::other(msg)
}

/// Forces a string that must not carry a context (C++ Nix's
/// `forceStringNoCtx`).
pub(crate) async fn force_string_no_ctx(co: &GenCo, v: Value) -> EvalResult<NixString> {
    let s = match force(co, v).await {
        Value::String(s) => s,
        other => return Err(crate::vm::type_error("string", &other)),
    };
    if let Some(first) = s.context().and_then(|c| c.iter().next()) {
        return Err(err(format!(
            "the string '{}' is not allowed to refer to a store path (such as '{}')",
            s,
            first.encode()
        )));
    }
    Ok(s)
}

/// Forces a string, adding its context to `ctx`.
async fn force_string_ctx(co: &GenCo, v: Value, ctx: &mut NixContext) -> EvalResult<NixString> {
    match force(co, v).await {
        Value::String(s) => {
            if let Some(c) = s.context() {
                ctx.extend(c.iter().cloned());
            }
            Ok(s)
        }
        other => Err(crate::vm::type_error("string", &other)),
    }
}

/// The bytes of a string as text, for the `.drv` file.
fn utf8(s: &NixString, what: &str) -> EvalResult<String> {
    s.as_str().map(str::to_string).ok_or_else(|| {
        err(format!(
            "{what} is not valid UTF-8, which is not supported in derivations"
        ))
    })
}

fn derivation_strict(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let attrs = match &args[0] {
            Value::Attrs(a) => a.clone(),
            other => return Err(crate::vm::type_error("set", other)),
        };
        instantiate(&co, &state, &attrs).await
    })
}

/// What the special attributes said.
struct Spec {
    output_hash: Option<String>,
    output_hash_algo: String,
    method: Option<IngestionMethod>,
    outputs: BTreeSet<String>,
    content_addressed: bool,
    impure: bool,
}

fn hash_mode(s: &str) -> EvalResult<IngestionMethod> {
    match s {
        "recursive" => Ok(IngestionMethod::Recursive),
        "flat" => Ok(IngestionMethod::Flat),
        _ => Err(err(format!(
            "invalid value '{s}' for 'outputHashMode' attribute"
        ))),
    }
}

fn output_names(names: Vec<String>) -> EvalResult<BTreeSet<String>> {
    let mut set = BTreeSet::new();
    for n in names {
        if set.contains(&n) {
            return Err(err(format!("duplicate derivation output '{n}'")));
        }
        // C++ Nix 2.8 refuses `drv`, later versions `drvPath` (which would
        // clash with the attribute of that name in the result).
        if n == "drv" || n == "drvPath" {
            return Err(err(format!("invalid derivation output name '{n}'")));
        }
        set.insert(n);
    }
    if set.is_empty() {
        return Err(err("derivation cannot have an empty set of outputs"));
    }
    Ok(set)
}

fn experimental(feature: &str) -> ErrorKind {
    err(format!(
        "experimental Nix feature '{feature}' is disabled; \
         use '--extra-experimental-features {feature}' to override"
    ))
}

/// `derivationStrict`: builds, records and describes the derivation.
async fn instantiate(co: &GenCo, state: &Rc<EvalState>, attrs: &Rc<NixAttrs>) -> EvalResult<Value> {
    let name_value = attrs
        .get(b"name")
        .cloned()
        .ok_or_else(|| err("required attribute 'name' missing"))?;
    let name = utf8(
        &force_string_no_ctx(co, name_value).await?,
        "the derivation name",
    )?;
    let structured = match attrs.get(b"__structuredAttrs") {
        Some(v) => force_bool(co, v.clone()).await?,
        None => false,
    };
    let ignore_nulls = match attrs.get(b"__ignoreNulls") {
        Some(v) => force_bool(co, v.clone()).await?,
        None => false,
    };

    let mut drv = Derivation::default();
    let mut ctx = NixContext::new();
    let mut json = structured.then(|| vec![b'{']);
    let mut spec = Spec {
        output_hash: None,
        output_hash_algo: String::new(),
        method: None,
        outputs: ["out".to_string()].into(),
        content_addressed: false,
        impure: false,
    };

    for (key, value) in attrs.iter() {
        let key_bytes = key.as_bytes();
        if key_bytes == b"__ignoreNulls" {
            continue;
        }
        let value = if ignore_nulls {
            let v = force(co, value.clone()).await;
            if matches!(v, Value::Null) {
                continue;
            }
            v
        } else {
            value.clone()
        };
        match key_bytes {
            b"__contentAddressed" => {
                if force_bool(co, value).await? {
                    spec.content_addressed = true;
                    return Err(experimental("ca-derivations"));
                }
            }
            b"__impure" => {
                if force_bool(co, value).await? {
                    spec.impure = true;
                    return Err(experimental("impure-derivations"));
                }
            }
            b"args" => {
                for item in force_list(co, value).await?.iter() {
                    let s = coerce_to_string(co, state, item.clone(), ENV_COERCION).await?;
                    if let Some(c) = s.context() {
                        ctx.extend(c.iter().cloned());
                    }
                    drv.args.push(utf8(&s, "a builder argument")?);
                }
            }
            _ if json.is_some() => {
                if key_bytes == b"__structuredAttrs" {
                    continue;
                }
                let text = value_to_json(co, state, value.clone()).await?;
                if let Some(c) = text.context() {
                    ctx.extend(c.iter().cloned());
                }
                if let Some(buf) = json.as_mut() {
                    if buf.len() > 1 {
                        buf.push(b',');
                    }
                    buf.extend_from_slice(json_quote(&key.to_str_lossy()).as_bytes());
                    buf.push(b':');
                    buf.extend_from_slice(text.as_bytes());
                }
                match key_bytes {
                    b"builder" => {
                        let s = force_string_ctx(co, value, &mut ctx).await?;
                        drv.builder = utf8(&s, "the builder")?;
                    }
                    b"system" => {
                        drv.platform = utf8(&force_string_no_ctx(co, value).await?, "system")?;
                    }
                    b"outputHash" => {
                        let s = force_string_no_ctx(co, value).await?;
                        spec.output_hash = Some(s.to_string());
                    }
                    b"outputHashAlgo" => {
                        let s = force_string_no_ctx(co, value).await?;
                        spec.output_hash_algo = s.to_string();
                    }
                    b"outputHashMode" => {
                        let s = force_string_no_ctx(co, value).await?;
                        spec.method = Some(hash_mode(&s.to_str_lossy())?);
                    }
                    b"outputs" => {
                        let mut names = Vec::new();
                        for item in force_list(co, value).await?.iter() {
                            let s = force_string_no_ctx(co, item.clone()).await?;
                            names.push(utf8(&s, "an output name")?);
                        }
                        spec.outputs = output_names(names)?;
                    }
                    _ => {}
                }
            }
            _ => {
                let s = coerce_to_string(co, state, value, ENV_COERCION).await?;
                if let Some(c) = s.context() {
                    ctx.extend(c.iter().cloned());
                }
                let key_text = utf8(key, "an attribute name")?;
                let text = utf8(&s, &format!("attribute '{key_text}'"))?;
                match key_bytes {
                    b"builder" => drv.builder = text.clone(),
                    b"system" => drv.platform = text.clone(),
                    b"outputHash" => spec.output_hash = Some(text.clone()),
                    b"outputHashAlgo" => spec.output_hash_algo = text.clone(),
                    b"outputHashMode" => spec.method = Some(hash_mode(&text)?),
                    b"outputs" => {
                        spec.outputs = output_names(
                            text.split([' ', '\t', '\n', '\r'])
                                .filter(|t| !t.is_empty())
                                .map(str::to_string)
                                .collect(),
                        )?
                    }
                    _ => {}
                }
                drv.env.entry(key_text).or_insert(text);
            }
        }
    }

    if let Some(mut buf) = json {
        buf.push(b'}');
        let text = String::from_utf8(buf)
            .map_err(|_| err("the structured attributes are not valid UTF-8"))?;
        drv.env.entry("__json".to_string()).or_insert(text);
    }

    add_inputs(state, &ctx, &mut drv)?;

    if drv.builder.is_empty() {
        return Err(err("required attribute 'builder' missing"));
    }
    if drv.platform.is_empty() {
        return Err(err("required attribute 'system' missing"));
    }
    if name.ends_with(".drv") {
        return Err(err("derivation names are not allowed to end in '.drv'"));
    }

    if let Some(h) = &spec.output_hash {
        if spec.outputs.len() != 1 || !spec.outputs.contains("out") {
            return Err(err(
                "multiple outputs are not supported in fixed-output derivations",
            ));
        }
        let algo = HashAlgo::from_name(&spec.output_hash_algo);
        let hash = Hash::parse_allow_empty(h, algo).map_err(|e| err(e.to_string()))?;
        if h.is_empty() {
            eprintln!("warning: found empty hash, assuming '{}'", hash.to_sri());
        }
        let method = spec.method.unwrap_or(IngestionMethod::Flat);
        drv.outputs
            .insert("out".to_string(), Output::fixed(method, &hash));
    } else if spec.content_addressed || spec.impure {
        unreachable!("refused while reading the attributes");
    } else {
        for o in &spec.outputs {
            drv.outputs.insert(o.clone(), Output::input_addressed());
        }
    }

    let done = drv
        .instantiate(&name, |p| state.known_derivation(p).map(|k| k.hash_modulo))
        .map_err(|e| match e {
            DerivationError::UnknownInputDerivation(p) => err(format!("path '{p}' is not valid")),
            other => err(other.to_string()),
        })?;
    let drv_path = done.drv_path.to_string();
    let outputs: Vec<(String, String)> = drv
        .outputs
        .iter()
        .map(|(n, o)| (n.clone(), o.path.clone()))
        .collect();
    state.store.add_outputs(&drv_path, &outputs);
    state.register_derivation(
        drv_path.clone(),
        KnownDerivation {
            aterm: done.aterm,
            hash_modulo: done.hash_modulo,
            outputs: outputs.iter().map(|(n, _)| n.clone()).collect(),
        },
    );

    let mut entries = Vec::with_capacity(outputs.len() + 1);
    entries.push((
        NixString::interned(b"drvPath"),
        Value::String(NixString::new(
            drv_path.as_bytes(),
            Some([ContextElem::Derivation(drv_path.clone())].into()),
        )),
    ));
    for (output, path) in outputs {
        let context = [ContextElem::Output {
            output: output.clone(),
            drv: drv_path.clone(),
        }]
        .into();
        entries.push((
            NixString::interned(output.as_bytes()),
            Value::String(NixString::new(path.into_bytes(), Some(context))),
        ));
    }
    Ok(Value::attrs(NixAttrs::from_unsorted_first_wins(entries)))
}

/// Fills the input derivations and sources from the string contexts met.
fn add_inputs(state: &EvalState, ctx: &NixContext, drv: &mut Derivation) -> EvalResult<()> {
    for elem in ctx {
        match elem {
            ContextElem::Plain(p) => {
                check_store_path(p)?;
                drv.input_srcs.insert(p.clone());
            }
            ContextElem::Output { output, drv: d } => {
                check_store_path(d)?;
                drv.input_drvs
                    .entry(d.clone())
                    .or_default()
                    .insert(output.clone());
            }
            ContextElem::Derivation(d) => {
                // The whole closure of the `.drv`, every derivation in it
                // with all its outputs (C++ Nix's `=` context).
                for p in state.store_closure(d)? {
                    if p.ends_with(".drv") {
                        let outputs = state
                            .known_derivation(&p)
                            .map(|k| k.outputs.clone())
                            .unwrap_or_default();
                        drv.input_drvs.entry(p.clone()).or_default().extend(outputs);
                    }
                    drv.input_srcs.insert(p);
                }
            }
        }
    }
    Ok(())
}

fn check_store_path(p: &str) -> EvalResult<()> {
    StorePath::from_absolute_path(p)
        .map(|_| ())
        .map_err(|_| err(format!("path '{p}' is not in the Nix store")))
}

/// `builtins.toFile name contents`: a text file in the store, referring to
/// the plain store paths in the context of `contents`.
fn to_file(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let name = force_string_no_ctx(&co, args[0].clone()).await?.to_string();
        let contents = match &args[1] {
            Value::String(s) => s.clone(),
            other => return Err(crate::vm::type_error("string", other)),
        };
        let mut references = Vec::new();
        for elem in contents.context().into_iter().flatten() {
            match elem {
                ContextElem::Plain(p) => references.push(p.clone()),
                other => {
                    return Err(err(format!(
                        "in 'toFile': the file named '{name}' must not contain a reference \
                         to a derivation but contains ({})",
                        other.encode()
                    )))
                }
            }
        }
        let path = add_text_to_store(&state, &name, contents.as_bytes(), references)?;
        Ok(Value::String(store_path_string(&path)))
    })
}

/// C++ Nix's `coerceToPath`: a string (without copying paths to the store)
/// that must be absolute.
async fn coerce_to_path(co: &GenCo, state: &Rc<EvalState>, v: Value) -> EvalResult<PathBuf> {
    let s = coerce_to_string(co, state, v, Coercion::PATH_PART).await?;
    let text = s.to_string();
    if !text.starts_with('/') {
        return Err(err(format!(
            "string '{text}' doesn't represent an absolute path"
        )));
    }
    Ok(PathBuf::from(text))
}

/// Calls a `builtins.path`/`filterSource` filter on every entry below
/// `dir` (depth first, entries in name order, as C++ Nix does while
/// archiving) and collects the entries it refuses.
fn run_filter<'a>(
    co: &'a GenCo,
    state: &'a Rc<EvalState>,
    filter: &'a Value,
    dir: PathBuf,
    excluded: &'a mut rustc_hash::FxHashSet<PathBuf>,
) -> Pin<Box<dyn Future<Output = EvalResult<()>> + 'a>> {
    Box::pin(async move {
        let mut entries = state.io.read_dir(&dir).map_err(|e| {
            ErrorKind::Io(format!(
                "opening directory '{}': {}",
                dir.display(),
                crate::vm::io_msg(&e)
            ))
        })?;
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (name, kind) in entries {
            let child = dir.join(&name);
            let keep = call2(
                co,
                filter.clone(),
                Value::string(child.to_string_lossy().into_owned()),
                Value::string(kind.nix_name()),
            )
            .await;
            let keep = match keep {
                Value::Bool(b) => b,
                other => return Err(crate::vm::type_error("Boolean", &other)),
            };
            if !keep {
                excluded.insert(child);
            } else if kind == FileType::Directory {
                run_filter(co, state, filter, child, excluded).await?;
            }
        }
        Ok(())
    })
}

/// Adds a path to the store as `builtins.path` does (C++ Nix's `addPath`).
async fn add_path(
    co: &GenCo,
    state: &Rc<EvalState>,
    path: &Path,
    name: &str,
    filter: Option<Value>,
    recursive: bool,
    expected: Option<Hash>,
) -> EvalResult<Value> {
    // The root is archived as what it points to (as later C++ Nix does).
    let resolved = resolve_symlinks(state, path);
    let path = resolved.as_path();
    let excluded: Option<Excluded> = match filter {
        Some(f) => {
            let mut set = rustc_hash::FxHashSet::default();
            if state.io.file_type(path).ok() == Some(FileType::Directory) {
                run_filter(co, state, &f, path.to_path_buf(), &mut set).await?;
            }
            Some(Rc::new(set))
        }
        None => None,
    };
    let added = add_path_to_store(state, path, Some(name), recursive, excluded)?;
    if let Some(h) = expected {
        let want = crate::store::expected_source_path(recursive, &h, name)?;
        if added.as_bytes() != want.as_bytes() {
            return Err(err(format!(
                "store path mismatch in (possibly filtered) path added from '{}'",
                path.display()
            )));
        }
    }
    Ok(Value::String(added))
}

/// Follows symlinks at `path` itself (at most 40, like the kernel).
fn resolve_symlinks(state: &EvalState, path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        if state.io.file_type(&p).ok() != Some(FileType::Symlink) {
            break;
        }
        let Ok(target) = state.io.read_link(&p) else {
            break;
        };
        let joined = match p.parent() {
            Some(dir) => dir.join(target),
            None => target,
        };
        p = PathBuf::from(crate::path::canon_path(&joined.to_string_lossy()));
    }
    p
}

/// `builtins.path { path; name ? ...; filter ? ...; recursive ? true; sha256 ? ...; }`.
fn path(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let attrs = match &args[0] {
            Value::Attrs(a) => a.clone(),
            other => return Err(crate::vm::type_error("set", other)),
        };
        let mut path = None;
        let mut name = None;
        let mut filter = None;
        let mut recursive = true;
        let mut expected = None;
        for (k, v) in attrs.iter() {
            match k.as_bytes() {
                b"path" => path = Some(coerce_to_path(&co, &state, v.clone()).await?),
                b"name" => name = Some(force_string_no_ctx(&co, v.clone()).await?.to_string()),
                b"filter" => filter = Some(force(&co, v.clone()).await),
                b"recursive" => recursive = force_bool(&co, v.clone()).await?,
                b"sha256" => {
                    let s = force_string_no_ctx(&co, v.clone()).await?.to_string();
                    let h = Hash::parse_allow_empty(&s, Some(HashAlgo::Sha256))
                        .map_err(|e| err(e.to_string()))?;
                    expected = Some(h);
                }
                _ => return Err(err(format!("unsupported argument '{k}' to 'addPath'"))),
            }
        }
        let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
            return Err(err("'path' required"));
        };
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => base_name(&path.to_string_lossy()).to_string(),
        };
        add_path(&co, &state, &path, &name, filter, recursive, expected).await
    })
}

/// `builtins.filterSource filter path`.
fn filter_source(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let path = coerce_to_path(&co, &state, args[1].clone()).await?;
        let filter = force(&co, args[0].clone()).await;
        if !filter.is_function() {
            return Err(err(format!(
                "first argument in call to 'filterSource' is not a function but {}",
                crate::printer::type_with_article(&filter)
            )));
        }
        let name = base_name(&path.to_string_lossy()).to_string();
        add_path(&co, &state, &path, &name, Some(filter), true, None).await
    })
}

#[cfg(test)]
mod tests {
    use crate::eval::eval_strict_to_string as eval;

    /// Derivations covering environment coercion, `__ignoreNulls`,
    /// structured attributes, `outputs` as a string, fixed outputs (SRI,
    /// base16, md5, recursive), input derivations from `!out!` and `=`
    /// contexts, `toFile` references, `args` and placeholders; the
    /// expected paths are what C++ Nix 2.8 prints for this expression.
    #[test]
    fn paths_match_cpp_nix() {
        let expr = r#"let
  ds = a: derivationStrict ({ name = "t"; system = "x86_64-linux"; builder = "/bin/sh"; } // a);
  dep = ds { name = "dep"; outputs = [ "out" "lib" ]; };
  fo = ds { name = "fo"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; outputHashMode = "recursive"; };
  tf = builtins.toFile "f" "x${builtins.toFile "g" "y"}";
in [
  (ds { x = 1; y = true; z = false; n = null; l = [ 1 2 [ 3 ] [] null ]; f = 0.1; s = "a\"b\\c\nd\te"; })
  (ds { __ignoreNulls = true; n = null; m = 1; })
  (ds { __structuredAttrs = true; x = { a = 1; b = [ true null "s" ]; c = 1.5; }; outputs = [ "out" "doc" ]; dep = dep.lib; })
  (ds { outputs = "out  dev\tbin"; d = dep.out; })
  (ds { outputHash = "sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA="; outputHashMode = "flat"; })
  (ds { outputHash = "d41d8cd98f00b204e9800998ecf8427e"; outputHashAlgo = "md5"; })
  (ds { x = fo.out; y = dep.lib; z = dep.drvPath; })
  (ds { x = "${placeholder "out"}/bin"; args = [ "a" 1 true null ]; t = tf; })
  (ds { __contentAddressed = false; __impure = false; })
]
"#;
        let expected = r#"[ { drvPath = "/nix/store/2dadgc5gvd1adl2hwi8j1vdnkv8y65y1-t.drv"; out = "/nix/store/a3f3iyyyh9v87wms7r6bgrlma950bq8a-t"; } { drvPath = "/nix/store/6j1xpqp4p5c392b7jgxzr44dd4xvd2x5-t.drv"; out = "/nix/store/fjsy9yn81dg15vir55xyll4xwxy817qj-t"; } { doc = "/nix/store/akq179f1nyb2j4sjj3q2kbn00vxgp3as-t-doc"; drvPath = "/nix/store/w0s3sy552xzqicr8nx49ydvb5gqjkhk9-t.drv"; out = "/nix/store/p2biax0vzbl80v1zr7brgl8k2975wkhl-t"; } { bin = "/nix/store/mcb4gd7h6ibdqzny4q5d2ns7l45rwrhn-t-bin"; dev = "/nix/store/glakrl1rmhy4yb4119xwxd7iljkqmcan-t-dev"; drvPath = "/nix/store/pdznqi5a4dc50gfxjzh81w2jgsyhvjrd-t.drv"; out = "/nix/store/kknjc19k395z1g9fgy21ma7pw92510vd-t"; } { drvPath = "/nix/store/2r08pbndjgnayqhrcf57hbaky5752w13-t.drv"; out = "/nix/store/1g967a8szqfj3k4mjk5d5ckhb1w35bsl-t"; } { drvPath = "/nix/store/5wg8knk4qmkiy2cjnc5nbj2d0vvalv0v-t.drv"; out = "/nix/store/603f0gj91v6h17fi9z4chvh5vmdpfvaj-t"; } { drvPath = "/nix/store/q4064dw3nlc6g65v9jzcx4yijxd427jp-t.drv"; out = "/nix/store/hpzmz6g4fm53926hhly27dmss1m6jmk3-t"; } { drvPath = "/nix/store/0gxyfvs9jwm0n9vizmis7ld10m59m8m9-t.drv"; out = "/nix/store/0vbz66d66pfvcrvqrm25vxdkr2vzx5f1-t"; } { drvPath = "/nix/store/7qvrnr4kah64ilyxh4b734malr3ls6mr-t.drv"; out = "/nix/store/dlgx39nxvfzm7nvzmjkk4gdbn22n5nmr-t"; } ]"#;
        assert_eq!(eval(expr).unwrap(), expected);
    }

    #[test]
    fn errors_are_worded_like_cpp_nix() {
        let cases = [
            (r#"{ name = "x"; }"#, "required attribute 'builder' missing"),
            (
                r#"{ name = "x"; builder = "b"; }"#,
                "required attribute 'system' missing",
            ),
            (
                r#"{ name = "x.drv"; builder = "b"; system = "s"; }"#,
                "derivation names are not allowed to end in '.drv'",
            ),
            (
                r#"{ name = "x"; builder = "b"; system = "s"; outputs = [ "a" "a" ]; }"#,
                "duplicate derivation output 'a'",
            ),
            (
                r#"{ name = "x"; builder = "b"; system = "s"; outputs = [ ]; }"#,
                "derivation cannot have an empty set of outputs",
            ),
            (
                r#"{ name = "x"; builder = "b"; system = "s"; outputs = [ "a" "b" ]; outputHash = "x"; }"#,
                "multiple outputs are not supported in fixed-output derivations",
            ),
            (
                r#"{ name = "x"; builder = "b"; system = "s"; outputHash = "x"; }"#,
                "hash 'x' does not include a type, nor is the type otherwise known from context",
            ),
            (
                r#"{ name = "x"; builder = "b"; system = "s"; outputHashMode = "text"; }"#,
                "invalid value 'text' for 'outputHashMode' attribute",
            ),
            (
                r#"{ name = "x"; builder = "b"; system = "s"; __contentAddressed = true; }"#,
                "experimental Nix feature 'ca-derivations' is disabled",
            ),
            (
                r#"{ name = "x y"; builder = "b"; system = "s"; }"#,
                "contains illegal character ' '",
            ),
            (
                r#"{ name = "x"; builder = "b"; system = "s"; __structuredAttrs = true; outputs = "out"; }"#,
                "expected a list",
            ),
        ];
        for (attrs, msg) in cases {
            let e = eval(&format!("derivationStrict {attrs}")).unwrap_err();
            assert!(e.contains(msg), "{attrs}: {e}");
        }
    }
}
