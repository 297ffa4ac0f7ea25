//! What gets mounted: turns the `attrfs mount` arguments into a backend
//! factory. The evaluator runs in worker processes (`attrfs __worker`,
//! [`attrfs_worker`]), started and replaced by [`attrfs_vfs::process`].
//!
//! This is the one place that knows which evaluator backs a mount. To wire
//! in the real evaluator, build its factory here from `args` (file or
//! `-E` expression, `-A`, `--arg`/`--argstr`, `-I`, `--deep-derivations`);
//! everything downstream (the evaluation service, the FUSE adapter, the
//! root check before mounting) only sees the [`BackendFactory`].

use attrfs_eval::{AutoArg, Source};
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
        if args.file().is_some() || args.expr.is_some() {
            return Err("--fake-tree takes only a mountpoint".to_owned());
        }
        return Ok(None);
    }
    let source = match (&args.expr, args.file()) {
        _ if args.flake.is_some() && (args.expr.is_some() || args.file().is_some()) => {
            return Err("--flake takes only a mountpoint (no FILE or -E)".to_owned())
        }
        _ if args.flake.is_some() => Source::Flake(args.flake.clone().unwrap_or_default()),
        (Some(_), Some(_)) => return Err("give either a FILE or -E EXPR, not both".to_owned()),
        (Some(e), None) => Source::Expr(e.clone()),
        (None, Some(f)) => Source::File(f.clone()),
        (None, None) => Source::File("default.nix".into()),
    };
    let mut auto: Vec<(String, AutoArg)> = args
        .args()
        .into_iter()
        .map(|(n, e)| (n, AutoArg::Expr(e)))
        .collect();
    auto.extend(
        args.argstrs()
            .into_iter()
            .map(|(n, s)| (n, AutoArg::Str(s))),
    );
    let spec = RootSpec {
        source,
        args: auto,
        attr: args.attr.clone(),
        include: args.include.clone(),
        deep_derivations: args.deep_derivations,
        value_cache: args.cache_size,
        impure: args.impure,
    };
    Ok(Some(spec))
}
