//! What gets mounted: turns the `attrfs mount` arguments into a backend
//! factory. The evaluator runs in worker processes (`attrfs __worker`,
//! [`attrfs_worker`]), started and replaced by [`attrfs_vfs::process`].
//!
//! This is the one place that knows which evaluator backs a mount: the
//! worker is handed the `attrfs_eval::Invocation` (the same `attrfs eval` builds) and
//! how to show it; everything downstream (the evaluation service, the FUSE adapter, the
//! root check before mounting) only sees the [`BackendFactory`].

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
pub fn make_backend(args: &MountArgs) -> Result<BackendFactory, String> {
    make_backend_reporting(args, None)
}

/// [`make_backend`], putting what a root that fails to evaluate read into
/// `failed` (for the live view).
pub fn make_backend_reporting(
    args: &MountArgs,
    failed: Option<process::FailedInputs>,
) -> Result<BackendFactory, String> {
    let Some(spec) = root_spec(args)? else {
        return Ok(fake::factory(fake::sample_tree()));
    };
    Ok(process::factory_reporting(worker_command(&spec)?, failed))
}

/// [`make_backend`] whose workers start with the first request that needs
/// them (see [`process::lazy_factory`]).
pub fn make_lazy_backend(args: &MountArgs) -> Result<BackendFactory, String> {
    let Some(spec) = root_spec(args)? else {
        return Ok(fake::factory(fake::sample_tree()));
    };
    Ok(process::lazy_factory(worker_command(&spec)?))
}

fn worker_command(spec: &RootSpec) -> Result<WorkerCommand, String> {
    let program = std::env::current_exe()
        .map_err(|e| format!("cannot find the attrfs executable to start evaluators: {e}"))?;
    Ok(WorkerCommand {
        program,
        args: vec![WORKER_SUBCOMMAND.into()],
        init: spec.encode(),
        memory_budget: process::default_memory_budget(),
    })
}

/// What the worker is asked to evaluate: the start-up frame's contents.
/// `None` for the built-in test tree (`--fake-tree`).
pub fn root_spec(args: &MountArgs) -> Result<Option<RootSpec>, String> {
    if args.fake_tree {
        if args.file().is_some() || !args.source.expr.is_empty() || args.source.flake.is_some() {
            return Err("--fake-tree takes only a mountpoint".to_owned());
        }
        return Ok(None);
    }
    let invocation = args.invocation().map_err(|e| e.to_string())?;
    let spec = RootSpec {
        invocation,
        deep_derivations: args.deep_derivations,
        value_cache: args.cache_size,
        compile_cache: !args.no_compile_cache,
    };
    Ok(Some(spec))
}
