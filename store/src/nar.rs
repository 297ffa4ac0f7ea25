//! The Nix ARchive (NAR): Nix's canonical serialisation of a file tree.
//!
//! A NAR is a sequence of strings, each written as a little-endian `u64`
//! length, the bytes, and zero padding to a multiple of 8:
//!
//! ```text
//! "nix-archive-1" node
//! node      = "(" "type" ( regular | symlink | directory ) ")"
//! regular   = "regular" [ "executable" "" ] "contents" <bytes>
//! symlink   = "symlink" "target" <target>
//! directory = "directory" { "entry" "(" "name" <name> "node" node ")" }
//! ```
//!
//! Directory entries come sorted bytewise by name. Only the owner-execute
//! bit survives; times, owners and other modes are not recorded.
//!
//! The tree is read through a [`NarSource`] so that the evaluator can
//! archive what it sees (its own view of the filesystem) and not only the
//! real one ([`FsSource`]). A filter callback, as `builtins.path { filter }`
//! and `builtins.filterSource` pass, decides which entries are kept; the
//! root itself is never filtered. Hashing streams the archive into the
//! hasher without building it in memory.

use std::convert::Infallible;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::hash::{Hash, HashAlgo, Hasher};

/// The magic string every NAR starts with.
pub const NAR_MAGIC: &str = "nix-archive-1";

/// The type of a filesystem entry, as `builtins.path`'s filter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A regular file (executable or not).
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link (never followed).
    Symlink,
    /// Anything else (socket, FIFO, device); cannot be archived.
    Unknown,
}

impl Kind {
    /// The name Nix gives the type (`"regular"`, `"directory"`, `"symlink"`,
    /// `"unknown"`), as passed to filter functions and `readDir`.
    pub const fn nix_name(self) -> &'static str {
        match self {
            Kind::Regular => "regular",
            Kind::Directory => "directory",
            Kind::Symlink => "symlink",
            Kind::Unknown => "unknown",
        }
    }
}

/// A read-only view of a file tree that can be archived.
///
/// Paths are the ones passed to the archiving functions, extended with
/// `Path::join` for directory entries. No method follows a symlink at the
/// path itself except [`NarSource::open_file`] (flat hashing reads through
/// links, as Nix does).
pub trait NarSource {
    /// The type of the entry at `path` (like `lstat`).
    fn kind(&self, path: &Path) -> io::Result<Kind>;

    /// Whether the regular file at `path` has its owner-execute bit set.
    fn is_executable(&self, path: &Path) -> io::Result<bool>;

    /// The whole contents of the regular file at `path`.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// The names of the entries of the directory at `path`, without `.` and
    /// `..`, in any order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;

    /// The target of the symlink at `path`.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;

    /// The size of a regular file and a reader over its contents, for
    /// streaming large files. The default reads the whole file with
    /// [`NarSource::read_file`].
    fn open_file(&self, path: &Path) -> io::Result<(u64, Box<dyn Read + '_>)> {
        let contents = self.read_file(path)?;
        Ok((contents.len() as u64, Box::new(io::Cursor::new(contents))))
    }
}

/// The real filesystem, through `std::fs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsSource;

impl NarSource for FsSource {
    fn kind(&self, path: &Path) -> io::Result<Kind> {
        let file_type = fs::symlink_metadata(path)?.file_type();
        Ok(if file_type.is_file() {
            Kind::Regular
        } else if file_type.is_dir() {
            Kind::Directory
        } else if file_type.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Unknown
        })
    }

    fn is_executable(&self, path: &Path) -> io::Result<bool> {
        Ok(fs::symlink_metadata(path)?.permissions().mode() & 0o100 != 0)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(path)
    }

    fn open_file(&self, path: &Path) -> io::Result<(u64, Box<dyn Read + '_>)> {
        let file = fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok((len, Box::new(file)))
    }
}

/// Why a tree could not be archived or hashed. `E` is the filter's error.
#[derive(Debug, Error)]
pub enum NarError<E = Infallible> {
    /// The source failed on an operation (`what`) at `path`.
    #[error("{what} '{path}': {source}", path = path.display())]
    Io {
        /// What was being done, e.g. "getting status of".
        what: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The entry is neither a regular file, a directory nor a symlink.
    #[error("file '{path}' has an unsupported type", path = .0.display())]
    UnsupportedType(PathBuf),
    /// A file yielded fewer bytes than its announced size.
    #[error("file '{path}' is shorter than its size {expected}", path = path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The size announced by [`NarSource::open_file`].
        expected: u64,
    },
    /// The sink the archive is written to failed.
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
    /// The filter callback failed.
    #[error("{0}")]
    Filter(E),
}

/// A filter that keeps everything, for archiving without `filter`.
pub fn keep_all(_path: &Path, _kind: Kind) -> Result<bool, Infallible> {
    Ok(true)
}

/// Writes the NAR of `root` (read through `source`, entries chosen by
/// `filter`) to `sink`; returns the archive size in bytes.
pub fn dump<S, E>(
    source: &S,
    root: &Path,
    filter: &mut dyn FnMut(&Path, Kind) -> Result<bool, E>,
    sink: &mut dyn Write,
) -> Result<u64, NarError<E>>
where
    S: NarSource + ?Sized,
{
    let mut out = NarSink {
        inner: sink,
        written: 0,
    };
    out.string(NAR_MAGIC.as_bytes())?;
    let kind = io_at(source.kind(root), "getting status of", root)?;
    dump_node(source, root, kind, filter, &mut out)?;
    Ok(out.written)
}

/// The NAR of `root` as bytes (for small trees and tests; hashing should
/// use [`nar_hash`], which streams).
pub fn dump_to_vec<S, E>(
    source: &S,
    root: &Path,
    filter: &mut dyn FnMut(&Path, Kind) -> Result<bool, E>,
) -> Result<Vec<u8>, NarError<E>>
where
    S: NarSource + ?Sized,
{
    let mut buf = Vec::new();
    dump(source, root, filter, &mut buf)?;
    Ok(buf)
}

/// The `algo` hash of the NAR of `root` and the NAR's size, streaming
/// (Nix's `hashPath`, the "recursive" ingestion hash).
pub fn nar_hash<S, E>(
    algo: HashAlgo,
    source: &S,
    root: &Path,
    filter: &mut dyn FnMut(&Path, Kind) -> Result<bool, E>,
) -> Result<(Hash, u64), NarError<E>>
where
    S: NarSource + ?Sized,
{
    let mut hasher = Hasher::new(algo);
    let size = dump(source, root, filter, &mut hasher)?;
    Ok((hasher.finish(), size))
}

/// The sha256 NAR hash of `root` and the NAR's size: what `builtins.path`,
/// `filterSource` and path interpolation store paths are computed from.
pub fn nar_hash_sha256<S, E>(
    source: &S,
    root: &Path,
    filter: &mut dyn FnMut(&Path, Kind) -> Result<bool, E>,
) -> Result<(Hash, u64), NarError<E>>
where
    S: NarSource + ?Sized,
{
    nar_hash(HashAlgo::Sha256, source, root, filter)
}

/// The `algo` hash of the contents of the file at `path` ("flat"
/// ingestion: `outputHashMode = "flat"`, `builtins.path { recursive =
/// false; }`, `builtins.hashFile`). Symlinks are followed as Nix does.
pub fn flat_hash<S>(algo: HashAlgo, source: &S, path: &Path) -> Result<Hash, NarError>
where
    S: NarSource + ?Sized,
{
    let (_, mut reader) = io_at(source.open_file(path), "opening file", path)?;
    let mut hasher = Hasher::new(algo);
    io_at(io::copy(&mut reader, &mut hasher), "reading file", path)?;
    Ok(hasher.finish())
}

/// Attaches what was being done and where to an I/O error.
fn io_at<T, E>(result: io::Result<T>, what: &'static str, path: &Path) -> Result<T, NarError<E>> {
    result.map_err(|source| NarError::Io {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Writes one node (the part between and including `(` and `)`).
fn dump_node<S, E>(
    source: &S,
    path: &Path,
    kind: Kind,
    filter: &mut dyn FnMut(&Path, Kind) -> Result<bool, E>,
    out: &mut NarSink<'_>,
) -> Result<(), NarError<E>>
where
    S: NarSource + ?Sized,
{
    match kind {
        Kind::Regular => {
            out.strings(&[b"(", b"type", b"regular"])?;
            if io_at(source.is_executable(path), "getting status of", path)? {
                out.strings(&[b"executable", b""])?;
            }
            out.string(b"contents")?;
            let (len, reader) = io_at(source.open_file(path), "opening file", path)?;
            out.contents(path, len, reader)?;
        }
        Kind::Symlink => {
            let target = io_at(source.read_link(path), "reading symbolic link", path)?;
            out.strings(&[b"(", b"type", b"symlink", b"target"])?;
            out.string(target.as_os_str().as_bytes())?;
        }
        Kind::Directory => {
            out.strings(&[b"(", b"type", b"directory"])?;
            let mut names = io_at(source.read_dir(path), "reading directory", path)?;
            names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in names {
                let child = path.join(&name);
                let child_kind = io_at(source.kind(&child), "getting status of", &child)?;
                if !filter(&child, child_kind).map_err(NarError::Filter)? {
                    continue;
                }
                out.strings(&[b"entry", b"(", b"name", name.as_bytes(), b"node"])?;
                dump_node(source, &child, child_kind, filter, out)?;
                out.string(b")")?;
            }
        }
        Kind::Unknown => return Err(NarError::UnsupportedType(path.to_path_buf())),
    }
    out.string(b")")
}

/// The output side of [`dump`]: NAR string framing and a byte count.
struct NarSink<'a> {
    inner: &'a mut dyn Write,
    written: u64,
}

impl NarSink<'_> {
    fn raw<E>(&mut self, bytes: &[u8]) -> Result<(), NarError<E>> {
        self.inner.write_all(bytes).map_err(NarError::Write)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn padding<E>(&mut self, len: u64) -> Result<(), NarError<E>> {
        let pad = (8 - len % 8) % 8;
        self.raw(&[0u8; 8][..pad as usize])
    }

    fn string<E>(&mut self, s: &[u8]) -> Result<(), NarError<E>> {
        self.raw(&(s.len() as u64).to_le_bytes())?;
        self.raw(s)?;
        self.padding(s.len() as u64)
    }

    fn strings<E>(&mut self, strings: &[&[u8]]) -> Result<(), NarError<E>> {
        strings.iter().try_for_each(|s| self.string(s))
    }

    /// Copies exactly `len` bytes of a file's contents as one NAR string.
    fn contents<E>(
        &mut self,
        path: &Path,
        len: u64,
        reader: Box<dyn Read + '_>,
    ) -> Result<(), NarError<E>> {
        self.raw(&len.to_le_bytes())?;
        let mut limited = reader.take(len);
        let mut buf = [0u8; 64 * 1024];
        let mut copied = 0u64;
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return io_at(Err(e), "reading file", path),
            };
            self.raw(&buf[..n])?;
            copied += n as u64;
        }
        if copied != len {
            return Err(NarError::Truncated {
                path: path.to_path_buf(),
                expected: len,
            });
        }
        self.padding(len)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch directory removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("attrfs-store-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Builds the tree the reference values below were computed from:
    ///
    /// ```sh
    /// mkdir -p tree/bin tree/sub/deeper tree/sub/emptydir
    /// printf 'hello\n' > tree/a.txt
    /// printf '#!/bin/sh\necho hi\n' > tree/bin/run; chmod 755 tree/bin/run
    /// ln -s a.txt tree/link
    /// : > tree/sub/deeper/empty
    /// printf 'upper' > tree/B
    /// ```
    pub(crate) fn make_tree(tag: &str) -> (TempDir, PathBuf) {
        let tmp = TempDir::new(tag);
        let tree = tmp.0.join("tree");
        fs::create_dir_all(tree.join("bin")).unwrap();
        fs::create_dir_all(tree.join("sub/deeper")).unwrap();
        fs::create_dir_all(tree.join("sub/emptydir")).unwrap();
        fs::write(tree.join("a.txt"), "hello\n").unwrap();
        fs::write(tree.join("bin/run"), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(tree.join("bin/run"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(tree.join("a.txt"), fs::Permissions::from_mode(0o644)).unwrap();
        symlink("a.txt", tree.join("link")).unwrap();
        fs::write(tree.join("sub/deeper/empty"), "").unwrap();
        fs::write(tree.join("B"), "upper").unwrap();
        (tmp, tree)
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        Hash::digest(HashAlgo::Sha256, bytes).to_base16()
    }

    // `nix-store --dump tree/a.txt | xxd` with C++ Nix 2.8.
    const A_TXT_NAR: &[u8] = b"\x0d\0\0\0\0\0\0\0nix-archive-1\0\0\0\
        \x01\0\0\0\0\0\0\0(\0\0\0\0\0\0\0\
        \x04\0\0\0\0\0\0\0type\0\0\0\0\
        \x07\0\0\0\0\0\0\0regular\0\
        \x08\0\0\0\0\0\0\0contents\
        \x06\0\0\0\0\0\0\0hello\n\0\0\
        \x01\0\0\0\0\0\0\0)\0\0\0\0\0\0\0";

    #[test]
    fn regular_file_bytes() {
        let (_tmp, tree) = make_tree("file");
        let nar = dump_to_vec(&FsSource, &tree.join("a.txt"), &mut keep_all).unwrap();
        assert_eq!(nar, A_TXT_NAR);
    }

    // `nix-store --dump X | sha256sum` and `| wc -c` with C++ Nix 2.8.
    #[test]
    fn matches_nix_store_dump() {
        let (_tmp, tree) = make_tree("dump");
        let cases = [
            (
                "a.txt",
                "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13",
                120,
            ),
            (
                "bin/run",
                "5e0accf02cedede5e4119ffa15e79e79a5fb1fb9bc43c3d434f33227a14477a0",
                168,
            ),
            (
                "link",
                "8d3c00cfa866e4d1b809772afeac240786246221eb2c574d69c4bba168834e81",
                120,
            ),
            (
                "",
                "6aabb4ad6b2b07413c342a783e622783378624a6e5268e37bb78e2b66643ad02",
                1768,
            ),
        ];
        for (rel, hex, len) in cases {
            let path = if rel.is_empty() {
                tree.clone()
            } else {
                tree.join(rel)
            };
            let nar = dump_to_vec(&FsSource, &path, &mut keep_all).unwrap();
            assert_eq!(nar.len(), len, "{rel}");
            assert_eq!(sha256_hex(&nar), hex, "{rel}");
            let (hash, size) = nar_hash_sha256(&FsSource, &path, &mut keep_all).unwrap();
            assert_eq!(hash.to_base16(), hex, "{rel}");
            assert_eq!(size, len as u64);
        }
    }

    // `nix-hash --type sha256 --base32 tree` with C++ Nix 2.8.
    #[test]
    fn nar_hash_nix32() {
        let (_tmp, tree) = make_tree("nix32");
        let (hash, _) = nar_hash_sha256(&FsSource, &tree, &mut keep_all).unwrap();
        assert_eq!(
            hash.to_nix32(),
            "00md8dkbdqkqpcvqw9p5lqj8cdw34xi3wy1a6hy421rbdfnv9ava"
        );
    }

    // The same tree with `link` and `sub/deeper` removed, dumped by C++ Nix 2.8.
    #[test]
    fn filter_drops_entries_but_never_the_root() {
        let (_tmp, tree) = make_tree("filter");
        let mut seen = Vec::new();
        let mut filter = |p: &Path, k: Kind| -> Result<bool, Infallible> {
            seen.push((p.strip_prefix(&tree).unwrap().to_path_buf(), k));
            Ok(k != Kind::Symlink && p.file_name() != Some("deeper".as_ref()))
        };
        let (hash, size) = nar_hash_sha256(&FsSource, &tree, &mut filter).unwrap();
        assert_eq!(
            hash.to_base16(),
            "f3c6e49e97e79e0a4fb48f92f625cdba8f20ef18fb76f0fa4ab1fbe9eb3e2836"
        );
        assert_eq!(size, 1224);
        // Visited in NAR order, excluded directories not entered, root not asked.
        let seen: Vec<String> = seen
            .iter()
            .map(|(p, k)| format!("{} {}", p.display(), k.nix_name()))
            .collect();
        assert_eq!(
            seen,
            [
                "B regular",
                "a.txt regular",
                "bin directory",
                "bin/run regular",
                "link symlink",
                "sub directory",
                "sub/deeper directory",
                "sub/emptydir directory",
            ]
        );
        // A filter rejecting everything still archives the root (as an empty directory).
        let nar = dump_to_vec(&FsSource, &tree, &mut |_: &Path, _| {
            Ok::<_, Infallible>(false)
        })
        .unwrap();
        // magic (8 + 16), "(" (16), "type" (16), "directory" (8 + 16), ")" (16).
        assert_eq!(nar.len(), 96);
    }

    #[test]
    fn filter_errors_propagate() {
        let (_tmp, tree) = make_tree("filter-err");
        let err = nar_hash_sha256(&FsSource, &tree, &mut |_: &Path, _| Err("boom")).unwrap_err();
        assert!(matches!(err, NarError::Filter("boom")));
        assert_eq!(err.to_string(), "boom");
    }

    #[test]
    fn missing_path_is_an_error() {
        let tmp = TempDir::new("missing");
        let err = nar_hash_sha256(&FsSource, &tmp.0.join("nope"), &mut keep_all).unwrap_err();
        assert!(err.to_string().starts_with("getting status of '"), "{err}");
    }

    #[test]
    fn fifo_is_unsupported() {
        let tmp = TempDir::new("fifo");
        let fifo = tmp.0.join("fifo");
        // No libc dependency: use mkfifo(1) if available, skip otherwise.
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !matches!(made, Ok(s) if s.success()) {
            return;
        }
        assert_eq!(FsSource.kind(&fifo).unwrap(), Kind::Unknown);
        let err = dump_to_vec(&FsSource, &tmp.0, &mut keep_all).unwrap_err();
        assert!(
            err.to_string().ends_with("has an unsupported type"),
            "{err}"
        );
        // Filtered out, it is no problem.
        let ok = dump_to_vec(&FsSource, &tmp.0, &mut |_: &Path, k| {
            Ok::<_, Infallible>(k != Kind::Unknown)
        });
        assert!(ok.is_ok());
    }

    #[test]
    fn flat_hash_of_file_and_through_symlink() {
        let (_tmp, tree) = make_tree("flat");
        // `nix-hash --flat --type sha256 / sha1 tree/a.txt` with C++ Nix 2.8.
        let sha256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        let h = flat_hash(HashAlgo::Sha256, &FsSource, &tree.join("a.txt")).unwrap();
        assert_eq!(h.to_base16(), sha256);
        assert_eq!(
            h.to_nix32(),
            "00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq"
        );
        let h = flat_hash(HashAlgo::Sha1, &FsSource, &tree.join("link")).unwrap();
        assert_eq!(h.to_base16(), "f572d396fae9206628714fb2ce00f72e94f2258f");
        assert!(flat_hash(HashAlgo::Sha1, &FsSource, &tree.join("bin")).is_err());
    }

    /// An in-memory tree, to show the trait is enough on its own.
    enum Node {
        File(&'static [u8], bool),
        Dir(BTreeMap<&'static str, Node>),
        Link(&'static str),
    }

    impl Node {
        fn at(&self, path: &Path) -> io::Result<&Node> {
            let mut node = self;
            for part in path.iter().skip(1) {
                node = match node {
                    Node::Dir(entries) => entries
                        .get(part.to_str().unwrap())
                        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?,
                    _ => return Err(io::ErrorKind::NotFound.into()),
                };
            }
            Ok(node)
        }
    }

    impl NarSource for Node {
        fn kind(&self, path: &Path) -> io::Result<Kind> {
            Ok(match self.at(path)? {
                Node::File(..) => Kind::Regular,
                Node::Dir(_) => Kind::Directory,
                Node::Link(_) => Kind::Symlink,
            })
        }
        fn is_executable(&self, path: &Path) -> io::Result<bool> {
            Ok(matches!(self.at(path)?, Node::File(_, true)))
        }
        fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
            match self.at(path)? {
                Node::File(c, _) => Ok(c.to_vec()),
                _ => Err(io::ErrorKind::InvalidInput.into()),
            }
        }
        fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
            match self.at(path)? {
                // Deliberately reversed: the archiver must sort.
                Node::Dir(e) => Ok(e.keys().rev().map(OsString::from).collect()),
                _ => Err(io::ErrorKind::InvalidInput.into()),
            }
        }
        fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
            match self.at(path)? {
                Node::Link(t) => Ok(PathBuf::from(t)),
                _ => Err(io::ErrorKind::InvalidInput.into()),
            }
        }
    }

    #[test]
    fn in_memory_source_matches_filesystem() {
        let tree = Node::Dir(BTreeMap::from([
            ("a.txt", Node::File(b"hello\n", false)),
            ("B", Node::File(b"upper", false)),
            (
                "bin",
                Node::Dir(BTreeMap::from([(
                    "run",
                    Node::File(b"#!/bin/sh\necho hi\n", true),
                )])),
            ),
            ("link", Node::Link("a.txt")),
            (
                "sub",
                Node::Dir(BTreeMap::from([
                    (
                        "deeper",
                        Node::Dir(BTreeMap::from([("empty", Node::File(b"", false))])),
                    ),
                    ("emptydir", Node::Dir(BTreeMap::new())),
                ])),
            ),
        ]));
        let (hash, size) = nar_hash_sha256(&tree, Path::new("/"), &mut keep_all).unwrap();
        assert_eq!(
            hash.to_base16(),
            "6aabb4ad6b2b07413c342a783e622783378624a6e5268e37bb78e2b66643ad02"
        );
        assert_eq!(size, 1768);
        let nar = dump_to_vec(&tree, Path::new("/a.txt"), &mut keep_all).unwrap();
        assert_eq!(nar, A_TXT_NAR);
    }

    #[test]
    fn truncated_file_is_an_error() {
        struct Liar;
        impl NarSource for Liar {
            fn kind(&self, _: &Path) -> io::Result<Kind> {
                Ok(Kind::Regular)
            }
            fn is_executable(&self, _: &Path) -> io::Result<bool> {
                Ok(false)
            }
            fn read_file(&self, _: &Path) -> io::Result<Vec<u8>> {
                Ok(b"abc".to_vec())
            }
            fn read_dir(&self, _: &Path) -> io::Result<Vec<OsString>> {
                Ok(vec![])
            }
            fn read_link(&self, _: &Path) -> io::Result<PathBuf> {
                Ok(PathBuf::new())
            }
            fn open_file(&self, _: &Path) -> io::Result<(u64, Box<dyn Read + '_>)> {
                Ok((10, Box::new(&b"abc"[..])))
            }
        }
        let err = dump_to_vec(&Liar, Path::new("/f"), &mut keep_all).unwrap_err();
        assert!(matches!(err, NarError::Truncated { expected: 10, .. }));
    }
}
