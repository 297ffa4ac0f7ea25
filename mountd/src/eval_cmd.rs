//! `attrfs eval`: evaluate an expression and print it, like
//! `nix-instantiate --eval`. The logic lives in `attrfs_eval::cli`; this
//! maps the command line onto it.

use crate::watch::{settle, Burst, InputWatcher};
use crate::EvalArgs;
use attrfs_eval::cli::{evaluate_recording, run as run_eval, EvalCommand};
use attrfs_eval::EvalOptions;
use std::io::Write;
use std::sync::mpsc;

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
    if args.watch {
        return watch(cmd);
    }
    run_eval(cmd)
}

/// `attrfs eval --watch`: prints the value, then again whenever an input
/// of the evaluation really changes (see `watch.rs`), until interrupted.
/// An evaluation error is printed like a value and watched the same way:
/// fixing the source prints the value again.
fn watch(cmd: EvalCommand) -> i32 {
    let thread = std::thread::Builder::new()
        .name("attrfs-eval".into())
        .stack_size(attrfs_eval::cli::EVAL_STACK_SIZE)
        .spawn(move || watch_loop(&cmd));
    match thread.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("error: the evaluation thread failed");
            1
        }
    }
}

fn watch_loop(cmd: &EvalCommand) -> i32 {
    let (tx, events) = mpsc::channel();
    let mut watcher = InputWatcher::new(move |paths| {
        let _ = tx.send(paths);
    });
    loop {
        let (printed, inputs) = evaluate_recording(cmd, EvalOptions::default());
        match printed {
            Ok(bytes) => {
                let mut out = std::io::stdout().lock();
                if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                    // Nobody reads the output any more.
                    return 1;
                }
            }
            Err(message) => eprintln!("{message}"),
        }
        watcher.clear();
        if let Some(changed) = watcher.add(inputs) {
            eprintln!(
                "attrfs eval: {} {} changed while it was evaluated; evaluating again",
                changed.kind.name(),
                changed.name
            );
            continue;
        }
        loop {
            let Ok(first) = events.recv() else {
                return 1;
            };
            let mut burst = Burst::default();
            burst.add(first);
            if settle(&events, |paths| burst.add(paths)).is_err() {
                return 1;
            }
            if let Some(changed) = watcher.changed(burst.paths()) {
                eprintln!(
                    "attrfs eval: {} {} changed; evaluating again",
                    changed.kind.name(),
                    changed.name
                );
                break;
            }
        }
    }
}
