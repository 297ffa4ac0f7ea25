//! The trait an evaluator implements to be mounted.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::node::{AttrPath, DirEntry, Node, XattrList};

/// The interrupt flag shared between the evaluation service and a backend.
///
/// The service sets it when nobody is waiting any more for the evaluation in
/// progress (every caller passed its deadline). The backend's evaluator
/// polls it every few thousand instructions and abandons the current
/// evaluation with [`NodeError::Interrupted`]. The service clears it before
/// it hands the backend its next request, so a backend never has to.
pub type Interrupt = Arc<AtomicBool>;

/// Why a request about a node could not be answered with a node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// There is no attribute (or list element) of that name.
    #[error("no such attribute")]
    NotFound,
    /// An ancestor of the path is not an attribute set or list, or `list`
    /// was asked of a node that is not a directory.
    #[error("not an attribute set or list")]
    NotADirectory,
    /// `read` was asked of a node that is not a regular file.
    #[error("not a file")]
    NotAFile,
    /// Evaluation failed before the node itself could be reached (an
    /// ancestor failed, or the attribute names of the directory could not be
    /// computed). An attribute that exists but whose *own* value fails is not
    /// this error: `stat` renders it as a [`Node::failed`] node instead.
    #[error("{0}")]
    EvalFailed(String),
    /// The evaluation was abandoned because the interrupt flag was set.
    #[error("evaluation interrupted")]
    Interrupted,
    /// The caller's deadline passed before the evaluation finished.
    #[error("evaluation did not finish within {0:?}")]
    TimedOut(Duration),
    /// The evaluation service cannot answer at all (shutting down, or its
    /// evaluator could not be restarted).
    #[error("evaluator unavailable: {0}")]
    Unavailable(String),
}

impl NodeError {
    /// Whether the error is a property of the value, so that asking again
    /// would give the same answer. Nix evaluation is pure, so these errors
    /// are cached for the life of the mount; timeouts, interrupts and an
    /// unavailable evaluator are not, and the next request tries again.
    pub fn is_permanent(&self) -> bool {
        match self {
            NodeError::NotFound
            | NodeError::NotADirectory
            | NodeError::NotAFile
            | NodeError::EvalFailed(_) => true,
            NodeError::Interrupted | NodeError::TimedOut(_) | NodeError::Unavailable(_) => false,
        }
    }
}

/// What [`Backend::stat`] renders: the node, and for a regular file the
/// bytes that had to be rendered anyway to know its size.
///
/// Handing the bytes over with the node is what keeps a file from being
/// rendered twice (once for `st_size`, once for `read`): the service puts
/// them in its byte cache, so the `read` that usually follows a `stat` is
/// answered without asking the backend again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The rendered node.
    pub node: Node,
    /// The file's contents, when the backend rendered them to measure them.
    /// Their length must equal `node.size`.
    pub contents: Option<Vec<u8>>,
}

impl From<Node> for Stat {
    fn from(node: Node) -> Self {
        Stat {
            node,
            contents: None,
        }
    }
}

impl Stat {
    /// A regular file together with its contents (their length is its size).
    pub fn file(nix_type: &'static str, contents: Vec<u8>) -> Self {
        Stat {
            node: Node::file(nix_type, contents.len() as u64),
            contents: Some(contents),
        }
    }
}

/// An evaluator seen through attribute paths.
///
/// A backend lives on the single evaluation thread of the
/// [`EvalService`](crate::EvalService) and is called for one request at a
/// time; it need not be `Send` (the evaluator's values are `Rc`-based). It
/// is built on that thread by a [`BackendFactory`].
///
/// Every method receives the full path from the root. Implementations are
/// expected to keep their own memo of forced values (bounded, e.g. by an
/// LRU) so that walking down a path does not re-evaluate it from the root;
/// the service caches the rendered answers, so the same question is
/// normally asked only once.
///
/// A long evaluation must poll the [`Interrupt`] it was built with and
/// return [`NodeError::Interrupted`] once it is set.
pub trait Backend {
    /// Forces the value at `path` to weak head normal form and renders it.
    ///
    /// It evaluates exactly what the node's kind and size need: a value's
    /// weak head normal form, and a file's bytes (returned in
    /// [`Stat::contents`] so they are rendered once). Nothing that only an
    /// extended attribute needs (a derivation's `drvPath`, a position) is
    /// computed here: that is [`Backend::xattrs`]' job.
    ///
    /// Returns `Err(NotFound)` if the last segment does not name an entry of
    /// its parent, `Err(NotADirectory)` if an ancestor is not a directory,
    /// and `Ok` with [`Node::failed`] if the entry exists but its value
    /// throws.
    fn stat(&mut self, path: &AttrPath) -> Result<Stat, NodeError>;

    /// [`Backend::stat`] of several paths: what a directory walk asks at
    /// once. Each answer goes to `answer` with the path's index, in order,
    /// as soon as it is known. The default asks `stat` for each; a backend
    /// that pays a fixed cost per question (a worker process) can send them
    /// together. If the interrupt flag is set midway, the remaining paths
    /// are answered [`NodeError::Interrupted`].
    fn stat_many(
        &mut self,
        paths: &[AttrPath],
        answer: &mut dyn FnMut(usize, Result<Stat, NodeError>),
    ) {
        for (i, path) in paths.iter().enumerate() {
            answer(i, self.stat(path));
        }
    }

    /// The entries of the directory at `path`, in display order. Lists the
    /// names only: it must not force the children's values. Derivations list
    /// the synthetic [`Segment::Drv`](crate::Segment::Drv) and
    /// [`Segment::Context`](crate::Segment::Context) entries too.
    fn list(&mut self, path: &AttrPath) -> Result<Vec<DirEntry>, NodeError>;

    /// [`Backend::list`], then [`Backend::stat`] of the first `count`
    /// entries: what a directory walk asks next (READDIRPLUS wants every
    /// entry's attributes), in one question. `listed` gets the listing (or
    /// the error) as soon as it is known; then, only if it was a listing,
    /// `answer` gets each of the first `count` entries' stats with its
    /// index, in order, as for [`Backend::stat_many`].
    ///
    /// The default lists and then stats; a backend that pays a fixed cost
    /// per question (a worker process) answers it all in one exchange.
    fn list_plus(
        &mut self,
        path: &AttrPath,
        count: usize,
        listed: &mut dyn FnMut(Result<Vec<DirEntry>, NodeError>),
        answer: &mut dyn FnMut(usize, Result<Stat, NodeError>),
    ) {
        match self.list(path) {
            Ok(entries) => {
                let children: Vec<AttrPath> = entries
                    .iter()
                    .take(count)
                    .map(|entry| path.child(entry.name.clone()))
                    .collect();
                listed(Ok(entries));
                self.stat_many(&children, answer);
            }
            Err(e) => listed(Err(e)),
        }
    }

    /// [`Backend::list_plus`] of several directories, one after the other
    /// (read-ahead of a walk's next few directories): `listed` and
    /// `answer` get the directory's index first. If the interrupt flag is
    /// set midway, the directories not listed yet are answered
    /// [`NodeError::Interrupted`]. The default asks `list_plus` for each; a
    /// worker process gets them all in one exchange, so that it goes from
    /// one to the next without waiting for the daemon.
    fn list_plus_many(
        &mut self,
        paths: &[AttrPath],
        count: usize,
        listed: &mut dyn FnMut(usize, Result<Vec<DirEntry>, NodeError>),
        answer: &mut dyn FnMut(usize, usize, Result<Stat, NodeError>),
    ) {
        for (d, path) in paths.iter().enumerate() {
            self.list_plus(path, count, &mut |l| listed(d, l), &mut |i, s| {
                answer(d, i, s)
            });
        }
    }

    /// The whole contents of the file at `path`; its length must equal the
    /// `size` that `stat` reported. The service caches the bytes and serves
    /// reads at any offset from them.
    fn read(&mut self, path: &AttrPath) -> Result<Vec<u8>, NodeError>;

    /// Every extended attribute of the node at `path`, the costly ones
    /// included (`user.nix.drvPath`, `user.nix.outPath`, `user.nix.context`,
    /// `user.nix.position`); asked only when a caller wants an attribute the
    /// [`Stat`] node does not carry, or the list of them.
    ///
    /// Errors as for [`Backend::stat`]. A node whose value fails still has
    /// attributes (`user.nix.error`, its position). An attribute that fails
    /// to compute (a derivation whose `drvPath` throws) is left out rather
    /// than failing the rest; the failure is logged.
    fn xattrs(&mut self, path: &AttrPath) -> Result<XattrList, NodeError>;

    /// The inputs the evaluation recorded since the previous call (files
    /// read, directories listed, ...: see [`crate::inputs`]). The service
    /// asks after every request and gathers them per generation. The
    /// default, for backends that read nothing outside themselves, is none.
    fn take_inputs(&mut self) -> Vec<crate::inputs::Input> {
        Vec::new()
    }
}

/// Builds a backend on the evaluation thread.
///
/// It is `Fn` (not `FnOnce`) because the service builds a fresh backend
/// when the old one cannot go on: after a panic, or when an evaluation
/// ignores its interrupt and its thread has to be abandoned. An `Err`
/// message (for instance the parse error of the root file) is reported to
/// whoever starts the service.
pub type BackendFactory =
    Box<dyn Fn(Interrupt) -> Result<Box<dyn Backend>, String> + Send + Sync + 'static>;
