# Lambdas, formals, defaults, @-patterns, currying, laziness, assert.
let
  add = a: b: a + b;
  withDefaults = { a, b ? a * 2, ... }: a + b;
  atPattern = args@{ x, ... }: args.y or 0 + x;
  lazy = { used, unused ? throw "never forced" }: used;
  compose = f: g: x: f (g x);
  twice = f: compose f f;
in
{
  curried = add 1 2;
  partial = map (add 10) [ 1 2 3 ];
  defaults = [ (withDefaults { a = 1; }) (withDefaults { a = 1; b = 1; }) (withDefaults { a = 1; c = 9; }) ];
  pattern = atPattern { x = 1; y = 41; };
  laziness = lazy { used = "ok"; };
  lazyList = builtins.length [ (throw "not forced") (abort "nor this") ];
  composed = twice (x: x * 3) 2;
  asserted = assert 1 + 1 == 2; "assert passed";
  conditional = if builtins.length [ 1 ] > 0 then "then" else "else";
  functionArgs = builtins.functionArgs withDefaults;
  isFunction = [ (builtins.isFunction add) (builtins.isFunction 1) ];
}
