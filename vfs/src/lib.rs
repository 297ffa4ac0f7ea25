//! attrfs-vfs: evaluated Nix values as a tree of filesystem nodes, with no
//! FUSE in it.
//!
//! The crate is organised around a plain-data boundary. On one side is a
//! [`Backend`] (the evaluator, or the in-memory [`fake`] one), asked
//! questions about [`AttrPath`]s on a single evaluation thread. On the other
//! side are FUSE threads, which talk to the [`EvalService`]: it queues their
//! questions with deadlines, interrupts evaluations nobody waits for any
//! more, and caches rendered answers ([`Node`]s, [`Listing`]s, bytes) so
//! that repeated lookups never reach the evaluation thread. No evaluator
//! value crosses the boundary, which is what lets the evaluator move to a
//! worker process later without changing the protocol.
//!
//! ## Mapping
//!
//! | Nix value | node |
//! | --- | --- |
//! | attribute set | directory, one entry per attribute |
//! | derivation | directory of its attributes plus `.drv` and `.context` |
//! | list | directory with entries `0`, `1`, ... |
//! | string | regular file, the string's bytes exactly |
//! | int, float, bool, null | regular file, the value as Nix prints it |
//! | path | symlink to the absolute path |
//! | function | regular file describing it |
//! | a value whose evaluation fails | listed; `lstat` succeeds (regular file, mode 000, size 0); `open`/`read` fail with EIO; error text in `user.nix.error` |
//!
//! Attribute names become file names by the reversible encoding in
//! [`names`]; inode numbers are stable per path ([`inodes`]).

#![warn(missing_docs)]

pub mod backend;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod inodes;
pub mod inputs;
pub mod names;
pub mod node;
pub mod persist;
pub mod process;
pub mod protocol;
pub mod service;

pub use backend::{Backend, BackendFactory, Interrupt, NodeError, Stat};
pub use inodes::{InodeTable, ROOT_INODE};
pub use node::{xattr, AttrPath, DirEntry, Node, NodeKind, Segment, XattrList};
pub use persist::AnswerStore;
pub use service::{
    CacheView, EvalService, Listing, ServiceConfig, ServiceError, SharedStat, LIST_PLUS_STATS,
};
