//! Builtins: lists.

use crate::value::BuiltinDef;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[];
