//! `attrfs eval`: evaluate and print like `nix-instantiate --eval`.
//!
//! Lives in the evaluator crate so the binary's adapter stays a few lines
//! and tests can call it without spawning a process.

use crate::eval::{AutoArg, Evaluator, Source};
use crate::vm::{deep_force, force, EvalOptions, SearchPathEntry};
use std::io::Write;

/// The options of `attrfs eval`.
#[derive(Clone, Debug, Default)]
pub struct EvalCommand {
    /// A file to evaluate (default: `./default.nix`), unless `expr` is set.
    pub file: Option<std::path::PathBuf>,
    /// `-E`: an expression to evaluate.
    pub expr: Option<String>,
    /// `-A`: attribute paths to select.
    pub attr: Vec<String>,
    /// `--strict`: force the result completely.
    pub strict: bool,
    /// `--json`: print as JSON.
    pub json: bool,
    /// `--raw`: print a string's bytes unquoted.
    pub raw: bool,
    /// `--parse`: only parse and compile.
    pub parse: bool,
    /// `--arg`/`--argstr` values, in order.
    pub args: Vec<(String, AutoArg)>,
    /// `-I` entries (searched before `NIX_PATH`).
    pub include: Vec<String>,
}

/// Stack for the evaluation thread: deep structures are forced by nested
/// (boxed) futures, whose polling uses the Rust stack.
pub const EVAL_STACK_SIZE: usize = 1 << 30;

/// Runs the command; returns the process exit status.
pub fn run(cmd: EvalCommand) -> i32 {
    let handle = std::thread::Builder::new()
        .name("attrfs-eval".into())
        .stack_size(EVAL_STACK_SIZE)
        .spawn(move || run_here(&cmd));
    match handle.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("error: the evaluation thread failed");
            1
        }
    }
}

fn run_here(cmd: &EvalCommand) -> i32 {
    let mut options = EvalOptions::default();
    let mut search: Vec<SearchPathEntry> = cmd
        .include
        .iter()
        .map(|s| SearchPathEntry::parse(s))
        .collect();
    search.append(&mut options.search_path);
    options.search_path = search;
    let ev = Evaluator::new(options);
    let source = match (&cmd.expr, &cmd.file) {
        (Some(e), _) => Source::Expr(e.clone()),
        (None, Some(f)) => Source::File(f.clone()),
        (None, None) => Source::File("default.nix".into()),
    };
    if cmd.parse {
        return match ev.check(&source) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{}", ev.render_error(&e));
                1
            }
        };
    }
    let result = ev.root(&source, &cmd.args, &cmd.attr).and_then(|v| {
        let strict = cmd.strict;
        let json = cmd.json;
        let state = ev.state.clone();
        ev.run(move |co| {
            Box::pin(async move {
                let v = if strict || json {
                    deep_force(&co, v).await?
                } else {
                    force(&co, v).await
                };
                if json {
                    let s = crate::builtins::value_to_json(&co, &state, v).await?;
                    return Ok(crate::value::Value::string(s));
                }
                Ok(v)
            })
        })
    });
    let mut out = std::io::stdout().lock();
    match result {
        Ok(v) => {
            let r = if cmd.json {
                match &v {
                    crate::Value::String(s) => writeln!(out, "{}", s),
                    _ => Ok(()),
                }
            } else if cmd.raw {
                match &v {
                    crate::Value::String(s) => out.write_all(s.as_bytes()),
                    other => {
                        eprintln!(
                            "error: value is {} while a string was expected",
                            crate::printer::type_with_article(other)
                        );
                        return 1;
                    }
                }
            } else {
                writeln!(out, "{}", crate::printer::print_value(&v))
            };
            if r.is_err() {
                return 1;
            }
            0
        }
        Err(e) => {
            eprintln!("{}", ev.render_error(&e));
            1
        }
    }
}
