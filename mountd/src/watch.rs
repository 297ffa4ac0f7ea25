//! Watching what an evaluation read, for the live view (`attrfs mount`)
//! and `attrfs eval --watch`.
//!
//! An [`InputWatcher`] is given the recorded inputs of an evaluation
//! (`attrfs_eval::record`) and watches, through inotify (the `notify`
//! crate), the directories where they live: a file's parent directory (an
//! editor that saves by writing a temporary file and renaming it over the
//! original replaces the file, so watching the file itself would lose it),
//! a listed directory itself, a local tree (a `path` input, a Git work
//! tree) recursively. A path that does not exist is watched at its nearest
//! existing ancestor, so that its creation is seen.
//!
//! An event is only a hint. [`InputWatcher::changed`] observes again the
//! inputs concerned by the events and reports one whose fingerprint
//! differs: touching a file, an editor's swap file, a save with the same
//! contents, or the evaluator's own reads are no change. [`settle`] is the
//! debounce: after a first event it waits for a quiet moment, so that a
//! burst of saves makes one re-evaluation.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use attrfs_eval::record::{Input, InputKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use rustc_hash::{FxHashMap, FxHashSet};
use tracing::{debug, warn};

/// How long the sources must stay quiet after an event before they are
/// looked at: an editor's save (temporary file, rename, attributes) takes
/// a few milliseconds; a `git checkout` a little longer.
pub const QUIET: Duration = Duration::from_millis(60);

/// The longest a burst of events may delay a look at the sources.
pub const MAX_DELAY: Duration = Duration::from_millis(400);

/// Watches the directories holding a set of inputs.
pub struct InputWatcher {
    /// `None` when inotify cannot be had (logged once): nothing is watched.
    watcher: Option<RecommendedWatcher>,
    /// Every input, first observation first.
    inputs: Vec<Input>,
    known: FxHashSet<(InputKind, String)>,
    /// Watched directory -> the inputs an event in it may have changed.
    by_dir: FxHashMap<PathBuf, Vec<usize>>,
    /// Directories watched, and whether recursively.
    watched: FxHashMap<PathBuf, RecursiveMode>,
    /// Inputs watched at an ancestor because their directory is missing.
    displaced: Vec<usize>,
    /// Local trees (watched recursively), by input index.
    trees: Vec<usize>,
    warned: bool,
}

impl InputWatcher {
    /// A watcher that hands the paths of each filesystem event to
    /// `on_event` (on a thread of its own); an empty list means "anything
    /// may have changed" (the kernel's event queue overflowed).
    pub fn new(on_event: impl Fn(Vec<PathBuf>) + Send + 'static) -> Self {
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            match event {
                // Reads (the evaluator's own, a `cat`) change nothing.
                Ok(e) if matches!(e.kind, EventKind::Access(_)) => {}
                Ok(e) => on_event(e.paths),
                Err(_) => on_event(Vec::new()),
            }
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                warn!("cannot watch the sources ({e}): edits will not be noticed");
                None
            }
        };
        InputWatcher {
            watcher,
            inputs: Vec::new(),
            known: FxHashSet::default(),
            by_dir: FxHashMap::default(),
            watched: FxHashMap::default(),
            displaced: Vec::new(),
            trees: Vec::new(),
            warned: false,
        }
    }

    /// How many inputs are watched, in how many directories.
    pub fn extent(&self) -> (usize, usize) {
        (self.inputs.len(), self.watched.len())
    }

    /// Forgets every input and stops watching (a new evaluation starts
    /// afresh).
    pub fn clear(&mut self) {
        if let Some(w) = &mut self.watcher {
            for dir in self.watched.keys() {
                let _ = w.unwatch(dir);
            }
        }
        self.inputs.clear();
        self.known.clear();
        self.by_dir.clear();
        self.watched.clear();
        self.displaced.clear();
        self.trees.clear();
    }

    /// Takes the sources as they are now for what was seen: after an edit
    /// that does not evaluate, only a further change is worth another
    /// attempt (not every unrelated event in the same directories).
    pub fn acknowledge(&mut self) {
        for input in &mut self.inputs {
            if let Some(now) = input.current() {
                input.fingerprint = now;
            }
        }
    }

    /// Watches more inputs. Returns the first that already differs from
    /// what the evaluation saw: it may have changed between being read and
    /// being watched, and no event will tell of that.
    pub fn add(&mut self, inputs: Vec<Input>) -> Option<Input> {
        let mut changed = None;
        for input in inputs {
            if !input.kind.is_local_path() {
                continue;
            }
            // An input sent again (seen differently by a later worker) is
            // observed again even though it is known.
            let again = !self.known.insert((input.kind, input.name.clone()));
            if changed.is_none() && input.kind != InputKind::Tree && !input.is_unchanged() {
                changed = Some(input.clone());
            }
            if again {
                continue;
            }
            let index = self.inputs.len();
            self.inputs.push(input);
            self.place(index);
        }
        changed
    }

    /// Watches the directory of input `index`.
    fn place(&mut self, index: usize) {
        let input = &self.inputs[index];
        let path = PathBuf::from(&input.name);
        let (dir, mode) = match input.kind {
            InputKind::Tree => (path, RecursiveMode::Recursive),
            InputKind::Dir => (path, RecursiveMode::NonRecursive),
            _ => match path.parent() {
                Some(parent) => (parent.to_path_buf(), RecursiveMode::NonRecursive),
                None => (path, RecursiveMode::NonRecursive),
            },
        };
        if input.kind == InputKind::Tree {
            self.trees.push(index);
        }
        let Some(existing) = nearest_existing(&dir) else {
            return;
        };
        if existing != dir {
            self.displaced.push(index);
        }
        let mode = if existing == dir {
            mode
        } else {
            RecursiveMode::NonRecursive
        };
        self.by_dir.entry(existing.clone()).or_default().push(index);
        self.watch(existing, mode);
    }

    fn watch(&mut self, dir: PathBuf, mode: RecursiveMode) {
        if let Some(old) = self.watched.get(&dir) {
            if *old == mode || *old == RecursiveMode::Recursive {
                return;
            }
        }
        let Some(w) = &mut self.watcher else {
            return;
        };
        match w.watch(&dir, mode) {
            Ok(()) => {
                self.watched.insert(dir, mode);
            }
            Err(e) if !self.warned => {
                self.warned = true;
                warn!(
                    "cannot watch {} ({e}); edits there will not be noticed \
                     (is fs.inotify.max_user_watches too low?)",
                    dir.display()
                );
            }
            Err(e) => debug!("cannot watch {}: {e}", dir.display()),
        }
    }

    /// Of the inputs that events at `paths` may concern (all of them for an
    /// empty list), the first whose observation now differs from what the
    /// evaluation saw.
    pub fn changed(&mut self, paths: &[PathBuf]) -> Option<Input> {
        let mut candidates: Vec<usize> = Vec::new();
        if paths.is_empty() {
            candidates.extend(0..self.inputs.len());
        }
        for p in paths {
            for dir in [Some(p.as_path()), p.parent()].into_iter().flatten() {
                if let Some(list) = self.by_dir.get(dir) {
                    candidates.extend(list);
                }
            }
        }
        // A directory that appeared may hold inputs watched at an ancestor:
        // watch them where they belong now.
        if !self.displaced.is_empty() {
            for index in std::mem::take(&mut self.displaced) {
                self.place(index);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        for &i in &candidates {
            let input = &self.inputs[i];
            if input.kind != InputKind::Tree && !input.is_unchanged() {
                return Some(input.clone());
            }
        }
        // A tree cannot be observed again cheaply: anything below it but
        // Git's own bookkeeping is a change.
        for &i in &self.trees {
            let root = Path::new(&self.inputs[i].name);
            if paths
                .iter()
                .any(|p| p.starts_with(root) && !is_git_internal(root, p))
            {
                return Some(self.inputs[i].clone());
            }
        }
        None
    }
}

fn is_git_internal(root: &Path, path: &Path) -> bool {
    path.strip_prefix(root)
        .is_ok_and(|rest| rest.components().any(|c| c.as_os_str() == ".git"))
}

fn nearest_existing(dir: &Path) -> Option<PathBuf> {
    let mut d = Some(dir);
    while let Some(p) = d {
        if p.is_dir() {
            return Some(p.to_path_buf());
        }
        d = p.parent();
    }
    None
}

/// The debounce: after a first message, takes the messages that follow
/// until none has come for [`QUIET`] (or [`MAX_DELAY`] has passed), so that
/// a burst of saves is looked at once. `Err` when the senders are gone.
pub fn settle<T>(
    messages: &mpsc::Receiver<T>,
    mut take: impl FnMut(T),
) -> Result<(), mpsc::RecvError> {
    let until = Instant::now() + MAX_DELAY;
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        match messages.recv_timeout(QUIET.min(until - now)) {
            Ok(message) => take(message),
            Err(mpsc::RecvTimeoutError::Timeout) => return Ok(()),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(mpsc::RecvError),
        }
    }
}

/// Event paths gathered over a burst: an empty event means "anything".
#[derive(Default, Debug)]
pub struct Burst {
    paths: Vec<PathBuf>,
    everything: bool,
}

impl Burst {
    /// Adds an event's paths.
    pub fn add(&mut self, paths: Vec<PathBuf>) {
        self.everything |= paths.is_empty();
        self.paths.extend(paths);
    }

    /// The paths to look at ([`InputWatcher::changed`]'s argument).
    pub fn paths(&self) -> &[PathBuf] {
        if self.everything {
            &[]
        } else {
            &self.paths
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("attrfs-watch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn file_input(path: &Path) -> Input {
        Input {
            kind: InputKind::File,
            name: path.to_string_lossy().into_owned(),
            fingerprint: attrfs_eval::record::file_fingerprint(&std::fs::read(path)),
        }
    }

    fn watcher() -> (InputWatcher, mpsc::Receiver<Vec<PathBuf>>) {
        let (tx, events) = mpsc::channel();
        let watcher = InputWatcher::new(move |paths| {
            let _ = tx.send(paths);
        });
        (watcher, events)
    }

    /// Waits for the next burst of events and reports what changed.
    fn next_change(
        watcher: &mut InputWatcher,
        events: &mpsc::Receiver<Vec<PathBuf>>,
    ) -> Option<Input> {
        let mut burst = Burst::default();
        burst.add(events.recv_timeout(Duration::from_secs(2)).ok()?);
        settle(events, |paths| burst.add(paths)).ok()?;
        watcher.changed(burst.paths())
    }

    #[test]
    fn an_edit_is_a_change_and_a_save_of_the_same_bytes_is_not() {
        let dir = temp_dir("edit");
        let file = dir.join("a.nix");
        std::fs::write(&file, "1").unwrap();
        let (mut watcher, events) = watcher();
        assert!(watcher.add(vec![file_input(&file)]).is_none());

        // An editor's save: a temporary file renamed over the original,
        // with the same contents.
        std::fs::write(dir.join(".a.nix.swp"), "1").unwrap();
        std::fs::rename(dir.join(".a.nix.swp"), &file).unwrap();
        assert_eq!(next_change(&mut watcher, &events), None);

        std::fs::write(dir.join(".a.nix.tmp"), "2").unwrap();
        std::fs::rename(dir.join(".a.nix.tmp"), &file).unwrap();
        let changed = next_change(&mut watcher, &events).expect("a change");
        assert_eq!(changed.name, file.to_string_lossy());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_change_before_the_watch_is_reported_when_added() {
        let dir = temp_dir("race");
        let file = dir.join("a.nix");
        std::fs::write(&file, "1").unwrap();
        let input = file_input(&file);
        std::fs::write(&file, "2").unwrap();
        let (mut watcher, _events) = watcher();
        assert_eq!(watcher.add(vec![input.clone()]), Some(input));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_file_is_watched_until_it_appears() {
        let dir = temp_dir("missing");
        let probe = Input {
            kind: InputKind::Exists,
            name: dir.join("sub/x.nix").to_string_lossy().into_owned(),
            fingerprint: "false".into(),
        };
        let (mut watcher, events) = watcher();
        assert!(watcher.add(vec![probe]).is_none());
        std::fs::create_dir(dir.join("sub")).unwrap();
        assert_eq!(next_change(&mut watcher, &events), None);
        std::fs::write(dir.join("sub/x.nix"), "").unwrap();
        let changed = next_change(&mut watcher, &events).expect("a change");
        assert!(changed.name.ends_with("sub/x.nix"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
