//! What a worker evaluates, and how the daemon hands it over: the first
//! frame of the worker protocol.

use attrfs_eval::eval::{AutoArg, Source};
use attrfs_eval::Invocation;
use attrfs_vfs::protocol::{Decoder, Encoder, WireError};

/// What to mount: the invocation `attrfs eval` takes too, and how to show
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootSpec {
    /// What to evaluate.
    pub invocation: Invocation,
    /// Show derivations inside derivations as directories.
    pub deep_derivations: bool,
    /// How many forced values to keep (LRU) per mount.
    pub value_cache: usize,
    /// Load files through the compiled-file cache the worker's environment
    /// configures (off with `attrfs mount --no-compile-cache`).
    pub compile_cache: bool,
}

impl RootSpec {
    /// The start-up frame sent to a worker.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        let invocation = &self.invocation;
        match &invocation.source {
            Source::File(path) => e.u8(0).bytes(path.as_os_str().as_encoded_bytes()),
            Source::Expr(expr) => e.u8(1).str(expr),
            Source::Flake(reference) => e.u8(2).str(reference),
        };
        e.u64(invocation.args.len() as u64);
        for (name, value) in &invocation.args {
            match value {
                AutoArg::Expr(expr) => e.str(name).u8(0).str(expr),
                AutoArg::Str(s) => e.str(name).u8(1).str(s),
            };
        }
        for list in [&invocation.attr, &invocation.include] {
            e.u64(list.len() as u64);
            for item in list {
                e.str(item);
            }
        }
        e.bool(self.deep_derivations)
            .u64(self.value_cache as u64)
            .bool(invocation.impure)
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
            invocation: Invocation {
                source,
                args,
                attr,
                include,
                impure,
            },
            deep_derivations,
            value_cache,
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
            invocation: Invocation {
                source: Source::File("/etc/nixos/configuration.nix".into()),
                args: vec![
                    ("config".into(), AutoArg::Expr("{}".into())),
                    ("system".into(), AutoArg::Str("x86_64-linux".into())),
                ],
                attr: vec!["config".into()],
                include: vec!["nixpkgs=/src/nixpkgs".into()],
                impure: false,
            },
            deep_derivations: true,
            value_cache: 4096,
            compile_cache: true,
        };
        let flake = RootSpec {
            invocation: Invocation {
                source: Source::Flake("/etc/nixos#nixosConfigurations.host.config".into()),
                impure: true,
                ..spec.invocation.clone()
            },
            compile_cache: false,
            ..spec.clone()
        };
        assert_eq!(RootSpec::decode(&flake.encode()).unwrap(), flake);
        assert_eq!(RootSpec::decode(&spec.encode()).unwrap(), spec);
        assert!(RootSpec::decode(&spec.encode()[..10]).is_err());
    }
}
