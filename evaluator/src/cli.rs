//! `attrfs eval`: evaluate and print like `nix-instantiate --eval`.
//!
//! Lives in the evaluator crate so the binary's adapter stays a few lines
//! and the conformance tests run exactly this code in-process.

use crate::eval::{AutoArg, Evaluator, Source};
use crate::value::Value;
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
    /// `--xml`: print as XML (the `builtins.toXML` format).
    pub xml: bool,
    /// `--raw`: print a string's bytes unquoted.
    pub raw: bool,
    /// `--parse`: only parse and compile.
    pub parse: bool,
    /// `--arg`/`--argstr` values, in order.
    pub args: Vec<(String, AutoArg)>,
    /// `-I` entries (searched before `NIX_PATH`).
    pub include: Vec<String>,
    /// `--lint-*` levels.
    pub lints: crate::vm::Lints,
    /// `--extra-experimental-features`.
    pub experimental_features: Vec<String>,
    /// `--flake REF[#ATTRPATH]`: evaluate a flake output instead.
    pub flake: Option<String>,
    /// `--impure`: lift pure evaluation for `--flake`.
    pub impure: bool,
}

/// Stack for the evaluation thread: deep structures are forced by nested
/// (boxed) futures, whose polling uses the Rust stack.
pub const EVAL_STACK_SIZE: usize = 1 << 30;

/// Runs the command on an evaluation thread, printing to stdout/stderr;
/// returns the process exit status.
pub fn run(cmd: EvalCommand) -> i32 {
    let handle = std::thread::Builder::new()
        .name("attrfs-eval".into())
        .stack_size(EVAL_STACK_SIZE)
        .spawn(move || match evaluate(&cmd, EvalOptions::default()) {
            Ok(bytes) => {
                let mut out = std::io::stdout().lock();
                if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
                    return 1;
                }
                0
            }
            Err(msg) => {
                eprintln!("{msg}");
                1
            }
        });
    match handle.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("error: the evaluation thread failed");
            1
        }
    }
}

/// Evaluates as the command says and returns what it prints on stdout, or
/// the rendered error. Call it on a thread with [`EVAL_STACK_SIZE`].
pub fn evaluate(cmd: &EvalCommand, mut options: EvalOptions) -> Result<Vec<u8>, String> {
    let mut search: Vec<SearchPathEntry> = cmd
        .include
        .iter()
        .map(|s| SearchPathEntry::parse(s))
        .collect();
    search.append(&mut options.search_path);
    options.search_path = search;
    options.lints = cmd.lints;
    options
        .experimental_features
        .extend(cmd.experimental_features.iter().cloned());
    if cmd.flake.is_some() {
        crate::flake::configure(&mut options, cmd.impure);
    }
    let ev = Evaluator::new(options);
    let source = match (&cmd.flake, &cmd.expr, &cmd.file) {
        (Some(f), _, _) => Source::Flake(f.clone()),
        (None, Some(e), _) => Source::Expr(e.clone()),
        (None, None, Some(f)) => Source::File(f.clone()),
        (None, None, None) => Source::File("default.nix".into()),
    };
    if cmd.parse {
        return ev
            .check(&source)
            .map(|()| Vec::new())
            .map_err(|e| ev.render_error(&e));
    }
    let (strict, json, xml) = (cmd.strict, cmd.json, cmd.xml);
    let state = ev.state.clone();
    let result = ev.root(&source, &cmd.args, &cmd.attr).and_then(|v| {
        ev.run(move |co| {
            Box::pin(async move {
                let v = if strict || json || xml {
                    deep_force(&co, v).await?
                } else {
                    force(&co, v).await
                };
                if json {
                    let s = crate::builtins::value_to_json(&co, &state, v).await?;
                    return Ok(Value::String(s));
                }
                if xml {
                    let to_xml = state
                        .globals()
                        .get("__toXML")
                        .cloned()
                        .ok_or_else(|| crate::ErrorKind::other("--xml is not supported"))?;
                    return Ok(crate::vm::call(&co, to_xml, v).await);
                }
                Ok(v)
            })
        })
    });
    let v = result.map_err(|e| ev.render_error(&e))?;
    let mut out = Vec::new();
    match &v {
        Value::String(s) if json || xml => {
            out.extend_from_slice(s.as_bytes());
            if json {
                out.push(b'\n');
            }
        }
        Value::String(s) if cmd.raw => out.extend_from_slice(s.as_bytes()),
        other if cmd.raw => {
            return Err(format!(
                "error: value is {} while a string was expected",
                crate::printer::type_with_article(other)
            ))
        }
        other => {
            out.extend_from_slice(&crate::printer::print_value_bytes(other));
            out.push(b'\n');
        }
    }
    Ok(out)
}
