#!/usr/bin/env python3
"""Differential tester: attrfs's evaluator against C++ Nix's nix-instantiate.

Generates a few thousand Nix expressions systematically, from tables of
builtins x argument values (right and wrong types), operators x operands,
regex patterns x subjects, version strings x version strings, and so on;
evaluates each with

    attrfs eval --strict [--json] -E EXPR
    nix-instantiate --eval --strict [--json] -E EXPR

and compares: a case passes when both succeed with byte-identical stdout
(modulo the trailing newline, which nix-instantiate omits after --json), or
when both fail (error texts are not compared).  Randomised sampling uses a
fixed seed, so the set of cases is the same on every run.

Usage:
    contrib/difftest.py [--attrfs PATH] [--nix PATH] [--only SUBSTRING]
                        [--jobs N] [--report FILE] [--strict-exit] [--list]

Exits 0 even when there are mismatches, unless --strict-exit is given; exits
0 with a message when nix-instantiate is not installed.

The reference installed here is C++ Nix 2.8, older than the semantics attrfs
follows (2.36, the version of the lang tests).  Each mismatch is run through
RULES: a known 2.8-vs-2.36 change is labelled "version difference", a known
attrfs divergence "our bug", a settled-as-unsettled one "unclear"; everything
else is "unclassified" and needs a human look (then, ideally, a rule).
docs/notes-difftest.md holds the reviewed results of a run.
"""

import argparse
import concurrent.futures
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading

SEED = 20250601
TIMEOUT = 20  # seconds per evaluation


# ---------------------------------------------------------------------------
# Helpers for writing Nix source


def nstr(s):
    """A Nix double-quoted string literal whose value is the Python string s."""
    out = ['"']
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif c == "$" and s[i + 1:i + 2] == "{":
            out.append("\\$")
        else:
            out.append(c)
        i += 1
    out.append('"')
    return "".join(out)


def nlist(items):
    return "[ " + " ".join("(%s)" % x for x in items) + " ]" if items else "[ ]"


def call(fn, *args):
    return fn + "".join(" (%s)" % a for a in args)


def b(name, *args):
    return call("builtins." + name, *args)


# ---------------------------------------------------------------------------
# Value pools, tagged by type

POOLS = {
    "int": ["0", "1", "-1", "2", "3", "42", "-7", "1000000",
            "9223372036854775807", "(-9223372036854775807 - 1)"],
    "float": ["0.0", "1.5", "-2.5", "0.1", "3.0", "1.0e3", "2.5e-3",
              "123456.789", "1.0e20", "1.0e-7"],
    "string": ['""', '"a"', '"abc"', '"hello world"', '"a-b_c.d"',
               '"üñícödé"', '"line\\nbreak"', '"tab\\there"', '"quote\\"q"',
               '"$${x}"', '"1.2.3"', '"\\\\back"'],
    "bool": ["true", "false"],
    "null": ["null"],
    # Paths that do not exist: nothing may be copied into the store.
    "path": ["/foo/bar", "/foo/bar.nix", "/nonexistent/x/y"],
    "list": ["[ ]", "[ 1 2 3 ]", "[ 3 1 2 ]", '[ "b" "a" "c" ]',
             '[ 1 "a" null true ]', "[ [ 1 2 ] [ 3 ] ]",
             "[ { a = 1; } { a = 2; b = 3; } ]", "[ 1.5 2 ]"],
    "attrs": ["{ }", "{ a = 1; }", "{ a = 1; b = 2; }",
              '{ b = "x"; a = [ 1 2 ]; }', '{ "with space" = 1; "1" = 2; }',
              "{ x.y.z = 1; }", "{ a = { b = 1; }; c = null; }",
              '{ outPath = "/foo"; }'],
    "lambda": ["(x: x)", "(x: y: x)", "({ a, b ? 2 }: a + b)",
               "({ a, ... }@args: args)", "builtins.add", "(builtins.add 1)",
               "({ }: 1)"],
}

# One representative per type, to inject as a wrong-typed argument.
REPR = {
    "int": "1", "float": "1.5", "string": '"s"', "bool": "true",
    "null": "null", "path": "/foo/bar", "list": "[ 1 ]",
    "attrs": "{ a = 1; }", "lambda": "(x: x)",
}
ALL_TYPES = list(REPR)
ALL_VALUES = [v for t in ALL_TYPES for v in POOLS[t]]


# ---------------------------------------------------------------------------
# Case generation


class Case:
    __slots__ = ("id", "group", "expr", "json")

    def __init__(self, group, expr, json=False):
        self.group = group
        self.expr = expr
        self.json = json
        self.id = None


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.cases = []
        self.seen = set()

    def add(self, group, expr, json=False):
        key = (expr, json)
        if key in self.seen:
            return
        self.seen.add(key)
        self.cases.append(Case(group, expr, json))

    def sample(self, seq, k):
        seq = list(seq)
        if len(seq) <= k:
            return seq
        return self.rng.sample(seq, k)

    def builtin(self, group, name, slots, accepts=None, cap=24):
        """Cartesian product of the good values of each argument slot (capped
        by sampling), then one call per slot per wrong type, the other slots
        taking their first good value.  accepts[i] is the set of types slot i
        accepts (None: any type, no wrong-type injection)."""
        combos = list(itertools.product(*slots))
        for args in self.sample(combos, cap):
            self.add(group, b(name, *args))
        if accepts is None:
            return
        for i, ok in enumerate(accepts):
            if ok is None:
                continue
            for t in ALL_TYPES:
                if t in ok:
                    continue
                args = [s[0] for s in slots]
                args[i] = REPR[t]
                self.add(group + "/wrong-type", b(name, *args))

    def calls(self, group, name, arglists):
        for args in arglists:
            self.add(group, b(name, *args))


def gen_attrsets(g):
    A = POOLS["attrs"]
    names = ['"a"', '"b"', '"zz"', '"with space"', '"x"']
    g.builtin("attrs", "attrNames", [A], [{"attrs"}])
    g.builtin("attrs", "attrValues", [A], [{"attrs"}])
    g.builtin("attrs", "mapAttrs",
              [["(n: v: n)", "(n: v: [ n v ])", "(n: v: v)",
                "(n: builtins.stringLength n)"], A],
              [{"lambda"}, {"attrs"}], cap=32)
    g.calls("attrs", "mapAttrs", [
        ["(n: v: throw \"lazy\")", "{ }"],
        ["(n: throw \"lazy\")", "{ a = 1; }"],
        ["1", "{ }"],                       # not a function, empty set
        ["(n: v: v + 1)", '{ a = "s"; }'],
    ])
    l2a = [
        "[ ]",
        '[ { name = "a"; value = 1; } ]',
        '[ { name = "a"; value = 1; } { name = "a"; value = 2; } ]',
        '[ { name = "b"; value = 1; } { name = "a"; value = 2; extra = 3; } ]',
        '[ { name = "a"; } ]',
        "[ { value = 1; } ]",
        "[ { name = 1; value = 2; } ]",
        '[ { name = "${"x" + "y"}"; value = null; } ]',
        '[ { name = "a"; value = throw "lazy"; } { name = "a"; value = 2; } ]',
        '[ { name = "z"; value = 1; } { name = "y"; value = 2; } { name = "z"; value = 3; } ]',
        '[ { name = ""; value = 0; } ]',
        "[ 1 ]",
        '[ { name = /foo/bar; value = 1; } ]',
    ]
    g.builtin("attrs", "listToAttrs", [l2a], [{"list"}])
    g.builtin("attrs", "intersectAttrs", [A, A], [{"attrs"}, {"attrs"}], cap=40)
    g.builtin("attrs", "removeAttrs",
              [A, ["[ ]", '[ "a" ]', '[ "a" "b" "zz" ]', '[ "a" "a" ]', "[ 1 ]"]],
              [{"attrs"}, {"list"}], cap=30)
    g.builtin("attrs", "catAttrs",
              [['"a"', '"b"', '"zz"'],
               ["[ { a = 1; } { b = 2; } { a = 3; } ]", "[ ]",
                "[ { a = 1; } 5 ]", "[ { a = throw \"lazy\"; } ]"]],
              [{"string"}, {"list"}])
    g.builtin("attrs", "zipAttrsWith",
              [["(n: vs: vs)", "(n: vs: builtins.length vs)", "(n: vs: n)"],
               ["[ { a = 1; } { a = 2; b = 3; } ]", "[ ]", "[ { } ]",
                "[ { a = 1; } { b = 2; } { a = 3; c = 4; } ]", "[ 1 ]"]],
              [{"lambda"}, {"list"}])
    g.builtin("attrs", "groupBy",
              [["(x: x)", "(x: builtins.substring 0 1 x)",
                '(x: if builtins.stringLength x > 1 then "long" else "short")',
                "(x: 1)"],
               ['[ "a" "b" "a" "ab" ]', "[ ]", '[ "xy" "x" "yz" "" ]', "[ 1 2 ]"]],
              [{"lambda"}, {"list"}])
    g.builtin("attrs", "getAttr", [names, A], [{"string"}, {"attrs"}], cap=40)
    g.builtin("attrs", "hasAttr", [names, A], [{"string"}, {"attrs"}], cap=40)
    g.builtin("attrs", "functionArgs",
              [POOLS["lambda"] + ["({ a ? 1, b, c ? throw \"x\" }: a)",
                                  "(args@{ ... }: args)", "builtins.map",
                                  "builtins.functionArgs"]],
              [{"lambda"}])
    for e in ["builtins.attrNames { b = 1; a = 2; c = 3; B = 4; _ = 5; \"\" = 6; }",
              "builtins.attrNames { \"ü\" = 1; z = 2; Z = 3; \"1\" = 4; \"10\" = 5; \"9\" = 6; }",
              "builtins.attrValues { b = 1; a = 2; }",
              "builtins.getAttr \"a\" (builtins.listToAttrs [ { name = \"a\"; value = 1; } ])",
              "builtins.hasAttr \"a\" { a = throw \"lazy\"; }",
              "builtins.length (builtins.attrNames (builtins.listToAttrs (builtins.genList (i: { name = toString (builtins.div i 2); value = i; }) 20)))",
              "builtins.listToAttrs (builtins.genList (i: { name = toString (builtins.div i 2); value = i; }) 20)",
              ]:
        g.add("attrs/misc", e)


def gen_lists(g):
    L = POOLS["list"]
    num_lists = ["[ ]", "[ 1 2 3 ]", "[ 3 1 2 ]", "[ 1.5 2 ]", "[ 0 -1 ]"]
    f1 = ["(x: x)", "(x: [ x ])", "builtins.typeOf", "builtins.isInt",
          "(x: x + 1)", "(x: throw \"t\")"]
    preds = ["(x: true)", "(x: x == 1)", "builtins.isInt", "(x: x)",
             "(x: builtins.isString x)"]
    g.builtin("lists", "map", [f1, L], [{"lambda"}, {"list"}], cap=40)
    g.calls("lists", "map", [["1", "[ ]"], ["1", "[ 1 ]"]])
    g.builtin("lists", "filter", [preds, L], [{"lambda"}, {"list"}], cap=36)
    g.builtin("lists", "foldl'",
              [["(a: b: a + b)", "(a: b: [ b ] ++ a)", "(a: b: b)",
                "builtins.add", "(a: b: a)"],
               ["0", "[ ]", '""', "null"], num_lists],
              [{"lambda"}, None, {"list"}], cap=40)
    g.calls("lists", "foldl'", [
        ["(a: b: a)", "0", "[ (throw \"lazy\") ]"],
        ["(a: b: b)", "0", "[ (throw \"strict\") 1 ]"],
        ["(a: b: throw \"op\")", "0", "[ ]"],
    ])
    g.builtin("lists", "genList",
              [["(i: i)", "(i: i * i)", "(i: builtins.toString i)",
                "(i: throw \"t\")", "(i: [ i ])"],
               ["0", "1", "5", "-1", "1.5"]],
              [{"lambda"}, {"int"}], cap=30)
    g.builtin("lists", "concatMap",
              [["(x: [ x x ])", "(x: [ ])", "(x: x)", "(x: [ [ x ] ])"],
               ["[ ]", "[ 1 2 ]", "[ [ 1 ] [ 2 3 ] ]", '[ "a" ]']],
              [{"lambda"}, {"list"}])
    g.builtin("lists", "elem",
              [["1", "1.0", '"a"', "null", "[ 1 2 ]", "{ a = 1; }", "(x: x)", "2"],
               ['[ 1 "a" null ]', "[ ]", "[ [ 1 2 ] { a = 1; } ]", "[ 1.0 ]",
                "[ 2 (throw \"x\") ]", "[ (x: x) ]"]],
              [None, {"list"}], cap=48)
    g.builtin("lists", "elemAt",
              [['[ 1 "a" null ]', "[ ]", "[ (throw \"x\") 2 ]"],
               ["0", "1", "2", "3", "-1", "1.0",
                "9223372036854775807"]],
              [{"list"}, {"int"}], cap=30)
    for fn in ["head", "tail", "length"]:
        g.builtin("lists", fn, [L + ["[ (throw \"lazy\") 2 ]"]], [{"list"}])
    cmps = ["builtins.lessThan", "(a: b: a < b)", "(a: b: a > b)",
            "(a: b: false)", "(a: b: a <= b)"]
    sortables = ["[ 3 1 2 ]", "[ ]", "[ 1 ]", '[ "b" "a" "c" "aa" "" ]',
                 "[ 5 3 1 4 2 8 7 6 9 0 11 10 15 13 12 14 17 16 ]",
                 "[ 1.5 1 0.5 2 (-1) ]", "[ [ 2 1 ] [ 1 2 ] [ 1 ] [ ] ]",
                 '[ 1 "a" ]', "[ true false ]", "[ /b /a ]",
                 "[ 1 1 1 ]"]
    g.builtin("lists/sort", "sort", [cmps, sortables],
              [{"lambda"}, {"list"}], cap=60)
    recs = ("[ { k = 2; v = \"a\"; } { k = 1; v = \"b\"; } { k = 2; v = \"c\"; } "
            "{ k = 1; v = \"d\"; } { k = 0; v = \"e\"; } { k = 2; v = \"f\"; } ]")
    g.calls("lists/sort", "sort", [
        ["(a: b: a.k < b.k)", recs],
        ["(a: b: a.k > b.k)", recs],
        ["(a: b: builtins.stringLength a < builtins.stringLength b)",
         '[ "ccc" "a" "bb" "d" "" "ee" ]'],
        ["(a: b: 1)", "[ 1 2 ]"],
        ["(a: b: a < b)", "[ 2 (throw \"x\") ]"],
        ["(a: b: a < b)", "[ (throw \"lazy\") ]"],
    ])
    g.builtin("lists", "partition", [preds, L], [{"lambda"}, {"list"}], cap=30)
    g.builtin("lists", "all", [preds, L], [{"lambda"}, {"list"}], cap=30)
    g.builtin("lists", "any", [preds, L], [{"lambda"}, {"list"}], cap=30)
    g.calls("lists", "all", [["(x: x)", "[ false (throw \"short-circuit\") ]"]])
    g.calls("lists", "any", [["(x: x)", "[ true (throw \"short-circuit\") ]"]])
    g.builtin("lists", "concatLists",
              [["[ ]", "[ [ 1 ] [ 2 3 ] [ ] ]", "[ [ [ 1 ] ] [ 2 ] ]",
                "[ 1 ]", "[ [ 1 ] 2 ]", "[ [ ] ]"]], [{"list"}])
    gc = [
        "{ startSet = [ { key = 1; } ]; operator = x: if x.key < 5 then [ { key = x.key + 1; } ] else [ ]; }",
        "{ startSet = [ { key = 1; } { key = 1; v = 2; } ]; operator = x: [ ]; }",
        "{ startSet = [ { key = \"a\"; } ]; operator = x: [ { key = \"b\"; } { key = \"a\"; } ]; }",
        "{ startSet = [ { key = 1; } ]; operator = x: [ { key = 1.0; } { key = 2.0; } ]; }",
        "{ startSet = [ { key = 1; } ]; operator = x: [ { key = \"a\"; } ]; }",
        "{ startSet = [ { } ]; operator = x: [ ]; }",
        "{ startSet = [ ]; operator = x: [ ]; }",
        "{ startSet = [ { key = [ 1 2 ]; } ]; operator = x: [ { key = [ 1 2 ]; } { key = [ 1 3 ]; } ]; }",
        "{ startSet = [ { key = 3; } ]; operator = x: if x.key > 0 then [ { key = x.key - 1; } { key = x.key - 2; } ] else [ ]; }",
        "{ startSet = [ { key = 1; } ]; }",
        "{ operator = x: [ ]; }",
        "{ startSet = [ 1 ]; operator = x: [ ]; }",
        "{ startSet = [ { key = null; } ]; operator = x: [ ]; }",
    ]
    g.builtin("lists", "genericClosure", [gc], [{"attrs"}])
    for e in ["builtins.length (builtins.genList (x: x) 1000)",
              "builtins.foldl' builtins.add 0 (builtins.genList (x: x) 1000)",
              "builtins.elemAt (builtins.sort builtins.lessThan (builtins.genList (x: 1000 - x) 1000)) 500",
              "builtins.sort (a: b: a < b) (builtins.genList (x: builtins.bitXor (x * 7919) 1023) 100)",
              "map (x: x * 2) [ 1 2 3 ]",
              "builtins.tail [ 1 ]",
              "builtins.head (builtins.tail [ 1 2 ])"]:
        g.add("lists/misc", e)


REGEX_PATTERNS = [
    "abc", "a.c", "a*", "a+b", "a?b", "(a)(b)?", "(a|b)+", "^a", "a$", "^a.*$",
    "[abc]+", "[^abc]+", "[a-z]+", "[A-Za-z0-9]+", "[[:alpha:]]+",
    "[[:digit:]]+", "[[:space:]]*", "[[:upper:]][[:lower:]]*", "[[:alnum:]_]+",
    "[[:punct:]]+", "[[:xdigit:]]+", "[[:blank:]]", "a{2}", "a{1,}", "a{1,2}",
    "a{0}", "(foo|foobar)", "(foobar|foo)", "(a*)(a*)", "(a*)+", "((a)|b)*",
    ".*", "", "(.*)\\.(.*)", "\\.", "[.]", "[]a]+", "[a-]+", "\\(", "x*(y)?z",
    "(ab|a)(bc|c)?", "([0-9]+)-([0-9]+)", "[^[:space:]]+", "(a)\\1", "(",
    "[", "a{", "*a", "a**", "\\w+", "\\d", "(|a)b", "a|", "()", "(a)|(b)",
    "[[:alpha:][:digit:]]+", ".", "..", "[\\]+", "(.)(.)(.)", "\\$", "a\\+",
    "((((a))))", "(x)?(y)?(z)?", "[ü]", ".*(o).*", "[^a]", "a{,2}",
]
REGEX_SUBJECTS = [
    "", "a", "abc", "aab", "foobar", "foo.bar", "Hello World", "123-456",
    "  x  ", "]a", "a-", "abab", "üñí", "a\nb", "b", "aa", "xz", "xyz",
    "(", "\\", "$", "a+",
]


def gen_strings(g):
    S = POOLS["string"]
    starts = ["0", "1", "3", "-1", "100", "9223372036854775807"]
    lens = ["0", "1", "2", "-1", "100", "9223372036854775807"]
    g.builtin("strings/substring", "substring",
              [starts, lens, ['""', '"hello"', '"üñí"']],
              [{"int"}, {"int"}, {"string"}], cap=120)
    g.calls("strings/substring", "substring",
            [["0", "1", "/foo/bar"], ["0", "2", "(throw \"x\")"],
             ["1.0", "1", '"abc"'], ["0", "1", "123"]])
    g.builtin("strings", "stringLength", [S], [{"string", "path"}])
    g.calls("strings", "stringLength", [["/foo/bar"], ['{ outPath = "abc"; }'],
                                        ['{ __toString = self: "abcd"; }']])
    # replaceStrings: from x to x subject, lists of equal length
    froms_tos = [
        ('[ "a" ]', '[ "b" ]'), ('[ "" ]', '[ "X" ]'), ('[ "" "a" ]', '[ "X" "Y" ]'),
        ('[ "a" "" ]', '[ "Y" "X" ]'), ('[ "a" "aa" ]', '[ "1" "2" ]'),
        ('[ "aa" "a" ]', '[ "2" "1" ]'), ('[ "ab" "b" ]', '[ "ba" "x" ]'),
        ('[ ]', '[ ]'), ('[ "o" ]', '[ "" ]'), ('[ "ü" ]', '[ "u" ]'),
        ('[ "$" ]', '[ "\\\\$" ]'),
    ]
    subjects = ['""', '"a"', '"aaa"', '"banana"', '"abc"', '"üñü"', '"foo bar"']
    combos = [(f, t, s) for (f, t) in froms_tos for s in subjects]
    for f, t, s in g.sample(combos, 60):
        g.add("strings/replaceStrings", b("replaceStrings", f, t, s))
    g.calls("strings/replaceStrings", "replaceStrings", [
        ['[ "a" "b" ]', '[ "x" ]', '"ab"'],
        ['[ "a" ]', "[ 1 ]", '"ab"'],
        ['[ "a" ]', "[ 1 ]", '"zz"'],
        ["[ 1 ]", '[ "x" ]', '"ab"'],
        ['[ "a" ]', '[ "b" ]', "1"],
        ['"a"', '"b"', '"ab"'],
        ['[ "a" ]', '[ (throw "lazy") ]', '"zz"'],
        ['[ "a" ]', '[ "b" ]', "/foo/bar"],
    ])
    seps = ['""', '", "', '"-"', '"\\n"']
    slists = ["[ ]", '[ "a" ]', '[ "a" "b" "c" ]', '[ "" "" ]', "[ 1 2 ]",
              '[ "a" /foo ]', '[ "a" null ]', '[ "a" [ "b" ] ]']
    g.builtin("strings", "concatStringsSep", [seps, slists],
              [{"string"}, {"list"}], cap=32)
    combos = list(itertools.product(REGEX_PATTERNS, REGEX_SUBJECTS))
    for p, s in g.sample(combos, 700):
        g.add("strings/match", b("match", nstr(p), nstr(s)))
    for p, s in g.sample(combos, 250):
        g.add("strings/split", b("split", nstr(p), nstr(s)))
    # POSIX leftmost-longest and capture-group corner cases
    posix = [("(a|ab)(c|bcd)(d*)", "abcd"), ("(wee|week)(knights|night)", "weeknights"),
             ("(.*)(.*)", "ab"), ("(a?)((ab)?)(b?)", "ab"), ("(a+|b+)*", "aabb"),
             ("((a)|b)+", "ab"), ("(a*)*", "b"), ("(a*)*", ""), ("(a|b)*c", "abac"),
             ("([ab]*)(b*)", "aabb"), ("(a*)+", "b"), ("(a*)+", "aa"), ("(a*)+b", "aab"),
             ("(a|)+", "aa"), ("(ab|a)*", "abab"), ("x(a*)*y", "xaay")]
    for p, s in posix:
        g.add("strings/match-posix", b("match", nstr(p), nstr(s)))
        g.add("strings/match-posix", b("split", nstr(p), nstr("-" + s + "-")))
    # C++ Nix's std::regex works on bytes, not characters
    for p, s in [(".", "ü"), ("..", "ü"), ("[ü]", "ü"), ("ü+", "üü"), ("(ü)+", "üü"),
                 ("[^a]", "ü"), ("[^a]+", "üñ"), ("ü*", ""), ("[[:alpha:]]+", "üñ"),
                 ("(.)(.)", "ü"), ("[a-ü]", "b")]:
        g.add("strings/match-bytes", b("match", nstr(p), nstr(s)))
        g.add("strings/match-bytes", b("split", nstr(p), nstr(s)))
    g.calls("strings/match", "match", [["1", '"a"'], ['"a"', "1"],
                                       ['"a"', "/foo/bar"], ["null", '"a"']])
    g.calls("strings/split", "split", [["1", '"a"'], ['"a"', "1"]])
    versions = ["1.0", "1.0.1", "1.0a", "1.0pre1", "1.0-pre", "2.3.4-rc1",
                "1.2.3alpha", "", "1..2", "1.a.2", "pre", "01.2", "1.10", "1.9",
                "2.0.0", "1_2", "a", "1.0.0.0", "99999999999999999999", "1pre",
                "1.0p", "1.0.", ".1", "1-2-3", "alpha", "1.2.3.4.5.6.7"]
    for v in versions:
        g.add("strings/versions", b("splitVersion", nstr(v)))
    pairs = list(itertools.product(versions, versions))
    for x, y in g.sample(pairs, 180):
        g.add("strings/versions", b("compareVersions", nstr(x), nstr(y)))
    g.calls("strings/versions", "compareVersions", [["1", '"1"'], ['"1"', "null"]])
    g.calls("strings/versions", "splitVersion", [["1"], ["1.5"]])
    drvnames = ["hello-1.0", "hello", "hello-world-2.0", "foo-bar-baz",
                "nix-2.8.0pre", "a-1-2", "-1.0", "foo-", "foo-a1", "x-1.0-2.0",
                "", "foo-1", "foo--1", "foo-1b", "ü-1.0", "foo-bar-1.2-3"]
    for n in drvnames:
        g.add("strings/parseDrvName", b("parseDrvName", nstr(n)))
    g.calls("strings/parseDrvName", "parseDrvName", [["1"], ["/foo/bar-1.0"]])
    # toString of every type
    ts_vals = (ALL_VALUES + [
        "[ 1 [ 2 null ] true false \"x\" ]", "[ [ ] [ [ ] ] ]", "[ null ]",
        '{ __toString = self: "hi"; }', '{ __toString = self: self.x; x = "y"; }',
        '{ __toString = self: 1; }', '{ __toString = "s"; }',
        '{ outPath = /foo/bar; }', '{ outPath = { outPath = "/nested"; }; }',
        '[ 1.5 ]', "(-0.0)", "1.0e-5", "1.0e6", "123456789.123",
        "[ /foo/bar ]", "[ (x: x) ]", "[ { } ]",
    ])
    for v in ts_vals:
        g.add("strings/toString", b("toString", v))
    algos = ['"md5"', '"sha1"', '"sha256"', '"sha512"', '"sha384"', '"foo"']
    hstrs = ['""', '"abc"', '"üñí"', '"The quick brown fox"',
             '(builtins.concatStringsSep "" (builtins.genList (x: "a") 1000))']
    g.builtin("strings/hash", "hashString", [algos, hstrs],
              [{"string"}, {"string"}], cap=40)
    bn = ['"/foo/bar"', '"/foo/bar/"', '"foo"', '""', '"/"', '"//a//b//"',
          '"a/b"', "/foo/bar", '"foo/"', '"/foo//bar"', '"."', '"./a"',
          "/foo/bar.nix", '"a/"', '"///"']
    g.builtin("strings/paths", "baseNameOf", [bn], [{"string", "path", "attrs"}])
    g.builtin("strings/paths", "dirOf", [bn], [{"string", "path", "attrs"}])
    for e in ['builtins.typeOf (builtins.dirOf /foo/bar)',
              'builtins.typeOf (builtins.baseNameOf /foo/bar)',
              'builtins.stringLength "üñí"',
              'builtins.substring 1 2 "üñí" == "\\xbc"',
              'builtins.stringLength (builtins.substring 1 2 "üñí")',
              'builtins.concatStringsSep "," (builtins.attrNames { b = 1; a = 2; })',
              'builtins.hashString "sha256" (builtins.toJSON { a = 1; })']:
        g.add("strings/misc", e)


def gen_numbers(g):
    nums = ["0", "1", "-1", "7", "2", "3.5", "-0.5", "0.0",
            "9223372036854775807", "(-9223372036854775807 - 1)", "4611686018427387904"]
    for op in ["+", "-", "*", "/"]:
        for x, y in itertools.product(nums, nums):
            g.add("numbers/arith", "(%s) %s (%s)" % (x, op, y))
    for fn in ["add", "sub", "mul", "div"]:
        g.builtin("numbers/builtins", fn,
                  [["7", "2.5", "-3"], ["2", "0", "0.5", "-2"]],
                  [{"int", "float"}, {"int", "float"}])
    ints = ["0", "1", "-1", "6", "12", "255", "-256",
            "9223372036854775807", "(-9223372036854775807 - 1)"]
    for fn in ["bitAnd", "bitOr", "bitXor"]:
        g.builtin("numbers/bits", fn, [ints, ints], [{"int"}, {"int"}], cap=25)
    fl = ["1.5", "-1.5", "2.0", "-0.5", "0.5", "2.5", "3", "-3", "0.0",
          "1.0e18", "1.0e19", "-1.0e19", "1.0e300", "9223372036854775807",
          "4.9999999999", "(-0.0)"]
    g.builtin("numbers", "ceil", [fl], [{"int", "float"}])
    g.builtin("numbers", "floor", [fl], [{"int", "float"}])
    cmpv = ["1", "2", "1.0", "1.5", '"a"', '"b"', '""', "[ 1 ]", "null",
            "/foo", "true"]
    pairs = list(itertools.product(cmpv, cmpv))
    for x, y in g.sample(pairs, 80):
        g.add("numbers/lessThan", b("lessThan", x, y))
    for e in ["1 / 3", "1.0 / 3", "2 / 4.0", "-7 / 2", "7 / -2", "-7 / -2",
              "0.1 + 0.2", "1.0e308 * 10", "-(1.0e308 * 10)", "1 - 1.0",
              "builtins.div 7 2", "builtins.div (-7) 2",
              "builtins.typeOf (1 + 1.0)", "builtins.typeOf (2 * 3)",
              "builtins.typeOf (4 / 2)", "builtins.typeOf (4.0 / 2)",
              "1.0 == 1", "0.1 + 0.2 == 0.3", "-0.0 == 0.0",
              "builtins.ceil 1.0e300", "123456789 * 987654321",
              "3037000500 * 3037000500", "-9223372036854775807 - 2",
              "(-9223372036854775807 - 1) / -1",
              "-(-9223372036854775807 - 1)",
              "builtins.floor (-0.0)",
              "2.0e-300 * 1.0e-300", "1.0e15 + 0.3", "100000.0", "1000000.0",
              "0.000123456", "0.0000123456", "123456.5", "1234567.0",
              "1.0 / 7.0", "-1.0e-10", "3.0e0", "5.0e-324", "1.0e400", "1.0e-310",
              "2.0e-308", "2.3e-308", "1.7976931348623157e308", "1.8e308",
              "builtins.ceil 9007199254740993", "builtins.floor (-9007199254740993)",
              "builtins.ceil (-9223372036854775807 - 1)", "builtins.floor 4611686018427387904",
              "9007199254740993 == 9007199254740992.0", "9007199254740993 < 9007199254740994.0",
              "9223372036854775807 == 9223372036854775808.0", "builtins.lessThan 9223372036854775807 9.3e18",
              "[ 9007199254740993 ] == [ 9007199254740992.0 ]", "7 / 0.0", "7.0 / 0", "0.0 / 0.0",
              "builtins.div 7 0.0", "builtins.toString 1.0e20", "builtins.toString (-0.000001)",
              "builtins.toString 0.0000001", "builtins.toString 123456789.123456789"]:
        g.add("numbers/misc", e)


def gen_types(g):
    preds = ["isAttrs", "isBool", "isFloat", "isFunction", "isInt", "isList",
             "isNull", "isPath", "isString"]
    for v in ALL_VALUES + ["builtins", "builtins.map", "(builtins.map (x: x))",
                           "./.", "(throw \"x\")", "{ __functor = self: x: x; }"]:
        g.add("types/typeOf", b("typeOf", v))
    for p in preds:
        for t in ALL_TYPES:
            g.add("types/isX", b(p, REPR[t]))
        g.add("types/isX", b(p, "(throw \"x\")"))
        g.add("types/isX", b(p, "{ __functor = self: x: x; }"))
    for e in ["builtins.isFunction builtins.isFunction", "builtins.isFunction (builtins.add 1)",
              "builtins.isString \"${\"x\"}\"", "builtins.isPath (/foo + \"/bar\")",
              "builtins.isString (\"/foo\" + /bar)"]:
        g.add("types/misc", e)


def gen_control(g):
    tried = ['throw "x"', "assert false; 1", 'abort "x"', "1",
             '{ a = throw "x"; }', '[ (throw "x") ]', 'builtins.seq (throw "x") 1',
             "(x: x)", "let x = x; in x", 'builtins.getAttr "x" { }',
             "assert 1; 1", 'builtins.deepSeq [ (throw "x") ] 1',
             '"${throw "x"}"', "(throw \"x\").a", "1 + \"a\"", "1 / 0",
             "builtins.tryEval (throw \"inner\")",
             "assert (throw \"in assert\"); 1", "null", 'throw "x" + 1',
             "{ }.a", "builtins.elemAt [ ] 0", '({ a }: a) { }',
             'builtins.addErrorContext "ctx" (throw "x")',
             'builtins.fromJSON "{"']
    for t in tried:
        g.add("control/tryEval", "builtins.tryEval (%s)" % t)
        g.add("control/tryEval", "(builtins.tryEval (%s)).success" % t)
    seqa = ['throw "x"', "1", '{ a = throw "x"; }', '[ (throw "x") ]',
            '[ [ (throw "x") ] ]', '{ a = { b = throw "x"; }; }', "(x: throw \"x\")",
            "null", '{ a = 1; b = [ 2 { c = throw "deep"; } ]; }']
    for a in seqa:
        g.add("control/seq", b("seq", a, '"ok"'))
        g.add("control/seq", b("deepSeq", a, '"ok"'))
        g.add("control/seq", b("seq", '"ok"', a))
    for e in ['builtins.seq 1', 'builtins.deepSeq 1 2 3',
              'let x = { a = x; }; in builtins.seq x 1',
              'builtins.tryEval (builtins.deepSeq { a = builtins.tryEval (throw "x"); } 1)',
              'builtins.trace "msg" 1', 'builtins.traceVerbose or 1',
              'if true then 1 else throw "x"', 'if 1 then 1 else 2',
              'if null then 1 else 2', 'assert true; 1', 'assert 1 == 1; "ok"',
              'builtins.throw 1', 'throw { a = 1; }', 'abort 1',
              '(builtins.tryEval (builtins.abort "x")).success',
              'builtins.addErrorContext "ctx" 1']:
        g.add("control/misc", e)


JSON_TEXTS = [
    "0", "-0", "1.5", "1e3", "1E-2", "-1.0", "123456789012345678901234567890",
    "9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "18446744073709551615", "1.7976931348623157e308", "1e400", "0.1",
    "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\n\\t\\\"\\\\\\/\\b\\f\\r\"",
    "\"\\u0000\"", "\"\\ud800\"", "\"é\"", "\"\"",
    "{\"a\":1,\"a\":2}", "{\"b\":[1,{\"c\":null}],\"a\":true}", "[]", "{}",
    "null", "true", "false", "{", "[1,]", "", " 1 ", "01", "NaN", "[1 2]",
    "{\"a\":1}x", "'a'", "\"\\x\"", "[[[[[[1]]]]]]", "{\"\":1}",
    "{\"a\\u0000b\":1}", "1.0", "100", "-1e-7", "2.5e+3", "\"\\u00\"",
    "\"a\nb\"", "\"\t\"", "tru", "[1,2,3]", "{\"x\":{\"y\":{\"z\":[]}}}",
    "\"\\u0041\"", "1.", ".5", "+1", "-", "1e", "0x10",
]


def gen_data(g):
    for t in JSON_TEXTS:
        g.add("data/fromJSON", b("fromJSON", nstr(t)))
        g.add("data/fromJSON", b("fromJSON", nstr(t)), json=True)
        g.add("data/json-roundtrip", b("toJSON", b("fromJSON", nstr(t))))
    g.calls("data/fromJSON", "fromJSON", [["1"], ["null"], ["/foo/bar"]])
    tj = ALL_VALUES + [
        '"\\u0001"', '"ctrl:\x01\x1f\x7f"', '"é€😀"', '"<>&\'"', '"a/b"',
        '{ __toString = self: "ts"; }', '{ outPath = "/foo"; a = 1; }',
        '{ a = { outPath = "/x"; }; }', "[ 1.0 2.5 1.0e20 1.0e-20 0.1 ]",
        "1.0", "100.0", "1.0e6", "0.30000000000000004", "-0.0", "5.0e-324",
        "{ b = 1; a = 2; \"\" = 3; \"ü\" = 4; }", "[ [ ] { } ]",
        '{ a = throw "x"; }', '{ __toString = self: 1; }',
        '{ type = "derivation"; outPath = "/o"; }',
    ]
    for v in tj:
        g.add("data/toJSON", b("toJSON", v))
    rt = ["1", "1.5", '"é€😀\\n\\"x\\\\"', "[ 1 [ 2 ] { a = null; } ]",
          "{ a = 1; b = [ true false null ]; c = \"\"; }", "9223372036854775807",
          "(-9223372036854775807 - 1)", "0.1", "1.0e300", "1.0", "{ }", "[ ]",
          '"\\u0001"', "123456789.123"]
    for v in rt:
        g.add("data/json-roundtrip",
              "let v = %s; in builtins.fromJSON (builtins.toJSON v) == v" % v)
        g.add("data/json-roundtrip",
              "let v = %s; in builtins.fromJSON (builtins.toJSON v)" % v)
    for v in ALL_VALUES + ['"<&>\\"\'"', '{ a = { b = [ 1 { c = "x"; } ]; }; }',
                           '{ type = "derivation"; name = "x"; outPath = "/o"; }',
                           '{ a = throw "x"; }', "({ a, b ? 1, ... }: a)",
                           "({ a, b ? 1 }@args: a)", "[ [ ] ]", "-0.0",
                           '"ü\\n\\t"']:
        g.add("data/toXML", b("toXML", v))


def gen_operators(g):
    mixed = ["1", "2.5", '"a"', "/foo", "[ 1 ]", "{ a = 1; }", "null", "true",
             "(x: x)"]
    for x, y in itertools.product(mixed, mixed):
        g.add("ops/plus", "(%s) + (%s)" % (x, y))
    for x, y in itertools.product(mixed, mixed):
        g.add("ops/eq", "(%s) == (%s)" % (x, y))
    for x in mixed:
        g.add("ops/unary", "!(%s)" % x)
        g.add("ops/unary", "-(%s)" % x)
    # string/path concatenation particulars
    for e in ['"a" + "b"', '/foo + "bar"', '/foo + "/bar"', '/foo + /bar',
              '/foo + ""', '"" + /foo',
              '"x" + /foo', '/foo + "/../bar"', '/foo/bar + "/."',
              '/foo + "//bar"', 'toString (/foo + "/bar/")',
              '"${"a"}${"b"}" + "c"', '/foo/.. + ""', '/foo/../bar']:
        g.add("ops/paths", e)
    # list comparisons
    lists = ["[ ]", "[ 1 ]", "[ 1 2 ]", "[ 1 3 ]", "[ 2 ]", '[ 1 "a" ]',
             '[ 1 "b" ]', "[ [ 1 ] ]", "[ 1.5 ]", "[ null ]", "[ 1 (throw \"lazy\") ]"]
    pairs = list(itertools.product(lists, lists))
    for op in ["<", "<=", ">", ">="]:
        for x, y in g.sample(pairs, 30):
            g.add("ops/compare-lists", "(%s) %s (%s)" % (x, op, y))
    scal = ["1", "2", "1.5", '"a"', '"ab"', '"B"', "/foo", "/bar", "null",
            "true", "{ }", "(x: x)"]
    pairs = list(itertools.product(scal, scal))
    for op in ["<", "<=", ">", ">="]:
        for x, y in g.sample(pairs, 30):
            g.add("ops/compare", "(%s) %s (%s)" % (x, op, y))
    # deep equality
    nested = [
        "{ a = [ 1 { b = 2.0; } ]; }", "{ a = [ 1 { b = 2; } ]; }",
        "{ a = [ 1 { b = 3; } ]; }", "[ 1 [ 2 [ 3 ] ] ]", "[ 1 [ 2 [ 3.0 ] ] ]",
        "[ 1 [ 2 [ \"3\" ] ] ]", "{ }", "[ ]", "{ a = null; }", "{ b = null; }",
        "{ a = x: x; }", "[ (x: x) ]", "{ a = 1; b = 2; }", "{ b = 2; a = 1; }",
        '{ outPath = "/a"; type = "derivation"; }',
        '{ outPath = "/a"; type = "derivation"; x = 1; }',
    ]
    pairs = list(itertools.combinations_with_replacement(nested, 2))
    for x, y in g.sample(pairs, 80):
        g.add("ops/deep-eq", "(%s) == (%s)" % (x, y))
        g.add("ops/deep-eq", "(%s) != (%s)" % (x, y))
    for e in ["let f = x: x; in f == f", "let f = x: x; in [ f ] == [ f ]",
              "let f = x: x; in { a = f; } == { a = f; }",
              "let s = { a = x: x; }; in s == s",
              "let l = [ (x: x) ]; in l == l", "(x: x) == (x: x)",
              "builtins.add == builtins.add", "[ builtins.add ] == [ builtins.add ]",
              "{ a = 1; } == { a = 1.0; }", "[ 1 ] == [ 1.0 ]", "\"a\" == /a",
              "/foo == /foo", "/foo/. == /foo",
              "null == null", "[ (throw \"x\") ] == [ ]", "{ a = throw \"x\"; } == { b = 1; }",
              "{ a = 1; } == { a = throw \"x\"; }", "[ 1 (throw \"x\") ] == [ 2 (throw \"y\") ]"]:
        g.add("ops/deep-eq-misc", e)
    # boolean operators
    bvals = ["true", "false", "1", "null", '(throw "lazy")']
    for op in ["&&", "||", "->"]:
        for x, y in itertools.product(bvals, bvals):
            g.add("ops/bool", "(%s) %s (%s)" % (x, op, y))
    # ++ and //
    lv = ["[ ]", "[ 1 ]", "[ [ 2 ] ]", "1", '"a"', "{ }", "null"]
    for x, y in itertools.product(lv, lv):
        g.add("ops/concat", "(%s) ++ (%s)" % (x, y))
    av = ["{ }", "{ a = 1; }", "{ a = 2; b = 3; }", "{ a = { c = 1; }; }",
          "[ ]", "1", "null"]
    for x, y in itertools.product(av, av):
        g.add("ops/update", "(%s) // (%s)" % (x, y))
    # ? and or
    sets = ["{ }", "{ a = 1; }", "{ a = { b = 2; }; }", '{ "with space" = 1; }',
            "{ a = null; }", "1", "{ a = 1; b = throw \"lazy\"; }", "{ a = throw \"x\"; }"]
    paths = ["a", "a.b", '"with space"', '${"a"}', "b", "a.b.c", '"a"']
    for s, p in itertools.product(sets, paths):
        g.add("ops/has-attr", "(%s) ? %s" % (s, p))
        g.add("ops/or", "(%s).%s or \"default\"" % (s, p))
    # dynamic attribute selection and construction
    for e in ['let x = { a = 1; }; in x.${"a"}', 'let n = "a"; in { ${n} = 1; }',
              '{ ${null} = 1; b = 2; }', '{ ${"a"} = 1; a = 2; }',
              '{ a = 1; a = 2; }', '{ ${"a" + "b"}.c = 1; }',
              '{ "${"x"}" = 1; }', 'let n = 1; in { ${n} = 1; }',
              '{ a.b = 1; a.c = 2; }', '{ a = { b = 1; }; a.c = 2; }',
              '{ a.b = 1; a = { c = 2; }; }', '{ a = 1; a.b = 2; }',
              '{ a.b.c = 1; a.b.d = 2; a.e = 3; }', '({ a = 1; }).a.b or 5',
              '{ }.${"a"} or 1', '{ a = 1; }.a', '{ a = 1; } . a']:
        g.add("lang/attrs", e)


def gen_language(g):
    interp = ['"x"', "1", "1.5", "null", "true", "/foo/bar", "[ 1 ]",
              "{ a = 1; }", '{ __toString = self: "ts"; }',
              '{ outPath = "/out"; }', "(x: x)", '"${"nested"}"']
    for v in interp:
        g.add("lang/interp", '"a${%s}b"' % v)
        g.add("lang/interp", "''a${%s}b''" % v)
    for e in ['"\\${x}"', "''$${x}''", "''''\\n''", "''a\n  b\n''",
              "''\n  a\n    b\n  c\n''", "''\n\ta\n''", "''  ''${x}''",
              '"a\\\\b\\"c"', '"\\a\\b"', "''x'''y''", '"$"', '"$$"', '"$${a}"',
              "''${\"a\"}  \n  b''", "''\n  a\n\n  b\n''", "''\n  ${\"x\"}\n  y\n''",
              '"${"a"}${"b"}"', 'let a = "x"; in "${a}${a}"',
              '"${builtins.toString 5}"', '"${toString [ 1 2 ]}"',
              "''\r\n  a\r\n''", "''  a  ''", "''\\t''", "''''$''"]:
        g.add("lang/strings", e)
    # scoping templates
    for e in ["let x = 1; in with { x = 2; }; x", "with { a = 1; }; with { a = 2; }; a",
              "with { a = 1; }; let a = 3; in a", "rec { a = 1; b = a + 1; }",
              "let inherit ({ a = 1; b = 2; }) a b; in a + b",
              "{ inherit ({ a = 1; }) a; }", "rec { a = b; b = 2; }",
              "let a = 1; in rec { inherit a; b = a; }",
              "let a = 1; in { inherit a; b = a; }",
              "with { a = 1; }; { inherit a; }",
              "let x = 5; in { x = 1; y = x; }",
              "let x = 5; in rec { x = 1; y = x; }",
              "rec { x = 1; y = { x = 2; z = x; }; }.y.z",
              "let a = b; b = 1; in a", "let a = a; in 1",
              "let a = a; in a", "rec { a = a; }.a",
              "with builtins; length [ 1 2 ]", "with 1; 2", "with 1; x",
              "with { }; x", "let x = 1; in with { x = 2; }; with { x = 3; }; x",
              "(with { a = 1; }; a) + (with { a = 2; }; a)",
              "let f = { a ? b, b ? 2 }: a; in f { }",
              "let f = { a ? 1 }@args: args; in f { }",
              "let f = args@{ a, ... }: args; in f { a = 1; b = 2; }",
              "({ a }: a) { a = 1; b = 2; }", "({ a, b ? 2 }: a + b) { a = 1; }",
              "({ a ? 1, b }: a + b) { b = 2; }", "(x: y: x - y) 5 3",
              "let f = x: if x == 0 then 0 else x + f (x - 1); in f 100",
              "let fix = f: let x = f x; in x; in (fix (self: { a = 1; b = self.a + 1; })).b",
              "let inherit (builtins) map; in map (x: x) [ 1 ]",
              "rec { inherit (builtins) map; }.map (x: x + 1) [ 1 ]",
              "let a.b = 1; a.c = 2; in a", "{ a = rec { x = 1; y = x; }; }",
              "let x = 1; in { inherit x; }.x",
              "rec { \"a b\" = 1; c = 2; }", "{ __overrides = { a = 2; }; a = 1; }",
              "rec { __overrides = { a = 2; }; a = 1; b = a; }",
              "let __sub = a: b: 42; in 5 - 3", "let true = false; in true",
              "let null = 1; in null", "let builtins = { }; in builtins",
              "({ ... }: 1) 5", "(x: x) { }", "let f = { }: 1; in f { }",
              "let f = { }: 1; in f { a = 1; }",
              "({ a ? 1 }: a) { }",
              "let x = { __functor = self: y: y + 1; }; in x 2",
              "let x = { __functor = self: y: self.n + y; n = 10; }; in x 2",
              "let x = { __functor = 1; }; in x 2",
              "assert builtins.isInt 1; builtins.isInt 1",
              "let a = 1; b = 2; in [ a b (a + b) ]",
              "[ 1 2 ] ++ [ 3 ] ++ [ ]", "{ a = 1; } // { b = 2; } // { a = 3; }",
              "1 + 2 * 3 - 4 / 2", "(1 + 2) * 3", "2 - -3", "- 2 - 3",
              "!true || true", "true -> false -> true", "1 < 2 == true",
              "[ 1 ] ++ [ 2 ] == [ 1 2 ]", "{ a = 1; } // { } == { a = 1; }",
              "let x = [ 1 ]; in x ++ x", "builtins.length ([ 1 ] ++ [ 2 ])",
              "map (x: x.a) [ { a = 1; } { a = 2; } ]",
              "builtins.isAttrs builtins", "builtins ? map",
              "builtins.builtins.builtins ? map", "builtins.langVersion",
              "builtins.currentSystem == builtins.currentSystem",
              "__add 1 2", "__typeOf 1", "builtins.nixVersion == \"\" || true",
              "builtins.true", "builtins.null", "builtins.false",
              "builtins ? builtins", "builtins.builtins ? builtins",
              '{ "if" = 1; "a\'" = 2; _x = 3; "a-b" = 4; "-a" = 5; "ü" = 6; "" = 7; "a.b" = 8; }',
              '{ "or" = 1; "true" = 2; "null" = 3; "rec" = 4; "1a" = 5; "a1" = 6; "A" = 7; }',
              '{ "or" = 1; }', '{ "rec" = 1; "inherit" = 2; "then" = 3; "let" = 4; }',
              'builtins.fromJSON "\\"\\u0001\\u001f\\u007f\\u2028\\""',
              '"${"$"}{x}"', '"a\rb"', '[ "$" "$$" "${"$"}" "\\${" ]',
              '{ a = { b = { c = { d = { }; }; }; }; }', "[ [ [ [ ] ] ] ]",
              "builtins.builtins.builtins.length [ 1 ]",
              "let __sub = a: b: 42; in 5 - 3", "let __sub = a: b: 42; in -3",
              "let __mul = a: b: 42; in 2 * 3", "let __div = a: b: 42; in 6 / 3",
              "let __lessThan = a: b: 42; in 1 < 2", "let __lessThan = a: b: false; in 1 > 2",
              "with { __sub = a: b: 42; }; 5 - 3", "(__sub: 5 - 3) (a: b: 42)",
              "let __add = a: b: 42; in 1 + 2", "let __concat = a: b: 42; in [ 1 ] ++ [ 2 ]",
              "rec { __overrides = { a = 2; c = 3; }; a = 1; b = a; }",
              "(rec { __overrides = { a = 2; }; a = 1; b = a; }).b",
              "rec { __overrides = { }; a = 1; }", "{ __overrides = { a = 2; }; a = 1; b = 0; }",
              "(x: [ x x ]) [ 1 ]", "(x: [ x x ]) { a = 1; }", "(x: { a = x; b = x; }) [ 1 ]",
              "let x = [ 1 ]; in [ x x ]", "builtins.genList (i: [ 1 ]) 2",
              "let f = x: [ x x ]; in f (f [ 2 ])"]:
        g.add("lang/scope", e)


def generate(seed=SEED):
    g = Gen(seed)
    gen_attrsets(g)
    gen_lists(g)
    gen_strings(g)
    gen_numbers(g)
    gen_types(g)
    gen_control(g)
    gen_data(g)
    gen_operators(g)
    gen_language(g)
    # A --json variant of a deterministic subset of the non-JSON cases.
    base = [c for c in g.cases if not c.json]
    for c in g.sample(base, max(150, len(base) // 8)):
        g.add(c.group, c.expr, json=True)
    for i, c in enumerate(g.cases):
        c.id = i + 1
    return g.cases


# ---------------------------------------------------------------------------
# Running


class Result:
    __slots__ = ("ok", "stdout", "stderr", "timeout")

    def __init__(self, ok, stdout, stderr, timeout=False):
        self.ok = ok
        self.stdout = stdout
        self.stderr = stderr
        self.timeout = timeout

    def show(self):
        if self.timeout:
            return "timeout"
        if self.ok:
            text = self.stdout.decode("utf-8", "backslashreplace")
            return re.sub(r"[\x00-\x09\x0b-\x1f\x7f]", lambda m: "\\x%02x" % ord(m.group()), text)
        lines = [l.strip() for l in self.stderr.decode("utf-8", "replace").splitlines()]
        msgs = [l for l in lines if l.startswith("error:") and l != "error:"]
        return "error: " + (msgs[-1][len("error:"):].strip() if msgs else
                            (lines[0] if lines else "(no message)"))


def run_one(argv, cwd, env):
    try:
        p = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return Result(False, b"", b"", timeout=True)
    out = p.stdout
    if out.endswith(b"\n"):
        out = out[:-1]
    return Result(p.returncode == 0, out, p.stderr)


def compare(ours, theirs):
    if ours.timeout or theirs.timeout:
        return ours.timeout and theirs.timeout
    if ours.ok != theirs.ok:
        return False
    return not ours.ok or ours.stdout == theirs.stdout


# ---------------------------------------------------------------------------
# Classification of mismatches.
#
# RULES: (category, key, explanation, predicate(case, ours, theirs)).  The first
# matching rule wins.  Categories:
#   "version difference": C++ Nix changed between 2.8 (the reference installed
#       here) and 2.36 (what attrfs follows); attrfs matches 2.36.
#   "our bug": a known attrfs divergence from C++ Nix (2.36 behaves like 2.8
#       here).  Kept narrow, so a fixed bug simply stops matching.
#   "unclear": a known mismatch whose status is not settled.
# Anything else is "unclassified" and needs a human look.


def _text(b):
    return b.decode("utf-8", "replace")


def _err(r, needle):
    return not r.ok and not r.timeout and needle in _text(r.stderr)


def _nix_unquote(s):
    """The value of a printed Nix string literal, or None."""
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        return None
    out, i, body = [], 0, s[1:-1]
    esc = {"n": "\n", "r": "\r", "t": "\t"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(esc.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _g6(x):
    return float("%.6g" % x)


def _json_same_modulo_floats(a, b):
    """Equal JSON values, where a number pair counts as equal when either side
    is a float and both agree to 6 significant digits (2.8 printed floats as
    C++ streams do, 6 digits and no `.0`)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        return _g6(a) == _g6(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_same_modulo_floats(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_same_modulo_floats(a[k], b[k]) for k in a)
    return a == b


def _json_format_only(case, o, t):
    """Both succeeded and the JSON they printed (via --json or toJSON) is the
    same value, up to float formatting and escape spelling (\\b vs \\u0008)."""
    if not (o.ok and t.ok):
        return False
    os_, ts = _text(o.stdout), _text(t.stdout)
    try:
        if case.json:
            a, b = json.loads(os_), json.loads(ts)
            if isinstance(a, str) and isinstance(b, str) and "toJSON" in case.expr:
                a, b = json.loads(a), json.loads(b)
        elif "toJSON" in case.expr:
            a, b = _nix_unquote(os_), _nix_unquote(ts)
            if a is None or b is None:
                return False
            a, b = json.loads(a), json.loads(b)
        else:
            return False
    except ValueError:
        return False
    return _json_same_modulo_floats(a, b)


def _has_float_literal(expr):
    return re.search(r"\d\.\d|\de[-+]?\d", expr) is not None


def _invalid_utf8(b):
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


V, A, U = "version difference", "our bug", "unclear"

RULES = [
    (V, "ceil-floor-int-arg",
     "ceil/floor of an int that does not survive the round trip through a double "
     "(e.g. 9223372036854775807): 2.8's answer is the undefined behaviour's value "
     "(INT64_MIN); newer Nix, and attrfs, throw ('Due to a bug (see "
     "https://github.com/NixOS/nix/issues/12899) the NixInt argument ... caused "
     "undefined behavior in previous Nix versions').",
     lambda c, o, t: re.search(r"\b(ceil|floor)\b", c.expr) and _err(o, "caused undefined behavior") and t.ok),
    (A, "print-invalid-utf8",
     "Printing a string that is not valid UTF-8 (e.g. a substring that cuts a "
     "multi-byte character): C++ Nix writes the raw bytes, attrfs writes U+FFFD.",
     lambda c, o, t: o.ok and t.ok and "\ufffd" in _text(o.stdout) and _invalid_utf8(t.stdout)),
    (A, "float-literal-range",
     "Float literals that overflow to infinity or underflow to a subnormal "
     "(1.0e400, 1.0e-310, 5.0e-324) are a parse error in C++ Nix (strtod sets "
     "ERANGE: \"invalid float '1.0e400'\"); attrfs accepts them.",
     lambda c, o, t: o.ok and _err(t, "invalid float")),
    (A, "print-or-quoted",
     "Attribute names in printed sets: C++ Nix quotes only the reserved keywords "
     "if then else assert with let in rec inherit (print.cc isReservedKeyword: "
     "\"For example `or' doesn't need to be quoted\"); attrfs also quotes `or`.",
     lambda c, o, t: o.ok and t.ok and '"or" =' in _text(o.stdout) and '"or" =' not in _text(t.stdout)),
    (A, "toxml-primop",
     "toXML of a builtin (primop or partial application): C++ Nix writes "
     "<unevaluated /> ('FIXME: Serialize primops and primopapps', unchanged in "
     "2.36); attrfs writes <primop />.",
     lambda c, o, t: "toXML" in c.expr and b"primop" in o.stdout),
    (A, "operator-shadowing",
     "The parser turns `a - b`, `-a`, `a * b`, `a / b`, `a < b` (and `<=`, `>`, "
     "`>=`) into calls of the variables __sub, __mul, __div, __lessThan, resolved "
     "lexically, so `let __sub = ...; in 5 - 3` uses the user's function. Fixed "
     "in attrfs (unary `-` last, session 9): a case listed here is a regression.",
     lambda c, o, t: re.search(r"(let|\() *__(sub|mul|div|lessThan)\b", c.expr) is not None),
    (A, "builtins-builtins",
     "builtins.builtins is the builtins set itself in C++ Nix (so "
     "`builtins.builtins.builtins` exists); in attrfs builtins.builtins lacks "
     "the `builtins` attribute.",
     lambda c, o, t: "builtins.builtins" in c.expr),

    (V, "int-overflow",
     "Signed integer overflow in + - * is an evaluation error in newer Nix "
     "('integer overflow in adding ...', lang tests eval-fail-overflowing-*); "
     "2.8 wraps around.",
     lambda c, o, t: _err(o, "integer overflow") and t.ok),
    (V, "json-number-format",
     "Newer Nix writes JSON (--json, toJSON) with nlohmann::json: floats in "
     "shortest round-trip form with `.0` for integral values, `\\b`/`\\f` escapes; "
     "2.8 printed floats with 6 significant digits and no `.0`, and `\\u0008`/`\\u000c`.",
     _json_format_only),
    (V, "json-roundtrip-precision",
     "Same cause: 2.8's toJSON keeps only 6 significant digits of a float, so "
     "`fromJSON (toJSON v) == v` is false for it.",
     lambda c, o, t: "fromJSON (builtins.toJSON v) == v" in c.expr and _has_float_literal(c.expr)
     and o.stdout == b"true" and t.stdout == b"false"),
    (V, "fromjson-int-range",
     "Newer Nix rejects JSON integers outside the 64-bit signed range "
     "(lang test eval-fail-fromJSON-overflowing); 2.8 wraps them.",
     lambda c, o, t: _err(o, "outside of Nix integer range") and t.ok),
    (V, "fromjson-nul",
     "Newer Nix rejects NUL characters in fromJSON strings and keys (lang tests "
     "eval-fail-fromJSON-keyWithNullByte / -valueWithNullByte); 2.8 truncated or kept them.",
     lambda c, o, t: _err(o, "contains null bytes") and t.ok),
    (V, "json-invalid-utf8",
     "Newer Nix's --json output goes through nlohmann::json, which refuses invalid "
     "UTF-8 (type_error.316); 2.8 wrote the raw bytes.",
     lambda c, o, t: c.json and _err(o, "UTF-8") and t.ok),
    (V, "filter-empty-list",
     "Newer Nix's builtins.filter returns an empty list before checking the "
     "predicate is a function; 2.8 forced the predicate first.",
     lambda c, o, t: "builtins.filter" in c.expr and o.ok and _err(t, "while a function was expected")),
    (V, "genlist-forces-function",
     "Newer Nix's builtins.genList forces the generator to be a function even "
     "for length 0 ('More strict than strictly necessary'); 2.8 did not.",
     lambda c, o, t: "genList" in c.expr and _err(o, "expected a function") and t.ok),
    (V, "substring-int32",
     "2.8's substring truncated the start offset to a 32-bit int, so huge "
     "offsets turned negative; newer Nix uses the 64-bit value and returns \"\".",
     lambda c, o, t: "substring" in c.expr and o.ok and _err(t, "negative start position")),
    (V, "replacestrings-lazy-to",
     "Newer Nix's replaceStrings forces an element of `to` only when its "
     "pattern matches; 2.8 forced all of `to` up front.",
     lambda c, o, t: "replaceStrings" in c.expr and o.ok and not t.ok and not t.timeout),
    (V, "ceil-floor-range",
     "Newer Nix's ceil/floor reject results outside the NixInt range ('NixFloat "
     "argument ... is not in the range of NixInt'); 2.8 had undefined behaviour "
     "(prints INT64_MIN).",
     lambda c, o, t: re.search(r"\b(ceil|floor)\b", c.expr) and _err(o, "is not in the range of NixInt") and t.ok),

    (V, "keyword-attr-quoting",
     "Attribute names that are keywords: newer Nix quotes all reserved keywords "
     "(then else assert with let in rec inherit) when printing a set; 2.8 quoted only `if`.",
     lambda c, o, t: o.ok and t.ok and re.sub(r'"(then|else|assert|with|let|in|rec|inherit)" =', r"\1 =",
                                              _text(o.stdout)) == _text(t.stdout)),
    (U, "regex-range-non-ascii",
     "A bracket range whose end is a non-ASCII byte (`[a-ü]`): libstdc++ compares "
     "`char`s, which are signed on x86-64 (range a..0xC3 is empty, so C++ Nix "
     "rejects the regex) but unsigned on aarch64; attrfs treats bytes as unsigned. "
     "The reference's own answer is platform-dependent.",
     lambda c, o, t: re.search(r"builtins\.(match|split)", c.expr) and "-ü]" in c.expr),
    (V, "json-inf",
     "Infinite or NaN floats under --json: newer Nix (nlohmann::json) writes "
     "`null`; 2.8 wrote `inf`/`nan`, which is not JSON.",
     lambda c, o, t: c.json and o.ok and t.ok
     and re.sub(r"-?\b(inf|nan)\b", "null", _text(t.stdout)) == _text(o.stdout)),
]

RULE_INFO = {key: (cat, why) for cat, key, why, _ in RULES}


def classify(case, ours, theirs):
    for cat, key, why, pred in RULES:
        try:
            if pred(case, ours, theirs):
                return cat, key
        except Exception:
            pass
    return "unclassified", ""


# ---------------------------------------------------------------------------


def find_repo_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.dirname(here)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attrfs", default=os.path.join(find_repo_root(), "target", "release", "attrfs"),
                    help="attrfs binary (default: target/release/attrfs)")
    ap.add_argument("--nix", default="nix-instantiate", help="nix-instantiate binary")
    ap.add_argument("--only", default=None, help="only cases whose expression or group contains SUBSTRING")
    ap.add_argument("--jobs", type=int, default=2, help="parallel threads (default 2)")
    ap.add_argument("--report", default=None, help="write the mismatches as Markdown to FILE")
    ap.add_argument("--strict-exit", action="store_true", help="exit 1 when there are mismatches")
    ap.add_argument("--list", action="store_true", help="print the generated cases and exit")
    ap.add_argument("--seed", type=int, default=SEED, help="random seed (default %d)" % SEED)
    args = ap.parse_args()

    cases = generate(args.seed)
    if args.only:
        cases = [c for c in cases if args.only in c.expr or args.only in c.group]
    if args.list:
        for c in cases:
            print("%5d %-26s %s%s" % (c.id, c.group, "--json " if c.json else "", c.expr))
        print("%d cases" % len(cases))
        return 0

    nix = shutil.which(args.nix) if os.sep not in args.nix else (
        args.nix if os.access(args.nix, os.X_OK) else None)
    if not nix:
        print("difftest: %s not found; nothing to compare against, skipping" % args.nix)
        return 0
    attrfs = args.attrfs
    if not os.access(attrfs, os.X_OK):
        print("difftest: attrfs binary %s not found; build it with "
              "`cargo build --release -p attrfs` or pass --attrfs" % attrfs, file=sys.stderr)
        return 2

    workdir = tempfile.mkdtemp(prefix="attrfs-difftest-")
    env = dict(os.environ)
    env["NIX_PATH"] = ""
    env.pop("NIX_SHOW_STATS", None)

    # Skip cases using builtins the reference does not have.
    p = subprocess.run([nix, "--eval", "--strict", "--json", "-E", "builtins.attrNames builtins"],
                       cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    theirs_builtins = set(re.findall(r'"([^"]+)"', p.stdout.decode()))
    skipped = 0
    if theirs_builtins:
        kept = []
        for c in cases:
            used = set(re.findall(r"builtins\.([A-Za-z_'][\w'-]*)", c.expr))
            if used - theirs_builtins:
                skipped += 1
            else:
                kept.append(c)
        cases = kept

    lock = threading.Lock()
    done = [0]

    def work(c):
        flags = ["--strict"] + (["--json"] if c.json else [])
        ours = run_one([attrfs, "eval"] + flags + ["-E", c.expr], workdir, env)
        theirs = run_one([nix, "--eval"] + flags + ["-E", c.expr], workdir, env)
        with lock:
            done[0] += 1
            if sys.stderr.isatty() and done[0] % 50 == 0:
                print("\r%d/%d" % (done[0], len(cases)), end="", file=sys.stderr, flush=True)
        return c, ours, theirs

    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for r in ex.map(work, cases):
            results.append(r)
    if sys.stderr.isatty():
        print("\r", end="", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)

    mismatches = []
    for c, o, t in results:
        if not compare(o, t):
            cat, key = classify(c, o, t)
            mismatches.append((c, o, t, cat, key))

    for c, o, t, cat, key in mismatches:
        print("MISMATCH #%d [%s] %s%s" % (c.id, c.group, "--json " if c.json else "", c.expr))
        print("  ours:   %s" % o.show())
        print("  theirs: %s" % t.show())
        if cat != "unclassified":
            print("  (%s: %s)" % (cat, key))
    counts = {}
    for m in mismatches:
        counts[m[3]] = counts.get(m[3], 0) + 1
    passed = len(results) - len(mismatches)
    print("reference: %s; %d cases skipped (builtins it lacks); mismatches by class: %s" % (
        nix, skipped, ", ".join("%s %d" % (k, v) for k, v in sorted(counts.items())) or "none"))
    print("%d passed, %d failed" % (passed, len(mismatches)))

    if args.report:
        write_report(args.report, results, mismatches, skipped, nix, args)
    if args.strict_exit and mismatches:
        return 1
    return 0


def md_code(s):
    s = s.replace("\n", "\\n")
    ticks = 1
    while "`" * ticks in s:
        ticks += 1
    fence = "`" * ticks
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return "%s%s%s%s%s" % (fence, pad, s, pad, fence)


CATEGORY_ORDER = ["unclassified", "our bug", "unclear", "version difference"]


def write_report(path, results, mismatches, skipped, nix, args):
    version = subprocess.run([nix, "--version"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout.decode().strip()
    lines = ["# difftest mismatches", "",
             "Generated by `contrib/difftest.py` (seed %d%s) against %s." % (
                 args.seed, ", --only %r" % args.only if args.only else "", version), "",
             "%d passed, %d failed (%d cases skipped: builtins the reference lacks)."
             % (len(results) - len(mismatches), len(mismatches), skipped), ""]
    for cat in CATEGORY_ORDER:
        ms = [m for m in mismatches if m[3] == cat]
        if not ms:
            continue
        lines += ["## %s (%d)" % (cat, len(ms)), ""]
        keys = []
        for m in ms:
            if m[4] not in keys:
                keys.append(m[4])
        for key in keys:
            group = [m for m in ms if m[4] == key]
            if key:
                lines += ["### %s (%d)" % (key, len(group)), "", RULE_INFO[key][1], ""]
            for c, o, t, _, _ in group:
                lines.append("- #%d %s%s" % (c.id, "`--json` " if c.json else "", md_code(c.expr)))
                lines.append("  - ours: %s" % md_code(o.show()))
                lines.append("  - C++: %s" % md_code(t.show()))
            lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
