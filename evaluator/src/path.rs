//! Paths as Nix values see them: absolute, canonicalised lexically (`..`
//! removes the previous component without looking at the filesystem),
//! resolved against the directory of the file that names them.

use std::path::{Path, PathBuf};

/// Canonicalises a path lexically: collapses `//`, removes `.`, resolves `..`
/// (without following symlinks), drops a trailing `/`.
// Inlined into its callers as it was when it lived in the compiler (its
// main caller, for every path literal): out of line in its own module,
// hello.drvPath took 0.4% more instructions (1,857.7M against 1,850.3M).
#[inline]
pub fn canon_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return "/".into();
    }
    let mut out = String::with_capacity(p.len());
    for s in parts {
        out.push('/');
        out.push_str(s);
    }
    out
}

/// The directory relative paths in a file resolve against.
pub fn base_dir_of(path: &Path) -> PathBuf {
    path.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
mod tests {
    use super::canon_path;

    #[test]
    fn canonical_paths() {
        assert_eq!(canon_path("/a/b/../c/./d//"), "/a/c/d");
        assert_eq!(canon_path("/.."), "/");
        assert_eq!(canon_path("/"), "/");
    }
}
