//! The Nix packaging (`flake.nix`, `default.nix`, `contrib/nix/package.nix`)
//! evaluated by attrfs against a real modern nixpkgs (the corpus's
//! nixpkgs-26.11-slim): every output instantiates a derivation, and the
//! flake, the overlay and `default.nix` agree on the package.
//!
//! The flake is called the way Nix calls it, with `nixpkgs` standing for the
//! input (its `lib`, `legacyPackages` and `outPath`), because the corpus is
//! a plain tree rather than a locked flake input. Building needs a nixpkgs
//! with Rust in /nix/store, which no test machine has; `nix-build` is the
//! step the README leaves to the user.
//!
//! Checked once by hand against C++ Nix 2.8 (which lacks
//! `builtins.readFileType`, needed by `lib.fileset`, so only the vendored
//! crates could be compared): `(import ./default.nix { pkgs = import
//! NIXPKGS/pkgs/top-level/impure.nix { ... }; }).cargoDeps.drvPath` is the
//! same in both.

use attrfs_tests::{eval_strict, require_corpus, workspace_root};

fn expression(nixpkgs: &str, root: &str) -> String {
    format!(
        r#"let
  N = {nixpkgs};
  lib = import (N + "/lib");
  nixpkgs = {{
    inherit lib;
    outPath = N;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system:
      import N {{ inherit system; config = {{ allowAliases = false; }}; overlays = [ ]; }});
  }};
  flake = import {root}/flake.nix;
  self = flake.outputs {{ inherit self nixpkgs; }} // {{ outPath = {root}; }};
  overlaid = import N {{ system = "x86_64-linux"; config = {{ allowAliases = false; }}; overlays = [ self.overlays.default ]; }};
  package = self.packages.x86_64-linux.default;
in {{
  package = package.drvPath;
  name = package.name;
  defaultNix = (import {root}/default.nix {{ pkgs = nixpkgs.legacyPackages.x86_64-linux; }}).drvPath;
  overlay = overlaid.attrfs.drvPath;
  app = self.apps.x86_64-linux.default.program == "${{package}}/bin/attrfs";
  appType = self.apps.x86_64-linux.default.type;
  shell = self.devShells.x86_64-linux.default.drvPath;
  aarch64 = self.packages.aarch64-linux.default.drvPath;
  mainProgram = package.meta.mainProgram;
  installsManPages = lib.hasInfix "installManPage attrfs.1" package.postInstall;
  installsCompletions = lib.hasInfix "attrfs completions zsh" package.postInstall;
  srcHasNoTarget = !(builtins.pathExists "${{package.src}}/target");
  buildsDist = package.cargoBuildType == "dist";
  srcHasCargoLock = builtins.pathExists "${{package.src}}/Cargo.lock";
  srcHasEveryCrate = builtins.all (m: builtins.pathExists "${{package.src}}/${{m}}/Cargo.toml")
    (lib.importTOML {root}/Cargo.toml).workspace.members;
  module = builtins.isFunction (import {root}/contrib/nix/module.nix);
}}"#
    )
}

#[test]
fn flake_and_default_nix_instantiate_attrfs() {
    let Some(corpus) = require_corpus() else {
        return;
    };
    let nixpkgs = corpus.join("nixpkgs-26.11-slim");
    let root = workspace_root();
    let out = eval_strict(&expression(
        nixpkgs.to_str().expect("UTF-8 path"),
        root.to_str().expect("UTF-8 path"),
    ))
    .unwrap_or_else(|e| panic!("the packaging does not evaluate:\n{e}"));
    let drv = |key: &str| -> String {
        let start = out
            .find(&format!("{key} = \""))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            + key.len()
            + 4;
        out[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let package = drv("package");
    assert!(
        package.starts_with("/nix/store/") && package.ends_with("-attrfs-0.1.0.drv"),
        "{out}"
    );
    assert_eq!(
        drv("defaultNix"),
        package,
        "default.nix differs from the flake"
    );
    assert_eq!(
        drv("overlay"),
        package,
        "the overlay differs from the flake"
    );
    assert!(drv("shell").ends_with("-nix-shell.drv"), "{out}");
    let aarch64 = drv("aarch64");
    assert!(
        aarch64.ends_with("-attrfs-0.1.0.drv") && aarch64 != package,
        "{out}"
    );
    for fact in [
        "app = true;",
        "appType = \"app\";",
        "mainProgram = \"attrfs\";",
        "installsManPages = true;",
        "installsCompletions = true;",
        "srcHasNoTarget = true;",
        "buildsDist = true;",
        "srcHasCargoLock = true;",
        "srcHasEveryCrate = true;",
        "module = true;",
        "name = \"attrfs-0.1.0\";",
    ] {
        assert!(out.contains(fact), "expected {fact} in {out}");
    }
}
