//! The evaluator's only door to the filesystem.
//!
//! Everything the evaluator reads goes through [`EvalIO`], so tests can use a
//! fake and the daemon the real filesystem (docs/evaluator.md, "File
//! access").

use std::io;
use std::path::{Path, PathBuf};

/// Kind of a directory entry, as `builtins.readDir` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Anything else (sockets, devices...).
    Unknown,
}

impl FileType {
    /// The name `readDir`/`readFileType` give.
    pub fn nix_name(self) -> &'static str {
        match self {
            FileType::Regular => "regular",
            FileType::Directory => "directory",
            FileType::Symlink => "symlink",
            FileType::Unknown => "unknown",
        }
    }
}

/// What `lstat` says about a path, as much as the fetchers need to know
/// whether a local tree changed (its signature, its `lastModified`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The type, not following a final symlink.
    pub kind: FileType,
    /// Permission bits and file type, as `st_mode`.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time: seconds since the epoch.
    pub mtime: i64,
    /// Modification time: nanoseconds within the second.
    pub mtime_nsec: i64,
    /// Inode number.
    pub ino: u64,
}

/// File access for the evaluator.
pub trait EvalIO {
    /// The bytes of a file (following symlinks).
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Entries of a directory with their types (not following symlinks).
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>>;
    /// The type of a path without following a final symlink.
    fn file_type(&self, path: &Path) -> io::Result<FileType>;
    /// Whether a path exists (following symlinks).
    fn path_exists(&self, path: &Path) -> bool;
    /// The target of a symlink.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
    /// Whether a regular file is executable.
    fn is_executable(&self, path: &Path) -> io::Result<bool>;
    /// The absolute path with every symlink followed and no `.` or `..`
    /// (`realpath`); fails if it does not exist.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// `lstat` of a path (not following a final symlink).
    fn metadata(&self, path: &Path) -> io::Result<Metadata>;

    /// [`EvalIO::read_file`] with the SHA-256 of the bytes read, for a
    /// caller that needs both (the loader: a file's digest is part of its
    /// compiled-file cache key). A door that hashes what it reads anyway
    /// (the recording door, for the file's fingerprint) hands its digest
    /// on, so each imported file is hashed once; a door that wraps another
    /// forwards this call, not only `read_file`, for the same reason.
    fn read_file_hashed(&self, path: &Path) -> io::Result<(Vec<u8>, Digest)> {
        let bytes = self.read_file(path)?;
        let digest = sha256(&bytes);
        Ok((bytes, digest))
    }
}

/// The SHA-256 of a file's bytes.
pub type Digest = [u8; 32];

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// The real filesystem.
#[derive(Default, Debug, Clone, Copy)]
pub struct StdIO;

fn kind(ft: std::fs::FileType) -> FileType {
    if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_dir() {
        FileType::Directory
    } else if ft.is_file() {
        FileType::Regular
    } else {
        FileType::Unknown
    }
}

impl EvalIO for StdIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(path)? {
            let e = e?;
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                kind(e.file_type()?),
            ));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        Ok(kind(std::fs::symlink_metadata(path)?.file_type()))
    }

    fn path_exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }

    fn is_executable(&self, path: &Path) -> io::Result<bool> {
        use std::os::unix::fs::PermissionsExt;
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o111 != 0)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path)?;
        Ok(Metadata {
            kind: kind(m.file_type()),
            mode: m.mode(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ino: m.ino(),
        })
    }
}

/// One filesystem seen through two doors (the evaluator's, restricted in
/// pure mode, and the fetchers'), each holding a share of it.
pub struct SharedIO(pub std::rc::Rc<dyn EvalIO>);

impl EvalIO for SharedIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0.read_file(path)
    }

    fn read_file_hashed(&self, path: &Path) -> io::Result<(Vec<u8>, Digest)> {
        self.0.read_file_hashed(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>> {
        self.0.read_dir(path)
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        self.0.file_type(path)
    }

    fn path_exists(&self, path: &Path) -> bool {
        self.0.path_exists(path)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        self.0.read_link(path)
    }

    fn is_executable(&self, path: &Path) -> io::Result<bool> {
        self.0.is_executable(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.0.canonicalize(path)
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.0.metadata(path)
    }
}

/// The filesystem as `--pure-eval` sees it: only paths inside the store
/// (`/nix/store/HASH-NAME/...`) can be read; anything else is refused with
/// C++ Nix's message, and `pathExists` says `false` for it.
pub struct PureIO {
    inner: Box<dyn EvalIO>,
    store_dir: PathBuf,
}

impl PureIO {
    /// Wraps `inner`, allowing what lies under `store_dir`.
    pub fn new(inner: Box<dyn EvalIO>, store_dir: &str) -> Self {
        PureIO {
            inner,
            store_dir: PathBuf::from(store_dir),
        }
    }

    /// `Ok` for a path inside a store object, the refusal otherwise.
    fn check(&self, path: &Path) -> io::Result<()> {
        // Lexically normal first, so that `/nix/store/x/../../etc` is not
        // taken for a store path.
        let mut normal = PathBuf::new();
        for part in path.components() {
            match part {
                std::path::Component::ParentDir => {
                    normal.pop();
                }
                std::path::Component::CurDir => {}
                other => normal.push(other),
            }
        }
        match normal.strip_prefix(&self.store_dir) {
            Ok(rest) if rest.components().next().is_some() => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "access to absolute path '{}' is forbidden in pure eval mode (use '--impure' to override)",
                    path.display()
                ),
            )),
        }
    }
}

impl EvalIO for PureIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.check(path)?;
        self.inner.read_file(path)
    }

    fn read_file_hashed(&self, path: &Path) -> io::Result<(Vec<u8>, Digest)> {
        self.check(path)?;
        self.inner.read_file_hashed(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>> {
        self.check(path)?;
        self.inner.read_dir(path)
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        self.check(path)?;
        self.inner.file_type(path)
    }

    fn path_exists(&self, path: &Path) -> bool {
        self.check(path).is_ok() && self.inner.path_exists(path)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        self.check(path)?;
        self.inner.read_link(path)
    }

    fn is_executable(&self, path: &Path) -> io::Result<bool> {
        self.check(path)?;
        self.inner.is_executable(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.check(path)?;
        // A symlink in the store may point out of it.
        let target = self.inner.canonicalize(path)?;
        self.check(&target)?;
        Ok(target)
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.check(path)?;
        self.inner.metadata(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_io_allows_only_store_objects() {
        let io = PureIO::new(Box::new(StdIO), "/nix/store");
        for allowed in ["/nix/store/abc-x", "/nix/store/abc-x/lib/y.nix"] {
            assert!(io.check(Path::new(allowed)).is_ok(), "{allowed}");
        }
        for refused in [
            "/etc/passwd",
            "/nix/store",
            "/nix/store/",
            "/nix/store/abc-x/../../../etc/passwd",
            "/nix/storefront/x",
            "relative.nix",
        ] {
            let e = io.check(Path::new(refused)).unwrap_err();
            assert!(
                e.to_string().contains("forbidden in pure eval mode"),
                "{refused}"
            );
        }
        assert!(!io.path_exists(Path::new("/etc")));
    }
}
