//! The JSON reader behind `builtins.fromJSON`, behaving like the
//! nlohmann::json SAX parser C++ Nix uses: the same classification of
//! numbers (integers without fraction or exponent, unsigned ones beyond
//! `i64` rejected by Nix, integers too large for 64 bits read as floats,
//! `-0` an integer), the same error messages with line, column and "last
//! read" text, last-wins duplicate keys. It builds Nix values directly and
//! keeps its own stack, so nesting depth is limited only by memory.

use crate::errors::{ErrorKind, EvalResult};
use crate::value::{NixAttrs, NixString, Value};

/// Parses a JSON document into a Nix value.
pub fn parse(input: &[u8]) -> EvalResult<Value> {
    let mut p = Parser {
        lx: Lexer {
            s: input,
            pos: 0,
            mark: 0,
            eof_read: false,
            error: String::new(),
        },
    };
    p.document()
}

#[derive(Debug)]
enum Token {
    BeginArray,
    EndArray,
    BeginObject,
    EndObject,
    NameSeparator,
    ValueSeparator,
    True,
    False,
    Null,
    String(Vec<u8>),
    Number(Number),
    EndOfInput,
    ParseError,
}

#[derive(Debug)]
enum Number {
    Int(i64),
    Unsigned(u64),
    Float(f64),
}

impl Token {
    /// nlohmann's name for a token kind in "unexpected ..." messages.
    fn name(&self) -> &'static str {
        match self {
            Token::BeginArray => "'['",
            Token::EndArray => "']'",
            Token::BeginObject => "'{'",
            Token::EndObject => "'}'",
            Token::NameSeparator => "':'",
            Token::ValueSeparator => "','",
            Token::True => "true literal",
            Token::False => "false literal",
            Token::Null => "null literal",
            Token::String(_) => "string literal",
            Token::Number(_) => "number literal",
            Token::EndOfInput => "end of input",
            Token::ParseError => "<parse error>",
        }
    }
}

/// Names of the ASCII control characters, for nlohmann's messages.
const CONTROL_NAMES: [&str; 32] = [
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR",
    "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC",
    "FS", "GS", "RS", "US",
];

struct Lexer<'a> {
    s: &'a [u8],
    /// Index of the next byte to read.
    pos: usize,
    /// Where the text nlohmann calls "last read" starts (it restarts only
    /// at strings and numbers).
    mark: usize,
    /// Whether the last read hit the end of the input.
    eof_read: bool,
    error: String,
}

impl Lexer<'_> {
    fn get(&mut self) -> Option<u8> {
        match self.s.get(self.pos) {
            Some(&c) => {
                self.pos += 1;
                self.eof_read = false;
                Some(c)
            }
            None => {
                self.eof_read = true;
                None
            }
        }
    }

    fn unget(&mut self) {
        if self.eof_read {
            self.eof_read = false;
        } else {
            self.pos -= 1;
        }
    }

    fn fail(&mut self, msg: &str) -> Token {
        self.error = msg.to_string();
        Token::ParseError
    }

    /// Line and column as nlohmann counts them (reading the end counts).
    fn position(&self) -> (usize, usize) {
        let before = &self.s[..self.pos];
        let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        (line, self.pos - line_start + usize::from(self.eof_read))
    }

    /// The "last read" text, control characters shown as `<U+XXXX>`.
    fn last_read(&self) -> String {
        let mut out = Vec::new();
        for &c in &self.s[self.mark.min(self.pos)..self.pos] {
            if c <= 0x1f {
                out.extend_from_slice(format!("<U+{c:04X}>").as_bytes());
            } else {
                out.push(c);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn scan(&mut self) -> Token {
        let c = loop {
            match self.get() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => continue,
                other => break other,
            }
        };
        match c {
            None => Token::EndOfInput,
            Some(b'[') => Token::BeginArray,
            Some(b']') => Token::EndArray,
            Some(b'{') => Token::BeginObject,
            Some(b'}') => Token::EndObject,
            Some(b':') => Token::NameSeparator,
            Some(b',') => Token::ValueSeparator,
            Some(b't') => self.literal(b"rue", Token::True),
            Some(b'f') => self.literal(b"alse", Token::False),
            Some(b'n') => self.literal(b"ull", Token::Null),
            Some(b'"') => {
                self.mark = self.pos - 1;
                self.string()
            }
            Some(b'-' | b'0'..=b'9') => {
                self.mark = self.pos - 1;
                self.number()
            }
            Some(_) => self.fail("invalid literal"),
        }
    }

    fn literal(&mut self, rest: &[u8], token: Token) -> Token {
        for &expected in rest {
            if self.get() != Some(expected) {
                return self.fail("invalid literal");
            }
        }
        token
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            let d = (self.get()? as char).to_digit(16)?;
            v = v * 16 + d;
        }
        Some(v)
    }

    fn string(&mut self) -> Token {
        let mut out = Vec::new();
        loop {
            let Some(c) = self.get() else {
                return self.fail("invalid string: missing closing quote");
            };
            match c {
                b'"' => return Token::String(out),
                b'\\' => {
                    let e = self.get();
                    let ch = match e {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let Some(hi) = self.hex4() else {
                                return self.fail(
                                    "invalid string: '\\u' must be followed by 4 hex digits",
                                );
                            };
                            let code = if (0xd800..=0xdbff).contains(&hi) {
                                let lo = if self.get() == Some(b'\\') && self.get() == Some(b'u') {
                                    match self.hex4() {
                                        Some(lo) => lo,
                                        None => {
                                            return self.fail(
                                                "invalid string: '\\u' must be followed by 4 hex digits",
                                            )
                                        }
                                    }
                                } else {
                                    0
                                };
                                if !(0xdc00..=0xdfff).contains(&lo) {
                                    return self.fail("invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF");
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else if (0xdc00..=0xdfff).contains(&hi) {
                                return self.fail("invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF");
                            } else {
                                hi
                            };
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => {
                            return self.fail("invalid string: forbidden character after backslash")
                        }
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0x00..=0x1f => {
                    let short = match c {
                        0x08 => " or \\b",
                        0x09 => " or \\t",
                        0x0a => " or \\n",
                        0x0c => " or \\f",
                        0x0d => " or \\r",
                        _ => "",
                    };
                    let msg = format!(
                        "invalid string: control character U+{c:04X} ({}) must be escaped to \\u{c:04X}{short}",
                        CONTROL_NAMES[c as usize]
                    );
                    return self.fail(&msg);
                }
                0x20..=0x7f => out.push(c),
                lead => {
                    // A UTF-8 sequence: the continuation ranges per lead byte.
                    let ranges: &[(u8, u8)] = match lead {
                        0xc2..=0xdf => &[(0x80, 0xbf)],
                        0xe0 => &[(0xa0, 0xbf), (0x80, 0xbf)],
                        0xe1..=0xec | 0xee..=0xef => &[(0x80, 0xbf), (0x80, 0xbf)],
                        0xed => &[(0x80, 0x9f), (0x80, 0xbf)],
                        0xf0 => &[(0x90, 0xbf), (0x80, 0xbf), (0x80, 0xbf)],
                        0xf1..=0xf3 => &[(0x80, 0xbf), (0x80, 0xbf), (0x80, 0xbf)],
                        0xf4 => &[(0x80, 0x8f), (0x80, 0xbf), (0x80, 0xbf)],
                        _ => return self.fail("invalid string: ill-formed UTF-8 byte"),
                    };
                    out.push(lead);
                    for &(lo, hi) in ranges {
                        match self.get() {
                            Some(b) if (lo..=hi).contains(&b) => out.push(b),
                            _ => return self.fail("invalid string: ill-formed UTF-8 byte"),
                        }
                    }
                }
            }
        }
    }

    fn digits(&mut self) -> Option<u8> {
        loop {
            match self.get() {
                Some(b'0'..=b'9') => continue,
                other => return other,
            }
        }
    }

    fn number(&mut self) -> Token {
        let start = self.mark;
        let first = self.s[start];
        let mut is_float = false;
        let mut next = if first == b'-' {
            match self.get() {
                Some(b'0') => self.get(),
                Some(b'1'..=b'9') => self.digits(),
                _ => return self.fail("invalid number; expected digit after '-'"),
            }
        } else if first == b'0' {
            self.get()
        } else {
            self.digits()
        };
        if next == Some(b'.') {
            is_float = true;
            if !matches!(self.get(), Some(b'0'..=b'9')) {
                return self.fail("invalid number; expected digit after '.'");
            }
            next = self.digits();
        }
        if matches!(next, Some(b'e' | b'E')) {
            is_float = true;
            match self.get() {
                Some(b'+' | b'-') => {
                    if !matches!(self.get(), Some(b'0'..=b'9')) {
                        return self.fail("invalid number; expected digit after exponent sign");
                    }
                }
                Some(b'0'..=b'9') => {}
                _ => {
                    return self.fail("invalid number; expected '+', '-', or digit after exponent")
                }
            }
            self.digits();
        }
        self.unget();
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("0");
        if !is_float {
            if first == b'-' {
                if let Ok(i) = text.parse::<i64>() {
                    return Token::Number(Number::Int(i));
                }
            } else if let Ok(u) = text.parse::<u64>() {
                return Token::Number(match i64::try_from(u) {
                    Ok(i) => Number::Int(i),
                    Err(_) => Number::Unsigned(u),
                });
            }
        }
        Token::Number(Number::Float(text.parse().unwrap_or(f64::NAN)))
    }
}

/// An open container on the parser's stack.
enum Open {
    Array(Vec<Value>),
    Object(Vec<(NixString, Value)>, NixString),
}

struct Parser<'a> {
    lx: Lexer<'a>,
}

impl Parser<'_> {
    fn syntax_error(&self, context: &str, token: &Token, expected: &str) -> ErrorKind {
        let (line, col) = self.lx.position();
        let detail = match token {
            Token::ParseError => format!("{}; last read: '{}'", self.lx.error, self.lx.last_read()),
            t => format!("unexpected {}; expected {expected}", t.name()),
        };
        ErrorKind::other(format!(
            "[json.exception.parse_error.101] parse error at line {line}, column {col}: \
             syntax error while parsing {context} - {detail}"
        ))
    }

    fn string_value(bytes: Vec<u8>) -> EvalResult<NixString> {
        if bytes.contains(&0) {
            return Err(ErrorKind::other(format!(
                "input string '{}' cannot be represented as Nix string because it contains null bytes",
                String::from_utf8_lossy(&bytes).replace('\0', "\u{2400}")
            )));
        }
        Ok(NixString::plain(bytes))
    }

    fn number_value(&self, n: Number) -> EvalResult<Value> {
        Ok(match n {
            Number::Int(i) => Value::Int(i),
            Number::Unsigned(u) => {
                return Err(ErrorKind::other(format!(
                    "unsigned json number {u} outside of Nix integer range"
                )))
            }
            Number::Float(f) if !f.is_finite() => {
                return Err(ErrorKind::other(format!(
                    "[json.exception.out_of_range.406] number overflow parsing '{}'",
                    self.lx.last_read()
                )))
            }
            Number::Float(f) => Value::Float(f),
        })
    }

    /// Reads a key after `{` or `,` in an object; `closing` allows `}` (empty object).
    fn key(&mut self, closing: bool) -> EvalResult<Option<NixString>> {
        match self.lx.scan() {
            Token::String(k) => {
                let k = Self::string_value(k)?;
                match self.lx.scan() {
                    Token::NameSeparator => Ok(Some(k)),
                    t => Err(self.syntax_error("object separator", &t, "':'")),
                }
            }
            Token::EndObject if closing => Ok(None),
            t => Err(self.syntax_error("object key", &t, "string literal")),
        }
    }

    fn document(&mut self) -> EvalResult<Value> {
        let mut stack: Vec<Open> = Vec::new();
        let mut token = self.lx.scan();
        loop {
            // Parse one value starting at `token`.
            let mut value = match token {
                Token::BeginArray => match self.lx.scan() {
                    Token::EndArray => Value::list(Vec::new()),
                    t => {
                        stack.push(Open::Array(Vec::new()));
                        token = t;
                        continue;
                    }
                },
                Token::BeginObject => match self.key(true)? {
                    None => Value::Attrs(NixAttrs::empty()),
                    Some(k) => {
                        stack.push(Open::Object(Vec::new(), k));
                        token = self.lx.scan();
                        continue;
                    }
                },
                Token::True => Value::Bool(true),
                Token::False => Value::Bool(false),
                Token::Null => Value::Null,
                Token::String(s) => Value::String(Self::string_value(s)?),
                Token::Number(n) => self.number_value(n)?,
                t => return Err(self.syntax_error("value", &t, "'[', '{', or a literal")),
            };
            // Attach the value to the open containers, closing those that end.
            loop {
                match stack.last_mut() {
                    None => {
                        return match self.lx.scan() {
                            Token::EndOfInput => Ok(value),
                            t => Err(self.syntax_error("value", &t, "end of input")),
                        }
                    }
                    Some(Open::Array(items)) => {
                        items.push(value);
                        match self.lx.scan() {
                            Token::ValueSeparator => {
                                token = self.lx.scan();
                                break;
                            }
                            Token::EndArray => {
                                let Some(Open::Array(items)) = stack.pop() else {
                                    unreachable!("just matched")
                                };
                                value = Value::list(items);
                            }
                            t => return Err(self.syntax_error("array", &t, "']'")),
                        }
                    }
                    Some(Open::Object(entries, key)) => {
                        entries.push((key.clone(), value));
                        match self.lx.scan() {
                            Token::ValueSeparator => {
                                let Some(k) = self.key(false)? else {
                                    unreachable!("a key is required after ','")
                                };
                                if let Some(Open::Object(_, key)) = stack.last_mut() {
                                    *key = k;
                                }
                                token = self.lx.scan();
                                break;
                            }
                            Token::EndObject => {
                                let Some(Open::Object(mut entries, _)) = stack.pop() else {
                                    unreachable!("just matched")
                                };
                                // Stable sort, then keep the last of equal keys.
                                entries.sort_by(|a, b| a.0.cmp(&b.0));
                                let mut deduped: Vec<(NixString, Value)> =
                                    Vec::with_capacity(entries.len());
                                for e in entries {
                                    match deduped.last_mut() {
                                        Some(last) if last.0 == e.0 => *last = e,
                                        _ => deduped.push(e),
                                    }
                                }
                                value = Value::attrs(NixAttrs::from_sorted(deduped));
                            }
                            t => return Err(self.syntax_error("object", &t, "'}'")),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn err(s: &str) -> String {
        match parse(s.as_bytes()) {
            Ok(v) => panic!("{s} parsed as {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_like_nlohmann() {
        let pre = "[json.exception.parse_error.101] parse error at line 1, column";
        let cases = [
            ("[1, 2", " 6: syntax error while parsing array - unexpected end of input; expected ']'"),
            ("{\"a\" 1}", " 6: syntax error while parsing object separator - unexpected number literal; expected ':'"),
            ("tru", " 4: syntax error while parsing value - invalid literal; last read: 'tru'"),
            ("\"abc", " 5: syntax error while parsing value - invalid string: missing closing quote; last read: '\"abc'"),
            ("[1,]", " 4: syntax error while parsing value - unexpected ']'; expected '[', '{', or a literal"),
            ("01", " 2: syntax error while parsing value - unexpected number literal; expected end of input"),
            ("", " 1: syntax error while parsing value - unexpected end of input; expected '[', '{', or a literal"),
            ("-", " 2: syntax error while parsing value - invalid number; expected digit after '-'; last read: '-'"),
            ("[1.]", " 4: syntax error while parsing value - invalid number; expected digit after '.'; last read: '1.]'"),
            ("{1:2}", " 2: syntax error while parsing object key - unexpected number literal; expected string literal"),
            ("{\"a\":1,}", " 8: syntax error while parsing object key - unexpected '}'; expected string literal"),
            ("{\"a\":1 \"b\"}", " 10: syntax error while parsing object - unexpected string literal; expected '}'"),
            ("[tru]", " 5: syntax error while parsing value - invalid literal; last read: '[tru]'"),
            ("\"\\udc00\"", " 7: syntax error while parsing value - invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF; last read: '\"\\udc00'"),
            ("[1e+]", " 5: syntax error while parsing value - invalid number; expected digit after exponent sign; last read: '1e+]'"),
        ];
        for (input, expected) in cases {
            assert_eq!(err(input), format!("{pre}{expected}"), "{input}");
        }
        assert_eq!(
            err("1e400"),
            "[json.exception.out_of_range.406] number overflow parsing '1e400'"
        );
    }
}
