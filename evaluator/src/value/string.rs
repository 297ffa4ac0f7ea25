//! Nix strings: immutable byte strings with a string context.

use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxBuildHasher;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::BuildHasher;

mod block;

/// One element of a string context (docs/evaluator.md, "String contexts
/// and build references").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContextElem {
    /// A plain store path, e.g. a source added to the store.
    Plain(String),
    /// `!output!drvPath`: one output of a derivation.
    Output {
        /// The output name.
        output: String,
        /// The `.drv` store path.
        drv: String,
    },
    /// `=drvPath`: the derivation and its whole closure.
    Derivation(String),
}

impl ContextElem {
    /// The C++ Nix serialisation (`/nix/store/…`, `!out!/nix/store/….drv`, `=/nix/store/….drv`).
    pub fn encode(&self) -> String {
        match self {
            ContextElem::Plain(p) => p.clone(),
            ContextElem::Output { output, drv } => format!("!{output}!{drv}"),
            ContextElem::Derivation(d) => format!("={d}"),
        }
    }
}

/// A string context: the set of store objects a string refers to.
pub type NixContext = BTreeSet<ContextElem>;

/// An immutable Nix string. Cloning is a reference-count increment.
///
/// One allocation holds everything (the block, `block.rs`): a header of
/// reference count, length and context pointer, followed by the bytes. A
/// string is made by one `malloc` and freed by one `free`, and its bytes
/// are read at a fixed offset from the pointer the value holds, where an
/// `Rc` of a header with a `Box<[u8]>` took two of each and a second,
/// dependent load (docs/notes-performance.md, "Session 9").
pub struct NixString(block::Block);

impl NixString {
    /// A string from bytes and an optional context (an empty context is dropped).
    pub fn new(bytes: impl AsRef<[u8]>, context: Option<NixContext>) -> Self {
        let context = context.filter(|c| !c.is_empty()).map(Box::new);
        NixString(block::Block::new(bytes.as_ref(), context))
    }

    /// A string without context.
    pub fn plain(s: impl AsRef<[u8]>) -> Self {
        NixString(block::Block::new(s.as_ref(), None))
    }

    /// The decimal text of an integer (`toString 42`, `"${toString n}"`).
    ///
    /// Written straight into the string's block, two digits at a time from
    /// a table: `toString` of integers is hot in `lib` code
    /// (`concatMapStringsSep "," toString`, `range`-generated names).
    pub fn decimal(i: i64) -> NixString {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let mut n = i.unsigned_abs();
        let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
        let len = digits + usize::from(i < 0);
        // SAFETY: every one of the `len` bytes is written below: the digits
        // from the end back to `len - digits`, then the sign at 0 if any.
        unsafe {
            let (block, p) = block::Block::uninit(len, None);
            let mut at = len;
            while n >= 100 {
                let pair = (n % 100) as usize * 2;
                n /= 100;
                at -= 2;
                p.add(at)
                    .copy_from_nonoverlapping(PAIRS.as_ptr().add(pair), 2);
            }
            if n >= 10 {
                at -= 2;
                p.add(at)
                    .copy_from_nonoverlapping(PAIRS.as_ptr().add(n as usize * 2), 2);
            } else {
                at -= 1;
                p.add(at).write(b'0' + n as u8);
            }
            if i < 0 {
                p.write(b'-');
            }
            NixString(block)
        }
    }

    /// A string without context, shared with every other interned string
    /// of the same bytes on this thread.
    ///
    /// For the strings of compiled code: the same attribute names and
    /// identifiers (`name`, `meta`, `stdenv`, `fetchurl`) recur in thousands
    /// of files, and one copy each saves an allocation per occurrence
    /// (docs/notes-performance.md). Strings longer than [`INTERN_MAX`]
    /// (descriptions, scripts) rarely recur and are not shared. The table
    /// keeps what it holds for the thread's life: it is bounded by the
    /// distinct short strings of the source code read.
    pub fn interned(bytes: &[u8]) -> Self {
        if bytes.len() > INTERN_MAX {
            return NixString::plain(bytes);
        }
        let hash = FxBuildHasher.hash_one(bytes);
        INTERNED.with(|t| {
            let mut t = t.borrow_mut();
            let entry = t.entry(
                hash,
                |s| s.as_bytes() == bytes,
                |s| FxBuildHasher.hash_one(s.as_bytes()),
            );
            match entry {
                Entry::Occupied(e) => e.get().clone(),
                Entry::Vacant(e) => {
                    let s = NixString::plain(bytes);
                    e.insert(s.clone());
                    s
                }
            }
        })
    }

    /// The bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.bytes()
    }

    /// The bytes as text, replacing invalid UTF-8.
    pub fn to_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }

    /// The bytes as `&str` if valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string has no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The context, if any.
    #[inline]
    pub fn context(&self) -> Option<&NixContext> {
        self.0.context()
    }

    /// Whether the string carries context.
    #[inline]
    pub fn has_context(&self) -> bool {
        self.0.context().is_some()
    }

    /// The same bytes without context.
    pub fn without_context(&self) -> NixString {
        if !self.has_context() {
            return self.clone();
        }
        NixString::plain(self.as_bytes())
    }

    /// The same bytes with a different context.
    pub fn with_context(&self, context: Option<NixContext>) -> NixString {
        NixString::new(self.as_bytes(), context)
    }

    /// Concatenation; contexts are united. Shares storage when one side is empty.
    pub fn concat(&self, other: &NixString) -> NixString {
        if other.is_empty() && !other.has_context() {
            return self.clone();
        }
        if self.is_empty() && !self.has_context() {
            return other.clone();
        }
        let context = merge_contexts([self.context(), other.context()])
            .filter(|c| !c.is_empty())
            .map(Box::new);
        NixString(block::Block::concat(
            self.as_bytes(),
            other.as_bytes(),
            context,
        ))
    }

    /// The address of the shared allocation: equal for clones, so a key for
    /// per-string caches (a hint, never proof of equality: an address is
    /// reused once its string is freed).
    #[inline]
    pub fn address(&self) -> usize {
        self.0.address()
    }

    /// Pointer identity (cheap equality fast path).
    #[inline]
    pub fn ptr_eq(&self, other: &NixString) -> bool {
        self.address() == other.address()
    }
}

impl Clone for NixString {
    #[inline]
    fn clone(&self) -> Self {
        NixString(self.0.share())
    }
}

/// The longest string [`NixString::interned`] shares.
pub const INTERN_MAX: usize = 64;

thread_local! {
    // Sized for a small evaluation's distinct names (hello.drvPath: 34,000
    // strings looked up), so that growing it, which hashes every string
    // again, happens only in big ones.
    static INTERNED: RefCell<HashTable<NixString>> =
        RefCell::new(HashTable::with_capacity(1 << 14));
}

/// Unites several optional contexts.
pub fn merge_contexts<'a>(
    parts: impl IntoIterator<Item = Option<&'a NixContext>>,
) -> Option<NixContext> {
    let mut out: Option<NixContext> = None;
    for c in parts.into_iter().flatten() {
        match &mut out {
            None => out = Some(c.clone()),
            Some(o) => o.extend(c.iter().cloned()),
        }
    }
    out
}

/// Builds a string piece by piece, collecting context.
#[derive(Default)]
pub struct StringBuilder {
    bytes: Vec<u8>,
    context: Option<NixContext>,
}

impl StringBuilder {
    /// A builder with room for `n` bytes, for callers that know the length.
    pub fn with_capacity(n: usize) -> Self {
        StringBuilder {
            bytes: Vec::with_capacity(n),
            context: None,
        }
    }

    /// Appends a Nix string with its context.
    pub fn push(&mut self, s: &NixString) {
        self.push_bytes(s.as_bytes());
        self.add_context(s.context());
    }

    /// Appends raw bytes.
    pub fn push_bytes(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
    }

    /// Adds context without bytes.
    pub fn add_context(&mut self, c: Option<&NixContext>) {
        if let Some(c) = c {
            self.context
                .get_or_insert_with(Default::default)
                .extend(c.iter().cloned());
        }
    }

    /// The result, copied into its block.
    pub fn finish(self) -> NixString {
        NixString::new(&self.bytes, self.context)
    }
}

impl PartialEq for NixString {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || self.as_bytes() == other.as_bytes()
    }
}
impl Eq for NixString {}

impl PartialOrd for NixString {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for NixString {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Interned names make equal keys one allocation: merging sets by
        // name (`//`) mostly meets those.
        if self.ptr_eq(other) {
            return std::cmp::Ordering::Equal;
        }
        cmp_bytes(self.as_bytes(), other.as_bytes())
    }
}
/// The byte order of two strings, the order of attribute names.
///
/// Compared inline rather than by `<[u8]>::cmp`, whose call to `memcmp`
/// costs more than the comparison itself when names differ in their first
/// bytes, as they mostly do in the probes of a binary search over a set.
#[inline]
pub fn cmp_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

impl std::hash::Hash for NixString {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl From<&str> for NixString {
    fn from(s: &str) -> Self {
        NixString::plain(s.as_bytes())
    }
}
impl From<String> for NixString {
    fn from(s: String) -> Self {
        NixString::plain(s.into_bytes())
    }
}
impl From<Vec<u8>> for NixString {
    fn from(s: Vec<u8>) -> Self {
        NixString::plain(s)
    }
}

impl fmt::Debug for NixString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_str_lossy())
    }
}
impl fmt::Display for NixString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_str_lossy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(path: &str) -> Option<NixContext> {
        Some(NixContext::from([ContextElem::Plain(path.to_string())]))
    }

    #[test]
    fn integers_format_like_to_string() {
        let mut cases = vec![0, 7, -1, 42, -42, 99, 100, -100, 101, i64::MAX, i64::MIN];
        for d in 1..19 {
            let p = 10i64.pow(d);
            cases.extend([p - 1, p, p + 1, -(p - 1), -p, -(p + 1)]);
        }
        for i in cases {
            let s = NixString::decimal(i);
            assert_eq!(s.as_bytes(), i.to_string().as_bytes(), "{i}");
            assert!(!s.has_context());
        }
    }

    #[test]
    fn strings_keep_bytes_and_context_through_every_constructor() {
        let plain = NixString::plain("abc");
        let with = NixString::new(b"/nix/store/a", ctx("/nix/store/a"));
        assert_eq!(plain.as_bytes(), b"abc");
        assert_eq!(with.context(), ctx("/nix/store/a").as_ref());
        assert!(!NixString::new("x", Some(NixContext::new())).has_context());

        let both = with.concat(&plain);
        assert_eq!(both.as_bytes(), b"/nix/store/aabc");
        assert_eq!(both.context(), ctx("/nix/store/a").as_ref());
        // An empty side without context shares the other string.
        assert!(plain.concat(&NixString::plain("")).ptr_eq(&plain));
        assert!(NixString::plain("").concat(&with).ptr_eq(&with));

        assert!(!with.without_context().has_context());
        assert_eq!(with.without_context(), with);
        assert!(plain.without_context().ptr_eq(&plain));
        assert_eq!(
            plain.with_context(ctx("/nix/store/b")).context(),
            ctx("/nix/store/b").as_ref()
        );

        let clone = with.clone();
        assert!(clone.ptr_eq(&with));
        assert_eq!(clone.address(), with.address());
        drop(with);
        assert_eq!(clone.as_bytes(), b"/nix/store/a");
    }

    #[test]
    fn a_builder_makes_the_string_of_its_pieces() {
        assert_eq!(StringBuilder::default().finish().as_bytes(), b"");
        let mut b = StringBuilder::default();
        b.add_context(ctx("/nix/store/c").as_ref());
        assert_eq!(b.finish().context(), ctx("/nix/store/c").as_ref());

        let mut b = StringBuilder::with_capacity(3);
        b.push(&NixString::plain("ab"));
        b.push_bytes(b"-");
        for _ in 0..100 {
            b.push(&NixString::new("/x", ctx("/nix/store/d")));
        }
        let s = b.finish();
        assert_eq!(s.len(), 3 + 200);
        assert!(s.as_bytes().starts_with(b"ab-/x/x"));
        assert_eq!(s.context(), ctx("/nix/store/d").as_ref());
    }

    #[test]
    fn interned_strings_are_shared_up_to_the_limit() {
        let a = NixString::interned(b"stdenv");
        assert!(a.ptr_eq(&NixString::interned(b"stdenv")));
        let long = vec![b'x'; INTERN_MAX + 1];
        assert!(!NixString::interned(&long).ptr_eq(&NixString::interned(&long)));
        assert_eq!(NixString::interned(&long).as_bytes(), &long[..]);
    }
}
