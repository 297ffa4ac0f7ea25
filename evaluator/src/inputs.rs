//! Fetched inputs: what `fetchTree`, `fetchGit`, `fetchTarball`,
//! `fetchurl`, URL search-path entries and flake inputs have in common.
//!
//! An input is a flake-reference attribute set ([`Attrs`]: `type`, `url`,
//! `rev`, `narHash`, ...). [`fetch`] turns it into a [`Fetched`]: a store
//! path whose contents the evaluator's store view can read, and the locked
//! attributes C++ Nix reports (`narHash`, `rev`, `revCount`,
//! `lastModified`, ...). [`tree_attrs`] renders those as `fetchTree`'s
//! result.
//!
//! Where the store path follows from a hash alone (a `narHash` or `sha256`
//! given), nothing is fetched to compute it: the contents are taken from
//! `/nix/store` or attrfs's cache when there, and otherwise fetched on
//! first access (forge tarballs) or right away (the rest), verified against
//! the hash, and kept in the cache. The actual transfers are in
//! `attrfs-fetch`.

use crate::errors::{ErrorKind, EvalResult};
use crate::flake::flakeref::{Attr, Attrs};
use crate::io::{EvalIO, FileType};
use crate::record::InputKind;
use crate::store::{self, Excluded};
use crate::value::{NixAttrs, NixString, Value};
use crate::vm::EvalState;
use attrfs_fetch::{Cache, FetchError};
use attrfs_store::nar::{flat_hash, keep_all, nar_hash_sha256, FsSource};
use attrfs_store::path::{make_fixed_output_path, IngestionMethod};
use attrfs_store::{Hash, HashAlgo};
use rustc_hash::FxHashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;

/// A fetched input: where it is in the store and its locked attributes.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The absolute store path.
    pub store_path: String,
    /// The input's attributes after fetching (`type`, `narHash` in SRI
    /// form, `rev`, `revCount`, `lastModified`, `dirtyRev`, ...).
    pub info: Attrs,
}

impl Fetched {
    /// A string attribute of the locked input.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.info.get(name) {
            Some(Attr::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer attribute of the locked input.
    pub fn int(&self, name: &str) -> Option<u64> {
        match self.info.get(name) {
            Some(Attr::Int(i)) => Some(*i),
            _ => None,
        }
    }
}

/// A fetch error as an evaluation error (interruptions stay
/// interruptions, so the mount reports them as such).
pub fn fetch_error(e: FetchError) -> ErrorKind {
    match e {
        FetchError::Interrupted => ErrorKind::Interrupted,
        other => ErrorKind::other(other.to_string()),
    }
}

fn cancel_flag(state: &EvalState) -> &AtomicBool {
    &state.interrupt
}

fn str_attr<'a>(input: &'a Attrs, name: &str) -> Option<&'a str> {
    match input.get(name) {
        Some(Attr::Str(s)) => Some(s),
        _ => None,
    }
}

fn bool_attr(input: &Attrs, name: &str) -> bool {
    matches!(input.get(name), Some(Attr::Bool(true)))
}

fn int_attr(input: &Attrs, name: &str) -> Option<u64> {
    match input.get(name) {
        Some(Attr::Int(i)) => Some(*i),
        _ => None,
    }
}

/// The expected NAR hash of an input, if it has one.
fn nar_hash_attr(input: &Attrs) -> EvalResult<Option<Hash>> {
    match str_attr(input, "narHash") {
        None => Ok(None),
        Some(h) => Hash::parse_any(h, Some(HashAlgo::Sha256))
            .map(Some)
            .map_err(|e| ErrorKind::other(format!("invalid narHash '{h}': {e}"))),
    }
}

/// Whether an input is locked enough for pure evaluation.
pub fn is_locked(input: &Attrs) -> bool {
    match str_attr(input, "type") {
        Some("path") | Some("tarball") | Some("file") => input.contains_key("narHash"),
        Some("git") | Some("github") | Some("gitlab") | Some("sourcehut") => {
            input.contains_key("rev")
        }
        _ => false,
    }
}

/// Fetches an input (see the module documentation).
pub fn fetch(state: &EvalState, input: &Attrs) -> EvalResult<Fetched> {
    let key = format!("{input:?}");
    if let Some(f) = state.store.fetch_memo.borrow().get(&key) {
        return Ok(f.clone());
    }
    let kind = str_attr(input, "type")
        .ok_or_else(|| ErrorKind::other("attribute 'type' is missing in call to 'fetchTree'"))?;
    let fetched = match kind {
        "path" => fetch_path(state, input)?,
        "git" => fetch_git(state, input)?,
        "tarball" | "file" => fetch_url_input(state, input, kind == "tarball")?,
        "github" | "gitlab" | "sourcehut" => fetch_forge(state, input, kind)?,
        "indirect" => {
            return Err(ErrorKind::Unsupported(format!(
                "cannot fetch the indirect flake reference '{}': attrfs has no flake registry; \
                 give the input's URL instead (for example github:NixOS/nixpkgs)",
                str_attr(input, "id").unwrap_or("?")
            )))
        }
        other => {
            return Err(ErrorKind::Unsupported(format!(
                "input type '{other}' is not supported by attrfs"
            )))
        }
    };
    record_fetch(state, kind, input, &fetched);
    state
        .store
        .fetch_memo
        .borrow_mut()
        .insert(key, fetched.clone());
    Ok(fetched)
}

impl Fetched {
    /// A locked input as `fetchTree` (and `fetchGit`) return it: C++ Nix's
    /// `emitTreeAttrs`. `empty_rev_fallback` (fetchGit) gives a dirty tree an
    /// all-zero `rev` and `revCount = 0`.
    pub fn tree_attrs(&self, empty_rev_fallback: bool) -> Value {
        let f = self;
        let mut out: Vec<(NixString, Value)> = vec![(
            NixString::from("outPath"),
            Value::String(crate::store::store_path_string(&f.store_path)),
        )];
        let mut put = |k: &str, v: Value| out.push((NixString::from(k), v));
        if let Some(h) = f.str("narHash") {
            put("narHash", Value::string(h));
        }
        if f.str("type") == Some("git") {
            put(
                "submodules",
                Value::Bool(matches!(f.info.get("submodules"), Some(Attr::Bool(true)))),
            );
        }
        match f.str("rev") {
            Some(rev) => {
                put("rev", Value::string(rev));
                put("shortRev", Value::string(&rev[..7.min(rev.len())]));
            }
            None if empty_rev_fallback => {
                put("rev", Value::string("0".repeat(40)));
                put("shortRev", Value::string("0".repeat(7)));
            }
            None => {}
        }
        match f.int("revCount") {
            Some(n) => put("revCount", Value::Int(n as i64)),
            None if empty_rev_fallback => put("revCount", Value::Int(0)),
            None => {}
        }
        if let (Some(d), Some(s)) = (f.str("dirtyRev"), f.str("dirtyShortRev")) {
            put("dirtyRev", Value::string(d));
            put("dirtyShortRev", Value::string(s));
        }
        if let Some(t) = f.int("lastModified") {
            put("lastModified", Value::Int(t as i64));
            put("lastModifiedDate", Value::string(last_modified_date(t)));
        }
        Value::attrs(NixAttrs::from_unsorted_first_wins(out))
    }
}

/// Records a fetch among the evaluation's inputs (see `record.rs`): the
/// store object it gave, and, for an input that may give something else
/// next time (no hash, no revision), that the evaluation is impure. Local
/// trees record themselves as [`InputKind::Tree`] where they are fetched.
fn record_fetch(state: &EvalState, kind: &str, input: &Attrs, fetched: &Fetched) {
    let what = format!(
        "{kind}:{}",
        str_attr(input, "url")
            .or_else(|| str_attr(input, "path"))
            .or_else(|| str_attr(input, "repo"))
            .unwrap_or("")
    );
    state.record_input(InputKind::Fetch, &what, || {
        format!(
            "{} {}",
            fetched.store_path,
            fetched.str("narHash").unwrap_or("")
        )
    });
    let local = kind == "path"
        || (kind == "git"
            && str_attr(input, "url").is_some_and(|u| local_git_path(u).is_some())
            && !input.contains_key("rev")
            && !input.contains_key("ref"));
    if !local && !is_locked(input) {
        state.record_input(
            InputKind::Impure,
            &format!("{what} without a hash"),
            String::new,
        );
    }
}

/// `type = "path"`: a local tree, copied (hashed) whole.
fn fetch_path(state: &EvalState, input: &Attrs) -> EvalResult<Fetched> {
    let path = str_attr(input, "path")
        .ok_or_else(|| ErrorKind::other("input attribute 'path' is missing"))?;
    if !path.starts_with('/') {
        return Err(ErrorKind::other(format!(
            "path '{path}' is not absolute (path inputs must be absolute)"
        )));
    }
    let origin = store::real_path(state, Path::new(path));
    if state.fetch_io.metadata(&origin).is_err() {
        return Err(ErrorKind::Io(format!("path '{path}' does not exist")));
    }
    let name = str_attr(input, "name").unwrap_or("source");
    let (store_path, hash) = hash_tree_cached(state, &origin, name)?;
    state.record_input(InputKind::Tree, &origin.to_string_lossy(), || hash.to_sri());
    check_nar_hash(input, &hash, &format!("path:{path}"))?;
    let mut info = input.clone();
    info.insert("narHash".into(), Attr::Str(hash.to_sri()));
    if !info.contains_key("lastModified") {
        info.insert(
            "lastModified".into(),
            Attr::Int(max_mtime(&*state.fetch_io, &origin, None)),
        );
    }
    Ok(Fetched { store_path, info })
}

/// [`store::add_source_tree`] for a whole local tree, remembering its NAR
/// hash in the cache under a signature of every entry's name, type, mode,
/// size, modification time and inode (as git's index trusts stat data):
/// re-hashing a large input such as a nixpkgs checkout on every evaluation
/// costs more than the evaluation itself, while a walk of `lstat`s is cheap.
fn hash_tree_cached(state: &EvalState, origin: &Path, name: &str) -> EvalResult<(String, Hash)> {
    let Some(signature) = tree_signature(&*state.fetch_io, origin) else {
        return store::add_source_tree(state, origin, name, None);
    };
    let cache = state.fetch_cache();
    if let Some(hash) = cache
        .record("tree-hashes", &signature)
        .and_then(|t| Hash::parse_any(t.trim(), Some(HashAlgo::Sha256)).ok())
    {
        let store_path = make_fixed_output_path(IngestionMethod::Recursive, &hash, name, [""; 0])
            .map_err(|e| ErrorKind::other(e.to_string()))?
            .to_string();
        store::register_fetched(state, &store_path, origin.to_path_buf(), None);
        return Ok((store_path, hash));
    }
    let (store_path, hash) = store::add_source_tree(state, origin, name, None)?;
    cache.keep_record("tree-hashes", &signature, &hash.to_sri());
    Ok((store_path, hash))
}

/// A digest of the `lstat` data of every entry of a tree (see
/// [`hash_tree_cached`]); `None` if the tree cannot be walked.
fn tree_signature(io: &dyn EvalIO, root: &Path) -> Option<String> {
    use sha2::Digest;
    use std::os::unix::ffi::OsStrExt;
    let mut hasher = sha2::Sha256::new();
    hasher.update(root.as_os_str().as_bytes());
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let meta = io.metadata(&p).ok()?;
        hasher.update(p.as_os_str().as_bytes());
        for n in [
            u64::from(meta.mode),
            meta.size,
            meta.mtime as u64,
            meta.mtime_nsec as u64,
            meta.ino,
        ] {
            hasher.update(n.to_le_bytes());
        }
        if meta.kind == FileType::Directory {
            // Sorted by name; pushed in reverse so the walk visits them in order.
            let entries = io.read_dir(&p).ok()?;
            todo.extend(entries.iter().rev().map(|(name, _)| p.join(name)));
        }
    }
    Some(attrfs_store::hash::encode_base16(&hasher.finalize()))
}

/// The newest modification time in a tree (C++ Nix's `lastModified` of a
/// path input), not descending into what `excluded` leaves out.
fn max_mtime(io: &dyn EvalIO, root: &Path, excluded: Option<&Excluded>) -> u64 {
    let mut newest = 0u64;
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(meta) = io.metadata(&p) else {
            continue;
        };
        newest = newest.max(u64::try_from(meta.mtime).unwrap_or(0));
        if meta.kind == FileType::Directory {
            if let Ok(entries) = io.read_dir(&p) {
                for (name, _) in entries {
                    let child = p.join(name);
                    if !excluded.is_some_and(|x| x.contains(&child)) {
                        todo.push(child);
                    }
                }
            }
        }
    }
    newest
}

fn check_nar_hash(input: &Attrs, got: &Hash, what: &str) -> EvalResult<()> {
    if let Some(expected) = nar_hash_attr(input)? {
        if expected.as_bytes() != got.as_bytes() {
            return Err(ErrorKind::other(format!(
                "NAR hash mismatch in input '{what}', expected '{}' but got '{}'",
                expected.to_sri(),
                got.to_sri()
            )));
        }
    }
    Ok(())
}

/// What is expected of a download.
#[derive(Clone, Copy, Debug)]
pub enum Expected<'a> {
    /// Nothing: the hash is computed from what arrives.
    Nothing,
    /// The flat sha256 of a file (`fetchurl`'s `sha256`).
    Flat(&'a Hash),
    /// The NAR sha256 of the result (`fetchTarball`'s `sha256`, `narHash`).
    Nar(&'a Hash),
}

/// A download in the store.
#[derive(Clone, Debug)]
pub struct Download {
    /// The absolute store path.
    pub store_path: String,
    /// The NAR hash of the contents.
    pub nar_hash: Hash,
    /// Where the contents are.
    pub origin: PathBuf,
    /// The top-level entry's time recorded in a tarball (0 for files).
    pub mtime: u64,
}

/// The store path of a download with a known hash, computed without it.
pub fn expected_path(unpack: bool, expected: Expected, name: &str) -> EvalResult<Option<String>> {
    let (method, hash) = match expected {
        Expected::Nothing => return Ok(None),
        Expected::Flat(h) if !unpack => (IngestionMethod::Flat, h),
        Expected::Nar(h) => (IngestionMethod::Recursive, h),
        Expected::Flat(h) => (IngestionMethod::Recursive, h),
    };
    make_fixed_output_path(method, hash, name, [""; 0])
        .map(|p| Some(p.to_string()))
        .map_err(|e| ErrorKind::other(e.to_string()))
}

/// Downloads `url` (unpacking a tarball if `unpack`), checks it against
/// `expected`, keeps it in the cache and returns it. Stored under `name`;
/// a file is stored flat unless `nar_file` (as `fetchTree`'s `file` type
/// does not do either: it stores flat and reports the NAR hash).
pub fn download(
    cache: &Cache,
    url: &str,
    unpack: bool,
    name: &str,
    expected: Expected,
    cancel: &AtomicBool,
) -> EvalResult<Download> {
    // Already there (in /nix/store or the cache)?
    if let Some(path) = expected_path(unpack, expected, name)? {
        let base = path.trim_start_matches("/nix/store/").to_string();
        if let Some(origin) = cache.locate(&base) {
            let nar_hash = match expected {
                Expected::Nar(h) => *h,
                _ => nar_hash_of(&origin)?,
            };
            return Ok(Download {
                store_path: path,
                nar_hash,
                origin,
                mtime: 0,
            });
        }
    }
    let scratch = cache.scratch().map_err(fetch_error)?;
    let file = scratch.path().join("download");
    attrfs_fetch::http::download(url, &file, cancel).map_err(fetch_error)?;
    let (root, mtime) = if unpack {
        let out = scratch.subdir("unpacked").map_err(fetch_error)?;
        let u = attrfs_fetch::unpack::unpack(&file, &out, url, cancel).map_err(fetch_error)?;
        (u.root, u.mtime)
    } else {
        (file, 0)
    };
    let nar_hash = nar_hash_of(&root)?;
    let (method, content_hash) = if unpack {
        (IngestionMethod::Recursive, nar_hash)
    } else {
        let flat = flat_hash(HashAlgo::Sha256, &FsSource, &root)
            .map_err(|e| ErrorKind::Io(e.to_string()))?;
        (IngestionMethod::Flat, flat)
    };
    let mismatch = |want: &Hash, got: &Hash| {
        fetch_error(FetchError::HashMismatch {
            url: url.to_string(),
            expected: want.to_string_as(attrfs_store::hash::HashFormat::Nix32, true),
            actual: got.to_string_as(attrfs_store::hash::HashFormat::Nix32, true),
        })
    };
    match expected {
        Expected::Flat(h) if !unpack && h.as_bytes() != content_hash.as_bytes() => {
            return Err(mismatch(h, &content_hash))
        }
        Expected::Nar(h) | Expected::Flat(h) if unpack && h.as_bytes() != nar_hash.as_bytes() => {
            return Err(mismatch(h, &nar_hash))
        }
        Expected::Nar(h) if !unpack && h.as_bytes() != nar_hash.as_bytes() => {
            return Err(mismatch(h, &nar_hash))
        }
        _ => {}
    }
    let store_path = make_fixed_output_path(method, &content_hash, name, [""; 0])
        .map_err(|e| ErrorKind::other(e.to_string()))?
        .to_string();
    let base = store_path.trim_start_matches("/nix/store/");
    let origin = match cache.locate(base) {
        Some(existing) => existing,
        None => cache.install(&root, base).map_err(fetch_error)?,
    };
    Ok(Download {
        store_path,
        nar_hash,
        origin,
        mtime,
    })
}

fn nar_hash_of(path: &Path) -> EvalResult<Hash> {
    nar_hash_sha256(&FsSource, path, &mut keep_all)
        .map(|(h, _)| h)
        .map_err(|e| ErrorKind::Io(e.to_string()))
}

/// Downloads and records a URL; the common part of `fetchurl`,
/// `fetchTarball`, `fetchTree` and URL search-path entries.
pub fn fetch_url(
    state: &EvalState,
    url: &str,
    unpack: bool,
    name: &str,
    expected: Expected,
) -> EvalResult<Download> {
    let key = format!("url {unpack} {name} {url} {expected:?}");
    if let Some(f) = state.store.fetch_memo.borrow().get(&key) {
        if let Some(origin) = store::materialise(state, &f.store_path).and_then(Result::ok) {
            let nar_hash = Hash::parse_any(f.str("narHash").unwrap_or(""), None)
                .map_err(|e| ErrorKind::other(e.to_string()))?;
            return Ok(Download {
                store_path: f.store_path.clone(),
                nar_hash,
                origin,
                mtime: f.int("lastModified").unwrap_or(0),
            });
        }
    }
    let cache = state.fetch_cache();
    let index = matches!(expected, Expected::Nothing).then(|| url_index(url, unpack, name));
    let recent = index.as_deref().and_then(|i| recent_download(cache, i));
    if index.is_some() {
        // Without a hash, the URL may give something else next time.
        state.record_input(
            InputKind::Impure,
            &format!("{url} without a hash"),
            String::new,
        );
    }
    let d = match recent {
        Some(d) => d,
        None => {
            let d = download(cache, url, unpack, name, expected, cancel_flag(state))?;
            if let Some(index) = &index {
                remember_download(cache, index, &d);
            }
            d
        }
    };
    store::register_fetched(state, &d.store_path, d.origin.clone(), None);
    let mut info = Attrs::new();
    info.insert("narHash".into(), Attr::Str(d.nar_hash.to_sri()));
    info.insert("lastModified".into(), Attr::Int(d.mtime));
    state.store.fetch_memo.borrow_mut().insert(
        key,
        Fetched {
            store_path: d.store_path.clone(),
            info,
        },
    );
    Ok(d)
}

/// How long a download without a known hash is reused before the URL is
/// asked again (C++ Nix's default `tarball-ttl`).
const TARBALL_TTL_SECS: u64 = 3600;

/// The cache's record of the last download of a URL without a hash.
fn url_index(url: &str, unpack: bool, name: &str) -> String {
    use sha2::Digest;
    let key = sha2::Sha256::digest(format!("{unpack}\0{name}\0{url}").as_bytes());
    attrfs_store::hash::encode_base16(&key[..16])
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The download recorded at `index` if it is younger than
/// [`TARBALL_TTL_SECS`] and its contents are still there.
fn recent_download(cache: &Cache, index: &str) -> Option<Download> {
    let text = cache.record("urls", index)?;
    let mut l = text.lines();
    let when: u64 = l.next()?.parse().ok()?;
    let base = l.next()?;
    let nar_hash = Hash::parse_any(l.next()?, Some(HashAlgo::Sha256)).ok()?;
    let mtime: u64 = l.next()?.parse().ok()?;
    if now_secs().saturating_sub(when) > TARBALL_TTL_SECS {
        return None;
    }
    let origin = cache.locate(base)?;
    Some(Download {
        store_path: format!("/nix/store/{base}"),
        nar_hash,
        origin,
        mtime,
    })
}

fn remember_download(cache: &Cache, index: &str, d: &Download) {
    let base = d.store_path.trim_start_matches("/nix/store/");
    cache.keep_record(
        "urls",
        index,
        &format!(
            "{}\n{base}\n{}\n{}\n",
            now_secs(),
            d.nar_hash.to_sri(),
            d.mtime
        ),
    );
}

/// `type = "tarball"` and `type = "file"`.
fn fetch_url_input(state: &EvalState, input: &Attrs, unpack: bool) -> EvalResult<Fetched> {
    let url = str_attr(input, "url")
        .ok_or_else(|| ErrorKind::other("input attribute 'url' is missing"))?;
    let name = str_attr(input, "name").unwrap_or("source");
    let expected = nar_hash_attr(input)?;
    let d = fetch_url(
        state,
        url,
        unpack,
        name,
        match &expected {
            Some(h) if unpack => Expected::Nar(h),
            _ => Expected::Nothing,
        },
    )?;
    check_nar_hash(input, &d.nar_hash, url)?;
    let mut info = input.clone();
    info.insert("narHash".into(), Attr::Str(d.nar_hash.to_sri()));
    Ok(Fetched {
        store_path: d.store_path,
        info,
    })
}

/// The tarball URL of a forge input at a revision.
fn forge_tarball_url(kind: &str, input: &Attrs, rev: &str) -> EvalResult<String> {
    let owner = str_attr(input, "owner")
        .ok_or_else(|| ErrorKind::other("input attribute 'owner' is missing"))?;
    let repo = str_attr(input, "repo")
        .ok_or_else(|| ErrorKind::other("input attribute 'repo' is missing"))?;
    let host = str_attr(input, "host");
    Ok(match kind {
        "github" => format!(
            "https://{}/{owner}/{repo}/archive/{rev}.tar.gz",
            host.unwrap_or("github.com")
        ),
        "gitlab" => format!(
            "https://{}/api/v4/projects/{owner}%2F{repo}/repository/archive.tar.gz?sha={rev}",
            host.unwrap_or("gitlab.com")
        ),
        _ => format!(
            "https://{}/{owner}/{repo}/archive/{rev}.tar.gz",
            host.unwrap_or("git.sr.ht")
        ),
    })
}

/// `github`, `gitlab`, `sourcehut`: a tarball of a revision. With
/// `narHash` (and `lastModified`) locked, the store path is known without
/// fetching and the tarball is fetched on first access only.
fn fetch_forge(state: &EvalState, input: &Attrs, kind: &str) -> EvalResult<Fetched> {
    let Some(rev) = str_attr(input, "rev") else {
        return Err(ErrorKind::Unsupported(format!(
            "{kind} input without a 'rev': attrfs does not ask forges which commit a branch \
             is on; lock the input (flake.lock) or give 'rev'"
        )));
    };
    let url = forge_tarball_url(kind, input, rev)?;
    let mut info = input.clone();
    info.remove("ref");
    let expected = nar_hash_attr(input)?;
    if let (Some(hash), Some(_)) = (&expected, int_attr(input, "lastModified")) {
        let store_path = expected_path(true, Expected::Nar(hash), "source")?
            .ok_or_else(|| ErrorKind::other("no store path"))?;
        let cache = state.fetch_cache().clone();
        let cancel = state.interrupt.clone();
        let hash2 = *hash;
        let url2 = url.clone();
        store::register_lazy(
            state,
            &store_path,
            Rc::new(move || {
                download(
                    &cache,
                    &url2,
                    true,
                    "source",
                    Expected::Nar(&hash2),
                    &cancel,
                )
                .map(|d| d.origin)
                .map_err(|e| e.to_string())
            }),
        );
        info.insert("narHash".into(), Attr::Str(hash.to_sri()));
        return Ok(Fetched { store_path, info });
    }
    let d = fetch_url(
        state,
        &url,
        true,
        "source",
        match &expected {
            Some(h) => Expected::Nar(h),
            None => Expected::Nothing,
        },
    )?;
    info.insert("narHash".into(), Attr::Str(d.nar_hash.to_sri()));
    info.entry("lastModified".into())
        .or_insert(Attr::Int(d.mtime));
    Ok(Fetched {
        store_path: d.store_path,
        info,
    })
}

/// A local path from a git URL (`file:///x`, `/x`), if it is local.
fn local_git_path(url: &str) -> Option<PathBuf> {
    let p = url.strip_prefix("file://").unwrap_or(url);
    p.starts_with('/')
        .then(|| PathBuf::from(attrfs_fetch::http::percent_decode(p)))
}

/// Everything in `root` that is not a tracked file or a directory leading
/// to one (what a Git work tree's source leaves out, `.git` included).
fn untracked(io: &dyn EvalIO, root: &Path, tracked: &[PathBuf]) -> Excluded {
    let mut keep_files: FxHashSet<PathBuf> = FxHashSet::default();
    let mut keep_dirs: FxHashSet<PathBuf> = FxHashSet::default();
    for t in tracked {
        let full = root.join(t);
        let mut a = full.parent();
        while let Some(d) = a {
            if d == root || !keep_dirs.insert(d.to_path_buf()) {
                break;
            }
            a = d.parent();
        }
        keep_files.insert(full);
    }
    let mut excluded = FxHashSet::default();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = io.read_dir(&dir) else {
            continue;
        };
        for (name, _) in entries {
            let p = dir.join(name);
            if keep_files.contains(&p) {
                continue;
            }
            if keep_dirs.contains(&p) {
                todo.push(p);
            } else {
                excluded.insert(p);
            }
        }
    }
    Rc::new(excluded)
}

/// `type = "git"` (and `fetchGit`).
fn fetch_git(state: &EvalState, input: &Attrs) -> EvalResult<Fetched> {
    let url = str_attr(input, "url")
        .ok_or_else(|| ErrorKind::other("input attribute 'url' is missing"))?
        .to_string();
    let cancel = cancel_flag(state);
    let reference = str_attr(input, "ref").map(str::to_string);
    let rev = str_attr(input, "rev").map(str::to_string);
    let submodules = bool_attr(input, "submodules");
    let shallow = bool_attr(input, "shallow");
    let all_refs = bool_attr(input, "allRefs");
    let name = str_attr(input, "name").unwrap_or("source").to_string();
    let mut info = input.clone();
    info.insert("submodules".into(), Attr::Bool(submodules));
    let local = local_git_path(&url);

    // A local work tree without ref or rev: its tracked files as they are.
    // (A bare repository has no work tree: it is read like a remote one.)
    let work_tree = match (&local, &reference, &rev) {
        (Some(dir), None, None) => attrfs_fetch::git::workdir(dir, cancel).map_err(fetch_error)?,
        _ => None,
    };
    if let Some(wd) = work_tree {
        let tracked =
            attrfs_fetch::git::tracked_files(&wd.root, submodules, cancel).map_err(fetch_error)?;
        let excluded = untracked(&*state.fetch_io, &wd.root, &tracked);
        let (store_path, hash) =
            store::add_source_tree(state, &wd.root, &name, Some(excluded.clone()))?;
        state.record_input(InputKind::Tree, &wd.root.to_string_lossy(), || {
            hash.to_sri()
        });
        let src = wd.root.display().to_string();
        let last_modified = match &wd.head {
            Some(h) => {
                attrfs_fetch::git::commit_time(&wd.root, h, &src, cancel).map_err(fetch_error)?
            }
            None => 0,
        };
        match (&wd.head, wd.dirty) {
            (Some(head), false) => {
                let count = attrfs_fetch::git::rev_count(&wd.root, head, &src, cancel)
                    .map_err(fetch_error)?;
                info.insert("rev".into(), Attr::Str(head.clone()));
                info.insert("revCount".into(), Attr::Int(count));
                if let Some(r) = &wd.head_ref {
                    info.insert("ref".into(), Attr::Str(r.clone()));
                }
            }
            (head, _) => {
                eprintln!("warning: Git tree '{}' is dirty", wd.root.display());
                if let Some(head) = head {
                    info.insert("dirtyRev".into(), Attr::Str(format!("{head}-dirty")));
                    info.insert(
                        "dirtyShortRev".into(),
                        Attr::Str(format!("{}-dirty", &head[..7.min(head.len())])),
                    );
                }
            }
        }
        check_nar_hash(input, &hash, &url)?;
        info.insert("narHash".into(), Attr::Str(hash.to_sri()));
        info.insert("lastModified".into(), Attr::Int(last_modified));
        return Ok(Fetched { store_path, info });
    }

    let cache = state.fetch_cache();
    let (repo, rev) = match &local {
        Some(dir) => {
            let rev = match &rev {
                Some(r) => {
                    if !attrfs_fetch::git::has_commit(dir, r, cancel) {
                        return Err(ErrorKind::other(format!(
                            "cannot find Git revision '{r}' in repository '{url}'"
                        )));
                    }
                    r.clone()
                }
                None => {
                    let r = reference.as_deref().unwrap_or("HEAD");
                    attrfs_fetch::git::resolve(dir, r, &url, cancel).map_err(fetch_error)?
                }
            };
            (dir.clone(), rev)
        }
        None => attrfs_fetch::git::fetch_remote(
            cache,
            &url,
            reference.as_deref().unwrap_or("HEAD"),
            rev.as_deref(),
            all_refs,
            shallow,
            cancel,
        )
        .map_err(fetch_error)?,
    };
    if submodules {
        return Err(ErrorKind::Unsupported(format!(
            "fetching Git submodules of a revision is not supported by attrfs yet \
             (repository '{url}', rev {rev}); a local work tree without 'rev' is"
        )));
    }
    let index = format!("{rev}-{name}");
    let known = cache.record("git-revs", &index).and_then(|t| {
        let mut l = t.lines();
        let base = l.next()?.to_string();
        let nar = l.next()?.to_string();
        let count: u64 = l.next()?.parse().ok()?;
        let time: u64 = l.next()?.parse().ok()?;
        let origin = cache.locate(&base)?;
        Some((format!("/nix/store/{base}"), nar, count, time, origin))
    });
    let (store_path, nar_sri, count, time) = match known {
        Some((store_path, nar, count, time, origin)) => {
            store::register_fetched(state, &store_path, origin, None);
            (store_path, nar, count, time)
        }
        None => {
            let scratch = cache.scratch().map_err(fetch_error)?;
            let root = attrfs_fetch::git::export(&repo, &rev, scratch.path(), &url, cancel)
                .map_err(fetch_error)?;
            let hash = nar_hash_of(&root)?;
            let store_path =
                make_fixed_output_path(IngestionMethod::Recursive, &hash, &name, [""; 0])
                    .map_err(|e| ErrorKind::other(e.to_string()))?
                    .to_string();
            let base = store_path.trim_start_matches("/nix/store/").to_string();
            let origin = match cache.locate(&base) {
                Some(o) => o,
                None => cache.install(&root, &base).map_err(fetch_error)?,
            };
            store::register_fetched(state, &store_path, origin, None);
            let count =
                attrfs_fetch::git::rev_count(&repo, &rev, &url, cancel).map_err(fetch_error)?;
            let time =
                attrfs_fetch::git::commit_time(&repo, &rev, &url, cancel).map_err(fetch_error)?;
            cache.keep_record(
                "git-revs",
                &index,
                &format!("{base}\n{}\n{count}\n{time}\n", hash.to_sri()),
            );
            (store_path, hash.to_sri(), count, time)
        }
    };
    let hash = Hash::parse_any(&nar_sri, None).map_err(|e| ErrorKind::other(e.to_string()))?;
    check_nar_hash(input, &hash, &url)?;
    info.insert("rev".into(), Attr::Str(rev));
    if !shallow {
        info.insert("revCount".into(), Attr::Int(count));
    }
    info.insert("lastModified".into(), Attr::Int(time));
    info.insert("narHash".into(), Attr::Str(nar_sri));
    Ok(Fetched { store_path, info })
}

/// `lastModified` as C++ Nix's `lastModifiedDate` writes it
/// (`%Y%m%d%H%M%S`, UTC).
pub fn last_modified_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::last_modified_date;

    #[test]
    fn dates() {
        assert_eq!(last_modified_date(1577836800), "20200101000000");
        assert_eq!(last_modified_date(1795696006), "20261126122646");
        assert_eq!(last_modified_date(0), "19700101000000");
    }
}
