//! `attrfs eval`: evaluate an expression and print it, like
//! `nix-instantiate --eval`. The logic lives in `attrfs_eval::cli`; this
//! maps the command line onto it.

use crate::EvalArgs;
use attrfs_eval::cli::{run as run_eval, EvalCommand};
use attrfs_eval::AutoArg;

/// Runs `attrfs eval` and returns the process exit code: 0, 1 for an
/// evaluation error, 2 for a setting that cannot be applied.
pub fn run(args: &EvalArgs) -> i32 {
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
    let mut cmd = EvalCommand {
        file: args.file.clone(),
        expr: args.expr.clone(),
        attr: args.attr.clone(),
        strict: args.strict,
        json: args.json,
        raw: args.raw,
        xml: args.xml,
        parse: args.parse,
        args: auto,
        include: args.include.clone(),
        flake: args.flake.clone(),
        impure: args.impure,
        no_compile_cache: args.no_compile_cache,
        ..Default::default()
    };
    for (name, value) in args.settings() {
        if let Err(e) = cmd.apply_setting(&name, &value) {
            // A usage mistake, like an unknown flag: exit status 2.
            eprintln!("error: {e}");
            return 2;
        }
    }
    run_eval(cmd)
}
