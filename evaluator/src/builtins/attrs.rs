//! Builtins: attribute sets (`attrNames`, `mapAttrs`, `listToAttrs`,
//! `removeAttrs`, `zipAttrsWith`, `groupBy`, ...).
//!
//! Sets are sorted arrays, so most of these are linear passes or merges
//! that never sort again. Attribute names taken from Nix strings must not
//! carry a string context, as in C++ Nix.

use super::lists::{defer, expect_function};
use super::strings::expect_string_no_ctx;
use super::{expect_attrs, expect_list, gen, lazy, sync};
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{Args, BuiltinDef, NixAttrs, NixString, Thunk, Value};
use crate::vm::{call, force, force_attrs, force_list, type_error, EvalState, GenCo, GenFuture};
use std::collections::BTreeMap;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    sync("attrNames", 1, attr_names),
    sync("attrValues", 1, attr_values),
    lazy(sync("mapAttrs", 2, map_attrs), 0b01),
    gen("listToAttrs", 1, list_to_attrs),
    sync("intersectAttrs", 2, intersect_attrs),
    sync("removeAttrs", 2, remove_attrs),
    gen("catAttrs", 2, cat_attrs),
    lazy(gen("zipAttrsWith", 2, zip_attrs_with), 0b11),
    lazy(gen("groupBy", 2, group_by), 0b11),
    sync("getAttr", 2, get_attr),
    sync("hasAttr", 2, has_attr),
    sync("unsafeGetAttrPos", 2, unsafe_get_attr_pos),
    sync("functionArgs", 1, function_args),
];

/// C++ Nix's error for a missing attribute.
fn missing(name: &str) -> ErrorKind {
    ErrorKind::AttrMissing { name: name.into() }
}

/// A set of `entries` (sorted) that keeps the definition positions `source`
/// knows for them, as C++ Nix keeps them when it copies attributes.
fn keeping_positions(entries: Vec<(NixString, Value)>, source: &NixAttrs) -> NixAttrs {
    let positions: Vec<u32> = entries
        .iter()
        .map(|(k, _)| source.position_key(k).unwrap_or(0))
        .collect();
    if positions.iter().all(|p| *p == 0) {
        NixAttrs::from_sorted(entries)
    } else {
        NixAttrs::from_sorted_with_positions(entries, positions.into())
    }
}

fn attr_names(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let a = expect_attrs(&args[0])?;
    Ok(Value::list(a.keys().cloned().map(Value::String).collect()))
}

fn attr_values(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let a = expect_attrs(&args[0])?;
    Ok(Value::list(a.values().cloned().collect()))
}

fn map_attrs(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let a = expect_attrs(&args[1])?;
    let f = &args[0];
    let entries = a
        .iter()
        .map(|(k, v)| {
            let partial = Value::Thunk(Thunk::apply(f.clone(), Value::String(k.clone())));
            (k.clone(), Value::Thunk(Thunk::apply(partial, v.clone())))
        })
        .collect();
    Ok(Value::attrs(NixAttrs::from_sorted(entries)))
}

fn list_to_attrs(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let list = expect_list(&args[0])?;
        let mut pairs: Vec<(NixString, Rc<NixAttrs>)> = Vec::with_capacity(list.len());
        for item in list.iter() {
            let pair = force_attrs(&co, item.clone()).await?;
            let name = pair.get(b"name").ok_or_else(|| missing("name"))?.clone();
            let name = expect_string_no_ctx(&force(&co, name).await)?;
            pairs.push((name, pair));
        }
        // Stable: of several pairs with one name, the first stays first.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        let mut entries = Vec::with_capacity(pairs.len());
        let mut positions = Vec::with_capacity(pairs.len());
        for (name, pair) in pairs {
            let value = pair.get(b"value").ok_or_else(|| missing("value"))?;
            entries.push((name, value.clone()));
            // The position of a result attribute is that of its `value`.
            positions.push(pair.position(b"value").unwrap_or(0));
        }
        if positions.iter().all(|p| *p == 0) {
            return Ok(Value::attrs(NixAttrs::from_sorted(entries)));
        }
        Ok(Value::attrs(NixAttrs::from_sorted_with_positions(
            entries,
            positions.into(),
        )))
    })
}

fn intersect_attrs(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let left = expect_attrs(&args[0])?;
    let right = expect_attrs(&args[1])?;
    let entries: Vec<(NixString, Value)> = if left.len() < right.len() / 8 {
        left.keys()
            .filter_map(|k| right.get_key(k).map(|v| (k.clone(), v.clone())))
            .collect()
    } else if right.len() < left.len() / 8 {
        right
            .iter()
            .filter(|(k, _)| left.contains_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    } else {
        // A linear merge of the two sorted sets.
        let mut out = Vec::new();
        let mut l = left.keys().peekable();
        for (k, v) in right.iter() {
            while l.next_if(|x| *x < k).is_some() {}
            if l.peek() == Some(&k) {
                out.push((k.clone(), v.clone()));
            }
        }
        out
    };
    if entries.len() == right.len() {
        return Ok(args[1].clone());
    }
    Ok(Value::attrs(keeping_positions(entries, &right)))
}

/// `removeAttrs` when some names in the list are not forced yet.
static REMOVE_ATTRS_FORCING: BuiltinDef = gen("removeAttrs", 2, remove_attrs_forcing);

fn remove_attrs(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let set = expect_attrs(&args[0])?;
    let list = expect_list(&args[1])?;
    if !list.iter().all(Value::is_whnf) {
        return Ok(defer(&REMOVE_ATTRS_FORCING, args));
    }
    let names = list
        .iter()
        .map(|n| expect_string_no_ctx(&n.shallow()))
        .collect::<EvalResult<Vec<_>>>()?;
    Ok(remove_names(&args[0], &set, names))
}

fn remove_attrs_forcing(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let set = expect_attrs(&args[0])?;
        let list = expect_list(&args[1])?;
        let mut names = Vec::with_capacity(list.len());
        for n in list.iter() {
            names.push(expect_string_no_ctx(&force(&co, n.clone()).await)?);
        }
        Ok(remove_names(&args[0], &set, names))
    })
}

fn remove_names(original: &Value, set: &NixAttrs, mut names: Vec<NixString>) -> Value {
    names.retain(|n| set.contains_key(n));
    if names.is_empty() {
        return original.clone();
    }
    names.sort_unstable();
    Value::attrs(set.filtered(|k| names.binary_search(k).is_err()))
}

fn cat_attrs(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let name = expect_string_no_ctx(&args[0])?;
        let list = expect_list(&args[1])?;
        let mut out = Vec::new();
        for item in list.iter() {
            match force(&co, item.clone()).await {
                Value::Attrs(a) => {
                    if let Some(v) = a.get(name.as_bytes()) {
                        out.push(v.clone());
                    }
                }
                other => return Err(type_error("set", &other)),
            }
        }
        Ok(Value::list(out))
    })
}

fn zip_attrs_with(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let f = force(&co, args[0].clone()).await;
        expect_function(&f)?;
        let list = force_list(&co, args[1].clone()).await?;
        let mut seen: BTreeMap<NixString, Vec<Value>> = BTreeMap::new();
        for item in list.iter() {
            let set = force_attrs(&co, item.clone()).await?;
            for (k, v) in set.iter() {
                seen.entry(k.clone()).or_default().push(v.clone());
            }
        }
        let entries = seen
            .into_iter()
            .map(|(k, values)| {
                let partial = Value::Thunk(Thunk::apply(f.clone(), Value::String(k.clone())));
                (k, Value::Thunk(Thunk::apply(partial, Value::list(values))))
            })
            .collect();
        Ok(Value::attrs(NixAttrs::from_sorted(entries)))
    })
}

fn group_by(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let f = force(&co, args[0].clone()).await;
        expect_function(&f)?;
        let list = force_list(&co, args[1].clone()).await?;
        let mut groups: BTreeMap<NixString, Vec<Value>> = BTreeMap::new();
        for item in list.iter() {
            let key = call(&co, f.clone(), item.clone()).await;
            let key = expect_string_no_ctx(&key)?;
            groups.entry(key).or_default().push(item.clone());
        }
        let entries = groups
            .into_iter()
            .map(|(k, items)| (k, Value::list(items)))
            .collect();
        Ok(Value::attrs(NixAttrs::from_sorted(entries)))
    })
}

fn get_attr(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let name = expect_string_no_ctx(&args[0])?;
    let set = expect_attrs(&args[1])?;
    set.get(name.as_bytes())
        .cloned()
        .ok_or_else(|| missing(&name.to_str_lossy()))
}

fn has_attr(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let name = expect_string_no_ctx(&args[0])?;
    let set = expect_attrs(&args[1])?;
    Ok(Value::Bool(set.contains(name.as_bytes())))
}

/// Attribute sets do not record where their attributes were defined, so
/// this is always `null` (C++ Nix's answer for attributes without a position).
fn unsafe_get_attr_pos(state: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let name = expect_string_no_ctx(&args[0])?;
    let attrs = expect_attrs(&args[1])?;
    Ok(match attrs.position(name.as_bytes()) {
        Some(offset) => state.position_value(offset),
        None => Value::Null,
    })
}

fn function_args(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    match &args[0] {
        Value::Builtin(_) => Ok(Value::Attrs(NixAttrs::empty())),
        Value::Closure(c) => match &c.lambda.formals {
            None => Ok(Value::Attrs(NixAttrs::empty())),
            Some(formals) => Ok(Value::attrs(NixAttrs::from_sorted_with_positions(
                formals
                    .entries
                    .iter()
                    .map(|(name, has_default)| (name.clone(), Value::Bool(*has_default)))
                    .collect(),
                formals.positions.clone(),
            ))),
        },
        _ => Err(ErrorKind::other("'functionArgs' requires a function")),
    }
}

#[cfg(test)]
mod tests {
    use crate::eval::testing::{err, ok};

    #[test]
    fn names_values_and_lookups() {
        assert_eq!(
            ok("builtins.attrNames { b = 1; a = 2; }"),
            "[ \"a\" \"b\" ]"
        );
        assert_eq!(ok("builtins.attrValues { b = 1; a = 2; }"), "[ 2 1 ]");
        assert_eq!(ok("builtins.getAttr \"a\" { a = 1; }"), "1");
        assert!(err("builtins.getAttr \"foo\" { }").contains("attribute 'foo' missing"));
        assert_eq!(ok("builtins.hasAttr \"a\" { a = 1; }"), "true");
        assert!(err("builtins.attrNames [ ]").contains("expected a set but found a list"));
        assert_eq!(ok("builtins.unsafeGetAttrPos \"b\" { a = 1; }"), "null");
        assert_eq!(
            ok("builtins.unsafeGetAttrPos \"a\" { a = 1; }"),
            "{ column = 33; file = \"«string»\"; line = 1; }"
        );
    }

    #[test]
    fn constructing_sets() {
        assert_eq!(
            ok("builtins.mapAttrs (n: v: n + toString v) { a = 1; b = 2; }"),
            "{ a = \"a1\"; b = \"b2\"; }"
        );
        assert_eq!(
            ok("builtins.attrNames (builtins.mapAttrs \"\" { a = 1; })"),
            "[ \"a\" ]"
        );
        assert_eq!(
            ok(
                "builtins.listToAttrs [ { name = \"a\"; value = 1; } { name = \"a\"; value = 2; } \
                { name = \"b\"; value = 3; } { name = \"b\"; } ]"
            ),
            "{ a = 1; b = 3; }"
        );
        assert!(err("builtins.listToAttrs [ { name = \"foo\"; } ]")
            .contains("attribute 'value' missing"));
        assert!(err("builtins.listToAttrs [ { } ]").contains("attribute 'name' missing"));
        assert_eq!(
            ok("builtins.intersectAttrs { a = 1; c = 1; } { a = 2; b = 2; c = 2; }"),
            "{ a = 2; c = 2; }"
        );
        assert_eq!(
            ok("let n = \"a\"; in removeAttrs { a = 1; b = 2; } [ n \"z\" ]"),
            "{ b = 2; }"
        );
        assert_eq!(
            ok("builtins.catAttrs \"a\" [ { a = 1; } { } { a = 2; } ]"),
            "[ 1 2 ]"
        );
        assert_eq!(
            ok("builtins.zipAttrsWith (n: v: v) [ { a = 1; } { a = 2; b = 3; } ]"),
            "{ a = [ 1 2 ]; b = [ 3 ]; }"
        );
        assert_eq!(
            ok("builtins.groupBy (x: if x > 1 then \"big\" else \"small\") [ 1 2 3 ]"),
            "{ big = [ 2 3 ]; small = [ 1 ]; }"
        );
        assert_eq!(
            ok("builtins.functionArgs ({ a, b ? 1 }: a)"),
            "{ a = false; b = true; }"
        );
        assert_eq!(ok("builtins.functionArgs (x: x)"), "{ }");
        assert!(err("builtins.functionArgs 1").contains("'functionArgs' requires a function"));
    }

    #[test]
    fn copied_attributes_keep_their_positions() {
        // Columns count from the start of `(builtins.unsafeGetAttrPos "a" (`.
        let pos = |e: &str| ok(&format!("(builtins.unsafeGetAttrPos \"a\" ({e})).column"));
        assert_eq!(pos("removeAttrs { a = 1; b = 2; } [ \"b\" ]"), "47");
        assert_eq!(
            pos("builtins.intersectAttrs { a = 0; } { a = 1; b = 2; }"),
            "70"
        );
        assert_eq!(
            pos("builtins.listToAttrs [ { name = \"a\"; value = 1; } ]"),
            "70"
        );
    }

    /// `removeAttrs` keeps the names it does not remove with their
    /// positions (C++ Nix 2.8 gives the same), runs of them at either end
    /// or between removed ones, and no positions for a set without any.
    #[test]
    fn remove_attrs_keeps_the_rest_with_positions() {
        assert_eq!(
            ok("let s = { a = 1;\n  b = 2; c = 3; }; r = builtins.removeAttrs s [ \"b\" \"zz\" ]; in \
                [ (builtins.attrNames r) (builtins.unsafeGetAttrPos \"c\" r).line \
                (builtins.unsafeGetAttrPos \"c\" r).column \
                (builtins.unsafeGetAttrPos \"a\" (builtins.removeAttrs (builtins.mapAttrs (n: v: v) s) [ \"b\" ])) \
                (builtins.removeAttrs s [ ]) ]"),
            "[ [ \"a\" \"c\" ] 2 10 null { a = 1; b = 2; c = 3; } ]"
        );
        assert_eq!(
            ok("builtins.removeAttrs { a = 1; b = 2; c = 3; d = 4; e = 5; } [ \"a\" \"c\" \"e\" \"b\" ]"),
            "{ d = 4; }"
        );
        assert_eq!(
            ok("builtins.removeAttrs { a = 1; b = 2; c = 3; d = 4; e = 5; } [ \"c\" \"d\" ]"),
            "{ a = 1; b = 2; e = 5; }"
        );
        assert_eq!(ok("builtins.removeAttrs { a = 1; } [ \"a\" ]"), "{ }");
    }
}
