//! attrfs-cache: a mount's answers kept on disk, so that a new mount of the
//! same expression whose inputs have not changed answers from them without
//! evaluating.
//!
//! One [redb] database per root specification (what is mounted, with which
//! arguments, from where), named by a hash of it, under
//! `<cache dir>/answers/`. It holds:
//!
//! * the answers: request frames to answer frames of the worker protocol
//!   (`attrfs_vfs::protocol`), exactly what the evaluation service keeps
//!   in memory;
//! * the inputs those answers were evaluated from (`attrfs_vfs::inputs`):
//!   every file, listing, probe and environment variable the evaluation
//!   read, with the fingerprint of what it saw.
//!
//! **Validity.** Whoever opens the cache decides whether the stored
//! answers still hold, by observing every stored input again
//! ([`DiskCache::stored_inputs`], then [`DiskCache::clear`] if one
//! changed); this crate does not know how to observe an input. Inputs that
//! make an evaluation unrepeatable (the clock, an unhashed download, a
//! local tree taken whole that cannot be re-observed cheaply) are never
//! stored: a session that meets one clears the cache and stores nothing
//! more.
//!
//! **Crash safety.** Answers are committed only at the service's sync
//! points ([`AnswerStore::sync`]), where every answer handed over is
//! covered by the inputs handed over, and each commit is a redb write
//! transaction (atomic and durable). A crash loses at most the answers
//! since the last commit, never pairs an answer with too few inputs; a
//! database that does not open (damaged, foreign, another format) is
//! deleted and started afresh, never served.
//!
//! **Size.** `max_bytes` bounds the whole directory: when a cache is
//! opened, the least recently used databases of other specifications are
//! deleted until the rest fits, and a session whose own database outgrows
//! the bound stops storing (the mount keeps working from memory).
//!
//! [redb]: https://docs.rs/redb

// redb's error type is 160 bytes; its errors are rare and off the hot path
// (opening, committing), so they are passed on as they are.
#![allow(clippy::result_large_err)]
#![warn(missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use attrfs_vfs::inputs::{Input, InputKind};
use attrfs_vfs::AnswerStore;
use parking_lot::Mutex;
use redb::{Database, DatabaseError, ReadableTable, ReadableTableMetadata, TableDefinition};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

/// Request frame to answer frame.
const ANSWERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("answers");
/// Input (kind code, then the name) to its fingerprint.
const INPUTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("inputs");
/// The format of what is stored, under the key `format`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Bumped whenever what is stored changes meaning (the protocol's frames,
/// the input kinds, the tables): a database of another format is cleared.
const FORMAT: u64 = 1;

/// How often, at most, stored answers are committed.
const COMMIT_INTERVAL: Duration = Duration::from_millis(250);

/// Why a cache could not be opened (the mount then goes on without one).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory could not be made or read.
    #[error("{path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Another process (a mount of the same expression) has it open.
    #[error("{0}: in use by another attrfs process")]
    InUse(PathBuf),
    /// The database failed.
    #[error("{path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What failed.
        source: redb::Error,
    },
}

/// The on-disk answers of one root specification; see the crate docs.
///
/// Cloning shares the database. Dropping the last clone commits what is
/// committable and closes it.
#[derive(Clone)]
pub struct DiskCache {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    path: PathBuf,
    /// The current session's number; answers of older sessions are dropped.
    epoch: AtomicU64,
    writer: Mutex<Option<mpsc::Sender<Message>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

enum Message {
    Put(u64, ThreadId, Vec<u8>, Vec<u8>),
    Inputs(u64, Vec<Input>),
    Sync(u64, ThreadId),
    Clear(u64, mpsc::Sender<()>),
    Flush(mpsc::Sender<()>),
}

impl DiskCache {
    /// Opens (or creates) the cache of the root specification `spec` (any
    /// bytes that identify what is mounted) under `dir`, first deleting the
    /// least recently used caches of other specifications until the
    /// directory fits `max_bytes`.
    pub fn open(dir: &Path, spec: &[u8], max_bytes: u64) -> Result<DiskCache, CacheError> {
        let answers = dir.join("answers");
        std::fs::create_dir_all(&answers).map_err(|source| CacheError::Io {
            path: answers.clone(),
            source,
        })?;
        let name = format!("{}.redb", hex(&Sha256::digest(spec)));
        let path = answers.join(name);
        evict(&answers, &path, max_bytes);
        let db = open_database(&path)?;
        let cache = DiskCache {
            inner: Arc::new(Inner {
                db: Arc::new(db),
                path: path.clone(),
                epoch: AtomicU64::new(0),
                writer: Mutex::new(None),
                thread: Mutex::new(None),
            }),
        };
        if cache.format() != Some(FORMAT) {
            cache.wipe()?;
        }
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            db: cache.inner.db.clone(),
            path: path.clone(),
            max_bytes,
            epoch: 0,
            refused: false,
            unsynced: HashMap::new(),
            ready: Vec::new(),
            inputs: Vec::new(),
            last_commit: Instant::now(),
        };
        let handle = thread::Builder::new()
            .name("attrfs-cache".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|source| CacheError::Io {
                path: path.clone(),
                source,
            })?;
        *cache.inner.writer.lock() = Some(tx);
        *cache.inner.thread.lock() = Some(handle);
        Ok(cache)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Every stored input: what the stored answers were evaluated from.
    /// Empty for an empty cache.
    pub fn stored_inputs(&self) -> Vec<Input> {
        let read = || -> Result<Vec<Input>, redb::Error> {
            let txn = self.inner.db.begin_read()?;
            let table = match txn.open_table(INPUTS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut inputs = Vec::new();
            for entry in table.iter()? {
                let (key, fingerprint) = entry?;
                let Some(input) = decode_input(key.value(), fingerprint.value()) else {
                    continue;
                };
                inputs.push(input);
            }
            Ok(inputs)
        };
        read().unwrap_or_else(|e| {
            warn!(
                "{}: cannot read the stored inputs: {e}",
                self.inner.path.display()
            );
            Vec::new()
        })
    }

    /// How many answers are stored.
    pub fn stored_answers(&self) -> u64 {
        let count = || -> Result<u64, redb::Error> {
            let txn = self.inner.db.begin_read()?;
            match txn.open_table(ANSWERS) {
                Ok(table) => Ok(table.len()?),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
                Err(e) => Err(e.into()),
            }
        };
        count().unwrap_or(0)
    }

    /// Forgets every stored answer and input (the inputs changed), and
    /// starts a new session: answers handed over by earlier sessions'
    /// stores from now on are dropped.
    pub fn clear(&self) {
        let epoch = self.inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let (tx, rx) = mpsc::channel();
        self.send(Message::Clear(epoch, tx));
        let _ = rx.recv();
    }

    /// The store of the current session, to attach to an evaluation
    /// service.
    pub fn session(&self) -> Arc<dyn AnswerStore> {
        Arc::new(Session {
            cache: self.clone(),
            epoch: self.inner.epoch.load(Ordering::SeqCst),
        })
    }

    /// Waits until everything committable so far (every answer covered by
    /// a sync point) is committed: for an orderly unmount, and for tests.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Message::Flush(tx));
        let _ = rx.recv();
    }

    fn send(&self, message: Message) {
        if let Some(tx) = self.inner.writer.lock().as_ref() {
            let _ = tx.send(message);
        }
    }

    fn format(&self) -> Option<u64> {
        let txn = self.inner.db.begin_read().ok()?;
        let table = txn.open_table(META).ok()?;
        let format = table.get("format").ok()??.value();
        Some(format)
    }

    /// Empties the database and stamps it with this format.
    fn wipe(&self) -> Result<(), CacheError> {
        let wipe = || -> Result<(), redb::Error> {
            let txn = self.inner.db.begin_write()?;
            txn.delete_table(ANSWERS)?;
            txn.delete_table(INPUTS)?;
            txn.open_table(META)?.insert("format", FORMAT)?;
            txn.commit()?;
            Ok(())
        };
        wipe().map_err(|source| CacheError::Database {
            path: self.inner.path.clone(),
            source,
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel makes the writer commit what it can and end.
        self.writer.lock().take();
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
    }
}

/// What a service holds: the cache, for one session.
struct Session {
    cache: DiskCache,
    epoch: u64,
}

impl AnswerStore for Session {
    fn get(&self, request: &[u8]) -> Option<Vec<u8>> {
        if self.cache.inner.epoch.load(Ordering::SeqCst) != self.epoch {
            return None;
        }
        let txn = self.cache.inner.db.begin_read().ok()?;
        let table = txn.open_table(ANSWERS).ok()?;
        let answer = table.get(request).ok()??.value().to_vec();
        Some(answer)
    }

    fn put(&self, request: Vec<u8>, answer: Vec<u8>) {
        let id = thread::current().id();
        self.cache
            .send(Message::Put(self.epoch, id, request, answer));
    }

    fn inputs(&self, inputs: Vec<Input>) {
        self.cache.send(Message::Inputs(self.epoch, inputs));
    }

    fn sync(&self) {
        let id = thread::current().id();
        self.cache.send(Message::Sync(self.epoch, id));
    }
}

/// A request frame and its answer frame.
type Entry = (Vec<u8>, Vec<u8>);

/// The thread that writes: it alone begins write transactions.
struct Writer {
    db: Arc<Database>,
    path: PathBuf,
    max_bytes: u64,
    epoch: u64,
    /// Set when the session met an input that cannot be cached, or the
    /// database outgrew its bound: nothing more is stored.
    refused: bool,
    /// Answers handed over by each evaluation thread since its last sync.
    unsynced: HashMap<ThreadId, Vec<Entry>>,
    /// Answers covered by the inputs, to commit.
    ready: Vec<Entry>,
    /// Inputs to commit.
    inputs: Vec<Input>,
    last_commit: Instant,
}

impl Writer {
    fn run(mut self, messages: mpsc::Receiver<Message>) {
        for message in messages.iter() {
            match message {
                Message::Clear(epoch, done) => {
                    self.epoch = epoch;
                    self.refused = false;
                    self.forget();
                    let _ = done.send(());
                }
                Message::Flush(done) => {
                    if !self.refused {
                        self.commit();
                    }
                    let _ = done.send(());
                }
                Message::Put(epoch, _, _, _)
                | Message::Inputs(epoch, _)
                | Message::Sync(epoch, _)
                    if epoch != self.epoch || self.refused => {}
                Message::Put(_, thread, request, answer) => {
                    self.unsynced
                        .entry(thread)
                        .or_default()
                        .push((request, answer));
                }
                Message::Inputs(_, inputs) => {
                    if let Some(why) = inputs.iter().find(|i| !cacheable(i)) {
                        info!(
                            "{}: not stored: the evaluation used {} {}",
                            self.path.display(),
                            why.kind.name(),
                            why.name
                        );
                        self.refuse();
                        continue;
                    }
                    self.inputs.extend(inputs);
                }
                Message::Sync(_, thread) => {
                    if let Some(answers) = self.unsynced.remove(&thread) {
                        self.ready.extend(answers);
                    }
                    if self.last_commit.elapsed() >= COMMIT_INTERVAL {
                        self.commit();
                    }
                }
            }
        }
        if !self.refused {
            self.commit();
        }
    }

    /// Forgets everything stored and stores nothing more this session.
    fn refuse(&mut self) {
        self.forget();
        self.refused = true;
    }

    /// Forgets everything stored and pending.
    fn forget(&mut self) {
        self.unsynced.clear();
        self.ready.clear();
        self.inputs.clear();
        self.transact("clear", |txn| {
            txn.delete_table(ANSWERS)?;
            txn.delete_table(INPUTS)?;
            Ok(())
        });
    }

    fn commit(&mut self) {
        self.last_commit = Instant::now();
        if self.ready.is_empty() && self.inputs.is_empty() {
            return;
        }
        let ready = std::mem::take(&mut self.ready);
        let inputs = std::mem::take(&mut self.inputs);
        self.transact("store answers", |txn| {
            let mut table = txn.open_table(INPUTS)?;
            for input in &inputs {
                let key = input_key(input);
                // The first observation is what the answers saw.
                if table.get(key.as_slice())?.is_none() {
                    table.insert(key.as_slice(), input.fingerprint.as_bytes())?;
                }
            }
            drop(table);
            let mut table = txn.open_table(ANSWERS)?;
            for (request, answer) in &ready {
                table.insert(request.as_slice(), answer.as_slice())?;
            }
            Ok(())
        });
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if size > self.max_bytes {
            warn!(
                "{}: the cache is {} MiB, over its bound of {} MiB; storing no more answers for this mount",
                self.path.display(),
                size >> 20,
                self.max_bytes >> 20
            );
            self.refused = true;
        }
    }

    fn transact(
        &self,
        what: &str,
        body: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) {
        let result = (|| -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            body(&txn)?;
            txn.commit()?;
            Ok(())
        })();
        if let Err(e) = result {
            warn!("{}: cannot {what}: {e}", self.path.display());
        }
    }
}

/// Whether answers evaluated from `input` may be stored.
fn cacheable(input: &Input) -> bool {
    !matches!(input.kind, InputKind::Impure | InputKind::Tree)
}

fn input_key(input: &Input) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + input.name.len());
    key.push(input.kind.code());
    key.extend_from_slice(input.name.as_bytes());
    key
}

fn decode_input(key: &[u8], fingerprint: &[u8]) -> Option<Input> {
    let (&code, name) = key.split_first()?;
    Some(Input {
        kind: InputKind::from_code(code)?,
        name: String::from_utf8(name.to_vec()).ok()?,
        fingerprint: String::from_utf8(fingerprint.to_vec()).ok()?,
    })
}

/// redb's page cache. Its default, 1 GiB, let the cache of a walk over a
/// whole NixOS configuration (1.77M answers) grow the daemon by 680 MB;
/// the writer commits in batches and reads are rare point lookups, which
/// need few pages.
const PAGE_CACHE_BYTES: usize = 16 << 20;

/// Opens or creates the database at `path`.
fn create_database(path: &Path) -> Result<Database, DatabaseError> {
    Database::builder()
        .set_cache_size(PAGE_CACHE_BYTES)
        .create(path)
}

/// Opens the database, starting afresh if it is damaged or foreign.
fn open_database(path: &Path) -> Result<Database, CacheError> {
    // redb asserts some of its invariants on open (a truncated file panics
    // instead of failing): a damaged cache is discarded either way.
    let opened = std::panic::catch_unwind(|| create_database(path))
        .unwrap_or_else(|_| Err(DatabaseError::RepairAborted));
    match opened {
        Ok(db) => Ok(db),
        Err(DatabaseError::DatabaseAlreadyOpen) => Err(CacheError::InUse(path.to_owned())),
        Err(e) => {
            warn!(
                "{}: discarding a cache that does not open ({e})",
                path.display()
            );
            std::fs::remove_file(path).map_err(|source| CacheError::Io {
                path: path.to_owned(),
                source,
            })?;
            create_database(path).map_err(|e| CacheError::Database {
                path: path.to_owned(),
                source: e.into(),
            })
        }
    }
}

/// Deletes the least recently used databases other than `keep` until the
/// directory's databases fit `max_bytes`.
fn evict(dir: &Path, keep: &Path, max_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "redb"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if path == keep {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                info!("evicted the cache {}", path.display());
                total -= len;
            }
            Err(e) => warn!("cannot evict the cache {}: {e}", path.display()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("attrfs-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn file(name: &str, fingerprint: &str) -> Input {
        Input {
            kind: InputKind::File,
            name: name.into(),
            fingerprint: fingerprint.into(),
        }
    }

    const MAX: u64 = 1 << 30;

    #[test]
    fn synced_answers_and_their_inputs_survive_a_reopen() {
        let dir = temp_dir("reopen");
        {
            let cache = DiskCache::open(&dir, b"spec", MAX).unwrap();
            let store = cache.session();
            store.put(b"q1".to_vec(), b"a1".to_vec());
            store.inputs(vec![file("/a.nix", "sha256:1")]);
            store.sync();
            // Not covered by a sync point: never committed.
            store.put(b"q2".to_vec(), b"a2".to_vec());
            cache.flush();
            assert_eq!(store.get(b"q1"), Some(b"a1".to_vec()));
        }
        let cache = DiskCache::open(&dir, b"spec", MAX).unwrap();
        assert_eq!(cache.stored_inputs(), [file("/a.nix", "sha256:1")]);
        let store = cache.session();
        assert_eq!(store.get(b"q1"), Some(b"a1".to_vec()));
        assert_eq!(store.get(b"q2"), None);
        // Another specification has a cache of its own.
        let other = DiskCache::open(&dir, b"other spec", MAX).unwrap();
        assert_eq!(other.session().get(b"q1"), None);
    }

    #[test]
    fn an_answer_is_committed_only_after_its_own_threads_sync() {
        let dir = temp_dir("threads");
        let cache = DiskCache::open(&dir, b"spec", MAX).unwrap();
        let store = cache.session();
        let other = store.clone();
        thread::spawn(move || other.put(b"q".to_vec(), b"a".to_vec()))
            .join()
            .unwrap();
        // This thread's sync does not cover the other thread's answer.
        store.sync();
        cache.flush();
        assert_eq!(store.get(b"q"), None);
    }

    #[test]
    fn an_impure_input_clears_the_cache_and_stores_nothing_more() {
        let dir = temp_dir("impure");
        let cache = DiskCache::open(&dir, b"spec", MAX).unwrap();
        let store = cache.session();
        store.put(b"q1".to_vec(), b"a1".to_vec());
        store.sync();
        cache.flush();
        assert_eq!(cache.stored_answers(), 1);
        store.inputs(vec![Input {
            kind: InputKind::Impure,
            name: "builtins.currentTime".into(),
            fingerprint: String::new(),
        }]);
        store.put(b"q2".to_vec(), b"a2".to_vec());
        store.sync();
        cache.flush();
        assert_eq!(cache.stored_answers(), 0);
        assert!(cache.stored_inputs().is_empty());
    }

    #[test]
    fn a_cleared_cache_drops_what_older_sessions_hand_over() {
        let dir = temp_dir("clear");
        let cache = DiskCache::open(&dir, b"spec", MAX).unwrap();
        let old = cache.session();
        old.put(b"q".to_vec(), b"old".to_vec());
        old.sync();
        cache.flush();
        cache.clear();
        let new = cache.session();
        assert_eq!(new.get(b"q"), None);
        assert_eq!(old.get(b"q"), None);
        old.put(b"q".to_vec(), b"late".to_vec());
        old.sync();
        cache.flush();
        assert_eq!(new.get(b"q"), None);
        new.put(b"q".to_vec(), b"new".to_vec());
        new.sync();
        cache.flush();
        assert_eq!(new.get(b"q"), Some(b"new".to_vec()));
    }

    #[test]
    fn a_damaged_database_is_discarded_not_served() {
        let dir = temp_dir("damaged");
        let path = {
            let cache = DiskCache::open(&dir, b"spec", MAX).unwrap();
            let store = cache.session();
            store.put(b"q".to_vec(), b"a".to_vec());
            store.sync();
            cache.flush();
            cache.path().to_owned()
        };
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        bytes.truncate(len / 3);
        bytes.extend(std::iter::repeat_n(0xa5, 4096));
        std::fs::write(&path, &bytes).unwrap();
        let cache = DiskCache::open(&dir, b"spec", MAX).unwrap();
        assert_eq!(cache.session().get(b"q"), None);
        assert!(cache.stored_inputs().is_empty());
    }

    #[test]
    fn the_least_recently_used_caches_are_evicted_to_fit() {
        let dir = temp_dir("evict");
        for spec in [&b"one"[..], b"two"] {
            let cache = DiskCache::open(&dir, spec, MAX).unwrap();
            let store = cache.session();
            store.put(b"q".to_vec(), vec![7; 100_000]);
            store.sync();
            cache.flush();
            thread::sleep(Duration::from_millis(20));
        }
        let count = || std::fs::read_dir(dir.join("answers")).unwrap().count();
        assert_eq!(count(), 2);
        let one_size = std::fs::metadata(DiskCache::open(&dir, b"one", MAX).unwrap().path())
            .unwrap()
            .len();
        // Room for one database only: "two" is now the least recently used.
        let _three = DiskCache::open(&dir, b"three", one_size + 1).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.join("answers")).unwrap().collect();
        assert_eq!(left.len(), 2, "{left:?}");
        let one = DiskCache::open(&dir, b"one", MAX).unwrap();
        assert_eq!(one.session().get(b"q").map(|a| a.len()), Some(100_000));
    }
}
