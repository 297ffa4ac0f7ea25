//! `attrfs eval`: evaluate an expression and print it, like
//! `nix-instantiate --eval`. The logic lives in `attrfs_eval::cli`; this
//! maps the command line onto it.

use crate::EvalArgs;
use attrfs_eval::cli::{run as run_eval, EvalCommand};

/// Runs `attrfs eval` and returns the process exit code: 0, 1 for an
/// evaluation error, 2 for a setting that cannot be applied.
pub fn run(args: &EvalArgs) -> i32 {
    let invocation = match args.invocation() {
        Ok(invocation) => invocation,
        Err(e) => {
            // A usage mistake: exit status 2, as `attrfs mount` does.
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut cmd = EvalCommand {
        invocation,
        strict: args.strict,
        json: args.json,
        raw: args.raw,
        xml: args.xml,
        parse: args.parse,
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
