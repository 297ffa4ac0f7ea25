//! What `readdir` says about an entry's type (`d_type`), read with the raw
//! `getdents64` that `std::fs::read_dir` hides: the real type where it is
//! known without evaluating the value, `DT_UNKNOWN` otherwise, never a
//! guess; and the tools that read `d_type` (`ls --color`, `find`,
//! `grep -r`) stat what is unknown and print nothing on stderr.
//!
//! Needs /dev/fuse and root (or fusermount3); skipped without /dev/fuse.

mod support;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use support::{fuse_available, stderr, stdout, Mount};

/// `sub`: 1,000 attributes whose values are unevaluated thunks, the even
/// ones sets (directories), the odd ones numbers (files). Nothing is known
/// of their types until each is forced.
const THUNKS: &str = r#"{ sub = builtins.listToAttrs (builtins.genList (i: {
  name = "e${toString i}";
  value = if i / 2 * 2 == i then { inherit i; } else i;
}) 1000); }"#;

/// `(name, d_type)` of every entry of `dir`, through `getdents64` with the
/// 32 KiB buffer glibc's `readdir` uses.
fn getdents(dir: &Path) -> BTreeMap<String, u8> {
    let path = CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: a plain open(2) of a valid NUL-terminated path.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    assert!(fd >= 0, "open {}", dir.display());
    let mut entries = BTreeMap::new();
    let mut buf = vec![0u8; 32 << 10];
    loop {
        // SAFETY: `buf` is valid for writes of its length; `fd` is open.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd,
                buf.as_mut_ptr(),
                buf.len() as libc::c_uint,
            )
        };
        assert!(n >= 0, "getdents64: {}", std::io::Error::last_os_error());
        if n == 0 {
            break;
        }
        // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16,
        // d_type u8, then the NUL-terminated name.
        let mut at = 0;
        while at < n as usize {
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            let d_type = buf[at + 18];
            let name = &buf[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap()];
            entries.insert(String::from_utf8(name.to_vec()).unwrap(), d_type);
            at += reclen;
        }
    }
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    entries
}

/// The `d_type` that `lstat` says `path` has.
fn real_type(path: &Path) -> u8 {
    let kind = fs::symlink_metadata(path).unwrap().file_type();
    if kind.is_dir() {
        libc::DT_DIR
    } else if kind.is_symlink() {
        libc::DT_LNK
    } else if kind.is_file() {
        libc::DT_REG
    } else {
        assert!(!kind.is_fifo() && !kind.is_socket());
        libc::DT_UNKNOWN
    }
}

/// Checks that every type `entries` reports is the real one.
fn assert_no_guess(mount: &Mount, dir: &str, entries: &BTreeMap<String, u8>) -> usize {
    let mut known = 0;
    for (name, &d_type) in entries.iter().filter(|(n, _)| !n.starts_with('.')) {
        if d_type != libc::DT_UNKNOWN {
            known += 1;
            let path = mount.path(&format!("{dir}/{name}"));
            assert_eq!(d_type, real_type(&path), "{dir}/{name}");
        }
    }
    known
}

#[test]
fn readdir_says_dt_unknown_until_the_type_is_known_and_never_guesses() {
    if !fuse_available() {
        return;
    }
    // Without read-ahead, only what a request asked for is evaluated: the
    // first READDIRPLUS's entries, not the rest of the directory.
    let mount = Mount::expr(THUNKS, &["--no-read-ahead"]);
    // Two entries stat'ed before the directory is ever listed: their
    // types are known from then on.
    assert_eq!(real_type(&mount.path("sub/e500")), libc::DT_DIR);
    assert_eq!(real_type(&mount.path("sub/e501")), libc::DT_REG);

    let entries = getdents(&mount.path("sub"));
    assert_eq!(entries.len(), 1002, "1,000 entries, `.` and `..`");
    assert_eq!((entries["."], entries[".."]), (libc::DT_DIR, libc::DT_DIR));
    // The kernel asks READDIRPLUS for the start of the directory (those
    // entries come with attributes, so evaluated) and READDIR for the
    // rest: most of the 1,000 are not known, and say so.
    let unknown: Vec<String> = entries
        .iter()
        .filter(|(_, &t)| t == libc::DT_UNKNOWN)
        .map(|(name, _)| name.clone())
        .collect();
    assert!(
        unknown.len() >= 500,
        "only {} entries were DT_UNKNOWN",
        unknown.len()
    );
    // The two stat'ed entries are far down the listing (READDIR, not
    // READDIRPLUS) and carry their real types.
    assert_eq!(entries["e500"], libc::DT_DIR);
    assert_eq!(entries["e501"], libc::DT_REG);
    // Every type reported is the real one: no guess.
    let known = assert_no_guess(&mount, "sub", &entries);
    assert!(known >= 2, "{known} known");

    // Stat'ing more and listing again: the kernel answers from its cache
    // of the listing (directories are opened without OPENDIR, which
    // caches them), or asks again; either way, no type is a guess.
    for name in unknown.iter().take(20) {
        real_type(&mount.path(&format!("sub/{name}")));
    }
    let again = getdents(&mount.path("sub"));
    assert_eq!(again.len(), 1002);
    assert_no_guess(&mount, "sub", &again);
}

#[test]
fn ls_color_find_and_grep_stat_what_is_unknown_and_say_nothing_on_stderr() {
    if !fuse_available() {
        return;
    }
    let mount = Mount::expr(THUNKS, &["--no-read-ahead"]);
    // A colour `ls` must classify every entry: directories in blue.
    let ls = mount.sh("cd sub && LS_COLORS='di=01;34' ls --color=always");
    assert!(ls.status.success(), "{}", stderr(&ls));
    assert_eq!(stderr(&ls), "");
    let blue = stdout(&ls).matches("\x1b[01;34m").count();
    assert_eq!(blue, 500, "{}", stdout(&ls));

    let files = mount.sh("cd sub && find . -maxdepth 1 -type f | wc -l; find . -type d | wc -l");
    assert_eq!(stderr(&files), "");
    assert_eq!(stdout(&files), "500\n501\n");

    // Every number is a file with a digit in it: 500 at the top, and `i`
    // in each of the 500 sets.
    let grep = mount.sh("grep -rl '[0-9]' sub | wc -l");
    assert_eq!(stderr(&grep), "");
    assert_eq!(stdout(&grep), "1000\n");
    let ls_l = mount.sh("ls -l sub >/dev/null");
    assert!(ls_l.status.success(), "{}", stderr(&ls_l));
    assert_eq!(stderr(&ls_l), "");
}
