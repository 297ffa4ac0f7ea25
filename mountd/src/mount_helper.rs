//! `attrfs SOURCE MOUNTPOINT -o OPTIONS`: the shape in which `mount.fuse3`
//! runs a FUSE filesystem, for `/etc/fstab` and `mount -t fuse.attrfs`:
//!
//! ```text
//! attrfs#/etc/nixos/configuration.nix  /mnt/cfg  fuse.attrfs  ro,allow_other  0 0
//! ```
//!
//! mount(8) expects the program to return once the filesystem is mounted,
//! with a non-zero status and a message if it could not be. So this runs
//! `attrfs mount` (the foreground daemon) as a child in its own session,
//! relays its messages until the mount shows up in the mount table, and then
//! returns 0, leaving the daemon running; if the child exits first, its
//! status is returned. Once mounted, the daemon's log goes nowhere (as with
//! any FUSE daemon mount(8) starts); `attrfs mount` in the foreground or the
//! NixOS service keep it.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// The prefix `mount.fuse3` leaves on the source of an fstab line whose
/// type is `fuse.attrfs` (`attrfs#SOURCE`).
const PROGRAM_PREFIX: &str = "attrfs#";

/// Whether `args` (without the program name) is the `mount.fuse3` shape
/// rather than a subcommand: a first argument that is neither an option
/// nor one of `subcommands`.
pub fn is_helper_invocation(args: &[OsString], subcommands: &[String]) -> bool {
    match args.first().and_then(|a| a.to_str()) {
        Some(first) => {
            args.len() >= 2 && !first.starts_with('-') && !subcommands.iter().any(|s| s == first)
        }
        // A non-UTF-8 first argument cannot be a subcommand.
        None => args.len() >= 2,
    }
}

/// What the helper was asked, translated into `attrfs mount` arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Translated {
    /// Arguments after `attrfs mount`.
    pub args: Vec<OsString>,
    /// The mountpoint, absolute.
    pub mountpoint: PathBuf,
}

/// A mistake in what mount(8) passed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    /// Not `SOURCE MOUNTPOINT [-o OPTIONS]`.
    #[error("usage: attrfs SOURCE MOUNTPOINT [-o OPTIONS] (as mount.fuse3 runs it)")]
    Usage,
    /// An `-o` option that needs a value has none.
    #[error("-o {0}: needs a value ({0}=...)")]
    MissingValue(String),
}

/// Options mount(8) and mount.fuse3 pass on their own (`rw` unless `ro` was
/// given, `dev`, `suid` as root) or that only concern fstab and mount(8)
/// itself. attrfs is always read-only, nosuid and nodev, so these change
/// nothing and are dropped rather than refused.
fn is_ignored(option: &str) -> bool {
    matches!(
        option,
        "rw" | "ro"
            | "dev"
            | "nodev"
            | "suid"
            | "nosuid"
            | "exec"
            | "async"
            | "atime"
            | "relatime"
            | "strictatime"
            | "auto"
            | "noauto"
            | "nofail"
            | "_netdev"
            | "user"
            | "users"
            | "nouser"
            | "owner"
            | "group"
            | "defaults"
    ) || option.starts_with("x-")
        || option.starts_with("comment=")
}

/// Translates `SOURCE MOUNTPOINT [-o OPTS]...` into `attrfs mount` arguments.
///
/// Besides FUSE and mount options (passed on as `-o`), the options may
/// carry what `attrfs mount` takes as flags, since an fstab line has no
/// other place for them: `attr=ATTRPATH` (`-A`), `argstr.NAME=STRING`,
/// `arg.NAME=EXPR` (no commas), `include=PATH` (`-I`), `eval_timeout=SECS`,
/// `cache_size=N`, `workers=N`, `deep_derivations`, `no_compile_cache`,
/// `no_watch`, `no_read_ahead`, `no_cache`, `cache_max=SIZE`.
pub fn translate(args: &[OsString], cwd: &Path) -> Result<Translated, HelperError> {
    let mut positional = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let text = arg.to_str();
        match text {
            Some("-o") => {
                let value = it.next().ok_or(HelperError::Usage)?;
                options.push(value.to_string_lossy().into_owned());
            }
            Some(t) if t.starts_with("-o") => options.push(t[2..].to_string()),
            // mount.fuse3 never passes other options; `-n`, `-s`, `-f`, `-v`
            // from mount(8)'s helper convention change nothing here.
            Some("-n" | "-s" | "-f" | "-v") => {}
            Some(t) if t.starts_with('-') => return Err(HelperError::Usage),
            _ => positional.push(arg.clone()),
        }
    }
    let [source, mountpoint] = positional.as_slice() else {
        return Err(HelperError::Usage);
    };
    let source_text = source.to_string_lossy();
    let source: OsString = match source_text.strip_prefix(PROGRAM_PREFIX) {
        Some(rest) => rest.into(),
        None => source.clone(),
    };
    // The daemon runs in `/`; relative paths mean the caller's directory.
    let absolute = |p: &OsStr| -> OsString {
        let path = Path::new(p);
        if path.is_absolute() || p.to_string_lossy().starts_with('<') {
            p.to_owned()
        } else {
            cwd.join(path).into_os_string()
        }
    };
    let mountpoint = PathBuf::from(absolute(mountpoint));
    let mut out: Vec<OsString> = vec![absolute(&source), mountpoint.clone().into_os_string()];
    let mut passed = Vec::new();
    for option in options.iter().flat_map(|o| o.split(',')) {
        if option.is_empty() || is_ignored(option) {
            continue;
        }
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option, None),
        };
        let value = || value.ok_or_else(|| HelperError::MissingValue(key.to_string()));
        match key {
            "attr" => out.extend(["-A".into(), value()?.into()]),
            "include" => out.extend(["-I".into(), value()?.into()]),
            "eval_timeout" => out.extend(["--eval-timeout".into(), value()?.into()]),
            "cache_size" => out.extend(["--cache-size".into(), value()?.into()]),
            "workers" => out.extend(["--workers".into(), value()?.into()]),
            "deep_derivations" => out.push("--deep-derivations".into()),
            "no_compile_cache" => out.push("--no-compile-cache".into()),
            "no_watch" => out.push("--no-watch".into()),
            "no_read_ahead" => out.push("--no-read-ahead".into()),
            "no_cache" => out.push("--no-cache".into()),
            "cache_max" => out.extend(["--cache-max".into(), value()?.into()]),
            _ => {
                if let Some(name) = key.strip_prefix("argstr.") {
                    out.extend(["--argstr".into(), name.into(), value()?.into()]);
                } else if let Some(name) = key.strip_prefix("arg.") {
                    out.extend(["--arg".into(), name.into(), value()?.into()]);
                } else {
                    passed.push(option.to_string());
                }
            }
        }
    }
    if !passed.is_empty() {
        out.extend(["-o".into(), passed.join(",").into()]);
    }
    Ok(Translated {
        args: out,
        mountpoint,
    })
}

/// Runs the helper: starts the daemon and returns once it has mounted.
pub fn run(args: &[OsString]) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let translated = match translate(args, &cwd) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("attrfs: {e}");
            return ExitCode::from(2);
        }
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("attrfs: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mountpoint = translated
        .mountpoint
        .canonicalize()
        .unwrap_or_else(|_| translated.mountpoint.clone());
    let mut command = Command::new(exe);
    command
        .arg("mount")
        .args(&translated.args)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // What mount(8) shows is the outcome, not the daemon's progress.
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "warn");
    }
    // SAFETY: setsid(2) is async-signal-safe; it detaches the daemon from
    // the terminal of whoever ran mount(8), so that closing it (SIGHUP)
    // does not unmount.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("attrfs: cannot start the daemon: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Relay what the daemon says until this process exits.
    if let Some(mut pipe) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(&buf[..n]);
            }
        });
    }
    loop {
        if is_attrfs_mount(&mountpoint) {
            return ExitCode::SUCCESS;
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                // Let the relay print the last words.
                std::thread::sleep(Duration::from_millis(50));
                let code = status.code().unwrap_or(1);
                return ExitCode::from(u8::try_from(code).unwrap_or(1).max(1));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                eprintln!("attrfs: waiting for the daemon: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}

/// Whether an attrfs mount is on `mountpoint` (in /proc/self/mountinfo).
fn is_attrfs_mount(mountpoint: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = mountpoint.to_string_lossy();
    info.lines().any(|line| {
        let mut fields = line.split(' ');
        let point = fields.nth(4);
        // After the optional fields, " - " separates the filesystem type.
        let fstype = line.split(" - ").nth(1).and_then(|t| t.split(' ').next());
        point.map(unescape_mountinfo).as_deref() == Some(&*wanted)
            && matches!(fstype, Some("fuse.attrfs" | "fuse"))
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn recognises_the_mount_fuse_shape() {
        let subs = vec!["mount".to_string(), "eval".to_string(), "help".to_string()];
        assert!(is_helper_invocation(
            &os(&["attrfs#/x.nix", "/mnt", "-o", "ro"]),
            &subs
        ));
        assert!(is_helper_invocation(&os(&["/x.nix", "/mnt"]), &subs));
        assert!(!is_helper_invocation(
            &os(&["mount", "/x.nix", "/mnt"]),
            &subs
        ));
        assert!(!is_helper_invocation(&os(&["eval", "-E", "1"]), &subs));
        assert!(!is_helper_invocation(&os(&["--version"]), &subs));
        assert!(!is_helper_invocation(&os(&["oops"]), &subs));
    }

    #[test]
    fn translates_fstab_options() {
        let t = translate(
            &os(&[
                "attrfs#/etc/nixos/configuration.nix",
                "/mnt/cfg",
                "-o",
                "rw,allow_other,dev,suid,noauto,x-systemd.automount,attr=config,argstr.system=x86_64-linux,eval_timeout=60,noatime,no_watch,no_read_ahead",
            ]),
            Path::new("/home/u"),
        )
        .unwrap();
        assert_eq!(
            t.args,
            os(&[
                "/etc/nixos/configuration.nix",
                "/mnt/cfg",
                "-A",
                "config",
                "--argstr",
                "system",
                "x86_64-linux",
                "--eval-timeout",
                "60",
                "--no-watch",
                "--no-read-ahead",
                "-o",
                "allow_other,noatime",
            ])
        );
        assert_eq!(t.mountpoint, PathBuf::from("/mnt/cfg"));

        let relative = translate(&os(&["demo.nix", "mnt"]), Path::new("/home/u")).unwrap();
        assert_eq!(relative.args, os(&["/home/u/demo.nix", "/home/u/mnt"]));
        let search = translate(&os(&["<nixpkgs/nixos>", "/m", "-oro"]), Path::new("/")).unwrap();
        assert_eq!(search.args, os(&["<nixpkgs/nixos>", "/m"]));
        let uncached = translate(
            &os(&["/a.nix", "/m", "-o", "no_compile_cache"]),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(uncached.args, os(&["/a.nix", "/m", "--no-compile-cache"]));
    }

    #[test]
    fn rejects_what_is_not_the_helper_shape() {
        let cwd = Path::new("/");
        assert_eq!(translate(&os(&["/x"]), cwd), Err(HelperError::Usage));
        assert_eq!(
            translate(&os(&["/x", "/m", "/y"]), cwd),
            Err(HelperError::Usage)
        );
        assert_eq!(
            translate(&os(&["/x", "/m", "-o"]), cwd),
            Err(HelperError::Usage)
        );
        assert_eq!(
            translate(&os(&["/x", "/m", "--arg"]), cwd),
            Err(HelperError::Usage)
        );
        assert_eq!(
            translate(&os(&["/x", "/m", "-o", "attr"]), cwd),
            Err(HelperError::MissingValue("attr".into()))
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/end\\"), "/end\\");
    }
}
