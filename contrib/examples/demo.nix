# The expression `contrib/demo.sh` mounts: a little of everything attrfs
# shows, with no nixpkgs needed.
let
  hello = derivation {
    name = "hello-2.12";
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "echo hello > $out" ];
  };
in
{
  greeting = "Hello from attrfs!\n";
  answer = 42;
  pi = 3.14159;
  enabled = true;
  nothing = null;
  users = {
    alice = { uid = 1000; shell = "/bin/bash"; groups = [ "wheel" "video" ]; };
    bob = { uid = 1001; shell = "/bin/zsh"; groups = [ ]; };
  };
  "names/with/slashes" = "attribute names are encoded reversibly";
  inherit hello;
  script = "${hello}/bin/hello";
  broken = throw "this value fails: reading it gives EIO and the message is in user.nix.error";
  double = x: x * 2;
  self = ./demo.nix;
}
