//! Attribute sets: immutable, sorted by name, cheap to share.

use super::string::cmp_bytes;
use super::{NixString, Value};
use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxBuildHasher;
use std::cell::{Cell, RefCell};
use std::hash::BuildHasher;
use std::rc::Rc;

/// An attribute set. Entries are sorted by name bytes, so lookups use
/// binary search (small sets are scanned) and ordered traversal (printing,
/// `attrNames`, equality) needs no sorting.
#[derive(Clone, Default)]
pub struct NixAttrs {
    entries: Box<[(NixString, Value)]>,
    /// Where each attribute was defined (global source offsets, 0 = unknown),
    /// parallel to `entries`; absent for sets built by builtins. Sets from
    /// literals share their compiled table, so this costs no allocation.
    positions: Option<Rc<[u32]>>,
}

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

    /// The classic merge, for operands of comparable size.
    fn linear(&mut self, a: Side<'_>, b: Side<'_>) {
        let (mut i, mut j) = (0, 0);
        while i < a.entries.len() && j < b.entries.len() {
            match a.entries[i].0.cmp(&b.entries[j].0) {
                std::cmp::Ordering::Less => {
                    self.copy(a, i..i + 1);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    self.copy(b, j..j + 1);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    self.copy(b, j..j + 1);
                    i += 1;
                    j += 1;
                }
            }
        }
        self.copy(a, i..a.entries.len());
        self.copy(b, j..b.entries.len());
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

impl Drop for NixAttrs {
    fn drop(&mut self) {
        if !self.entries.is_empty() {
            super::teardown::dispose(std::mem::take(&mut self.entries));
        }
    }
}

impl NixAttrs {
    /// The empty set.
    pub fn empty() -> Rc<NixAttrs> {
        thread_local!(static EMPTY: Rc<NixAttrs> = Rc::new(NixAttrs::default()));
        EMPTY.with(|e| e.clone())
    }

    /// Builds a set from entries already sorted by name and free of duplicates.
    pub fn from_sorted(entries: Vec<(NixString, Value)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        NixAttrs {
            entries: entries.into_boxed_slice(),
            positions: None,
        }
    }

    /// Like [`NixAttrs::from_sorted`], with the definition offset of each entry.
    pub fn from_sorted_with_positions(
        entries: Vec<(NixString, Value)>,
        positions: Rc<[u32]>,
    ) -> Self {
        debug_assert_eq!(entries.len(), positions.len());
        NixAttrs {
            entries: entries.into_boxed_slice(),
            positions: Some(positions),
        }
    }

    /// The source offset where an attribute was defined, if known.
    pub fn position(&self, name: &[u8]) -> Option<u32> {
        let i = self.find(name)?;
        self.positions
            .as_ref()
            .and_then(|p| p.get(i).copied())
            .filter(|p| *p != 0)
    }

    /// Builds a set from unsorted entries; on duplicates the first wins
    /// (the `listToAttrs` rule).
    pub fn from_unsorted_first_wins(mut entries: Vec<(NixString, Value)>) -> Self {
        entries.sort_by(|a, b| a.0.cmp(&b.0)); // stable: first occurrence stays first
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        NixAttrs {
            entries: entries.into_boxed_slice(),
            positions: None,
        }
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
    fn find_key(&self, name: &NixString) -> Option<usize> {
        if self.entries.len() <= POINTER_SCAN_LIMIT {
            if let Some(i) = self.entries.iter().position(|(k, _)| k.ptr_eq(name)) {
                return Some(i);
            }
            return self.find(name.as_bytes());
        }
        let slot = hint_slot(name);
        let guess = LOOKUP_HINTS.with(|h| h[slot].get()) as usize;
        if self.entries.get(guess).is_some_and(|(k, _)| k.ptr_eq(name)) {
            return Some(guess);
        }
        let bytes = name.as_bytes();
        let found = self
            .entries
            .binary_search_by(|(k, _)| {
                if k.ptr_eq(name) {
                    std::cmp::Ordering::Equal
                } else {
                    cmp_bytes(k.as_bytes(), bytes)
                }
            })
            .ok();
        if let Some(i) = found {
            LOOKUP_HINTS.with(|h| h[slot].set(i as u32));
        }
        found
    }

    /// Looks up an attribute by a name held as a [`NixString`]: faster than
    /// [`NixAttrs::get`] when the name is shared with the set's key (see
    /// `find_key`), as the names of compiled code and of sets' own keys are.
    pub fn get_key(&self, name: &NixString) -> Option<&Value> {
        self.find_key(name).map(|i| &self.entries[i].1)
    }

    /// Whether an attribute exists, by a name held as a [`NixString`].
    pub fn contains_key(&self, name: &NixString) -> bool {
        self.find_key(name).is_some()
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

    /// Looks up an attribute.
    pub fn get(&self, name: &[u8]) -> Option<&Value> {
        self.find(name).map(|i| &self.entries[i].1)
    }

    /// Looks up an attribute by `&str`.
    pub fn get_str(&self, name: &str) -> Option<&Value> {
        self.get(name.as_bytes())
    }

    /// Whether an attribute exists.
    pub fn contains(&self, name: &[u8]) -> bool {
        self.find(name).is_some()
    }

    /// Inserts or replaces an attribute (copy-on-write callers use `Rc::make_mut`).
    pub fn insert(&mut self, name: NixString, value: Value) {
        match self.position_index(name.as_bytes()) {
            Ok(i) => self.entries[i].1 = value,
            Err(i) => {
                self.insert_entry(i, (name, value));
                self.insert_position(i, 0);
            }
        }
    }

    /// Inserts an entry at index `i`. Entries are a boxed slice, exactly as
    /// long as the set (sets are built whole far more often than grown one
    /// dynamic attribute at a time, and a vector's capacity costs 8 bytes
    /// in every set), so this reallocates.
    fn insert_entry(&mut self, i: usize, entry: (NixString, Value)) {
        let mut v = std::mem::take(&mut self.entries).into_vec();
        v.insert(i, entry);
        self.entries = v.into_boxed_slice();
    }

    fn insert_position(&mut self, i: usize, pos: u32) {
        if let Some(p) = &self.positions {
            let mut v = p.to_vec();
            v.insert(i, pos);
            self.positions = Some(v.into());
        }
    }

    /// Inserts only if absent; returns false if the name existed.
    pub fn insert_new(&mut self, name: NixString, value: Value) -> bool {
        self.insert_new_at(name, value, 0)
    }

    /// Like [`NixAttrs::insert_new`], recording where the attribute was defined.
    pub fn insert_new_at(&mut self, name: NixString, value: Value, pos: u32) -> bool {
        match self.position_index(name.as_bytes()) {
            Ok(_) => false,
            Err(i) => {
                self.insert_entry(i, (name, value));
                if self.positions.is_none() && pos != 0 {
                    self.positions = Some(vec![0; self.entries.len() - 1].into());
                }
                self.insert_position(i, pos);
                true
            }
        }
    }

    /// Entries in name order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&NixString, &Value)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Names in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &NixString> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Values in name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// `self // other`: a merge of two sorted arrays.
    ///
    /// When one side is much smaller (`pkgs // { hello = ...; }`, the
    /// nixpkgs fixpoint's layers, `attrs // { name = ...; }` in every
    /// derivation), each of its names is found in the other by binary
    /// search and the runs between them are copied without comparing a
    /// name: `m log n` comparisons instead of `n + m`.
    pub fn update(self: &Rc<Self>, other: &Rc<Self>) -> Rc<Self> {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let (a, b) = (self.side(), other.side());
        let track = a.positions.is_some() || b.positions.is_some();
        let mut m = Merge::new(a.entries.len() + b.entries.len(), track);
        if b.entries.len() * GALLOP_RATIO <= a.entries.len() {
            m.gallop(a, b, true);
        } else if a.entries.len() * GALLOP_RATIO <= b.entries.len() {
            m.gallop(b, a, false);
        } else {
            m.linear(a, b);
        }
        Rc::new(NixAttrs {
            entries: m.out.into_boxed_slice(),
            positions: m.pos.map(shared_positions),
        })
    }

    fn side(&self) -> Side<'_> {
        Side {
            entries: &self.entries,
            positions: self.positions.as_deref(),
        }
    }

    /// Consumes the set into its sorted entries.
    pub fn into_entries(mut self) -> Vec<(NixString, Value)> {
        std::mem::take(&mut self.entries).into_vec()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A set of `n` attributes `a0000`... with positions `base + i`.
    fn set(n: usize, base: u32, value: i64) -> Rc<NixAttrs> {
        let entries = (0..n)
            .map(|i| (NixString::from(format!("a{i:04}")), Value::Int(value)))
            .collect();
        let positions: Rc<[u32]> = (0..n as u32).map(|i| base + i).collect();
        Rc::new(NixAttrs::from_sorted_with_positions(entries, positions))
    }

    #[test]
    fn big_merges_with_equal_positions_share_them() {
        let (a, b) = (set(300, 1000, 1), set(10, 5000, 2));
        let one = a.update(&b);
        // Another instantiation: other values, the same definitions.
        let two = set(300, 1000, 3).update(&set(10, 5000, 4));
        let (p1, p2) = (one.positions.as_ref(), two.positions.as_ref());
        assert!(Rc::ptr_eq(p1.unwrap(), p2.unwrap()));
        assert_eq!(one.position(b"a0005"), Some(5000 + 5));
        assert_eq!(one.position(b"a0200"), Some(1200));
        assert!(matches!(two.get(b"a0200"), Some(Value::Int(3))));
        // Other positions are not mixed up with them.
        let three = set(300, 2000, 1).update(&b);
        assert!(!Rc::ptr_eq(p1.unwrap(), three.positions.as_ref().unwrap()));
        assert_eq!(three.position(b"a0200"), Some(2200));
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

    /// `update` by every strategy (linear merge, small right side, small
    /// left side) against the definition: the right side's names win, all
    /// others are kept, positions follow their entries.
    #[test]
    fn update_agrees_with_the_definition_for_all_shapes() {
        let mut seed = 12345u32;
        let mut next = |n: u32| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 8) % n
        };
        for round in 0..60 {
            let sizes = [
                (0, 5),
                (5, 0),
                (300, 3),
                (3, 300),
                (40, 30),
                (1000, 1),
                (1, 1000),
            ];
            let (na, nb) = sizes[round % sizes.len()];
            let ka: Vec<u32> = (0..na).map(|_| next(2000)).collect();
            let kb: Vec<u32> = (0..nb).map(|_| next(2000)).collect();
            let (pa, pb) = (round % 3 != 0, round % 4 != 0);
            let (a, b) = (keyed(&ka, 1, pa), keyed(&kb, 2, pb));
            let merged = a.update(&b);
            let mut expected = std::collections::BTreeMap::new();
            for (side, tag, positioned) in [(&a, 1, pa), (&b, 2, pb)] {
                for (k, _) in side.iter() {
                    let key: u32 = k.as_str().unwrap()[1..].parse().unwrap();
                    let pos = positioned.then_some(tag as u32 * 100_000 + key);
                    expected.insert(k.as_bytes().to_vec(), (tag, pos));
                }
            }
            assert_eq!(merged.len(), expected.len(), "round {round}");
            for ((k, v), (ek, (tag, pos))) in merged.iter().zip(&expected) {
                assert_eq!(k.as_bytes(), &ek[..], "round {round}");
                assert!(matches!(v, Value::Int(t) if t == tag), "round {round}");
                assert_eq!(merged.position(k.as_bytes()), *pos, "round {round}");
            }
        }
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

    #[test]
    fn small_merges_keep_their_own_positions() {
        let one = set(3, 10, 1).update(&set(2, 20, 2));
        let two = set(3, 10, 1).update(&set(2, 20, 2));
        assert!(!Rc::ptr_eq(
            one.positions.as_ref().unwrap(),
            two.positions.as_ref().unwrap()
        ));
        assert_eq!(one.position(b"a0002"), Some(12));
        assert_eq!(one.position(b"a0001"), Some(21));
    }
}
