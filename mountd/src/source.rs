//! What gets mounted: turns the `attrfs mount` arguments into a backend
//! factory.
//!
//! This is the one place that knows which evaluator backs a mount. To wire
//! in the real evaluator, build its factory here from `args` (file or
//! `-E` expression, `-A`, `--arg`/`--argstr`, `-I`, `--deep-derivations`);
//! everything downstream (the evaluation service, the FUSE adapter, the
//! root check before mounting) only sees the [`BackendFactory`].

use attrfs_eval::{AutoArg, Source};
use attrfs_vfs::eval_backend::{self, RootSpec};
use attrfs_vfs::{fake, BackendFactory};

use crate::MountArgs;

/// The backend factory for a mount, or a message saying why the arguments
/// cannot be mounted (reported as `attrfs mount: MESSAGE`, exit code 2).
///
/// Errors of the expression itself (parse errors, a root that throws) are
/// not found here but when the factory runs, on the evaluation thread, and
/// are reported with exit code 1 before anything is mounted.
pub fn make_backend(args: &MountArgs) -> Result<BackendFactory, String> {
    if args.fake_tree {
        if args.file().is_some() || args.expr.is_some() {
            return Err("--fake-tree takes only a mountpoint".to_owned());
        }
        return Ok(fake::factory(fake::sample_tree()));
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
    Ok(eval_backend::factory(RootSpec {
        source,
        args: auto,
        attr: args.attr.clone(),
        include: args.include.clone(),
        deep_derivations: args.deep_derivations,
        value_cache: args.cache_size,
        impure: args.impure,
    }))
}
