//! What to evaluate, as the command line says it: the one type behind both
//! `attrfs eval` and `attrfs mount` (and fstab's `-o` options, which
//! become `attrfs mount` flags), so that the two accept and reject the same
//! things and build their root the same way.
//!
//! The arguments are nix-instantiate's: a FILE or `-E EXPR`, `--arg`,
//! `--argstr`, `-A`, `-I`, plus `--flake REF[#ATTRPATH]` and `--impure`
//! from `nix eval`. One difference: nix-instantiate's `-E` is a switch that
//! makes every positional argument an expression, each evaluated and
//! printed in turn (`-E '1 + 2' f.nix` evaluates `1 + 2`, then fails on the
//! undefined variable `f`). attrfs evaluates one root (a mount has one), so
//! `-E` takes its expression as its value, and a FILE with it, or a second
//! `-E`, is an error rather than a second root silently dropped.

use crate::eval::{AutoArg, Evaluator, Source};
use crate::value::Value;
use crate::vm::{EvalOptions, SearchPathEntry};
use crate::Error;
use std::path::PathBuf;

/// The root of an evaluation and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// A file, an expression or a flake output.
    pub source: Source,
    /// `--arg`/`--argstr` values for the root function (the first of a
    /// name wins).
    pub args: Vec<(String, AutoArg)>,
    /// `-A` attribute paths, each applied to the result of the previous.
    pub attr: Vec<String>,
    /// `-I` search path entries, searched before `NIX_PATH`.
    pub include: Vec<String>,
    /// `--impure`: with a flake, lift the pure evaluation flakes get.
    pub impure: bool,
}

impl Default for Invocation {
    /// `./default.nix`, as nix-instantiate without arguments.
    fn default() -> Self {
        Invocation::file("default.nix")
    }
}

/// The source-related arguments as given, before they are checked.
#[derive(Clone, Debug, Default)]
pub struct InvocationArgs {
    /// The positional FILE, if any.
    pub file: Option<PathBuf>,
    /// Every `-E EXPR`, in order.
    pub exprs: Vec<String>,
    /// `--flake REF[#ATTRPATH]`.
    pub flake: Option<String>,
    /// `--arg NAME EXPR` pairs.
    pub args: Vec<(String, String)>,
    /// `--argstr NAME STRING` pairs.
    pub argstrs: Vec<(String, String)>,
    /// `-A` paths.
    pub attr: Vec<String>,
    /// `-I` entries.
    pub include: Vec<String>,
    /// `--impure`.
    pub impure: bool,
}

/// Arguments that do not make one root.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvocationError {
    /// FILE and `-E` together.
    #[error(
        "give either a FILE or -E EXPR, not both (attrfs evaluates one root; \
         nix-instantiate would read FILE as a second expression)"
    )]
    FileAndExpr,
    /// `-E` given twice.
    #[error(
        "-E given more than once: attrfs evaluates one expression \
         (nix-instantiate would evaluate and print each)"
    )]
    SeveralExprs,
    /// `--flake` with a FILE or `-E`.
    #[error("--flake takes neither a FILE nor -E EXPR")]
    FlakeAndSource,
}

impl InvocationArgs {
    /// The invocation these arguments make, or why they make none.
    pub fn check(self) -> Result<Invocation, InvocationError> {
        let source = match (self.flake, self.exprs.as_slice(), self.file) {
            (Some(_), [_, ..], _) | (Some(_), _, Some(_)) => {
                return Err(InvocationError::FlakeAndSource)
            }
            (Some(flake), [], None) => Source::Flake(flake),
            (None, [_, _, ..], _) => return Err(InvocationError::SeveralExprs),
            (None, [_], Some(_)) => return Err(InvocationError::FileAndExpr),
            (None, [expr], None) => Source::Expr(expr.clone()),
            (None, [], Some(file)) => Source::File(file),
            (None, [], None) => Source::File("default.nix".into()),
        };
        let mut args: Vec<(String, AutoArg)> = self
            .args
            .into_iter()
            .map(|(name, expr)| (name, AutoArg::Expr(expr)))
            .collect();
        args.extend(
            self.argstrs
                .into_iter()
                .map(|(name, s)| (name, AutoArg::Str(s))),
        );
        Ok(Invocation {
            source,
            args,
            attr: self.attr,
            include: self.include,
            impure: self.impure,
        })
    }
}

impl Invocation {
    /// A file (a directory means its `default.nix`).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Invocation {
            source: Source::File(path.into()),
            args: Vec::new(),
            attr: Vec::new(),
            include: Vec::new(),
            impure: false,
        }
    }

    /// An expression (`-E`).
    pub fn expr(text: impl Into<String>) -> Self {
        Invocation {
            source: Source::Expr(text.into()),
            ..Invocation::default()
        }
    }

    /// Applies what the invocation says about the evaluation to `options`:
    /// `-I` entries before `NIX_PATH` (which pure evaluation ignores, as
    /// C++ Nix does), and a flake's pure evaluation unless `--impure`. Set
    /// `options.pure_eval` first.
    pub fn configure(&self, options: &mut EvalOptions) {
        let mut search: Vec<SearchPathEntry> = self
            .include
            .iter()
            .map(|s| SearchPathEntry::parse(s))
            .collect();
        if !options.pure_eval {
            search.append(&mut options.search_path);
        }
        options.search_path = search;
        if let Source::Flake(_) = self.source {
            crate::flake::configure(options, self.impure);
        }
    }

    /// The root value: the source loaded, called with the arguments and
    /// followed along `-A`, as nix-instantiate does (unforced).
    pub fn root(&self, ev: &Evaluator) -> Result<Value, Error> {
        ev.root(&self.source, &self.args, &self.attr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(file: Option<&str>, exprs: &[&str], flake: Option<&str>) -> Result<Source, String> {
        InvocationArgs {
            file: file.map(PathBuf::from),
            exprs: exprs.iter().map(|e| e.to_string()).collect(),
            flake: flake.map(str::to_string),
            ..Default::default()
        }
        .check()
        .map(|i| i.source)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn one_root() {
        assert_eq!(
            check(None, &[], None),
            Ok(Source::File("default.nix".into()))
        );
        assert_eq!(
            check(Some("f.nix"), &[], None),
            Ok(Source::File("f.nix".into()))
        );
        assert_eq!(check(None, &["1"], None), Ok(Source::Expr("1".into())));
        assert_eq!(
            check(None, &[], Some(".#x")),
            Ok(Source::Flake(".#x".into()))
        );
        let file_and_expr = check(Some("f.nix"), &["1"], None).unwrap_err();
        assert!(file_and_expr.starts_with("give either a FILE or -E EXPR"));
        assert!(check(None, &["1", "2"], None)
            .unwrap_err()
            .starts_with("-E given more than once"));
        for (file, exprs) in [(Some("f.nix"), &[][..]), (None, &["1"][..])] {
            assert_eq!(
                check(file, exprs, Some(".")).unwrap_err(),
                "--flake takes neither a FILE nor -E EXPR"
            );
        }
    }

    #[test]
    fn args_then_argstrs() {
        let i = InvocationArgs {
            args: vec![("a".into(), "1".into())],
            argstrs: vec![("b".into(), "x".into())],
            ..Default::default()
        }
        .check()
        .unwrap();
        assert_eq!(
            i.args,
            [
                ("a".to_string(), AutoArg::Expr("1".into())),
                ("b".to_string(), AutoArg::Str("x".into()))
            ]
        );
    }
}
