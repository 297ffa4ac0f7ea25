//! Source files and spans.
//!
//! Every file (or `-E` expression) the evaluator reads is appended to one
//! global offset space, so a [`Span`] is just two `u32`s and still knows which
//! file it belongs to. Line and column are computed only when an error is
//! printed.

use std::cell::{OnceCell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;

/// First code point of the private-use range that stands for raw bytes
/// 0x80..=0xFF which are not valid UTF-8 in a source file (rnix needs
/// `&str`; Nix strings are bytes).
const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// Source bytes as text for the parser: invalid UTF-8 bytes become
/// private-use code points that [`literal_bytes`] turns back into bytes.
pub fn decode_source(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() + 16);
            let mut rest = bytes;
            loop {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        out.push_str(s);
                        break;
                    }
                    Err(e) => {
                        let (good, bad) = rest.split_at(e.valid_up_to());
                        out.push_str(std::str::from_utf8(good).unwrap_or_default());
                        let n = e.error_len().unwrap_or(bad.len()).max(1);
                        for b in &bad[..n] {
                            out.push(
                                char::from_u32(RAW_BYTE_BASE + *b as u32).unwrap_or('\u{FFFD}'),
                            );
                        }
                        rest = &bad[n..];
                    }
                }
            }
            out
        }
    }
}

/// The bytes of a string literal's text, undoing [`decode_source`].
pub fn literal_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let u = c as u32;
        if (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xFF).contains(&u) {
            out.push((u - RAW_BYTE_BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

/// A byte range in the global offset space of a [`SourceMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte (global offset).
    pub start: u32,
    /// One past the last byte (global offset).
    pub end: u32,
}

impl Span {
    /// A span covering `start..end`.
    pub fn new(start: u32, end: u32) -> Self {
        Span { start, end }
    }
}

/// One source text registered in the map.
#[derive(Debug)]
pub struct SourceFile {
    /// Name as shown in errors: a path, or `«string»` for `-E`.
    pub name: String,
    /// The file's path, if it is a real file (relative paths resolve against its directory).
    pub path: Option<PathBuf>,
    /// The text.
    pub text: Rc<str>,
    /// Global offset of the first byte.
    pub base: u32,
    /// Offset of each line's first byte, computed when a position in the
    /// file is first asked for: most files loaded (from the compiled-file
    /// cache, above all) never are.
    line_starts: OnceCell<Vec<u32>>,
}

/// A resolved position: file name, 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// File name as shown to users.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// All sources of one evaluation.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: RefCell<Vec<Rc<SourceFile>>>,
}

impl SourceMap {
    /// Registers a source text and returns it with its global base offset.
    pub fn add(&self, name: String, path: Option<PathBuf>, text: Rc<str>) -> Rc<SourceFile> {
        let mut files = self.files.borrow_mut();
        let base = files
            .last()
            .map(|f| f.base + f.text.len() as u32 + 1)
            .unwrap_or(1);
        let file = Rc::new(SourceFile {
            name,
            path,
            text,
            base,
            line_starts: OnceCell::new(),
        });
        files.push(file.clone());
        file
    }

    /// The file containing a global offset.
    pub fn file_of(&self, offset: u32) -> Option<Rc<SourceFile>> {
        let files = self.files.borrow();
        let idx = files.partition_point(|f| f.base <= offset);
        if idx == 0 {
            return None;
        }
        Some(files[idx - 1].clone())
    }

    /// Line/column of the start of a span.
    pub fn position(&self, span: Span) -> Option<Position> {
        let file = self.file_of(span.start)?;
        let (line, column) = file.line_col(span.start - file.base);
        Some(Position {
            file: file.name.clone(),
            line,
            column,
        })
    }

    /// A caret snippet in the style of C++ Nix:
    /// ```text
    ///             1| let x = x; in x
    ///              |               ^
    /// ```
    pub fn snippet(&self, span: Span) -> Option<String> {
        let file = self.file_of(span.start)?;
        let local = span.start - file.base;
        let (line, column) = file.line_col(local);
        let mut out = String::new();
        let width = (line + 1).to_string().len();
        let get_line = |l: usize| -> Option<&str> {
            let start = *file.line_starts().get(l - 1)? as usize;
            let end = file
                .line_starts()
                .get(l)
                .map(|e| *e as usize - 1)
                .unwrap_or(file.text.len());
            file.text.get(start..end)
        };
        if line > 1 {
            if let Some(prev) = get_line(line - 1) {
                out.push_str(&format!("{:>w$}| {}\n", line - 1, prev, w = width + 12));
            }
        }
        let text = get_line(line)?;
        out.push_str(&format!("{:>w$}| {}\n", line, text, w = width + 12));
        let caret_pad: String = text
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!("{:>w$}| {}^\n", "", caret_pad, w = width + 12));
        if let Some(next) = get_line(line + 1) {
            out.push_str(&format!("{:>w$}| {}\n", line + 1, next, w = width + 12));
        }
        Some(out)
    }
}

impl SourceFile {
    fn line_starts(&self) -> &[u32] {
        self.line_starts.get_or_init(|| {
            let mut starts = vec![0u32];
            starts.extend(
                self.text
                    .bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i as u32 + 1),
            );
            starts
        })
    }

    /// 1-based line and column of a file-local byte offset.
    pub fn line_col(&self, local: u32) -> (usize, usize) {
        let starts = self.line_starts();
        let line_idx = starts.partition_point(|s| *s <= local) - 1;
        let line_start = starts[line_idx] as usize;
        let col = self
            .text
            .get(line_start..local as usize)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        (line_idx + 1, col + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_across_files() {
        let map = SourceMap::default();
        let a = map.add("a.nix".into(), None, "x\nyz".into());
        let b = map.add("b.nix".into(), None, "hello".into());
        let p = map.position(Span::new(a.base + 3, a.base + 4)).unwrap();
        assert_eq!((p.file.as_str(), p.line, p.column), ("a.nix", 2, 2));
        let p = map.position(Span::new(b.base + 1, b.base + 2)).unwrap();
        assert_eq!((p.file.as_str(), p.line, p.column), ("b.nix", 1, 2));
    }
}
