//! The plain data that crosses the evaluation boundary: attribute paths go
//! in, rendered nodes come out.
//!
//! Nothing in this module refers to evaluator values. That is deliberate:
//! the evaluator's values are `Rc`-based and live on one thread, and a later
//! step moves the evaluator into a worker process. Everything here is
//! owned, `Send` and easy to serialise, so the same requests and answers can
//! travel over a pipe without changing shape.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Names of the extended attributes a node may carry.
///
/// They live in the `user.` namespace because that is the only one an
/// unprivileged `getfattr` reads by default.
pub mod xattr {
    /// The Nix type of the value (`set`, `derivation`, `string`, ...).
    pub const TYPE: &str = "user.nix.type";
    /// `file:line:column` of the definition of the attribute.
    pub const POSITION: &str = "user.nix.position";
    /// The evaluation error of a value that fails.
    pub const ERROR: &str = "user.nix.error";
    /// The string context of a string value, one element per line.
    pub const CONTEXT: &str = "user.nix.context";
    /// The `.drv` store path of a derivation.
    pub const DRV_PATH: &str = "user.nix.drvPath";
    /// The output path of a derivation.
    pub const OUT_PATH: &str = "user.nix.outPath";
    /// The prefix shared by every attribute attrfs can answer; any other
    /// name (`security.selinux`, `system.posix_acl_access`, ...) is known
    /// not to exist without asking the evaluator.
    pub const PREFIX: &str = "user.nix.";
}

/// Extended attributes as `(name, value)` pairs, names from [`xattr`].
pub type XattrList = Vec<(String, Vec<u8>)>;

/// One step of an [`AttrPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// An attribute name as raw bytes, or a list index written in decimal
    /// (`b"0"`, `b"1"`, ...). Any byte string is allowed, including the
    /// empty one, `.`, `..` and names containing `/` or NUL: the file-name
    /// encoding in [`crate::names`] makes all of them representable.
    ///
    /// Shared, not copied: a walk holds each name in its parent's listing,
    /// in the inode table's path and in the cache's keys, and a clone is a
    /// reference count (the segment is 16 bytes, not 32).
    Name(Arc<[u8]>),
    /// The synthetic `.drv` entry of a derivation directory (the ATerm text
    /// of the derivation). Distinct from an attribute that happens to be
    /// called `.drv`, which is `Name(b".drv")`.
    Drv,
    /// The synthetic `.context` entry of a derivation directory.
    Context,
}

impl Segment {
    /// A segment for an attribute name given as text.
    pub fn name(name: impl AsRef<[u8]>) -> Self {
        Segment::Name(name.as_ref().into())
    }

    /// The segment naming element `index` of a list.
    pub fn index(index: usize) -> Self {
        Segment::Name(index.to_string().into_bytes().into())
    }

    /// The list index this segment names, if it is a canonical decimal
    /// number (no sign, no leading zeros).
    pub fn as_index(&self) -> Option<usize> {
        let Segment::Name(bytes) = self else {
            return None;
        };
        let text = std::str::from_utf8(bytes).ok()?;
        let canonical = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        if canonical {
            text.parse().ok()
        } else {
            None
        }
    }
}

impl fmt::Display for Segment {
    /// Renders the segment the way Nix would write it in an attribute path:
    /// bare if it is a plain identifier or a number, quoted otherwise.
    /// Synthetic entries are shown as `<.drv>` / `<.context>` so that they
    /// cannot be confused with attributes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Drv => f.write_str("<.drv>"),
            Segment::Context => f.write_str("<.context>"),
            Segment::Name(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let bare = !text.is_empty()
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-'".contains(&b))
                    && !text.starts_with(['-', '\'']);
                if bare {
                    f.write_str(&text)
                } else {
                    write!(f, "{text:?}")
                }
            }
        }
    }
}

/// The path from the mounted root value to a node: the request key of the
/// evaluation boundary.
///
/// A path is a link to its parent path plus its last segment, shared with
/// every other path that extends it. A walk of a big tree keeps a path for
/// each of its (millions of) entries in the inode table and the caches, and
/// with a vector of segments per path each would repeat all its ancestors'
/// names; this way an entry costs one small allocation, `child` and
/// `parent` are O(1), and paths built separately still compare and hash by
/// their segments.
#[derive(Clone, Default)]
pub struct AttrPath(Option<Arc<PathLink>>);

struct PathLink {
    parent: AttrPath,
    segment: Segment,
    len: u32,
    /// A hash of all the segments, computed once when the link is made:
    /// a walk hashes each path in several maps (the inode table, the
    /// caches, the worker's memo), and hashing segment by segment up to
    /// the root cost a few percent of the daemon's time. 32 bits keep the
    /// link at 48 bytes; equal paths have equal hashes, and a collision
    /// only costs a comparison.
    hash: u32,
}

// A link and its reference counts fit a 56-byte allocation.
const _: () = assert!(std::mem::size_of::<PathLink>() <= 40);

impl AttrPath {
    /// The path of the root value itself.
    pub fn root() -> Self {
        AttrPath(None)
    }

    /// Builds a path from its segments.
    pub fn from_segments(segments: Vec<Segment>) -> Self {
        segments
            .into_iter()
            .fold(AttrPath::root(), |path, segment| path.child(segment))
    }

    /// The segments from the root down.
    pub fn segments(&self) -> Vec<&Segment> {
        let mut segments = Vec::with_capacity(self.len());
        let mut link = self.0.as_deref();
        while let Some(l) = link {
            segments.push(&l.segment);
            link = l.parent.0.as_deref();
        }
        segments.reverse();
        segments
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_none()
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |l| l.len as usize)
    }

    fn structural_hash(&self) -> u32 {
        self.0.as_ref().map_or(0, |l| l.hash)
    }

    /// Whether the path has no segments (the same as [`AttrPath::is_root`],
    /// here for the usual `len`/`is_empty` pairing).
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The path of a child entry.
    pub fn child(&self, segment: Segment) -> Self {
        let mut hasher = rustc_hash::FxHasher::default();
        self.structural_hash().hash(&mut hasher);
        segment.hash(&mut hasher);
        // The high half: FxHasher's low bits mix least.
        let hash = (hasher.finish() >> 32) as u32;
        AttrPath(Some(Arc::new(PathLink {
            parent: self.clone(),
            segment,
            len: u32::try_from(self.len() + 1).unwrap_or(u32::MAX),
            hash,
        })))
    }

    /// The parent path, or `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        self.0.as_ref().map(|l| l.parent.clone())
    }

    /// The last segment, or `None` for the root.
    pub fn last(&self) -> Option<&Segment> {
        self.0.as_ref().map(|l| &l.segment)
    }
}

impl PartialEq for AttrPath {
    fn eq(&self, other: &Self) -> bool {
        let (mut a, mut b) = (self, other);
        loop {
            match (&a.0, &b.0) {
                (None, None) => return true,
                (Some(x), Some(y)) => {
                    if Arc::ptr_eq(x, y) {
                        return true;
                    }
                    if x.hash != y.hash || x.len != y.len || x.segment != y.segment {
                        return false;
                    }
                    a = &x.parent;
                    b = &y.parent;
                }
                _ => return false,
            }
        }
    }
}

impl Eq for AttrPath {}

impl Hash for AttrPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Computed from the segments alone, so the same segments give the
        // same hash however the path was built.
        state.write_u32(self.structural_hash());
    }
}

impl PartialOrd for AttrPath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AttrPath {
    /// By segments from the root, as a vector of segments would compare.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.segments().cmp(&other.segments())
    }
}

impl fmt::Debug for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AttrPath").field(&self.segments()).finish()
    }
}

impl fmt::Display for AttrPath {
    /// `a.b."c/d".0`, or `<root>` for the empty path; used in log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str("<root>");
        }
        for (i, segment) in self.segments().into_iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{segment}")?;
        }
        Ok(())
    }
}

/// What kind of filesystem object a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// Attribute sets, derivations and lists.
    Directory,
    /// Strings, numbers, booleans, null, functions, the synthetic entries,
    /// and values whose evaluation fails.
    File,
    /// Paths, derivation outputs, and values identical to an ancestor.
    Symlink,
}

/// A value rendered as a filesystem node: everything `stat`, `readlink` and
/// `getxattr` need, without the contents of files (those come from
/// [`crate::Backend::read`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Directory, file or symlink.
    pub kind: NodeKind,
    /// For files, the exact length in bytes of what `read` returns (so that
    /// `st_size` is right before the first read). Zero otherwise.
    pub size: u64,
    /// For symlinks, the target (an absolute store path, or a relative path
    /// to an ancestor for cycles).
    pub target: Option<Vec<u8>>,
    /// The Nix type: `set`, `derivation`, `list`, `string`, `int`, `float`,
    /// `bool`, `null`, `path`, `lambda`, `primop`, ...; `error` for a value
    /// whose evaluation fails.
    ///
    /// One of a handful of names, so normally a borrowed literal: a big
    /// walk caches a node per entry.
    pub nix_type: Cow<'static, str>,
    /// Extended attributes beyond `user.nix.type` and `user.nix.error`
    /// (which [`Node::xattr`] answers from `nix_type` and `error`, so that
    /// the hundreds of thousands of nodes a walk caches do not each carry
    /// copies of them). Empty in what `stat` renders: the costly ones come
    /// from [`crate::Backend::xattrs`] when asked for.
    pub xattrs: XattrList,
    /// For an attribute whose value fails to evaluate: the error text. The
    /// entry is still well formed (listed, `lstat` succeeds: a regular file
    /// of size 0 with no permission bits), but `open` and `read` of it fail
    /// with EIO; the text is also in `user.nix.error`.
    pub error: Option<String>,
}

/// The Nix type names nodes normally carry, so that a name received as text
/// (from a worker) can be kept as a borrowed literal.
const TYPE_NAMES: &[&str] = &[
    "set",
    "derivation",
    "list",
    "string",
    "int",
    "float",
    "bool",
    "null",
    "path",
    "lambda",
    "error",
];

impl Node {
    /// A type name as [`Node::nix_type`] keeps it: the literal when it is
    /// one of the usual names (no allocation per node), else the text.
    pub fn type_name(name: String) -> Cow<'static, str> {
        match TYPE_NAMES.iter().find(|&&known| known == name) {
            Some(&known) => Cow::Borrowed(known),
            None => Cow::Owned(name),
        }
    }

    fn new(kind: NodeKind, nix_type: impl Into<Cow<'static, str>>) -> Self {
        Node {
            kind,
            size: 0,
            target: None,
            nix_type: nix_type.into(),
            xattrs: Vec::new(),
            error: None,
        }
    }

    /// A directory node (attribute set, derivation or list).
    pub fn directory(nix_type: impl Into<Cow<'static, str>>) -> Self {
        Node::new(NodeKind::Directory, nix_type)
    }

    /// A regular file whose contents are exactly `size` bytes.
    pub fn file(nix_type: impl Into<Cow<'static, str>>, size: u64) -> Self {
        Node {
            size,
            ..Node::new(NodeKind::File, nix_type)
        }
    }

    /// A symbolic link to `target`.
    pub fn symlink(nix_type: impl Into<Cow<'static, str>>, target: impl Into<Vec<u8>>) -> Self {
        Node {
            target: Some(target.into()),
            ..Node::new(NodeKind::Symlink, nix_type)
        }
    }

    /// The node of an attribute whose value fails to evaluate with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        let message = message.into();
        Node {
            kind: NodeKind::File,
            size: 0,
            target: None,
            nix_type: Cow::Borrowed("error"),
            xattrs: Vec::new(),
            error: Some(message),
        }
    }

    /// Adds (or replaces) an extended attribute.
    pub fn with_xattr(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        let value = value.into();
        match self.xattrs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.xattrs.push((name.to_owned(), value)),
        }
        self
    }

    /// The value of an extended attribute, if the node has it.
    pub fn xattr(&self, name: &str) -> Option<&[u8]> {
        match name {
            xattr::ERROR => self.error.as_deref().map(str::as_bytes),
            // A failing value's type is unknown: it has only the error.
            xattr::TYPE if self.error.is_none() => Some(self.nix_type.as_bytes()),
            xattr::TYPE => None,
            _ => self
                .xattrs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice()),
        }
    }

    /// Every extended attribute of the node, `user.nix.type` and
    /// `user.nix.error` included: what `listxattr` shows.
    pub fn into_xattrs(self) -> XattrList {
        let mut all = Vec::with_capacity(self.xattrs.len() + 1);
        match self.error {
            Some(message) => all.push((xattr::ERROR.to_owned(), message.into_bytes())),
            None => all.push((xattr::TYPE.to_owned(), self.nix_type.as_bytes().to_vec())),
        }
        all.extend(self.xattrs);
        all
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The raw name (not file-name encoded).
    pub name: Segment,
    /// The kind of the entry, if the backend already knows it without
    /// forcing the value (e.g. it was forced before). Listing a directory
    /// must not force its children, so this is usually `None`.
    pub kind: Option<NodeKind>,
}

impl DirEntry {
    /// An entry whose kind is not known yet.
    pub fn new(name: Segment) -> Self {
        DirEntry { name, kind: None }
    }

    /// An entry whose kind is already known.
    pub fn with_kind(name: Segment, kind: NodeKind) -> Self {
        DirEntry {
            name,
            kind: Some(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_is_not_an_identifier() {
        let path = AttrPath::root()
            .child(Segment::name("pkgs"))
            .child(Segment::name("a/b"))
            .child(Segment::index(3))
            .child(Segment::Drv);
        assert_eq!(path.to_string(), r#"pkgs."a/b".3.<.drv>"#);
        assert_eq!(AttrPath::root().to_string(), "<root>");
        assert_eq!(Segment::name("").to_string(), "\"\"");
    }

    #[test]
    fn parent_and_child_are_inverse() {
        let path = AttrPath::root().child(Segment::name("a"));
        assert_eq!(path.child(Segment::Context).parent(), Some(path.clone()));
        assert_eq!(path.parent(), Some(AttrPath::root()));
        assert_eq!(AttrPath::root().parent(), None);
    }

    #[test]
    fn paths_built_apart_are_equal_and_hash_alike() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |p: &AttrPath| {
            let mut h = DefaultHasher::new();
            p.hash(&mut h);
            h.finish()
        };
        let a = AttrPath::root()
            .child(Segment::name("x"))
            .child(Segment::name("y"));
        let b = AttrPath::from_segments(vec![Segment::name("x"), Segment::name("y")]);
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        assert_eq!(a.segments(), vec![&Segment::name("x"), &Segment::name("y")]);
        let c = AttrPath::from_segments(vec![Segment::name("x"), Segment::name("z")]);
        assert_ne!(a, c);
        assert_ne!(hash(&a), hash(&c));
        // The hash follows the order of the segments.
        let swapped = AttrPath::from_segments(vec![Segment::name("y"), Segment::name("x")]);
        assert_ne!(hash(&a), hash(&swapped));
        assert_ne!(a, a.parent().unwrap());
        assert!(b < c);
        assert_eq!(a.len(), 2);
        assert_eq!(format!("{a:?}"), r#"AttrPath([Name([120]), Name([121])])"#);
    }

    #[test]
    fn list_indices_must_be_canonical() {
        assert_eq!(Segment::index(12).as_index(), Some(12));
        assert_eq!(Segment::name("0").as_index(), Some(0));
        assert_eq!(Segment::name("01").as_index(), None);
        assert_eq!(Segment::name("-1").as_index(), None);
        assert_eq!(Segment::name("").as_index(), None);
        assert_eq!(Segment::Drv.as_index(), None);
    }

    #[test]
    fn failed_nodes_carry_the_error_xattr() {
        let node = Node::failed("boom");
        assert_eq!(node.xattr(xattr::ERROR), Some(&b"boom"[..]));
        assert_eq!(node.error.as_deref(), Some("boom"));
        let node = Node::file("string", 3).with_xattr(xattr::POSITION, "a.nix:1:2");
        assert_eq!(node.xattr(xattr::TYPE), Some(&b"string"[..]));
        assert_eq!(node.xattr(xattr::POSITION), Some(&b"a.nix:1:2"[..]));
    }
}
