//! Evaluation and parse errors.
//!
//! [`ErrorKind`] says what went wrong; [`Error`] adds where (a [`Span`]) and
//! the trace of what was being evaluated, printed the way C++ Nix prints it.

use crate::source::{SourceMap, Span};

/// What went wrong, without location.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ErrorKind {
    /// A syntax error reported by the parser.
    #[error("syntax error, {0}")]
    Parse(String),
    /// An identifier that is bound nowhere.
    #[error("undefined variable '{0}'")]
    UndefinedVariable(String),
    /// An attribute defined twice in one set or `let`.
    #[error("attribute '{0}' already defined")]
    DuplicateAttr(String),
    /// A formal argument listed twice.
    #[error("duplicate formal function argument '{0}'")]
    DuplicateFormal(String),
    /// `let` or `inherit` with a dynamic attribute name.
    #[error("dynamic attributes not allowed in {0}")]
    DynamicNotAllowed(&'static str),
    /// `builtins.throw`; catchable by `tryEval`.
    #[error("{0}")]
    Throw(String),
    /// `builtins.abort`; not catchable.
    #[error("evaluation aborted with the following error message: '{0}'")]
    Abort(String),
    /// A failed `assert`; catchable by `tryEval`.
    #[error("assertion '{0}' failed")]
    AssertionFailed(String),
    /// A value of the wrong type.
    #[error("expected {} {expected} but found {found}", article(expected))]
    TypeError {
        /// What was wanted, e.g. "set".
        expected: &'static str,
        /// A description of what was found, e.g. "an integer: 1".
        found: String,
    },
    /// A missing attribute in a selection.
    #[error("attribute '{name}' missing")]
    AttrMissing {
        /// The attribute.
        name: String,
    },
    /// A thunk forced while it is being forced.
    #[error("infinite recursion encountered")]
    InfiniteRecursion,
    /// Nix call depth limit.
    #[error("stack overflow; max-call-depth exceeded")]
    StackOverflow,
    /// Integer overflow in arithmetic.
    #[error("integer overflow in {0}")]
    Overflow(String),
    /// Division by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A lambda called without a required formal.
    #[error("function '{func}' called without required argument '{arg}'")]
    MissingArgument {
        /// Function name or "anonymous lambda".
        func: String,
        /// The formal.
        arg: String,
    },
    /// A lambda called with an attribute it does not accept.
    #[error("function '{func}' called with unexpected argument '{arg}'")]
    UnexpectedArgument {
        /// Function name or "anonymous lambda".
        func: String,
        /// The attribute.
        arg: String,
    },
    /// Something that cannot be turned into a string.
    #[error("cannot coerce {0} to a string")]
    NotCoercible(String),
    /// Reading a file or directory failed.
    #[error("{0}")]
    Io(String),
    /// The evaluation was cancelled through the interrupt flag.
    #[error("evaluation interrupted")]
    Interrupted,
    /// A feature this evaluator deliberately does not provide.
    #[error("{0}")]
    Unsupported(String),
    /// Any other evaluation error, worded like C++ Nix.
    #[error("{0}")]
    Other(String),
    /// An error that already carries its own location (e.g. a syntax error
    /// in an imported file); [`Error::new`] unwraps it.
    #[error("{0}")]
    Located(Box<Error>),
}

impl ErrorKind {
    /// Whether `builtins.tryEval` catches this error.
    pub fn is_catchable(&self) -> bool {
        match self {
            ErrorKind::Throw(_) | ErrorKind::AssertionFailed(_) => true,
            ErrorKind::Located(e) => e.kind.is_catchable(),
            _ => false,
        }
    }

    /// Shorthand for [`ErrorKind::Other`].
    pub fn other(msg: impl Into<String>) -> Self {
        ErrorKind::Other(msg.into())
    }
}

/// "a" or "an" for a type name in [`ErrorKind::TypeError`] ("an integer").
fn article(word: &str) -> &'static str {
    match word.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => "an",
        _ => "a",
    }
}

/// One line of an error trace: "while evaluating ..." at a span.
#[derive(Debug, Clone)]
pub struct TraceEntry {
    /// Where.
    pub span: Option<Span>,
    /// What, e.g. "while evaluating the attribute 'x'".
    pub message: String,
}

/// An error with its location and trace.
#[derive(Debug, Clone)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Where it went wrong.
    pub span: Option<Span>,
    /// Outermost last.
    pub trace: Vec<TraceEntry>,
}

impl Error {
    /// A new error at a span.
    pub fn new(kind: ErrorKind, span: Option<Span>) -> Self {
        if let ErrorKind::Located(inner) = kind {
            return *inner;
        }
        Error {
            kind,
            span,
            trace: Vec::new(),
        }
    }

    /// Renders the error like C++ Nix: the trace, then the message, each with
    /// position and a caret snippet.
    pub fn render(&self, sources: &SourceMap) -> String {
        self.render_limited(sources, None)
    }

    /// [`Error::render`] with at most `max_frames` trace entries, the
    /// outermost ones (as C++ Nix keeps them without `--show-trace`),
    /// followed by a note saying the trace was cut.
    pub fn render_limited(&self, sources: &SourceMap, max_frames: Option<usize>) -> String {
        let mut out = String::from("error:\n");
        let limit = max_frames.unwrap_or(usize::MAX);
        for t in self.trace.iter().rev().take(limit) {
            out.push_str(&format!("       … {}\n", t.message));
            if let Some(span) = t.span {
                push_location(&mut out, sources, span);
            }
            out.push('\n');
        }
        if self.trace.len() > limit {
            out.push_str(
                "       (stack trace truncated; use '--show-trace' to show the full, detailed trace)\n\n",
            );
        }
        out.push_str(&format!("       error: {}", self.kind));
        if let Some(span) = self.span {
            out.push('\n');
            push_location(&mut out, sources, span);
        }
        out
    }

    /// The bare message with its position, one line (for logs and xattrs).
    pub fn short(&self, sources: &SourceMap) -> String {
        match self.span.and_then(|s| sources.position(s)) {
            Some(p) => format!("{} at {}", self.kind, p),
            None => self.kind.to_string(),
        }
    }
}

fn push_location(out: &mut String, sources: &SourceMap, span: Span) {
    if let Some(pos) = sources.position(span) {
        out.push_str(&format!("\n         at {}:\n\n", pos));
        if let Some(snip) = sources.snippet(span) {
            out.push_str(&snip);
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind, None)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for Error {}

/// Result of an evaluation step.
pub type EvalResult<T> = Result<T, ErrorKind>;
