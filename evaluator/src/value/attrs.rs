//! Attribute sets: immutable, sorted by name, cheap to share.
//!
//! A set is usually *flat*: one array of entries sorted by name. A `//` of
//! a big set and a much smaller one (the nixpkgs fixpoint's layers,
//! `super // overlay self super` over ~12,000 packages; a derivation's
//! attributes extended per output) is instead *layered*: it shares the big
//! side's array (its *base*) and keeps the small side as an *overlay* of
//! entries that either replace a base entry or are new. Lookups look in at
//! most the overlay and the base; ordered traversal merges the two by base
//! index, without comparing names. See docs/evaluator.md, "Layered
//! attribute sets".

use super::string::cmp_bytes;
use super::{NixString, Value};
use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxBuildHasher;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::hash::BuildHasher;
use std::rc::Rc;

/// An attribute set. Entries are sorted by name bytes, so lookups use
/// binary search (small sets are scanned) and ordered traversal (printing,
/// `attrNames`, equality) needs no sorting.
#[derive(Clone, Default)]
pub struct NixAttrs {
    repr: Repr,
}

/// How a set holds its entries.
#[derive(Clone)]
enum Repr {
    /// All entries in one table.
    Flat(Table),
    /// A shared flat base with a small overlay (boxed, so a flat set, by far
    /// the most common, stays 32 bytes).
    Layered(Box<Layer>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Flat(Table::default())
    }
}

/// Entries sorted by name, with where each was defined.
#[derive(Clone, Default)]
struct Table {
    entries: Box<[(NixString, Value)]>,
    /// Where each attribute was defined (global source offsets, 0 = unknown),
    /// parallel to `entries`; absent for sets built by builtins. Sets from
    /// literals share their compiled table, so this costs no allocation.
    positions: Option<Rc<[u32]>>,
}

/// A layered set: `base` with `over` on top of it.
#[derive(Clone)]
struct Layer {
    /// The shared big side; always a flat set.
    base: Rc<NixAttrs>,
    /// The entries not taken from the base, sorted by name, never empty.
    over: Table,
    /// For each entry of `over`, the index of the base entry it replaces
    /// (with [`REPLACES`]) or before which it goes (the base's length for
    /// names after all of the base's). Nondecreasing, so traversal merges
    /// by index.
    at: Box<[u32]>,
    /// A bit per base entry, set if `over` replaces it (empty if none is):
    /// a lookup hint pointing into the base is checked against it.
    shadowed: Box<[u64]>,
    /// Number of attributes: the base's, plus the overlay's, less the
    /// replaced ones.
    len: usize,
}

/// The flag in [`Layer::at`] marking an overlay entry that replaces the
/// base entry of the same name.
const REPLACES: u32 = 1 << 31;

/// `//` layers the smaller side on the bigger one when it is at most this
/// many times smaller (1/4 against 1/8 saves 1.5% of the peak on the
/// nixpkgs workloads, docs/notes-performance.md, "Session 6").
const LAYER_RATIO: usize = 4;

/// A layered set's overlay may grow to this many times smaller than its
/// base; past that the set is flattened. Derivation sets are extended a
/// few names at a time (by `derivation`, per output, by
/// `extendDerivation`): at 1/8 most of them were flattened once per output.
const FLATTEN_RATIO: usize = 2;

/// Sets smaller than this are not layered on: copying them costs less than
/// the layer's own tables and the slower lookups.
const LAYER_MIN: usize = 32;

/// An overlay never gets bigger than this (the set is flattened instead),
/// which bounds the binary search a lookup does in it and the copy that
/// each `//` into a layered set makes of it.
const OVERLAY_MAX: usize = 4096;

// A flat set is as small as before layering existed.
const _: () = assert!(std::mem::size_of::<NixAttrs>() == 32);
/// Merged sets at least this big share equal position tables (smaller
/// ones are most sets, and their tables cost less than the sharing).
const SHARE_POSITIONS_MIN: usize = 32;

/// How many position tables [`shared_positions`] keeps before it first
/// forgets those that no set uses any more (then again each time the
/// table has doubled, so forgetting costs a constant per table made).
const SHARED_POSITIONS_PRUNE: usize = 64;

thread_local! {
    /// The tables, and the size at which to forget unused ones next.
    static SHARED_POSITIONS: RefCell<(HashTable<Rc<[u32]>>, usize)> =
        const { RefCell::new((HashTable::new(), SHARED_POSITIONS_PRUNE)) };
}

/// The position table of a merged set, shared with an equal one made
/// before if the set is big.
///
/// The nixpkgs fixpoint merges its ~12,000-attribute layers with `//` once
/// per layer in every instantiation of the package set (each stdenv
/// bootstrap stage, `pkgsi686Linux`, ...): hundreds of copies in a big
/// evaluation, whose entries differ (their values are each instantiation's
/// own) but whose positions are the same, as the same files define the same
/// names. Likewise a derivation's attributes, merged once per output with
/// the same names. Hashing a table costs less than the merge that made it.
fn shared_positions(pos: Vec<u32>) -> Rc<[u32]> {
    if pos.len() < SHARE_POSITIONS_MIN {
        return pos.into();
    }
    let hash = FxBuildHasher.hash_one(&pos[..]);
    SHARED_POSITIONS.with(|t| {
        let mut guard = t.borrow_mut();
        let (t, next_prune) = &mut *guard;
        let rehash = |p: &Rc<[u32]>| FxBuildHasher.hash_one(&p[..]);
        if let Some(p) = t.find(hash, |p| p[..] == pos[..]) {
            return p.clone();
        }
        if t.len() >= *next_prune {
            t.retain(|p| Rc::strong_count(p) > 1);
            *next_prune = SHARED_POSITIONS_PRUNE.max(2 * t.len());
        }
        let p: Rc<[u32]> = pos.into();
        match t.entry(hash, |q| q[..] == p[..], rehash) {
            Entry::Occupied(e) => e.get().clone(),
            Entry::Vacant(e) => {
                e.insert(p.clone());
                p
            }
        }
    })
}

/// Sets this small are searched linearly: faster than binary search.
const LINEAR_LIMIT: usize = 8;

/// How many lookup hints [`LOOKUP_HINTS`] holds (a power of two).
const LOOKUP_HINT_SLOTS: usize = 1 << 12;

thread_local! {
    /// For each name (by the address of its string, hashed into a slot),
    /// the index at which it was last found in a set too big to scan.
    ///
    /// The same name is mostly looked up in sets of the same shape: `lib`
    /// and its functions, the nixpkgs fixpoint's many copies of the package
    /// set (the same names, so the same indices), a module's `config`. A
    /// guess is checked by comparing the key there with the name's pointer,
    /// so a wrong one (another set, a slot shared by two names, a freed
    /// string's address reused) only costs that one comparison: a key that
    /// is the name's own allocation is the name.
    static LOOKUP_HINTS: [Cell<u32>; LOOKUP_HINT_SLOTS] =
        const { [const { Cell::new(0) }; LOOKUP_HINT_SLOTS] };
}

/// The slot of [`LOOKUP_HINTS`] for a name.
fn hint_slot(name: &NixString) -> usize {
    // Fibonacci hashing: the top bits of the product mix all the
    // address's bits, whose low ones are the allocator's alignment.
    let h = (name.address() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> (64 - LOOKUP_HINT_SLOTS.trailing_zeros())) as usize
}

/// Sets this small are scanned for a key that is the looked-up name's own
/// allocation before they are searched by bytes (`NixAttrs::find_key`);
/// bigger ones try the name's [`LOOKUP_HINTS`] first.
const POINTER_SCAN_LIMIT: usize = 8;

/// `//` merges by binary search when one side is at least this many times
/// smaller than the other (`NixAttrs::update`).
const GALLOP_RATIO: usize = 8;

/// One operand of a merge: its entries and their positions, if tracked.
#[derive(Clone, Copy)]
struct Side<'a> {
    entries: &'a [(NixString, Value)],
    positions: Option<&'a [u32]>,
}

/// The entries (and positions, if either operand has them) of a merged set
/// being built.
struct Merge {
    out: Vec<(NixString, Value)>,
    pos: Option<Vec<u32>>,
}

impl Merge {
    fn new(capacity: usize, track: bool) -> Self {
        Merge {
            out: Vec::with_capacity(capacity),
            pos: track.then(|| Vec::with_capacity(capacity)),
        }
    }

    /// Appends the entries `range` of `side`.
    fn copy(&mut self, side: Side<'_>, range: std::ops::Range<usize>) {
        if let Some(pos) = &mut self.pos {
            match side.positions {
                Some(p) => pos.extend_from_slice(&p[range.clone()]),
                None => pos.resize(pos.len() + range.len(), 0),
            }
        }
        self.out.extend_from_slice(&side.entries[range]);
    }

    /// The classic merge, for operands of comparable size. Consecutive
    /// entries taken from one side are copied as one run: a copy per entry
    /// cost more than the comparisons (each a call that extends two
    /// vectors).
    fn linear(&mut self, a: Side<'_>, b: Side<'_>) {
        let (mut i, mut j) = (0, 0);
        // The run not copied yet: from `a` (else `b`), starting at `start`
        // and ending at `i` (or `j`).
        let (mut from_a, mut start) = (true, 0);
        while i < a.entries.len() && j < b.entries.len() {
            match a.entries[i].0.cmp(&b.entries[j].0) {
                std::cmp::Ordering::Less => {
                    if !from_a {
                        self.copy(b, start..j);
                        (from_a, start) = (true, i);
                    }
                    i += 1;
                }
                // On equal names the right operand's entry wins and the
                // left one's is skipped.
                order => {
                    if from_a {
                        self.copy(a, start..i);
                        (from_a, start) = (false, j);
                    }
                    i += (order == std::cmp::Ordering::Equal) as usize;
                    j += 1;
                }
            }
        }
        if from_a {
            self.copy(a, start..a.entries.len());
            self.copy(b, j..b.entries.len());
        } else {
            self.copy(b, start..b.entries.len());
            self.copy(a, i..a.entries.len());
        }
    }

    /// Merges a small side into a big one: each small entry's place in the
    /// big side is found by binary search from where the last one went, and
    /// the big entries before it are copied as a run. On equal names the
    /// right operand of `//` wins: the small side if `small_wins`.
    fn gallop(&mut self, big: Side<'_>, small: Side<'_>, small_wins: bool) {
        let mut i = 0;
        for (j, (name, _)) in small.entries.iter().enumerate() {
            match big.entries[i..].binary_search_by(|(k, _)| k.cmp(name)) {
                Ok(p) if small_wins => {
                    self.copy(big, i..i + p);
                    self.copy(small, j..j + 1);
                    i += p + 1;
                }
                Ok(p) => {
                    self.copy(big, i..i + p + 1);
                    i += p + 1;
                }
                Err(p) => {
                    self.copy(big, i..i + p);
                    self.copy(small, j..j + 1);
                    i += p;
                }
            }
        }
        self.copy(big, i..big.entries.len());
    }
}

/// The flag of a [`LOOKUP_HINTS`] entry that points into a layered set's
/// overlay rather than into a base or flat set (an index no flat set has,
/// so a flat set takes such a hint for a miss).
const OVER_HINT: u32 = 1 << 31;

fn get_hint(slot: usize) -> u32 {
    LOOKUP_HINTS.with(|h| h[slot].get())
}

fn set_hint(slot: usize, hint: u32) {
    LOOKUP_HINTS.with(|h| h[slot].set(hint));
}

impl Drop for NixAttrs {
    fn drop(&mut self) {
        match &mut self.repr {
            Repr::Flat(t) if t.entries.is_empty() => {}
            Repr::Flat(t) => super::teardown::dispose(std::mem::take(&mut t.entries)),
            Repr::Layered(_) => super::teardown::dispose(std::mem::take(&mut self.repr)),
        }
    }
}

impl Table {
    fn side(&self) -> Side<'_> {
        Side {
            entries: &self.entries,
            positions: self.positions.as_deref(),
        }
    }

    /// The definition offset of entry `i`, if known.
    fn position_at(&self, i: usize) -> Option<u32> {
        self.positions
            .as_ref()
            .and_then(|p| p.get(i).copied())
            .filter(|p| *p != 0)
    }

    fn position_index(&self, name: &[u8]) -> Result<usize, usize> {
        if self.entries.len() <= LINEAR_LIMIT {
            for (i, (k, _)) in self.entries.iter().enumerate() {
                match cmp_bytes(k.as_bytes(), name) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal => return Ok(i),
                    std::cmp::Ordering::Greater => return Err(i),
                }
            }
            return Err(self.entries.len());
        }
        self.entries
            .binary_search_by(|(k, _)| cmp_bytes(k.as_bytes(), name))
    }

    /// Index of an attribute, for lookups: small sets compare by equality
    /// (length first, so most names are rejected without touching bytes).
    fn find(&self, name: &[u8]) -> Option<usize> {
        if self.entries.len() <= LINEAR_LIMIT {
            return self.entries.iter().position(|(k, _)| k.as_bytes() == name);
        }
        self.entries
            .binary_search_by(|(k, _)| cmp_bytes(k.as_bytes(), name))
            .ok()
    }

    /// Index of an attribute named by a [`NixString`], for lookups whose
    /// name is usually the very allocation the set's key is: names in
    /// compiled code are interned per thread (`NixString::interned`), and
    /// sets made by builtins keep the keys they were given, so `pkgs.hello`
    /// or `lib.mkIf` finds its key by comparing pointers in the contiguous
    /// entry array, without loading either string. Sets up to
    /// [`POINTER_SCAN_LIMIT`] are scanned for the pointer first and by bytes
    /// only if that fails (a name made at run time, or a missing one);
    /// bigger ones try the index where the name was last found (its
    /// [`LOOKUP_HINTS`] slot), then binary search with the pointer compared
    /// before the bytes at each probe.
    #[inline]
    fn find_key(&self, name: &NixString) -> Option<usize> {
        if self.entries.len() <= POINTER_SCAN_LIMIT {
            return self.scan_key(name);
        }
        let slot = hint_slot(name);
        let guess = get_hint(slot) as usize;
        if self.entries.get(guess).is_some_and(|(k, _)| k.ptr_eq(name)) {
            return Some(guess);
        }
        let found = self.binary_search_key(name);
        if let Some(i) = found {
            set_hint(slot, i as u32);
        }
        found
    }

    /// [`Table::find_key`] without the hints.
    fn search_key(&self, name: &NixString) -> Option<usize> {
        if self.entries.len() <= POINTER_SCAN_LIMIT {
            return self.scan_key(name);
        }
        self.binary_search_key(name)
    }

    /// A small table's scan for the name's pointer, then its bytes.
    #[inline]
    fn scan_key(&self, name: &NixString) -> Option<usize> {
        if let Some(i) = self.entries.iter().position(|(k, _)| k.ptr_eq(name)) {
            return Some(i);
        }
        self.find(name.as_bytes())
    }

    /// Binary search comparing the name's pointer before its bytes at
    /// each probe.
    #[inline]
    fn binary_search_key(&self, name: &NixString) -> Option<usize> {
        let bytes = name.as_bytes();
        self.entries
            .binary_search_by(|(k, _)| {
                if k.ptr_eq(name) {
                    std::cmp::Ordering::Equal
                } else {
                    cmp_bytes(k.as_bytes(), bytes)
                }
            })
            .ok()
    }

    /// Inserts an entry at index `i`. Entries are a boxed slice, exactly as
    /// long as the set (sets are built whole far more often than grown one
    /// dynamic attribute at a time, and a vector's capacity costs 8 bytes
    /// in every set), so this reallocates.
    fn insert_entry(&mut self, i: usize, entry: (NixString, Value), pos: u32) {
        let mut v = std::mem::take(&mut self.entries).into_vec();
        v.insert(i, entry);
        self.entries = v.into_boxed_slice();
        if self.positions.is_none() && pos != 0 {
            self.positions = Some(vec![0; self.entries.len() - 1].into());
        }
        if let Some(p) = &self.positions {
            let mut v = p.to_vec();
            v.insert(i, pos);
            self.positions = Some(v.into());
        }
    }
}

/// A layered set being built: the overlay's columns.
struct Overlay {
    entries: Vec<(NixString, Value)>,
    positions: Option<Vec<u32>>,
    at: Vec<u32>,
}

impl Overlay {
    fn push(&mut self, entry: &(NixString, Value), pos: Option<u32>, at: u32) {
        self.entries.push(entry.clone());
        if let Some(p) = &mut self.positions {
            p.push(pos.unwrap_or(0));
        }
        self.at.push(at);
    }
}

impl Layer {
    /// The base's table.
    fn base(&self) -> &Table {
        match &self.base.repr {
            Repr::Flat(t) => t,
            Repr::Layered(_) => unreachable!("a layer's base is always flat"),
        }
    }

    /// Whether the overlay replaces base entry `i`.
    fn is_shadowed(&self, i: usize) -> bool {
        self.shadowed
            .get(i / 64)
            .is_some_and(|w| (w >> (i % 64)) & 1 != 0)
    }

    /// Where an attribute is, by name bytes: the overlay first, as its
    /// entries win over the base's.
    fn find(&self, name: &[u8]) -> Option<(&Table, usize)> {
        if let Some(i) = self.over.find(name) {
            return Some((&self.over, i));
        }
        let base = self.base();
        base.find(name).map(|i| (base, i))
    }

    /// Where an attribute is, by a name that is usually the key's own
    /// allocation (see [`Table::find_key`]). The name's hint may point into
    /// the overlay (flagged [`OVER_HINT`]) or into the base, where the
    /// entry found counts only if the overlay does not replace it: the
    /// fixpoint's final package set is looked up millions of times, mostly
    /// for base entries, and the hint spares both binary searches.
    fn find_key(&self, name: &NixString) -> Option<(&Table, usize)> {
        let base = self.base();
        let slot = hint_slot(name);
        let guess = get_hint(slot);
        if guess & OVER_HINT != 0 {
            let i = (guess & !OVER_HINT) as usize;
            if self
                .over
                .entries
                .get(i)
                .is_some_and(|(k, _)| k.ptr_eq(name))
            {
                return Some((&self.over, i));
            }
        } else {
            let i = guess as usize;
            if base.entries.get(i).is_some_and(|(k, _)| k.ptr_eq(name)) && !self.is_shadowed(i) {
                return Some((base, i));
            }
        }
        if let Some(i) = self.over.search_key(name) {
            set_hint(slot, OVER_HINT | i as u32);
            return Some((&self.over, i));
        }
        let i = base.search_key(name)?;
        set_hint(slot, i as u32);
        Some((base, i))
    }

    /// `big // small` (or `small // big` if `!small_wins`), where `big` is
    /// at least [`LAYER_RATIO`] times bigger: the overlay of `big` (none if
    /// it is flat) merged with `small`, on `big`'s base. Each name of
    /// `small` that the overlay does not have is found in the base by
    /// binary search from where the previous one was.
    fn merge(big: &Rc<NixAttrs>, small: &NixAttrs, small_wins: bool) -> Rc<NixAttrs> {
        let (base_rc, cur) = match &big.repr {
            Repr::Flat(_) => (big, None),
            Repr::Layered(l) => (&l.base, Some(&**l)),
        };
        let base = match &base_rc.repr {
            Repr::Flat(t) => t,
            Repr::Layered(_) => unreachable!("a layer's base is always flat"),
        };
        let small = small.flat_table();
        let empty = Table::default();
        let (over, over_at) = match cur {
            Some(l) => (&l.over, &l.at[..]),
            None => (&empty, &[][..]),
        };
        let (o, s) = (&over.entries[..], &small.entries[..]);
        let track = over.positions.is_some() || small.positions.is_some();
        let mut out = Overlay {
            entries: Vec::with_capacity(o.len() + s.len()),
            positions: track.then(|| Vec::with_capacity(o.len() + s.len())),
            at: Vec::with_capacity(o.len() + s.len()),
        };
        let mut shadowed = cur.map_or_else(Vec::new, |l| l.shadowed.to_vec());
        let (mut i, mut j, mut from) = (0, 0, 0);
        let mut added = 0;
        while i < o.len() || j < s.len() {
            let order = match (o.get(i), s.get(j)) {
                (Some(x), Some(y)) => x.0.cmp(&y.0),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    out.push(&o[i], over.position_at(i), over_at[i]);
                    i += 1;
                }
                std::cmp::Ordering::Equal => {
                    if small_wins {
                        out.push(&s[j], small.position_at(j), over_at[i]);
                        added += 1;
                    } else {
                        out.push(&o[i], over.position_at(i), over_at[i]);
                    }
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Greater => {
                    let name = &s[j].0;
                    match base.entries[from..].binary_search_by(|(k, _)| k.cmp(name)) {
                        Ok(p) => {
                            from += p;
                            if small_wins {
                                out.push(&s[j], small.position_at(j), REPLACES | from as u32);
                                if shadowed.is_empty() {
                                    shadowed = vec![0; base.entries.len().div_ceil(64)];
                                }
                                shadowed[from / 64] |= 1 << (from % 64);
                                added += 1;
                            }
                            from += 1;
                        }
                        Err(p) => {
                            from += p;
                            out.push(&s[j], small.position_at(j), from as u32);
                            added += 1;
                        }
                    }
                    j += 1;
                }
            }
        }
        if added == 0 {
            // Nothing of `small` shows through: the result is `big`.
            return big.clone();
        }
        let over = Table {
            entries: out.entries.into_boxed_slice(),
            positions: out.positions.map(shared_positions),
        };
        if over.entries.len() * FLATTEN_RATIO > base.entries.len()
            || over.entries.len() > OVERLAY_MAX
        {
            return Rc::new(NixAttrs {
                repr: Repr::Flat(flatten(base, &over, &out.at)),
            });
        }
        let replaced = out.at.iter().filter(|a| *a & REPLACES != 0).count();
        Rc::new(NixAttrs {
            repr: Repr::Layered(Box::new(Layer {
                len: base.entries.len() + over.entries.len() - replaced,
                base: base_rc.clone(),
                over,
                at: out.at.into_boxed_slice(),
                shadowed: shadowed.into_boxed_slice(),
            })),
        })
    }
}

/// The flat table of `base` with `over` laid on it as `at` says.
fn flatten(base: &Table, over: &Table, at: &[u32]) -> Table {
    let replaced = at.iter().filter(|a| *a & REPLACES != 0).count();
    let len = base.entries.len() + over.entries.len() - replaced;
    let track = base.positions.is_some() || over.positions.is_some();
    let mut m = Merge::new(len, track);
    let (b, o) = (base.side(), over.side());
    let mut i = 0;
    for (j, a) in at.iter().enumerate() {
        let to = (a & !REPLACES) as usize;
        m.copy(b, i..to);
        m.copy(o, j..j + 1);
        i = if a & REPLACES != 0 { to + 1 } else { to };
    }
    m.copy(b, i..base.entries.len());
    Table {
        entries: m.out.into_boxed_slice(),
        positions: m.pos.map(shared_positions),
    }
}

impl NixAttrs {
    /// The empty set.
    pub fn empty() -> Rc<NixAttrs> {
        thread_local!(static EMPTY: Rc<NixAttrs> = Rc::new(NixAttrs::default()));
        EMPTY.with(|e| e.clone())
    }

    fn flat(table: Table) -> Self {
        NixAttrs {
            repr: Repr::Flat(table),
        }
    }

    /// Builds a set from entries already sorted by name and free of duplicates.
    pub fn from_sorted(entries: Vec<(NixString, Value)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        NixAttrs::flat(Table {
            entries: entries.into_boxed_slice(),
            positions: None,
        })
    }

    /// Like [`NixAttrs::from_sorted`], with the definition offset of each entry.
    pub fn from_sorted_with_positions(
        entries: Vec<(NixString, Value)>,
        positions: Rc<[u32]>,
    ) -> Self {
        debug_assert_eq!(entries.len(), positions.len());
        NixAttrs::flat(Table {
            entries: entries.into_boxed_slice(),
            positions: Some(positions),
        })
    }

    /// Builds a set from unsorted entries; on duplicates the first wins
    /// (the `listToAttrs` rule).
    pub fn from_unsorted_first_wins(mut entries: Vec<(NixString, Value)>) -> Self {
        entries.sort_by(|a, b| a.0.cmp(&b.0)); // stable: first occurrence stays first
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        NixAttrs::flat(Table {
            entries: entries.into_boxed_slice(),
            positions: None,
        })
    }

    /// The table and index of an attribute, by name bytes.
    fn locate(&self, name: &[u8]) -> Option<(&Table, usize)> {
        match &self.repr {
            Repr::Flat(t) => t.find(name).map(|i| (t, i)),
            Repr::Layered(l) => l.find(name),
        }
    }

    /// The table and index of an attribute, by a name held as a
    /// [`NixString`] (see [`Table::find_key`]).
    #[inline]
    fn locate_key(&self, name: &NixString) -> Option<(&Table, usize)> {
        match &self.repr {
            Repr::Flat(t) => t.find_key(name).map(|i| (t, i)),
            Repr::Layered(l) => l.find_key(name),
        }
    }

    /// The source offset where an attribute was defined, if known.
    pub fn position(&self, name: &[u8]) -> Option<u32> {
        let (t, i) = self.locate(name)?;
        t.position_at(i)
    }

    /// [`NixAttrs::position`] by a name held as a [`NixString`], faster
    /// when it is the key's own allocation (a key of this set or of one
    /// made from it).
    pub fn position_key(&self, name: &NixString) -> Option<u32> {
        let (t, i) = self.locate_key(name)?;
        t.position_at(i)
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Flat(t) => t.entries.len(),
            Repr::Layered(l) => l.len,
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Looks up an attribute by a name held as a [`NixString`]: faster than
    /// [`NixAttrs::get`] when the name is shared with the set's key (see
    /// `Table::find_key`), as the names of compiled code and of sets' own
    /// keys are.
    pub fn get_key(&self, name: &NixString) -> Option<&Value> {
        self.locate_key(name).map(|(t, i)| &t.entries[i].1)
    }

    /// Whether an attribute exists, by a name held as a [`NixString`].
    pub fn contains_key(&self, name: &NixString) -> bool {
        self.locate_key(name).is_some()
    }

    /// Looks up an attribute.
    pub fn get(&self, name: &[u8]) -> Option<&Value> {
        self.locate(name).map(|(t, i)| &t.entries[i].1)
    }

    /// Looks up an attribute by `&str`.
    pub fn get_str(&self, name: &str) -> Option<&Value> {
        self.get(name.as_bytes())
    }

    /// Whether an attribute exists.
    pub fn contains(&self, name: &[u8]) -> bool {
        self.locate(name).is_some()
    }

    /// The set's table, for changing it in place: a layered set is made
    /// flat first (sets are changed in place only while a literal with
    /// dynamic names is built, and those are flat).
    fn table_mut(&mut self) -> &mut Table {
        if let Repr::Layered(l) = &self.repr {
            self.repr = Repr::Flat(flatten(l.base(), &l.over, &l.at));
        }
        match &mut self.repr {
            Repr::Flat(t) => t,
            Repr::Layered(_) => unreachable!("just made flat"),
        }
    }

    /// Inserts or replaces an attribute (copy-on-write callers use `Rc::make_mut`).
    pub fn insert(&mut self, name: NixString, value: Value) {
        let t = self.table_mut();
        match t.position_index(name.as_bytes()) {
            Ok(i) => t.entries[i].1 = value,
            Err(i) => t.insert_entry(i, (name, value), 0),
        }
    }

    /// Inserts only if absent; returns false if the name existed.
    pub fn insert_new(&mut self, name: NixString, value: Value) -> bool {
        self.insert_new_at(name, value, 0)
    }

    /// Like [`NixAttrs::insert_new`], recording where the attribute was defined.
    pub fn insert_new_at(&mut self, name: NixString, value: Value, pos: u32) -> bool {
        let t = self.table_mut();
        match t.position_index(name.as_bytes()) {
            Ok(_) => false,
            Err(i) => {
                t.insert_entry(i, (name, value), pos);
                true
            }
        }
    }

    /// Entries in name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(match &self.repr {
            Repr::Flat(t) => IterRepr::Flat(t.entries.iter()),
            Repr::Layered(l) => IterRepr::Layered(LayerIter {
                base: &l.base().entries,
                over: &l.over.entries,
                at: &l.at,
                b: 0,
                b_end: l.base().entries.len(),
                o: 0,
                o_end: l.over.entries.len(),
                remaining: l.len,
            }),
        })
    }

    /// Names in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &NixString> + ExactSizeIterator {
        self.iter().map(|(k, _)| k)
    }

    /// Values in name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.iter().map(|(_, v)| v)
    }

    /// `self // other`.
    ///
    /// When one side is at most [`LAYER_RATIO`] times smaller than the
    /// other and that one has at least [`LAYER_MIN`] attributes, the
    /// result is layered on it (`Layer::merge`): it costs the small side
    /// and the big side's overlay, not a copy of the big side. Otherwise
    /// it is a merge of two sorted arrays; when one side is much smaller
    /// (small sets), each of its names is found in the other by binary
    /// search and the runs between them are copied without comparing a
    /// name: `m log n` comparisons instead of `n + m`.
    pub fn update(self: &Rc<Self>, other: &Rc<Self>) -> Rc<Self> {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let (la, lb) = (self.len(), other.len());
        if lb * LAYER_RATIO <= la && la >= LAYER_MIN {
            return Layer::merge(self, other, true);
        }
        if la * LAYER_RATIO <= lb && lb >= LAYER_MIN {
            return Layer::merge(other, self, false);
        }
        let (a, b) = (self.flat_table(), other.flat_table());
        let (a, b) = (a.side(), b.side());
        let track = a.positions.is_some() || b.positions.is_some();
        let mut m = Merge::new(a.entries.len() + b.entries.len(), track);
        if b.entries.len() * GALLOP_RATIO <= a.entries.len() {
            m.gallop(a, b, true);
        } else if a.entries.len() * GALLOP_RATIO <= b.entries.len() {
            m.gallop(b, a, false);
        } else {
            m.linear(a, b);
        }
        Rc::new(NixAttrs::flat(Table {
            entries: m.out.into_boxed_slice(),
            positions: m.pos.map(shared_positions),
        }))
    }

    /// The set of the entries whose names `keep` accepts, in order, each
    /// with its definition position (`removeAttrs`, `intersectAttrs`): one
    /// pass that copies runs of kept entries, where finding each kept
    /// name's position again would be a lookup per entry.
    pub fn filtered(&self, mut keep: impl FnMut(&NixString) -> bool) -> NixAttrs {
        let t = self.flat_table();
        let side = t.side();
        let mut m = Merge::new(t.entries.len(), side.positions.is_some());
        let mut run = None;
        for (i, (k, _)) in t.entries.iter().enumerate() {
            match (keep(k), run) {
                (true, None) => run = Some(i),
                (false, Some(start)) => {
                    m.copy(side, start..i);
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(start) = run {
            m.copy(side, start..t.entries.len());
        }
        // Positions all unknown are none (as a builtin's set has).
        let pos = m.pos.filter(|p| p.iter().any(|p| *p != 0));
        NixAttrs::flat(Table {
            entries: m.out.into_boxed_slice(),
            positions: pos.map(shared_positions),
        })
    }

    /// The set as one table: its own, or a flattened copy of a layered one.
    fn flat_table(&self) -> Cow<'_, Table> {
        match &self.repr {
            Repr::Flat(t) => Cow::Borrowed(t),
            Repr::Layered(l) => Cow::Owned(flatten(l.base(), &l.over, &l.at)),
        }
    }

    /// Consumes the set into its sorted entries.
    pub fn into_entries(mut self) -> Vec<(NixString, Value)> {
        match &mut self.repr {
            Repr::Flat(t) => std::mem::take(&mut t.entries).into_vec(),
            Repr::Layered(_) => self.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }

    /// Whether this set is a derivation (`type = "derivation"`, already forced).
    pub fn is_derivation(&self) -> bool {
        match self.get(b"type") {
            Some(Value::String(s)) => s.as_bytes() == b"derivation",
            Some(Value::Thunk(t)) => {
                matches!(t.value(), Some(Value::String(s)) if s.as_bytes() == b"derivation")
            }
            _ => false,
        }
    }
}

/// The entries of a set in name order ([`NixAttrs::iter`]).
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Flat(std::slice::Iter<'a, (NixString, Value)>),
    Layered(LayerIter<'a>),
}

/// A layered set's entries in name order: the base's and the overlay's
/// merged by [`Layer::at`], from both ends. `b..b_end` and `o..o_end` are
/// what is left of the base and the overlay, `remaining` the number of
/// entries they make.
struct LayerIter<'a> {
    base: &'a [(NixString, Value)],
    over: &'a [(NixString, Value)],
    at: &'a [u32],
    b: usize,
    b_end: usize,
    o: usize,
    o_end: usize,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a NixString, &'a Value);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (k, v) = match &mut self.0 {
            IterRepr::Flat(it) => it.next()?,
            IterRepr::Layered(it) => it.next()?,
        };
        Some((k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len();
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let (k, v) = match &mut self.0 {
            IterRepr::Flat(it) => it.next_back()?,
            IterRepr::Layered(it) => it.next_back()?,
        };
        Some((k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {
    fn len(&self) -> usize {
        match &self.0 {
            IterRepr::Flat(it) => it.len(),
            IterRepr::Layered(it) => it.remaining,
        }
    }
}

impl<'a> LayerIter<'a> {
    fn next(&mut self) -> Option<&'a (NixString, Value)> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // An overlay entry goes before the base entry it is placed at, or
        // instead of it.
        if self.o < self.o_end {
            let at = self.at[self.o];
            if (at & !REPLACES) as usize == self.b {
                self.b += (at & REPLACES != 0) as usize;
                self.o += 1;
                return Some(&self.over[self.o - 1]);
            }
        }
        self.b += 1;
        Some(&self.base[self.b - 1])
    }

    fn next_back(&mut self) -> Option<&'a (NixString, Value)> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // The last overlay entry comes last if it goes after the last base
        // entry left, or replaces it.
        if self.o < self.o_end {
            let at = self.at[self.o_end - 1];
            let to = (at & !REPLACES) as usize;
            if to >= self.b_end || (to + 1 == self.b_end && at & REPLACES != 0) {
                self.b_end -= (at & REPLACES != 0) as usize;
                self.o_end -= 1;
                return Some(&self.over[self.o_end]);
            }
        }
        self.b_end -= 1;
        Some(&self.base[self.b_end])
    }
}

#[cfg(test)]
impl NixAttrs {
    /// The position table of a flat set.
    fn flat_positions(&self) -> Option<&Rc<[u32]>> {
        match &self.repr {
            Repr::Flat(t) => t.positions.as_ref(),
            Repr::Layered(_) => None,
        }
    }

    fn is_layered(&self) -> bool {
        matches!(self.repr, Repr::Layered(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A set of `n` attributes `a0000`... with positions `base + i`.
    fn set(n: usize, base: u32, value: i64) -> Rc<NixAttrs> {
        let entries = (0..n)
            .map(|i| (NixString::from(format!("a{i:04}")), Value::Int(value)))
            .collect();
        let positions: Rc<[u32]> = (0..n as u32).map(|i| base + i).collect();
        Rc::new(NixAttrs::from_sorted_with_positions(entries, positions))
    }

    #[test]
    fn a_flat_set_is_four_words() {
        assert_eq!(std::mem::size_of::<NixAttrs>(), 32);
    }

    #[test]
    fn big_merges_with_equal_positions_share_them() {
        // Sides of comparable size: a flat merge.
        let (a, b) = (set(300, 1000, 1), set(100, 5000, 2));
        let one = a.update(&b);
        // Another instantiation: other values, the same definitions.
        let two = set(300, 1000, 3).update(&set(100, 5000, 4));
        assert!(!one.is_layered() && !two.is_layered());
        let (p1, p2) = (one.flat_positions(), two.flat_positions());
        assert!(Rc::ptr_eq(p1.unwrap(), p2.unwrap()));
        assert_eq!(one.position(b"a0005"), Some(5000 + 5));
        assert_eq!(one.position(b"a0200"), Some(1200));
        assert!(matches!(two.get(b"a0200"), Some(Value::Int(3))));
        // Other positions are not mixed up with them.
        let three = set(300, 2000, 1).update(&b);
        assert!(!Rc::ptr_eq(p1.unwrap(), three.flat_positions().unwrap()));
        assert_eq!(three.position(b"a0200"), Some(2200));
    }

    #[test]
    fn a_small_side_is_layered_on_a_big_one_and_shares_it() {
        let big = set(300, 1000, 1);
        let l = big.update(&set(10, 5000, 2));
        let r = set(10, 5000, 2).update(&big);
        assert!(l.is_layered());
        let Repr::Layered(layer) = &l.repr else {
            unreachable!()
        };
        assert!(Rc::ptr_eq(&layer.base, &big));
        // `small // big` with no name of its own: the big side's entries
        // win, so the result is the big side itself.
        assert!(Rc::ptr_eq(&r, &big));
        assert!(matches!(r.get(b"a0005"), Some(Value::Int(1))));
        assert_eq!(r.position(b"a0005"), Some(1005));
        assert!(matches!(l.get(b"a0005"), Some(Value::Int(2))));
        assert_eq!(l.position(b"a0005"), Some(5005));
        assert_eq!(l.position(b"a0200"), Some(1200));
        // Past the ratio, the overlay is flattened away.
        let mut s = big.clone();
        let most = 300 / FLATTEN_RATIO;
        for k in 0..=most as u32 {
            assert_eq!(s.is_layered(), k > 0);
            s = s.update(&keyed(&[k * 7], 3, true));
        }
        assert!(!s.is_layered());
        assert_eq!(s.len(), 300 + most + 1);
        assert_eq!(s.position(b"n00014"), Some(300_014));
    }

    /// A set of the names `n{k:05}` for each `k` in `keys`, valued `tag`,
    /// with positions `tag * 100_000 + k` when `positioned`.
    fn keyed(keys: &[u32], tag: i64, positioned: bool) -> Rc<NixAttrs> {
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        let entries = keys
            .iter()
            .map(|k| (NixString::from(format!("n{k:05}")), Value::Int(tag)))
            .collect();
        let positions: Rc<[u32]> = keys.iter().map(|k| tag as u32 * 100_000 + k).collect();
        Rc::new(match positioned {
            true => NixAttrs::from_sorted_with_positions(entries, positions),
            false => NixAttrs::from_sorted(entries),
        })
    }

    /// What a set must hold: name, then value tag and position.
    type Model = BTreeMap<Vec<u8>, (i64, Option<u32>)>;

    fn model_of(keys: &[u32], tag: i64, positioned: bool) -> Model {
        keys.iter()
            .map(|k| {
                let pos = positioned.then_some(tag as u32 * 100_000 + k);
                (format!("n{k:05}").into_bytes(), (tag, pos))
            })
            .collect()
    }

    /// Checks every way of reading `set` against `model`.
    fn check(set: &NixAttrs, model: &Model, what: &str) {
        assert_eq!(set.len(), model.len(), "{what}: len");
        assert_eq!(set.iter().len(), model.len(), "{what}: iter len");
        let tag = |v: &Value| match v {
            Value::Int(t) => *t,
            _ => panic!("{what}: not an int"),
        };
        let forward: Vec<(Vec<u8>, i64)> = set
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), tag(v)))
            .collect();
        let expected: Vec<(Vec<u8>, i64)> =
            model.iter().map(|(k, (t, _))| (k.clone(), *t)).collect();
        assert_eq!(forward, expected, "{what}: forward");
        let mut backward: Vec<(Vec<u8>, i64)> = set
            .iter()
            .rev()
            .map(|(k, v)| (k.as_bytes().to_vec(), tag(v)))
            .collect();
        backward.reverse();
        assert_eq!(backward, expected, "{what}: backward");
        // From both ends at once, meeting in the middle.
        let mut it = set.iter();
        let (mut front, mut back) = (Vec::new(), Vec::new());
        let mut turn = 0;
        loop {
            let next = match turn % 3 {
                0 => it.next().map(|e| (true, e)),
                _ => it.next_back().map(|e| (false, e)),
            };
            let Some((is_front, (k, v))) = next else {
                break;
            };
            assert_eq!(
                it.len() + front.len() + back.len() + 1,
                model.len(),
                "{what}"
            );
            let e = (k.as_bytes().to_vec(), tag(v));
            if is_front {
                front.push(e)
            } else {
                back.push(e)
            }
            turn += 1;
        }
        back.reverse();
        front.extend(back);
        assert_eq!(front, expected, "{what}: both ends");
        for (k, (t, pos)) in model {
            assert_eq!(set.get(k).map(tag), Some(*t), "{what}: get");
            let fresh = NixString::from(std::str::from_utf8(k).unwrap());
            assert_eq!(set.get_key(&fresh).map(tag), Some(*t), "{what}: get_key");
            assert_eq!(set.position(k), *pos, "{what}: position");
        }
        // Lookups by the keys' own allocations (the hinted path), twice so
        // the second finds its hint.
        for _ in 0..2 {
            for (k, v) in set.iter() {
                assert_eq!(
                    set.get_key(k).map(tag),
                    Some(tag(v)),
                    "{what}: shared get_key"
                );
            }
        }
        for missing in ["n", "n99999", "m00001", "n00001x"] {
            assert!(set.get(missing.as_bytes()).is_none(), "{what}: {missing}");
            assert!(
                !set.contains_key(&NixString::from(missing)),
                "{what}: {missing}"
            );
        }
        let entries = set.clone().into_entries();
        let names: Vec<&[u8]> = entries.iter().map(|(k, _)| k.as_bytes()).collect();
        let model_names: Vec<&[u8]> = model.keys().map(|k| &k[..]).collect();
        assert_eq!(names, model_names, "{what}: into_entries");
    }

    /// `update` of every shape (linear merge, galloping, layered both
    /// ways, layered on layered, flattened past the ratio) against the
    /// definition: the right side's names win, all others are kept,
    /// positions follow their entries; and every way of reading the
    /// result agrees.
    #[test]
    fn update_agrees_with_the_definition_for_all_shapes() {
        let mut seed = 12345u32;
        let mut next = |n: u32| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 8) % n
        };
        let sizes = [0, 1, 3, 5, 9, 30, 40, 100, 300, 1000];
        let mut pool: Vec<(Rc<NixAttrs>, Model)> = Vec::new();
        let mut layered = 0;
        for round in 0..400 {
            // A fresh set, or one made by an earlier round (so layered
            // sets are merged again, on either side).
            let pick = |next: &mut dyn FnMut(u32) -> u32, tag: i64| {
                if !pool.is_empty() && next(3) == 0 {
                    return pool[next(pool.len() as u32) as usize].clone();
                }
                let n = sizes[next(sizes.len() as u32) as usize];
                let range = [n as u32 * 2 + 1, 2000][next(2) as usize];
                let keys: Vec<u32> = (0..n).map(|_| next(range)).collect();
                let positioned = next(4) != 0;
                (
                    keyed(&keys, tag, positioned),
                    model_of(&keys, tag, positioned),
                )
            };
            let (a, ma) = pick(&mut next, 1 + 2 * round);
            let (b, mb) = pick(&mut next, 2 + 2 * round);
            let merged = a.update(&b);
            let mut expected = ma.clone();
            expected.extend(mb.clone());
            check(&merged, &expected, &format!("round {round}"));
            layered += merged.is_layered() as usize;
            pool.push((merged, expected));
        }
        assert!(layered > 50, "only {layered} layered results");
    }

    #[test]
    fn lookup_by_shared_or_equal_name() {
        let s = set(40, 1, 7);
        let shared = s.keys().nth(17).unwrap().clone();
        assert!(matches!(s.get_key(&shared), Some(Value::Int(7))));
        // The same bytes in another allocation, and a missing name.
        assert!(s.get_key(&NixString::from("a0017")).is_some());
        assert!(s.get_key(&NixString::from("a0040")).is_none());
        let small = set(5, 1, 8);
        let shared = small.keys().nth(3).unwrap().clone();
        assert!(small.contains_key(&shared));
        assert!(small.contains_key(&NixString::from("a0004")));
        assert!(!small.contains_key(&NixString::from("a")));
    }

    /// A hint that found a name in the base must not find it there once
    /// an overlay replaces it, and an overlay hint must not be taken for
    /// a base index.
    #[test]
    fn hints_do_not_see_through_an_overlay() {
        let big = set(100, 1, 1);
        let name = big.keys().nth(50).unwrap().clone();
        assert!(matches!(big.get_key(&name), Some(Value::Int(1))));
        let over = Rc::new(NixAttrs::from_sorted(vec![(name.clone(), Value::Int(2))]));
        let l = big.update(&over);
        assert!(l.is_layered());
        assert!(matches!(l.get_key(&name), Some(Value::Int(2))));
        assert!(matches!(big.get_key(&name), Some(Value::Int(1))));
        assert!(matches!(l.get_key(&name), Some(Value::Int(2))));
        let r = over.update(&big);
        assert!(matches!(r.get_key(&name), Some(Value::Int(1))));
    }

    #[test]
    fn small_merges_keep_their_own_positions() {
        let one = set(3, 10, 1).update(&set(2, 20, 2));
        let two = set(3, 10, 1).update(&set(2, 20, 2));
        assert!(!Rc::ptr_eq(
            one.flat_positions().unwrap(),
            two.flat_positions().unwrap()
        ));
        assert_eq!(one.position(b"a0002"), Some(12));
        assert_eq!(one.position(b"a0001"), Some(21));
    }

    #[test]
    fn inserting_into_a_layered_set_flattens_it() {
        let mut l = (*set(100, 1, 1).update(&keyed(&[3], 2, true))).clone();
        assert!(l.is_layered());
        l.insert(NixString::from("a0007"), Value::Int(5));
        assert!(l.insert_new_at(NixString::from("b"), Value::Int(6), 77));
        assert!(!l.insert_new(NixString::from("n00003"), Value::Int(7)));
        assert!(!l.is_layered());
        assert_eq!(l.len(), 102);
        assert!(matches!(l.get(b"a0007"), Some(Value::Int(5))));
        assert!(matches!(l.get(b"n00003"), Some(Value::Int(2))));
        assert_eq!(l.position(b"b"), Some(77));
        assert_eq!(l.position(b"n00003"), Some(200_003));
        assert_eq!(l.position(b"a0010"), Some(11));
    }

    /// Layered sets seen from Nix: the same as the flat set with the same
    /// attributes for `==`, `attrNames`, `attrValues`, printing,
    /// `mapAttrs`, `removeAttrs`, `intersectAttrs` and positions.
    #[test]
    fn layered_sets_behave_as_flat_ones_in_nix() {
        use crate::eval::testing::ok;
        let prelude = "let big = builtins.listToAttrs (builtins.genList (i: \
            { name = \"a${toString (i * 2)}\"; value = i; }) 40); \
            over = { a10 = \"x\"; a11 = \"y\"; zz = 1; }; \
            l = big // over; r = over // big; \
            flat = s: builtins.listToAttrs (map (n: { name = n; value = s.${n}; }) \
            (builtins.attrNames s)); in ";
        let t = |e: &str| ok(&format!("{prelude}{e}"));
        assert_eq!(t("l == flat l && r == flat r && l != r"), "true");
        assert_eq!(t("builtins.length (builtins.attrNames l)"), "42");
        assert_eq!(t("builtins.length (builtins.attrNames r)"), "42");
        assert_eq!(
            t("[ l.a10 r.a10 l.a11 r.a11 l.zz r.zz l.a12 ]"),
            "[ \"x\" 5 \"y\" \"y\" 1 1 6 ]"
        );
        assert_eq!(
            t("builtins.filter (n: builtins.substring 0 2 n == \"a1\") (builtins.attrNames l)"),
            "[ \"a10\" \"a11\" \"a12\" \"a14\" \"a16\" \"a18\" ]"
        );
        assert_eq!(
            t("toString (builtins.tail (builtins.attrValues r))"),
            ok(&format!(
                "{prelude}toString (builtins.tail (builtins.attrValues (flat r)))"
            ))
        );
        assert_eq!(
            t("builtins.mapAttrs (n: v: 0) l == builtins.mapAttrs (n: v: 0) (flat l)"),
            "true"
        );
        assert_eq!(t("builtins.removeAttrs l [ \"a10\" \"zz\" ] == builtins.removeAttrs big [ \"a10\" ] // { a11 = \"y\"; }"), "true");
        assert_eq!(
            t("builtins.attrNames (builtins.intersectAttrs { a10 = 0; zz = 0; a3 = 0; } l)"),
            "[ \"a10\" \"zz\" ]"
        );
        assert_eq!(
            t("builtins.intersectAttrs l { a10 = 0; a11 = 0; q = 0; }"),
            "{ a10 = 0; a11 = 0; }"
        );
        assert_eq!(t("(l // { a11 = 3; }).a11 + ({ a11 = 3; } // l).zz"), "4");
        assert_eq!(
            ok("let big = { a0 = 0; a1 = 1; a2 = 2; a3 = 3; a4 = 4; a5 = 5; a6 = 6; a7 = 7; a8 = 8; \
                a9 = 9; b0 = 0; b1 = 1; b2 = 2; b3 = 3; b4 = 4; b5 = 5; b6 = 6; b7 = 7; b8 = 8; \
                b9 = 9; c0 = 0; c1 = 1; c2 = 2; c3 = 3; c4 = 4; c5 = 5; c6 = 6; c7 = 7; c8 = 8; \
                c9 = 9; d0 = 0; d1 = 1; }; l = big // {\n  a5 = 1; }; in \
                [ (builtins.unsafeGetAttrPos \"a5\" l).line \
                (builtins.unsafeGetAttrPos \"d1\" l == builtins.unsafeGetAttrPos \"d1\" big) ]"),
            "[ 2 true ]"
        );
    }
}
