# attrfs, built with nixpkgs' Rust platform from the checked-in Cargo.lock
# (every crate is fetched by its checksum; no cargoHash to keep up to date).
# Used by ../../default.nix and ../../flake.nix; needs a nixpkgs with Rust
# >= 1.85 (the workspace's rust-version) and lib.fileset (nixpkgs >= 23.11).
{
  lib,
  stdenv,
  rustPlatform,
  installShellFiles,
}:

let
  root = ../..;
  manifest = (lib.importTOML (root + "/Cargo.toml")).workspace;
  workspace = manifest.package;
in
rustPlatform.buildRustPackage {
  pname = "attrfs";
  inherit (workspace) version;

  # Only what cargo needs: no target/, no contrib/. The crates are the
  # workspace's members as Cargo.toml lists them, so a new crate is never
  # left out of the source (a hand-kept list here once missed four).
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions (
      map (p: root + "/${p}") ([ "Cargo.toml" "Cargo.lock" ] ++ manifest.members)
    );
  };

  cargoLock.lockFile = root + "/Cargo.lock";
  # The whole program optimised as one unit (Cargo.toml, `profile.dist`).
  buildType = "dist";
  cargoBuildFlags = [
    "--package"
    "attrfs"
  ];

  nativeBuildInputs = [ installShellFiles ];

  # The test suite mounts through /dev/fuse as root and reads ../shared,
  # neither of which a build sandbox has: run it with contrib/test.sh.
  doCheck = false;

  # Completions and man pages come from the binary's own clap definitions.
  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    installShellCompletion --cmd attrfs \
      --bash <($out/bin/attrfs completions bash) \
      --zsh <($out/bin/attrfs completions zsh) \
      --fish <($out/bin/attrfs completions fish)
    $out/bin/attrfs man > attrfs.1
    for sub in mount eval umount; do
      $out/bin/attrfs man $sub > attrfs-$sub.1
    done
    installManPage attrfs.1 attrfs-mount.1 attrfs-eval.1 attrfs-umount.1
  '';

  meta = {
    description = "Mount an evaluated Nix expression as a read-only filesystem";
    longDescription = ''
      attrfs evaluates a Nix expression with its own evaluator and mounts the
      result through FUSE: attribute sets are directories, strings and
      numbers files, derivations expose their .drv and inputs.
    '';
    license = lib.licenses.mit;
    mainProgram = "attrfs";
    platforms = lib.platforms.linux;
  };
}
