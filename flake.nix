{
  description = "attrfs: mount an evaluated Nix expression as a read-only filesystem";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        attrfs = pkgs.callPackage ./contrib/nix/package.nix { };
        default = attrfs;
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.default}/bin/attrfs";
        };
      });

      overlays.default = final: prev: {
        attrfs = final.callPackage ./contrib/nix/package.nix { };
      };

      # services.attrfs, with this flake's attrfs as the default package.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./contrib/nix/module.nix ];
          services.attrfs.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
          packages = with pkgs; [
            clippy
            rustfmt
            rust-analyzer
            fuse3 # fusermount3, mount.fuse3
            attr # getfattr, for the FUSE tests
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
