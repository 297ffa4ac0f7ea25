//! Development driver for the evaluator: `cargo run --example eval -- [--strict] [--json] -E EXPR | FILE`.

use attrfs_eval::cli::{run, EvalCommand};
use attrfs_eval::AutoArg;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut cmd = EvalCommand::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--strict" => cmd.strict = true,
            "--json" => cmd.json = true,
            "--raw" => cmd.raw = true,
            "--xml" => cmd.xml = true,
            "--parse" => cmd.parse = true,
            "--eval" => {}
            "-E" => cmd.expr = args.next(),
            "-A" => cmd.attr.extend(args.next()),
            "-I" => cmd.include.extend(args.next()),
            "--arg" => {
                let (n, v) = (
                    args.next().unwrap_or_default(),
                    args.next().unwrap_or_default(),
                );
                cmd.args.push((n, AutoArg::Expr(v)));
            }
            "--argstr" => {
                let (n, v) = (
                    args.next().unwrap_or_default(),
                    args.next().unwrap_or_default(),
                );
                cmd.args.push((n, AutoArg::Str(v)));
            }
            f => cmd.file = Some(f.into()),
        }
    }
    std::process::exit(run(cmd));
}
