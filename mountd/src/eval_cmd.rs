//! `attrfs eval`: evaluate an expression and print it, like
//! `nix-instantiate --eval`. Owned by the evaluator; a stub until it lands.

use crate::EvalArgs;

/// Runs `attrfs eval` and returns the process exit code.
pub fn run(args: &EvalArgs) -> i32 {
    let _ = args;
    eprintln!("attrfs eval: not implemented yet");
    2
}
