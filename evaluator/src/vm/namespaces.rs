//! The namespaces of `with`: which of them a name was missing from.
//!
//! A variable that `with` resolves is looked up in each enclosing `with`
//! namespace, innermost first, every time the code runs. nixpkgs' lib
//! opens several at once (lib/modules.nix and lib/types.nix: `with
//! lib.lists; with lib.attrsets; with lib.options; with lib.trivial; with
//! lib.strings;`), so `foldl'` is searched for in four sets that do not have
//! it before the one that does: on the NixOS toplevel 1.8M of the 6.1M
//! attribute lookups were such misses, each a binary search comparing
//! bytes (docs/notes-performance.md, "Session 7: attribute names").
//!
//! Sets are immutable, so a set that did not have a name never will: for
//! each name (by its address) this remembers the sets it was last missing
//! from on its way to the one that had it, and the next resolution skips
//! those of its namespaces that are the very same sets. Identity is
//! checked by address, and the memo holds a weak reference to each set,
//! which keeps the allocation (not the set's contents) from being reused
//! by another set while it is remembered; the name is held too, for the
//! same reason. A stale entry costs a comparison, never a wrong answer.

use crate::value::{NixAttrs, NixString, Value};
use std::cell::RefCell;
use std::rc::{Rc, Weak};

/// Slots of the memo (a power of two): names resolved through more than
/// one namespace that are live at once. A slot shared by two names keeps
/// the last one.
const SLOTS: usize = 1 << 10;

/// The most namespaces remembered per name; deeper ones are searched.
const MAX_MISSED: usize = 8;

/// What is remembered for one name.
struct Entry {
    name: NixString,
    missed: Box<[Weak<NixAttrs>]>,
}

thread_local! {
    static MEMO: RefCell<Vec<Option<Entry>>> = RefCell::new((0..SLOTS).map(|_| None).collect());
}

fn slot(name: &NixString) -> usize {
    // Fibonacci hashing of the address, as the lookup hints do.
    let h = (name.address() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The sets a name is known to be missing from, by namespace position,
/// read once per resolution.
pub(super) struct Missing {
    addresses: [usize; MAX_MISSED],
    len: usize,
}

impl Missing {
    /// What the memo knows of `name`.
    pub(super) fn of(name: &NixString) -> Self {
        let mut m = Missing {
            addresses: [0; MAX_MISSED],
            len: 0,
        };
        MEMO.with(|t| {
            if let Some(e) = &t.borrow()[slot(name)] {
                if e.name.ptr_eq(name) {
                    for (a, w) in m.addresses.iter_mut().zip(e.missed.iter()) {
                        *a = w.as_ptr() as usize;
                    }
                    m.len = e.missed.len();
                }
            }
        });
        m
    }

    /// Whether namespace `i`, the set `set`, is one the name was missing
    /// from. The addresses are those of allocations the memo keeps
    /// reserved, so a live set at one is the set remembered.
    #[inline]
    pub(super) fn has(&self, i: usize, set: &Rc<NixAttrs>) -> bool {
        i < self.len && self.addresses[i] == Rc::as_ptr(set) as usize
    }
}

/// Remembers that `name` is missing from `namespaces`, the evaluated sets
/// searched before the one that had it, innermost first.
pub(super) fn remember(name: &NixString, namespaces: &[Value]) {
    let missed = namespaces
        .iter()
        .take(MAX_MISSED)
        .map(|ns| match ns.shallow() {
            Value::Attrs(a) => Rc::downgrade(&a),
            // Only sets were searched; anything else is remembered as no
            // set at all.
            _ => Weak::new(),
        })
        .collect();
    MEMO.with(|t| {
        t.borrow_mut()[slot(name)] = Some(Entry {
            name: name.clone(),
            missed,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::testing::ok;

    fn set(names: &[&str]) -> Rc<NixAttrs> {
        let entries = names
            .iter()
            .map(|n| (NixString::interned(n.as_bytes()), Value::Int(1)))
            .collect();
        Rc::new(NixAttrs::from_unsorted_first_wins(entries))
    }

    #[test]
    fn only_the_very_sets_remembered_are_known_misses() {
        let name = NixString::interned(b"namespaces-test-y");
        let (a, b) = (set(&["x"]), set(&["z"]));
        remember(&name, &[Value::Attrs(a.clone()), Value::Attrs(b.clone())]);
        let m = Missing::of(&name);
        assert!(m.has(0, &a) && m.has(1, &b));
        // Another set of the same names, or a remembered set at another
        // position, is not known.
        assert!(!m.has(0, &set(&["x"])) && !m.has(1, &a) && !m.has(2, &b));
        // Another name knows nothing.
        assert!(!Missing::of(&NixString::interned(b"namespaces-test-x")).has(0, &a));
        // Freed, a remembered set's allocation is not reused while it is
        // remembered: no new set is taken for it.
        let old = Rc::as_ptr(&a) as usize;
        drop(a);
        let fresh: Vec<_> = (0..64).map(|_| set(&["namespaces-test-y"])).collect();
        let m = Missing::of(&name);
        assert!(fresh
            .iter()
            .all(|s| Rc::as_ptr(s) as usize != old && !m.has(0, s)));
    }

    #[test]
    fn with_finds_what_the_sets_of_each_run_have() {
        // The same chain again and again: `y` is remembered missing from `a`.
        assert_eq!(
            ok("let a = { x = 1; }; b = { y = 2; }; f = n: with b; with a; y + n; in map f [ 1 2 3 ]"),
            "[ 3 4 5 ]"
        );
        // An inner namespace missing the name, then another set in its
        // place that has it, then one without again.
        assert_eq!(
            ok("let f = s: with { y = \"outer\"; }; with s; y; \
                in [ (f { }) (f { y = \"inner\"; }) (f { a = 1; }) (f { y = \"again\"; }) ]"),
            "[ \"outer\" \"inner\" \"outer\" \"again\" ]"
        );
        // Sets made and freed in turn, with and without the name.
        assert_eq!(
            ok(
                "builtins.genList (i: let s = if i / 2 * 2 == i then { a = i; } else { y = i; }; \
                in with { y = \"o\"; }; with s; y) 6"
            ),
            "[ \"o\" 1 \"o\" 3 \"o\" 5 ]"
        );
        // Deeper than the memo remembers, and names missing everywhere.
        assert_eq!(
            ok(
                "with { z = 9; }; with { a1 = 1; }; with { a2 = 2; }; with { a3 = 3; }; \
                with { a4 = 4; }; with { a5 = 5; }; with { a6 = 6; }; with { a7 = 7; }; \
                with { a8 = 8; }; with { a9 = 9; }; [ z z a1 (builtins.tryEval (x: x)).success ]"
            ),
            "[ 9 9 1 true ]"
        );
    }
}
