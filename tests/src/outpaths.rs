//! Selecting `pkgs.NAME.FIELD` for many attributes of one package set, as
//! `nix-env -qa` does: one evaluator, one VM run per attribute, so a failing
//! attribute only fails itself and one running past the deadline is
//! interrupted (a watchdog thread sets the evaluator's interrupt flag).

use attrfs_eval::cli::EVAL_STACK_SIZE;
use attrfs_eval::vm::{force, EvalOptions};
use attrfs_eval::{Evaluator, Source, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Evaluates `root` (an expression giving a set), then for each
/// `(name, field)` the string `root.name.field`, in order. An error is
/// rendered as C++ Nix prints it.
pub fn select_each(
    root: String,
    queries: Vec<(String, &'static str)>,
    per_attribute: Duration,
) -> Vec<Result<String, String>> {
    let interrupt = Arc::new(AtomicBool::new(false));
    // Milliseconds since `epoch` at which the running attribute started;
    // 0 while none runs.
    let started = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let watchdog = {
        let (interrupt, started, done) = (interrupt.clone(), started.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let s = started.load(Ordering::Relaxed);
                let now = epoch.elapsed().as_millis() as u64;
                if s != 0 && now.saturating_sub(s) > per_attribute.as_millis() as u64 {
                    interrupt.store(true, Ordering::Relaxed);
                }
            }
        })
    };
    let worker = std::thread::Builder::new()
        .stack_size(EVAL_STACK_SIZE)
        .spawn(move || {
            let options = EvalOptions {
                search_path: Vec::new(),
                interrupt,
                ..EvalOptions::default()
            };
            let ev = Evaluator::new(options);
            let pkgs = match ev.root(&Source::Expr(root), &[], &[]) {
                Ok(p) => p,
                Err(e) => {
                    let msg = ev.render_error(&e);
                    return queries.iter().map(|_| Err(msg.clone())).collect();
                }
            };
            let select = |name: &str, field: &'static str| -> Result<String, String> {
                let pkgs = pkgs.clone();
                let name = name.to_string();
                started.store(epoch.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    ev.run(move |co| {
                        Box::pin(async move {
                            let Value::Attrs(set) = force(&co, pkgs).await else {
                                return Err(attrfs_eval::ErrorKind::other("the root is not a set"));
                            };
                            let Some(drv) = set.get(name.as_bytes()).cloned() else {
                                return Err(attrfs_eval::ErrorKind::other(format!(
                                    "attribute '{name}' missing"
                                )));
                            };
                            let Value::Attrs(drv) = force(&co, drv).await else {
                                return Err(attrfs_eval::ErrorKind::other("not a set"));
                            };
                            let Some(p) = drv.get(field.as_bytes()).cloned() else {
                                return Err(attrfs_eval::ErrorKind::other(format!(
                                    "attribute '{field}' missing"
                                )));
                            };
                            Ok(force(&co, p).await)
                        })
                    })
                }));
                started.store(0, Ordering::Relaxed);
                match r {
                    Ok(Ok(Value::String(s))) => Ok(s.to_string()),
                    Ok(Ok(other)) => Err(format!("{field} is {}", other.type_of())),
                    Ok(Err(e)) => Err(ev.render_error(&e)),
                    Err(_) => Err("the evaluator panicked".to_string()),
                }
            };
            queries.iter().map(|(n, f)| select(n, f)).collect()
        })
        .expect("spawn the evaluation thread");
    let r = worker.join().expect("the evaluation thread ends");
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    r
}

/// The first line of an error message, without the `error:` decoration.
pub fn short_reason(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .map(|l| l.trim_start_matches("error:").trim())
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .chars()
        .take(200)
        .collect()
}
