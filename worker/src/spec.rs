//! What a worker evaluates, and how the daemon hands it over: the first
//! frame of the worker protocol.

use attrfs_eval::eval::{AutoArg, Source};
use attrfs_vfs::protocol::{Decoder, Encoder, WireError};

/// What to mount: the same inputs as `attrfs eval`.
#[derive(Clone, Debug)]
pub struct RootSpec {
    /// File or expression.
    pub source: Source,
    /// `--arg`/`--argstr`.
    pub args: Vec<(String, AutoArg)>,
    /// `-A` paths.
    pub attr: Vec<String>,
    /// `-I` entries (before `NIX_PATH`).
    pub include: Vec<String>,
    /// Show derivations inside derivations as directories.
    pub deep_derivations: bool,
    /// How many forced values to keep (LRU) per mount.
    pub value_cache: usize,
    /// For a flake source: evaluate impurely (`--impure`).
    pub impure: bool,
    /// Load files through the compiled-file cache the worker's environment
    /// configures (off with `attrfs mount --no-compile-cache`).
    pub compile_cache: bool,
}

impl RootSpec {
    /// The start-up frame sent to a worker.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        match &self.source {
            Source::File(path) => e.u8(0).bytes(path.as_os_str().as_encoded_bytes()),
            Source::Expr(expr) => e.u8(1).str(expr),
            Source::Flake(reference) => e.u8(2).str(reference),
        };
        e.u64(self.args.len() as u64);
        for (name, value) in &self.args {
            match value {
                AutoArg::Expr(expr) => e.str(name).u8(0).str(expr),
                AutoArg::Str(s) => e.str(name).u8(1).str(s),
            };
        }
        for list in [&self.attr, &self.include] {
            e.u64(list.len() as u64);
            for item in list {
                e.str(item);
            }
        }
        e.bool(self.deep_derivations)
            .u64(self.value_cache as u64)
            .bool(self.impure)
            .bool(self.compile_cache);
        e.finish()
    }

    /// The spec a start-up frame carries.
    pub fn decode(frame: &[u8]) -> Result<Self, WireError> {
        let mut d = Decoder::new(frame);
        let source = match d.u8()? {
            0 => Source::File(path_from_bytes(d.bytes()?)),
            1 => Source::Expr(d.str()?),
            2 => Source::Flake(d.str()?),
            _ => return Err(WireError::Malformed("bad source tag")),
        };
        let mut args = Vec::new();
        for _ in 0..d.u64()? {
            let name = d.str()?;
            let value = match d.u8()? {
                0 => AutoArg::Expr(d.str()?),
                1 => AutoArg::Str(d.str()?),
                _ => return Err(WireError::Malformed("bad argument tag")),
            };
            args.push((name, value));
        }
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            for _ in 0..d.u64()? {
                list.push(d.str()?);
            }
        }
        let [attr, include] = lists;
        let deep_derivations = d.bool()?;
        let value_cache =
            usize::try_from(d.u64()?).map_err(|_| WireError::Malformed("bad cache size"))?;
        let impure = d.bool()?;
        let compile_cache = d.bool()?;
        d.end()?;
        Ok(RootSpec {
            source,
            args,
            attr,
            include,
            deep_derivations,
            value_cache,
            impure,
            compile_cache,
        })
    }
}

fn path_from_bytes(bytes: Vec<u8>) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip() {
        let spec = RootSpec {
            source: Source::File("/etc/nixos/configuration.nix".into()),
            args: vec![
                ("config".into(), AutoArg::Expr("{}".into())),
                ("system".into(), AutoArg::Str("x86_64-linux".into())),
            ],
            attr: vec!["config".into()],
            include: vec!["nixpkgs=/src/nixpkgs".into()],
            deep_derivations: true,
            value_cache: 4096,
            impure: false,
            compile_cache: true,
        };
        let flake = RootSpec {
            source: Source::Flake("/etc/nixos#nixosConfigurations.host.config".into()),
            impure: true,
            compile_cache: false,
            ..spec.clone()
        };
        let back = RootSpec::decode(&flake.encode()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{flake:?}"));
        let back = RootSpec::decode(&spec.encode()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{spec:?}"));
        assert!(RootSpec::decode(&spec.encode()[..10]).is_err());
    }
}
