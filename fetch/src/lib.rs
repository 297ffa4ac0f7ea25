//! attrfs-fetch: getting source trees from elsewhere, for the evaluator's
//! fetchers and flakes. Knows nothing of Nix values; the evaluator decides
//! what to fetch and which store path the result gets.
//!
//! - [`cache`]: where fetched things live. A store path's contents are read
//!   from `/nix/store` when present there, else from attrfs's own cache
//!   (`$XDG_CACHE_HOME/attrfs`, else `~/.cache/attrfs`). Nothing is ever
//!   written to `/nix/store`.
//! - [`http`]: downloads (`http`, `https`, `file` URLs) with connect and read
//!   timeouts and the evaluation's interrupt flag checked between chunks.
//! - [`unpack`]: tarballs (plain, gzip, xz) unpacked with the single top-level
//!   directory stripped, as `fetchTarball` does.
//! - [`git`]: repositories through the `git` command (local work trees,
//!   local and remote repositories), every call cancellable.
//!
//! ## Choices
//!
//! - HTTP: `ureq` 2 with rustls. It is blocking (the evaluator is a
//!   single-threaded VM; an async runtime would be dead weight), has
//!   per-request connect and read timeouts, and rustls needs no system
//!   OpenSSL headers on CI. Its cost is `ring` (one C/asm build step) and
//!   `url`; together under a minute of a clean 2-core build.
//! - git: the `git` command rather than `gix`. `git` is on every machine
//!   that has git repositories to fetch (and on CI), it handles every
//!   transport, credential helper, submodule and shallow-clone case exactly
//!   as the user's own git does, and it costs no build time; `gix` would add
//!   hundreds of crates to a 90-minute CI budget. The price is a process per
//!   call, negligible next to fetching.
//! - Tarballs: `tar` + `flate2` (pure Rust `miniz_oxide`) + `lzma-rs`
//!   (pure Rust xz, for nixpkgs channel tarballs). `.tar.bz2`, `.tar.zst`
//!   and `.zip` are refused with a clear error.

#![warn(missing_docs)]

pub mod cache;
pub mod git;
pub mod http;
pub mod unpack;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

pub use cache::Cache;

/// Why a fetch failed. Messages say what was fetched and why it failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server answered with an error status.
    #[error("unable to download '{url}': HTTP error {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The download failed below HTTP (DNS, connection refused, timeout,
    /// TLS, a missing `file://` path).
    #[error("unable to download '{url}': {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The content's hash is not the expected one.
    #[error("hash mismatch in file downloaded from '{url}':\n  specified: {expected}\n  got:       {actual}")]
    HashMismatch {
        /// What was fetched.
        url: String,
        /// The hash the caller expected.
        expected: String,
        /// The hash of what arrived.
        actual: String,
    },
    /// A tarball could not be unpacked.
    #[error("unable to unpack '{url}': {reason}")]
    Unpack {
        /// The tarball's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A `git` command failed.
    #[error("git {what} of '{url}' failed: {stderr}")]
    Git {
        /// The repository.
        url: String,
        /// Which operation (`fetch`, `rev-parse`, ...).
        what: String,
        /// git's own message.
        stderr: String,
    },
    /// Local file system trouble (in the cache, mostly).
    #[error("{what} '{}': {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The evaluation was interrupted (deadline or cancellation).
    #[error("fetching was interrupted")]
    Interrupted,
    /// Something attrfs does not fetch.
    #[error("{0}")]
    Unsupported(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, FetchError>;

/// Fails with [`FetchError::Interrupted`] once the flag is set.
pub(crate) fn check(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(FetchError::Interrupted)
    } else {
        Ok(())
    }
}

/// An [`FetchError::Io`] maker for `map_err`.
pub(crate) fn io_err(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> FetchError {
    let path = path.into();
    move |source| FetchError::Io { what, path, source }
}
