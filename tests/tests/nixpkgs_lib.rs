//! Real library code: nixpkgs 20.09's own lib test suite, and a modern
//! (2026) nixpkgs lib across strings, lists, attrsets, versions, trivial,
//! fixed points and the module system, checked against the results the
//! nixpkgs manual documents.

use attrfs_tests::{eval_strict, require_corpus};

#[test]
fn nixpkgs_20_09_lib_tests_pass() {
    let Some(corpus) = require_corpus() else {
        return;
    };
    let misc = corpus.join("nixpkgs-20.09/lib/tests/misc.nix");
    let r = eval_strict(&format!("import {}", misc.display()));
    assert_eq!(
        r.as_deref(),
        Ok("[ ]"),
        "lib/tests/misc.nix lists failing tests"
    );
}

fn check(cases: &[(&str, &str)]) {
    let Some(corpus) = require_corpus() else {
        return;
    };
    let lib = corpus.join("nixpkgs-lib/lib");
    let mut failures = Vec::new();
    for (expr, expected) in cases {
        let full = format!("let lib = import {}; in {expr}", lib.display());
        match eval_strict(&full) {
            Ok(got) if got == *expected => {}
            Ok(got) => failures.push(format!("{expr}\n  expected {expected}\n       got {got}")),
            Err(e) => failures.push(format!(
                "{expr}\n  error: {}",
                e.lines().take(6).collect::<Vec<_>>().join("\n  ")
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn modern_lib_loads() {
    let Some(corpus) = require_corpus() else {
        return;
    };
    let lib = corpus.join("nixpkgs-lib/lib");
    let v = eval_strict(&format!("(import {}).version", lib.display())).expect("lib.version");
    assert!(v.starts_with('"') && v.len() > 4, "version: {v}");
}

#[test]
fn modern_lib_strings_lists_attrsets() {
    check(&[
        (
            r#"lib.concatMapStringsSep ", " toString [ 1 2 3 ]"#,
            r#""1, 2, 3""#,
        ),
        (r#"lib.splitString "." "a.b.c""#, r#"[ "a" "b" "c" ]"#),
        (r#"lib.hasPrefix "foo" "foobar""#, "true"),
        (r#"lib.toUpper "abc""#, r#""ABC""#),
        (r#"lib.escapeShellArg "it's""#, r#""'it'\\''s'""#),
        (r#"lib.removeSuffix ".nix" "default.nix""#, r#""default""#),
        (r#"lib.strings.toInt "42""#, "42"),
        ("lib.range 1 5", "[ 1 2 3 4 5 ]"),
        ("lib.unique [ 3 1 3 2 1 ]", "[ 3 1 2 ]"),
        ("lib.flatten [ 1 [ 2 [ 3 ] ] 4 ]", "[ 1 2 3 4 ]"),
        ("lib.take 2 (lib.drop 1 [ 1 2 3 4 ])", "[ 2 3 ]"),
        (
            "lib.zipLists [ 1 2 ] [ \"a\" \"b\" ]",
            r#"[ { fst = 1; snd = "a"; } { fst = 2; snd = "b"; } ]"#,
        ),
        ("lib.sort (a: b: a < b) [ 3 1 2 ]", "[ 1 2 3 ]"),
        (
            "lib.mapAttrs' (n: v: lib.nameValuePair \"x${n}\" (v * 2)) { a = 1; }",
            "{ xa = 2; }",
        ),
        (
            "lib.filterAttrs (n: v: v > 1) { a = 1; b = 2; }",
            "{ b = 2; }",
        ),
        (
            "lib.recursiveUpdate { a.b = 1; a.c = 2; } { a.b = 3; }",
            "{ a = { b = 3; c = 2; }; }",
        ),
        ("lib.attrByPath [ \"a\" \"b\" ] 0 { a.b = 7; }", "7"),
        ("lib.setAttrByPath [ \"a\" \"b\" ] 1", "{ a = { b = 1; }; }"),
        (
            "lib.collect builtins.isInt { a = 1; b = { c = 2; }; }",
            "[ 1 2 ]",
        ),
    ]);
}

#[test]
fn modern_lib_versions_trivial_fixed_points() {
    check(&[
        (r#"lib.versionOlder "1.2" "1.10""#, "true"),
        (r#"lib.versions.majorMinor "2.36.1""#, r#""2.36""#),
        (r#"lib.versions.splitVersion "1.2.3pre""#, r#"[ "1" "2" "3" "pre" ]"#),
        ("lib.id 5", "5"),
        ("lib.const 1 2", "1"),
        ("lib.pipe 2 [ (x: x + 1) (x: x * 10) ]", "30"),
        ("lib.boolToString true", r#""true""#),
        ("lib.toHexString 255", r#""FF""#),
        ("(lib.fix (self: { a = 1; b = self.a + 1; })).b", "2"),
        (
            "(lib.fix (lib.extends (final: prev: { b = prev.b * 10; }) (self: { a = 1; b = self.a + 1; }))).b",
            "20",
        ),
        ("((lib.makeExtensible (self: { x = 1; y = self.x + 1; })).extend (f: p: { x = 5; })).y", "6"),
    ]);
}

#[test]
fn modern_lib_eval_modules() {
    let modules = r#"
      (lib.evalModules {
        modules = [
          ({ lib, ... }: {
            options = {
              name = lib.mkOption { type = lib.types.str; default = "world"; };
              port = lib.mkOption { type = lib.types.port; default = 80; };
              enable = lib.mkEnableOption "the thing";
              tags = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
              settings = lib.mkOption { type = lib.types.attrsOf lib.types.int; default = { }; };
            };
          })
          ({ config, lib, ... }: {
            enable = true;
            tags = [ "a" ];
            settings = lib.mkMerge [ { x = 1; } (lib.mkIf config.enable { y = 2; }) ];
            port = lib.mkOverride 50 8080;
          })
          ({ lib, ... }: {
            tags = [ "b" ];
            name = lib.mkForce "nix";
            port = 443;
            settings.z = lib.mkIf false 3;
          })
        ];
      }).config
    "#;
    check(&[(
        modules,
        // Later modules' definitions come first, as C++ Nix 2.8 computes.
        r#"{ enable = true; name = "nix"; port = 8080; settings = { x = 1; y = 2; }; tags = [ "b" "a" ]; }"#,
    )]);
}
