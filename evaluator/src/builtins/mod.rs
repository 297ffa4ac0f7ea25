//! The builtins: one module per domain, each exporting a `BUILTINS` table,
//! and the global scope assembled from them.
//!
//! A builtin is either `Sync` (runs to completion; its arguments arrive
//! forced unless marked lazy), `Gen` (async code that asks the VM to
//! force values or call functions; see `vm/generators.rs`) or `Native` (a
//! frame of the VM's own for the hot loops over lists; see `vm/native.rs`).

mod attrs;
mod context;
mod control;
mod derivations;
mod fetchers;
mod hash;
mod io;
pub(crate) mod json;
mod lists;
mod numbers;
mod regex;
mod strings;
mod toml;
mod types;
mod versions;
pub(crate) mod xml;

pub use json::value_to_json;
pub(crate) use lists::is_callable;

use crate::compiler::Globals;
use crate::errors::ErrorKind;
use crate::value::{
    Args, BuiltinApp, BuiltinDef, BuiltinFn, NixAttrs, NixString, Value, MAX_ARITY,
};
use crate::vm::{EvalState, GenCo, GenFuture};
use std::rc::Rc;

/// A builtin whose arguments are all forced before the call.
pub(crate) const fn sync(
    name: &'static str,
    arity: usize,
    f: fn(&Rc<EvalState>, Args) -> crate::errors::EvalResult<Value>,
) -> BuiltinDef {
    check_arity(arity);
    BuiltinDef {
        name,
        arity,
        lazy_args: 0,
        func: BuiltinFn::Sync(f),
    }
}

/// A generator builtin whose arguments are all forced before the call.
pub(crate) const fn gen(
    name: &'static str,
    arity: usize,
    f: fn(GenCo, Rc<EvalState>, Args) -> GenFuture,
) -> BuiltinDef {
    check_arity(arity);
    BuiltinDef {
        name,
        arity,
        lazy_args: 0,
        func: BuiltinFn::Gen(f),
    }
}

/// A builtin the VM runs as a frame of its own (`vm/native.rs`), which
/// forces its arguments itself, in the builtin's order: all are passed
/// unforced.
pub(crate) const fn native(name: &'static str, arity: usize, n: crate::vm::Native) -> BuiltinDef {
    check_arity(arity);
    BuiltinDef {
        name,
        arity,
        lazy_args: u8::MAX,
        func: BuiltinFn::Native(n),
    }
}

/// Refuses, when the builtin tables are compiled (they are constants),
/// an arity the inline [`Args`] cannot hold. Zero is refused too: a
/// builtin is a function, and one of no argument is a constant.
const fn check_arity(arity: usize) {
    assert!(
        arity >= 1 && arity <= MAX_ARITY,
        "a builtin takes 1 to MAX_ARITY arguments"
    );
}

/// Marks arguments (bit i = argument i) as passed unforced.
pub(crate) const fn lazy(mut def: BuiltinDef, mask: u8) -> BuiltinDef {
    def.lazy_args = mask;
    def
}

/// Names that are also bound in the global scope without `builtins.`.
const GLOBAL_NAMES: &[&str] = &[
    "abort",
    "baseNameOf",
    "break",
    "derivationStrict",
    "dirOf",
    "fetchGit",
    "fetchMercurial",
    "fetchTarball",
    "fetchTree",
    "fromTOML",
    "import",
    "isNull",
    "map",
    "placeholder",
    "removeAttrs",
    "scopedImport",
    "throw",
    "toString",
];

fn all_tables() -> [&'static [BuiltinDef]; 16] {
    [
        attrs::BUILTINS,
        context::BUILTINS,
        control::BUILTINS,
        derivations::BUILTINS,
        fetchers::BUILTINS,
        hash::BUILTINS,
        io::BUILTINS,
        json::BUILTINS,
        lists::BUILTINS,
        numbers::BUILTINS,
        regex::BUILTINS,
        strings::BUILTINS,
        toml::BUILTINS,
        types::BUILTINS,
        versions::BUILTINS,
        xml::BUILTINS,
    ]
}

/// Builds the global scope: `builtins`, the unprefixed globals and the
/// `__`-prefixed aliases C++ Nix has.
pub(crate) fn globals(state: &Rc<EvalState>) -> Globals {
    let mut entries: Vec<(NixString, Value)> = Vec::new();
    for table in all_tables() {
        for def in table {
            entries.push((
                NixString::interned(def.name.as_bytes()),
                Value::Builtin(Rc::new(BuiltinApp {
                    def,
                    args: Args::new(),
                })),
            ));
        }
    }
    for (name, value) in constants(state) {
        entries.push((NixString::interned(name.as_bytes()), value));
    }
    let mut globals = Globals::default();
    for (name, value) in &entries {
        globals.insert(format!("__{}", name), value.clone());
    }
    for name in GLOBAL_NAMES {
        if let Some((_, v)) = entries
            .iter()
            .find(|(n, _)| n.as_bytes() == name.as_bytes())
        {
            globals.insert((*name).to_string(), v.clone());
        }
    }
    globals.insert("true".into(), Value::Bool(true));
    globals.insert("false".into(), Value::Bool(false));
    globals.insert("null".into(), Value::Null);

    // Builtins written in Nix (like C++ Nix's `derivation.nix`), compiled
    // against the native globals.
    let partial = Rc::new(globals.clone());
    for (name, source) in derivations::NIX_DEFINED {
        let v = state.loader().prelude(name, source, &partial);
        entries.push((NixString::interned(name.as_bytes()), v.clone()));
        globals.insert((*name).to_string(), v.clone());
        globals.insert(format!("__{}", name), v);
    }

    // `builtins.builtins` is the set itself: a thunk filled in once the set
    // exists (a deliberate, global cycle).
    let self_ref = crate::value::Thunk::apply(Value::Null, Value::Null);
    entries.push((
        NixString::interned(b"builtins"),
        Value::Thunk(self_ref.clone()),
    ));
    let builtins_value = Value::Attrs(Rc::new(NixAttrs::from_unsorted_first_wins(entries)));
    self_ref.update(builtins_value.clone());
    globals.insert("builtins".into(), builtins_value);
    globals
}

fn constants(state: &Rc<EvalState>) -> Vec<(&'static str, Value)> {
    let o = &state.options;
    let nix_path: Vec<Value> = o
        .search_path
        .iter()
        .map(|e| {
            Value::attrs(NixAttrs::from_sorted(vec![
                (NixString::interned(b"path"), Value::string(e.path.as_str())),
                (
                    NixString::interned(b"prefix"),
                    Value::string(e.prefix.as_str()),
                ),
            ]))
        })
        .collect();
    let mut constants = vec![
        ("storeDir", Value::string(o.store_dir.as_str())),
        ("nixVersion", Value::string(NIX_VERSION)),
        ("langVersion", Value::Int(6)),
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("null", Value::Null),
    ];
    // Pure evaluation (flakes) has no system, clock or search path.
    if o.pure_eval {
        constants.push(("nixPath", Value::list(Vec::new())));
    } else {
        constants.push(("currentSystem", Value::string(o.system.as_str())));
        // Read when first forced: an evaluation that never looks at the
        // clock stays repeatable (see `record.rs`).
        let clock = Value::Builtin(Rc::new(BuiltinApp {
            def: &CURRENT_TIME,
            args: Args::new(),
        }));
        constants.push((
            "currentTime",
            Value::Thunk(crate::value::Thunk::apply(clock, Value::Null)),
        ));
        constants.push(("nixPath", Value::list(nix_path)));
    }
    constants
}

/// The clock behind `builtins.currentTime` (not itself a builtin: it is
/// applied once, lazily, by the constant's thunk).
static CURRENT_TIME: BuiltinDef = sync("currentTime", 1, current_time);

fn current_time(state: &Rc<EvalState>, _: Args) -> crate::errors::EvalResult<Value> {
    state.record_input(
        crate::record::InputKind::Impure,
        "builtins.currentTime",
        String::new,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(Value::Int(now))
}

/// The Nix version reported to expressions (`builtins.nixVersion`): the C++
/// Nix release whose semantics we follow.
pub const NIX_VERSION: &str = "2.36.0";

/// Extracts a string argument or fails with a type error.
pub(crate) fn expect_string(v: &Value) -> Result<NixString, ErrorKind> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(crate::vm::type_error("string", other)),
    }
}

/// Extracts an integer argument or fails with a type error.
pub(crate) fn expect_int(v: &Value) -> Result<i64, ErrorKind> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(crate::vm::type_error("integer", other)),
    }
}

/// Extracts an attribute-set argument or fails with a type error.
pub(crate) fn expect_attrs(v: &Value) -> Result<Rc<NixAttrs>, ErrorKind> {
    match v {
        Value::Attrs(a) => Ok(a.clone()),
        other => Err(crate::vm::type_error("set", other)),
    }
}

/// Extracts a list argument or fails with a type error.
pub(crate) fn expect_list(v: &Value) -> Result<crate::value::NixList, ErrorKind> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(crate::vm::type_error("list", other)),
    }
}

#[cfg(test)]
mod tests {
    use crate::eval::{Evaluator, Source};
    use crate::value::{NixString, Value};
    use crate::EvalOptions;

    /// The names of sets that builtins make are the interned names compiled
    /// code looks them up by, so those lookups compare pointers, not bytes
    /// (docs/notes-performance.md, "Session 7: attribute names").
    #[test]
    fn builtin_made_names_are_the_interned_ones() {
        let ev = Evaluator::new(EvalOptions::default());
        let expr = "{ b = builtins; t = builtins.tryEval 1; d = builtins.parseDrvName \"a-1\"; \
                    p = builtins.partition (x: x) [ true ]; }";
        let root = ev.root(&Source::Expr(expr.into()), &[], &[]).unwrap();
        let root = ev.force(root).unwrap();
        let root = root.as_attrs().unwrap();
        for set in ["b", "t", "d", "p"] {
            let v = ev.force(root.get_str(set).unwrap().clone()).unwrap();
            let Value::Attrs(a) = v else {
                panic!("{set} is not a set")
            };
            assert!(a.len() >= 2);
            for k in a.keys() {
                assert!(k.ptr_eq(&NixString::interned(k.as_bytes())), "{set}.{k}");
            }
        }
    }
}
