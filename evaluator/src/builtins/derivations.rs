//! Builtins: derivations.

use crate::value::BuiltinDef;

/// The builtins of this module.
pub(super) const BUILTINS: &[BuiltinDef] = &[];

/// Builtins defined in Nix source, compiled at start-up: name and source.
pub(super) const NIX_DEFINED: &[(&str, &str)] = &[];
