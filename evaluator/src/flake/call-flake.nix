# Builds a flake's value from its lock file, as C++ Nix's call-flake does:
# every lock node is fetched with fetchTree from its locked attributes, its
# flake.nix imported and its outputs called with its inputs (follows
# resolved) and `self`. Written for attrfs; the result's shape is current
# C++ Nix's: outputs // sourceInfo // { outPath inputs outputs sourceInfo _type }.
{ lockFileStr, rootSrc, rootSubdir, rootName }:
let
  lockFile =
    if lockFileStr == null
    then { version = 7; root = "root"; nodes.root = { }; }
    else builtins.fromJSON lockFileStr;

  checkedLock =
    if !(lockFile ? version) || lockFile.version < 5 || lockFile.version > 7
    then throw "lock file of flake '${rootName}' has unsupported version ${toString (lockFile.version or "?")} (attrfs reads versions 5 to 7)"
    else lockFile;

  # A node key from a lock-file input: a key, or a follows path from the root.
  resolveInput = spec:
    if builtins.isList spec then getInputByPath checkedLock.root spec else spec;

  getInputByPath = nodeKey: path:
    if path == [ ]
    then nodeKey
    else
      let node = checkedLock.nodes.${nodeKey}; name = builtins.head path; in
      if !(node.inputs or { } ? ${name})
      then throw "input '${builtins.concatStringsSep "/" path}' followed from '${nodeKey}' does not exist in the lock file of '${rootName}'"
      else getInputByPath (resolveInput node.inputs.${name}) (builtins.tail path);

  allNodes = builtins.mapAttrs
    (key: node:
      let
        isRoot = key == checkedLock.root;
        sourceInfo =
          if isRoot
          then rootSrc
          else if !(node ? locked)
          then throw "input '${key}' of flake '${rootName}' is not locked in flake.lock (attrfs does not write lock files; run 'nix flake lock')"
          else builtins.fetchTree (removeAttrs node.locked [ "dir" ]);
        subdir = if isRoot then rootSubdir else node.locked.dir or "";
        outPath = sourceInfo.outPath + (if subdir == "" then "" else "/" + subdir);
        flake = import (outPath + "/flake.nix");
        inputs = builtins.mapAttrs
          (inputName: spec: allNodes.${resolveInput spec})
          (node.inputs or { });
        declared = builtins.attrNames (flake.inputs or { })
          ++ builtins.filter (n: n != "self") (builtins.attrNames (builtins.functionArgs flake.outputs));
        missing = builtins.filter (n: !(inputs ? ${n})) declared;
        outputs =
          if isRoot && missing != [ ]
          then throw "input '${builtins.head missing}' of flake '${rootName}' is not locked: flake.lock has no entry for it (attrfs does not write lock files; run 'nix flake lock')"
          else flake.outputs (inputs // { self = result; });
        result = outputs // sourceInfo // {
          inherit outPath inputs outputs sourceInfo;
          _type = "flake";
        };
      in
      if node.flake or true
      then
        assert builtins.isFunction flake.outputs;
        result
      else sourceInfo)
    checkedLock.nodes;
in
allNodes.${checkedLock.root}
