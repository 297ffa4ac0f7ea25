# String builtins, regular expressions, versions, hashes, JSON, TOML.
{
  concatStringsSep = builtins.concatStringsSep ", " [ "a" "b" "c" ];
  substring = [ (builtins.substring 1 3 "abcdef") (builtins.substring 4 10 "abcdef") ];
  stringLength = builtins.stringLength "hello";
  replaceStrings = builtins.replaceStrings [ "o" "l" ] [ "0" "1" ] "hello world";
  split = builtins.split "(a)|b" "xaybz";
  match = [ (builtins.match "([a-z]+)-([0-9.]+)" "hello-2.10") (builtins.match "x" "y") ];
  compareVersions = [ (builtins.compareVersions "1.2.3" "1.2.10") (builtins.compareVersions "2.0" "2.0") (builtins.compareVersions "1.0pre1" "1.0") ];
  parseDrvName = builtins.parseDrvName "hello-world-2.10.1";
  splitVersion = builtins.splitVersion "1.2.3pre4";
  hashString = [ (builtins.hashString "sha256" "abc") (builtins.hashString "md5" "abc") (builtins.hashString "sha1" "abc") ];
  toJSON = builtins.toJSON { a = [ 1 2.5 "s" null true ]; b = { c = "\n\"q\""; }; };
  fromJSON = builtins.fromJSON ''{ "x": [1, 2.5, "three", null, false], "y": { "z": "\u00e9" } }'';
  fromTOML = builtins.fromTOML ''
    name = "attrfs"
    [section]
    list = [1, 2]
    nested.key = true
  '';
  baseNameOf = [ (baseNameOf "/a/b/c.nix") (baseNameOf "/a/b/") ];
  dirOf = [ (dirOf "/a/b/c.nix") (dirOf "/a") ];
  upper = builtins.replaceStrings [ "a" ] [ "A" ] "banana";
}
