# String literals, escapes, interpolation, indented strings, paths as strings.
let
  n = 42;
  who = "world";
in
{
  interpolated = "hello ${who}, ${toString n}";
  escapes = "tab\there\nnewline \"quoted\" \${not interpolated} back\\slash";
  indented = ''
    first line
      indented more
    ''${escaped} and ${who}
    tab:''\t end
  '';
  indentedSingle = ''  no newline  '';
  toStrings = [ (toString 1) (toString true) (toString false) (toString null) (toString [ 1 "a" [ 2 ] ]) (toString 2.5) ];
  nestedInterp = "${"a${"b${"c"}"}"}";
  multiline = "a
b";
}
