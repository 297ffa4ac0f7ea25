//! Builtins: regular expressions (`match`, `split`) with the semantics of
//! C++ Nix, which uses libstdc++'s `std::regex` in POSIX extended mode:
//!
//! - the syntax is POSIX ERE as libstdc++ reads it (backslash is literal in
//!   bracket expressions, escaping an ordinary character is an error,
//!   `a**` is `(a*)*`, `{` must start an interval, ...); [`translate`]
//!   rewrites it into the syntax of the `regex-automata` crate;
//! - matching works on bytes, `.` matches any byte including newline;
//! - a search finds the leftmost match and, among those starting there, the
//!   longest (POSIX), with the captures of the first path in Perl order
//!   that reaches that length (what libstdc++'s depth-first matcher
//!   reports);
//! - `split` iterates like `std::regex_iterator`: after an empty match the
//!   next search starts one byte further, after a non-empty one at its end.
//!
//! Compiled expressions are cached per pattern (like C++ Nix's regex cache).

use super::strings::expect_string_no_ctx;
use super::sync;
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{Args, BuiltinDef, NixString, Value};
use crate::vm::{type_error, EvalState};
use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::meta::Regex;
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::fmt::Write;
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[sync("match", 2, match_), sync("split", 2, split)];

// ---------------------------------------------------------------------------
// Translation from POSIX ERE (as libstdc++ reads it)

/// Why a pattern is rejected (C++ Nix reports all as "invalid regular expression").
#[derive(Debug)]
pub struct InvalidRegex;

/// Characters that a backslash may escape in POSIX extended syntax.
const ESCAPABLE: &[u8] = b".[\\()*+?{|^$";

/// A translated expression.
pub struct Translation {
    /// The pattern: POSIX group `n` is the named group `g<n>`; each loop
    /// (`*`, `+`, `{n,}`) around groups is wrapped in a named group `l<k>`.
    pub pattern: String,
    /// Number of POSIX groups.
    pub groups: usize,
    /// The loops around groups, innermost first.
    pub loops: Vec<Loop>,
}

/// A loop (`*`, `+`, `{n,}`) whose body contains groups. libstdc++ lets
/// such a loop run its body once more (up to twice) where it would stop
/// when the body can match the empty string there, which leaves the
/// groups that take part in that empty match empty at the loop's end.
pub struct Loop {
    /// The name of the group spanning the whole loop.
    pub name: String,
    /// The body's pattern.
    pub body: String,
    /// The POSIX groups inside the body.
    pub groups: std::ops::RangeInclusive<usize>,
}

/// Translates a POSIX extended regular expression into the syntax of the
/// `regex` crates (to be compiled without Unicode, so that it matches bytes).
pub fn translate(re: &[u8]) -> Result<Translation, InvalidRegex> {
    let mut p = Translator {
        re,
        pos: 0,
        out: String::with_capacity(re.len() * 2),
        groups: 0,
        loops: Vec::new(),
    };
    p.disjunction()?;
    if p.pos != re.len() {
        // An unmatched `)`, or a quantifier where an atom should be.
        return Err(InvalidRegex);
    }
    Ok(Translation {
        pattern: p.out,
        groups: p.groups,
        loops: p.loops,
    })
}

struct Translator<'a> {
    re: &'a [u8],
    pos: usize,
    out: String,
    groups: usize,
    loops: Vec<Loop>,
}

fn push_byte(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() || b == b'_' {
        out.push(b as char);
    } else {
        let _ = write!(out, "\\x{b:02X}");
    }
}

impl Translator<'_> {
    fn peek(&self) -> Option<u8> {
        self.re.get(self.pos).copied()
    }

    fn disjunction(&mut self) -> Result<(), InvalidRegex> {
        self.alternative()?;
        while self.peek() == Some(b'|') {
            self.pos += 1;
            self.out.push('|');
            self.alternative()?;
        }
        Ok(())
    }

    fn alternative(&mut self) -> Result<(), InvalidRegex> {
        loop {
            match self.peek() {
                None | Some(b'|') | Some(b')') => return Ok(()),
                Some(b'^') => {
                    self.pos += 1;
                    self.out.push('^');
                }
                Some(b'$') => {
                    self.pos += 1;
                    self.out.push('$');
                }
                Some(_) => {
                    let start = self.out.len();
                    let groups_before = self.groups;
                    if !self.atom()? {
                        // A quantifier (or `{`) with nothing to repeat.
                        return Ok(());
                    }
                    let mut quantified = false;
                    while let Some(q) = self.quantifier()? {
                        if quantified {
                            self.out.insert_str(start, "(?:");
                            self.out.push(')');
                        }
                        let is_loop = q == "*" || q == "+" || q.ends_with(",}");
                        if is_loop && self.groups > groups_before {
                            let name = format!("l{}", self.loops.len());
                            self.loops.push(Loop {
                                name: name.clone(),
                                body: self.out[start..].to_string(),
                                groups: groups_before + 1..=self.groups,
                            });
                            self.out.push_str(&q);
                            self.out.insert_str(start, &format!("(?P<{name}>"));
                            self.out.push(')');
                        } else {
                            self.out.push_str(&q);
                        }
                        quantified = true;
                    }
                }
            }
        }
    }

    /// Parses one atom into the output; false if none starts here.
    fn atom(&mut self) -> Result<bool, InvalidRegex> {
        let Some(c) = self.peek() else {
            return Ok(false);
        };
        match c {
            b'*' | b'+' | b'?' | b'{' => return Ok(false),
            b'.' => {
                self.pos += 1;
                self.out.push('.');
            }
            b'\\' => {
                let e = *self.re.get(self.pos + 1).ok_or(InvalidRegex)?;
                if !ESCAPABLE.contains(&e) {
                    return Err(InvalidRegex);
                }
                self.pos += 2;
                push_byte(&mut self.out, e);
            }
            b'(' => {
                self.pos += 1;
                self.groups += 1;
                let _ = write!(self.out, "(?P<g{}>", self.groups);
                self.disjunction()?;
                if self.peek() != Some(b')') {
                    return Err(InvalidRegex);
                }
                self.pos += 1;
                self.out.push(')');
            }
            b'[' => {
                self.pos += 1;
                self.bracket()?;
            }
            other => {
                self.pos += 1;
                push_byte(&mut self.out, other);
            }
        }
        Ok(true)
    }

    /// Parses a quantifier, returning its Rust spelling.
    fn quantifier(&mut self) -> Result<Option<String>, InvalidRegex> {
        let q = match self.peek() {
            Some(b'*') => "*".to_string(),
            Some(b'+') => "+".to_string(),
            Some(b'?') => "?".to_string(),
            Some(b'{') => {
                self.pos += 1;
                let min = self.number().ok_or(InvalidRegex)?;
                let q = if self.peek() == Some(b',') {
                    self.pos += 1;
                    match self.number() {
                        Some(max) if max < min => return Err(InvalidRegex),
                        Some(max) => format!("{{{min},{max}}}"),
                        None => format!("{{{min},}}"),
                    }
                } else {
                    format!("{{{min}}}")
                };
                if self.peek() != Some(b'}') {
                    return Err(InvalidRegex);
                }
                self.pos += 1;
                return Ok(Some(q));
            }
            _ => return Ok(None),
        };
        self.pos += 1;
        Ok(Some(q))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.re[start..self.pos])
            .ok()?
            .parse()
            .ok()
    }

    /// A bracket expression after its `[`, following libstdc++'s rules:
    /// `]` first is literal, `-` first or last is literal, a range must
    /// start and end with single characters, `[:class:]`, `[=c=]` and
    /// `[.c.]` are recognised, backslash is an ordinary character.
    fn bracket(&mut self) -> Result<(), InvalidRegex> {
        self.out.push('[');
        if self.peek() == Some(b'^') {
            self.pos += 1;
            self.out.push('^');
        }
        // The previous item; a single character is emitted late, as it
        // may turn out to start a range.
        let mut last = Last::None;
        // First item: `]` and `-` are literal there.
        if let Some(c @ (b']' | b'-')) = self.peek() {
            self.pos += 1;
            last = Last::Char(c);
        }
        loop {
            let c = self.peek().ok_or(InvalidRegex)?;
            if c == b']' {
                self.pos += 1;
                break;
            }
            if c == b'-' {
                self.pos += 1;
                if self.peek() == Some(b']') {
                    // `-]`: a literal dash at the end.
                    self.pos += 1;
                    last.flush(&mut self.out);
                    last = Last::Char(b'-');
                    break;
                }
                let Last::Char(lo) = last else {
                    // After a class or a range, a dash is an error.
                    return Err(InvalidRegex);
                };
                let hi = match self.peek() {
                    Some(b'-') => {
                        self.pos += 1;
                        b'-'
                    }
                    Some(b'[') if matches!(self.re.get(self.pos + 1), Some(b':' | b'=' | b'.')) => {
                        return Err(InvalidRegex)
                    }
                    Some(hi) => {
                        self.pos += 1;
                        hi
                    }
                    None => return Err(InvalidRegex),
                };
                if hi < lo {
                    return Err(InvalidRegex);
                }
                push_byte(&mut self.out, lo);
                self.out.push('-');
                push_byte(&mut self.out, hi);
                last = Last::None;
                continue;
            }
            last.flush(&mut self.out);
            last = match self.bracket_item()? {
                Item::Char(ch) => Last::Char(ch),
                Item::Class(class) => {
                    self.out.push_str(&class);
                    Last::Class
                }
            };
        }
        last.flush(&mut self.out);
        self.out.push(']');
        Ok(())
    }

    fn bracket_item(&mut self) -> Result<Item, InvalidRegex> {
        let c = self.peek().ok_or(InvalidRegex)?;
        self.pos += 1;
        if c != b'[' {
            return Ok(Item::Char(c));
        }
        let kind = match self.peek() {
            Some(k @ (b':' | b'=' | b'.')) => k,
            _ => return Ok(Item::Char(b'[')),
        };
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.re.get(self.pos..self.pos + 2) {
                None => return Err(InvalidRegex),
                Some([a, b']']) if *a == kind => break,
                Some(_) => self.pos += 1,
            }
        }
        let name = &self.re[start..self.pos];
        self.pos += 2;
        match kind {
            b':' => {
                let class = match name {
                    b"alnum" | b"alpha" | b"blank" | b"cntrl" | b"digit" | b"graph" | b"lower"
                    | b"print" | b"punct" | b"space" | b"upper" | b"xdigit" => {
                        std::str::from_utf8(name).map_err(|_| InvalidRegex)?
                    }
                    b"d" => "digit",
                    b"s" => "space",
                    b"w" => "word",
                    _ => return Err(InvalidRegex),
                };
                Ok(Item::Class(format!("[:{class}:]")))
            }
            // Equivalence classes and collating symbols of one character
            // are that character (in the C locale).
            _ => match name {
                [ch] => Ok(Item::Char(*ch)),
                _ => Err(InvalidRegex),
            },
        }
    }
}

enum Item {
    Char(u8),
    Class(String),
}

/// The previous item of a bracket expression.
#[derive(Clone, Copy)]
enum Last {
    None,
    Char(u8),
    Class,
}

impl Last {
    /// Emits a pending single character.
    fn flush(self, out: &mut String) {
        if let Last::Char(c) = self {
            push_byte(out, c);
        }
    }
}

// ---------------------------------------------------------------------------
// Compiled expressions

/// A compiled POSIX expression.
pub struct PosixRegex {
    /// Leftmost-first search with captures.
    search: Regex,
    /// The whole haystack must match (`match`).
    whole: Regex,
    /// The match must end at the end of the (truncated) haystack.
    to_end: Regex,
    /// Longest match end from an anchored start.
    longest: DFA,
    longest_cache: RefCell<DfaCache>,
    /// The capture index of each POSIX group (1, 2, ...).
    group_index: Vec<usize>,
    /// Loops around groups, innermost first.
    loops: Vec<CompiledLoop>,
}

struct CompiledLoop {
    /// Capture index of the group spanning the loop.
    index: usize,
    /// The body alone.
    body: Regex,
    /// POSIX group number and its capture index in `body`.
    groups: Vec<(usize, usize)>,
}

/// A match: its span and the span of each POSIX group that took part.
pub struct PosixMatch {
    /// Start of the whole match.
    pub start: usize,
    /// End of the whole match.
    pub end: usize,
    /// Group `i + 1`'s span.
    pub groups: Vec<Option<std::ops::Range<usize>>>,
}

fn syntax_config() -> syntax::Config {
    syntax::Config::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
}

fn build(pattern: &str) -> Result<Regex, InvalidRegex> {
    Regex::builder()
        .syntax(syntax_config())
        .configure(Regex::config().utf8_empty(false))
        .build(pattern)
        .map_err(|_| InvalidRegex)
}

fn group_index(re: &Regex, name: &str) -> Result<usize, InvalidRegex> {
    re.group_info()
        .to_index(regex_automata::PatternID::ZERO, name)
        .ok_or(InvalidRegex)
}

impl PosixRegex {
    /// Compiles a POSIX extended regular expression.
    pub fn new(re: &[u8]) -> Result<PosixRegex, InvalidRegex> {
        let t = translate(re)?;
        let p = &t.pattern;
        let search = build(p)?;
        let whole = build(&format!(r"\A(?:{p})\z"))?;
        let to_end = build(&format!(r"(?:{p})\z"))?;
        let longest = DFA::builder()
            .syntax(syntax_config())
            .configure(DFA::config().match_kind(MatchKind::All))
            .build(p)
            .map_err(|_| InvalidRegex)?;
        let longest_cache = RefCell::new(longest.create_cache());
        let indices = (1..=t.groups)
            .map(|g| group_index(&search, &format!("g{g}")))
            .collect::<Result<_, _>>()?;
        let mut loops = Vec::with_capacity(t.loops.len());
        for l in &t.loops {
            let body = build(&format!("(?:{})", l.body))?;
            let groups = l
                .groups
                .clone()
                .map(|g| Ok((g, group_index(&body, &format!("g{g}"))?)))
                .collect::<Result<_, InvalidRegex>>()?;
            loops.push(CompiledLoop {
                index: group_index(&search, &l.name)?,
                body,
                groups,
            });
        }
        Ok(PosixRegex {
            search,
            whole,
            to_end,
            longest,
            longest_cache,
            group_index: indices,
            loops,
        })
    }

    /// The POSIX view of a match found by one of the regexes.
    fn resolve(&self, hay: &[u8], caps: &Captures) -> Option<PosixMatch> {
        let m = caps.get_match()?;
        let mut groups: Vec<_> = self
            .group_index
            .iter()
            .map(|&i| caps.get_group(i).map(|s| s.range()))
            .collect();
        for l in &self.loops {
            let Some(span) = caps.get_group(l.index) else {
                continue;
            };
            let end = span.end;
            let mut body = l.body.create_captures();
            l.body.search_captures(
                &Input::new(hay).span(end..end).anchored(Anchored::Yes),
                &mut body,
            );
            if !body.is_match() {
                continue;
            }
            for &(g, i) in &l.groups {
                if body.get_group(i).is_some() {
                    groups[g - 1] = Some(end..end);
                }
            }
        }
        Some(PosixMatch {
            start: m.start(),
            end: m.end(),
            groups,
        })
    }

    /// `std::regex_match`: the match if the whole haystack matches.
    pub fn match_whole(&self, hay: &[u8]) -> Option<PosixMatch> {
        let mut caps = self.whole.create_captures();
        self.whole.search_captures(&Input::new(hay), &mut caps);
        self.resolve(hay, &caps)
    }

    /// The POSIX match starting the earliest at or after `from`: the
    /// longest one there, with its captures.
    pub fn search_from(&self, hay: &[u8], from: usize) -> Option<PosixMatch> {
        let mut caps = self.search.create_captures();
        self.search
            .search_captures(&Input::new(hay).range(from..), &mut caps);
        let m = caps.get_match()?;
        let longest = self
            .longest
            .try_search_fwd(
                &mut self.longest_cache.borrow_mut(),
                &Input::new(hay).range(m.start()..).anchored(Anchored::Yes),
            )
            .ok()
            .flatten()
            .map(|h| h.offset());
        if let Some(end) = longest.filter(|&e| e > m.end()) {
            let mut longer = self.to_end.create_captures();
            self.to_end.search_captures(
                &Input::new(&hay[..end])
                    .range(m.start()..)
                    .anchored(Anchored::Yes),
                &mut longer,
            );
            if longer.is_match() {
                return self.resolve(&hay[..end], &longer);
            }
        }
        self.resolve(hay, &caps)
    }
}

thread_local! {
    static CACHE: RefCell<FxHashMap<Box<[u8]>, Rc<PosixRegex>>> = RefCell::default();
}

/// Compiled expressions kept at most; the cache is emptied beyond.
const CACHE_MAX: usize = 4096;

/// The compiled form of a pattern, from the cache if it was seen before.
pub fn compile(re: &NixString) -> EvalResult<Rc<PosixRegex>> {
    if let Some(r) = CACHE.with(|c| c.borrow().get(re.as_bytes()).cloned()) {
        return Ok(r);
    }
    let compiled = Rc::new(
        PosixRegex::new(re.as_bytes())
            .map_err(|_| ErrorKind::other(format!("invalid regular expression '{re}'")))?,
    );
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(re.as_bytes().into(), compiled.clone());
    });
    Ok(compiled)
}

/// The groups of a match as Nix values: strings, or null if not taking part.
fn group_values(hay: &[u8], m: &PosixMatch) -> Vec<Value> {
    m.groups
        .iter()
        .map(|g| match g {
            Some(r) => Value::String(NixString::plain(&hay[r.clone()])),
            None => Value::Null,
        })
        .collect()
}

fn match_(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let re = compile(&expect_string_no_ctx(&args[0])?)?;
    let Value::String(s) = &args[1] else {
        return Err(type_error("string", &args[1]));
    };
    let hay = s.as_bytes();
    Ok(match re.match_whole(hay) {
        Some(m) => Value::list(group_values(hay, &m)),
        None => Value::Null,
    })
}

fn split(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let re = compile(&expect_string_no_ctx(&args[0])?)?;
    let Value::String(s) = &args[1] else {
        return Err(type_error("string", &args[1]));
    };
    let hay = s.as_bytes();
    let mut out = Vec::new();
    // Where the text before the next match begins, and where to search.
    let (mut prefix_start, mut from) = (0, 0);
    while from <= hay.len() {
        let Some(m) = re.search_from(hay, from) else {
            break;
        };
        out.push(Value::String(NixString::plain(&hay[prefix_start..m.start])));
        out.push(Value::list(group_values(hay, &m)));
        prefix_start = m.end;
        from = if m.start == m.end { m.end + 1 } else { m.end };
    }
    if out.is_empty() {
        return Ok(Value::list(vec![args[1].clone()]));
    }
    out.push(Value::String(NixString::plain(&hay[prefix_start..])));
    Ok(Value::list(out))
}

#[cfg(test)]
mod tests {
    use super::translate;
    use crate::eval::eval_strict_to_string as eval;
    use crate::eval::testing::ok;

    #[test]
    fn translation() {
        let t = |re: &[u8]| translate(re).unwrap().pattern;
        assert_eq!(t(b"a.b"), r"a.b");
        assert_eq!(t(br"[\.]"), r"[\x5C\x2E]");
        assert_eq!(t(b"[]a]"), r"[\x5Da]");
        assert_eq!(t(b"[a-]"), r"[a\x2D]");
        assert_eq!(t(b"[-a]"), r"[\x2Da]");
        assert_eq!(t(b"a**"), r"(?:a*)*");
        assert_eq!(t(b"[[:alpha:]]"), r"[[:alpha:]]");
        assert_eq!(t(b"(a)(b)?"), r"(?P<g1>a)(?P<g2>b)?");
        assert_eq!(t(b"(a)*"), r"(?P<l0>(?P<g1>a)*)");
        for bad in [
            &br"\d"[..],
            b"a{",
            b"*a",
            b"a{,3}",
            b"[[:alpha:]-z]",
            b"(a",
            b"a)",
            b"[a",
            b"a{3,1}",
        ] {
            assert!(translate(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn match_like_cpp_nix() {
        assert_eq!(ok(r#"builtins.match "a**" "aaa""#), "[ ]");
        assert_eq!(ok(r#"builtins.match "[\\.]" "\\""#), "[ ]");
        assert_eq!(
            ok(r#"builtins.match "(a|ab)(c|bcd)(d*)" "abcd""#),
            r#"[ "a" "bcd" "" ]"#
        );
        assert_eq!(ok(r#"builtins.match "x{2}" "xx""#), "[ ]");
        assert_eq!(ok(r#"builtins.match "[]a]" "]""#), "[ ]");
        assert_eq!(ok(r#"builtins.match "é" "é""#), "[ ]");
        assert_eq!(ok(r#"builtins.match "(.)" "é""#), "null");
        assert_eq!(ok(r#"builtins.match "a|" """#), "[ ]");
        assert_eq!(ok(r#"builtins.match "()" """#), r#"[ "" ]"#);
        assert_eq!(ok(r#"builtins.match "(a)|b" "b""#), "[ null ]");
        assert_eq!(ok(r#"builtins.match "a.b" "a\nb""#), "[ ]");
        // libstdc++ runs a loop body that can match empty once more at the end.
        assert_eq!(ok(r#"builtins.match "(a*)*" "aa""#), r#"[ "" ]"#);
        assert_eq!(ok(r#"builtins.match "(x?)*y" "xxy""#), r#"[ "" ]"#);
        assert_eq!(ok(r#"builtins.match "(a|)+" "aa""#), r#"[ "" ]"#);
        assert_eq!(ok(r#"builtins.match "((a)|b*)*" "ab""#), r#"[ "" "a" ]"#);
        assert_eq!(ok(r#"builtins.match "(a)*" "aa""#), r#"[ "a" ]"#);
        assert!(eval(r#"builtins.match "\\d" "d""#)
            .unwrap_err()
            .contains("invalid regular expression '\\d'"));
    }

    #[test]
    fn split_like_cpp_nix() {
        assert_eq!(
            ok(r#"builtins.split "a*" "baaab""#),
            r#"[ "" [ ] "b" [ ] "" [ ] "b" [ ] "" ]"#
        );
        assert_eq!(
            ok(r#"builtins.split "(a)|b" "xaybz""#),
            r#"[ "x" [ "a" ] "y" [ null ] "z" ]"#
        );
        assert_eq!(
            ok(r#"builtins.split "" "abc""#),
            r#"[ "" [ ] "a" [ ] "b" [ ] "c" [ ] "" ]"#
        );
        assert_eq!(
            ok(r#"builtins.split "(a)|(b)" "ab""#),
            r#"[ "" [ "a" null ] "" [ null "b" ] "" ]"#
        );
        // POSIX: the longest alternative wins, not the first.
        assert_eq!(
            ok(r#"builtins.split "(a|ab)" "xabx""#),
            r#"[ "x" [ "ab" ] "x" ]"#
        );
        assert_eq!(ok(r#"builtins.split "," "abc""#), r#"[ "abc" ]"#);
        assert_eq!(
            ok(r#"builtins.split "(a*)+" "aab""#),
            r#"[ "" [ "" ] "" [ "" ] "b" [ "" ] "" ]"#
        );
    }
}
