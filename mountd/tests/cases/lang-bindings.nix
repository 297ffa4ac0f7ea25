# let, rec, inherit, with, nested and dynamic attribute keys, scoping.
let
  x = 1;
  y = x + 1;
  attrs = { a = 10; b.c = 20; b.d = 30; };
  name = "dyn";
in
rec {
  sum = x + y;
  inherited = { inherit x y; inherit (attrs) a; };
  nested = attrs.b;
  dynamic = { ${name} = true; "${name}2" = false; };
  withScope = with attrs; a + b.c;
  shadowed = let x = 5; in with { x = 6; }; x;
  recursive = sum * 2;
  selfRef = (rec { p = q + 1; q = 2; }).p;
  letIn = let f = n: if n == 0 then 0 else n + f (n - 1); in f 100;
  orDefault = attrs.missing or "fallback";
  hasAttr = [ (attrs ? a) (attrs ? b.c) (attrs ? b.z) ];
  update = { a = 1; b = 2; } // { b = 3; c = 4; };
}
