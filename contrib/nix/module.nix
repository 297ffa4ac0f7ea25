# NixOS module: attrfs mounts as systemd services.
#
#   imports = [ /path/to/attrfs/contrib/nix/module.nix ];   # or the flake's nixosModules.default
#   services.attrfs.mounts.cfg = {
#     source = "<nixpkgs/nixos>";
#     mountPoint = "/mnt/cfg";
#     attr = "config";
#     argstrs.configuration = "/etc/nixos/configuration.nix";
#   };
#
# Each mount NAME is a service `attrfs-NAME` running `attrfs mount` in the
# foreground as root, restarted on failure and stopped with `attrfs umount`.
# Works with NixOS 20.09 and later.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:

let
  inherit (lib)
    concatLists
    concatStringsSep
    literalExample
    mapAttrs'
    mapAttrsToList
    mkIf
    mkOption
    nameValuePair
    optionals
    types
    ;

  cfg = config.services.attrfs;

  # `literalExpression` replaced `literalExample` in NixOS 21.11.
  literal = lib.literalExpression or literalExample;

  # One word of a systemd command line: bare when it is plain, otherwise
  # double-quoted with systemd's escapes; `%` and `$` are doubled so that
  # systemd expands neither specifiers nor variables in it.
  systemdArg =
    arg:
    let
      s = toString arg;
      escaped = lib.replaceStrings [ "%" "$" ] [ "%%" "$$" ] s;
    in
    if builtins.match "[A-Za-z0-9_./:=@+,#-]+" s != null then
      escaped
    else
      "\"" + lib.replaceStrings [ "\\" "\"" ] [ "\\\\" "\\\"" ] escaped + "\"";

  mountOptions =
    { name, ... }:
    {
      options = {
        source = mkOption {
          type = types.nullOr (types.either types.path types.str);
          default = null;
          example = "/etc/nixos/configuration.nix";
          description = ''
            The Nix file (or directory with a default.nix, or a search path
            entry such as "<nixpkgs/nixos>") to evaluate and mount. Exactly
            one of source and flake is set.
          '';
        };
        flake = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "/etc/nixos";
          description = ''
            A flake reference to mount instead of a file: the service runs
            `attrfs mount --flake REF#ATTR` (attr from the attr option, if set).
          '';
        };
        mountPoint = mkOption {
          type = types.str;
          example = "/mnt/cfg";
          description = "Where to mount; created (empty) before the mount if missing.";
        };
        attr = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "config";
          description = "The attribute path of the value to mount (-A, or the flake output).";
        };
        args = mkOption {
          type = types.attrsOf types.str;
          default = { };
          example = {
            overlays = "[ ]";
          };
          description = "--arg NAME EXPR for the root function: each value is a Nix expression.";
        };
        argstrs = mkOption {
          type = types.attrsOf types.str;
          default = { };
          example = {
            system = "x86_64-linux";
          };
          description = "--argstr NAME STRING for the root function.";
        };
        extraArgs = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [
            "--eval-timeout"
            "60"
          ];
          description = "More arguments for `attrfs mount`, appended last.";
        };
        allowOther = mkOption {
          type = types.bool;
          default = false;
          description = ''
            Let every user on the machine read the mount (FUSE allow_other).
            The service evaluates as root, so the mount shows every value the
            evaluation can compute, including the contents of files that only
            root may read (anything reached through builtins.readFile, import
            or a path). With allowOther the mount also uses
            default_permissions: the kernel checks the files' modes, which
            are read-only for everyone. Without it (the default), only root
            can read the mount.
          '';
        };
      };
    };

  commandLine =
    name: m:
    [
      "${cfg.package}/bin/attrfs"
      "mount"
    ]
    ++ (
      if m.flake != null then
        [
          "--flake"
          (if m.attr != null then "${m.flake}#${m.attr}" else m.flake)
        ]
      else
        [ (toString m.source) ]
    )
    ++ [ m.mountPoint ]
    ++ optionals (m.flake == null && m.attr != null) [
      "-A"
      m.attr
    ]
    ++ concatLists (
      mapAttrsToList (n: v: [
        "--arg"
        n
        v
      ]) m.args
    )
    ++ concatLists (
      mapAttrsToList (n: v: [
        "--argstr"
        n
        v
      ]) m.argstrs
    )
    ++ optionals m.allowOther [
      "-o"
      "allow_other,default_permissions"
    ]
    ++ m.extraArgs;

  service =
    name: m:
    nameValuePair "attrfs-${name}" {
      description = "attrfs mount of ${if m.flake != null then m.flake else toString m.source} on ${m.mountPoint}";
      wantedBy = [ "multi-user.target" ];
      after = [ "local-fs.target" ];
      # fusermount3, which attrfs falls back to for unmounting.
      path = [ pkgs.fuse3 ];
      # For <nixpkgs> in sources and arguments.
      environment.NIX_PATH = concatStringsSep ":" config.nix.nixPath;
      serviceConfig = {
        Type = "simple";
        ExecStartPre = "${pkgs.coreutils}/bin/mkdir -p ${systemdArg m.mountPoint}";
        ExecStart = concatStringsSep " " (map systemdArg (commandLine name m));
        ExecStop = concatStringsSep " " (
          map systemdArg [
            "${cfg.package}/bin/attrfs"
            "umount"
            m.mountPoint
          ]
        );
        Restart = "on-failure";
        RestartSec = "5s";
      };
    };
in
{
  options.services.attrfs = {
    package = mkOption {
      type = types.package;
      default = pkgs.attrfs or (pkgs.callPackage ./package.nix { });
      defaultText = literal "pkgs.attrfs, or attrfs built from this checkout";
      description = "The attrfs package the mounts run.";
    };
    mounts = mkOption {
      type = types.attrsOf (types.submodule mountOptions);
      default = { };
      description = "attrfs mounts, each run by the service attrfs-NAME.";
    };
  };

  config = mkIf (cfg.mounts != { }) {
    assertions = mapAttrsToList (name: m: {
      assertion = (m.source == null) != (m.flake == null);
      message = "services.attrfs.mounts.${name}: set exactly one of source and flake.";
    }) cfg.mounts;

    boot.kernelModules = [ "fuse" ];
    environment.systemPackages = [
      cfg.package
      pkgs.fuse3
    ];
    systemd.services = mapAttrs' service cfg.mounts;
    # updatedb must not walk evaluated values. Definitions of this list
    # replace its default, so the default is kept explicitly.
    services.locate.pruneFS = (options.services.locate.pruneFS.default or [ ]) ++ [ "fuse.attrfs" ];
  };
}
