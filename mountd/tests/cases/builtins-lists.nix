# List builtins.
let xs = [ 5 3 8 1 9 2 ];
in
{
  map = map (x: x * 2) xs;
  filter = builtins.filter (x: x > 4) xs;
  foldl = builtins.foldl' (acc: x: acc + x) 0 xs;
  genList = builtins.genList (i: i * i) 6;
  sort = builtins.sort builtins.lessThan xs;
  sortStable = builtins.sort (a: b: a.k < b.k) [ { k = 2; v = "a"; } { k = 1; v = "b"; } { k = 2; v = "c"; } { k = 1; v = "d"; } ];
  elem = [ (builtins.elem 8 xs) (builtins.elem 7 xs) ];
  elemAt = builtins.elemAt xs 2;
  headTail = [ (builtins.head xs) (builtins.tail xs) ];
  length = builtins.length xs;
  allAny = [ (builtins.all (x: x > 0) xs) (builtins.any (x: x > 8) xs) ];
  partition = builtins.partition (x: x > 4) xs;
  groupBy = builtins.groupBy (x: if x > 4 then "big" else "small") xs;
  concatLists = builtins.concatLists [ [ 1 ] [ ] [ 2 3 ] ];
  concatMap = builtins.concatMap (x: [ x x ]) [ 1 2 ];
  zipAttrsWith = builtins.zipAttrsWith (name: values: values) [ { a = 1; } { a = 2; b = 3; } ];
}
