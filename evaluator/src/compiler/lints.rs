//! The syntax lints of C++ Nix 2.36 (`--lint-*`): options of the compiler,
//! which finds what they look for while it compiles.

/// How a lint reports what it finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LintLevel {
    /// Say nothing.
    #[default]
    Ignore,
    /// Print a warning and go on.
    Warn,
    /// Reject the expression.
    Fatal,
}

impl std::str::FromStr for LintLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ignore" => Ok(LintLevel::Ignore),
            "warn" => Ok(LintLevel::Warn),
            "fatal" => Ok(LintLevel::Fatal),
            other => Err(format!(
                "unknown lint level '{other}' (ignore, warn or fatal)"
            )),
        }
    }
}

/// The syntax lints of C++ Nix 2.36 (`--lint-*`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Lints {
    /// `/abs` and `~/home` path literals.
    pub absolute_path_literals: LintLevel,
    /// `a/b` path literals without `./`.
    pub short_path_literals: LintLevel,
    /// `http://...` URL literals.
    pub url_literals: LintLevel,
}
