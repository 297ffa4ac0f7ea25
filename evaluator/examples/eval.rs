//! Development driver for the evaluator: `cargo run --example eval -- [--strict] [--json] -E EXPR | FILE`.

use attrfs_eval::cli::{run, EvalCommand};
use attrfs_eval::InvocationArgs;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut cmd = EvalCommand::default();
    let mut source = InvocationArgs::default();
    let mut args = std::env::args().skip(1);
    let pair = |args: &mut dyn Iterator<Item = String>| {
        (
            args.next().unwrap_or_default(),
            args.next().unwrap_or_default(),
        )
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--strict" => cmd.strict = true,
            "--json" => cmd.json = true,
            "--raw" => cmd.raw = true,
            "--xml" => cmd.xml = true,
            "--parse" => cmd.parse = true,
            "--eval" => {}
            "-E" => source.exprs.extend(args.next()),
            "-A" => source.attr.extend(args.next()),
            "-I" => source.include.extend(args.next()),
            "--arg" => source.args.push(pair(&mut args)),
            "--argstr" => source.argstrs.push(pair(&mut args)),
            f => source.file = Some(f.into()),
        }
    }
    cmd.invocation = match source.check() {
        Ok(invocation) => invocation,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    std::process::exit(run(cmd));
}
