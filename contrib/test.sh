#!/usr/bin/env bash
# Installs what the tests need (fuse3 for fusermount3, attr for getfattr)
# and runs the whole suite: formatting, clippy, unit, conformance, corpus
# and real-FUSE tests. Release profile: the corpus tests evaluate nixpkgs.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
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
cargo test --workspace --release
