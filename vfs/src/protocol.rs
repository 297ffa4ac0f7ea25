//! The evaluation boundary on the wire: how requests and rendered answers
//! travel between the mount daemon and an evaluator worker process.
//!
//! Frames are a little-endian `u32` length followed by that many bytes.
//! The conversation is strictly request/answer, one at a time:
//!
//! 1. daemon → worker: one frame of opaque start-up bytes (what to
//!    evaluate; the worker side defines their format);
//! 2. worker → daemon: a [`Hello`]: the root evaluated, or why not;
//! 3. then, repeatedly, a [`Request`] and its [`Answer`].
//!
//! An interrupt travels out of band: the daemon sends the worker
//! [`INTERRUPT_SIGNAL`], whose handler only sets the evaluator's interrupt
//! flag. The request being evaluated then fails with
//! [`NodeError::Interrupted`], and so does every request after it (without
//! work) until the worker reads [`Request::Resume`], which the daemon sends
//! after the signal: the worker clears its flag and answers with a resumed
//! frame ([`encode_resumed`]), so the daemon knows every answer before it
//! belongs to the interrupted batch.
//!
//! Before its hello and before any answer, the worker may send one inputs
//! frame ([`encode_inputs`]): the inputs its evaluator recorded since the
//! previous one (see [`crate::inputs`]). Its first byte,
//! [`INPUTS_FRAME`], is no hello's or answer's tag, so a reader tells it
//! apart with [`decode_inputs`] before decoding what it expected.
//!
//! Everything is plain data from [`crate::node`] and
//! [`crate::backend`], so this module knows nothing of evaluators. The
//! encoding is hand-written because it is small and both ends are this
//! crate: a decoding error means a broken or foreign peer and is reported
//! as such, never a panic.

use std::io::{self, Read, Write};
use std::time::Duration;

use crate::backend::{NodeError, Stat};
use crate::inputs::{Input, InputKind};
use crate::node::{AttrPath, DirEntry, Node, NodeKind, Segment, XattrList};

/// The longest frame either side accepts: a file's contents travel in one
/// frame, and nothing a mount serves is larger.
pub const MAX_FRAME: usize = 1 << 30;

/// What the daemon asks of a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// [`crate::Backend::stat`].
    Stat(AttrPath),
    /// [`crate::Backend::list`].
    List(AttrPath),
    /// [`crate::Backend::read`].
    Read(AttrPath),
    /// [`crate::Backend::xattrs`].
    Xattrs(AttrPath),
    /// [`crate::Backend::list_plus`] with this count: answered by an
    /// [`Answer::List`] (or an error) and, after a listing, one
    /// [`Answer::Stat`] (or error) for each of the first `count` entries.
    ListPlus(AttrPath, usize),
    /// Sent after [`INTERRUPT_SIGNAL`], with the number of such signals
    /// sent to this worker so far: once that many have landed, clear the
    /// interrupt flag and answer with a resumed frame ([`encode_resumed`]).
    /// The count lets the worker tell a signal that lands late (after its
    /// resume) from a new interrupt.
    Resume(u64),
}

/// The signal by which the daemon interrupts a worker's evaluation without
/// ending it (see the module documentation).
pub const INTERRUPT_SIGNAL: i32 = libc::SIGUSR1;

/// A worker's answer to a [`Request`] (of the matching kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// To [`Request::Stat`].
    Stat(Stat),
    /// To [`Request::List`].
    List(Vec<DirEntry>),
    /// To [`Request::Read`].
    Read(Vec<u8>),
    /// To [`Request::Xattrs`].
    Xattrs(XattrList),
}

/// The worker's first word: `Ok` once the root is evaluated, or the error
/// that keeps it from being mounted (a syntax error, a root that throws).
pub type Hello = Result<(), String>;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The pipe failed or closed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The bytes are not a frame of this protocol.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

/// Writes one frame and flushes it to the peer.
pub fn write_frame(out: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    put_frame(out, payload)?;
    out.flush()
}

/// Writes one frame into `out` without flushing: for a writer that sends
/// several frames in one write (the caller flushes).
pub fn put_frame(out: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(payload)
}

/// Reads one frame; `Ok(None)` at a clean end of the stream.
pub fn read_frame(input: &mut impl Read) -> Result<Option<Vec<u8>>, WireError> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(WireError::Malformed("frame too large"));
    }
    let mut payload = vec![0; len];
    input.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// Appends values to a frame being built.
#[derive(Default)]
pub struct Encoder(Vec<u8>);

impl Encoder {
    /// An empty frame.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// The finished frame.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }

    /// A byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    /// A `u64`, little-endian.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A Boolean.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u64(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// An optional byte string.
    pub fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(b) => self.u8(1).bytes(b),
            None => self.u8(0),
        }
    }

    fn segment(&mut self, s: &Segment) -> &mut Self {
        match s {
            Segment::Name(n) => self.u8(0).bytes(n),
            Segment::Drv => self.u8(1),
            Segment::Context => self.u8(2),
        }
    }

    fn path(&mut self, p: &AttrPath) -> &mut Self {
        let segments = p.segments();
        self.u64(segments.len() as u64);
        for s in segments {
            self.segment(s);
        }
        self
    }

    fn kind(&mut self, k: Option<NodeKind>) -> &mut Self {
        self.u8(match k {
            None => 0,
            Some(NodeKind::Directory) => 1,
            Some(NodeKind::File) => 2,
            Some(NodeKind::Symlink) => 3,
        })
    }

    fn xattrs(&mut self, x: &XattrList) -> &mut Self {
        self.u64(x.len() as u64);
        for (name, value) in x {
            self.str(name).bytes(value);
        }
        self
    }

    fn node(&mut self, n: &Node) -> &mut Self {
        self.kind(Some(n.kind))
            .u64(n.size)
            .opt_bytes(n.target.as_deref())
            .str(&n.nix_type)
            .xattrs(&n.xattrs)
            .opt_bytes(n.error.as_deref().map(str::as_bytes))
    }

    fn node_error(&mut self, e: &NodeError) -> &mut Self {
        match e {
            NodeError::NotFound => self.u8(0),
            NodeError::NotADirectory => self.u8(1),
            NodeError::NotAFile => self.u8(2),
            NodeError::EvalFailed(m) => self.u8(3).str(m),
            NodeError::Interrupted => self.u8(4),
            NodeError::TimedOut(d) => self.u8(5).u64(d.as_millis() as u64),
            NodeError::Unavailable(m) => self.u8(6).str(m),
        }
    }
}

/// Reads values back, in the order they were encoded.
pub struct Decoder<'a>(&'a [u8]);

impl<'a> Decoder<'a> {
    /// Reads from `frame`.
    pub fn new(frame: &'a [u8]) -> Self {
        Decoder(frame)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Malformed("frame ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// Fails unless every byte was read.
    pub fn end(&self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed("trailing bytes"))
        }
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    /// A `u64`.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A Boolean.
    pub fn bool(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Malformed("bad Boolean")),
        }
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<Vec<u8>, WireError> {
        let len = usize::try_from(self.u64()?).map_err(|_| WireError::Malformed("bad length"))?;
        Ok(self.take(len)?.to_vec())
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<String, WireError> {
        String::from_utf8(self.bytes()?).map_err(|_| WireError::Malformed("string is not UTF-8"))
    }

    /// An optional byte string.
    pub fn opt_bytes(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.bytes().map(Some),
            _ => Err(WireError::Malformed("bad option tag")),
        }
    }

    /// A count of items to follow, bounded by what the frame can hold.
    fn count(&mut self) -> Result<usize, WireError> {
        let n = usize::try_from(self.u64()?).map_err(|_| WireError::Malformed("bad count"))?;
        if n > self.0.len() {
            return Err(WireError::Malformed("count larger than the frame"));
        }
        Ok(n)
    }

    fn segment(&mut self) -> Result<Segment, WireError> {
        match self.u8()? {
            0 => Ok(Segment::Name(self.bytes()?.into())),
            1 => Ok(Segment::Drv),
            2 => Ok(Segment::Context),
            _ => Err(WireError::Malformed("bad segment tag")),
        }
    }

    fn path(&mut self) -> Result<AttrPath, WireError> {
        let n = self.count()?;
        let mut path = AttrPath::root();
        for _ in 0..n {
            path = path.child(self.segment()?);
        }
        Ok(path)
    }

    fn kind(&mut self) -> Result<Option<NodeKind>, WireError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(NodeKind::Directory)),
            2 => Ok(Some(NodeKind::File)),
            3 => Ok(Some(NodeKind::Symlink)),
            _ => Err(WireError::Malformed("bad node kind")),
        }
    }

    fn xattrs(&mut self) -> Result<XattrList, WireError> {
        let n = self.count()?;
        (0..n).map(|_| Ok((self.str()?, self.bytes()?))).collect()
    }

    fn node(&mut self) -> Result<Node, WireError> {
        let kind = self
            .kind()?
            .ok_or(WireError::Malformed("node without kind"))?;
        let size = self.u64()?;
        let target = self.opt_bytes()?;
        let nix_type = self.str()?;
        let xattrs = self.xattrs()?;
        let error = self
            .opt_bytes()?
            .map(String::from_utf8)
            .transpose()
            .map_err(|_| WireError::Malformed("error is not UTF-8"))?;
        Ok(Node {
            kind,
            size,
            target,
            nix_type: Node::type_name(nix_type),
            xattrs,
            error,
        })
    }

    fn node_error(&mut self) -> Result<NodeError, WireError> {
        Ok(match self.u8()? {
            0 => NodeError::NotFound,
            1 => NodeError::NotADirectory,
            2 => NodeError::NotAFile,
            3 => NodeError::EvalFailed(self.str()?),
            4 => NodeError::Interrupted,
            5 => NodeError::TimedOut(Duration::from_millis(self.u64()?)),
            6 => NodeError::Unavailable(self.str()?),
            _ => return Err(WireError::Malformed("bad error tag")),
        })
    }
}

impl Request {
    /// The request as a frame.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, path) = match self {
            Request::Resume(sent) => {
                let mut e = Encoder::new();
                e.u8(RESUME_TAG).u64(*sent);
                return e.finish();
            }
            Request::Stat(p) => (0, p),
            Request::List(p) => (1, p),
            Request::Read(p) => (2, p),
            Request::Xattrs(p) => (3, p),
            Request::ListPlus(p, _) => (4, p),
        };
        let mut e = Encoder::new();
        e.u8(tag).path(path);
        if let Request::ListPlus(_, count) = self {
            e.u64(*count as u64);
        }
        e.finish()
    }

    /// A request from a frame.
    pub fn decode(frame: &[u8]) -> Result<Self, WireError> {
        let mut d = Decoder::new(frame);
        let tag = d.u8()?;
        if tag == RESUME_TAG {
            let sent = d.u64()?;
            d.end()?;
            return Ok(Request::Resume(sent));
        }
        let path = d.path()?;
        let request = match tag {
            0 => Request::Stat(path),
            1 => Request::List(path),
            2 => Request::Read(path),
            3 => Request::Xattrs(path),
            4 => {
                let count =
                    usize::try_from(d.u64()?).map_err(|_| WireError::Malformed("bad count"))?;
                Request::ListPlus(path, count)
            }
            _ => return Err(WireError::Malformed("bad request tag")),
        };
        d.end()?;
        Ok(request)
    }
}

/// The tag of [`Request::Resume`], which carries no path.
const RESUME_TAG: u8 = 5;

/// An answer (or the error a backend gave) as a frame.
pub fn encode_answer(answer: &Result<Answer, NodeError>) -> Vec<u8> {
    let mut e = Encoder::new();
    match answer {
        Err(err) => {
            e.u8(0).node_error(err);
        }
        Ok(Answer::Stat(stat)) => {
            e.u8(1).node(&stat.node).opt_bytes(stat.contents.as_deref());
        }
        Ok(Answer::List(entries)) => {
            e.u8(2).u64(entries.len() as u64);
            for entry in entries {
                e.segment(&entry.name).kind(entry.kind);
            }
        }
        Ok(Answer::Read(bytes)) => {
            e.u8(3).bytes(bytes);
        }
        Ok(Answer::Xattrs(xattrs)) => {
            e.u8(4).xattrs(xattrs);
        }
    }
    e.finish()
}

/// An answer from a frame.
pub fn decode_answer(frame: &[u8]) -> Result<Result<Answer, NodeError>, WireError> {
    let mut d = Decoder::new(frame);
    let answer = match d.u8()? {
        0 => Err(d.node_error()?),
        1 => {
            let node = d.node()?;
            let contents = d.opt_bytes()?;
            Ok(Answer::Stat(Stat { node, contents }))
        }
        2 => {
            let n = d.count()?;
            let entries = (0..n)
                .map(|_| {
                    Ok(DirEntry {
                        name: d.segment()?,
                        kind: d.kind()?,
                    })
                })
                .collect::<Result<_, WireError>>()?;
            Ok(Answer::List(entries))
        }
        3 => Ok(Answer::Read(d.bytes()?)),
        4 => Ok(Answer::Xattrs(d.xattrs()?)),
        _ => return Err(WireError::Malformed("bad answer tag")),
    };
    d.end()?;
    Ok(answer)
}

/// The first byte of an inputs frame (no hello or answer starts so).
pub const INPUTS_FRAME: u8 = 0xFF;

/// An inputs frame: inputs recorded since the previous one.
pub fn encode_inputs(inputs: &[Input]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.u8(INPUTS_FRAME).u64(inputs.len() as u64);
    for input in inputs {
        e.u8(input.kind.code())
            .str(&input.name)
            .str(&input.fingerprint);
    }
    e.finish()
}

/// The inputs of an inputs frame, or `None` if `frame` is another frame.
pub fn decode_inputs(frame: &[u8]) -> Result<Option<Vec<Input>>, WireError> {
    if frame.first() != Some(&INPUTS_FRAME) {
        return Ok(None);
    }
    let mut d = Decoder::new(&frame[1..]);
    let n = d.count()?;
    let inputs = (0..n)
        .map(|_| {
            let kind =
                InputKind::from_code(d.u8()?).ok_or(WireError::Malformed("bad input kind"))?;
            Ok(Input {
                kind,
                name: d.str()?,
                fingerprint: d.str()?,
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    d.end()?;
    Ok(Some(inputs))
}

/// The first byte of a resumed frame (no hello, answer or inputs frame
/// starts so).
pub const RESUMED_FRAME: u8 = 0xFE;

/// The worker's answer to [`Request::Resume`]: its interrupt flag is
/// clear, and every answer to the requests before it has been sent.
pub fn encode_resumed() -> Vec<u8> {
    vec![RESUMED_FRAME]
}

/// Whether `frame` is a resumed frame.
pub fn is_resumed(frame: &[u8]) -> bool {
    frame == [RESUMED_FRAME]
}

/// The worker's hello as a frame.
pub fn encode_hello(hello: &Hello) -> Vec<u8> {
    let mut e = Encoder::new();
    match hello {
        Ok(()) => e.u8(0),
        Err(message) => e.u8(1).str(message),
    };
    e.finish()
}

/// The worker's hello from a frame.
pub fn decode_hello(frame: &[u8]) -> Result<Hello, WireError> {
    let mut d = Decoder::new(frame);
    let hello = match d.u8()? {
        0 => Ok(()),
        1 => Err(d.str()?),
        _ => return Err(WireError::Malformed("bad hello tag")),
    };
    d.end()?;
    Ok(hello)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xattr;

    fn path() -> AttrPath {
        AttrPath::root()
            .child(Segment::name("a/b"))
            .child(Segment::name(""))
            .child(Segment::Drv)
    }

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Stat(path()),
            Request::List(AttrPath::root()),
            Request::Read(path()),
            Request::Xattrs(path()),
            Request::ListPlus(path(), 64),
            Request::Resume(3),
        ] {
            assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn answers_round_trip() {
        let answers = vec![
            Ok(Answer::Stat(Stat::file("string", b"hi\n".to_vec()))),
            Ok(Answer::Stat(Node::symlink("path", "/etc").into())),
            Ok(Answer::Stat(Node::failed("boom").into())),
            Ok(Answer::List(vec![
                DirEntry::new(Segment::name("x")),
                DirEntry::with_kind(Segment::Context, NodeKind::File),
            ])),
            Ok(Answer::Read(vec![0, 255, 10])),
            Ok(Answer::Xattrs(
                Node::directory("derivation")
                    .with_xattr(xattr::DRV_PATH, "/nix/store/x.drv")
                    .into_xattrs(),
            )),
            Err(NodeError::EvalFailed("error: no".into())),
            Err(NodeError::TimedOut(Duration::from_millis(1500))),
            Err(NodeError::NotFound),
        ];
        for a in answers {
            assert_eq!(decode_answer(&encode_answer(&a)).unwrap(), a);
        }
        for h in [Ok(()), Err("syntax error".to_owned())] {
            assert_eq!(decode_hello(&encode_hello(&h)).unwrap(), h);
            assert_eq!(decode_inputs(&encode_hello(&h)).unwrap(), None);
        }
    }

    #[test]
    fn inputs_frames_round_trip_and_are_told_apart() {
        let inputs = vec![
            Input {
                kind: InputKind::File,
                name: "/home/u/more.nix".into(),
                fingerprint: "sha256:00".into(),
            },
            Input {
                kind: InputKind::Impure,
                name: "builtins.currentTime".into(),
                fingerprint: String::new(),
            },
        ];
        let frame = encode_inputs(&inputs);
        assert_eq!(decode_inputs(&frame).unwrap(), Some(inputs));
        assert_eq!(decode_inputs(&encode_inputs(&[])).unwrap(), Some(vec![]));
        for a in [
            Ok(Answer::Read(vec![0xFF])),
            Err(NodeError::NotFound),
            Ok(Answer::List(vec![])),
        ] {
            assert_eq!(decode_inputs(&encode_answer(&a)).unwrap(), None);
        }
        assert!(decode_inputs(&[INPUTS_FRAME, 1, 0, 0, 0, 0, 0, 0, 0, 77]).is_err());
    }

    #[test]
    fn resumed_frames_are_told_apart() {
        assert!(is_resumed(&encode_resumed()));
        assert_eq!(decode_inputs(&encode_resumed()).unwrap(), None);
        assert!(decode_answer(&encode_resumed()).is_err());
        for a in [
            Ok(Answer::Read(vec![])),
            Err(NodeError::Interrupted),
            Ok(Answer::List(vec![])),
        ] {
            assert!(!is_resumed(&encode_answer(&a)));
        }
        assert!(!is_resumed(&encode_hello(&Ok(()))));
        assert!(Request::decode(&[RESUME_TAG, 0]).is_err());
        assert!(Request::decode(&Request::Resume(1).encode()[..5]).is_err());
    }

    #[test]
    fn frames_round_trip_and_garbage_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"one").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut input = &buf[..];
        assert_eq!(read_frame(&mut input).unwrap().unwrap(), b"one");
        assert_eq!(read_frame(&mut input).unwrap().unwrap(), b"");
        assert!(read_frame(&mut input).unwrap().is_none());
        for garbage in [
            &b""[..],
            b"\x09",
            b"\x01\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x00\x09",
        ] {
            assert!(decode_answer(garbage).is_err());
            assert!(Request::decode(garbage).is_err());
        }
        let mut short = &[5u8, 0, 0, 0, b'a'][..];
        assert!(read_frame(&mut short).is_err());
    }
}
