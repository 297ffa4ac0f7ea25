//! attrfs-worker: the evaluator side of a mount.
//!
//! The mount daemon (FUSE adapter, caches, inode table) runs no evaluator.
//! It starts `attrfs` in its hidden worker mode as a child process and asks
//! it questions over a pipe with the plain-data protocol of
//! [`attrfs_vfs::protocol`]; [`attrfs_vfs::process`] is the daemon's end.
//! This crate is the other end: what to evaluate ([`spec`]), how evaluated
//! values become nodes ([`backend`]), and the request loop ([`serve`]).

#![warn(missing_docs)]

pub mod backend;
pub mod inputs;
pub mod interrupt;
pub mod serve;
pub mod spec;

pub use backend::EvalBackend;
pub use serve::{serve, serve_stdio};
pub use spec::RootSpec;
