//! attrfs-eval: a Nix evaluator.
//!
//! Source text is parsed by rnix ([`syntax`]), compiled to bytecode
//! ([`compiler`], [`bytecode`]) and run on a VM with an explicit frame stack
//! ([`vm`]) whose builtins ([`builtins`]) are generators, so evaluation never
//! grows the Rust stack with Nix recursion. Values ([`value`]) carry string
//! contexts; derivations and store paths are computed by `attrfs-store`.
//! The entry point is [`Evaluator`]; how the parts work is in
//! docs/evaluator.md.

pub mod attrpath;
pub mod builtins;
pub mod bytecode;
pub mod cli;
pub mod compiler;
pub mod errors;
pub mod eval;
pub mod flake;
pub mod image;
pub mod inputs;
pub mod invocation;
pub mod io;
pub mod path;
pub mod printer;
pub mod record;
pub mod source;
pub mod store;
pub mod syntax;
pub mod value;
pub mod vm;

pub use compiler::{LintLevel, Lints};
pub use errors::{Error, ErrorKind};
pub use eval::{AutoArg, Evaluator, Source};
pub use invocation::{Invocation, InvocationArgs, InvocationError};
pub use record::{Input, InputKind};
pub use value::Value;
pub use vm::{EvalOptions, SearchPathEntry};
