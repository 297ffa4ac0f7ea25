//! The evaluation service: one thread owns the [`Backend`]; any thread may
//! ask it questions, with a deadline, and read its cached answers.
//!
//! ## Threads
//!
//! * An **evaluation thread** builds a backend with the factory and then
//!   serves queued requests one at a time, in arrival order. The backend
//!   never leaves it. There is one by default; with `workers` > 1 several
//!   such threads, each with a backend of its own, take requests from the
//!   same queue, so a request does not wait behind a long evaluation.
//! * The **watchdog thread** enforces deadlines. Each waiting caller has
//!   one (`eval_timeout` after it asked). When it passes, the caller is
//!   answered [`NodeError::TimedOut`] at once and a log line is written; if
//!   that leaves the evaluation in progress with nobody waiting for it, the
//!   interrupt flag is set so the evaluator abandons it, and the thread
//!   moves on to the next request.
//! * Callers: FUSE threads hand in a completion callback and return at
//!   once (`*_then` methods); tests and start-up code use the blocking
//!   methods, which are the same thing plus a channel.
//!
//! If an interrupted evaluation does not stop within `stuck_grace` (a
//! builtin that never polls the flag, say), its thread is abandoned: the
//! watchdog starts a fresh evaluation thread with a new backend, records
//! the stuck path as failed so it is not retried, and the mount keeps
//! serving. At most `max_abandoned` threads are given up this way; after
//! that the service reports itself unavailable rather than leak without
//! bound. (A worker-process backend, `crate::process`, kills a worker that
//! does not stop within a second of the interrupt, well within the grace,
//! so with it this is a last resort.)
//!
//! ## Cache
//!
//! Nix evaluation is pure, so an answer never changes during the life of a
//! service: a live mount that sees its sources change starts a new service
//! (a new generation) rather than invalidating this one's answers. Stat
//! nodes and listings are kept for the life of the mount (they are small,
//! and keeping them keeps `st_size` and directory contents consistent), and
//! so are the extended attributes asked for; file contents are kept in an
//! LRU of `cache_size` entries. A stat of a file renders its bytes to
//! measure them and hands them over with the node, so they go to that LRU
//! at once and the `read` that follows needs no evaluation. Permanent
//! errors (see [`NodeError::is_permanent`]) are cached like answers;
//! timeouts are not. A cached listing also answers lookups of names that
//! are not in it, without a round trip to the evaluation thread.
//!
//! Requests for a question already queued or in progress join it instead
//! of being queued twice.
//!
//! ## Read-ahead
//!
//! A walk (`find`, `ls -R`, `grep -r`, `du`) lists a directory and then
//! each of its subdirectories, one READDIRPLUS at a time, and waits for
//! each: the evaluator sat idle while the kernel, `find` and the daemon
//! handled each reply. So the entries a READDIRPLUS reply returns below
//! the root are handed to [`EvalService::read_ahead`], and those that turn
//! out to be directories are listed the same way (with their entries'
//! stats), and so are the subdirectories those listings find, level after
//! level, so that the evaluation runs ahead of the walk instead of one
//! level behind its next step; and the stats of the next reply's worth of
//! a big directory ([`EvalService::read_ahead_stats`]) are evaluated
//! before the next READDIRPLUS asks for them. All are *speculative*: an
//! evaluation thread takes them only when no request is queued, the most
//! recently queued first (so the read-ahead follows a depth-first walk's
//! order), a few listings in one exchange with the worker
//! (`READ_AHEAD_LIST_BATCH`), and a request that asks for one joins it.
//! At most [`READ_AHEAD_LIMIT`] are queued; the oldest are forgotten
//! first. Read-ahead goes deeper only while the walk keeps asking: after
//! `READ_AHEAD_DEPTH_BUDGET` (64) read-ahead listings have queued their
//! subdirectories with no READDIRPLUS in between, it stops queueing more
//! (a single `ls` of a directory costs at most that many listings below
//! it, plus what was queued). The mount root's children are
//! not listed ahead: `ls` of a package set's root would otherwise evaluate
//! thousands of packages. A read-ahead evaluation running past
//! `eval_timeout`, or past `READ_AHEAD_PATIENCE` (2 s) while a request
//! waits behind it, is interrupted like a request nobody waits for (the
//! backend keeps what it had evaluated; the value in progress is evaluated
//! again when it is next asked for). Only quick read-ahead listings (under 20 ms each,
//! `READ_AHEAD_CHEAP`) go deeper or are batched: where values are costly,
//! read-ahead stays one level ahead.
//! `read_ahead` in [`ServiceConfig`] turns it off (`--no-read-ahead`).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::hash_map::Entry as MapEntry;
use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
use rustc_hash::{FxBuildHasher, FxHashMap};
use tracing::{debug, error, info, warn};

use crate::backend::{Backend, BackendFactory, Interrupt, NodeError, Stat};
use crate::inputs::{Input, InputKind, InputSet};
use crate::node::{AttrPath, DirEntry, Node, NodeKind, Segment, XattrList};
use crate::persist::AnswerStore;
use crate::protocol::{self, Answer as WireAnswer, Request};

/// Tunables of the evaluation service.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// How long a caller waits for an answer (`--eval-timeout`).
    pub eval_timeout: Duration,
    /// How many files' contents the byte cache keeps (`--cache-size`).
    pub cache_size: NonZeroUsize,
    /// How long an interrupted evaluation may take to notice the interrupt
    /// before its thread is abandoned and a fresh backend is started.
    pub stuck_grace: Duration,
    /// How many stuck evaluation threads may be abandoned before the
    /// service gives up and answers every request with `Unavailable`.
    pub max_abandoned: usize,
    /// How many evaluation threads (each with its own backend) serve the
    /// queue (`--workers`). With more than one, a request does not wait
    /// behind another that has been running for a while; each backend
    /// evaluates its own copy of everything it is asked about.
    pub workers: usize,
    /// Stack size of the evaluation thread. A spawned thread gets 2 MiB by
    /// default, a quarter of what the main thread of `attrfs eval` has; a
    /// stack overflow aborts the whole daemon (it cannot be caught), so the
    /// evaluation thread gets a generous reservation (only the pages it
    /// touches cost memory).
    pub stack_size: usize,
    /// Whether subdirectories of a listed directory, and the next stats of
    /// a big one, are evaluated ahead of being asked for (see the module
    /// documentation, "Read-ahead").
    pub read_ahead: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            eval_timeout: Duration::from_secs(30),
            cache_size: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
            stuck_grace: Duration::from_secs(5),
            max_abandoned: 4,
            workers: 1,
            stack_size: 256 << 20,
            read_ahead: true,
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The backend factory failed (e.g. the root expression does not parse).
    #[error("{0}")]
    Backend(String),
    /// A service thread could not be spawned.
    #[error("cannot start the evaluation thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// The entries of a directory, with an index for membership tests.
#[derive(Debug)]
pub struct Listing {
    entries: Vec<DirEntry>,
    /// Positions in `entries`, sorted by name: the index costs four bytes
    /// an entry instead of a second copy of every name.
    by_name: Vec<u32>,
}

impl Listing {
    /// Wraps the entries a backend returned.
    pub fn new(entries: Vec<DirEntry>) -> Self {
        let mut by_name: Vec<u32> = (0..entries.len())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        by_name.sort_unstable_by(|&a, &b| entries[a as usize].name.cmp(&entries[b as usize].name));
        Listing { entries, by_name }
    }

    /// The entries, in the backend's order.
    pub fn entries(&self) -> &[DirEntry] {
        &self.entries
    }

    /// Whether the directory has an entry of that name.
    pub fn contains(&self, name: &Segment) -> bool {
        self.by_name
            .binary_search_by(|&i| self.entries[i as usize].name.cmp(name))
            .is_ok()
    }
}

/// A path as the cache keeps it, with its cached stat if there is one
/// (see [`EvalService::shared_stats`]).
pub type SharedStat = (AttrPath, Option<Result<Arc<Node>, NodeError>>);

/// What a question is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Stat,
    List,
    /// A listing whose first [`LIST_PLUS_STATS`] entries the caller will
    /// stat next; cached as a [`Op::List`] answer.
    ListPlus,
    Read,
    Xattrs,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    op: Op,
    /// Shares its links with the inode table's path (paths are persistent),
    /// so caching an answer for every entry of a big walk costs no copy.
    path: AttrPath,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            Op::Stat => "stat",
            Op::List => "list",
            Op::ListPlus => "list+",
            Op::Read => "read",
            Op::Xattrs => "xattrs",
        };
        write!(f, "{op} {}", self.path)
    }
}

/// An answer of any of the four kinds. A stat answer may carry the file's
/// bytes, rendered to measure it; they go to the byte cache.
#[derive(Clone, Debug)]
enum Rendered {
    Node(Arc<Node>, Option<Arc<[u8]>>),
    Listing(Arc<Listing>),
    Bytes(Arc<[u8]>),
    Xattrs(Arc<XattrList>),
}

type Answer = Result<Rendered, NodeError>;
type Callback = Box<dyn FnOnce(Answer) + Send + 'static>;

struct Waiter {
    deadline: Instant,
    done: Callback,
}

#[derive(Default)]
struct Pending {
    waiters: Vec<Waiter>,
    /// The path the first caller asked with, when the entry was made before
    /// anyone asked (a claimed stat, see `claimed`): the answer is cached
    /// under the caller's path, which it keeps anyway (an inode's), rather
    /// than under a copy.
    asked: Option<AttrPath>,
    /// Being evaluated as part of another request (the stats that follow a
    /// [`Op::ListPlus`] listing): no evaluation thread takes it from the
    /// queue. Cleared when that request ends without answering it.
    claimed: bool,
    /// Queued by read-ahead, in `State::ahead`, and nobody has asked for it
    /// yet. Cleared when someone does.
    speculative: bool,
}

struct Running {
    key: Key,
    /// Stat requests evaluated together with `key` (see [`STAT_BATCH`]).
    also: Vec<Key>,
    started: Instant,
    interrupted_at: Option<Instant>,
    /// Taken from the read-ahead stack: nobody waited for it when it began.
    speculative: bool,
}

impl Running {
    fn keys(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.key).chain(&self.also)
    }
}

/// How many queued stat requests an evaluation thread takes at once. A
/// directory walk queues a batch of sibling stats (READDIRPLUS); asking the
/// backend for them together lets a worker-process backend pipeline them,
/// one round trip for the batch instead of one per entry.
const STAT_BATCH: usize = 64;

/// How many entries' stats a [`EvalService::list_plus_then`] listing
/// brings along: a READDIRPLUS reply's worth (a 32 KiB reply holds about
/// 200 entries with their attributes).
pub const LIST_PLUS_STATS: usize = 200;

/// How many listings and stats read-ahead keeps queued at most (see the module
/// documentation, "Read-ahead"): enough for the next few levels of a
/// depth-first walk, small enough that a walk abandoned half-way leaves
/// little speculative work behind.
pub const READ_AHEAD_LIMIT: usize = 1024;

/// How many read-ahead listings may queue their own subdirectories
/// (see the module documentation, "Read-ahead") before the walk asks for
/// a listing again: enough for the evaluation to run a few levels ahead of
/// a depth-first walk, few enough that a walk that stops (or a single
/// `ls`) leaves little speculative work behind.
const READ_AHEAD_DEPTH_BUDGET: usize = 64;

/// How long a read-ahead may keep a request waiting before it is
/// interrupted. Not at once: most read-aheads take milliseconds, and the
/// value an interrupted one was evaluating is evaluated again from where
/// its finished parts left off.
const READ_AHEAD_PATIENCE: Duration = Duration::from_secs(2);

/// How long a read-ahead listing (with its entries' stats) may take and
/// still count as quick. Only the subdirectories of quick ones are read
/// ahead in turn, and read-ahead listings are taken together only while
/// they are quick: where the values are costly (a service's `script`
/// renders packages' store paths), speculation stays one level deep, so
/// that a request rarely waits behind it until READ_AHEAD_PATIENCE.
const READ_AHEAD_CHEAP: Duration = Duration::from_millis(20);

/// How many read-ahead listings are evaluated together. Each exchange
/// with a worker costs both processes a wake-up; a few listings in one
/// let the worker go from one to the next, while a request that arrives
/// meanwhile waits for no more than these few (they take milliseconds).
const READ_AHEAD_LIST_BATCH: usize = 4;

/// How many read-ahead stats are evaluated together: fewer than a
/// request's batch, since a request that arrives meanwhile waits for the
/// whole batch (a stat of a package can take a while).
const READ_AHEAD_STAT_BATCH: usize = 16;

/// One evaluation thread's place: what it runs and how to stop it.
struct Slot {
    running: Option<Running>,
    /// Bumped when the slot's thread is abandoned; a thread whose
    /// generation is stale exits as soon as its backend returns.
    generation: u64,
    /// The interrupt flag of the current generation's backend.
    interrupt: Interrupt,
}

impl Slot {
    fn new() -> Self {
        Slot {
            running: None,
            generation: 0,
            interrupt: Arc::new(AtomicBool::new(false)),
        }
    }
}

struct State {
    queue: VecDeque<Key>,
    /// Read-ahead listings and stats, newest at the back (taken first); each has a
    /// speculative entry in `pending` while nobody asked for it.
    ahead: VecDeque<Key>,
    pending: FxHashMap<Key, Pending>,
    /// One per evaluation thread (`ServiceConfig::workers`).
    slots: Vec<Slot>,
    abandoned: usize,
    /// Set when no backend can be had any more; every request fails.
    broken: Option<String>,
    shutdown: bool,
    /// What the watchdog is doing, so that a new request wakes it only when
    /// its deadline is earlier than the watchdog's next look.
    watchdog: WatchdogSleep,
}

/// The watchdog's state, as seen by those who might have to wake it.
///
/// Waking it costs two context switches; a walk of a big tree makes
/// hundreds of thousands of requests, each of which used to wake it (and
/// with the evaluation thread's own wake-ups, most of `find`'s time went to
/// task switching). Every request gets the same timeout, so a new deadline
/// is almost never earlier than the watchdog's next look, and it need not
/// be woken at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WatchdogSleep {
    /// Awake (scanning, or answering expired waiters); it looks at the
    /// whole state again before it sleeps.
    Awake,
    /// Asleep until this instant.
    Until(Instant),
    /// Asleep with nothing to watch.
    Idle,
}

impl WatchdogSleep {
    /// Whether a waiter with `deadline` must wake the watchdog.
    fn must_wake_for(self, deadline: Instant) -> bool {
        match self {
            WatchdogSleep::Awake => false,
            WatchdogSleep::Until(at) => deadline < at,
            WatchdogSleep::Idle => true,
        }
    }
}

impl State {
    fn unavailable(&self) -> Option<String> {
        if self.shutdown {
            Some("the mount is shutting down".to_owned())
        } else {
            self.broken.clone()
        }
    }

    /// Takes every waiter of every pending request (used when the service
    /// cannot answer any more).
    fn drain_all(&mut self) -> Vec<Waiter> {
        self.queue.clear();
        self.ahead.clear();
        self.pending.drain().flat_map(|(_, p)| p.waiters).collect()
    }
}

/// What tells plain nodes apart: kind, type name and size.
type PlainNode = (NodeKind, &'static str, u64);

/// How many distinct plain nodes [`Cache::node`] shares.
const NODE_POOL_SIZE: usize = 1 << 16;

/// A cached answer: permanent errors are cached like values.
///
/// The error is boxed: errors are rare, and a `NodeError` inline would make
/// every entry of a walk's node cache twice as big.
type Cached<T> = Result<T, Box<NodeError>>;

/// Answers kept for the life of the mount, by path.
///
/// Every map keyed by paths hashes with Fx: a walk hashes a path for each
/// of its requests in several maps, and SipHash over deep paths was a sixth
/// of the evaluation thread's time in `find`. The keys come from the
/// mounted expression, not from an adversary.
type PathMap<T> = RwLock<FxHashMap<AttrPath, Cached<T>>>;

/// File contents, the least recently used dropped first.
type ByteLru = Mutex<LruCache<AttrPath, Cached<Arc<[u8]>>, FxBuildHasher>>;

struct Cache {
    nodes: PathMap<Arc<Node>>,
    /// One shared node per plain kind, type and size (see [`Cache::node`]).
    pool: Mutex<FxHashMap<PlainNode, Arc<Node>>>,
    listings: PathMap<Arc<Listing>>,
    bytes: ByteLru,
    xattrs: PathMap<Arc<XattrList>>,
}

impl Cache {
    fn new(cache_size: NonZeroUsize) -> Self {
        Cache {
            nodes: RwLock::default(),
            pool: Mutex::default(),
            listings: RwLock::default(),
            bytes: Mutex::new(LruCache::with_hasher(cache_size, FxBuildHasher)),
            xattrs: RwLock::default(),
        }
    }

    /// A rendered stat as the cache keeps it. Most nodes of a big walk are
    /// alike (directories of type `set`, `bool` files of size 4, ...) and
    /// carry nothing of their own, so those share one allocation: the node
    /// cache then costs a pointer per entry for them. Bounded, so that a
    /// tree of files of every size does not grow the pool without end.
    fn node(&self, stat: Stat) -> Rendered {
        let contents = stat.contents.map(Arc::from);
        let node = stat.node;
        let plain = node.target.is_none() && node.xattrs.is_empty() && node.error.is_none();
        let Cow::Borrowed(nix_type) = node.nix_type else {
            return Rendered::Node(Arc::new(node), contents);
        };
        if !plain {
            return Rendered::Node(Arc::new(node), contents);
        }
        let mut pool = self.pool.lock();
        let key = (node.kind, nix_type, node.size);
        if let Some(shared) = pool.get(&key) {
            return Rendered::Node(shared.clone(), contents);
        }
        let node = Arc::new(node);
        if pool.len() < NODE_POOL_SIZE {
            pool.insert(key, node.clone());
        }
        Rendered::Node(node, contents)
    }

    fn get(&self, op: Op, path: &AttrPath) -> Option<Answer> {
        match op {
            Op::Stat => {
                if let Some(hit) = self.nodes.read().get(path) {
                    return Some(unbox(hit).map(|node| Rendered::Node(node, None)));
                }
                self.stat_from_parent_listing(path)
            }
            Op::List | Op::ListPlus => self
                .listings
                .read()
                .get(path)
                .map(|hit| unbox(hit).map(Rendered::Listing)),
            Op::Read => self
                .bytes
                .lock()
                .get(path)
                .map(|hit| unbox(hit).map(Rendered::Bytes)),
            Op::Xattrs => self
                .xattrs
                .read()
                .get(path)
                .map(|hit| unbox(hit).map(Rendered::Xattrs)),
        }
    }

    /// Answers a stat of a name that the parent's cached listing shows does
    /// not exist (or a stat below something that is not a directory).
    fn stat_from_parent_listing(&self, path: &AttrPath) -> Option<Answer> {
        let name = path.last()?;
        let parent = path.parent()?;
        match self.listings.read().get(&parent)? {
            Ok(listing) if !listing.contains(name) => Some(Err(NodeError::NotFound)),
            Ok(_) => None,
            Err(e) if **e == NodeError::NotADirectory => Some(Err(NodeError::NotADirectory)),
            Err(_) => None,
        }
    }

    fn put(&self, key: &Key, answer: &Answer) {
        if let Err(e) = answer {
            if !e.is_permanent() {
                return;
            }
        }
        let path = key.path.clone();
        match (key.op, answer) {
            (Op::Stat, Ok(Rendered::Node(node, contents))) => {
                if let Some(bytes) = contents {
                    self.bytes.lock().put(path.clone(), Ok(bytes.clone()));
                }
                self.nodes.write().insert(path, Ok(node.clone()));
            }
            (Op::Stat, Err(e)) => {
                self.nodes.write().insert(path, Err(Box::new(e.clone())));
            }
            (Op::List | Op::ListPlus, Ok(Rendered::Listing(listing))) => {
                self.listings.write().insert(path, Ok(listing.clone()));
            }
            (Op::List | Op::ListPlus, Err(e)) => {
                self.listings.write().insert(path, Err(Box::new(e.clone())));
            }
            (Op::Read, Ok(Rendered::Bytes(bytes))) => {
                self.bytes.lock().put(path, Ok(bytes.clone()));
            }
            (Op::Read, Err(e)) => {
                self.bytes.lock().put(path, Err(Box::new(e.clone())));
            }
            (Op::Xattrs, Ok(Rendered::Xattrs(xattrs))) => {
                self.xattrs.write().insert(path, Ok(xattrs.clone()));
            }
            (Op::Xattrs, Err(e)) => {
                self.xattrs.write().insert(path, Err(Box::new(e.clone())));
            }
            // The evaluation thread builds answers from the key's op, so a
            // mismatch cannot happen; not caching it is the safe reaction.
            _ => {}
        }
    }
}

/// A cached answer as callers get it.
fn unbox<T: Clone>(hit: &Cached<T>) -> Result<T, NodeError> {
    match hit {
        Ok(value) => Ok(value.clone()),
        Err(e) => Err(NodeError::clone(e)),
    }
}

type Factory = dyn Fn(Interrupt) -> Result<Box<dyn Backend>, String> + Send + Sync;

struct Shared {
    config: ServiceConfig,
    cache: Cache,
    state: Mutex<State>,
    /// Wakes the evaluation thread: new work, shutdown, or a new generation.
    work: Condvar,
    /// Wakes the watchdog: a new waiter (maybe an earlier deadline), a
    /// request started, or shutdown.
    watch: Condvar,
    factory: BackendFactory,
    /// What the evaluation read (see [`crate::inputs`]).
    inputs: Mutex<Inputs>,
    /// Where answers are also kept beyond the mount (see [`crate::persist`]).
    store: OnceLock<Arc<dyn AnswerStore>>,
    /// How many more read-ahead listings may queue their subdirectories
    /// before the walk asks for a listing again (reset by each
    /// [`EvalService::list_plus_then`]).
    ahead_budget: AtomicUsize,
}

/// The service's inputs and who wants to hear of new ones.
#[derive(Default)]
struct Inputs {
    set: InputSet,
    listeners: Vec<mpsc::Sender<Vec<Input>>>,
}

/// The evaluation service. Dropping it fails every waiting request with
/// [`NodeError::Unavailable`] and stops its threads (an evaluation thread
/// busy in its backend exits when the backend returns).
pub struct EvalService {
    shared: Arc<Shared>,
    watchdog: Option<JoinHandle<()>>,
}

impl EvalService {
    /// Starts the evaluation and watchdog threads and builds the backend.
    /// Returns once the backend exists, or with the factory's error.
    pub fn start(factory: BackendFactory, config: ServiceConfig) -> Result<Self, ServiceError> {
        let workers = config.workers.max(1);
        let shared = Arc::new(Shared {
            cache: Cache::new(config.cache_size),
            config,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                ahead: VecDeque::new(),
                pending: FxHashMap::default(),
                slots: (0..workers).map(|_| Slot::new()).collect(),
                abandoned: 0,
                broken: None,
                shutdown: false,
                watchdog: WatchdogSleep::Awake,
            }),
            work: Condvar::new(),
            watch: Condvar::new(),
            factory,
            inputs: Mutex::default(),
            store: OnceLock::new(),
            ahead_budget: AtomicUsize::new(0),
        });
        // Every backend is built before the service answers anything, so
        // that an expression that cannot be evaluated is reported at once.
        let (ready_tx, ready_rx) = mpsc::sync_channel(workers);
        for slot in 0..workers {
            let interrupt = shared.state.lock().slots[slot].interrupt.clone();
            if let Err(e) =
                spawn_eval_thread(shared.clone(), slot, 0, interrupt, Some(ready_tx.clone()))
            {
                shutdown(&shared);
                return Err(ServiceError::Spawn(e));
            }
        }
        drop(ready_tx);
        for _ in 0..workers {
            let failure = match ready_rx.recv() {
                Ok(Ok(())) => continue,
                Ok(Err(message)) => message,
                Err(_) => "the evaluation thread exited while building the evaluator".to_owned(),
            };
            shutdown(&shared);
            return Err(ServiceError::Backend(failure));
        }
        let watchdog = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("attrfs-watchdog".to_owned())
                .spawn(move || watchdog(&shared))
        };
        let watchdog = match watchdog {
            Ok(handle) => handle,
            Err(e) => {
                shutdown(&shared);
                return Err(ServiceError::Spawn(e));
            }
        };
        Ok(EvalService {
            shared,
            watchdog: Some(watchdog),
        })
    }

    /// The configuration the service runs with.
    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    /// Stats `path`, calling `done` with the answer: at once on the calling
    /// thread if it is cached, otherwise later on a service thread, and in
    /// any case no later than the deadline. `done` must be quick (send a
    /// reply) and must not block on the service.
    pub fn stat_then(
        &self,
        path: &AttrPath,
        done: impl FnOnce(Result<Arc<Node>, NodeError>) + Send + 'static,
    ) {
        self.submit(
            make_key(Op::Stat, path),
            Box::new(move |a| done(as_node(a))),
        );
    }

    /// Lists the directory at `path`; see [`EvalService::stat_then`].
    pub fn list_then(
        &self,
        path: &AttrPath,
        done: impl FnOnce(Result<Arc<Listing>, NodeError>) + Send + 'static,
    ) {
        self.submit(
            make_key(Op::List, path),
            Box::new(move |a| done(as_listing(a))),
        );
    }

    /// Lists the directory at `path` like [`EvalService::list_then`], for a
    /// caller that will stat the first [`LIST_PLUS_STATS`] entries next (a
    /// READDIRPLUS reply): the backend evaluates those stats in the same
    /// exchange, right after the listing, and they answer the stat requests
    /// the caller makes when `done` gets the listing.
    pub fn list_plus_then(
        &self,
        path: &AttrPath,
        done: impl FnOnce(Result<Arc<Listing>, NodeError>) + Send + 'static,
    ) {
        // A walk goes on: read-ahead may run further ahead of it.
        if self.shared.ahead_budget.load(Ordering::Relaxed) != READ_AHEAD_DEPTH_BUDGET {
            self.shared
                .ahead_budget
                .store(READ_AHEAD_DEPTH_BUDGET, Ordering::Relaxed);
        }
        self.submit(
            make_key(Op::ListPlus, path),
            Box::new(move |a| done(as_listing(a))),
        );
    }

    /// Queues `dirs`, entries a listing just returned, to be read ahead:
    /// see the module documentation, "Read-ahead". Entries of the root,
    /// entries not known to be directories when their turn comes, and
    /// those already listed (or stored) or asked for are skipped; nothing
    /// happens when read-ahead is off. The caller passes the paths it keeps
    /// (an inode's), so the answers are cached under them.
    pub fn read_ahead(&self, dirs: impl IntoIterator<Item = AttrPath>) {
        if self.shared.config.read_ahead {
            // Below the root only: `ls` of a package set's root would
            // otherwise evaluate every package.
            let below_root = dirs.into_iter().filter(|path| path.len() > 1);
            read_ahead(&self.shared, Op::ListPlus, below_root);
        }
    }

    /// Queues the stats of `entries` to be read ahead: the part of a big
    /// directory's listing after the entries a READDIRPLUS reply just
    /// returned, which the next READDIRPLUS will ask for (see the module
    /// documentation, "Read-ahead"). At the root too: one reply's worth
    /// ahead of what a colour `ls` stats anyway.
    pub fn read_ahead_stats(&self, entries: impl IntoIterator<Item = AttrPath>) {
        if self.shared.config.read_ahead {
            read_ahead(&self.shared, Op::Stat, entries);
        }
    }

    /// Waits, at most `within`, until no request is being evaluated: an
    /// answer is delivered before its evaluation thread reaches the
    /// persistent store's sync point (see [`crate::persist`]), so an
    /// unmount right after a read would otherwise lose it. Read-ahead
    /// still queued is dropped, and one running is not waited for.
    pub fn settle(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut state = self.shared.state.lock();
        while let Some(key) = state.ahead.pop_back() {
            forget_read_ahead(&mut state, &key);
        }
        let busy = |state: &State| {
            state
                .slots
                .iter()
                .any(|slot| slot.running.as_ref().is_some_and(|r| !r.speculative))
        };
        while busy(&state) && Instant::now() < deadline {
            MutexGuard::unlocked(&mut state, || thread::sleep(Duration::from_millis(2)));
        }
    }

    /// The path the cache already keeps for `path`'s stat, if it has one,
    /// else `path`: a caller that keeps paths (the inode table) then
    /// shares the cache's instead of holding an equal copy (a read-ahead
    /// answers stats before the walk's READDIRPLUS makes their inodes).
    pub fn shared_path(&self, path: AttrPath) -> AttrPath {
        match self.shared.cache.nodes.read().get_key_value(&path) {
            Some((kept, _)) => kept.clone(),
            None => path,
        }
    }

    /// [`EvalService::shared_path`] and [`EvalService::cached_stat`] of a
    /// batch of paths (the entries of a READDIRPLUS reply), in one lookup
    /// each and one lock for the batch: a walk asks this for every entry,
    /// and taking the lock and hashing the path once per question was a
    /// fifth of the daemon's user time.
    pub fn shared_stats(&self, paths: impl IntoIterator<Item = AttrPath>) -> Vec<SharedStat> {
        let nodes = self.shared.cache.nodes.read();
        paths
            .into_iter()
            .map(|path| match nodes.get_key_value(&path) {
                Some((kept, hit)) => (kept.clone(), Some(unbox(hit))),
                None => (path, None),
            })
            .collect()
    }

    /// Reads the whole file at `path`; see [`EvalService::stat_then`].
    pub fn read_then(
        &self,
        path: &AttrPath,
        done: impl FnOnce(Result<Arc<[u8]>, NodeError>) + Send + 'static,
    ) {
        self.submit(
            make_key(Op::Read, path),
            Box::new(move |a| done(as_bytes(a))),
        );
    }

    /// Every extended attribute of the node at `path`, the costly ones
    /// included; see [`EvalService::stat_then`] and
    /// [`Backend::xattrs`](crate::Backend::xattrs).
    pub fn xattrs_then(
        &self,
        path: &AttrPath,
        done: impl FnOnce(Result<Arc<XattrList>, NodeError>) + Send + 'static,
    ) {
        self.submit(
            make_key(Op::Xattrs, path),
            Box::new(move |a| done(as_xattrs(a))),
        );
    }

    /// Stats `path`, blocking until the answer or the deadline.
    pub fn stat(&self, path: &AttrPath) -> Result<Arc<Node>, NodeError> {
        as_node(self.wait(make_key(Op::Stat, path)))
    }

    /// Lists the directory at `path`, blocking until the answer or the
    /// deadline.
    pub fn list(&self, path: &AttrPath) -> Result<Arc<Listing>, NodeError> {
        as_listing(self.wait(make_key(Op::List, path)))
    }

    /// Reads the file at `path`, blocking until the answer or the deadline.
    pub fn read(&self, path: &AttrPath) -> Result<Arc<[u8]>, NodeError> {
        as_bytes(self.wait(make_key(Op::Read, path)))
    }

    /// Every extended attribute of the node at `path`, blocking until the
    /// answer or the deadline.
    pub fn xattrs(&self, path: &AttrPath) -> Result<Arc<XattrList>, NodeError> {
        as_xattrs(self.wait(make_key(Op::Xattrs, path)))
    }

    /// The cached stat answer for `path`, without asking the evaluator.
    pub fn cached_stat(&self, path: &AttrPath) -> Option<Result<Arc<Node>, NodeError>> {
        self.cache_view().cached_stat(path)
    }

    /// A handle on the cache alone, for completion callbacks that want to
    /// look at other cached answers. Unlike the service it does not stop
    /// anything when dropped, so a callback may own one.
    pub fn cache_view(&self) -> CacheView {
        CacheView {
            shared: self.shared.clone(),
        }
    }

    /// Attaches a persistent store (see [`crate::persist`]): asked after
    /// the service's own cache and before the evaluator, and handed every
    /// permanent answer from now on, with the inputs it was evaluated from.
    /// Attach it before the first request; a service takes one store only
    /// (false if it has one already).
    pub fn attach_store(&self, store: Arc<dyn AnswerStore>) -> bool {
        if self.shared.store.set(store.clone()).is_err() {
            return false;
        }
        // What the roots' evaluation read covers every answer to come.
        let known = self.shared.inputs.lock().set.inputs().to_vec();
        if !known.is_empty() {
            store.inputs(known);
        }
        true
    }

    /// Adds inputs the service did not read itself: those the answers of an
    /// attached store were evaluated from, so that whoever follows the
    /// service's inputs (the live view) follows them too.
    pub fn add_inputs(&self, inputs: Vec<Input>) {
        record_inputs(&self.shared, inputs);
    }

    /// How many questions are queued or being evaluated (with someone
    /// waiting for them): a service being retired is dropped at zero.
    pub fn pending(&self) -> usize {
        let state = self.shared.state.lock();
        state.pending.values().filter(|p| !p.speculative).count()
    }

    /// Every input the evaluation read so far (each first observation),
    /// gathered from every backend of this service: the root's evaluation
    /// and every answer since.
    pub fn inputs(&self) -> InputSet {
        self.shared.inputs.lock().set.clone()
    }

    /// A channel of the inputs the evaluation reads: first all recorded so
    /// far, then, as answers are evaluated, each batch of new ones. An
    /// input observed again differently (the sources changed under a
    /// replaced worker) is sent again as first recorded, so that a watcher
    /// that re-observes what it receives notices the change.
    pub fn subscribe_inputs(&self) -> mpsc::Receiver<Vec<Input>> {
        let (tx, rx) = mpsc::channel();
        let mut inputs = self.shared.inputs.lock();
        let _ = tx.send(inputs.set.inputs().to_vec());
        inputs.listeners.push(tx);
        rx
    }

    fn wait(&self, key: Key) -> Answer {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(
            key,
            Box::new(move |answer| {
                // The receiver only goes away if the caller itself is gone.
                let _ = tx.send(answer);
            }),
        );
        // Every waiter is answered by its deadline (the watchdog sees to
        // it) or when the service shuts down, so this cannot hang.
        rx.recv().unwrap_or_else(|_| {
            Err(NodeError::Unavailable(
                "the request was dropped unanswered".to_owned(),
            ))
        })
    }

    fn submit(&self, key: Key, done: Callback) {
        if let Some(hit) = self.shared.cache.get(key.op, &key.path) {
            done(hit);
            return;
        }
        if let Some(hit) = stored(&self.shared, &key) {
            self.shared.cache.put(&key, &hit);
            done(hit);
            return;
        }
        let deadline = Instant::now() + self.shared.config.eval_timeout;
        let mut state = self.shared.state.lock();
        if let Some(reason) = state.unavailable() {
            drop(state);
            done(Err(NodeError::Unavailable(reason)));
            return;
        }
        // The evaluation thread fills the cache while holding the state
        // lock, so this second look cannot miss an answer that arrived
        // since the first.
        if let Some(hit) = self.shared.cache.get(key.op, &key.path) {
            drop(state);
            done(hit);
            return;
        }
        let waiter = Waiter { deadline, done };
        let asked = key.path.clone();
        match state.pending.entry(key) {
            MapEntry::Occupied(mut entry) => {
                let pending = entry.get_mut();
                if pending.claimed && pending.waiters.is_empty() {
                    pending.asked.get_or_insert(asked);
                }
                pending.waiters.push(waiter);
                // Read ahead but not started: it is a request now.
                let promote = pending.speculative && !pending.claimed;
                pending.speculative = false;
                if promote {
                    let key = entry.key().clone();
                    state.queue.push_front(key);
                    self.shared.work.notify_all();
                }
            }
            MapEntry::Vacant(entry) => {
                let key = entry.key().clone();
                entry.insert(Pending {
                    waiters: vec![waiter],
                    asked: None,
                    claimed: false,
                    speculative: false,
                });
                state.queue.push_back(key);
                self.shared.work.notify_all();
            }
        }
        // The watchdog must look by this request's deadline, and by the end
        // of the patience of a read-ahead running ahead of it (which gives
        // way then).
        let timeout = self.shared.config.eval_timeout;
        let look_by = patience_ends(&state, timeout).map_or(deadline, |p| p.min(deadline));
        if state.watchdog.must_wake_for(look_by) {
            state.watchdog = WatchdogSleep::Awake;
            self.shared.watch.notify_all();
        }
    }
}

/// When the first running read-ahead's patience ends: a request waiting
/// behind it interrupts it then (see the watchdog).
fn patience_ends(state: &State, timeout: Duration) -> Option<Instant> {
    state
        .slots
        .iter()
        .filter_map(|slot| slot.running.as_ref())
        .filter(|r| r.speculative)
        .map(|r| r.started + READ_AHEAD_PATIENCE.min(timeout))
        .min()
}

/// Read-only access to the service's cache; see [`EvalService::cache_view`].
#[derive(Clone)]
pub struct CacheView {
    shared: Arc<Shared>,
}

impl CacheView {
    /// The cached stat answer for `path`, without asking the evaluator.
    pub fn cached_stat(&self, path: &AttrPath) -> Option<Result<Arc<Node>, NodeError>> {
        self.shared.cache.get(Op::Stat, path).map(as_node)
    }
}

impl Drop for EvalService {
    fn drop(&mut self) {
        shutdown(&self.shared);
        if let Some(handle) = self.watchdog.take() {
            // A panicking watchdog has already been logged by the panic hook.
            let _ = handle.join();
        }
    }
}

fn shutdown(shared: &Shared) {
    let waiters = {
        let mut state = shared.state.lock();
        state.shutdown = true;
        // Make the evaluations in progress stop as soon as they can.
        for slot in &state.slots {
            slot.interrupt.store(true, Ordering::SeqCst);
        }
        state.drain_all()
    };
    shared.work.notify_all();
    shared.watch.notify_all();
    fail_all(waiters, "the mount is shutting down");
}

fn fail_all(waiters: Vec<Waiter>, reason: &str) {
    for waiter in waiters {
        (waiter.done)(Err(NodeError::Unavailable(reason.to_owned())));
    }
}

fn make_key(op: Op, path: &AttrPath) -> Key {
    Key {
        op,
        path: path.clone(),
    }
}

fn mismatch() -> NodeError {
    NodeError::Unavailable("internal error: answer of the wrong kind".to_owned())
}

fn as_node(answer: Answer) -> Result<Arc<Node>, NodeError> {
    match answer? {
        Rendered::Node(node, _) => Ok(node),
        _ => Err(mismatch()),
    }
}

fn as_xattrs(answer: Answer) -> Result<Arc<XattrList>, NodeError> {
    match answer? {
        Rendered::Xattrs(xattrs) => Ok(xattrs),
        _ => Err(mismatch()),
    }
}

fn as_listing(answer: Answer) -> Result<Arc<Listing>, NodeError> {
    match answer? {
        Rendered::Listing(listing) => Ok(listing),
        _ => Err(mismatch()),
    }
}

fn as_bytes(answer: Answer) -> Result<Arc<[u8]>, NodeError> {
    match answer? {
        Rendered::Bytes(bytes) => Ok(bytes),
        _ => Err(mismatch()),
    }
}

fn spawn_eval_thread(
    shared: Arc<Shared>,
    slot: usize,
    generation: u64,
    interrupt: Interrupt,
    ready: Option<mpsc::SyncSender<Result<(), String>>>,
) -> std::io::Result<()> {
    thread::Builder::new()
        .name(format!("attrfs-eval-{slot}.{generation}"))
        .stack_size(shared.config.stack_size)
        .spawn(move || eval_thread(&shared, slot, generation, interrupt, ready))
        .map(drop)
}

/// Moves the inputs a backend recorded into the service's set and tells
/// the listeners (and the store) of the new ones. Called after each
/// evaluation, so it is also the store's sync point: every answer handed
/// to the store so far was evaluated before these inputs were taken.
fn gather_inputs(shared: &Shared, backend: &mut dyn Backend) {
    let inputs = backend.take_inputs();
    record_inputs(shared, inputs);
    if let Some(store) = shared.store.get() {
        store.sync();
    }
}

/// Adds inputs to the service's set; tells the listeners and the store of
/// the new ones.
fn record_inputs(shared: &Shared, inputs: Vec<Input>) {
    if inputs.is_empty() {
        return;
    }
    let mut log = shared.inputs.lock();
    let had_conflict = log.set.inconsistent().is_some();
    let mut new = log.set.extend(inputs);
    if let (false, Some(changed)) = (had_conflict, log.set.inconsistent()) {
        warn!(
            "{} {} changed while this generation was being evaluated",
            changed.kind.name(),
            changed.name
        );
        let key = (changed.kind, changed.name.clone());
        if let Some(first) = log
            .set
            .inputs()
            .iter()
            .find(|i| (i.kind, &i.name) == (key.0, &key.1))
        {
            new.push(first.clone());
        }
        if let Some(store) = shared.store.get() {
            // Answers of this generation may mix old and new sources.
            store.inputs(vec![Input {
                kind: InputKind::Impure,
                name: format!(
                    "{} {} changed during the evaluation",
                    changed.kind.name(),
                    changed.name
                ),
                fingerprint: String::new(),
            }]);
        }
    }
    if !new.is_empty() {
        if let Some(store) = shared.store.get() {
            store.inputs(new.clone());
        }
        log.listeners.retain(|tx| tx.send(new.clone()).is_ok());
    }
}

/// The request frame that keys an answer in the store (a plus listing is
/// stored as the listing it is).
fn request_frame(key: &Key) -> Vec<u8> {
    let path = key.path.clone();
    match key.op {
        Op::Stat => Request::Stat(path),
        Op::List | Op::ListPlus => Request::List(path),
        Op::Read => Request::Read(path),
        Op::Xattrs => Request::Xattrs(path),
    }
    .encode()
}

/// Hands a permanent answer to the store, if there is one.
fn persist(shared: &Shared, key: &Key, answer: &Answer) {
    let Some(store) = shared.store.get() else {
        return;
    };
    if matches!(answer, Err(e) if !e.is_permanent()) {
        return;
    }
    let wire = match answer {
        Err(e) => Err(e.clone()),
        Ok(Rendered::Node(node, contents)) => {
            if let Some(bytes) = contents {
                let read = make_key(Op::Read, &key.path);
                let frame = protocol::encode_answer(&Ok(WireAnswer::Read(bytes.to_vec())));
                store.put(request_frame(&read), frame);
            }
            Ok(WireAnswer::Stat(Node::clone(node).into()))
        }
        Ok(Rendered::Listing(listing)) => Ok(WireAnswer::List(listing.entries().to_vec())),
        Ok(Rendered::Bytes(bytes)) => Ok(WireAnswer::Read(bytes.to_vec())),
        Ok(Rendered::Xattrs(xattrs)) => Ok(WireAnswer::Xattrs(XattrList::clone(xattrs))),
    };
    store.put(request_frame(key), protocol::encode_answer(&wire));
}

/// A stored answer to `key`, if the store has one of the right kind (a
/// frame that does not decode, or answers another kind of question, is
/// not used).
fn stored(shared: &Shared, key: &Key) -> Option<Answer> {
    let frame = shared.store.get()?.get(&request_frame(key))?;
    let answer = match protocol::decode_answer(&frame) {
        Ok(answer) => answer,
        Err(e) => {
            warn!("{key}: ignoring an unreadable stored answer: {e}");
            return None;
        }
    };
    match (key.op, answer) {
        (_, Err(e)) => Some(Err(e)),
        (Op::Stat, Ok(WireAnswer::Stat(stat))) => Some(Ok(shared.cache.node(stat))),
        (Op::List | Op::ListPlus, Ok(WireAnswer::List(entries))) => {
            Some(Ok(Rendered::Listing(Arc::new(Listing::new(entries)))))
        }
        (Op::Read, Ok(WireAnswer::Read(bytes))) => Some(Ok(Rendered::Bytes(Arc::from(bytes)))),
        (Op::Xattrs, Ok(WireAnswer::Xattrs(xattrs))) => {
            Some(Ok(Rendered::Xattrs(Arc::new(xattrs))))
        }
        _ => None,
    }
}

fn build_backend(factory: &Factory, interrupt: &Interrupt) -> Result<Box<dyn Backend>, String> {
    catch_unwind(AssertUnwindSafe(|| factory(interrupt.clone())))
        .unwrap_or_else(|panic| Err(format!("the evaluator panicked: {}", panic_text(&panic))))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// Marks the service broken and fails everything waiting.
fn give_up(mut state: MutexGuard<'_, State>, reason: String) {
    error!("{reason}");
    state.broken = Some(reason.clone());
    let waiters = state.drain_all();
    drop(state);
    fail_all(waiters, &reason);
}

fn eval_thread(
    shared: &Shared,
    slot: usize,
    generation: u64,
    interrupt: Interrupt,
    ready: Option<mpsc::SyncSender<Result<(), String>>>,
) {
    let mut backend = match build_backend(&*shared.factory, &interrupt) {
        Ok(backend) => backend,
        Err(message) => {
            match ready {
                Some(ready) => {
                    let _ = ready.send(Err(message));
                }
                None => give_up(
                    shared.state.lock(),
                    format!("cannot restart the evaluator: {message}"),
                ),
            }
            return;
        }
    };
    gather_inputs(shared, &mut *backend);
    if let Some(ready) = ready {
        let _ = ready.send(Ok(()));
    }
    // Whether the last read-ahead listings were quick (see
    // `READ_AHEAD_CHEAP`): only then are several taken together.
    let mut ahead_cheap = true;
    loop {
        let (keys, speculative) = {
            let mut state = shared.state.lock();
            let (key, speculative) = loop {
                if state.shutdown || state.slots[slot].generation != generation {
                    return;
                }
                match state.queue.pop_front() {
                    // Skip requests whose callers all gave up while queued,
                    // and those another request is answering.
                    Some(key) if state.pending.get(&key).is_some_and(|p| !p.claimed) => {
                        break (key, false)
                    }
                    Some(_) => continue,
                    None => match take_read_ahead(&shared.cache, &mut state) {
                        Some(key) => break (key, true),
                        None => shared.work.wait(&mut state),
                    },
                }
            };
            if let Some(pending) = state.pending.get_mut(&key) {
                // Running: a request that asks for it joins it, and the
                // copy of a promoted read-ahead left in `ahead` is skipped.
                pending.claimed = true;
            }
            let mut also = Vec::new();
            if key.op == Op::ListPlus && speculative && ahead_cheap {
                // The next read-ahead listings, a few together: the worker
                // goes from one to the next without waiting for this
                // thread (see `READ_AHEAD_LIST_BATCH`).
                while also.len() + 1 < READ_AHEAD_LIST_BATCH
                    && state
                        .ahead
                        .back()
                        .is_some_and(|next| next.op == Op::ListPlus)
                {
                    let Some(next) = take_read_ahead(&shared.cache, &mut state) else {
                        break;
                    };
                    if next.op != Op::ListPlus {
                        state.ahead.push_back(next);
                        break;
                    }
                    if let Some(pending) = state.pending.get_mut(&next) {
                        pending.claimed = true;
                    }
                    also.push(next);
                }
            } else if key.op == Op::Stat && speculative {
                // The read-ahead stats queued with it, a few together.
                while also.len() + 1 < READ_AHEAD_STAT_BATCH {
                    let Some(next) = state.ahead.back() else {
                        break;
                    };
                    if next.op != Op::Stat {
                        break;
                    }
                    let Some(next) = state.ahead.pop_back() else {
                        break;
                    };
                    if let Some(pending) = state.pending.get_mut(&next) {
                        if pending.speculative && !pending.claimed {
                            pending.claimed = true;
                            also.push(next);
                        }
                    }
                }
            } else if key.op == Op::Stat {
                while also.len() + 1 < STAT_BATCH {
                    match state.queue.front() {
                        Some(next) if next.op == Op::Stat => {}
                        _ => break,
                    }
                    let Some(next) = state.queue.pop_front() else {
                        break;
                    };
                    if state.pending.get(&next).is_some_and(|p| !p.claimed) {
                        also.push(next);
                    }
                }
            }
            state.slots[slot].running = Some(Running {
                key: key.clone(),
                also: also.clone(),
                started: Instant::now(),
                interrupted_at: None,
                speculative,
            });
            // Cleared under the lock, after `running` names this request,
            // so an interrupt meant for the previous request cannot leak
            // into this one. The watchdog acts on a running request once a
            // waiter's deadline passes, and it is already due to wake for
            // that deadline; but a read-ahead gives way to a waiting request
            // when its patience ends, which the watchdog hears of here if a
            // request already waits (one that comes later tells it then).
            interrupt.store(false, Ordering::SeqCst);
            if speculative {
                let waits = state
                    .queue
                    .iter()
                    .any(|k| state.pending.get(k).is_some_and(|p| !p.waiters.is_empty()));
                let timeout = shared.config.eval_timeout;
                if waits {
                    if let Some(at) = patience_ends(&state, timeout) {
                        if state.watchdog.must_wake_for(at) {
                            state.watchdog = WatchdogSleep::Awake;
                            shared.watch.notify_all();
                        }
                    }
                }
            }
            let mut keys = vec![key];
            keys.extend(also);
            (keys, speculative)
        };
        let key = keys[0].clone();

        let started = Instant::now();
        // Each answer is delivered as soon as it is known, so that a value
        // that hangs does not hold up the siblings batched before it.
        let mut delivered = vec![false; keys.len()];
        let mut abandoned = false;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if key.op == Op::ListPlus {
                let run = (shared, slot, generation, started);
                let listed = evaluate_list_plus(&mut *backend, run, &keys, &mut delivered);
                if speculative {
                    let per_listing = started.elapsed() / keys.len().max(1) as u32;
                    ahead_cheap = per_listing < READ_AHEAD_CHEAP;
                }
                match listed {
                    None => abandoned = true,
                    // A quick read-ahead's subdirectories are read ahead
                    // too, while the walk keeps asking (see `ahead_budget`).
                    Some(subdirs) if speculative && ahead_cheap && !subdirs.is_empty() => {
                        let budget = shared.ahead_budget.fetch_update(
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                            |left| left.checked_sub(1),
                        );
                        if budget.is_ok() && shared.config.read_ahead {
                            read_ahead(shared, Op::ListPlus, subdirs);
                        }
                    }
                    Some(_) => {}
                }
            } else {
                evaluate_all(&mut *backend, &shared.cache, &keys, &mut |i, answer| {
                    delivered[i] = true;
                    if !abandoned {
                        abandoned = !complete(shared, slot, generation, &keys[i], answer, started);
                    }
                });
            }
            gather_inputs(shared, &mut *backend);
        }));
        if abandoned {
            return;
        }
        if let Err(panic) = outcome {
            let text = panic_text(&panic);
            error!("the evaluator panicked on {key}: {text}; starting a fresh one");
            // A panic may have left the backend's state half-updated, so it
            // is not trusted with another request.
            match build_backend(&*shared.factory, &interrupt) {
                Ok(fresh) => backend = fresh,
                Err(message) => {
                    let state = shared.state.lock();
                    if state.slots[slot].generation == generation {
                        give_up(state, format!("cannot restart the evaluator: {message}"));
                    }
                    return;
                }
            }
            let failed: Answer = Err(NodeError::EvalFailed(format!(
                "internal error in the evaluator: {text}"
            )));
            for (key, _) in keys.iter().zip(&delivered).filter(|(_, done)| !**done) {
                if !complete(shared, slot, generation, key, failed.clone(), started) {
                    return;
                }
            }
        }
        let mut state = shared.state.lock();
        if state.slots[slot].generation == generation {
            if let Some(running) = state.slots[slot].running.take() {
                release(&mut state, running.also);
            }
        }
    }
}

/// Queues read-ahead questions (listings or stats) about `paths` (see
/// [`EvalService::read_ahead`]). Whether an entry to be listed is a
/// directory is only known once its stat is, so that is checked when it is
/// taken ([`take_read_ahead`]).
fn read_ahead(shared: &Shared, op: Op, paths: impl IntoIterator<Item = AttrPath>) {
    let candidates: Vec<Key> = paths
        .into_iter()
        .map(|path| make_key(op, &path))
        // An answer the persistent store has is as good as read already.
        .filter(|key| shared.cache.get(op, &key.path).is_none() && stored(shared, key).is_none())
        .collect();
    if candidates.is_empty() {
        return;
    }
    let mut state = shared.state.lock();
    if state.unavailable().is_some() {
        return;
    }
    let mut queued = false;
    // The first entry ends up on top of the stack: taken first, as a
    // depth-first walk will ask for it first.
    for key in candidates.into_iter().rev() {
        if let MapEntry::Vacant(entry) = state.pending.entry(key) {
            let key = entry.key().clone();
            entry.insert(Pending {
                speculative: true,
                ..Pending::default()
            });
            state.ahead.push_back(key);
            queued = true;
        }
    }
    while state.ahead.len() > READ_AHEAD_LIMIT {
        if let Some(old) = state.ahead.pop_front() {
            forget_read_ahead(&mut state, &old);
        }
    }
    if queued {
        shared.work.notify_all();
    }
}

/// Takes the newest read-ahead question worth evaluating: still nobody's,
/// not started and not answered yet, and for a listing, a directory by
/// its cached stat. Those that are not worth it are forgotten on the way.
fn take_read_ahead(cache: &Cache, state: &mut State) -> Option<Key> {
    while let Some(key) = state.ahead.pop_back() {
        let Some(pending) = state.pending.get(&key) else {
            continue;
        };
        if !pending.speculative || pending.claimed {
            // Asked for meanwhile: it went to the queue.
            continue;
        }
        let worth = match key.op {
            Op::ListPlus => {
                let directory = matches!(
                    cache.get(Op::Stat, &key.path),
                    Some(Ok(Rendered::Node(node, _))) if node.kind == NodeKind::Directory && node.error.is_none()
                );
                directory && cache.get(Op::ListPlus, &key.path).is_none()
            }
            op => cache.get(op, &key.path).is_none(),
        };
        if worth {
            return Some(key);
        }
        forget_read_ahead(state, &key);
    }
    None
}

/// Drops a read-ahead entry nobody asked for.
fn forget_read_ahead(state: &mut State, key: &Key) {
    if state
        .pending
        .get(key)
        .is_some_and(|p| p.speculative && !p.claimed && p.waiters.is_empty())
    {
        state.pending.remove(key);
    }
}

/// Hands back the requests a finished evaluation was to answer and did not
/// (the stats after a listing whose exchange was cut short): those still
/// awaited go back to the front of the queue, the others are dropped.
fn release(state: &mut State, keys: Vec<Key>) {
    for key in keys.into_iter().rev() {
        match state.pending.get_mut(&key) {
            Some(pending) if !pending.waiters.is_empty() => {
                pending.claimed = false;
                state.queue.push_front(key);
            }
            Some(_) => {
                state.pending.remove(&key);
            }
            None => {}
        }
    }
}

/// Runs [`Op::ListPlus`] requests (one, or a few read-ahead listings
/// together): each listing answers its key (its waiters then ask for the
/// entries' stats), and the stats the backend sends after it answer those
/// requests, which this evaluation claims so that no other evaluation
/// thread takes them meanwhile. Returns the entries found to be
/// directories, or `None` if the thread was abandoned meanwhile (see
/// [`complete`]).
fn evaluate_list_plus(
    backend: &mut dyn Backend,
    (shared, slot, generation, started): (&Shared, usize, u64, Instant),
    keys: &[Key],
    delivered: &mut [bool],
) -> Option<Vec<AttrPath>> {
    // The stat keys of each listing's first entries, by listing.
    let children: RefCell<Vec<Vec<Key>>> = RefCell::new(vec![Vec::new(); keys.len()]);
    let alive = Cell::new(true);
    let mut subdirs = Vec::new();
    let paths: Vec<AttrPath> = keys.iter().map(|k| k.path.clone()).collect();
    backend.list_plus_many(
        &paths,
        LIST_PLUS_STATS,
        &mut |d, listing| {
            let (Some(key), true) = (keys.get(d), alive.get()) else {
                return;
            };
            if let Some(done) = delivered.get_mut(d) {
                *done = true;
            }
            let answer = listing.map(|entries| Arc::new(Listing::new(entries)));
            if let Ok(listing) = &answer {
                children.borrow_mut()[d] = listing
                    .entries()
                    .iter()
                    .take(LIST_PLUS_STATS)
                    .map(|entry| make_key(Op::Stat, &key.path.child(entry.name.clone())))
                    .collect();
            }
            // Claimed before the listing's waiters hear of it: the stats
            // they ask for then join these entries instead of being queued
            // for another evaluation thread.
            {
                let mut state = shared.state.lock();
                if state.slots[slot].generation != generation {
                    return alive.set(false);
                }
                let children = children.borrow();
                for child in children[d].iter() {
                    state.pending.entry(child.clone()).or_default().claimed = true;
                }
                if let Some(running) = state.slots[slot].running.as_mut() {
                    running.also.extend(children[d].iter().cloned());
                }
            }
            let answer = answer.map(Rendered::Listing);
            if !complete(shared, slot, generation, key, answer, started) {
                alive.set(false);
            }
        },
        &mut |d, i, stat| {
            if !alive.get() {
                return;
            }
            let Some(child) = children.borrow().get(d).and_then(|c| c.get(i)).cloned() else {
                return;
            };
            let answer = stat.map(|stat| shared.cache.node(stat));
            if let Ok(Rendered::Node(node, _)) = &answer {
                // Not a derivation's attributes: their stats can each cost
                // a whole `derivationStrict` (`outPath`), worth spending
                // only once something lists the derivation.
                let plain = node.nix_type != "derivation" && node.error.is_none();
                if node.kind == NodeKind::Directory && plain {
                    subdirs.push(child.path.clone());
                }
            }
            if !complete(shared, slot, generation, &child, answer, started) {
                alive.set(false);
            }
        },
    );
    alive.get().then_some(subdirs)
}

/// Records the answer to `key` and answers its waiters. Returns false if
/// the watchdog gave up on this thread meanwhile (it has answered everyone,
/// and a fresh thread serves the queue): the thread must then exit.
fn complete(
    shared: &Shared,
    slot: usize,
    generation: u64,
    key: &Key,
    answer: Answer,
    started: Instant,
) -> bool {
    let elapsed = started.elapsed();
    let waiters = {
        let mut state = shared.state.lock();
        if state.slots[slot].generation != generation {
            info!("abandoned evaluation of {key} returned after {elapsed:?}");
            return false;
        }
        if let Some(running) = state.slots[slot].running.as_mut() {
            // Answers come in the order the keys were added, so the key is
            // found at the front. (A `retain` comparing every key of the
            // batch made a listing's stats cost quadratic time: 4.6% of
            // the daemon in a walk of 200-entry directories.)
            if let Some(i) = running.also.iter().position(|k| k == key) {
                running.also.remove(i);
            }
        }
        let live = state
            .pending
            .get(key)
            .is_some_and(|p| !p.waiters.is_empty());
        if matches!(answer, Err(NodeError::Interrupted)) && live {
            // Callers that joined after the interrupt still deserve an
            // attempt of their own.
            if let Some(pending) = state.pending.get_mut(key) {
                pending.claimed = false;
            }
            state.queue.push_front(key.clone());
            Vec::new()
        } else {
            persist(shared, key, &answer);
            match state.pending.remove_entry(key) {
                // The waiting request's key: its path is the one the caller
                // keeps (an inode's), so the cache shares it.
                Some((mut asked, pending)) => {
                    if let Some(path) = pending.asked {
                        asked.path = path;
                    }
                    shared.cache.put(&asked, &answer);
                    pending.waiters
                }
                None => {
                    shared.cache.put(key, &answer);
                    Vec::new()
                }
            }
        }
    };
    log_answer(key, &answer, elapsed);
    for waiter in waiters {
        (waiter.done)(answer.clone());
    }
    true
}

/// Evaluates `keys` (one request, or a batch of stats) in order, handing
/// each answer to `deliver` as soon as it is known.
fn evaluate_all(
    backend: &mut dyn Backend,
    cache: &Cache,
    keys: &[Key],
    deliver: &mut dyn FnMut(usize, Answer),
) {
    if keys.len() > 1 && keys.iter().all(|k| k.op == Op::Stat) {
        let paths: Vec<AttrPath> = keys.iter().map(|k| k.path.clone()).collect();
        backend.stat_many(&paths, &mut |i, r| {
            deliver(i, r.map(|stat| cache.node(stat)))
        });
        return;
    }
    for (i, key) in keys.iter().enumerate() {
        deliver(i, evaluate(backend, cache, key));
    }
}

fn evaluate(backend: &mut dyn Backend, cache: &Cache, key: &Key) -> Answer {
    match key.op {
        Op::Stat => backend.stat(&key.path).map(|stat| cache.node(stat)),
        Op::List | Op::ListPlus => backend
            .list(&key.path)
            .map(|entries| Rendered::Listing(Arc::new(Listing::new(entries)))),
        Op::Read => backend
            .read(&key.path)
            .map(|bytes| Rendered::Bytes(Arc::from(bytes))),
        Op::Xattrs => backend
            .xattrs(&key.path)
            .map(|xattrs| Rendered::Xattrs(Arc::new(xattrs))),
    }
}

fn log_answer(key: &Key, answer: &Answer, elapsed: Duration) {
    match answer {
        Err(NodeError::EvalFailed(message)) => warn!("{key}: evaluation failed: {message}"),
        Ok(Rendered::Node(node, _)) if node.error.is_some() => {
            let message = node.error.as_deref().unwrap_or_default();
            warn!("{key}: the value fails to evaluate: {message}");
        }
        Err(NodeError::Interrupted) => info!("{key}: evaluation interrupted after {elapsed:?}"),
        _ if elapsed > Duration::from_secs(1) => info!("{key}: evaluated in {elapsed:?}"),
        _ => debug!("{key}: evaluated in {elapsed:?}"),
    }
}

fn watchdog(shared: &Arc<Shared>) {
    let timeout = shared.config.eval_timeout;
    let mut state = shared.state.lock();
    loop {
        if state.shutdown {
            return;
        }
        let now = Instant::now();

        let mut expired: Vec<(Key, Waiter)> = Vec::new();
        let mut next: Option<Instant> = None;
        for (key, pending) in state.pending.iter_mut() {
            let mut kept = Vec::with_capacity(pending.waiters.len());
            for waiter in pending.waiters.drain(..) {
                if waiter.deadline <= now {
                    expired.push((key.clone(), waiter));
                } else {
                    next = Some(next.map_or(waiter.deadline, |n| n.min(waiter.deadline)));
                    kept.push(waiter);
                }
            }
            pending.waiters = kept;
        }
        let running_keys: Vec<Key> = state
            .slots
            .iter()
            .filter_map(|slot| slot.running.as_ref())
            .flat_map(|r| r.keys().cloned())
            .collect();
        state
            .pending
            .retain(|k, p| !p.waiters.is_empty() || p.speculative || running_keys.contains(k));

        // Whether a request waits in the queue (behind whatever runs).
        let waited = state.queue.iter().any(|key| {
            state
                .pending
                .get(key)
                .is_some_and(|p| !p.waiters.is_empty())
        });
        let mut abandoned = Vec::new();
        let grace = shared.config.stuck_grace;
        let patience = READ_AHEAD_PATIENCE;
        for slot in 0..state.slots.len() {
            let Some(keys) = state.slots[slot]
                .running
                .as_ref()
                .map(|r| r.keys().cloned().collect::<Vec<_>>())
            else {
                continue;
            };
            // A batch is interrupted once nobody waits for any of it; a
            // read-ahead once it has run as long as a request may.
            let live = keys.iter().any(|key| {
                state
                    .pending
                    .get(key)
                    .is_some_and(|p| !p.waiters.is_empty())
            });
            // A read-ahead runs until the timeout, or while a request
            // waits, until READ_AHEAD_PATIENCE.
            let live = live
                || state.slots[slot].running.as_ref().is_some_and(|r| {
                    if !r.speculative {
                        return false;
                    }
                    let patience = r.started + patience.min(timeout);
                    let limit = r.started + timeout;
                    let keep = now < limit && (now < patience || !waited);
                    if keep {
                        let at = if now < patience { patience } else { limit };
                        next = Some(next.map_or(at, |n| n.min(at)));
                    }
                    keep
                });
            let mut stuck = false;
            let Slot {
                running, interrupt, ..
            } = &mut state.slots[slot];
            if let Some(running) = running.as_mut() {
                if !live && running.interrupted_at.is_none() {
                    warn!(
                        "{}: nobody waits any more (deadline {timeout:?}) after {:?}; interrupting the evaluation",
                        running.key,
                        running.started.elapsed()
                    );
                    interrupt.store(true, Ordering::SeqCst);
                    running.interrupted_at = Some(now);
                }
                if let Some(at) = running.interrupted_at {
                    if now >= at + grace {
                        stuck = true;
                    } else {
                        next = Some(next.map_or(at + grace, |n| n.min(at + grace)));
                    }
                }
            }
            if stuck {
                abandoned.extend(abandon(shared, &mut state, slot));
            }
        }

        if !expired.is_empty() || !abandoned.is_empty() {
            MutexGuard::unlocked(&mut state, || {
                for (key, waiter) in expired {
                    warn!("{key}: no answer within {timeout:?}; failing the request with EIO");
                    (waiter.done)(Err(NodeError::TimedOut(timeout)));
                }
                for (waiter, answer) in abandoned {
                    (waiter.done)(answer);
                }
            });
            // Waiters may have come and gone while unlocked: look again.
            continue;
        }
        match next {
            Some(at) => {
                state.watchdog = WatchdogSleep::Until(at);
                shared.watch.wait_until(&mut state, at);
            }
            None => {
                state.watchdog = WatchdogSleep::Idle;
                shared.watch.wait(&mut state);
            }
        }
        state.watchdog = WatchdogSleep::Awake;
    }
}

/// Gives up on the evaluation thread of `slot`: its backend ignored the
/// interrupt for `stuck_grace`. Returns the waiters to answer (outside the
/// lock).
fn abandon(
    shared: &Arc<Shared>,
    state: &mut MutexGuard<'_, State>,
    slot: usize,
) -> Vec<(Waiter, Answer)> {
    let Some(running) = state.slots[slot].running.take() else {
        return Vec::new();
    };
    let grace = shared.config.stuck_grace;
    error!(
        "{}: the evaluation ignored its interrupt for {grace:?}; abandoning its thread and starting a fresh evaluator",
        running.key
    );
    // The same question would get stuck the same way (evaluation is
    // deterministic), so the failure is recorded rather than retried.
    let answer: Answer = Err(NodeError::EvalFailed(format!(
        "evaluation did not finish within {:?} and did not stop when interrupted; attrfs gave up on this value",
        shared.config.eval_timeout
    )));
    let mut waiters: Vec<(Waiter, Answer)> = Vec::new();
    for key in running.keys() {
        shared.cache.put(key, &answer);
        waiters.extend(
            state
                .pending
                .remove(key)
                .map(|p| p.waiters)
                .unwrap_or_default()
                .into_iter()
                .map(|w| (w, answer.clone())),
        );
    }

    let generation = state.slots[slot].generation + 1;
    state.slots[slot].generation = generation;
    state.abandoned += 1;
    let interrupt: Interrupt = Arc::new(AtomicBool::new(false));
    state.slots[slot].interrupt = interrupt.clone();
    let reason = if state.abandoned > shared.config.max_abandoned {
        Some(format!(
            "{} evaluations ignored their interrupt; refusing to start another evaluator",
            state.abandoned
        ))
    } else {
        let fresh = spawn_eval_thread(shared.clone(), slot, generation, interrupt, None);
        fresh
            .err()
            .map(|e| format!("cannot start a fresh evaluation thread: {e}"))
    };
    if let Some(reason) = reason {
        error!("{reason}");
        state.broken = Some(reason.clone());
        let unavailable: Answer = Err(NodeError::Unavailable(reason));
        waiters.extend(
            state
                .drain_all()
                .into_iter()
                .map(|w| (w, unavailable.clone())),
        );
    }
    shared.work.notify_all();
    waiters
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{self, attr, string, FakeStats, FakeValue};
    use crate::node::NodeKind;
    use std::sync::atomic::AtomicUsize;

    fn path(names: &[&str]) -> AttrPath {
        AttrPath::from_segments(names.iter().map(Segment::name).collect())
    }

    fn start(tree: FakeValue, config: ServiceConfig) -> (EvalService, Arc<FakeStats>) {
        let (factory, stats) = fake::factory_with_stats(tree);
        (EvalService::start(factory, config).unwrap(), stats)
    }

    fn quick() -> ServiceConfig {
        ServiceConfig {
            eval_timeout: Duration::from_millis(300),
            stuck_grace: Duration::from_millis(100),
            ..ServiceConfig::default()
        }
    }

    fn calls(stats: &FakeStats) -> usize {
        stats.calls.load(Ordering::SeqCst)
    }

    #[test]
    fn answers_are_cached() {
        let (service, stats) = start(fake::sample_tree(), quick());
        let node = service.stat(&path(&["hello"])).unwrap();
        assert_eq!((node.kind, node.size), (NodeKind::File, 14));
        // The bytes rendered to measure the file answer the read.
        assert_eq!(
            &*service.read(&path(&["hello"])).unwrap(),
            b"Hello, world!\n"
        );
        assert_eq!(calls(&stats), 1);
        let listing = service.list(&AttrPath::root()).unwrap();
        assert!(listing.contains(&Segment::name("a/b")));
        let xattrs = service.xattrs(&path(&["pkg"])).unwrap();
        assert!(xattrs.iter().any(|(n, _)| n == crate::xattr::DRV_PATH));
        assert_eq!(calls(&stats), 3);
        for _ in 0..3 {
            service.stat(&path(&["hello"])).unwrap();
            service.read(&path(&["hello"])).unwrap();
            service.list(&AttrPath::root()).unwrap();
            service.xattrs(&path(&["pkg"])).unwrap();
        }
        assert_eq!(calls(&stats), 3);
        assert!(service.cached_stat(&path(&["hello"])).is_some());
        assert!(service.cached_stat(&path(&["answer"])).is_none());
    }

    #[test]
    fn shared_stats_give_the_cached_paths_and_answers() {
        let (service, stats) = start(fake::sample_tree(), quick());
        let kept = path(&["hello"]);
        service.stat(&kept).unwrap();
        let hits = service.shared_stats([path(&["hello"]), path(&["answer"])]);
        // The cache's own path for a cached stat (the inode shares it), the
        // caller's for the other, and no evaluation either way.
        assert_eq!(hits.len(), 2);
        assert!(matches!(&hits[0].1, Some(Ok(node)) if node.size == 14));
        assert_eq!(hits[0].0, kept);
        assert_eq!(hits[1].0, path(&["answer"]));
        assert!(hits[1].1.is_none());
        assert_eq!(calls(&stats), 1);
    }

    #[test]
    fn permanent_errors_are_cached_too() {
        let (service, stats) = start(fake::sample_tree(), quick());
        assert_eq!(
            service.stat(&path(&["hello", "x"])),
            Err(NodeError::NotADirectory)
        );
        let broken = service.stat(&path(&["broken"])).unwrap();
        assert!(broken.error.is_some());
        assert!(matches!(
            service.list(&path(&["broken"])),
            Err(NodeError::EvalFailed(_))
        ));
        let before = calls(&stats);
        service.stat(&path(&["hello", "x"])).unwrap_err();
        service.stat(&path(&["broken"])).unwrap();
        service.list(&path(&["broken"])).unwrap_err();
        assert_eq!(calls(&stats), before);
    }

    #[test]
    fn a_cached_listing_answers_missing_names() {
        let (service, stats) = start(fake::sample_tree(), quick());
        service.list(&AttrPath::root()).unwrap();
        let before = calls(&stats);
        assert_eq!(service.stat(&path(&["nope"])), Err(NodeError::NotFound));
        assert_eq!(service.stat(&path(&[".drv"])).map(|_| ()), Ok(()));
        assert_eq!(
            calls(&stats),
            before + 1,
            "only the existing name was evaluated"
        );
    }

    #[test]
    fn concurrent_requests_for_one_path_are_evaluated_once() {
        let tree = FakeValue::Set(vec![attr(
            "slow",
            FakeValue::Slow(Duration::from_millis(200), Box::new(string("done"))),
        )]);
        let (service, stats) = start(tree, ServiceConfig::default());
        let service = Arc::new(service);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let service = service.clone();
                thread::spawn(move || service.stat(&path(&["slow"])).unwrap().size)
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 4);
        }
        assert_eq!(calls(&stats), 1);
    }

    #[test]
    fn a_hanging_value_times_out_and_the_service_goes_on() {
        let (service, _) = start(fake::sample_tree(), quick());
        let started = Instant::now();
        assert_eq!(
            service.stat(&path(&["hang"])),
            Err(NodeError::TimedOut(Duration::from_millis(300)))
        );
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        // The evaluation was interrupted, so the next request is served.
        let started = Instant::now();
        assert_eq!(service.stat(&path(&["answer"])).unwrap().size, 2);
        assert!(started.elapsed() < Duration::from_millis(250));
        // Timeouts are not cached: asking again evaluates again.
        assert!(matches!(
            service.stat(&path(&["hang"])),
            Err(NodeError::TimedOut(_))
        ));
    }

    #[test]
    fn requests_queued_behind_a_hang_time_out_by_their_own_deadline() {
        let (service, _) = start(fake::sample_tree(), quick());
        let (tx, rx) = mpsc::channel();
        let started = Instant::now();
        let tx2 = tx.clone();
        service.stat_then(&path(&["hang"]), move |r| tx.send(("hang", r)).unwrap());
        service.stat_then(&path(&["answer"]), move |r| {
            tx2.send(("answer", r)).unwrap()
        });
        let mut results: Vec<_> = (0..2).map(|_| rx.recv().unwrap()).collect();
        results.sort_by_key(|(name, _)| *name);
        // Both callers waited at most their deadline; the queued one either
        // timed out too or was served right after the interrupt.
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(matches!(results[1].1, Err(NodeError::TimedOut(_))));
        assert_eq!(service.stat(&path(&["answer"])).unwrap().size, 2);
    }

    #[test]
    fn an_evaluation_that_ignores_the_interrupt_is_abandoned() {
        let tree = FakeValue::Set(vec![
            attr("stuck", FakeValue::Stuck(Duration::from_secs(3))),
            attr("fine", string("fine")),
        ]);
        // The stuck value times out at 1 s and is abandoned 100 ms later,
        // well before the 2 s deadline of the request queued behind it.
        let config = ServiceConfig {
            eval_timeout: Duration::from_secs(1),
            ..quick()
        };
        let (service, stats) = start(tree, config);
        assert!(matches!(
            service.stat(&path(&["stuck"])),
            Err(NodeError::TimedOut(_))
        ));
        // Queued behind the stuck evaluation; served by a fresh backend once
        // the watchdog gives up on the old one.
        let started = Instant::now();
        let answer = service.stat(&path(&["fine"]));
        assert_eq!(answer.map(|n| n.size), Ok(4));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(stats.backends.load(Ordering::SeqCst), 2);
        // The stuck value is now a recorded failure, not another hang.
        let started = Instant::now();
        assert!(matches!(
            service.stat(&path(&["stuck"])),
            Err(NodeError::EvalFailed(_))
        ));
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn too_many_stuck_evaluations_make_the_service_unavailable() {
        let tree = FakeValue::Set(vec![
            attr("a", FakeValue::Stuck(Duration::from_secs(2))),
            attr("b", FakeValue::Stuck(Duration::from_secs(2))),
        ]);
        let config = ServiceConfig {
            max_abandoned: 1,
            ..quick()
        };
        let (service, _) = start(tree, config);
        service.stat(&path(&["a"])).unwrap_err();
        service.stat(&path(&["b"])).unwrap_err();
        thread::sleep(Duration::from_millis(400));
        assert!(matches!(
            service.stat(&path(&["a", "x"])),
            Err(NodeError::Unavailable(_))
        ));
    }

    #[test]
    fn plain_nodes_are_shared_and_others_are_not() {
        let cache = Cache::new(NonZeroUsize::MIN);
        let node = |stat: Stat| match cache.node(stat) {
            Rendered::Node(node, _) => node,
            _ => unreachable!("a stat renders a node"),
        };
        let a = node(Stat::file("bool", b"true".to_vec()));
        let b = node(Node::file(Node::type_name("bool".to_owned()), 4).into());
        assert!(Arc::ptr_eq(&a, &b));
        let other_size = node(Node::file("bool", 5).into());
        assert!(!Arc::ptr_eq(&a, &other_size));
        let failed = node(Node::failed("boom").into());
        let failed_again = node(Node::failed("bang").into());
        assert_eq!(failed_again.error.as_deref(), Some("bang"));
        assert!(!Arc::ptr_eq(&failed, &failed_again));
        let link = node(Node::symlink("path", "/a").into());
        let other_link = node(Node::symlink("path", "/b").into());
        assert_eq!(other_link.target.as_deref(), Some(&b"/b"[..]));
        assert!(!Arc::ptr_eq(&link, &other_link));
    }

    /// What READDIRPLUS does: list with `list_plus_then`, and from the
    /// listing's callback stat every entry and hand them to read-ahead;
    /// returns each entry's name and whether its stat succeeded, in the
    /// order the answers came.
    fn readdirplus(service: &Arc<EvalService>, dir: &[&str]) -> Vec<(String, bool)> {
        let (tx, rx) = mpsc::channel();
        let dir_path = path(dir);
        let for_callback = service.clone();
        let parent = dir_path.clone();
        service.list_plus_then(&dir_path, move |listing| {
            let listing = listing.unwrap();
            let mut children = Vec::new();
            for entry in listing.entries() {
                let tx = tx.clone();
                let name = entry.name.to_string();
                let child = for_callback.shared_path(parent.child(entry.name.clone()));
                for_callback.stat_then(&child, move |r| {
                    let _ = tx.send((name, r.is_ok()));
                });
                children.push(child);
            }
            for_callback.read_ahead(children);
        });
        rx.iter().collect()
    }

    #[test]
    fn a_plus_listing_answers_the_entries_stats_in_the_same_evaluation() {
        let tree = FakeValue::Set(vec![
            attr("a", string("one")),
            attr("b", FakeValue::Int(2)),
            attr("c", FakeValue::Set(vec![])),
        ]);
        let config = ServiceConfig {
            workers: 2,
            ..quick()
        };
        let (service, stats) = start(tree, config);
        let service = Arc::new(service);
        let answers = readdirplus(&service, &[]);
        assert_eq!(
            answers,
            [("a".into(), true), ("b".into(), true), ("c".into(), true)]
        );
        // One listing and three stats, each evaluated once although two
        // evaluation threads were free to take the stats from the queue.
        assert_eq!(calls(&stats), 4);
        // Everything is cached now, the entries' stats included.
        assert_eq!(service.stat(&path(&["b"])).unwrap().nix_type, "int");
        assert_eq!(readdirplus(&service, &[]).len(), 3);
        assert_eq!(calls(&stats), 4);
    }

    #[test]
    fn a_hanging_entry_of_a_plus_listing_fails_alone() {
        // The listing is answered before any entry is evaluated, the entries
        // before the hanging one as they come, and every answer by its
        // deadline; the entry after the hanging one (which waited behind it,
        // as in a batch of stats) is evaluated when asked again.
        let tree = FakeValue::Set(vec![
            attr("a", string("one")),
            attr("hang", FakeValue::Hang),
            attr("z", string("last")),
        ]);
        let (service, _) = start(tree, quick());
        let service = Arc::new(service);
        let started = Instant::now();
        let mut answers = readdirplus(&service, &[]);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(answers[0], ("a".into(), true));
        answers.sort();
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[1], ("hang".into(), false));
        assert_eq!(service.stat(&path(&["z"])).unwrap().size, 4);
    }

    /// Waits until the backend has not been called for a while (the
    /// read-ahead has settled); returns the number of calls.
    fn settled(stats: &FakeStats) -> usize {
        let mut last = calls(stats);
        loop {
            thread::sleep(Duration::from_millis(100));
            let now = calls(stats);
            if now == last {
                return now;
            }
            last = now;
        }
    }

    fn nested() -> FakeValue {
        FakeValue::Set(vec![attr(
            "d",
            FakeValue::Set(vec![
                attr("f", string("file")),
                attr("x", FakeValue::Set(vec![attr("p", FakeValue::Int(1))])),
                attr("y", FakeValue::Set(vec![attr("q", FakeValue::Int(2))])),
            ]),
        )])
    }

    #[test]
    fn subdirectories_below_the_root_are_read_ahead() {
        let (service, stats) = start(nested(), quick());
        let service = Arc::new(service);
        readdirplus(&service, &[]);
        // The root's children are not read ahead.
        let after_root = settled(&stats);
        assert_eq!(after_root, 2, "the root's listing and its one stat");
        readdirplus(&service, &["d"]);
        // d's listing and three stats, then x and y (not the file f) are
        // listed ahead with their entries' stats.
        assert_eq!(settled(&stats), after_root + 4 + 4);
        assert_eq!(service.pending(), 0, "read-ahead is nobody's request");
        let before = calls(&stats);
        assert_eq!(readdirplus(&service, &["d", "x"]), [("p".into(), true)]);
        assert_eq!(readdirplus(&service, &["d", "y"]), [("q".into(), true)]);
        assert_eq!(calls(&stats), before, "both were ready");
    }

    /// `{ d = { n = { n = ... { leaf = 1; } } } }` with `depth` sets named
    /// `n` below `d`.
    fn chain(depth: usize) -> FakeValue {
        let mut value = FakeValue::Set(vec![attr("leaf", FakeValue::Int(1))]);
        for _ in 0..depth {
            value = FakeValue::Set(vec![attr("n", value)]);
        }
        FakeValue::Set(vec![attr("d", value)])
    }

    #[test]
    fn a_read_ahead_listing_reads_its_subdirectories_ahead_too() {
        let (service, stats) = start(chain(3), quick());
        let service = Arc::new(service);
        let before = settled(&stats);
        readdirplus(&service, &["d"]);
        // d's listing and stat of n; then d/n, d/n/n and d/n/n/n are
        // listed ahead, one below the other, each with its one stat.
        assert_eq!(settled(&stats), before + 2 + 3 * 2);
        let walked = calls(&stats);
        let mut dir = vec!["d"];
        for _ in 0..3 {
            dir.push("n");
            assert_eq!(readdirplus(&service, &dir).len(), 1);
        }
        assert_eq!(calls(&stats), walked, "the walk found every level ready");
    }

    #[test]
    fn read_ahead_does_not_go_on_into_a_derivation() {
        let derivation = fake::FakeDerivation {
            attrs: vec![attr(
                "meta",
                FakeValue::Set(vec![attr("a", FakeValue::Int(1))]),
            )],
            drv_text: String::new(),
            context: Vec::new(),
            drv_path: "/nix/store/x.drv".into(),
            out_path: "/nix/store/x".into(),
        };
        let tree = FakeValue::Set(vec![attr(
            "d",
            FakeValue::Set(vec![attr(
                "x",
                FakeValue::Set(vec![attr(
                    "pkg",
                    FakeValue::Derivation(Box::new(derivation)),
                )]),
            )]),
        )]);
        let (service, stats) = start(tree, quick());
        let service = Arc::new(service);
        let before = settled(&stats);
        readdirplus(&service, &["d"]);
        // d with its stat of x, then d/x (listed by d's reply) with its
        // stat of pkg; pkg itself waits until something lists d/x.
        assert_eq!(settled(&stats), before + 2 + 2);
        readdirplus(&service, &["d", "x"]);
        assert!(
            settled(&stats) > before + 2 + 2 + 2,
            "pkg is read ahead now"
        );
    }

    #[test]
    fn read_ahead_stops_going_deeper_when_the_walk_stops_asking() {
        let depth = READ_AHEAD_DEPTH_BUDGET + 20;
        let (service, stats) = start(chain(depth), quick());
        let service = Arc::new(service);
        let before = settled(&stats);
        readdirplus(&service, &["d"]);
        // The listing of d/n that d's reply queues, then as many levels
        // below it as the budget allows; each listing comes with one stat.
        let ahead = 1 + READ_AHEAD_DEPTH_BUDGET;
        assert_eq!(settled(&stats), before + 2 + 2 * ahead);
        // The walk asks again (the deepest listing read ahead is ready):
        // read-ahead goes on below it.
        let mut dir = vec!["d"];
        dir.extend(std::iter::repeat_n("n", ahead));
        let asked = calls(&stats);
        assert_eq!(readdirplus(&service, &dir).len(), 1);
        assert_eq!(settled(&stats), asked + 2 * (depth - ahead));
    }

    #[test]
    fn stats_are_read_ahead_in_one_batch_and_answer_later_requests() {
        let tree = FakeValue::Set(
            (0..100)
                .map(|i| attr(&format!("e{i:03}"), FakeValue::Int(i)))
                .collect(),
        );
        let (service, stats) = start(tree, quick());
        let start_calls = settled(&stats);
        let paths: Vec<AttrPath> = (10..74).map(|i| path(&[&format!("e{i:03}")])).collect();
        service.read_ahead_stats(paths.clone());
        // All 64 evaluated, though nobody asked yet.
        assert_eq!(settled(&stats), start_calls + 64);
        assert_eq!(service.pending(), 0);
        for p in &paths {
            assert_eq!(service.stat(p).unwrap().nix_type, "int");
        }
        assert_eq!(calls(&stats), start_calls + 64, "all were ready");
        // Entries not read ahead are evaluated when asked.
        service.stat(&path(&["e000"])).unwrap();
        assert_eq!(calls(&stats), start_calls + 65);
    }

    #[test]
    fn a_request_waits_at_most_read_ahead_patience_behind_a_read_ahead() {
        let tree = hang_below_d_x();
        // A long timeout: only the patience can explain a quick answer.
        let config = ServiceConfig {
            eval_timeout: Duration::from_secs(20),
            ..quick()
        };
        let (service, _) = start(tree, config);
        let service = Arc::new(service);
        readdirplus(&service, &["d"]);
        thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        assert_eq!(service.stat(&path(&["e"])).unwrap().size, 5);
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[test]
    fn read_ahead_can_be_turned_off() {
        let config = ServiceConfig {
            read_ahead: false,
            ..quick()
        };
        let (service, stats) = start(nested(), config);
        let service = Arc::new(service);
        readdirplus(&service, &["d"]);
        let listed = settled(&stats);
        assert_eq!(listed, 4);
        readdirplus(&service, &["d", "x"]);
        assert_eq!(calls(&stats), listed + 2);
    }

    /// `{ d.x.h = <hangs>; e = "quick"; }`: listing `d` reads `d.x` ahead,
    /// which hangs.
    fn hang_below_d_x() -> FakeValue {
        FakeValue::Set(vec![
            attr(
                "d",
                FakeValue::Set(vec![attr(
                    "x",
                    FakeValue::Set(vec![attr("h", FakeValue::Hang)]),
                )]),
            ),
            attr("e", string("quick")),
        ])
    }

    #[test]
    fn a_hanging_read_ahead_is_interrupted_and_requests_go_on() {
        let tree = hang_below_d_x();
        let (service, _) = start(tree, quick());
        let service = Arc::new(service);
        readdirplus(&service, &["d"]);
        // d/x is being read ahead, and its entry h hangs: a request waits
        // at most until the read-ahead has run as long as a request may.
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        assert_eq!(service.stat(&path(&["e"])).unwrap().size, 5);
        assert!(started.elapsed() < Duration::from_secs(3));
        // Asking for the hanging directory itself gets its own attempt.
        let answers = readdirplus(&service, &["d", "x"]);
        assert_eq!(answers, [("h".into(), false)]);
    }

    #[test]
    fn with_two_workers_a_quick_request_does_not_wait_behind_a_slow_one() {
        let tree = FakeValue::Set(vec![
            attr(
                "slow",
                FakeValue::Slow(Duration::from_secs(2), Box::new(string("done"))),
            ),
            attr("quick", string("quick")),
        ]);
        let config = ServiceConfig {
            workers: 2,
            eval_timeout: Duration::from_secs(30),
            ..quick()
        };
        let (service, stats) = start(tree, config);
        assert_eq!(stats.backends.load(Ordering::SeqCst), 2);
        let (tx, rx) = mpsc::channel();
        service.stat_then(&path(&["slow"]), move |r| {
            tx.send(r.map(|n| n.size)).unwrap()
        });
        thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        assert_eq!(service.stat(&path(&["quick"])).unwrap().size, 5);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(rx.recv().unwrap(), Ok(4));
    }

    #[test]
    fn a_hanging_value_is_interrupted_on_its_own_worker() {
        let config = ServiceConfig {
            workers: 2,
            ..quick()
        };
        let (service, _) = start(fake::sample_tree(), config);
        assert!(matches!(
            service.stat(&path(&["hang"])),
            Err(NodeError::TimedOut(_))
        ));
        assert_eq!(service.stat(&path(&["answer"])).unwrap().size, 2);
        // The interrupted worker serves again too.
        for name in ["hello", "ratio", "yes", "nothing"] {
            service.stat(&path(&[name])).unwrap();
        }
    }

    #[test]
    fn batched_stats_are_answered_one_by_one() {
        // Queued together (as READDIRPLUS queues a directory's entries),
        // the stats are evaluated as one batch; the one before the hanging
        // value is answered at once, not when the batch ends.
        let config = ServiceConfig {
            eval_timeout: Duration::from_secs(2),
            ..quick()
        };
        let (service, _) = start(fake::sample_tree(), config);
        let (tx, rx) = mpsc::channel();
        let started = Instant::now();
        for name in ["answer", "hang", "hello"] {
            let tx = tx.clone();
            service.stat_then(&path(&[name]), move |r| {
                let _ = tx.send((name, r.is_ok(), started.elapsed()));
            });
        }
        let (name, ok, took) = rx.recv().unwrap();
        assert_eq!((name, ok), ("answer", true));
        assert!(took < Duration::from_millis(500), "{took:?}");
    }

    #[test]
    fn a_panicking_backend_is_replaced() {
        let tree = FakeValue::Set(vec![
            attr("boom", FakeValue::Panic),
            attr("ok", string("ok")),
        ]);
        // Printing the panic (with a backtrace under RUST_BACKTRACE) can
        // take a while on a loaded machine: not a timeout test.
        let config = ServiceConfig {
            eval_timeout: Duration::from_secs(30),
            ..quick()
        };
        let (service, stats) = start(tree, config);
        assert!(matches!(
            service.stat(&path(&["boom"])),
            Err(NodeError::EvalFailed(_))
        ));
        assert_eq!(service.stat(&path(&["ok"])).unwrap().size, 2);
        assert_eq!(stats.backends.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failing_factory_is_reported() {
        let factory: BackendFactory = Box::new(|_| Err("syntax error at 1:1".to_owned()));
        match EvalService::start(factory, quick()) {
            Err(ServiceError::Backend(message)) => assert_eq!(message, "syntax error at 1:1"),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("the service started without a backend"),
        }
    }

    #[test]
    fn the_byte_cache_is_bounded() {
        let config = ServiceConfig {
            cache_size: NonZeroUsize::MIN,
            ..quick()
        };
        let (service, stats) = start(fake::sample_tree(), config);
        service.read(&path(&["hello"])).unwrap();
        service.read(&path(&["answer"])).unwrap();
        service.read(&path(&["hello"])).unwrap();
        assert_eq!(calls(&stats), 3);
        service.read(&path(&["hello"])).unwrap();
        assert_eq!(calls(&stats), 3);
    }

    #[test]
    fn cached_answers_are_delivered_on_the_calling_thread() {
        let (service, _) = start(fake::sample_tree(), quick());
        service.stat(&path(&["hello"])).unwrap();
        let here = thread::current().id();
        let delivered = Arc::new(AtomicUsize::new(0));
        let flag = delivered.clone();
        service.stat_then(&path(&["hello"]), move |r| {
            assert!(r.is_ok());
            assert_eq!(thread::current().id(), here);
            flag.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(delivered.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn dropping_the_service_answers_everyone() {
        let config = ServiceConfig {
            eval_timeout: Duration::from_secs(30),
            ..quick()
        };
        let (service, _) = start(fake::sample_tree(), config);
        let (tx, rx) = mpsc::channel();
        service.stat_then(&path(&["hang"]), move |r| tx.send(r).unwrap());
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        drop(service);
        let answer = rx.recv_timeout(Duration::from_secs(1)).unwrap();
        assert!(matches!(answer, Err(NodeError::Unavailable(_))));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

#[cfg(test)]
mod input_tests {
    use super::*;
    use crate::inputs::InputKind;

    /// A backend whose every stat reads the files named by the path and by
    /// its parent, with the fingerprints the test chose for them.
    struct Reading {
        fingerprints: Arc<Mutex<FxHashMap<String, String>>>,
        recorded: Vec<Input>,
    }

    impl Reading {
        fn read(&mut self, name: &str) {
            let fingerprint = self
                .fingerprints
                .lock()
                .get(name)
                .cloned()
                .unwrap_or_default();
            self.recorded.push(Input {
                kind: InputKind::File,
                name: name.to_owned(),
                fingerprint,
            });
        }
    }

    impl Backend for Reading {
        fn stat(&mut self, path: &AttrPath) -> Result<crate::Stat, NodeError> {
            if let Some(parent) = path.parent().filter(|p| !p.is_root()) {
                self.read(&parent.to_string());
            }
            self.read(&path.to_string());
            Ok(Node::file("string", 0).into())
        }
        fn list(&mut self, _: &AttrPath) -> Result<Vec<DirEntry>, NodeError> {
            Ok(Vec::new())
        }
        fn read(&mut self, _: &AttrPath) -> Result<Vec<u8>, NodeError> {
            Ok(Vec::new())
        }
        fn xattrs(&mut self, _: &AttrPath) -> Result<XattrList, NodeError> {
            Ok(Vec::new())
        }
        fn take_inputs(&mut self) -> Vec<Input> {
            std::mem::take(&mut self.recorded)
        }
    }

    fn name(path: &AttrPath) -> String {
        path.to_string()
    }

    #[test]
    fn inputs_of_the_root_and_of_each_answer_are_gathered_and_announced() {
        let fingerprints: Arc<Mutex<FxHashMap<String, String>>> = Arc::default();
        let shared = fingerprints.clone();
        let factory: BackendFactory = Box::new(move |_| {
            let mut backend = Reading {
                fingerprints: shared.clone(),
                recorded: Vec::new(),
            };
            backend.read("root.nix");
            Ok(Box::new(backend) as Box<dyn Backend>)
        });
        let config = ServiceConfig {
            workers: 2,
            ..ServiceConfig::default()
        };
        let service = EvalService::start(factory, config).unwrap();
        let announced = service.subscribe_inputs();
        // Both workers evaluated the root: one input.
        let first = announced.recv().unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].name, "root.nix");

        let a = AttrPath::root().child(Segment::name("a"));
        fingerprints.lock().insert(name(&a), "1".into());
        service.stat(&a).unwrap();
        let new = announced.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(new.len(), 1);
        assert_eq!(
            (new[0].name.as_str(), new[0].fingerprint.as_str()),
            (name(&a).as_str(), "1")
        );
        assert_eq!(service.inputs().inputs().len(), 2);
        assert!(service.inputs().inconsistent().is_none());

        // The same file seen differently by a later evaluation: announced
        // again as first seen, and the set knows it is inconsistent.
        fingerprints.lock().insert(name(&a), "2".into());
        let b = a.child(Segment::name("b"));
        fingerprints.lock().insert(name(&b), "x".into());
        service.stat(&b).unwrap();
        let new = announced.recv_timeout(Duration::from_secs(5)).unwrap();
        let seen: Vec<(&str, &str)> = new
            .iter()
            .map(|i| (i.name.as_str(), i.fingerprint.as_str()))
            .collect();
        assert_eq!(seen, [(name(&b).as_str(), "x"), (name(&a).as_str(), "1")]);
        let inconsistent = service.inputs().inconsistent().cloned();
        assert_eq!(inconsistent.map(|i| i.fingerprint), Some("2".to_owned()));
    }
}
