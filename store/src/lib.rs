//! Nix store arithmetic without a store.
//!
//! Pure functions that compute what C++ Nix (2.8, the version the project's
//! reference data comes from) would write to `/nix/store`, byte for byte,
//! without a store, an evaluator or a `Value` type: the hashes, archives,
//! paths and derivation files behind `derivationStrict`, `builtins.path`,
//! `filterSource`, `toFile`, `hashString`, `hashFile`, `convertHash`,
//! `placeholder` and the interpolation of paths into strings.
//!
//! - [`nixbase32`]: Nix's base32 encoding (`0123456789abcdfghijklmnpqrsvwxyz`).
//! - [`hash`]: hash algorithms, hashing, parsing and printing hashes in every
//!   form Nix accepts, and the XOR-fold that shortens them.
//! - [`nar`]: the Nix ARchive serialisation of a file tree read through a
//!   [`NarSource`], with `builtins.path`-style filtering, streaming NAR
//!   hashes and flat file hashes.
//! - [`path`]: store paths, name validation and every way Nix derives a
//!   store path (text, source, fixed-output, derivation output, placeholder).
//! - [`derivation`]: the [`Derivation`] record, its ATerm (`.drv`) text both
//!   ways, the hash modulo fixed outputs, output paths and `.drv` paths.
//!
//! How `derivationStrict` uses it: build the [`Derivation`] with blank
//! output paths, [`Derivation::instantiate`] it with a lookup of the hash
//! modulo of earlier derivations, and record its own for later ones.
//!
//! ```
//! use std::collections::HashMap;
//! use attrfs_store::{Derivation, Output};
//!
//! let mut hashes: HashMap<String, [u8; 32]> = HashMap::new();
//! let mut drv = Derivation {
//!     outputs: [("out".to_string(), Output::input_addressed())].into(),
//!     platform: "x86_64-linux".into(),
//!     builder: "/bin/sh".into(),
//!     env: [("name", "x"), ("system", "x86_64-linux"), ("builder", "/bin/sh")]
//!         .map(|(k, v)| (k.to_string(), v.to_string()))
//!         .into(),
//!     ..Derivation::default()
//! };
//! let done = drv.instantiate("x", |p| hashes.get(p).copied()).unwrap();
//! hashes.insert(done.drv_path.to_string(), done.hash_modulo);
//! // What `nix-instantiate -E 'derivation { name = "x"; system = "x86_64-linux";
//! // builder = "/bin/sh"; }'` prints:
//! assert_eq!(done.drv_path.to_string(), "/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv");
//! assert_eq!(drv.env["out"], "/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x");
//! ```

#![warn(missing_docs)]

pub mod derivation;
pub mod hash;
pub mod nar;
pub mod nixbase32;
pub mod path;

pub use derivation::{Derivation, DerivationError, Instantiated, Output, ParseError};
pub use hash::{compress_hash, Hash, HashAlgo, HashError, HashFormat, Hasher};
pub use nar::{
    dump, flat_hash, keep_all, nar_hash, nar_hash_sha256, FsSource, Kind, NarError, NarSource,
};
pub use path::{
    make_fixed_output_path, make_output_path, make_source_path, make_store_path, make_text_path,
    make_text_path_for, placeholder, IngestionMethod, StorePath, StorePathError, STORE_DIR,
};
