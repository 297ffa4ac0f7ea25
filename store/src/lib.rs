//! Nix store arithmetic without a store.
//!
//! Pure functions that compute what C++ Nix would write to `/nix/store`,
//! byte for byte, without touching a store: the hashes, archives, paths and
//! derivation files behind `derivationStrict`, `builtins.path`, `toFile`,
//! `hashString`, `hashFile`, `convertHash`, `placeholder` and the
//! interpolation of paths into strings.
//!
//! - [`nixbase32`]: Nix's base32 encoding (`0123456789abcdfghijklmnpqrsvwxyz`).
//! - [`hash`]: hash algorithms, hashing, parsing and printing hashes in every
//!   form Nix accepts, and the XOR-fold that shortens them.
//! - [`nar`]: the Nix ARchive serialisation of a file tree read through a
//!   [`nar::NarSource`], with `builtins.path`-style filtering and streaming
//!   NAR / flat hashes.
//! - [`path`]: store paths, name validation and every way Nix derives a
//!   store path (text, source, fixed-output, derivation output, placeholder).
//! - [`derivation`]: the `Derivation` record, its ATerm (`.drv`) form both
//!   ways, the hash modulo fixed outputs and output-path computation.

pub mod derivation;
pub mod hash;
pub mod nar;
pub mod nixbase32;
pub mod path;

pub use hash::{Hash, HashAlgo, HashError, HashFormat, Hasher};
