//! Builtins: strings (`toString`, `substring`, `replaceStrings`,
//! `concatStringsSep`, `baseNameOf`, `dirOf`, ...).
//!
//! Strings are bytes with a context; every operation here keeps the
//! context of what it copies. Each builtin has a `Sync` fast path for
//! arguments that need no VM (strings, paths, numbers) and defers to a
//! generator variant when a value must be forced or coerced through
//! `__toString`/`outPath`.

use super::lists::defer;
use super::{expect_int, expect_list, gen, native, sync};
use crate::errors::{ErrorKind, EvalResult};
use crate::path::canon_path;
use crate::value::{Args, BuiltinDef, NixString, StringBuilder, Value};
use crate::vm::{
    coerce_fast, coerce_to_string, force, type_error, Coercion, EvalState, GenCo, GenFuture, Native,
};
use std::path::Path;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    sync("toString", 1, to_string),
    sync("substring", 3, substring),
    sync("stringLength", 1, string_length),
    sync("replaceStrings", 3, replace_strings),
    native("concatStringsSep", 2, Native::ConcatStringsSep),
    sync("baseNameOf", 1, base_name_of),
    sync("dirOf", 1, dir_of),
];

/// A forced string without context, as attribute names and similar must
/// be (C++ Nix's `forceStringNoCtx`).
pub(crate) fn expect_string_no_ctx(v: &Value) -> EvalResult<NixString> {
    match v {
        Value::String(s) => match s.context().and_then(|c| c.iter().next()) {
            None => Ok(s.clone()),
            Some(elem) => Err(ErrorKind::other(format!(
                "the string '{}' is not allowed to refer to a store path (such as '{}')",
                s,
                elem.encode()
            ))),
        },
        other => Err(type_error("string", other)),
    }
}

// ---------------------------------------------------------------------------
// toString

static TO_STRING_GEN: BuiltinDef = gen("toString", 1, to_string_gen);

fn to_string(state: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    match coerce_fast(state, &args[0], Coercion::TO_STRING) {
        Some(s) => Ok(Value::String(s?)),
        None => Ok(defer(&TO_STRING_GEN, args)),
    }
}

fn to_string_gen(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let s = coerce_to_string(&co, &state, args[0].clone(), Coercion::TO_STRING).await?;
        Ok(Value::String(s))
    })
}

// ---------------------------------------------------------------------------
// substring

static SUBSTRING_GEN: BuiltinDef = gen("substring", 3, substring_gen);

fn substring_bounds(args: &[Value]) -> EvalResult<(usize, Option<usize>)> {
    let start = expect_int(&args[0])?;
    if start < 0 {
        return Err(ErrorKind::other("negative start position in 'substring'"));
    }
    let len = expect_int(&args[1])?;
    // A negative length means "to the end".
    let len = usize::try_from(len).ok();
    Ok((usize::try_from(start).unwrap_or(usize::MAX), len))
}

fn substring_of(s: &NixString, start: usize, len: Option<usize>) -> Value {
    let bytes = s.as_bytes();
    if start == 0 && len.is_none_or(|l| l >= bytes.len()) {
        return Value::String(s.clone());
    }
    if start >= bytes.len() {
        return Value::String(NixString::new(Vec::new(), s.context().cloned()));
    }
    let end = match len {
        Some(l) => start.saturating_add(l).min(bytes.len()),
        None => bytes.len(),
    };
    Value::String(NixString::new(&bytes[start..end], s.context().cloned()))
}

fn substring(state: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let (start, len) = substring_bounds(&args)?;
    match coerce_fast(state, &args[2], Coercion::INTERPOLATION) {
        Some(s) => Ok(substring_of(&s?, start, len)),
        None => Ok(defer(&SUBSTRING_GEN, args)),
    }
}

fn substring_gen(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let (start, len) = substring_bounds(&args)?;
        let s = coerce_to_string(&co, &state, args[2].clone(), Coercion::INTERPOLATION).await?;
        Ok(substring_of(&s, start, len))
    })
}

// ---------------------------------------------------------------------------
// stringLength

static STRING_LENGTH_GEN: BuiltinDef = gen("stringLength", 1, string_length_gen);

fn string_length(state: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    match coerce_fast(state, &args[0], Coercion::INTERPOLATION) {
        Some(s) => Ok(Value::Int(s?.len() as i64)),
        None => Ok(defer(&STRING_LENGTH_GEN, args)),
    }
}

fn string_length_gen(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let s = coerce_to_string(&co, &state, args[0].clone(), Coercion::INTERPOLATION).await?;
        Ok(Value::Int(s.len() as i64))
    })
}

// ---------------------------------------------------------------------------
// replaceStrings

static REPLACE_STRINGS_GEN: BuiltinDef = gen("replaceStrings", 3, replace_strings_gen);

/// The two lists of `replaceStrings`, checked for equal length.
fn replace_lists(args: &[Value]) -> EvalResult<(crate::value::NixList, crate::value::NixList)> {
    let from = expect_list(&args[0])?;
    let to = expect_list(&args[1])?;
    if from.len() != to.len() {
        return Err(ErrorKind::other(
            "'from' and 'to' arguments passed to builtins.replaceStrings have different lengths",
        ));
    }
    Ok((from, to))
}

fn replace_strings(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let (from, to) = replace_lists(&args)?;
    if !from.iter().chain(to.iter()).all(Value::is_whnf) {
        return Ok(defer(&REPLACE_STRINGS_GEN, args));
    }
    let from = from
        .iter()
        .map(|v| match v.shallow() {
            Value::String(s) => Ok(s),
            other => Err(type_error("string", &other)),
        })
        .collect::<EvalResult<Vec<_>>>()?;
    let Value::String(s) = &args[2] else {
        return Err(type_error("string", &args[2]));
    };
    let to: Vec<Value> = to.iter().map(Value::shallow).collect();
    let mut replacement = |i: usize| match &to[i] {
        Value::String(r) => Ok(r.clone()),
        other => Err(type_error("string", other)),
    };
    Ok(Value::String(replace(s, &from, &mut replacement)?))
}

fn replace_strings_gen(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let (from_list, to_list) = replace_lists(&args)?;
        let mut from = Vec::with_capacity(from_list.len());
        for v in from_list.iter() {
            match force(&co, v.clone()).await {
                Value::String(s) => from.push(s),
                other => return Err(type_error("string", &other)),
            }
        }
        let Value::String(s) = &args[2] else {
            return Err(type_error("string", &args[2]));
        };
        // Replacements are forced only when used: find which are, then force those.
        let mut used = vec![false; to_list.len()];
        replace(s, &from, &mut |i| {
            used[i] = true;
            Ok(NixString::from(""))
        })?;
        let mut to = Vec::with_capacity(to_list.len());
        for (i, v) in to_list.iter().enumerate() {
            to.push(if used[i] {
                force(&co, v.clone()).await
            } else {
                Value::Null
            });
        }
        let mut replacement = |i: usize| match &to[i] {
            Value::String(r) => Ok(r.clone()),
            other => Err(type_error("string", other)),
        };
        Ok(Value::String(replace(s, &from, &mut replacement)?))
    })
}

/// C++ Nix's replacement loop: at each position the first matching `from`
/// wins; an empty `from` matches before every character and at the end.
/// Only the contexts of replacements actually inserted are added.
fn replace(
    s: &NixString,
    from: &[NixString],
    to: &mut dyn FnMut(usize) -> EvalResult<NixString>,
) -> EvalResult<NixString> {
    let bytes = s.as_bytes();
    let mut out = StringBuilder::default();
    out.add_context(s.context());
    let mut cache: Vec<Option<NixString>> = vec![None; from.len()];
    let mut p = 0;
    while p <= bytes.len() {
        let hit = from
            .iter()
            .position(|f| bytes[p..].starts_with(f.as_bytes()));
        match hit {
            Some(i) => {
                if cache[i].is_none() {
                    cache[i] = Some(to(i)?);
                }
                if let Some(r) = &cache[i] {
                    out.push(r);
                }
                let flen = from[i].len();
                if flen == 0 {
                    if p < bytes.len() {
                        out.push_bytes(&bytes[p..p + 1]);
                    }
                    p += 1;
                } else {
                    p += flen;
                }
            }
            None => {
                if p < bytes.len() {
                    out.push_bytes(&bytes[p..p + 1]);
                }
                p += 1;
            }
        }
    }
    Ok(out.finish())
}

// ---------------------------------------------------------------------------
// baseNameOf, dirOf

static BASE_NAME_OF_GEN: BuiltinDef = gen("baseNameOf", 1, base_name_of_gen);

/// The last component of a path string; a single trailing slash is ignored
/// (C++ Nix's `legacyBaseNameOf`).
fn base_name(s: &NixString) -> NixString {
    let b = s.as_bytes();
    if b.is_empty() {
        return s.clone();
    }
    let mut last = b.len() - 1;
    if b[last] == b'/' && last > 0 {
        last -= 1;
    }
    let start = match b[..=last].iter().rposition(|&c| c == b'/') {
        Some(i) => i + 1,
        None => 0,
    };
    NixString::new(&b[start..=last], s.context().cloned())
}

fn base_name_of(state: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    match coerce_fast(state, &args[0], Coercion::PATH_PART) {
        Some(s) => Ok(Value::String(base_name(&s?))),
        None => Ok(defer(&BASE_NAME_OF_GEN, args)),
    }
}

fn base_name_of_gen(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let s = coerce_to_string(&co, &state, args[0].clone(), Coercion::PATH_PART).await?;
        Ok(Value::String(base_name(&s)))
    })
}

static DIR_OF_GEN: BuiltinDef = gen("dirOf", 1, dir_of_gen);

/// Everything before the last slash: `.` without one, `/` for a leading one.
fn dir_name(s: &NixString) -> NixString {
    let b = s.as_bytes();
    let dir: &[u8] = match b.iter().rposition(|&c| c == b'/') {
        None => b".",
        Some(0) => b"/",
        Some(i) => &b[..i],
    };
    NixString::new(dir, s.context().cloned())
}

/// The parent of an absolute path value; the root is its own parent.
fn parent_path(p: &Path) -> Value {
    match p.parent() {
        Some(parent) => Value::path(canon_path(&parent.to_string_lossy())),
        None => Value::path(p),
    }
}

fn dir_of(state: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    if let Value::Path(p) = &args[0] {
        return Ok(parent_path(p));
    }
    match coerce_fast(state, &args[0], Coercion::PATH_PART) {
        Some(s) => Ok(Value::String(dir_name(&s?))),
        None => Ok(defer(&DIR_OF_GEN, args)),
    }
}

fn dir_of_gen(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let s = coerce_to_string(&co, &state, args[0].clone(), Coercion::PATH_PART).await?;
        Ok(Value::String(dir_name(&s)))
    })
}

#[cfg(test)]
mod tests {
    use crate::eval::testing::{err, ok};

    #[test]
    fn to_string_and_length() {
        assert_eq!(ok("toString 1"), "\"1\"");
        assert_eq!(ok("toString [ 1 [ ] null true \"a\" ]"), "\"1  1 a\"");
        assert_eq!(ok("toString { __toString = s: \"x\"; }"), "\"x\"");
        assert_eq!(ok("toString /a/b"), "\"/a/b\"");
        assert_eq!(ok("builtins.stringLength \"abc\""), "3");
        assert!(err("toString { a = 1; }").contains("cannot coerce a set to a string"));
    }

    #[test]
    fn substring() {
        assert_eq!(ok("builtins.substring 1 2 \"abcd\""), "\"bc\"");
        assert_eq!(ok("builtins.substring 1 (-1) \"abcd\""), "\"bcd\"");
        assert_eq!(ok("builtins.substring 10 2 \"abcd\""), "\"\"");
        assert_eq!(ok("builtins.substring 0 100 \"abcd\""), "\"abcd\"");
        assert!(err("builtins.substring (-3) 3 \"sometext\"")
            .contains("negative start position in 'substring'"));
        assert!(err("builtins.substring 0 3 { }").contains("cannot coerce a set to a string"));
    }

    #[test]
    fn replace_strings() {
        assert_eq!(
            ok("builtins.replaceStrings [ \"o\" \"a\" ] [ \"0\" \"4\" ] \"foobar\""),
            "\"f00b4r\""
        );
        assert_eq!(
            ok("builtins.replaceStrings [ \"\" ] [ \"X\" ] \"ab\""),
            "\"XaXbX\""
        );
        assert_eq!(
            ok("builtins.replaceStrings [ \"a\" \"b\" ] [ \"x\" (throw \"unused\") ] \"aa\""),
            "\"xx\""
        );
        assert!(err("builtins.replaceStrings [ 0 ] [ ] { }").contains("have different lengths"));
        assert!(err("builtins.replaceStrings [ \"old\" ] [ \"new\" ] { }")
            .contains("expected a string but found a set"));
    }

    #[test]
    fn concat_and_path_parts() {
        assert_eq!(
            ok("builtins.concatStringsSep \"-\" [ \"a\" \"b\" ]"),
            "\"a-b\""
        );
        assert!(err("builtins.concatStringsSep \"-\" [ 1 ]").contains("cannot coerce an integer"));
        assert_eq!(ok("baseNameOf \"a/b/\""), "\"b\"");
        assert_eq!(ok("baseNameOf \"a//\""), "\"\"");
        assert_eq!(ok("baseNameOf /a/b"), "\"b\"");
        assert_eq!(ok("dirOf \"a///b\""), "\"a//\"");
        assert_eq!(ok("dirOf \"/\""), "\"/\"");
        assert_eq!(ok("dirOf \"f\""), "\".\"");
        assert_eq!(ok("dirOf /a/b"), "/a");
        assert_eq!(ok("dirOf /."), "/");
    }
}
