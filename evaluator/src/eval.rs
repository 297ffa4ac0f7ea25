//! The evaluator's front door: load a file or expression, apply
//! `--arg`/`--argstr` and `-A` as `nix-instantiate` does, force and print.

use crate::errors::{Error, ErrorKind, EvalResult};
use crate::io::{EvalIO, StdIO};
use crate::value::{NixAttrs, NixString, Value};
use crate::vm::{
    call, deep_force_polling, force, EvalOptions, EvalState, GenCo, GenFuture, SourceUnit, Vm,
};
use std::path::PathBuf;
use std::rc::Rc;

/// What to evaluate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file (or a directory, meaning its `default.nix`).
    File(PathBuf),
    /// An expression given on the command line (`-E`).
    Expr(String),
    /// A flake reference with an optional `#attrpath` (`--flake`), as
    /// `nix eval` takes it. Evaluate it with options set up by
    /// [`crate::flake::configure`].
    Flake(String),
}

/// A `--arg` (a Nix expression) or `--argstr` (a string) value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AutoArg {
    /// `--arg name expr`
    Expr(String),
    /// `--argstr name string`
    Str(String),
}

/// An evaluator: shared state plus convenience entry points. Not `Send`:
/// it lives on one thread.
///
/// This is the evaluator's facade for other crates: what they need of the
/// state (positions, error texts, derivation files, descriptions of
/// functions) comes through methods, so the state itself stays private.
pub struct Evaluator {
    /// The shared state (sources, globals, caches, interrupt flag).
    pub(crate) state: Rc<EvalState>,
}

impl Evaluator {
    /// An evaluator over the real filesystem.
    pub fn new(options: EvalOptions) -> Self {
        Self::with_io(Box::new(StdIO), options)
    }

    /// An evaluator over a given filesystem.
    pub fn with_io(io: Box<dyn EvalIO>, options: EvalOptions) -> Self {
        Evaluator {
            state: EvalState::new(io, options),
        }
    }

    /// Parses and compiles without evaluating (reports syntax errors and
    /// static errors such as undefined variables).
    pub fn check(&self, source: &Source) -> Result<(), Error> {
        self.load(source).map(|_| ())
    }

    /// The unevaluated value of a source.
    pub fn load(&self, source: &Source) -> Result<Value, Error> {
        match source {
            Source::Flake(text) => crate::flake::load_installable(self, text),
            // `attrfs eval '<nixpkgs/nixos>'`: as nix-instantiate, a file
            // named `<...>` is looked up in the search path.
            Source::File(path)
                if path.to_str().is_some_and(|p| {
                    p.len() > 2 && p.starts_with('<') && p.ends_with('>') && !p.contains(' ')
                }) =>
            {
                self.load(&Source::Expr(format!("import {}", path.display())))
            }
            Source::Expr(text) => self.state.loader().load(SourceUnit::expr(
                "«string»",
                text,
                self.state.options.cwd.clone(),
            )),
            Source::File(path) => self
                .state
                .loader()
                .root_file(&self.state.options.cwd.join(path)),
        }
    }

    /// Loads a source, auto-calls it with `args`, and follows `attr_path`
    /// (auto-calling along the way), like `nix-instantiate -A`.
    pub fn root(
        &self,
        source: &Source,
        args: &[(String, AutoArg)],
        attr_path: &[String],
    ) -> Result<Value, Error> {
        let v = self.load(source)?;
        let mut arg_entries = Vec::new();
        for (name, a) in args {
            let value = match a {
                AutoArg::Str(s) => Value::string(s.as_str()),
                AutoArg::Expr(e) => self.load(&Source::Expr(e.clone()))?,
            };
            arg_entries.push((NixString::from(name.as_str()), value));
        }
        let auto = Rc::new(NixAttrs::from_unsorted_first_wins(arg_entries));
        let path: Vec<String> = attr_path
            .iter()
            .flat_map(|p| crate::attrpath::split_attr_path(p))
            .collect();
        self.run(move |co| {
            Box::pin(async move {
                let mut v = auto_call(&co, v, &auto).await?;
                for component in &path {
                    v = match force(&co, v).await {
                        Value::Attrs(a) => match a.get(component.as_bytes()) {
                            Some(x) => x.clone(),
                            None => {
                                return Err(ErrorKind::other(format!(
                                    "attribute '{component}' in selection path '{}' not found",
                                    path.join(".")
                                )))
                            }
                        },
                        Value::List(l) => {
                            let idx: usize = component.parse().map_err(|_| {
                                ErrorKind::other(format!(
                                    "the expression selected by the selection path '{}' should be a set but is a list",
                                    path.join(".")
                                ))
                            })?;
                            l.get(idx).cloned().ok_or_else(|| {
                                ErrorKind::other(format!(
                                    "list index {idx} in selection path '{}' is out of range",
                                    path.join(".")
                                ))
                            })?
                        }
                        other => {
                            return Err(ErrorKind::other(format!(
                                "the expression selected by the selection path '{}' should be a set but is {}",
                                path.join("."),
                                crate::printer::type_with_article(&other)
                            )))
                        }
                    };
                    v = auto_call(&co, v, &auto).await?;
                }
                Ok(v)
            })
        })
    }

    /// Runs async evaluation code on a fresh VM.
    pub fn run<F>(&self, f: F) -> Result<Value, Error>
    where
        F: FnOnce(GenCo) -> GenFuture,
    {
        Vm::run(&self.state, f)
    }

    /// Forces a value to weak head normal form.
    pub fn force(&self, v: Value) -> Result<Value, Error> {
        self.run(move |co| Box::pin(async move { Ok(force(&co, v).await) }))
    }

    /// Forces a value completely.
    pub fn deep_force(&self, v: Value) -> Result<Value, Error> {
        let state = self.state.clone();
        self.run(move |co| {
            Box::pin(async move { deep_force_polling(&co, v, || state.check_interrupt()).await })
        })
    }

    /// The inputs recorded since the previous call (see [`crate::record`]):
    /// what a worker reports along its answers.
    pub fn take_new_inputs(&self) -> Vec<crate::record::Input> {
        self.state.inputs.take_new()
    }

    /// Every input recorded so far, first observation first.
    pub fn all_inputs(&self) -> Vec<crate::record::Input> {
        self.state.inputs.all()
    }

    /// Whether an input recorded so far makes the result unrepeatable
    /// (the clock, a download without a hash): such a result must not be
    /// cached.
    pub fn inputs_are_impure(&self) -> bool {
        self.state.inputs.is_impure()
    }

    /// An error rendered like C++ Nix prints it.
    pub fn render_error(&self, e: &Error) -> String {
        e.render(&self.state.sources)
    }

    /// The error's message with its position, without the trace: one line
    /// or a few, for an extended attribute or a log line.
    pub fn short_error(&self, e: &Error) -> String {
        e.short(&self.state.sources)
    }

    /// `file:line:column` of a source offset (an attribute's position, as
    /// `NixAttrs::position` gives it).
    pub fn position_of_offset(&self, offset: u32) -> Option<String> {
        self.state
            .sources
            .position(crate::source::Span::new(offset, offset))
            .map(|p| p.to_string())
    }

    /// The ATerm text of a derivation this evaluator instantiated, by its
    /// `.drv` store path.
    pub fn derivation_aterm(&self, drv_path: &str) -> Option<String> {
        self.state.derivation_aterm(drv_path)
    }

    /// A description of a function value, as attrfs shows it in a file:
    /// `<LAMBDA>`, its formal arguments and where it is defined, or
    /// `<PRIMOP>` and the builtin's name. `None` for other values.
    pub fn describe_function(&self, v: &Value) -> Option<String> {
        match v {
            Value::Closure(c) => {
                let mut text = String::from("<LAMBDA>");
                if let Some(f) = &c.lambda.formals {
                    let names: Vec<String> = f
                        .entries
                        .iter()
                        .map(|(n, d)| {
                            if *d {
                                format!("{n} ? …")
                            } else {
                                n.to_string()
                            }
                        })
                        .chain(f.ellipsis.then(|| "...".to_string()))
                        .collect();
                    text.push_str(&format!("\narguments: {{ {} }}", names.join(", ")));
                }
                if let Some(p) = self.state.sources.position(c.lambda.span) {
                    text.push_str(&format!("\ndefined at: {p}"));
                }
                text.push('\n');
                Some(text)
            }
            Value::Builtin(b) => Some(format!(
                "<PRIMOP{}> builtins.{}\n",
                if b.args.is_empty() { "" } else { "-APP" },
                b.def.name
            )),
            _ => None,
        }
    }
}

/// Calls a function whose formals are satisfiable from `args` (or defaults),
/// as `nix-instantiate` does with its root value; anything else is returned.
pub async fn auto_call(co: &GenCo, v: Value, args: &Rc<NixAttrs>) -> EvalResult<Value> {
    let v = force(co, v).await;
    match &v {
        Value::Attrs(a) if a.contains(b"__functor") => {
            let f = a.get(b"__functor").cloned().unwrap_or(Value::Null);
            let g = call(co, f, v.clone()).await;
            Box::pin(auto_call(co, g, args)).await
        }
        Value::Closure(c) => {
            let Some(formals) = &c.lambda.formals else {
                return Ok(v);
            };
            let mut entries = Vec::new();
            for (name, has_default) in &formals.entries {
                match args.get(name.as_bytes()) {
                    Some(a) => entries.push((name.clone(), a.clone())),
                    None if *has_default => {}
                    None => {
                        return Err(ErrorKind::other(format!(
                            "cannot evaluate a function that has an argument without a value ('{name}')"
                        )))
                    }
                }
            }
            if formals.ellipsis {
                for (k, a) in args.iter() {
                    if !entries.iter().any(|(n, _)| n == k) {
                        entries.push((k.clone(), a.clone()));
                    }
                }
            }
            let arg = Value::attrs(NixAttrs::from_unsorted_first_wins(entries));
            Ok(call(co, v, arg).await)
        }
        _ => Ok(v),
    }
}

/// Evaluates an expression strictly and prints it like `nix-instantiate
/// --eval --strict`, or returns the rendered error. For tests.
pub fn eval_strict_to_string(expr: &str) -> Result<String, String> {
    let ev = Evaluator::new(EvalOptions::default());
    let r = ev
        .root(&Source::Expr(expr.to_string()), &[], &[])
        .and_then(|v| ev.deep_force(v));
    match r {
        Ok(v) => Ok(crate::printer::print_value(&v)),
        Err(e) => Err(ev.render_error(&e)),
    }
}

/// Assertion helpers for the evaluator's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::eval_strict_to_string as eval;

    /// The printed strict value of an expression that must evaluate.
    pub fn ok(e: &str) -> String {
        eval(e).unwrap_or_else(|err| panic!("{e}: {err}"))
    }

    /// The rendered error of an expression that must fail.
    pub fn err(e: &str) -> String {
        eval(e).expect_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::eval_strict_to_string as eval;

    #[test]
    fn language_basics() {
        assert_eq!(eval("1 + 2").unwrap(), "3");
        assert_eq!(
            eval("rec { a = 1; b = a + 1; c.d = b; }").unwrap(),
            "{ a = 1; b = 2; c = { d = 2; }; }"
        );
        assert_eq!(
            eval("({a, b ? a + 1, ...}@args: [a b]) {a = 5; c = 1;}").unwrap(),
            "[ 5 6 ]"
        );
        assert!(eval("let x = x; in x")
            .unwrap_err()
            .contains("infinite recursion"));
    }

    #[test]
    fn deep_recursion_does_not_overflow() {
        let r = eval("let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 1000000");
        assert_eq!(r.unwrap(), "1000000");
    }
}

/// Loops in Rust over values already forced reach no VM loop that polls
/// the interrupt flag; each such builtin polls it itself. Each case first
/// forces what it works on, then sets the flag and asks for the loop: the
/// VM runs fewer instructions than its own polling interval on the way,
/// so only the builtin's poll can fail it.
#[cfg(test)]
mod interrupt_polls {
    use super::{Evaluator, Source};
    use crate::errors::ErrorKind;
    use crate::EvalOptions;
    use std::sync::atomic::Ordering;

    fn interrupted_in(expr: &str, what: &str) -> bool {
        let ev = Evaluator::new(EvalOptions::default());
        let root = ev.root(&Source::Expr(expr.to_owned()), &[], &[]).unwrap();
        let attrs = ev.force(root).unwrap();
        let attrs = attrs.as_attrs().unwrap();
        ev.deep_force(attrs.get_str("list").unwrap().clone())
            .unwrap();
        ev.state.interrupt.store(true, Ordering::SeqCst);
        let loop_value = attrs.get_str(what).unwrap().clone();
        matches!(ev.force(loop_value), Err(e) if matches!(e.kind, ErrorKind::Interrupted))
    }

    const LIST: &str = "list = builtins.genList (x: 0 - x) 100000;";

    #[test]
    fn sort_with_less_than_polls() {
        let expr = format!("rec {{ {LIST} v = builtins.sort builtins.lessThan list; }}");
        assert!(interrupted_in(&expr, "v"));
    }

    #[test]
    fn deep_seq_polls() {
        let expr = format!("rec {{ {LIST} v = builtins.deepSeq list 1; }}");
        assert!(interrupted_in(&expr, "v"));
    }

    #[test]
    fn to_json_polls() {
        let expr = format!("rec {{ {LIST} v = builtins.toJSON list; }}");
        assert!(interrupted_in(&expr, "v"));
    }

    #[test]
    fn the_flag_unset_they_finish() {
        let ev = Evaluator::new(EvalOptions::default());
        let expr = format!("let {LIST} in builtins.length (builtins.sort builtins.lessThan list) + builtins.deepSeq list 0 + builtins.stringLength (builtins.toJSON list)");
        let v = ev
            .root(&Source::Expr(expr), &[], &[])
            .and_then(|v| ev.force(v));
        assert!(matches!(v, Ok(crate::value::Value::Int(n)) if n > 100000));
    }
}
