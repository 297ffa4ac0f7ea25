# Reading files, directories, paths and their store paths.
{
  readFile = builtins.readFile ./data/text.txt;
  readDir = builtins.readDir ./data/dir;
  pathExists = [ (builtins.pathExists ./data/text.txt) (builtins.pathExists ./data/missing) ];
  pathString = "${./data/text.txt}";
  pathDir = "${./data/dir}";
  toFile = builtins.toFile "note.txt" "written by toFile";
  hashFile = builtins.hashFile "sha256" ./data/text.txt;
  filterSource = "${builtins.filterSource (path: type: baseNameOf path != "sub") ./data/dir}";
  path = builtins.path { path = ./data/dir; name = "renamed"; };
}
