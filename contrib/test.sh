#!/usr/bin/env bash
# Installs what the tests need (fuse3 for fusermount3 and mount.fuse3, attr
# for getfattr) and runs the whole suite: formatting, clippy, unit,
# conformance, corpus and real-FUSE tests. Release profile: the corpus tests
# evaluate nixpkgs.
#
# The conformance suite and the corpora live in ../shared, beside the
# checkout. Without it (a fresh clone) every test that needs only the
# repository still runs; the suites that need ../shared skip themselves
# (attrfs_tests::require_shared) and are listed at the end. With CI=true a
# missing ../shared is an error: CI never skips them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d ../shared ]; then
  if [ "${CI:-}" = true ]; then
    echo "error: CI=true but ../shared (the conformance suite and corpora) is missing beside $(pwd)" >&2
    exit 1
  fi
  echo "note: ../shared is missing: running the tests that need only the repository" >&2
fi

need=()
{ command -v fusermount3 && { command -v mount.fuse3 || [ -x /sbin/mount.fuse3 ]; }; } >/dev/null || need+=(fuse3)
command -v getfattr >/dev/null || need+=(attr)
command -v xz >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "error: cargo is required (rustup.rs or apt-get install cargo)" >&2; exit 1; }

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings

mkdir -p target
export ATTRFS_SKIP_LOG="$PWD/target/skipped-tests.txt"
rm -f "$ATTRFS_SKIP_LOG"
cargo test --workspace --release

if [ -s "$ATTRFS_SKIP_LOG" ]; then
  echo
  echo "NOT RUN: $(sort -u "$ATTRFS_SKIP_LOG" | wc -l) tests need ../shared (C++ Nix's language suite and the nixpkgs/NixOS corpora), which is not beside this checkout:"
  sort -u "$ATTRFS_SKIP_LOG" | sed 's/^/  /'
  echo "Put the shared material at $(cd .. && pwd)/shared to run them; CI runs them with CI=true, where a missing ../shared fails."
fi
