#!/usr/bin/env bash
# Filesystem benchmark: real mounts of nixpkgs 20.09 and of the NixOS
# small-server configuration, timed with the tools a user would run.
#
#   bash contrib/bench-fs.sh            # RUNS=3 by default
#
# Builds attrfs (the `dist` profile users install), unpacks ../shared/corpus into target/corpus, and
# prints a table of wall-clock times (median of RUNS runs where a run is
# cheap to repeat; "cold" always means a fresh mount) and the peak RSS of
# the mount daemon and of its evaluator workers. Where nix-instantiate is installed, the NixOS row is
# compared with getting the same /etc texts from
# `nix-instantiate --eval --strict --json` (and from `attrfs eval`).
# Needs root (or fusermount3) and /dev/fuse. Not a test: numbers only.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
RUNS=${RUNS:-3}
cd "$ROOT"

cargo build --profile dist -q -p attrfs
BIN=$ROOT/target/dist/attrfs
CORPUS=$ROOT/target/corpus
bash "$SHARED/corpus/unpack.sh" "$CORPUS" >/dev/null
NIXPKGS=$CORPUS/nixpkgs-20.09
CFG=$(realpath "$SHARED/corpus/nixos/small-server.nix")

WORK=$(mktemp -d /tmp/attrfs-bench.XXXXXX)
MNT=$WORK/mnt
mkdir "$MNT"
LOG=$WORK/attrfs.log
PID=

is_mounted() { awk -v m="$MNT" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }

stop_mount() {
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        PID=
    fi
    if is_mounted; then umount -l "$MNT"; fi
}

cleanup() {
    stop_mount
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_mount ARGS...: mounts on $MNT in the background; sets PID and
# MOUNT_SECS (time until the mount appeared).
start_mount() {
    local start=$EPOCHREALTIME
    "$BIN" mount "$@" "$MNT" 2>>"$LOG" &
    PID=$!
    until is_mounted; do
        if ! kill -0 "$PID" 2>/dev/null; then
            echo "attrfs mount $* failed:" >&2
            tail -20 "$LOG" >&2
            exit 1
        fi
        sleep 0.02
    done
    MOUNT_SECS=$(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.3f", e - s }')
}

# "Cold" means a fresh mount that evaluates: without the persistent answer
# cache (--no-cache), which would otherwise answer a remount of the same
# expression from disk (that case has rows of its own). The compiled-file
# cache stays on: it is warm after the first run.
NIXPKGS_ARGS=("$NIXPKGS" --arg config '{}' --arg overlays '[]' --argstr system x86_64-linux)
mount_nixpkgs() {
    start_mount --no-cache "${NIXPKGS_ARGS[@]}"
}

mount_nixos() {
    start_mount --no-cache "$NIXPKGS/nixos" --arg configuration "$CFG" --argstr system x86_64-linux -A config
}

# The expressions the eval rows time: what a colour `ls` of the nixpkgs
# root forces, and the texts a `grep -r` of `environment/etc` reads.
WHNF_EXPR="let p = import $NIXPKGS { config = {}; overlays = []; system = \"x86_64-linux\"; };
in builtins.length (builtins.filter (n: (builtins.tryEval (builtins.seq p.\${n} true)).success) (builtins.attrNames p))"
ETC_EXPR="let c = (import $NIXPKGS/nixos { configuration = $CFG; system = \"x86_64-linux\"; }).config;
in builtins.mapAttrs (n: e: let r = builtins.tryEval (e.text or null); in if r.success then r.value else null)
  c.environment.etc"

# The compiled-file cache is keyed by the build as well as the files: after
# a new build it is empty, and the first row to evaluate (with RUNS=1, the
# cold rows) would pay for compiling nixpkgs and NixOS. One untimed
# evaluation of each fills it, so every row compares evaluation only.
"$BIN" eval -E "$WHNF_EXPR" >/dev/null 2>&1 || true
"$BIN" eval --strict --json -E "$ETC_EXPR" >/dev/null 2>&1 || true

# Peak RSS of the running daemon and, summed, of its evaluator workers
# (which hold the evaluated values), in MB.
peak_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
daemon_peak_mb() {
    local workers=0 w
    for w in $(pgrep -P "$PID"); do workers=$((workers + $(peak_kb "$w"))); done
    echo "$(( $(peak_kb "$PID") / 1024 )) MB + workers $((workers / 1024))"
}

# secs CMD...: runs CMD (in $MNT, output discarded, errors tolerated) and
# prints its wall-clock time in seconds.
secs() {
    local start=$EPOCHREALTIME
    (cd "$MNT" && "$@") >/dev/null 2>&1 || true
    awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.3f", e - s }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

ROWS=()
row() { ROWS+=("$(printf '%-52s %10s %6s   %s' "$1" "$2" "$3" "$4")"); }

# --- nixpkgs -----------------------------------------------------------------
mount_times=() ls_cold=() ls_warm=() cat_cold=() cat_warm=()
entries= version=
for _ in $(seq "$RUNS"); do
    mount_nixpkgs
    mount_times+=("$MOUNT_SECS")
    cat_cold+=("$(secs cat hello/version)")
    version=$(cat "$MNT/hello/version")
    cat_warm+=("$(secs cat hello/version)")
    stop_mount
    mount_nixpkgs
    ls_cold+=("$(secs ls)")
    ls_warm+=("$(secs ls)")
    entries=$(ls "$MNT" | wc -l)
    stop_mount
done

# stat of 1,000 entries: the first 1,000 names of the root. The first
# `ls -l` forces each to weak head normal form; then they are cached.
mount_nixpkgs
mapfile -t first < <(ls "$MNT" | head -1000)
stat_first=$(secs ls -ld -- "${first[@]}")
failing=$(cd "$MNT" && stat -- "${first[@]}" 2>&1 >/dev/null | grep -c 'Input/output error' || true)
stat_warm=()
for _ in $(seq "$RUNS"); do stat_warm+=("$(secs stat -- "${first[@]}")"); done
nixpkgs_peak=$(daemon_peak_mb)
stop_mount

row "nixpkgs: mount (until mounted)" "$(median "${mount_times[@]}")" "$RUNS" "fresh mount each run"
row "nixpkgs: ls root, cold" "$(median "${ls_cold[@]}")" "$RUNS" "$entries entries, fresh mount"
row "nixpkgs: ls root, warm" "$(median "${ls_warm[@]}")" "$RUNS" "second ls on the same mount"
row "nixpkgs: cat hello/version, cold" "$(median "${cat_cold[@]}")" "$RUNS" "= $version, fresh mount"
row "nixpkgs: cat hello/version, warm" "$(median "${cat_warm[@]}")" "$RUNS" "second cat"
row "nixpkgs: ls -ld 1,000 root entries, first time" "$stat_first" 1 "forces each value; $failing give EIO"
row "nixpkgs: stat 1,000 cached root entries" "$(median "${stat_warm[@]}")" "$RUNS" "after the ls -ld"
row "nixpkgs: daemon peak RSS" "-" "" "daemon $nixpkgs_peak MB after the stat runs"

# Colour ls (what most distributions alias ls to) stats every entry, so it
# forces all 12,143 root values to weak head normal form: compare it with
# forcing the same attributes by evaluation alone.
colour_cold=() colour_warm=() colour_peak= colour_err=0
for _ in $(seq "$RUNS"); do
    mount_nixpkgs
    colour_cold+=("$(secs ls --color=always)")
    colour_err=$( (cd "$MNT" && ls --color=always 2>&1 >/dev/null) | wc -l)
    colour_warm+=("$(secs ls --color=always)")
    colour_peak=$(daemon_peak_mb)
    stop_mount
done
row "nixpkgs: ls --color root, cold" "$(median "${colour_cold[@]}")" "$RUNS" "fresh mount; peak RSS daemon $colour_peak MB (last run); $colour_err lines on stderr"
row "nixpkgs: ls --color root, warm" "$(median "${colour_warm[@]}")" "$RUNS" "second ls on the same mount"

# The persistent answer cache: the first mount evaluates and stores, the
# remounts answer from disk.
export ATTRFS_CACHE_DIR=$WORK/cache
start_mount "${NIXPKGS_ARGS[@]}"
(cd "$MNT" && ls --color=always >/dev/null)
stop_mount
remount_times=() remount_ls=()
for _ in $(seq "$RUNS"); do
    start_mount "${NIXPKGS_ARGS[@]}"
    remount_times+=("$MOUNT_SECS")
    remount_ls+=("$(secs ls --color=always)")
    remount_peak=$(daemon_peak_mb)
    stop_mount
done
unset ATTRFS_CACHE_DIR
row "nixpkgs: remount with the persistent cache" "$(median "${remount_times[@]}")" "$RUNS" "until mounted (checks the stored inputs)"
row "nixpkgs: ls --color root after a remount" "$(median "${remount_ls[@]}")" "$RUNS" "from the persistent cache; peak RSS daemon $remount_peak MB"
mount_nixpkgs
hello_l=$(secs ls -l hello)
row "nixpkgs: ls -l hello/, cold" "$hello_l" 1 "$(cd "$MNT" && ls hello | wc -l) entries (stats each; .drv needs the derivation)"
stop_mount

# --- NixOS -------------------------------------------------------------------
os_mount=() grep_cold=() grep_warm=() hits= files= os_peak=
for _ in $(seq "$RUNS"); do
    mount_nixos
    os_mount+=("$MOUNT_SECS")
    grep_cold+=("$(secs grep -r PermitRootLogin environment/etc)")
    grep_warm+=("$(secs grep -r PermitRootLogin environment/etc)")
    hits=$( (cd "$MNT" && grep -r PermitRootLogin environment/etc 2>/dev/null || true) | wc -l)
    files=$( (cd "$MNT" && find environment/etc -type f 2>/dev/null || true) | wc -l)
    os_peak=$(daemon_peak_mb)
    stop_mount
done
row "NixOS config: mount (until mounted)" "$(median "${os_mount[@]}")" "$RUNS" "-A config, fresh mount each run"
row "NixOS config: grep -r over environment/etc, cold" "$(median "${grep_cold[@]}")" "$RUNS" "$files files, $hits hits, fresh mount"
row "NixOS config: grep -r over environment/etc, warm" "$(median "${grep_warm[@]}")" "$RUNS" "second grep on the same mount"
row "NixOS config: daemon peak RSS" "-" "" "daemon $os_peak MB after the greps (last run)"

# find over the whole configuration: every attribute, forced one by one.
mount_nixos
find_secs=$(secs find .)
find_peak=$(daemon_peak_mb)
find_entries=$( (cd "$MNT" && find . 2>/dev/null || true) | wc -l)
row "NixOS config: find, cold" "$find_secs" 1 "$find_entries entries; peak RSS daemon $find_peak MB"
stop_mount
start_mount --no-cache --no-read-ahead "$NIXPKGS/nixos" --arg configuration "$CFG" --argstr system x86_64-linux -A config
row "NixOS config: find, cold, --no-read-ahead" "$(secs find .)" 1 "peak RSS daemon $(daemon_peak_mb) MB"
stop_mount

# eval_row LABEL CMD...: median time and peak RSS of an evaluation.
eval_row() {
    local label=$1 times=() peak=0 t kb
    shift
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>>"$LOG"
        read -r t kb <"$WORK/time"
        times+=("$t")
        [ "$((kb / 1024))" -gt "$peak" ] && peak=$((kb / 1024))
    done
    row "$label" "$(median "${times[@]}")" "$RUNS" "peak RSS $peak MB"
}
eval_row "NixOS: attrfs eval --strict --json etc texts" "$BIN" eval --strict --json -E "$ETC_EXPR"
if command -v nix-instantiate >/dev/null; then
    eval_row "NixOS: nix-instantiate --eval --strict --json etc texts" \
        nix-instantiate --eval --strict --json -E "$ETC_EXPR"
else
    row "NixOS: nix-instantiate --eval --strict --json etc texts" "-" "" "nix-instantiate not installed"
fi

eval_row "nixpkgs: attrfs eval forcing every root attribute" "$BIN" eval -E "$WHNF_EXPR"
if command -v nix-instantiate >/dev/null; then
    eval_row "nixpkgs: nix-instantiate forcing every root attribute" nix-instantiate --eval -E "$WHNF_EXPR"
else
    row "nixpkgs: nix-instantiate forcing every root attribute" "-" "" "nix-instantiate not installed"
fi

# --- table -------------------------------------------------------------------
echo
echo "attrfs filesystem benchmark ($(nproc) cores, $(git -C "$ROOT" rev-parse --short HEAD))"
printf '%-52s %10s %6s   %s\n' "workload" "seconds" "runs" "notes"
printf '%-52s %10s %6s   %s\n' "--------" "-------" "----" "-----"
printf '%s\n' "${ROWS[@]}"
