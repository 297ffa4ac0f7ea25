# Derivations: drvPath and outPath of small derivations, with inputs,
# several outputs, a fixed output, a source path and string context.
let
  base = derivation {
    name = "base";
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "echo base > $out" ];
  };
  multi = derivation {
    name = "multi-1.0";
    system = "x86_64-linux";
    builder = "/bin/sh";
    outputs = [ "out" "dev" "doc" ];
    args = [ "-c" "mkdir $out $dev $doc" ];
    dep = base;
  };
  fixed = derivation {
    name = "fixed.txt";
    system = "x86_64-linux";
    builder = "/bin/sh";
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = "0000000000000000000000000000000000000000000000000000000000000000";
  };
  user = derivation {
    name = "user";
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "cat ${fixed} ${multi.dev} ${./data/text.txt} > $out" ];
    env = "${base}/bin:${multi}";
    list = [ 1 "two" true null ];
  };
  paths = d: { inherit (d) drvPath outPath; };
in
{
  base = paths base;
  multi = paths multi // { dev = multi.dev.outPath; doc = multi.doc.outPath; outputs = multi.outputs; };
  fixed = paths fixed;
  user = paths user;
  type = base.type;
  context = builtins.attrNames (builtins.getContext "${user} ${multi.dev}");
  discarded = builtins.unsafeDiscardStringContext "${base}";
}
