//! Git repositories through the `git` command (see the crate documentation
//! for why not `gix`). Every call runs as a child process that is killed
//! when the interrupt flag is set, and reports git's own message on failure.

use crate::{check, io_err, Cache, FetchError, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Runs `git ARGS` in `dir` and returns its standard output; `url` names
/// the repository in errors.
pub fn git(dir: &Path, args: &[&str], url: &str, cancel: &AtomicBool) -> Result<Vec<u8>> {
    check(cancel)?;
    let what = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .copied()
        .unwrap_or("command")
        .to_string();
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FetchError::Git {
            url: url.to_string(),
            what: what.clone(),
            stderr: format!("cannot run git: {e}"),
        })?;
    // Drain both pipes on their own threads so that a chatty git never
    // blocks on a full pipe while this thread polls for cancellation.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io_err("waiting for git", dir))? {
            break status;
        }
        if check(cancel).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(FetchError::Interrupted);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        return Err(FetchError::Git {
            url: url.to_string(),
            what,
            stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
        });
    }
    Ok(stdout)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim().to_string()
}

/// The state of a local work tree.
#[derive(Clone, Debug)]
pub struct Workdir {
    /// The top-level directory of the work tree.
    pub root: PathBuf,
    /// The commit `HEAD` points at (none in a repository without commits).
    pub head: Option<String>,
    /// Whether tracked files differ from `HEAD`.
    pub dirty: bool,
    /// The branch `HEAD` is on, if any (`refs/heads/...`).
    pub head_ref: Option<String>,
}

/// What `dir` is as a git work tree, or `None` if it is not in one.
pub fn workdir(dir: &Path, cancel: &AtomicBool) -> Result<Option<Workdir>> {
    let url = dir.display().to_string();
    let root = match git(dir, &["rev-parse", "--show-toplevel"], &url, cancel) {
        Ok(out) => PathBuf::from(text(out)),
        Err(FetchError::Interrupted) => return Err(FetchError::Interrupted),
        Err(_) => return Ok(None),
    };
    let head = git(
        &root,
        &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
        &url,
        cancel,
    )
    .ok()
    .map(text)
    .filter(|s| !s.is_empty());
    let head_ref = git(&root, &["symbolic-ref", "--quiet", "HEAD"], &url, cancel)
        .ok()
        .map(text)
        .filter(|s| !s.is_empty());
    let status = git(
        &root,
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--ignore-submodules=none",
        ],
        &url,
        cancel,
    )?;
    Ok(Some(Workdir {
        dirty: head.is_none() || !status.is_empty(),
        root,
        head,
        head_ref,
    }))
}

/// The files git tracks in a work tree (index entries), relative to its
/// root; with `submodules`, the files of checked-out submodules too.
pub fn tracked_files(root: &Path, submodules: bool, cancel: &AtomicBool) -> Result<Vec<PathBuf>> {
    let url = root.display().to_string();
    let mut args = vec!["ls-files", "-z", "--cached"];
    if submodules {
        args.push("--recurse-submodules");
    }
    let out = git(root, &args, &url, cancel)?;
    Ok(out
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(std::ffi::OsStr::new(&*String::from_utf8_lossy(s))))
        .collect())
}

/// The commit a revision expression (`HEAD`, a branch, a rev) names.
pub fn resolve(repo: &Path, rev: &str, url: &str, cancel: &AtomicBool) -> Result<String> {
    let spec = format!("{rev}^{{commit}}");
    git(
        repo,
        &["rev-parse", "--verify", "--quiet", &spec],
        url,
        cancel,
    )
    .map(text)
    .map_err(|e| match e {
        FetchError::Interrupted => e,
        _ => FetchError::Git {
            url: url.to_string(),
            what: "rev-parse".into(),
            stderr: format!("cannot find revision '{rev}'"),
        },
    })
}

/// Whether `rev` is a commit in `repo`.
pub fn has_commit(repo: &Path, rev: &str, cancel: &AtomicBool) -> bool {
    let spec = format!("{rev}^{{commit}}");
    git(repo, &["cat-file", "-e", &spec], "", cancel).is_ok()
}

/// The number of commits reachable from `rev`.
pub fn rev_count(repo: &Path, rev: &str, url: &str, cancel: &AtomicBool) -> Result<u64> {
    let out = text(git(repo, &["rev-list", "--count", rev], url, cancel)?);
    out.parse().map_err(|_| FetchError::Git {
        url: url.to_string(),
        what: "rev-list".into(),
        stderr: format!("unexpected output '{out}'"),
    })
}

/// The committer time of `rev` (seconds since the epoch).
pub fn commit_time(repo: &Path, rev: &str, url: &str, cancel: &AtomicBool) -> Result<u64> {
    let out = text(git(
        repo,
        &["log", "-1", "--format=%ct", "--no-show-signature", rev],
        url,
        cancel,
    )?);
    out.parse().map_err(|_| FetchError::Git {
        url: url.to_string(),
        what: "log".into(),
        stderr: format!("unexpected output '{out}'"),
    })
}

/// Writes the tree of commit `rev` into `dest/source` (through `git
/// archive`, so as `git archive` exports it) and returns that directory.
pub fn export(
    repo: &Path,
    rev: &str,
    dest: &Path,
    url: &str,
    cancel: &AtomicBool,
) -> Result<PathBuf> {
    let tar = dest.join("tree.tar");
    let tar_s = tar.display().to_string();
    git(
        repo,
        &[
            "archive",
            "--format=tar",
            "--prefix=source/",
            "-o",
            &tar_s,
            rev,
        ],
        url,
        cancel,
    )?;
    let out = dest.join("unpacked");
    std::fs::create_dir_all(&out).map_err(io_err("creating directory", &out))?;
    let root = crate::unpack::unpack_tarball(&tar, &out, url, cancel);
    let _ = std::fs::remove_file(&tar);
    root
}

/// The ref to fetch when none is given and the local name it is kept under.
fn refspec(reference: &str) -> (String, String) {
    if reference == "HEAD" {
        ("HEAD".into(), "refs/attrfs/HEAD".into())
    } else if reference.starts_with("refs/") {
        (reference.into(), reference.into())
    } else {
        let full = format!("refs/heads/{reference}");
        (full.clone(), full)
    }
}

/// Brings `reference` (and with `all_refs` every ref) of the repository at
/// `url` into the cache's bare clone of it, unless `rev` is already there,
/// and returns the clone and the commit to use.
pub fn fetch_remote(
    cache: &Cache,
    url: &str,
    reference: &str,
    rev: Option<&str>,
    all_refs: bool,
    shallow: bool,
    cancel: &AtomicBool,
) -> Result<(PathBuf, String)> {
    let repo = cache.git_repo(url);
    if !repo.join("HEAD").exists() {
        std::fs::create_dir_all(&repo).map_err(io_err("creating directory", &repo))?;
        git(&repo, &["init", "--bare", "--quiet"], url, cancel)?;
    }
    if let Some(rev) = rev {
        if has_commit(&repo, rev, cancel) {
            return Ok((repo, rev.to_string()));
        }
    }
    let (remote_ref, local_ref) = refspec(reference);
    let spec = if all_refs {
        "+refs/*:refs/*".to_string()
    } else {
        format!("+{remote_ref}:{local_ref}")
    };
    let mut args = vec!["fetch", "--quiet", "--force"];
    if shallow && rev.is_none() {
        args.push("--depth=1");
    }
    args.extend(["--", url, &spec]);
    git(&repo, &args, url, cancel)?;
    match rev {
        Some(rev) => {
            if has_commit(&repo, rev, cancel) {
                Ok((repo, rev.to_string()))
            } else {
                Err(FetchError::Git {
                    url: url.to_string(),
                    what: "fetch".into(),
                    stderr: format!(
                        "cannot find Git revision '{rev}' in ref '{reference}'; make sure the \
                         revision is on that ref, or add allRefs = true"
                    ),
                })
            }
        }
        None => {
            let rev = resolve(&repo, &local_ref, url, cancel)?;
            Ok((repo, rev))
        }
    }
}
