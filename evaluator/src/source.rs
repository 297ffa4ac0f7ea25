//! Source files and spans.
//!
//! Every file (or `-E` expression) the evaluator reads is appended to one
//! global offset space, so a [`Span`] is just two `u32`s and still knows which
//! file it belongs to. Line and column are computed only when an error is
//! printed.
//!
//! A file's text is needed to compile it; after that, only to show a
//! position. So once a file is compiled (or loaded from the compiled-file
//! cache) its text can be released ([`SourceMap::release_text`]): the file
//! keeps its line table, which is all a line and column need when the text
//! is ASCII (a column is then a byte count), and an error's snippet reads
//! the file again through the evaluation's I/O, as C++ Nix does, showing it
//! only if it is still the text that was compiled. Texts were 29 MB of the
//! 700 MB that forcing every nixpkgs attribute keeps.

use crate::io::{Digest, EvalIO};
use rustc_hash::FxBuildHasher;
use std::cell::{Cell, OnceCell, RefCell};
use std::hash::BuildHasher;
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

/// [`decode_source`] into the shared text a [`SourceFile`] holds, copying
/// valid UTF-8 (nearly every file) once instead of twice.
pub fn decode_source_shared(bytes: &[u8]) -> Rc<str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Rc::from(s),
        Err(_) => decode_source(bytes).into(),
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
    /// Global offset of the first byte.
    pub base: u32,
    /// The text's length in bytes.
    len: u32,
    /// The text, until it is released.
    text: RefCell<Option<Rc<str>>>,
    /// A hash of the released text, to recognise it when read again.
    released: Cell<Option<u64>>,
    /// The SHA-256 of the bytes the text was decoded from, when the
    /// reader had it at hand (see [`crate::io::EvalIO::read_file_hashed`]):
    /// it stands for the text in the compiled-file cache's key.
    digest: Option<Digest>,
    /// Offset of each line's first byte, computed when a position in the
    /// file is first asked for (most files loaded, from the compiled-file
    /// cache above all, never are), or when its text is released.
    line_starts: OnceCell<Box<[u32]>>,
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

/// How a file's bytes become the text registered for it (the loader's
/// decoding), for reading a released text again.
pub type DecodeText = fn(&[u8]) -> Rc<str>;

/// All sources of one evaluation.
#[derive(Default)]
pub struct SourceMap {
    files: RefCell<Vec<Rc<SourceFile>>>,
    /// Where released texts are read again, and how a file's bytes become
    /// its text; without it none is released.
    reader: Option<(Rc<dyn EvalIO>, DecodeText)>,
}

impl std::fmt::Debug for SourceMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMap")
            .field("files", &self.files.borrow().len())
            .finish()
    }
}

impl SourceMap {
    /// A map whose files' texts may be released once compiled, and read
    /// again through `io` (the evaluation's) when a snippet needs them;
    /// `decode` turns a file's bytes into the text as it was registered
    /// (the loader's decoding).
    pub fn with_reader(io: Rc<dyn EvalIO>, decode: DecodeText) -> Self {
        SourceMap {
            files: RefCell::default(),
            reader: Some((io, decode)),
        }
    }

    /// Registers a source text and returns it with its global base offset.
    pub fn add(&self, name: String, path: Option<PathBuf>, text: Rc<str>) -> Rc<SourceFile> {
        self.add_read(name, path, text, None)
    }

    /// [`SourceMap::add`] of a text decoded from bytes whose SHA-256 is
    /// `digest`.
    pub fn add_read(
        &self,
        name: String,
        path: Option<PathBuf>,
        text: Rc<str>,
        digest: Option<Digest>,
    ) -> Rc<SourceFile> {
        let mut files = self.files.borrow_mut();
        let base = files.last().map(|f| f.base + f.len + 1).unwrap_or(1);
        let file = Rc::new(SourceFile {
            name,
            path,
            base,
            len: text.len() as u32,
            text: RefCell::new(Some(text)),
            released: Cell::new(None),
            digest,
            line_starts: OnceCell::new(),
        });
        files.push(file.clone());
        file
    }

    /// Lets go of a compiled file's text if it can be had again: the file
    /// is on disk, this map has a reader, and the text is ASCII (so the
    /// line table alone gives columns).
    pub fn release_text(&self, file: &SourceFile) {
        if self.reader.is_none() || file.path.is_none() {
            return;
        }
        let Some(text) = file.text() else {
            return;
        };
        if !text.is_ascii() {
            return;
        }
        file.line_starts();
        file.released.set(Some(text_hash(&text)));
        *file.text.borrow_mut() = None;
    }

    /// A file's text: the one it holds, or a released one read again if
    /// the file still has it.
    pub fn text(&self, file: &SourceFile) -> Option<Rc<str>> {
        if let Some(text) = file.text() {
            return Some(text);
        }
        let ((io, decode), path, hash) = (
            self.reader.as_ref()?,
            file.path.as_ref()?,
            file.released.get()?,
        );
        let text = decode(&io.read_file(path).ok()?);
        (text.len() == file.len as usize && text_hash(&text) == hash).then_some(text)
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
        let text = self.text(&file)?;
        let get_line = |l: usize| -> Option<&str> {
            let start = *file.line_starts().get(l - 1)? as usize;
            let end = file
                .line_starts()
                .get(l)
                .map(|e| *e as usize - 1)
                .unwrap_or(text.len());
            text.get(start..end)
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

/// The hash that recognises a released text read again.
fn text_hash(text: &str) -> u64 {
    FxBuildHasher.hash_one(text)
}

impl SourceFile {
    /// The text's length in bytes.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// The SHA-256 of the bytes the text was decoded from, if known.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The text, unless it was released ([`SourceMap::text`] reads a
    /// released one again). Compiling happens before any release.
    pub fn text(&self) -> Option<Rc<str>> {
        self.text.borrow().clone()
    }

    fn line_starts(&self) -> &[u32] {
        self.line_starts.get_or_init(|| {
            let text = self.text().unwrap_or_default();
            let mut starts = vec![0u32];
            starts.extend(
                text.bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i as u32 + 1),
            );
            starts.into_boxed_slice()
        })
    }

    /// 1-based line and column of a file-local byte offset. A column counts
    /// characters; a released text was ASCII, so its bytes.
    pub fn line_col(&self, local: u32) -> (usize, usize) {
        let starts = self.line_starts();
        let line_idx = starts.partition_point(|s| *s <= local) - 1;
        let line_start = starts[line_idx] as usize;
        let col = match self.text() {
            Some(text) => text
                .get(line_start..local as usize)
                .map(|s| s.chars().count())
                .unwrap_or(0),
            None => (local as usize).saturating_sub(line_start),
        };
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

#[cfg(test)]
mod release_tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Rc<str> {
        decode_source(bytes).into()
    }

    #[test]
    fn a_released_text_gives_the_same_positions_and_is_read_again_while_unchanged() {
        let dir = std::env::temp_dir().join(format!("attrfs-release-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.nix");
        let text = "{\n  a = 1;\n\tb = x;\n}\n";
        std::fs::write(&path, text).unwrap();
        let map = SourceMap::with_reader(Rc::new(crate::io::StdIO), decode);
        let f = map.add("f.nix".into(), Some(path.clone()), text.into());
        let span = Span::new(f.base + 16, f.base + 17); // the `x`
        let (position, snippet) = (map.position(span), map.snippet(span));
        map.release_text(&f);
        assert!(f.text().is_none());
        assert_eq!(map.position(span), position);
        assert_eq!(map.snippet(span), snippet);
        assert!(snippet.unwrap().contains("b = x;"));
        // Edited since: the position stays, the snippet of other text does not show.
        std::fs::write(&path, "{\n  a = 1;\n\tb = y;\n}\n").unwrap();
        assert_eq!(map.position(span), position);
        assert_eq!(map.snippet(span), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn texts_that_cannot_be_had_again_are_kept() {
        let dir = std::env::temp_dir().join(format!("attrfs-keep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.nix");
        std::fs::write(&path, "\"é\"").unwrap();
        let map = SourceMap::with_reader(Rc::new(crate::io::StdIO), decode);
        // Not ASCII: a column counts characters, which needs the text.
        let f = map.add("f.nix".into(), Some(path.clone()), "\"é\"".into());
        map.release_text(&f);
        assert!(f.text().is_some());
        // Not a file.
        let e = map.add("«string»".into(), None, "1".into());
        map.release_text(&e);
        assert!(e.text().is_some());
        // No reader.
        let bare = SourceMap::default();
        let g = bare.add("f.nix".into(), Some(path), "1".into());
        bare.release_text(&g);
        assert!(g.text().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
