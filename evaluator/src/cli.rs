//! `attrfs eval`: evaluate and print like `nix-instantiate --eval`.
//!
//! Lives in the evaluator crate so the binary's adapter stays a few lines
//! and the conformance tests run exactly this code in-process.

use crate::eval::Evaluator;
use crate::invocation::Invocation;
use crate::value::Value;
use crate::vm::{deep_force, force, EvalOptions};
use std::io::Write;

/// The options of `attrfs eval`.
#[derive(Clone, Debug, Default)]
pub struct EvalCommand {
    /// What to evaluate: FILE, `-E`, `--flake`, `--arg`/`--argstr`, `-A`,
    /// `-I`, `--impure`.
    pub invocation: Invocation,
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
    /// `--lint-*` levels.
    pub lints: crate::compiler::Lints,
    /// `--extra-experimental-features`.
    pub experimental_features: Vec<String>,
    /// `--show-trace`: print every frame of an error's trace, not only
    /// the outermost [`SHORT_TRACE_FRAMES`].
    pub show_trace: bool,
    /// `--pure-eval`: no `NIX_PATH`, environment, clock or files outside
    /// the store (see [`EvalOptions::pure_eval`]).
    pub pure_eval: bool,
    /// `--max-call-depth`.
    pub max_call_depth: Option<usize>,
    /// `--no-compile-cache`: [`run`] parses and compiles every file afresh
    /// instead of using the compiled-file cache the environment configures.
    pub no_compile_cache: bool,
}

/// Frames of an error trace printed without `--show-trace`.
pub const SHORT_TRACE_FRAMES: usize = 10;

/// Experimental features `--extra-experimental-features` accepts: the one
/// that changes what the evaluator does (`parse-toml-timestamps`), one it
/// maps onto a lint (`no-url-literals`: `lint-url-literals fatal`), and the
/// ones that only concern the store, the daemon or the `nix` command, so
/// that enabling them changes no evaluation.
pub const ACCEPTED_EXPERIMENTAL_FEATURES: &[&str] = &[
    "auto-allocate-uids",
    "cgroups",
    "configurable-impure-env",
    "daemon-trust-override",
    "flakes",
    "local-overlay-store",
    "mounted-ssh-store",
    "nix-command",
    "no-url-literals",
    "parse-toml-timestamps",
    "read-only-local-store",
    "recursive-nix",
    "verified-fetches",
];

/// C++ Nix features whose evaluation attrfs does not implement: enabling
/// one is an error rather than a promise the evaluator would not keep.
pub const UNSUPPORTED_EXPERIMENTAL_FEATURES: &[&str] = &[
    "blake3-hashes",
    "ca-derivations",
    "dynamic-derivations",
    "fetch-closure",
    "fetch-tree",
    "git-hashing",
    "impure-derivations",
    "pipe-operators",
];

/// A `--option NAME VALUE` (or its flag spelling) that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// No such setting in attrfs.
    #[error("unknown setting '{name}' (attrfs knows: {})", SETTINGS.join(", "))]
    Unknown {
        /// The setting as given.
        name: String,
    },
    /// The value does not parse for this setting.
    #[error("invalid value '{value}' for setting '{name}': expected {expected}")]
    InvalidValue {
        /// The setting.
        name: String,
        /// The value as given.
        value: String,
        /// What the setting takes.
        expected: &'static str,
    },
    /// An experimental feature name attrfs does not know.
    #[error("unknown experimental feature '{feature}' (attrfs accepts: {})", ACCEPTED_EXPERIMENTAL_FEATURES.join(", "))]
    UnknownFeature {
        /// The feature as given.
        feature: String,
    },
    /// A C++ Nix experimental feature attrfs does not implement.
    #[error("experimental feature '{feature}' is not supported by attrfs")]
    UnsupportedFeature {
        /// The feature as given.
        feature: String,
    },
}

/// The settings [`EvalCommand::apply_setting`] understands: C++ Nix's names.
pub const SETTINGS: &[&str] = &[
    "experimental-features",
    "extra-experimental-features",
    "lint-absolute-path-literals",
    "lint-short-path-literals",
    "lint-url-literals",
    "max-call-depth",
    "pure-eval",
    "show-trace",
];

impl EvalCommand {
    /// Applies one Nix setting, as `--option NAME VALUE` does; the flag
    /// spellings (`--show-trace`, `--lint-url-literals warn`, ...) end here
    /// too, so every setting has one meaning whichever way it is given.
    pub fn apply_setting(&mut self, name: &str, value: &str) -> Result<(), SettingError> {
        let invalid = |expected| SettingError::InvalidValue {
            name: name.to_string(),
            value: value.to_string(),
            expected,
        };
        let boolean = || match value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid("true or false")),
        };
        match name {
            "show-trace" => self.show_trace = boolean()?,
            "pure-eval" => self.pure_eval = boolean()?,
            "max-call-depth" => {
                self.max_call_depth = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| invalid("a positive integer"))?,
                )
            }
            "lint-absolute-path-literals" | "lint-short-path-literals" | "lint-url-literals" => {
                let level = value
                    .parse()
                    .map_err(|_| invalid("ignore, warn or fatal"))?;
                match name {
                    "lint-absolute-path-literals" => self.lints.absolute_path_literals = level,
                    "lint-short-path-literals" => self.lints.short_path_literals = level,
                    _ => self.lints.url_literals = level,
                }
            }
            "experimental-features" | "extra-experimental-features" => {
                if name == "experimental-features" {
                    self.experimental_features.clear();
                }
                for feature in value.split_whitespace() {
                    if UNSUPPORTED_EXPERIMENTAL_FEATURES.contains(&feature) {
                        return Err(SettingError::UnsupportedFeature {
                            feature: feature.to_string(),
                        });
                    }
                    if !ACCEPTED_EXPERIMENTAL_FEATURES.contains(&feature) {
                        return Err(SettingError::UnknownFeature {
                            feature: feature.to_string(),
                        });
                    }
                    if feature == "no-url-literals" {
                        self.lints.url_literals = crate::LintLevel::Fatal;
                    }
                    if !self.experimental_features.iter().any(|f| f == feature) {
                        self.experimental_features.push(feature.to_string());
                    }
                }
            }
            _ => {
                return Err(SettingError::Unknown {
                    name: name.to_string(),
                })
            }
        }
        Ok(())
    }
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
        .spawn(move || {
            let options = EvalOptions {
                compile_cache: if cmd.no_compile_cache {
                    None
                } else {
                    crate::compiler::cache::CacheConfig::from_env()
                },
                ..EvalOptions::default()
            };
            match evaluate(&cmd, options) {
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
pub fn evaluate(cmd: &EvalCommand, options: EvalOptions) -> Result<Vec<u8>, String> {
    evaluate_recording(cmd, options).0
}

/// [`evaluate`], and every input the evaluation read (see
/// [`crate::record`]), what `attrfs eval --watch` watches.
pub fn evaluate_recording(
    cmd: &EvalCommand,
    options: EvalOptions,
) -> (Result<Vec<u8>, String>, Vec<crate::record::Input>) {
    let ev = evaluator_for(cmd, options);
    let printed = print(&ev, cmd);
    (printed, ev.all_inputs())
}

/// The evaluator the command's settings ask for.
fn evaluator_for(cmd: &EvalCommand, mut options: EvalOptions) -> Evaluator {
    options.lints = cmd.lints;
    options
        .experimental_features
        .extend(cmd.experimental_features.iter().cloned());
    options.pure_eval |= cmd.pure_eval;
    if cmd.max_call_depth.is_some() {
        options.max_call_depth = cmd.max_call_depth;
    }
    cmd.invocation.configure(&mut options);
    Evaluator::new(options)
}

/// Evaluates with `ev` and renders what `attrfs eval` prints.
fn print(ev: &Evaluator, cmd: &EvalCommand) -> Result<Vec<u8>, String> {
    let frames = (!cmd.show_trace).then_some(SHORT_TRACE_FRAMES);
    let render = |e: &crate::Error| e.render_limited(&ev.state.sources, frames);
    if cmd.parse {
        return ev
            .check(&cmd.invocation.source)
            .map(|()| Vec::new())
            .map_err(|e| render(&e));
    }
    let (strict, json, xml) = (cmd.strict, cmd.json, cmd.xml);
    let state = ev.state.clone();
    let result = cmd.invocation.root(ev).and_then(|v| {
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
    let v = result.map_err(|e| render(&e))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LintLevel;

    #[test]
    fn settings_apply_by_their_nix_names() {
        let mut cmd = EvalCommand::default();
        cmd.apply_setting("show-trace", "true").unwrap();
        cmd.apply_setting("pure-eval", "true").unwrap();
        cmd.apply_setting("max-call-depth", "100").unwrap();
        cmd.apply_setting("lint-url-literals", "fatal").unwrap();
        cmd.apply_setting("lint-short-path-literals", "warn")
            .unwrap();
        cmd.apply_setting(
            "extra-experimental-features",
            "flakes parse-toml-timestamps",
        )
        .unwrap();
        cmd.apply_setting("extra-experimental-features", "flakes")
            .unwrap();
        assert!(cmd.show_trace && cmd.pure_eval);
        assert_eq!(cmd.max_call_depth, Some(100));
        assert_eq!(cmd.lints.url_literals, LintLevel::Fatal);
        assert_eq!(cmd.lints.short_path_literals, LintLevel::Warn);
        assert_eq!(cmd.lints.absolute_path_literals, LintLevel::Ignore);
        assert_eq!(
            cmd.experimental_features,
            ["flakes", "parse-toml-timestamps"]
        );
        cmd.apply_setting("experimental-features", "nix-command")
            .unwrap();
        assert_eq!(cmd.experimental_features, ["nix-command"]);
        cmd.apply_setting("show-trace", "false").unwrap();
        assert!(!cmd.show_trace);
        cmd.apply_setting("extra-experimental-features", "no-url-literals")
            .unwrap();
        assert_eq!(cmd.lints.url_literals, LintLevel::Fatal);
    }

    #[test]
    fn bad_settings_are_errors() {
        let mut cmd = EvalCommand::default();
        assert!(matches!(
            cmd.apply_setting("restrict-eval", "true"),
            Err(SettingError::Unknown { .. })
        ));
        assert!(matches!(
            cmd.apply_setting("show-trace", "yes"),
            Err(SettingError::InvalidValue { .. })
        ));
        assert!(matches!(
            cmd.apply_setting("lint-url-literals", "loud"),
            Err(SettingError::InvalidValue { .. })
        ));
        assert!(matches!(
            cmd.apply_setting("max-call-depth", "-1"),
            Err(SettingError::InvalidValue { .. })
        ));
        assert!(matches!(
            cmd.apply_setting("extra-experimental-features", "flakes bogus"),
            Err(SettingError::UnknownFeature { .. })
        ));
        assert!(matches!(
            cmd.apply_setting("extra-experimental-features", "pipe-operators"),
            Err(SettingError::UnsupportedFeature { .. })
        ));
        let message = cmd.apply_setting("bogus", "1").unwrap_err().to_string();
        assert!(message.starts_with("unknown setting 'bogus'"), "{message}");
    }
}
