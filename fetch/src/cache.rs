//! Where fetched store objects live.
//!
//! A store object is named by its store path base name
//! (`<hash>-<name>`). Its contents are looked for in the Nix store
//! directory first (`/nix/store`, or `$ATTRFS_NIX_STORE` so that tests can
//! pretend a path is there without writing to the real store), then in
//! attrfs's cache (`$XDG_CACHE_HOME/attrfs`, else `~/.cache/attrfs`, or
//! `$ATTRFS_CACHE_DIR`), under `store/`. Fetches unpack into `tmp/` and are
//! moved into `store/` only once verified, so a half-done fetch is never
//! taken for a store object; two processes fetching the same thing both
//! succeed (the second rename loses and its copy is dropped).

use crate::{io_err, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The two places store objects are read from.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
    nix_store: PathBuf,
}

impl Cache {
    /// The cache of this user: `$ATTRFS_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/attrfs`, else `$HOME/.cache/attrfs` (else
    /// `/tmp/attrfs-cache`); the Nix store is `$ATTRFS_NIX_STORE`, else
    /// `/nix/store`.
    pub fn from_env() -> Cache {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = env("ATTRFS_CACHE_DIR")
            .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("attrfs")))
            .or_else(|| env("HOME").map(|p| p.join(".cache/attrfs")))
            .unwrap_or_else(|| PathBuf::from("/tmp/attrfs-cache"));
        let nix_store = env("ATTRFS_NIX_STORE").unwrap_or_else(|| PathBuf::from("/nix/store"));
        Cache::new(root, nix_store)
    }

    /// A cache rooted at `root`, reading existing objects from `nix_store`.
    pub fn new(root: PathBuf, nix_store: PathBuf) -> Cache {
        Cache { root, nix_store }
    }

    /// The Nix store directory objects are looked for first.
    pub fn nix_store(&self) -> &Path {
        &self.nix_store
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the contents of store object `base_name` are, if anywhere:
    /// the Nix store first, then the cache.
    pub fn locate(&self, base_name: &str) -> Option<PathBuf> {
        [
            self.nix_store.join(base_name),
            self.root.join("store").join(base_name),
        ]
        .into_iter()
        .find(|p| p.symlink_metadata().is_ok())
    }

    /// A fresh, empty scratch directory under the cache (removed when the
    /// returned guard is dropped).
    pub fn scratch(&self) -> Result<Scratch> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = self
            .root
            .join("tmp")
            .join(format!("{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io_err("creating directory", &dir))?;
        Ok(Scratch(dir))
    }

    /// Moves verified contents at `from` into the cache as store object
    /// `base_name` and returns where it now is. If another fetch got there
    /// first, its copy is kept.
    pub fn install(&self, from: &Path, base_name: &str) -> Result<PathBuf> {
        let store = self.root.join("store");
        std::fs::create_dir_all(&store).map_err(io_err("creating directory", &store))?;
        let dest = store.join(base_name);
        if dest.symlink_metadata().is_ok() {
            return Ok(dest);
        }
        match std::fs::rename(from, &dest) {
            Ok(()) => Ok(dest),
            Err(_) if dest.symlink_metadata().is_ok() => Ok(dest),
            Err(e) => Err(io_err("moving into the cache", &dest)(e)),
        }
    }

    /// A small record the fetchers keep under `table` by `key` (what a URL
    /// last downloaded to, the tree of a git revision, the hash of a local
    /// tree by its signature); `None` if there is none or it cannot be read.
    pub fn record(&self, table: &str, key: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(table).join(key)).ok()
    }

    /// Keeps a record for [`Cache::record`]. Best effort: a record that
    /// cannot be written is only a miss next time.
    pub fn keep_record(&self, table: &str, key: &str, text: &str) {
        let dir = self.root.join(table);
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(key), text);
    }

    /// The cache's clone of a remote git repository (a bare repository).
    pub fn git_repo(&self, url: &str) -> PathBuf {
        // FNV-1a: a stable, dependency-free name; the URL is also kept in
        // the name (sanitised) so that the directory is recognisable.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in url.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let tail: String = url
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("repo")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        self.root.join("git").join(format!("{h:016x}-{tail}"))
    }
}

/// A scratch directory, removed on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A new directory `name` inside it.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.0.join(name);
        std::fs::create_dir_all(&dir).map_err(io_err("creating directory", &dir))?;
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        make_writable(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Tarballs may contain read-only directories; give the owner write access
/// again so that a scratch copy can be removed.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = dir.symlink_metadata() else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            make_writable(&e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cache;

    #[test]
    fn nix_store_first_then_cache() {
        let base = std::env::temp_dir().join(format!("attrfs-cache-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let cache = Cache::new(base.join("cache"), base.join("nix-store"));
        assert_eq!(cache.locate("x-source"), None);
        let scratch = cache.scratch().unwrap();
        let src = scratch.path().join("out");
        std::fs::create_dir_all(&src).unwrap();
        let at = cache.install(&src, "x-source").unwrap();
        assert_eq!(cache.locate("x-source"), Some(at.clone()));
        std::fs::create_dir_all(base.join("nix-store/x-source")).unwrap();
        assert_eq!(
            cache.locate("x-source"),
            Some(base.join("nix-store/x-source"))
        );
        drop(scratch);
        let _ = std::fs::remove_dir_all(&base);
    }
}
