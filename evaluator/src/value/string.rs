//! Nix strings: immutable byte strings with a string context.

use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxBuildHasher;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::BuildHasher;
use std::rc::Rc;

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

#[derive(Debug)]
struct Repr {
    bytes: Box<[u8]>,
    context: Option<Box<NixContext>>,
}

/// An immutable Nix string. Cloning is a reference-count increment.
#[derive(Clone)]
pub struct NixString(Rc<Repr>);

impl NixString {
    /// A string from bytes and an optional context (an empty context is dropped).
    pub fn new(bytes: impl Into<Box<[u8]>>, context: Option<NixContext>) -> Self {
        let context = context.filter(|c| !c.is_empty()).map(Box::new);
        NixString(Rc::new(Repr {
            bytes: bytes.into(),
            context,
        }))
    }

    /// A string without context.
    pub fn plain(s: impl Into<Box<[u8]>>) -> Self {
        Self::new(s, None)
    }

    /// A string without context, shared with every other interned string
    /// of the same bytes on this thread.
    ///
    /// For the strings of compiled code: the same attribute names and
    /// identifiers (`name`, `meta`, `stdenv`, `fetchurl`) recur in thousands
    /// of files, and one copy each saves a header and a byte allocation per
    /// occurrence (docs/notes-performance.md). Strings longer than
    /// [`INTERN_MAX`] (descriptions, scripts) rarely recur and are not
    /// shared. The table keeps what it holds for the thread's life: it is
    /// bounded by the distinct short strings of the source code read.
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
    pub fn as_bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    /// The bytes as text, replacing invalid UTF-8.
    pub fn to_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0.bytes)
    }

    /// The bytes as `&str` if valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0.bytes).ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    /// Whether the string has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.bytes.is_empty()
    }

    /// The context, if any.
    pub fn context(&self) -> Option<&NixContext> {
        self.0.context.as_deref()
    }

    /// Whether the string carries context.
    pub fn has_context(&self) -> bool {
        self.0.context.is_some()
    }

    /// The same bytes without context.
    pub fn without_context(&self) -> NixString {
        if self.0.context.is_none() {
            return self.clone();
        }
        NixString::plain(self.0.bytes.clone())
    }

    /// The same bytes with a different context.
    pub fn with_context(&self, context: Option<NixContext>) -> NixString {
        NixString::new(self.0.bytes.clone(), context)
    }

    /// Concatenation; contexts are united. Shares storage when one side is empty.
    pub fn concat(&self, other: &NixString) -> NixString {
        if other.is_empty() && !other.has_context() {
            return self.clone();
        }
        if self.is_empty() && !self.has_context() {
            return other.clone();
        }
        let mut bytes = Vec::with_capacity(self.len() + other.len());
        bytes.extend_from_slice(self.as_bytes());
        bytes.extend_from_slice(other.as_bytes());
        NixString::new(bytes, merge_contexts([self.context(), other.context()]))
    }

    /// The address of the shared allocation: equal for clones, so a key for
    /// per-string caches (a hint, never proof of equality: an address is
    /// reused once its string is freed).
    pub fn address(&self) -> usize {
        Rc::as_ptr(&self.0) as usize
    }

    /// Pointer identity (cheap equality fast path).
    pub fn ptr_eq(&self, other: &NixString) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
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
    /// Appends a Nix string with its context.
    pub fn push(&mut self, s: &NixString) {
        self.bytes.extend_from_slice(s.as_bytes());
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

    /// The result.
    pub fn finish(self) -> NixString {
        NixString::new(self.bytes, self.context)
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
