//! The live view: a mount follows edits of its sources.
//!
//! A mount serves one **generation** at a time: an [`EvalService`] (its
//! worker processes and its cached answers) for the sources as they were.
//! The evaluator records every input it reads (`attrfs_eval::record`); the
//! service gathers them; the live thread watches them
//! ([`crate::watch::InputWatcher`]). When an input really changed (its
//! fingerprint, not just an event), after a quiet moment so that a burst
//! of saves counts once, the live thread starts a new service, which
//! evaluates the root with fresh workers:
//!
//! * if the root evaluates, the new service becomes the current
//!   generation: every later request is answered by it, nothing cached
//!   from the old one is used, and the kernel is told to forget what it
//!   cached (entries, attributes, pages: FUSE notifications), so `cat`
//!   shows the new value. Inode numbers are per path and the table
//!   outlives generations, so paths that still exist keep their numbers;
//! * if it does not (a syntax error, a root that throws), the old
//!   generation goes on serving, and the reason is logged and shown as
//!   `user.nix.error` of the mount's root until a later edit evaluates.
//!
//! The old service is dropped once its requests in flight are answered
//! (or after the evaluation timeout), and the kernel is told to forget
//! once more, in case one of those late answers was cached meanwhile.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use attrfs_fuse::Notifier;
use attrfs_vfs::inputs::Input;
use attrfs_vfs::{names, EvalService, InodeTable, ROOT_INODE};
use parking_lot::RwLock;
use tracing::{debug, info, warn};

use crate::watch::{settle, Burst, InputWatcher};

/// The generation a mount serves, and why it may not be the latest.
pub struct Generations {
    current: RwLock<Arc<EvalService>>,
    number: AtomicU64,
    /// Set while the sources have changed but do not evaluate: the error.
    stale: RwLock<Option<String>>,
}

impl Generations {
    /// The first generation.
    pub fn new(service: EvalService) -> Arc<Self> {
        Arc::new(Generations {
            current: RwLock::new(Arc::new(service)),
            number: AtomicU64::new(1),
            stale: RwLock::new(None),
        })
    }

    /// The service of the current generation.
    pub fn current(&self) -> Arc<EvalService> {
        self.current.read().clone()
    }

    /// Why the mount shows an older generation than the sources: the error
    /// of evaluating their latest state (`user.nix.error` of the root).
    pub fn stale_error(&self) -> Option<String> {
        self.stale.read().clone()
    }
}

/// What the live thread hears.
enum Message {
    /// Inputs recorded by generation `.0`.
    Inputs(u64, Vec<Input>),
    /// Paths of filesystem events.
    Paths(Vec<PathBuf>),
}

/// Builds the service of a new generation, or says why the sources do
/// not evaluate.
pub type Start = Box<dyn Fn() -> Result<EvalService, Failure> + Send>;

/// Why a new generation could not start.
pub struct Failure {
    /// The error (a syntax error, a root that throws).
    pub message: String,
    /// What the failing evaluation read: watched too, since fixing the
    /// error may mean editing a file the old generation never read (a
    /// newly imported one).
    pub inputs: Vec<Input>,
}

/// Starts the live thread for a mount.
pub fn spawn(
    generations: Arc<Generations>,
    inodes: Arc<InodeTable>,
    notifier: Notifier,
    start: Start,
    eval_timeout: Duration,
) -> std::io::Result<()> {
    thread::Builder::new()
        .name("attrfs-live".to_owned())
        .spawn(move || {
            let live = Live {
                generations,
                inodes,
                notifier,
                start,
                eval_timeout,
            };
            live.run();
        })
        .map(drop)
}

struct Live {
    generations: Arc<Generations>,
    inodes: Arc<InodeTable>,
    notifier: Notifier,
    start: Start,
    eval_timeout: Duration,
}

/// Forwards a generation's inputs to the live thread until the service
/// goes away.
fn forward_inputs(service: &EvalService, generation: u64, to: mpsc::Sender<Message>) {
    let inputs = service.subscribe_inputs();
    let spawned = thread::Builder::new()
        .name(format!("attrfs-inputs-{generation}"))
        .spawn(move || {
            for batch in inputs {
                if to.send(Message::Inputs(generation, batch)).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        warn!("cannot follow the inputs of generation {generation}: {e}");
    }
}

fn describe(input: &attrfs_eval::Input) -> String {
    format!("{} {} changed", input.kind.name(), input.name)
}

impl Live {
    fn run(self) {
        let (tx, messages) = mpsc::channel();
        let events = tx.clone();
        let mut watcher = InputWatcher::new(move |paths| {
            let _ = events.send(Message::Paths(paths));
        });
        let mut generation = self.generations.number.load(Ordering::SeqCst);
        forward_inputs(&self.generations.current(), generation, tx.clone());
        loop {
            let Ok(first) = messages.recv() else {
                return;
            };
            let mut changed: Option<String> = None;
            let mut burst: Option<Burst> = None;
            // Takes a message; true when it shows a change (an event, or a
            // recorded input that differs from what is on disk now).
            let mut take = |message: Message| match message {
                Message::Inputs(g, inputs) if g == generation => {
                    let recorded: Vec<_> = inputs
                        .iter()
                        .map(attrfs_worker::inputs::from_wire)
                        .collect();
                    let edited = watcher.add(recorded);
                    let (inputs, dirs) = watcher.extent();
                    debug!(
                        "generation {generation}: watching {inputs} inputs in {dirs} directories"
                    );
                    match edited {
                        Some(input) => {
                            changed.get_or_insert_with(|| describe(&input));
                            true
                        }
                        None => false,
                    }
                }
                Message::Inputs(..) => false,
                Message::Paths(paths) => {
                    burst.get_or_insert_with(Burst::default).add(paths);
                    true
                }
            };
            // A change is debounced however it was noticed: by an event, or
            // by a generation's inputs edited before they were watched (the
            // first save of a burst that began while that generation was
            // evaluated; its other saves are events still to come). Inputs
            // that changed nothing are looked at as they come.
            if take(first)
                && settle(&messages, |message| {
                    take(message);
                })
                .is_err()
            {
                return;
            }
            if let (Some(burst), None) = (&burst, &changed) {
                changed = watcher.changed(burst.paths()).map(|i| describe(&i));
            }
            let Some(reason) = changed else {
                continue;
            };
            match self.next_generation(generation + 1, &reason, &tx) {
                Ok(()) => {
                    generation += 1;
                    watcher.clear();
                }
                Err(failed) => {
                    // Only a further change is worth another attempt.
                    watcher.acknowledge();
                    let recorded = failed.iter().map(attrfs_worker::inputs::from_wire);
                    if let Some(input) = watcher.add(recorded.collect()) {
                        info!("{} since the attempt", describe(&input));
                        // Look at everything again at once.
                        let _ = tx.send(Message::Paths(Vec::new()));
                    }
                }
            }
        }
    }

    /// Evaluates the sources anew. `Err` with what the failed evaluation
    /// read if the old generation goes on serving.
    fn next_generation(
        &self,
        number: u64,
        reason: &str,
        tx: &mpsc::Sender<Message>,
    ) -> Result<(), Vec<Input>> {
        info!("{reason}: evaluating generation {number}");
        let started = Instant::now();
        let service = match (self.start)() {
            Ok(service) => service,
            Err(Failure { message, inputs }) => {
                warn!(
                    "the sources changed ({reason}) but do not evaluate; still serving generation {}: {message}",
                    number - 1
                );
                *self.generations.stale.write() = Some(message);
                return Err(inputs);
            }
        };
        forward_inputs(&service, number, tx.clone());
        let old = {
            let mut current = self.generations.current.write();
            std::mem::replace(&mut *current, Arc::new(service))
        };
        self.generations.number.store(number, Ordering::SeqCst);
        *self.generations.stale.write() = None;
        let forgotten = forget_all(&self.notifier, &self.inodes);
        info!(
            "generation {number} serves from now on (evaluated in {:?}; the kernel forgot {forgotten} inodes)",
            started.elapsed()
        );
        self.retire(old);
        Ok(())
    }

    /// Drops the old generation once nothing waits on it, then makes the
    /// kernel forget again whatever a late answer of it left behind.
    fn retire(&self, old: Arc<EvalService>) {
        let notifier = self.notifier.clone();
        let inodes = self.inodes.clone();
        let deadline = Instant::now() + self.eval_timeout;
        let spawned = thread::Builder::new()
            .name("attrfs-retire".to_owned())
            .spawn(move || {
                while old.pending() > 0 && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(20));
                }
                drop(old);
                forget_all(&notifier, &inodes);
            });
        if let Err(e) = spawned {
            warn!("cannot retire the old generation in the background: {e}");
        }
    }
}

/// Tells the kernel to forget every entry, attribute and page it may have
/// cached for the inodes handed out so far. Returns how many inodes.
fn forget_all(notifier: &Notifier, inodes: &InodeTable) -> usize {
    // A snapshot, so that no lock is held while the kernel handles the
    // notifications (it may need a FUSE thread that needs the table).
    let entries = inodes.snapshot();
    for (ino, parent, path) in &entries {
        if *ino != ROOT_INODE {
            if let Some(segment) = path.last() {
                let name = names::encode(segment);
                // ENOENT: the kernel had not cached that entry.
                let _ = notifier.inval_entry(*parent, &name);
            }
        }
        let _ = notifier.inval_inode(*ino, 0, 0);
    }
    entries.len()
}
