# Attribute set builtins.
let s = { b = 2; a = 1; c = 3; };
in
{
  names = builtins.attrNames s;
  values = builtins.attrValues s;
  listToAttrs = builtins.listToAttrs [ { name = "x"; value = 1; } { name = "y"; value = 2; } { name = "x"; value = 3; } ];
  mapAttrs = builtins.mapAttrs (name: value: "${name}=${toString value}") s;
  removeAttrs = builtins.removeAttrs s [ "a" "zzz" ];
  intersectAttrs = builtins.intersectAttrs { a = null; c = null; d = null; } s;
  catAttrs = builtins.catAttrs "a" [ { a = 1; } { b = 2; } { a = 3; } ];
  getAttr = builtins.getAttr "b" s;
  hasAttr = builtins.hasAttr "d" s;
  typeOf = map builtins.typeOf [ 1 1.0 "s" true null [ ] { } (x: x) ./data/text.txt ];
  isTypes = [ (builtins.isAttrs s) (builtins.isList [ ]) (builtins.isString "") (builtins.isInt 1) (builtins.isFloat 1) (builtins.isBool null) (builtins.isNull null) (builtins.isPath ./.) ];
  tryEval = [ (builtins.tryEval 1) (builtins.tryEval (throw "caught")) (builtins.tryEval (assert false; 1)) ];
  seq = builtins.seq 1 "seq";
  deepSeq = builtins.deepSeq { a = [ 1 ]; } "deepSeq";
}
