//! What gets mounted: turns the `attrfs mount` arguments into a backend
//! factory. The evaluator runs in worker processes (`attrfs __worker`,
//! [`attrfs_worker`]), started and replaced by [`attrfs_vfs::process`].
//!
//! This is the one place that knows which evaluator backs a mount: the
//! worker is handed the [`Invocation`] (the same `attrfs eval` builds) and
//! how to show it; everything downstream (the evaluation service, the FUSE adapter, the
//! root check before mounting) only sees the [`BackendFactory`].

use attrfs_eval::Invocation;
use attrfs_vfs::process::{self, WorkerCommand};
use attrfs_vfs::{fake, BackendFactory};
use attrfs_worker::RootSpec;

use crate::{MountArgs, WORKER_SUBCOMMAND};

/// The backend factory for a mount, or a message saying why the arguments
/// cannot be mounted (reported as `attrfs mount: MESSAGE`, exit code 2).
///
/// Errors of the expression itself (parse errors, a root that throws) are
/// not found here but when the factory runs, on the evaluation thread, and
/// are reported with exit code 1 before anything is mounted.
pub fn make_backend(args: &MountArgs, invocation: Invocation) -> Result<BackendFactory, String> {
    if args.fake_tree {
        if args.file().is_some() || !args.source.expr.is_empty() || args.source.flake.is_some() {
            return Err("--fake-tree takes only a mountpoint".to_owned());
        }
        return Ok(fake::factory(fake::sample_tree()));
    }
    let spec = RootSpec {
        invocation,
        deep_derivations: args.deep_derivations,
        value_cache: args.cache_size,
        compile_cache: !args.no_compile_cache,
    };
    let program = std::env::current_exe()
        .map_err(|e| format!("cannot find the attrfs executable to start evaluators: {e}"))?;
    Ok(process::factory(WorkerCommand {
        program,
        args: vec![WORKER_SUBCOMMAND.into()],
        init: spec.encode(),
        memory_budget: process::default_memory_budget(),
    }))
}
