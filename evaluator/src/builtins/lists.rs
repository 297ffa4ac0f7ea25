//! Builtins: lists (`map`, `filter`, `foldl'`, `sort`, `genericClosure`, ...).
//!
//! Strictness follows C++ Nix exactly: e.g. `map` forces its function only
//! when the list is non-empty, `foldl'` never forces the initial accumulator
//! unless the list is empty but forces every intermediate one, `sort` forces
//! every element before comparing.

use super::{expect_int, expect_list, gen, lazy, native, sync};
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{Args, BuiltinApp, BuiltinDef, NixAttrs, NixString, Thunk, Value};
use crate::vm::{
    call, call2, force, force_list, nix_less, type_error, EvalState, GenCo, GenFuture, Native,
};
use rustc_hash::FxHashSet;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    lazy(sync("map", 2, map), 0b01),
    native("filter", 2, Native::Filter),
    native("foldl'", 3, Native::FoldlStrict),
    sync("genList", 2, gen_list),
    native("concatMap", 2, Native::ConcatMap),
    native("elem", 2, Native::Elem),
    sync("elemAt", 2, elem_at),
    sync("head", 1, head),
    sync("tail", 1, tail),
    sync("length", 1, length),
    lazy(gen("sort", 2, sort), 0b01),
    lazy(gen("partition", 2, partition), 0b11),
    native("all", 2, Native::All),
    native("any", 2, Native::Any),
    native("concatLists", 1, Native::ConcatLists),
    gen("genericClosure", 1, generic_closure),
];

/// Whether a forced value can be called: a function or a set with `__functor`.
pub(crate) fn is_callable(v: &Value) -> bool {
    match v {
        Value::Closure(_) | Value::Builtin(_) => true,
        Value::Attrs(a) => a.contains(b"__functor"),
        _ => false,
    }
}

/// Fails with C++ Nix's type error unless the forced value can be called.
pub(super) fn expect_function(v: &Value) -> EvalResult<()> {
    if is_callable(v) {
        Ok(())
    } else {
        Err(type_error("function", v))
    }
}

/// The call `def args...` as an unevaluated thunk. A `Sync` builtin that
/// declares an argument lazy for its fast path returns this (with a variant
/// whose arguments are all strict) when it finds it must force that argument
/// after all: forcing the result then forces the argument first.
pub(super) fn defer(def: &'static BuiltinDef, mut args: Args) -> Value {
    let last = args.pop().unwrap_or(Value::Null);
    let partial = Value::Builtin(Rc::new(BuiltinApp { def, args }));
    Value::Thunk(Thunk::apply(partial, last))
}

/// `a < b` for numbers and strings, which need neither forcing nor a
/// generator; `None` for anything else (paths, lists, type errors), which
/// [`nix_less`] handles.
fn scalar_less(a: &Value, b: &Value) -> Option<bool> {
    Some(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Int(x), Value::Float(y)) => (*x as f64) < *y,
        (Value::Float(x), Value::Int(y)) => *x < (*y as f64),
        (Value::String(x), Value::String(y)) => x.as_bytes() < y.as_bytes(),
        _ => return None,
    })
}

/// Forces the result of a predicate to a Boolean.
fn expect_bool(v: Value) -> EvalResult<bool> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(type_error("Boolean", &other)),
    }
}

/// `map` with its function forced, for [`defer`].
static MAP_STRICT: BuiltinDef = sync("map", 2, map);

fn map(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let list = expect_list(&args[1])?;
    if list.is_empty() {
        return Ok(args[1].clone());
    }
    let f = args[0].shallow();
    if !f.is_whnf() {
        return Ok(defer(&MAP_STRICT, args));
    }
    expect_function(&f)?;
    Ok(Value::list(
        list.iter()
            .map(|x| Value::Thunk(Thunk::apply(f.clone(), x.clone())))
            .collect(),
    ))
}

/// Splits `0..n` into ranges of 64Ki, between which a loop checks for
/// interruption.
trait CollectChunks {
    fn collect_chunks(self) -> Vec<std::ops::Range<i64>>;
}

impl CollectChunks for std::ops::Range<i64> {
    fn collect_chunks(self) -> Vec<std::ops::Range<i64>> {
        const CHUNK: i64 = 1 << 16;
        (self.start..self.end)
            .step_by(CHUNK as usize)
            .map(|s| s..(s + CHUNK).min(self.end))
            .collect()
    }
}

fn gen_list(state: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let n = expect_int(&args[1])?;
    if n < 0 {
        return Err(ErrorKind::other(format!("cannot create list of size {n}")));
    }
    let f = &args[0];
    expect_function(f)?;
    // An impossible size is an error, not an abort of the whole process.
    let mut items = Vec::new();
    usize::try_from(n)
        .ok()
        .and_then(|n| items.try_reserve_exact(n).ok())
        .ok_or_else(|| {
            ErrorKind::other(format!("cannot create list of size {n}: out of memory"))
        })?;
    // A long loop of its own: it must notice a cancelled evaluation.
    for chunk in (0..n).collect_chunks() {
        state.check_interrupt()?;
        items.extend(chunk.map(|i| Value::Thunk(Thunk::apply(f.clone(), Value::Int(i)))));
    }
    Ok(Value::list(items))
}

fn elem_at(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let list = expect_list(&args[0])?;
    let n = expect_int(&args[1])?;
    match usize::try_from(n).ok().and_then(|i| list.get(i)) {
        Some(v) => Ok(v.clone()),
        None => Err(ErrorKind::other(format!(
            "'builtins.elemAt' called with index {n} on a list of size {}",
            list.len()
        ))),
    }
}

fn head(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let list = expect_list(&args[0])?;
    match list.first() {
        Some(v) => Ok(v.clone()),
        None => Err(ErrorKind::other("'builtins.head' called on an empty list")),
    }
}

fn tail(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let list = expect_list(&args[0])?;
    if list.is_empty() {
        return Err(ErrorKind::other("'builtins.tail' called on an empty list"));
    }
    Ok(Value::list(list[1..].to_vec()))
}

fn length(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let list = expect_list(&args[0])?;
    Ok(Value::Int(list.len() as i64))
}

fn partition(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let f = force(&co, args[0].clone()).await;
        expect_function(&f)?;
        let list = force_list(&co, args[1].clone()).await?;
        let (mut right, mut wrong) = (Vec::new(), Vec::new());
        for x in list.iter() {
            // C++ Nix forces each element before applying the predicate.
            let x = force(&co, x.clone()).await;
            if expect_bool(call(&co, f.clone(), x.clone()).await)? {
                right.push(x);
            } else {
                wrong.push(x);
            }
        }
        Ok(Value::attrs(NixAttrs::from_sorted(vec![
            (NixString::interned(b"right"), Value::list(right)),
            (NixString::interned(b"wrong"), Value::list(wrong)),
        ])))
    })
}

// ---------------------------------------------------------------------------
// sort

fn sort(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let list = expect_list(&args[1])?;
        if list.is_empty() {
            return Ok(args[1].clone());
        }
        let f = force(&co, args[0].clone()).await;
        expect_function(&f)?;
        let mut items = Vec::with_capacity(list.len());
        for x in list.iter() {
            items.push(force(&co, x.clone()).await);
        }
        // Like C++ Nix, bypass the call when the comparator is `lessThan`.
        let less_than =
            matches!(&f, Value::Builtin(b) if b.args.is_empty() && b.def.name == "lessThan");
        let sorter = Sorter {
            co: &co,
            state: &state,
            compared: std::cell::Cell::new(0),
            cmp: f,
            less_than,
        };
        sorter.sort(&mut items).await?;
        Ok(Value::list(items))
    })
}

type SortFuture<'a> = Pin<Box<dyn Future<Output = EvalResult<()>> + 'a>>;

/// A stable natural merge sort ("peeksort", as C++ Nix uses since 2.26)
/// whose comparisons go through the VM. Like every merge sort it returns
/// a permutation of its input even for comparators that are not strict
/// weak orders, and with the same sequence of comparisons as C++ Nix, so
/// such comparators give the same result.
struct Sorter<'a> {
    co: &'a GenCo,
    state: &'a EvalState,
    /// Comparisons so far: `lessThan` on numbers and strings never reaches
    /// the VM, whose loop polls the interrupt, so the sort polls it every
    /// `SORT_POLL_EVERY` comparisons.
    compared: std::cell::Cell<u32>,
    cmp: Value,
    less_than: bool,
}

/// How many comparisons a sort makes between two looks at the interrupt.
const SORT_POLL_EVERY: u32 = 4096;

/// Below this length a range is sorted by insertion.
const INSERTION_SORT_MAX: usize = 16;

impl Sorter<'_> {
    async fn less(&self, a: &Value, b: &Value) -> EvalResult<bool> {
        let compared = self.compared.get().wrapping_add(1);
        self.compared.set(compared);
        if compared.is_multiple_of(SORT_POLL_EVERY) {
            self.state.check_interrupt()?;
        }
        if self.less_than {
            if let Some(r) = scalar_less(a, b) {
                return Ok(r);
            }
            return nix_less(self.co, a.clone(), b.clone()).await;
        }
        expect_bool(call2(self.co, self.cmp.clone(), a.clone(), b.clone()).await)
    }

    async fn sort(&self, v: &mut [Value]) -> EvalResult<()> {
        match v.len() {
            0 | 1 => Ok(()),
            2 => {
                if self.less(&v[1], &v[0]).await? {
                    v.swap(0, 1);
                }
                Ok(())
            }
            n => {
                let mut buf = Vec::with_capacity(n);
                self.peeksort(v, &mut buf, 0, n, 0, n).await
            }
        }
    }

    /// Sorts `v[begin..end]` knowing that `v[begin..left_run_end]` and
    /// `v[right_run_begin..end]` are already sorted runs.
    fn peeksort<'s>(
        &'s self,
        v: &'s mut [Value],
        buf: &'s mut Vec<Value>,
        begin: usize,
        end: usize,
        left_run_end: usize,
        right_run_begin: usize,
    ) -> SortFuture<'s> {
        Box::pin(async move {
            if left_run_end == end || right_run_begin == begin {
                return Ok(());
            }
            if end - begin <= INSERTION_SORT_MAX {
                return self.insertion_sort(v, begin, end).await;
            }
            let middle = begin + (end - begin) / 2;
            if middle <= left_run_end {
                self.peeksort(v, buf, left_run_end, end, left_run_end + 1, right_run_begin)
                    .await?;
                return self.merge(v, buf, begin, left_run_end, end).await;
            }
            if middle >= right_run_begin {
                self.peeksort(
                    v,
                    buf,
                    begin,
                    right_run_begin,
                    left_run_end,
                    right_run_begin - 1,
                )
                .await?;
                return self.merge(v, buf, begin, right_run_begin, end).await;
            }
            // The run that contains `middle - 1`, extended both ways.
            let (i, j) = if !self.less(&v[middle], &v[middle - 1]).await? {
                (
                    self.suffix(v, left_run_end, middle, true).await?,
                    self.prefix(v, middle - 1, right_run_begin, true).await?,
                )
            } else {
                let i = self.suffix(v, left_run_end, middle, false).await?;
                let j = self.prefix(v, middle - 1, right_run_begin, false).await?;
                v[i..j].reverse();
                (i, j)
            };
            if i == begin && j == end {
                return Ok(());
            }
            if middle - i < j - middle {
                self.peeksort(v, buf, begin, i, left_run_end, i.saturating_sub(1))
                    .await?;
                self.peeksort(v, buf, i, end, j, right_run_begin).await?;
                self.merge(v, buf, begin, i, end).await
            } else {
                self.peeksort(v, buf, begin, j, left_run_end, i).await?;
                self.peeksort(v, buf, j, end, j + 1, right_run_begin)
                    .await?;
                self.merge(v, buf, begin, j, end).await
            }
        })
    }

    /// One step of run detection: whether `b` continues a run ending in `a`
    /// (weakly increasing: `!(b < a)`; strictly decreasing: `b < a`).
    async fn continues(&self, a: &Value, b: &Value, weakly_increasing: bool) -> EvalResult<bool> {
        Ok(self.less(b, a).await? != weakly_increasing)
    }

    /// The end of the longest run starting at `begin` within `..end`.
    async fn prefix(
        &self,
        v: &[Value],
        mut begin: usize,
        end: usize,
        weakly_increasing: bool,
    ) -> EvalResult<usize> {
        if begin == end {
            return Ok(begin);
        }
        while begin + 1 != end
            && self
                .continues(&v[begin], &v[begin + 1], weakly_increasing)
                .await?
        {
            begin += 1;
        }
        Ok(begin + 1)
    }

    /// The start of the longest run ending at `end` within `begin..`.
    async fn suffix(
        &self,
        v: &[Value],
        begin: usize,
        mut end: usize,
        weakly_increasing: bool,
    ) -> EvalResult<usize> {
        if begin == end {
            return Ok(end);
        }
        while end - 1 > begin
            && self
                .continues(&v[end - 2], &v[end - 1], weakly_increasing)
                .await?
        {
            end -= 1;
        }
        Ok(end - 1)
    }

    async fn insertion_sort(&self, v: &mut [Value], begin: usize, end: usize) -> EvalResult<()> {
        for current in begin + 1..end {
            let mut at = current;
            while at != begin && self.less(&v[at], &v[at - 1]).await? {
                v.swap(at, at - 1);
                at -= 1;
            }
        }
        Ok(())
    }

    /// Merges the sorted runs `v[begin..middle]` and `v[middle..end]`,
    /// taking from the left run on ties (stability).
    async fn merge(
        &self,
        v: &mut [Value],
        buf: &mut Vec<Value>,
        begin: usize,
        middle: usize,
        end: usize,
    ) -> EvalResult<()> {
        buf.clear();
        buf.extend_from_slice(&v[begin..end]);
        let (left_end, right_end) = (middle - begin, end - begin);
        let (mut l, mut r, mut out) = (0, left_end, begin);
        while l < left_end && r < right_end {
            if !self.less(&buf[r], &buf[l]).await? {
                v[out] = buf[l].clone();
                l += 1;
            } else {
                v[out] = buf[r].clone();
                r += 1;
            }
            out += 1;
        }
        for x in buf[l..left_end].iter().chain(&buf[r..right_end]) {
            v[out] = x.clone();
            out += 1;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// genericClosure

/// The keys `genericClosure` has seen. Sets of only integers or only
/// strings use hashing; anything else falls back to a sorted list searched
/// with Nix's `<`, which reports incomparable keys as C++ Nix does.
enum DoneKeys {
    Empty,
    Ints(FxHashSet<i64>),
    Strings(FxHashSet<NixString>),
    Sorted(Vec<Value>),
}

impl DoneKeys {
    /// Inserts a forced key; false if an equal key was there already.
    async fn insert(&mut self, co: &GenCo, key: Value) -> EvalResult<bool> {
        match (&mut *self, &key) {
            (DoneKeys::Empty, Value::Int(i)) => {
                *self = DoneKeys::Ints(FxHashSet::from_iter([*i]));
                return Ok(true);
            }
            (DoneKeys::Empty, Value::String(s)) => {
                *self = DoneKeys::Strings(FxHashSet::from_iter([s.clone()]));
                return Ok(true);
            }
            (DoneKeys::Ints(set), Value::Int(i)) => return Ok(set.insert(*i)),
            (DoneKeys::Strings(set), Value::String(s)) => return Ok(set.insert(s.clone())),
            _ => {}
        }
        let sorted = match std::mem::replace(self, DoneKeys::Empty) {
            DoneKeys::Empty => Vec::new(),
            DoneKeys::Ints(set) => {
                let mut v: Vec<i64> = set.into_iter().collect();
                v.sort_unstable();
                v.into_iter().map(Value::Int).collect()
            }
            DoneKeys::Strings(set) => {
                let mut v: Vec<NixString> = set.into_iter().collect();
                v.sort_unstable();
                v.into_iter().map(Value::String).collect()
            }
            DoneKeys::Sorted(v) => v,
        };
        *self = DoneKeys::Sorted(sorted);
        let DoneKeys::Sorted(sorted) = self else {
            unreachable!("just set")
        };
        let (mut lo, mut hi) = (0, sorted.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let less = |a: &Value, b: &Value| {
                let (a, b) = (a.clone(), b.clone());
                async move {
                    match scalar_less(&a, &b) {
                        Some(r) => Ok(r),
                        None => nix_less(co, a, b).await,
                    }
                }
            };
            if less(&key, &sorted[mid]).await? {
                hi = mid;
            } else if less(&sorted[mid], &key).await? {
                lo = mid + 1;
            } else {
                return Ok(false);
            }
        }
        sorted.insert(lo, key);
        Ok(true)
    }
}

fn generic_closure(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let Value::Attrs(arg) = &args[0] else {
            return Err(type_error("set", &args[0]));
        };
        let start = arg
            .get(b"startSet")
            .ok_or_else(|| ErrorKind::AttrMissing {
                name: "startSet".into(),
            })?
            .clone();
        let start = force_list(&co, start).await?;
        if start.is_empty() {
            return Ok(Value::List(start));
        }
        let op = arg
            .get(b"operator")
            .ok_or_else(|| ErrorKind::AttrMissing {
                name: "operator".into(),
            })?
            .clone();
        let op = force(&co, op).await;
        expect_function(&op)?;

        let mut work: VecDeque<Value> = start.iter().cloned().collect();
        let mut done = DoneKeys::Empty;
        let mut result = Vec::new();
        while let Some(e) = work.pop_front() {
            let e = force(&co, e).await;
            let Value::Attrs(attrs) = &e else {
                return Err(type_error("set", &e));
            };
            let key = attrs
                .get(b"key")
                .ok_or_else(|| ErrorKind::AttrMissing { name: "key".into() })?;
            let key = force(&co, key.clone()).await;
            if !done.insert(&co, key).await? {
                continue;
            }
            result.push(e.clone());
            match call(&co, op.clone(), e).await {
                Value::List(new) => {
                    for x in new.iter() {
                        work.push_back(force(&co, x.clone()).await);
                    }
                }
                other => return Err(type_error("list", &other)),
            }
        }
        Ok(Value::list(result))
    })
}

#[cfg(test)]
mod tests {
    use crate::eval::testing::{err, ok};

    #[test]
    fn map_is_lazy_and_checks_its_function() {
        assert_eq!(ok("map (x: x * 2) [ 1 2 3 ]"), "[ 2 4 6 ]");
        assert_eq!(ok("map (throw \"no\") [ ]"), "[ ]");
        assert_eq!(ok("builtins.length (map (x: throw \"no\") [ 1 2 ])"), "2");
        assert_eq!(ok("let f = (x: y: x + y) 1; in map f [ 1 2 ]"), "[ 2 3 ]");
        assert!(err("map 1 [ 1 ]").contains("expected a function but found an integer: 1"));
        assert!(
            err("let f = 1 + 0; in builtins.length (map f [ 1 ])").contains("expected a function")
        );
        assert!(err("map 1 \"foo\"").contains("expected a list but found a string"));
    }

    #[test]
    fn filter_fold_and_friends() {
        assert_eq!(ok("builtins.filter (x: x > 1) [ 1 2 3 ]"), "[ 2 3 ]");
        assert!(err("builtins.filter (_: 5) [ 1 ]").contains("expected a Boolean"));
        assert_eq!(ok("builtins.foldl' (a: b: a + b) 0 [ 1 2 3 ]"), "6");
        assert_eq!(
            ok("builtins.foldl' (_: x: x) (throw \"no\") [ 1 42 ]"),
            "42"
        );
        assert!(
            err("builtins.foldl' (_: f: f null) null [ (_: throw \"forced\") (_: 23) ]")
                .contains("forced")
        );
        // The function and the list are checked even for an empty list;
        // the initial accumulator is forced only then.
        assert!(err("builtins.foldl' 1 0 []").contains("expected a function"));
        assert!(err("builtins.foldl' (a: b: a) 0 1").contains("expected a list"));
        assert!(err("builtins.foldl' (a: b: a) (throw \"init\") []").contains("init"));
        assert!(err("builtins.foldl' (a: b: b) 0 [ 1 (throw \"last\") ]").contains("last"));
        // Any callable, partially applied, and a caught error inside.
        assert_eq!(ok("builtins.foldl' builtins.add 0 [ 1 2 ]"), "3");
        assert_eq!(
            ok("builtins.foldl' { __functor = s: a: b: a + b; } 0 [ 1 2 ]"),
            "3"
        );
        assert_eq!(
            ok("let f = builtins.foldl' (a: b: a ++ [ b ]); in f [ 0 ] [ 1 2 ]"),
            "[ 0 1 2 ]"
        );
        assert_eq!(
            ok("(builtins.tryEval (builtins.foldl' (a: b: throw \"x\") 0 [ 1 ])).success"),
            "false"
        );
        assert_eq!(
            ok("builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) 100000)"),
            "4999950000"
        );
        assert_eq!(ok("builtins.genList (x: x * x) 4"), "[ 0 1 4 9 ]");
        assert!(err("builtins.genList false (-3)").contains("cannot create list of size -3"));
        assert!(
            err("builtins.length (builtins.genList (x: x) 9000000000000000000)")
                .contains("out of memory")
        );
        assert_eq!(ok("builtins.concatMap (x: [ x x ]) [ 1 2 ]"), "[ 1 1 2 2 ]");
        assert_eq!(ok("builtins.elem 2 [ 1 2 ]"), "true");
        assert_eq!(ok("builtins.elem (throw \"x\") [ ]"), "false");
        assert_eq!(ok("builtins.elemAt [ 1 2 ] 1"), "2");
        assert!(err("builtins.elemAt [ ] (-1)")
            .contains("'builtins.elemAt' called with index -1 on a list of size 0"));
        assert_eq!(ok("builtins.head [ 1 2 ]"), "1");
        assert_eq!(ok("builtins.tail [ 1 2 ]"), "[ 2 ]");
        assert!(err("builtins.tail [ ]").contains("'builtins.tail' called on an empty list"));
        assert_eq!(
            ok("builtins.partition (x: x > 2) [ 1 3 2 4 ]"),
            "{ right = [ 3 4 ]; wrong = [ 1 2 ]; }"
        );
        assert_eq!(ok("builtins.all (x: x > 0) [ 1 2 ]"), "true");
        assert_eq!(ok("builtins.any (x: x > 1) [ 1 2 ]"), "true");
        assert_eq!(
            ok("builtins.concatLists [ [ 1 ] [ ] [ 2 3 ] ]"),
            "[ 1 2 3 ]"
        );
    }

    #[test]
    fn sort_is_stable_and_matches_cpp_nix() {
        assert_eq!(ok("builtins.sort builtins.lessThan [ 3 1 2 ]"), "[ 1 2 3 ]");
        let big = (0..100)
            .map(|i| format!("{{ k = {}; v = {i}; }}", (i * 37) % 7))
            .collect::<Vec<_>>()
            .join(" ");
        let sorted = ok(&format!(
            "map (x: x.v) (builtins.sort (a: b: a.k < b.k) [ {big} ])"
        ));
        let mut expect: Vec<(i32, i32)> = (0..100).map(|i| ((i * 37) % 7, i)).collect();
        expect.sort_by_key(|p| p.0);
        let expect = expect
            .iter()
            .map(|p| p.1.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(sorted, format!("[ {expect} ]"));
        assert!(err("builtins.sort (_: _: 1) [ 1 2 ]").contains("expected a Boolean"));
        // A comparator that is no strict weak order still yields a permutation.
        let shuffled = ok(
            "let l = builtins.genList (x: x * 7 - (x * 7 / 40) * 40) 40; in \
             builtins.sort (a: b: a != b) l",
        );
        let mut got: Vec<i64> = shuffled
            .trim_matches(|c| c == '[' || c == ']' || c == ' ')
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..40).collect::<Vec<i64>>());
    }

    #[test]
    fn generic_closure() {
        assert_eq!(
            ok(
                "map (x: x.key) (builtins.genericClosure { startSet = [ { key = 1; } ]; \
                operator = x: if x.key < 5 then [ { key = x.key + 1; } { key = 1; } ] else [ ]; })"
            ),
            "[ 1 2 3 4 5 ]"
        );
        assert!(err(
            "builtins.genericClosure { startSet = [ { key = 1; } { key = \"s\"; } ]; \
                     operator = x: [ ]; }"
        )
        .contains("cannot compare"));
        assert!(err(
            "builtins.genericClosure { startSet = [ { nokey = 1; } ]; operator = x: [ ]; }"
        )
        .contains("attribute 'key' missing"));
    }
}
