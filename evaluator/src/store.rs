//! Glue between evaluation and the store arithmetic of `attrfs-store`:
//! adding source paths to the (virtual) store.

use crate::errors::{ErrorKind, EvalResult};
use crate::value::NixString;
use crate::vm::EvalState;
use std::path::Path;

/// Computes the store path of a source path (NAR-hashed, `source` type)
/// and returns it as a string whose context is that path.
/// `filter` decides per path whether to include it; `name` overrides the
/// base name; `recursive` selects NAR or flat hashing.
pub fn add_path_to_store(
    _state: &EvalState,
    path: &Path,
    _name: Option<&str>,
    _recursive: bool,
    _filter: Option<&dyn Fn(&Path) -> bool>,
) -> EvalResult<NixString> {
    Err(ErrorKind::Unsupported(format!(
        "adding '{}' to the store is not implemented yet",
        path.display()
    )))
}
