//! Turning rnix parse errors into located [`Error`]s.

use crate::errors::{Error, ErrorKind};
use crate::source::{SourceFile, Span};
use rnix::parser::ParseError;
use rnix::SyntaxKind;

fn token_name(k: SyntaxKind) -> String {
    use SyntaxKind::*;
    match k {
        TOKEN_SEMICOLON => "';'".into(),
        TOKEN_R_BRACE => "'}'".into(),
        TOKEN_L_BRACE => "'{'".into(),
        TOKEN_R_PAREN => "')'".into(),
        TOKEN_L_PAREN => "'('".into(),
        TOKEN_R_BRACK => "']'".into(),
        TOKEN_ASSIGN => "'='".into(),
        TOKEN_IDENT => "identifier".into(),
        TOKEN_IN => "'in'".into(),
        TOKEN_THEN => "'then'".into(),
        TOKEN_ELSE => "'else'".into(),
        TOKEN_COLON => "':'".into(),
        TOKEN_COMMA => "','".into(),
        TOKEN_DOT => "'.'".into(),
        other => format!("{other:?}")
            .trim_start_matches("TOKEN_")
            .trim_start_matches("NODE_")
            .to_lowercase(),
    }
}

/// A located syntax error in C++ Nix's words where possible.
pub fn parse_error(e: &ParseError, file: &SourceFile) -> Error {
    let at = |r: rnix::TextRange| {
        Some(Span::new(
            file.base + u32::from(r.start()),
            file.base + u32::from(r.end()),
        ))
    };
    let text = file.text().unwrap_or_default();
    let text_of = |r: rnix::TextRange| -> String {
        text.get(usize::from(r.start())..usize::from(r.end()))
            .unwrap_or("")
            .to_string()
    };
    let end = Some(Span::new(file.base + file.len(), file.base + file.len()));
    let (msg, span) = match e {
        ParseError::Unexpected(r) | ParseError::UnexpectedExtra(r) => {
            (format!("unexpected '{}'", text_of(*r)), at(*r))
        }
        ParseError::UnexpectedWanted(_, r, wanted) => {
            let w: Vec<String> = wanted.iter().map(|k| token_name(*k)).collect();
            (
                format!("unexpected '{}', expecting {}", text_of(*r), w.join(" or ")),
                at(*r),
            )
        }
        ParseError::UnexpectedDoubleBind(r) => ("double binding of a pattern".into(), at(*r)),
        ParseError::UnexpectedEOF => ("unexpected end of file".into(), end),
        ParseError::UnexpectedEOFWanted(wanted) => {
            let w: Vec<String> = wanted.iter().map(|k| token_name(*k)).collect();
            (
                format!("unexpected end of file, expecting {}", w.join(" or ")),
                end,
            )
        }
        ParseError::DuplicatedArgs(r, name) => {
            return Error::new(ErrorKind::DuplicateFormal(name.clone()), at(*r))
        }
        ParseError::RecursionLimitExceeded => ("expression nested too deeply".into(), end),
        other => (other.to_string(), end),
    };
    Error::new(ErrorKind::Parse(msg), span)
}

/// The syntax tree of a registered source, or its first syntax error
/// located in it.
pub fn parse(file: &SourceFile) -> Result<rnix::ast::Expr, Error> {
    // Files are parsed before their text may be released.
    let parsed = rnix::Root::parse(&file.text().unwrap_or_default());
    if let Some(e) = parsed.errors().first() {
        return Err(parse_error(e, file));
    }
    parsed.tree().expr().ok_or_else(|| {
        Error::new(
            ErrorKind::Parse("unexpected end of file".into()),
            Some(Span::new(file.base, file.base)),
        )
    })
}
