# attrfs for non-flake users:
#
#   nix-build                                   # with <nixpkgs>
#   nix-build --arg pkgs 'import /path/to/nixpkgs { }'
#   nix-env -f . -i                             # install into your profile
#
# The NixOS module is ./contrib/nix/module.nix (see the README).
{
  pkgs ? import <nixpkgs> { },
}:

pkgs.callPackage ./contrib/nix/package.nix { }
