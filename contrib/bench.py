#!/usr/bin/env python3
"""Side-by-side benchmark: `attrfs eval` against `nix-instantiate --eval`.

Runs each workload several times with both evaluators, alternating them
run by run (C++ Nix only when `nix-instantiate` is installed: `apt-get
install nix-bin`), and prints the median wall time and peak RSS of each
and their ratio (ours / C++; below 1 means we are faster or smaller).
Workloads that take under 0.2 s run at least 10 times. attrfs is the
binary users install (the `dist` profile), built first. Usage:

    contrib/bench.py [--runs N] [--only NAME] [--attrfs PATH]
                     [--compile-cache warm|cold|off]

attrfs's compiled-file cache lives in target/bench-cache for the
benchmark (XDG_CACHE_HOME). `warm` (the default, what a user sees from the
second evaluation on) fills it with one untimed run first; `cold` empties
it before every run (every file compiled and stored); `off` runs with
--no-compile-cache.

Heavy workloads (the 2,170 20.09 out paths, the modern-corpus out paths)
run once whatever --runs says. `modern-outPaths-all` (all 5,598 reference
out paths of the modern corpus) takes about two minutes per evaluator.

Workloads that need the corpus unpack it with ../shared/corpus/unpack.sh.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
CORPUS = os.path.join(ROOT, "target", "corpus")


def corpus():
    if not os.path.isdir(os.path.join(CORPUS, "nixpkgs-lib")):
        subprocess.run(["bash", os.path.join(SHARED, "corpus", "unpack.sh"), CORPUS], check=True)
    return CORPUS


PKGS_ARGS = '{ system = "x86_64-linux"; config = {}; overlays = []; }'
# The modern tree declares a minimum Nix of 2.18: C++ Nix 2.8 evaluates it
# only through impure.nix, so both evaluators use that entry point.
MODERN_ARGS = '{ system = "x86_64-linux"; config = { allowAliases = false; }; overlays = []; }'
MODERN_OUTPATHS = os.path.join(SHARED, "corpus", "nixpkgs-26.11-slim-outpaths.json")


def workloads():
    """(name, arguments of `eval`, runs or None for --runs)."""
    lib = lambda: os.path.join(corpus(), "nixpkgs-lib", "lib")
    nixpkgs = lambda: os.path.join(corpus(), "nixpkgs-20.09")
    pkgs = lambda: f"(import {nixpkgs()} {PKGS_ARGS})"
    modern = lambda: f"(import {os.path.join(corpus(), 'nixpkgs-26.11-slim')}/pkgs/top-level/impure.nix {MODERN_ARGS})"
    # The out paths of the reference attributes whose index is a multiple of
    # `step` (sorted names): a fixed, deterministic subset.
    modern_outpaths = lambda step: ["--strict", "-E",
        f"let pkgs = {modern()}; "
        f"all = builtins.attrNames (builtins.fromJSON (builtins.readFile {MODERN_OUTPATHS})); "
        f"names = builtins.genList (i: builtins.elemAt all (i * {step})) ((builtins.length all + {step} - 1) / {step}); "
        "in builtins.length (builtins.filter (n: (builtins.tryEval pkgs.${n}.outPath).success) names)"]
    return [
        ("fib27", lambda: ["--strict", "-E", "let fib = n: if n < 2 then n else fib (n - 1) + fib (n - 2); in fib 27"], None),
        ("foldl-1M", lambda: ["--strict", "-E", "builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) 1000000)"], None),
        ("attrs-200k", lambda: ["--strict", "-E",
            "let s = builtins.listToAttrs (builtins.genList (i: { name = \"a${toString i}\"; value = i; }) 200000); "
            "m = builtins.mapAttrs (n: v: v * 2) s; in builtins.length (builtins.attrValues m)"], None),
        ("concatMapStringsSep-100k", lambda: ["--strict", "-E",
            f"let lib = import {lib()}; in builtins.stringLength (lib.concatMapStringsSep \",\" toString (lib.range 1 100000))"], None),
        ("attrNames-nixpkgs", lambda: ["-E", f"builtins.length (builtins.attrNames {pkgs()})"], None),
        ("hello.drvPath", lambda: ["-E", f"{pkgs()}.hello.drvPath"], None),
        ("whnf-all-tryEval", lambda: ["--strict", "-E",
            f"let pkgs = {pkgs()}; in builtins.length (builtins.filter (n: (builtins.tryEval pkgs.${{n}}).success) (builtins.attrNames pkgs))"], None),
        ("firefox.drvPath", lambda: ["-E", f"{pkgs()}.firefox.drvPath"], None),
        ("2170-outPaths", lambda: ["--strict", "-E",
            f"let pkgs = {pkgs()}; "
            f"names = builtins.attrNames (builtins.fromJSON (builtins.readFile {SHARED}/corpus/nixpkgs-20.09-drvpaths.json)); "
            "in builtins.length (builtins.filter (n: (builtins.tryEval pkgs.${n}.drvPath).success) names)"], 1),
        ("nixos-small-server", lambda: ["-E",
            f"(import {nixpkgs()}/nixos {{ configuration = {SHARED}/corpus/nixos/small-server.nix; system = \"x86_64-linux\"; }}).config.system.build.toplevel.drvPath"], None),
        ("modern-hello.drvPath", lambda: ["-E", f"{modern()}.hello.drvPath"], None),
        # Every 20th of the 5,598 reference attributes (280): a quick check.
        ("modern-outPaths-1in20", lambda: modern_outpaths(20), 1),
        # All 5,598 reference attributes (C++ Nix: ~105 s, 4.3 GB).
        ("modern-outPaths-all", lambda: modern_outpaths(1), 1),
    ]


BENCH_CACHE = os.path.join(ROOT, "target", "bench-cache")


def measure(cmd, env=None, before=None):
    if before:
        before()
    # stderr goes to a file: nixpkgs prints enough warnings to fill a pipe.
    with tempfile.TemporaryFile() as errf:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    if status != 0:
        return None, None, err.strip().splitlines()[-1:] or ["failed"]
    return elapsed, usage.ru_maxrss / 1024.0, None


def run_pair(sides, runs):
    """Runs each side's command `runs` times, alternating the sides, so
    that a change in the machine's load meets both alike. A side is
    (label, cmd, env, before); its result is (median time, peak RSS) or
    None if it failed. Commands that take under 0.2 s are run at least
    10 times: their medians move by 10-30% over 3 runs."""
    results = [([], []) for _ in sides]
    failed = [False for _ in sides]
    done = 0
    while done < runs:
        for i, (label, cmd, env, before) in enumerate(sides):
            if failed[i]:
                continue
            t, m, err = measure(cmd, env, before)
            if t is None:
                print(f"  {label}: failed: {err[0]}")
                failed[i] = True
                continue
            results[i][0].append(t)
            results[i][1].append(m)
        done += 1
        if done == runs and runs < 10 and all(
            f or (ts and statistics.median(ts) < 0.2) for f, (ts, _) in zip(failed, results)
        ):
            runs = 10
    return [None if f else (statistics.median(ts), max(ms)) for f, (ts, ms) in zip(failed, results)]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only")
    # By default the binary users install (the `dist` profile), built or
    # brought up to date first; `--attrfs` measures another as it is.
    ap.add_argument("--attrfs")
    ap.add_argument("--compile-cache", choices=["warm", "cold", "off"], default="warm")
    a = ap.parse_args()
    env = dict(os.environ, XDG_CACHE_HOME=BENCH_CACHE)
    env.pop("ATTRFS_CACHE_DIR", None)
    env.pop("ATTRFS_NO_COMPILE_CACHE", None)
    empty_cache = lambda: shutil.rmtree(os.path.join(BENCH_CACHE, "attrfs", "compiled"), ignore_errors=True)
    if a.attrfs is None:
        subprocess.run(["cargo", "build", "--profile", "dist", "-p", "attrfs"], cwd=ROOT, check=True)
        a.attrfs = os.path.join(ROOT, "target", "dist", "attrfs")
    nix = "/usr/bin/nix-instantiate" if os.path.exists("/usr/bin/nix-instantiate") else None
    print(f"{'workload':28} {'attrfs s':>9} {'MB':>7} {'nix s':>9} {'MB':>7} {'time x':>7} {'mem x':>7}")
    for name, args, runs in workloads():
        if a.only and a.only not in name:
            continue
        runs = min(runs or a.runs, a.runs)
        argv = args()
        ours_cmd = [a.attrfs, "eval"] + (["--no-compile-cache"] if a.compile_cache == "off" else []) + argv
        if a.compile_cache == "warm":
            measure(ours_cmd, env)
        sides = [("attrfs", ours_cmd, env, empty_cache if a.compile_cache == "cold" else None)]
        if nix:
            sides.append(("nix", [nix, "--eval"] + argv, None, None))
        ours, theirs = (run_pair(sides, runs) + [None])[:2]
        o = f"{ours[0]:9.3f} {ours[1]:7.0f}" if ours else f"{'-':>9} {'-':>7}"
        t = f"{theirs[0]:9.3f} {theirs[1]:7.0f}" if theirs else f"{'-':>9} {'-':>7}"
        r = f"{ours[0] / theirs[0]:7.2f} {ours[1] / theirs[1]:7.2f}" if ours and theirs else f"{'-':>7} {'-':>7}"
        print(f"{name:28} {o} {t} {r}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
