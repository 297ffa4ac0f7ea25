//! The mount's persistent answer cache ([`attrfs_cache`]): which database
//! serves a mount, whether its answers still hold, and what each
//! generation of a live mount gets.
//!
//! A mount of the same root specification (source, arguments, `-A`, `-I`,
//! `NIX_PATH`, working directory, and the attrfs executable itself) finds
//! the answers an earlier mount stored, and uses them only if every input
//! they were evaluated from is observed unchanged; otherwise it clears
//! them and starts storing afresh. A new generation of a live mount
//! exists because an input changed, so it always starts afresh.

use std::path::PathBuf;

use attrfs_cache::DiskCache;
use attrfs_vfs::EvalService;
use tracing::{info, warn};

use crate::MountArgs;

/// The cache of a mount, once opened.
pub struct MountCache {
    cache: DiskCache,
}

impl MountCache {
    /// Opens the cache of what `args` mount; `None` if caching is off
    /// (`--no-cache`, the test tree) or the cache cannot be opened (logged:
    /// the mount works without it).
    pub fn open(args: &MountArgs) -> Option<MountCache> {
        if args.no_cache {
            return None;
        }
        let spec = match crate::source::root_spec(args) {
            Ok(Some(spec)) => spec,
            _ => return None,
        };
        let dir = attrfs_fetch::Cache::from_env().root().to_owned();
        match DiskCache::open(&dir, &identity(&spec.encode()), args.cache_max) {
            Ok(cache) => Some(MountCache { cache }),
            Err(e) => {
                warn!("not using the persistent cache: {e}");
                None
            }
        }
    }

    /// Before the first generation starts: clears the stored answers
    /// unless every input they were evaluated from is unchanged. Returns
    /// the stored inputs when the answers hold.
    pub fn validate(&self) -> Option<Vec<attrfs_vfs::inputs::Input>> {
        let started = std::time::Instant::now();
        let stored = self.cache.stored_inputs();
        let answers = self.cache.stored_answers();
        if answers == 0 {
            self.cache.clear();
            return None;
        }
        let changed = stored
            .iter()
            .map(attrfs_worker::inputs::from_wire)
            .find(|input| !input.is_unchanged());
        match changed {
            None => {
                info!(
                    "answering from the persistent cache {} ({answers} answers; {} inputs unchanged, checked in {:?})",
                    self.cache.path().display(),
                    stored.len(),
                    started.elapsed()
                );
                Some(stored)
            }
            Some(input) => {
                info!(
                    "{} {} changed since the cache was written; evaluating afresh",
                    input.kind.name(),
                    input.name
                );
                self.cache.clear();
                None
            }
        }
    }

    /// Attaches the current session to a generation's service, with the
    /// inputs its stored answers were evaluated from (so that the live
    /// view watches them).
    pub fn attach(&self, service: &EvalService, stored: Option<Vec<attrfs_vfs::inputs::Input>>) {
        if let Some(inputs) = stored {
            service.add_inputs(inputs);
        }
        service.attach_store(self.cache.session());
    }

    /// A new generation: the inputs changed, so nothing stored holds.
    pub fn renew(&self) {
        self.cache.clear();
    }

    /// Commits what is committable (at unmount).
    pub fn flush(&self) {
        self.cache.flush();
    }
}

/// The bytes that name a root specification's cache: what the worker is
/// asked to evaluate, plus what else decides its answers.
fn identity(spec: &[u8]) -> Vec<u8> {
    let mut id = b"attrfs answers 1\0".to_vec();
    // A rebuilt attrfs may render differently: the build's identity (the
    // one the compiled-file cache keys on) is part of the name.
    id.extend_from_slice(attrfs_eval::compiler::cache::build_identity());
    id.push(0);
    id.extend_from_slice(spec);
    id.push(0);
    // A relative FILE, `-I` entry or `NIX_PATH` entry resolves from here.
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    id.extend_from_slice(cwd.as_os_str().as_encoded_bytes());
    id.push(0);
    if let Some(nix_path) = std::env::var_os("NIX_PATH") {
        id.extend_from_slice(nix_path.as_encoded_bytes());
    }
    id
}
