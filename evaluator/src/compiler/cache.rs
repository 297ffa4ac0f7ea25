//! The compiled-file cache: a file whose text (and everything else its
//! compiled form depends on) is unchanged is not parsed and compiled again
//! by the next `attrfs eval`, mount worker or restarted worker.
//!
//! Entries live in `compiled/` under attrfs's cache directory (the fetch
//! cache's: `$ATTRFS_CACHE_DIR`, else `$XDG_CACHE_HOME/attrfs`, else
//! `~/.cache/attrfs`), one file per key, named by the key in hex. The key
//! is a SHA-256 of everything a compile reads: this build of attrfs (see
//! [`build_identity`]), the image format, the lints, `$HOME` (for `~/`
//! paths), the file's name, path and directory (error positions, `__curPos`,
//! relative paths) and the names of the global scope (which identifiers
//! are globals) with whether each is a thunk (whether its use is forced);
//! then the text itself, or, for a file read through
//! [`crate::io::EvalIO::read_file_hashed`], the SHA-256 of its bytes (the
//! same digest its recorded fingerprint is made of, so the file is hashed
//! once). The values of the globals are not
//! in the key: an image refers to them by name (see [`crate::image`]).
//!
//! An entry is a header (magic, format version, its key, the payload's
//! length and CRC-32) and an image. The checksum is there to notice
//! damage (a torn disk block, a flipped bit), not tampering: the directory
//! is the user's own, and the key, not the checksum, is what ties an
//! entry to its source. CRC-32 detects every burst of up to 32 bits and
//! runs at memory speed; SHA-256 of the payloads was 0.5% of the NixOS
//! toplevel's evaluation. It is written to a temporary file and
//! renamed into place, so a reader sees a whole entry or none; an entry
//! whose header, key, length or checksum does not match, or whose image
//! does not load, is ignored and overwritten by a fresh compile. An image's
//! chunks are decoded when first run ([`crate::image`]): one that fails its
//! checks then (past the checksum, which takes a bug or a forged entry) is
//! code aborting the evaluation with an error that says so, and the entry
//! is removed, so the next evaluation compiles the file afresh. Files
//! that fail to parse or compile are not cached; neither is anything while
//! a lint is at `warn` (a cached file would skip its warnings).
//!
//! The directory is kept under a size bound (default 512 MiB): the first
//! store of a process (if no process has within the hour), and every eighth
//! of the bound written after, scans it in the background and removes the least recently used entries (a hit refreshes an
//! entry's modification time, at most once a day) until it is under three
//! quarters of the bound.

use super::{compile_recording, CompileEnv, Lambda};
use crate::compiler::LintLevel;
use crate::errors::Error;
use crate::source::SourceFile;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Bump whenever the image layout ([`crate::image`]), the bytecode or the
/// compiler's output changes in a way the build identity might not catch.
pub const FORMAT_VERSION: u32 = 7;

const MAGIC: &[u8; 8] = b"attrfsCC";
/// Magic, format version, key, payload length, payload CRC-32.
const HEADER_LEN: usize = 8 + 4 + 32 + 8 + 4;

/// The default size bound of the cache directory.
pub const DEFAULT_MAX_BYTES: u64 = 512 << 20;

/// An entry used within this long is not touched again on a hit.
const TOUCH_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Temporary files older than this are debris of a crashed writer.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// Where the cache is and how big it may grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// The directory of entries.
    pub dir: PathBuf,
    /// Bound on the entries' total size, in bytes.
    pub max_bytes: u64,
}

impl CacheConfig {
    /// The cache as the environment configures it, or `None` when
    /// `ATTRFS_NO_COMPILE_CACHE` is set (to anything but empty or `0`):
    /// `compiled/` under attrfs's cache directory, bounded by
    /// `ATTRFS_COMPILE_CACHE_MAX_MB` mebibytes (default 512).
    pub fn from_env() -> Option<CacheConfig> {
        if std::env::var_os("ATTRFS_NO_COMPILE_CACHE").is_some_and(|v| !v.is_empty() && v != "0") {
            return None;
        }
        let max_bytes = std::env::var("ATTRFS_COMPILE_CACHE_MAX_MB")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_MAX_BYTES, |mb| mb.saturating_mul(1 << 20));
        Some(CacheConfig {
            dir: attrfs_fetch::Cache::from_env().root().join("compiled"),
            max_bytes,
        })
    }
}

/// Parses and compiles `file` into the zero-argument lambda of its value,
/// through the cache when one is given: the one function every loader of
/// source files calls. Errors are those of [`crate::syntax::parse_error`]
/// and the compiler, with spans in `file`.
pub fn compile_cached(
    file: &Rc<SourceFile>,
    env: &CompileEnv,
    cache: Option<&CacheConfig>,
) -> Result<Rc<Lambda>, Error> {
    let lints = [
        env.lints.absolute_path_literals,
        env.lints.short_path_literals,
        env.lints.url_literals,
    ];
    let cache = cache.filter(|_| !lints.contains(&LintLevel::Warn));
    let Some(cache) = cache else {
        return super::compile(&crate::syntax::parse(file)?, file, env);
    };
    let key = key(file, env);
    let path = cache.dir.join(hex(&key));
    if let Some(entry) = load(&path, &key) {
        // A chunk found damaged when first decoded (past the checksum:
        // a bug) is an error for this evaluation; the next compiles afresh.
        let stale = path.clone();
        let on_damage = Box::new(move || {
            let _ = std::fs::remove_file(&stale);
        });
        if let Ok(lambda) =
            crate::image::decode(entry, HEADER_LEN, file, env.globals, Some(on_damage))
        {
            return Ok(lambda);
        }
    }
    let (lambda, uses) = compile_recording(&crate::syntax::parse(file)?, file, env)?;
    if let Ok(image) = crate::image::encode(&lambda, file, &uses) {
        // A cache that cannot be written (read-only, full disk) only
        // costs the next run a compile.
        let _ = store(cache, &path, &key, &image);
    }
    Ok(lambda)
}

/// This build of attrfs: its version and the size, modification time and
/// inode of the running executable, so that any rebuild (a changed
/// compiler, VM or builtin set) starts with a fresh key space. Computed
/// once per process; hashing the executable itself would cost more than
/// compiling a small file.
pub fn build_identity() -> &'static [u8] {
    static ID: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let mut id = Vec::new();
        id.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
        id.push(0);
        if let Ok(m) = std::env::current_exe().and_then(std::fs::metadata) {
            for v in [
                m.len(),
                m.dev(),
                m.ino(),
                m.mtime() as u64,
                m.mtime_nsec() as u64,
            ] {
                id.extend_from_slice(&v.to_le_bytes());
            }
        }
        id
    })
}

/// The cache key of compiling `file` in `env`.
fn key(file: &SourceFile, env: &CompileEnv) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(MAGIC);
    field(&FORMAT_VERSION.to_le_bytes());
    field(build_identity());
    let level = |l: LintLevel| l as u8;
    field(&[
        level(env.lints.absolute_path_literals),
        level(env.lints.short_path_literals),
        level(env.lints.url_literals),
    ]);
    let path_bytes = |p: &Path| {
        use std::os::unix::ffi::OsStrExt;
        p.as_os_str().as_bytes().to_vec()
    };
    match &env.home {
        Some(home) => field(&path_bytes(home)),
        None => field(b"\0no home"),
    }
    field(&path_bytes(&env.base_dir));
    field(file.name.as_bytes());
    match &file.path {
        Some(p) => field(&path_bytes(p)),
        None => field(b"\0no path"),
    }
    // Which names are globals decides what an identifier compiles to; and
    // whether a global is a thunk decides whether a `Force` follows its
    // constant. Nothing else of the values is read by the compiler.
    let mut names: Vec<(&str, bool)> = env
        .globals
        .iter()
        .map(|(n, v)| (n.as_str(), matches!(v, crate::value::Value::Thunk(_))))
        .collect();
    names.sort_unstable();
    field(&(names.len() as u64).to_le_bytes());
    for (n, thunk) in names {
        field(n.as_bytes());
        field(&[thunk as u8]);
    }
    // The text, or the digest of the bytes it was decoded from (a
    // deterministic function of them) when the reader had one: each
    // imported file is then hashed once, for its recorded fingerprint
    // and this key together.
    match file.digest() {
        Some(d) => {
            field(b"\0bytes sha256");
            field(d);
        }
        None => field(file.text().unwrap_or_default().as_bytes()),
    }
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// The entry at `path` (its image after [`HEADER_LEN`] bytes) if it is
/// whole and for `key`.
fn load(path: &Path, key: &[u8; 32]) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    let meta = f.metadata().ok()?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut bytes).ok()?;
    check_entry(&bytes, key)?;
    // Least recently used, to the day: eviction keeps what is in use.
    let now = SystemTime::now();
    if meta
        .modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|age| age > TOUCH_INTERVAL)
    {
        let _ = f.set_modified(now);
    }
    Some(bytes)
}

/// The payload's length if `entry` is a whole, undamaged entry for `key`.
fn check_entry(entry: &[u8], key: &[u8; 32]) -> Option<usize> {
    let header = entry.get(..HEADER_LEN)?;
    let payload = &entry[HEADER_LEN..];
    let (magic, rest) = header.split_at(8);
    let (version, rest) = rest.split_at(4);
    let (entry_key, rest) = rest.split_at(32);
    let (len, sum) = rest.split_at(8);
    let ok = magic == MAGIC
        && version == FORMAT_VERSION.to_le_bytes()
        && entry_key == key
        && len == (payload.len() as u64).to_le_bytes()
        && sum == checksum(payload);
    ok.then_some(payload.len())
}

/// The checksum of an entry's payload, as stored in its header.
fn checksum(payload: &[u8]) -> [u8; 4] {
    crc32fast::hash(payload).to_le_bytes()
}

/// Bytes written by this process since the directory was last scanned.
static WRITTEN: AtomicU64 = AtomicU64::new(0);
/// Whether this process has scanned the directory yet.
static SCANNED: AtomicBool = AtomicBool::new(false);

/// Writes the entry for `key` atomically, then keeps the size bound.
fn store(cache: &CacheConfig, path: &Path, key: &[u8; 32], image: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(&cache.dir)?;
    let tmp = cache.dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut entry = Vec::with_capacity(HEADER_LEN + image.len());
    entry.extend_from_slice(MAGIC);
    entry.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    entry.extend_from_slice(key);
    entry.extend_from_slice(&(image.len() as u64).to_le_bytes());
    entry.extend_from_slice(&checksum(image));
    entry.extend_from_slice(image);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&entry))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    let total = WRITTEN.fetch_add(entry.len() as u64, Ordering::Relaxed) + entry.len() as u64;
    // A process's first write scans the directory only if no process has
    // for a while: with tens of thousands of entries a scan costs more
    // than a small evaluation.
    let first = !SCANNED.swap(true, Ordering::Relaxed);
    if total > cache.max_bytes / 8 || (first && scan_due(&cache.dir)) {
        WRITTEN.store(0, Ordering::Relaxed);
        start_eviction(&cache.dir, cache.max_bytes);
    }
    Ok(())
}

/// The eviction running in the background, if any.
static EVICTION: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);

/// Scans and evicts on a thread of its own, so that no evaluation waits for
/// it: removing tens of thousands of entries from a directory that has
/// outgrown its bound took 10 s of wall time (with 0.1 s of CPU) on the
/// development machine, and that would be the latency of whatever read
/// caused the write. A process that exits first leaves its scan unfinished
/// (the entries it removed stay removed) and the marker unwritten, so the
/// next process's first write scans again. One eviction at a time per
/// process; a write meanwhile starts none.
fn start_eviction(dir: &Path, max_bytes: u64) {
    let Ok(mut running) = EVICTION.lock() else {
        return;
    };
    if running.as_ref().is_some_and(|t| !t.is_finished()) {
        return;
    }
    let dir = dir.to_path_buf();
    *running = std::thread::Builder::new()
        .name("attrfs-compile-cache-evict".into())
        .spawn(move || {
            // Marked before the scan, not after: a short evaluation exits
            // before a scan of tens of thousands of entries ends, and
            // marking after would have every next writer start it again.
            let _ = std::fs::File::create(dir.join(SCANNED_MARKER));
            let _ = evict(&dir, max_bytes);
        })
        .ok();
}

/// Waits for the background eviction, if one runs (tests, which remove the
/// directory afterwards).
#[cfg(test)]
fn finish_eviction() {
    let running = EVICTION.lock().ok().and_then(|mut r| r.take());
    if let Some(t) = running {
        let _ = t.join();
    }
}

/// The file whose modification time says when the directory was last
/// scanned for its size (by any process).
const SCANNED_MARKER: &str = ".scanned";

/// How often a process's first write scans the directory at most. Between
/// scans, each process still scans once it has written an eighth of the
/// bound, so the bound can be passed by that much per process meanwhile.
const SCAN_INTERVAL: Duration = Duration::from_secs(3600);

/// Whether no process has scanned `dir` within [`SCAN_INTERVAL`].
fn scan_due(dir: &Path) -> bool {
    std::fs::metadata(dir.join(SCANNED_MARKER))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_none_or(|age| age > SCAN_INTERVAL)
}

/// Removes the least recently used entries of `dir` until their total is
/// under three quarters of `max_bytes` (if it is over `max_bytes`), and
/// temporary files a crashed writer left.
pub fn evict(dir: &Path, max_bytes: u64) -> std::io::Result<()> {
    let now = SystemTime::now();
    let mut entries = Vec::new();
    let mut total = 0u64;
    for e in std::fs::read_dir(dir)? {
        let Ok(e) = e else { continue };
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(now);
        let name = e.file_name();
        if name == SCANNED_MARKER {
            continue;
        }
        if name.as_encoded_bytes().starts_with(b".tmp-") {
            if now
                .duration_since(modified)
                .is_ok_and(|age| age > STALE_TMP)
            {
                let _ = std::fs::remove_file(e.path());
            }
            continue;
        }
        total += meta.len();
        entries.push((modified, meta.len(), e.path()));
    }
    if total <= max_bytes {
        return Ok(());
    }
    entries.sort_by_key(|(modified, _, _)| *modified);
    let target = max_bytes / 4 * 3;
    for (_, len, path) in entries {
        if total <= target {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_for(key: &[u8; 32], image: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(MAGIC);
        e.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        e.extend_from_slice(key);
        e.extend_from_slice(&(image.len() as u64).to_le_bytes());
        e.extend_from_slice(&checksum(image));
        e.extend_from_slice(image);
        e
    }

    /// Held by the tests that write entries: a process runs one background
    /// eviction at a time, so one test's could otherwise stand in for
    /// another's.
    static WRITERS: Mutex<()> = Mutex::new(());

    #[test]
    fn a_write_over_the_bound_evicts_in_the_background() {
        let _writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
        finish_eviction();
        let dir = std::env::temp_dir().join(format!("attrfs-bg-evict-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let old = SystemTime::now() - Duration::from_secs(1000);
        for i in 0..4 {
            let p = dir.join(format!("old{i}"));
            std::fs::write(&p, vec![0u8; 1000]).unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(old + Duration::from_secs(i)).unwrap();
        }
        let cache = CacheConfig {
            dir: dir.clone(),
            max_bytes: 2000,
        };
        let key = [9u8; 32];
        // Bigger than an eighth of the bound by itself: whatever this
        // process wrote before (other tests) and whether its first-write
        // scan already happened, this write alone must start the eviction.
        let image = vec![1u8; 300];
        store(&cache, &dir.join(hex(&key)), &key, &image).unwrap();
        finish_eviction();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // 4,000 old bytes and the new entry (about 400) against a bound of
        // 2,000: the oldest go until three quarters of it is left, and the
        // scan is marked.
        let mut expected = [".scanned".to_string(), "old3".to_string(), hex(&key)];
        expected.sort();
        assert_eq!(left, expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_entries_are_refused() {
        let key = [7u8; 32];
        let good = entry_for(&key, b"image bytes");
        assert_eq!(check_entry(&good, &key), Some(11));
        // Truncated anywhere, in the header or the payload.
        for cut in [0, 5, HEADER_LEN - 1, HEADER_LEN, good.len() - 1] {
            assert_eq!(check_entry(&good[..cut], &key), None, "cut at {cut}");
        }
        // Any flipped byte: magic, version, key, length, checksum, payload.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert_eq!(check_entry(&bad, &key), None, "byte {i} flipped");
        }
        // Another key's entry (a renamed file).
        assert_eq!(check_entry(&good, &[8u8; 32]), None);
    }

    /// An empty cache directory of this process for one test.
    fn scratch_cache(tag: &str) -> (PathBuf, CacheConfig) {
        let dir = std::env::temp_dir().join(format!("attrfs-cc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = CacheConfig {
            dir: dir.clone(),
            max_bytes: DEFAULT_MAX_BYTES,
        };
        (dir, cache)
    }

    /// Compiling files of `/`, with no `$HOME` and no lints.
    fn root_env(globals: &crate::compiler::Globals) -> CompileEnv<'_> {
        CompileEnv {
            globals,
            base_dir: "/".into(),
            home: None,
            lints: Default::default(),
        }
    }

    #[test]
    fn the_next_load_is_served_from_the_entry() {
        let _writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
        use crate::compiler::Globals;
        use crate::source::SourceMap;
        let (dir, cache) = scratch_cache("hit");
        let globals = Globals::default();
        let env = root_env(&globals);
        let map = SourceMap::default();
        let add = |text: &str| map.add("/f.nix".into(), Some("/f.nix".into()), text.into());
        let constant = |l: &Lambda| format!("{:?}", l.chunk.constants);

        let file = add("1 + 2");
        let cold = compile_cached(&file, &env, Some(&cache)).unwrap();
        assert_eq!(constant(&cold), "[1, 2]");
        // One entry (and the marker of the size scan).
        let stored: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name() != Some(SCANNED_MARKER.as_ref()))
            .collect();
        assert_eq!(stored.len(), 1);
        let path = stored[0].clone();
        // Put another compile's image under this entry's key: the next
        // load must return it, which shows it neither parsed nor compiled.
        let entry = std::fs::read(&path).unwrap();
        let key: [u8; 32] = entry[12..44].try_into().unwrap();
        let other = add("7");
        let (lambda, uses) =
            super::super::compile_recording(&crate::syntax::parse(&other).unwrap(), &other, &env)
                .unwrap();
        let image = crate::image::encode(&lambda, &other, &uses).unwrap();
        std::fs::write(&path, entry_for(&key, &image)).unwrap();
        let warm = compile_cached(&add("1 + 2"), &env, Some(&cache)).unwrap();
        assert_eq!(constant(&warm), "[7]");
        // Without the cache, the text is what counts.
        let fresh = compile_cached(&add("1 + 2"), &env, None).unwrap();
        assert_eq!(constant(&fresh), "[1, 2]");
        finish_eviction();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_chunk_found_damaged_when_run_removes_the_entry() {
        let _writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
        use crate::bytecode::Op;
        use crate::compiler::Globals;
        use crate::source::SourceMap;
        use crate::value::Value;
        let (dir, cache) = scratch_cache("damaged");
        let globals = Globals::default();
        let env = root_env(&globals);
        let map = SourceMap::default();
        let text = "{ f = x: x + 1; g = y: [ y ]; }";
        let add = || map.add("/f.nix".into(), Some("/f.nix".into()), text.into());
        // Whether some chunk (all decoded) stands in for a damaged one.
        fn damaged(l: &Lambda) -> bool {
            let own = matches!(&l.chunk.code[..], [Op::AssertFail(0)])
                && matches!(&l.chunk.constants[..], [Value::String(s)]
                    if s.as_str().is_some_and(|s| s.contains("cache entry of this file is damaged")));
            own || l.chunk.lambdas.iter().any(|l| damaged(l))
        }
        let cold = compile_cached(&add(), &env, Some(&cache)).unwrap();
        assert!(!damaged(&cold));
        let path = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name() != Some(SCANNED_MARKER.as_ref()))
            .unwrap();
        let entry = std::fs::read(&path).unwrap();
        let key: [u8; 32] = entry[12..44].try_into().unwrap();
        let image = &entry[HEADER_LEN..];
        let warm = compile_cached(&add(), &env, Some(&cache)).unwrap();
        assert!(!damaged(&warm));
        // A byte of a function's code changed under a valid checksum: the
        // file loads, the function's code is an error when run, and the
        // entry is gone.
        let found = (HEADER_LEN..entry.len()).any(|i| {
            let mut bad = image.to_vec();
            bad[i - HEADER_LEN] ^= 0x7f;
            std::fs::write(&path, entry_for(&key, &bad)).unwrap();
            let l = compile_cached(&add(), &env, Some(&cache)).unwrap();
            if !path.exists() || std::fs::read(&path).unwrap() != entry_for(&key, &bad) {
                // Refused at load and compiled afresh.
                return false;
            }
            damaged(&l)
        });
        assert!(found, "some damage is seen only when the code is read");
        assert!(!path.exists());
        let again = compile_cached(&add(), &env, Some(&cache)).unwrap();
        assert!(!damaged(&again));
        assert!(path.exists());
        finish_eviction();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn eviction_keeps_the_most_recent_entries_under_the_bound() {
        let dir = std::env::temp_dir().join(format!("attrfs-evict-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let base = SystemTime::now() - Duration::from_secs(1000);
        for i in 0..8u64 {
            let p = dir.join(format!("entry{i}"));
            std::fs::write(&p, vec![0u8; 100]).unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(base + Duration::from_secs(i * 10)).unwrap();
        }
        let stale = dir.join(".tmp-1-1");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(base - STALE_TMP)
            .unwrap();
        // 800 bytes against a bound of 400: down to 300, the newest three.
        evict(&dir, 400).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["entry5", "entry6", "entry7"]);
        // Under the bound: nothing goes.
        evict(&dir, 400).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
        // The scan marker is not an entry.
        assert!(scan_due(&dir));
        std::fs::write(dir.join(SCANNED_MARKER), b"").unwrap();
        assert!(!scan_due(&dir));
        evict(&dir, 1).unwrap();
        assert!(dir.join(SCANNED_MARKER).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
