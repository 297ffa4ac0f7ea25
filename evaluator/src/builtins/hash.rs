//! Builtins: hashes (`hashString`, `hashFile`, `convertHash`), computed and
//! printed by `attrfs_store::hash`.

use super::io::{coerce_to_path, read_bytes};
use super::strings::expect_string_no_ctx;
use super::{expect_attrs, gen, sync};
use crate::errors::{ErrorKind, EvalResult};
use crate::value::{Args, BuiltinDef, Value};
use crate::vm::{force, type_error, EvalState, GenCo, GenFuture};
use attrfs_store::hash::{Hash, HashAlgo, HashFormat};
use std::rc::Rc;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[
    sync("hashString", 2, hash_string),
    gen("hashFile", 2, hash_file),
    gen("convertHash", 1, convert_hash),
];

/// A hash algorithm named by a Nix string, with C++ Nix's errors.
fn hash_algo(name: &str) -> EvalResult<HashAlgo> {
    if name == "blake3" {
        return Err(ErrorKind::other(
            "experimental Nix feature 'blake3-hashes' is disabled; \
             add '--extra-experimental-features blake3-hashes' to enable it",
        ));
    }
    HashAlgo::from_name(name).ok_or_else(|| {
        ErrorKind::other(format!(
            "unknown hash algorithm '{name}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'"
        ))
    })
}

fn algo_arg(v: &Value) -> EvalResult<HashAlgo> {
    hash_algo(&expect_string_no_ctx(v)?.to_str_lossy())
}

fn hash_string(_: &Rc<EvalState>, args: Args) -> EvalResult<Value> {
    let algo = algo_arg(&args[0])?;
    let Value::String(s) = &args[1] else {
        return Err(type_error("string", &args[1]));
    };
    Ok(Value::string(Hash::digest(algo, s.as_bytes()).to_base16()))
}

fn hash_file(co: GenCo, state: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let algo = algo_arg(&args[0])?;
        let (path, _) = coerce_to_path(&co, &state, args[1].clone()).await?;
        let bytes = read_bytes(&state, &path)?;
        Ok(Value::string(Hash::digest(algo, bytes).to_base16()))
    })
}

fn convert_hash(co: GenCo, _: Rc<EvalState>, args: Args) -> GenFuture {
    Box::pin(async move {
        let attrs = expect_attrs(&args[0])?;
        let field = |name: &'static str| attrs.get_str(name).cloned();
        let missing = |name: &str| ErrorKind::AttrMissing { name: name.into() };
        let hash = field("hash").ok_or_else(|| missing("hash"))?;
        let hash = expect_string_no_ctx(&force(&co, hash).await)?.to_string();
        let algo = match field("hashAlgo") {
            Some(a) => Some(algo_arg(&force(&co, a).await)?),
            None => None,
        };
        let format = field("toHashFormat").ok_or_else(|| missing("toHashFormat"))?;
        let format = expect_string_no_ctx(&force(&co, format).await)?.to_string();
        let format = HashFormat::from_name(&format).ok_or_else(|| {
            ErrorKind::other(format!(
                "unknown hash format '{format}', expect 'base16', 'base32', 'nix32', 'base64', or 'sri'"
            ))
        })?;
        let parsed = Hash::parse_any(&hash, algo).map_err(|e| ErrorKind::other(e.to_string()))?;
        Ok(Value::string(
            parsed.to_string_as(format, format == HashFormat::Sri),
        ))
    })
}

#[cfg(test)]
mod tests {
    use crate::eval::eval_strict_to_string as eval;
    use crate::eval::testing::ok;

    #[test]
    fn hashes() {
        assert_eq!(
            ok("builtins.hashString \"md5\" \"\""),
            "\"d41d8cd98f00b204e9800998ecf8427e\""
        );
        assert_eq!(
            ok("builtins.hashString \"sha256\" \"abc\""),
            "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""
        );
        assert!(eval("builtins.hashString \"foo\" \"x\"")
            .unwrap_err()
            .contains("unknown hash algorithm 'foo'"));
        let h = "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
        assert_eq!(
            ok(&format!(
                "builtins.convertHash {{ hash = \"{h}\"; toHashFormat = \"base16\"; }}"
            )),
            "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""
        );
        assert_eq!(
            ok("let a = \"sha256\"; in builtins.convertHash { hash = \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"; \
                hashAlgo = a; toHashFormat = \"sri\"; }"),
            format!("\"{h}\"")
        );
    }
}
