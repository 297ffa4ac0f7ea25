//! Store paths and the ways Nix computes them.
//!
//! A store path is `/nix/store/<hash part>-<name>`, the hash part being 32
//! nix32 digits of a 20-byte digest. Every store path Nix creates comes from
//! [`make_store_path`]: the sha256 of a *fingerprint*
//! `<type>:<algo>:<base16 inner hash>:/nix/store:<name>`, XOR-folded to 20
//! bytes. The `type` says what kind of object it is:
//!
//! | object | type | inner hash | function |
//! | --- | --- | --- | --- |
//! | `toFile`, `.drv` files | `text[:<ref>...]` | sha256 of the contents | [`make_text_path`] |
//! | `builtins.path`, `"${./p}"` | `source[:<ref>...]` | sha256 of the NAR | [`make_source_path`] |
//! | other fixed outputs | `output:out` | sha256 of `fixed:out:[r:]<algo>:<hex>:` | [`make_fixed_output_path`] |
//! | derivation outputs | `output:<name>` | the derivation's hash modulo | [`make_output_path`] |
//!
//! Name validation follows C++ Nix 2.8, the version the project's reference
//! data comes from: a name is 1 to 211 characters from `[A-Za-z0-9+-._?=]`.
//! Unlike Nix 2.3 (which forbade a leading `.`) and Nix ≥ 2.20 (which
//! forbids `.`, `..` and names starting `.-` or `..-`), Nix 2.8 accepts any
//! name starting with a period, and so do we.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::hash::{compress_hash, Hash, HashAlgo};
use crate::nixbase32;

/// The store directory every path lives in.
pub const STORE_DIR: &str = "/nix/store";

/// Length of the nix32 hash part of a store path.
pub const HASH_PART_LEN: usize = 32;

/// The longest allowed name (C++ Nix's `StorePath::MaxPathLen`).
pub const MAX_NAME_LEN: usize = 211;

/// The file name suffix of derivations.
pub const DRV_EXTENSION: &str = ".drv";

/// Why a store path is invalid or cannot be made. Messages follow C++ Nix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorePathError {
    /// The name part is empty.
    #[error("store path '{0}' has an empty name")]
    EmptyName(String),
    /// The name part is longer than [`MAX_NAME_LEN`].
    #[error("store path '{0}' has a name longer than 211 characters")]
    NameTooLong(String),
    /// The name contains a character outside `[A-Za-z0-9+-._?=]`.
    #[error("store path '{path}' contains illegal character '{c}'")]
    IllegalNameChar {
        /// The base name (`<hash>-<name>`).
        path: String,
        /// The first offending character.
        c: char,
    },
    /// The base name cannot even hold a hash part and a dash.
    #[error("'{0}' is too short to be a valid store path")]
    TooShort(String),
    /// The hash part contains a character that is not a nix32 digit.
    #[error("store path '{path}' contains illegal base-32 character '{c}'")]
    IllegalHashChar {
        /// The base name.
        path: String,
        /// The first offending character.
        c: char,
    },
    /// The hash part is not followed by a dash.
    #[error("store path '{0}' lacks the '-' after its hash")]
    MissingDash(String),
    /// The path is not directly inside [`STORE_DIR`].
    #[error("path '{0}' is not in the Nix store")]
    NotInStore(String),
    /// References were given for a fixed-output path that cannot have them
    /// (only recursive sha256, i.e. `source` paths, can).
    #[error("fixed-output path '{0}' cannot have references unless it is recursive sha256")]
    ReferencesNotAllowed(String),
}

/// A store path: a 20-byte digest (kept as its nix32 form) and a name.
///
/// Ordering is that of the printed path, as in C++ Nix.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath {
    hash_part: [u8; HASH_PART_LEN],
    name: String,
}

impl StorePath {
    /// A store path from its digest and name, validating the name.
    pub fn from_digest(digest: &[u8; 20], name: &str) -> Result<StorePath, StorePathError> {
        let encoded = nixbase32::encode(digest);
        let mut hash_part = [0u8; HASH_PART_LEN];
        hash_part.copy_from_slice(encoded.as_bytes());
        let path = StorePath {
            hash_part,
            name: name.to_string(),
        };
        check_name(&path.base_name(), name)?;
        Ok(path)
    }

    /// Parses a base name `<hash part>-<name>` (C++ Nix's `StorePath(std::string_view)`).
    pub fn from_base_name(base_name: &str) -> Result<StorePath, StorePathError> {
        let bytes = base_name.as_bytes();
        if bytes.len() < HASH_PART_LEN + 1 {
            return Err(StorePathError::TooShort(base_name.to_string()));
        }
        if let Some(c) = base_name
            .chars()
            .take(HASH_PART_LEN)
            .find(|&c| !is_hash_char(c))
        {
            return Err(StorePathError::IllegalHashChar {
                path: base_name.to_string(),
                c,
            });
        }
        if bytes[HASH_PART_LEN] != b'-' {
            return Err(StorePathError::MissingDash(base_name.to_string()));
        }
        let name = &base_name[HASH_PART_LEN + 1..];
        check_name(base_name, name)?;
        let mut hash_part = [0u8; HASH_PART_LEN];
        hash_part.copy_from_slice(&bytes[..HASH_PART_LEN]);
        Ok(StorePath {
            hash_part,
            name: name.to_string(),
        })
    }

    /// Parses `/nix/store/<hash part>-<name>` exactly (no trailing components).
    pub fn from_absolute_path(path: &str) -> Result<StorePath, StorePathError> {
        match strip_store_dir(path) {
            Some(base) if !base.contains('/') => StorePath::from_base_name(base),
            _ => Err(StorePathError::NotInStore(path.to_string())),
        }
    }

    /// Splits a path inside the store, such as `/nix/store/<h>-foo/bin/sh`,
    /// into its store path and the rest (`/bin/sh`, possibly empty).
    pub fn from_absolute_path_prefix(path: &str) -> Result<(StorePath, &str), StorePathError> {
        let base =
            strip_store_dir(path).ok_or_else(|| StorePathError::NotInStore(path.to_string()))?;
        let end = base.find('/').unwrap_or(base.len());
        Ok((StorePath::from_base_name(&base[..end])?, &base[end..]))
    }

    /// The 32-character nix32 hash part.
    pub fn hash_part(&self) -> &str {
        // Only ever filled from nix32 digits, which are ASCII.
        std::str::from_utf8(&self.hash_part).unwrap_or_default()
    }

    /// The 20-byte digest the hash part encodes.
    pub fn digest(&self) -> [u8; 20] {
        let mut digest = [0u8; 20];
        if let Ok(bytes) = nixbase32::decode_to_len(self.hash_part(), 20) {
            digest.copy_from_slice(&bytes);
        }
        digest
    }

    /// The name after the dash.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<hash part>-<name>`.
    pub fn base_name(&self) -> String {
        format!("{}-{}", self.hash_part(), self.name)
    }

    /// `/nix/store/<hash part>-<name>`.
    pub fn to_absolute_path(&self) -> String {
        self.to_string()
    }

    /// Whether this is a derivation (its name ends in `.drv`).
    pub fn is_derivation(&self) -> bool {
        self.name.ends_with(DRV_EXTENSION)
    }
}

/// Prints the absolute path.
impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}-{}", STORE_DIR, self.hash_part(), self.name)
    }
}

/// Parses an absolute store path, as [`StorePath::from_absolute_path`].
impl FromStr for StorePath {
    type Err = StorePathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StorePath::from_absolute_path(s)
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorePath({self})")
    }
}

/// Whether `c` may appear in a store path name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_' | '?' | '=')
}

/// Checks a store path name by C++ Nix 2.8's rules; `base_name` (the
/// `<hash>-<name>` being built) is only used in the error message.
pub fn check_name(base_name: &str, name: &str) -> Result<(), StorePathError> {
    if name.is_empty() {
        return Err(StorePathError::EmptyName(base_name.to_string()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StorePathError::NameTooLong(base_name.to_string()));
    }
    if let Some(c) = name.chars().find(|&c| !is_name_char(c)) {
        return Err(StorePathError::IllegalNameChar {
            path: base_name.to_string(),
            c,
        });
    }
    Ok(())
}

fn is_hash_char(c: char) -> bool {
    c.is_ascii() && nixbase32::digit_value(c as u8).is_some()
}

fn strip_store_dir(path: &str) -> Option<&str> {
    path.strip_prefix(STORE_DIR)?.strip_prefix('/')
}

/// The store path whose fingerprint is
/// `<path_type>:<algo>:<base16 of inner>:/nix/store:<name>` (C++ Nix's
/// `makeStorePath`).
pub fn make_store_path(
    path_type: &str,
    inner: &Hash,
    name: &str,
) -> Result<StorePath, StorePathError> {
    let fingerprint = format!(
        "{path_type}:{}:{}:{STORE_DIR}:{name}",
        inner.algo(),
        inner.to_base16()
    );
    let digest = compress_hash::<20>(&Hash::sha256(fingerprint));
    StorePath::from_digest(&digest, name)
}

/// A path type followed by `:<reference>` for each distinct reference in
/// sorted order (C++ Nix's `makeType` without self-references).
pub fn make_type<I, S>(base: &str, references: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut refs: Vec<S> = references.into_iter().collect();
    refs.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
    refs.dedup_by(|a, b| a.as_ref() == b.as_ref());
    let mut t = base.to_string();
    for r in &refs {
        t.push(':');
        t.push_str(r.as_ref());
    }
    t
}

/// The path of a text file with the given sha256 of its contents and the
/// given store paths (absolute) as references: `builtins.toFile`, and
/// `.drv` files (C++ Nix's `makeTextPath`).
pub fn make_text_path<I, S>(
    name: &str,
    content_hash: &Hash,
    references: I,
) -> Result<StorePath, StorePathError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    make_store_path(&make_type("text", references), content_hash, name)
}

/// [`make_text_path`] hashing `contents` itself.
pub fn make_text_path_for<I, S>(
    name: &str,
    contents: &[u8],
    references: I,
) -> Result<StorePath, StorePathError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    make_text_path(name, &Hash::digest(HashAlgo::Sha256, contents), references)
}

/// The path of a source tree added recursively with the given sha256 NAR
/// hash and references: `builtins.path`, `filterSource`, `"${./p}"`.
pub fn make_source_path<I, S>(
    name: &str,
    nar_hash: &Hash,
    references: I,
) -> Result<StorePath, StorePathError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    make_store_path(&make_type("source", references), nar_hash, name)
}

/// How a fixed-output's content is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IngestionMethod {
    /// The hash is over the file's contents (`outputHashMode = "flat"`).
    Flat,
    /// The hash is over the NAR (`outputHashMode = "recursive"`).
    Recursive,
}

impl IngestionMethod {
    /// `"r:"` for recursive, `""` for flat: what precedes the algorithm in
    /// a derivation output's hash algo field and in `fixed:out:` fingerprints.
    pub const fn prefix(self) -> &'static str {
        match self {
            IngestionMethod::Flat => "",
            IngestionMethod::Recursive => "r:",
        }
    }

    /// Splits a method prefix off a derivation output's hash algo field
    /// (`"r:sha256"` → `(Recursive, "sha256")`).
    pub fn split_prefix(method_algo: &str) -> (IngestionMethod, &str) {
        match method_algo.strip_prefix("r:") {
            Some(algo) => (IngestionMethod::Recursive, algo),
            None => (IngestionMethod::Flat, method_algo),
        }
    }
}

/// The path of fixed-output content (C++ Nix's `makeFixedOutputPath`):
/// recursive sha256 gives a `source` path (which may have references);
/// anything else an `output:out` path over `fixed:out:[r:]<algo>:<hex>:`,
/// which may not.
pub fn make_fixed_output_path<I, S>(
    method: IngestionMethod,
    hash: &Hash,
    name: &str,
    references: I,
) -> Result<StorePath, StorePathError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    if method == IngestionMethod::Recursive && hash.algo() == HashAlgo::Sha256 {
        return make_source_path(name, hash, references);
    }
    if references.into_iter().next().is_some() {
        return Err(StorePathError::ReferencesNotAllowed(name.to_string()));
    }
    let inner = format!(
        "fixed:out:{}{}:{}:",
        method.prefix(),
        hash.algo(),
        hash.to_base16()
    );
    make_store_path("output:out", &Hash::digest(HashAlgo::Sha256, inner), name)
}

/// The name of a derivation output's path: the derivation name for `out`,
/// `<drv name>-<output>` otherwise.
pub fn output_path_name(drv_name: &str, output_name: &str) -> String {
    if output_name == "out" {
        drv_name.to_string()
    } else {
        format!("{drv_name}-{output_name}")
    }
}

/// The path of output `output_name` of an input-addressed derivation
/// named `drv_name` whose hash modulo is `drv_hash_modulo` (C++ Nix's
/// `makeOutputPath`).
pub fn make_output_path(
    drv_hash_modulo: &[u8; 32],
    output_name: &str,
    drv_name: &str,
) -> Result<StorePath, StorePathError> {
    make_store_path(
        &format!("output:{output_name}"),
        &Hash::from_sha256(*drv_hash_modulo),
        &output_path_name(drv_name, output_name),
    )
}

/// `builtins.placeholder output_name`: `/` followed by the nix32 sha256 of
/// `nix-output:<output_name>`.
pub fn placeholder(output_name: &str) -> String {
    format!(
        "/{}",
        Hash::digest(HashAlgo::Sha256, format!("nix-output:{output_name}")).to_nix32()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nar::tests::make_tree;
    use crate::nar::{flat_hash, keep_all, nar_hash_sha256, FsSource, Kind};
    use std::convert::Infallible;
    use std::path::Path;

    const NO_REFS: [&str; 0] = [];

    fn sha256_hex(hex: &str) -> Hash {
        Hash::parse_unprefixed(hex, HashAlgo::Sha256).unwrap()
    }

    // Expected values below are what C++ Nix 2.8 prints for the expression
    // in the comment (`nix-instantiate --eval -E ...`).

    #[test]
    fn to_file_without_references() {
        // builtins.toFile "foo" "bar"
        let p = make_text_path_for("foo", b"bar", NO_REFS).unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo"
        );
        // builtins.toFile "bar" "x"
        let p = make_text_path_for("bar", b"x", NO_REFS).unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/nzsdayy79vjkfk8hchd0gwbgh0s7dcbx-bar"
        );
        // builtins.toFile ".foo" "bar": Nix 2.8 accepts a leading period.
        let p = make_text_path_for(".foo", b"bar", NO_REFS).unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/610hjpn0wjsi7g33hhas390gbnmygwhr-.foo"
        );
    }

    #[test]
    fn to_file_with_references() {
        // builtins.toFile "foo" "${builtins.toFile "bar" "x"} and ${./tree/a.txt}"
        let bar = "/nix/store/nzsdayy79vjkfk8hchd0gwbgh0s7dcbx-bar";
        let a = "/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt";
        let contents = format!("{bar} and {a}");
        let expected = "/nix/store/ja5vp37fw2qkp0qn9didm57ix6nnw3n0-foo";
        // Reference order and duplicates do not matter.
        for refs in [vec![bar, a], vec![a, bar, a]] {
            let p = make_text_path_for("foo", contents.as_bytes(), refs).unwrap();
            assert_eq!(p.to_string(), expected);
        }
    }

    #[test]
    fn source_paths_from_nar_hashes() {
        let (_tmp, tree) = make_tree("paths");
        // "${./tree/a.txt}"
        let (h, _) = nar_hash_sha256(&FsSource, &tree.join("a.txt"), &mut keep_all).unwrap();
        let p = make_source_path("a.txt", &h, NO_REFS).unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt"
        );
        // "${./tree}"
        let (h, _) = nar_hash_sha256(&FsSource, &tree, &mut keep_all).unwrap();
        let p = make_fixed_output_path(IngestionMethod::Recursive, &h, "tree", NO_REFS).unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/90vcivr6098nxn9229hmrqc82p7znm4m-tree"
        );
        // builtins.path { path = ./tree; name = "filtered";
        //   filter = p: t: t != "symlink" && baseNameOf p != "deeper"; }
        let mut filter = |p: &Path, k: Kind| -> Result<bool, Infallible> {
            Ok(k != Kind::Symlink && p.file_name() != Some("deeper".as_ref()))
        };
        let (h, _) = nar_hash_sha256(&FsSource, &tree, &mut filter).unwrap();
        let p = make_source_path("filtered", &h, NO_REFS).unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/rc2yk46kdl1azk3zi2aswgjvmqw3bn7s-filtered"
        );
        // builtins.path { path = ./tree/a.txt; name = "flat"; recursive = false; }
        let h = flat_hash(HashAlgo::Sha256, &FsSource, &tree.join("a.txt")).unwrap();
        let p = make_fixed_output_path(IngestionMethod::Flat, &h, "flat", NO_REFS).unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/hrzh64qwa6kpxv4ik12aiyppb3r0njks-flat"
        );
    }

    #[test]
    fn fixed_output_paths() {
        // Out paths of fixed-output derivations (`derivation { outputHash... }`).
        let flat = sha256_hex("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
        let p = make_fixed_output_path(IngestionMethod::Flat, &flat, "fod", NO_REFS).unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/rcz8aqa9lzcygdcn1q53xz03vc3svrcp-fod"
        );

        let rec =
            Hash::parse_any("sha256-J6W1N+bE8sSd4H6wuLnn8FEpk/3t5MRr1X4UB0FCr3g=", None).unwrap();
        let p =
            make_fixed_output_path(IngestionMethod::Recursive, &rec, "fod-rec", NO_REFS).unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/v2vnm229r9n5m5gbrl21l5cv08234abh-fod-rec"
        );

        let sha1 = Hash::parse_any(
            "f572d396fae9206628714fb2ce00f72e94f2258f",
            Some(HashAlgo::Sha1),
        )
        .unwrap();
        let p = make_fixed_output_path(IngestionMethod::Flat, &sha1, "fod-sha1", NO_REFS).unwrap();
        assert_eq!(
            p.to_string(),
            "/nix/store/x079ks2wzfkhnapbfibnk420vxz2idr7-fod-sha1"
        );

        assert_eq!(
            make_fixed_output_path(IngestionMethod::Flat, &flat, "fod", ["/nix/store/x"]),
            Err(StorePathError::ReferencesNotAllowed("fod".into()))
        );
    }

    #[test]
    fn placeholders() {
        // builtins.placeholder "out" / "dev"
        assert_eq!(
            placeholder("out"),
            "/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"
        );
        assert_eq!(
            placeholder("dev"),
            "/02qcpld1y6xhs5gz9bchpxaw0xdhmsp5dv88lh25r2ss44kh8dxz"
        );
    }

    #[test]
    fn name_errors_match_nix() {
        let err = |name: &str| {
            make_text_path_for(name, b"bar", NO_REFS)
                .unwrap_err()
                .to_string()
        };
        // builtins.toFile "a b" "bar"
        assert_eq!(
            err("a b"),
            "store path 'nfnnd9bvjy57sph724ya89s1na18i7c1-a b' contains illegal character ' '"
        );
        // builtins.toFile "" "bar"
        assert_eq!(
            err(""),
            "store path '8g1jgazvb2y10ly38rac72lrqlxkkhj1-' has an empty name"
        );
        // a 212-character name
        let long = "a".repeat(212);
        assert_eq!(
            err(&long),
            format!("store path 'awfjffdgh2kzvg8qj5frlgg0azm7iiyk-{long}' has a name longer than 211 characters")
        );
        // 211 characters are fine.
        let p = make_text_path_for(&"a".repeat(211), b"bar", NO_REFS).unwrap();
        assert_eq!(p.hash_part(), "ks7bz1hpa9gy3xsks85qh6jhrkfn2d5d");
    }

    #[test]
    fn parse_and_print() {
        let s = "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo";
        let p = StorePath::from_absolute_path(s).unwrap();
        assert_eq!(p.hash_part(), "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0");
        assert_eq!(p.name(), "foo");
        assert_eq!(p.base_name(), "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo");
        assert_eq!(p.to_absolute_path(), s);
        assert_eq!(s.parse::<StorePath>(), Ok(p.clone()));
        assert!(!p.is_derivation());
        assert_eq!(StorePath::from_digest(&p.digest(), "foo").unwrap(), p);

        let inside = format!("{s}/bin/sh");
        let (q, rest) = StorePath::from_absolute_path_prefix(&inside).unwrap();
        assert_eq!((q, rest), (p.clone(), "/bin/sh"));
        let (q, rest) = StorePath::from_absolute_path_prefix(s).unwrap();
        assert_eq!((q, rest), (p, ""));

        let bad = |s: &str| StorePath::from_absolute_path(s).unwrap_err().to_string();
        assert_eq!(bad("/tmp/foo"), "path '/tmp/foo' is not in the Nix store");
        assert_eq!(
            bad(&format!("{s}/bin")),
            format!("path '{s}/bin' is not in the Nix store")
        );
        assert_eq!(
            bad("/nix/store/abc"),
            "'abc' is too short to be a valid store path"
        );
        assert_eq!(
            bad("/nix/store/exjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo"),
            "store path 'exjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo' contains illegal base-32 character 'e'"
        );
        assert_eq!(
            bad("/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0_foo"),
            "store path 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0_foo' lacks the '-' after its hash"
        );
        assert_eq!(
            bad("/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-f/o").to_string(),
            "path '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-f/o' is not in the Nix store"
        );
    }

    #[test]
    fn ordering_is_by_printed_path() {
        let a = StorePath::from_base_name("0000000000000000000000000000000z-a").unwrap();
        let b = StorePath::from_base_name("z0000000000000000000000000000000-a").unwrap();
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn make_type_sorts_and_dedups() {
        assert_eq!(make_type("text", ["/b", "/a", "/b"]), "text:/a:/b");
        assert_eq!(make_type("source", NO_REFS), "source");
    }

    #[test]
    fn output_names() {
        assert_eq!(output_path_name("hello", "out"), "hello");
        assert_eq!(output_path_name("hello", "dev"), "hello-dev");
        assert_eq!(
            IngestionMethod::split_prefix("r:sha1"),
            (IngestionMethod::Recursive, "sha1")
        );
        assert_eq!(
            IngestionMethod::split_prefix("sha1"),
            (IngestionMethod::Flat, "sha1")
        );
    }
}
