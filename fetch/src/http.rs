//! Downloads: `http://`, `https://` (through `ureq` with rustls) and
//! `file://` URLs, into a file.
//!
//! Never hangs: connecting gives up after [`CONNECT_TIMEOUT`], a stalled
//! transfer after [`READ_TIMEOUT`] without data, and the interrupt flag is
//! checked between chunks, so an evaluation deadline stops a download
//! within one read.

use crate::{check, io_err, FetchError, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How long to wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a transfer may stall before it is abandoned.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Downloads `url` into the file `dest` (created or truncated).
pub fn download(url: &str, dest: &Path, cancel: &AtomicBool) -> Result<()> {
    check(cancel)?;
    let mut out = std::fs::File::create(dest).map_err(io_err("creating file", dest))?;
    if let Some(path) = url.strip_prefix("file://") {
        let path = percent_decode(path);
        let mut file = std::fs::File::open(&path).map_err(|e| FetchError::Download {
            url: url.to_string(),
            reason: format!("cannot read '{path}': {}", plain(&e)),
        })?;
        return copy(&mut file, &mut out, url, dest, cancel);
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(FetchError::Unsupported(format!(
            "unable to download '{url}': only http, https and file URLs are supported"
        )));
    }
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .timeout_read(READ_TIMEOUT)
        .user_agent(concat!("attrfs/", env!("CARGO_PKG_VERSION")))
        .build();
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(status, _) => FetchError::HttpStatus {
            url: url.to_string(),
            status,
        },
        ureq::Error::Transport(t) => FetchError::Download {
            url: url.to_string(),
            reason: transport_reason(&t),
        },
    })?;
    let mut body = response.into_reader();
    copy(&mut body, &mut out, url, dest, cancel)
}

/// Copies in chunks, checking the interrupt flag between them.
fn copy(
    from: &mut dyn Read,
    to: &mut std::fs::File,
    url: &str,
    dest: &Path,
    cancel: &AtomicBool,
) -> Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        check(cancel)?;
        let n = from.read(&mut buf).map_err(|e| FetchError::Download {
            url: url.to_string(),
            reason: plain(&e),
        })?;
        if n == 0 {
            break;
        }
        to.write_all(&buf[..n]).map_err(io_err("writing", dest))?;
    }
    to.flush().map_err(io_err("writing", dest))
}

/// A transport error's message, with its cause (e.g. "Connection refused").
fn transport_reason(t: &ureq::Transport) -> String {
    let mut s = t.kind().to_string();
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    let mut source = std::error::Error::source(t);
    while let Some(e) = source {
        s.push_str(": ");
        s.push_str(&e.to_string());
        source = e.source();
    }
    s
}

/// An I/O error's message without Rust's "(os error N)" suffix.
fn plain(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// `%XX` escapes decoded (file URLs with spaces and such).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn closed_port_is_a_clear_error() {
        // Bind then drop: nothing listens on that port any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dest = std::env::temp_dir().join(format!("attrfs-http-{}", std::process::id()));
        let url = format!("http://127.0.0.1:{port}/x.tar.gz");
        let e = download(&url, &dest, &AtomicBool::new(false)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("unable to download '{url}': ")),
            "{msg}"
        );
        assert!(msg.to_lowercase().contains("refused"), "{msg}");
        let _ = std::fs::remove_file(dest);
    }

    #[test]
    fn percent_escapes() {
        assert_eq!(percent_decode("/a%20b/c%2"), "/a b/c%2");
    }
}
