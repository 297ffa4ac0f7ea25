//! Unpacking tarballs as `fetchTarball` does: the archive must hold exactly
//! one top-level entry, and that entry (usually a directory) is the result.

use crate::{check, io_err, FetchError, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// The compression of an archive, recognised by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Tar,
    Gzip,
    Xz,
    Other(&'static str),
}

fn sniff(head: &[u8]) -> Format {
    if head.starts_with(&[0x1f, 0x8b]) {
        Format::Gzip
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Format::Xz
    } else if head.starts_with(b"BZh") {
        Format::Other("bzip2")
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Format::Other("zstd")
    } else if head.starts_with(b"PK\x03\x04") {
        Format::Other("zip")
    } else {
        Format::Tar
    }
}

/// An unpacked tarball.
#[derive(Clone, Debug)]
pub struct Unpacked {
    /// The single top-level entry.
    pub root: PathBuf,
    /// That entry's modification time as the archive records it (C++ Nix's
    /// `lastModified` of a tarball; GitHub sets it to the commit time).
    pub mtime: u64,
}

/// Unpacks the archive at `archive` (tar, optionally gzip-compressed) into
/// the empty directory `dest` and returns the path of its single top-level
/// entry. `url` names the archive in errors.
pub fn unpack_tarball(
    archive: &Path,
    dest: &Path,
    url: &str,
    cancel: &AtomicBool,
) -> Result<PathBuf> {
    unpack(archive, dest, url, cancel).map(|u| u.root)
}

/// [`unpack_tarball`], with the top-level entry's recorded time.
pub fn unpack(archive: &Path, dest: &Path, url: &str, cancel: &AtomicBool) -> Result<Unpacked> {
    let bad = |reason: String| FetchError::Unpack {
        url: url.to_string(),
        reason,
    };
    let mut file = std::fs::File::open(archive).map_err(io_err("opening", archive))?;
    let mut head = [0u8; 6];
    let n = file.read(&mut head).map_err(io_err("reading", archive))?;
    drop(file);
    let file = std::fs::File::open(archive).map_err(io_err("opening", archive))?;
    let reader: Box<dyn Read> = match sniff(&head[..n]) {
        Format::Tar => Box::new(file),
        Format::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
        Format::Xz => {
            // lzma-rs decompresses whole streams: into a file beside the
            // archive, then read as a plain tar.
            let plain = archive.with_extension("unxz.tar");
            let mut out = std::fs::File::create(&plain).map_err(io_err("creating", &plain))?;
            lzma_rs::xz_decompress(&mut std::io::BufReader::new(file), &mut out)
                .map_err(|e| bad(format!("xz: {e}")))?;
            check(cancel)?;
            Box::new(std::fs::File::open(&plain).map_err(io_err("opening", &plain))?)
        }
        Format::Other(kind) => {
            return Err(bad(format!(
                "{kind}-compressed archives are not supported (tar, tar.gz and tar.xz are)"
            )))
        }
    };
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(true);
    tar.set_preserve_mtime(true);
    tar.set_unpack_xattrs(false);
    tar.set_overwrite(true);
    let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
    let mut top_mtime = None;
    for entry in entries {
        check(cancel)?;
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        if top_mtime.is_none() {
            let path = entry.path().map_err(|e| bad(e.to_string()))?;
            let depth = path
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .count();
            if depth == 1 {
                top_mtime = entry.header().mtime().ok();
            }
        }
        entry.unpack_in(dest).map_err(|e| bad(e.to_string()))?;
    }
    let members: Vec<_> = std::fs::read_dir(dest)
        .map_err(io_err("reading directory", dest))?
        .collect::<std::io::Result<_>>()
        .map_err(io_err("reading directory", dest))?;
    match members.as_slice() {
        [one] => Ok(Unpacked {
            root: one.path(),
            mtime: top_mtime.unwrap_or(0),
        }),
        _ => Err(FetchError::Unpack {
            url: url.to_string(),
            reason: format!(
                "tarball contains an unexpected number of top-level files ({})",
                members.len()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_tarball_single_top_level_dir() {
        let base = std::env::temp_dir().join(format!("attrfs-unpack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("src/top/sub")).unwrap();
        std::fs::write(base.join("src/top/sub/f"), "x").unwrap();
        let tgz = base.join("t.tar.gz");
        let status = std::process::Command::new("tar")
            .args(["czf"])
            .arg(&tgz)
            .arg("-C")
            .arg(base.join("src"))
            .arg("top")
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::create_dir_all(base.join("out")).unwrap();
        let root = unpack_tarball(
            &tgz,
            &base.join("out"),
            "file:///t",
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(root, base.join("out/top"));
        assert_eq!(std::fs::read(root.join("sub/f")).unwrap(), b"x");
        // The same as .tar.xz.
        let txz = base.join("t.tar.xz");
        let status = std::process::Command::new("tar")
            .arg("cJf")
            .arg(&txz)
            .arg("-C")
            .arg(base.join("src"))
            .arg("top")
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::create_dir_all(base.join("outxz")).unwrap();
        let root = unpack_tarball(
            &txz,
            &base.join("outxz"),
            "file:///t",
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(std::fs::read(root.join("sub/f")).unwrap(), b"x");
        // Two top-level entries are refused.
        std::fs::write(base.join("src/other"), "y").unwrap();
        let status = std::process::Command::new("tar")
            .arg("czf")
            .arg(&tgz)
            .arg("-C")
            .arg(base.join("src"))
            .args(["top", "other"])
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::create_dir_all(base.join("out2")).unwrap();
        let e = unpack_tarball(
            &tgz,
            &base.join("out2"),
            "file:///t",
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("unexpected number of top-level files"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
