# Arithmetic, comparison, Boolean logic, list and string operators.
{
  ints = [ (7 + 3) (7 - 10) (7 * 6) (7 / 2) (-7 / 2) (builtins.div 9 4) ];
  floats = [ (1.5 + 2) (10 / 4.0) (0.1 * 3) (1.0 / 3) ];
  compare = [ (1 < 2) (2 <= 2) ("a" < "b") ([ 1 2 ] < [ 1 3 ]) (1 == 1.0) ({ a = 1; } == { a = 1; }) ];
  logic = [ (true && false) (true || false) (!true) (false -> true) ];
  concat = [ 1 2 ] ++ [ 3 ] ++ [ ];
  strings = "abc" + "def";
  precedence = 2 + 3 * 4 - 8 / 2;
  neg = -(3 - 5);
  bits = [ (builtins.bitAnd 12 10) (builtins.bitOr 12 10) (builtins.bitXor 12 10) ];
  rounding = [ (builtins.floor 2.7) (builtins.ceil 2.1) (builtins.floor (-2.5)) ];
}
