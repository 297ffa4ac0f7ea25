#!/usr/bin/env bash
# Builds attrfs, mounts contrib/examples/demo.nix and shows it with ls, cat,
# getfattr and find, then unmounts. Installs fuse3 and attr if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v getfattr >/dev/null || need+=(attr)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release -q -p attrfs
bin=target/release/attrfs
mnt=$(mktemp -d /tmp/attrfs-demo.XXXXXX)
"$bin" mount contrib/examples/demo.nix "$mnt" &
pid=$!
cleanup() { "$bin" umount "$mnt" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rmdir "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done

show() { printf '\n$ %s\n' "$*"; "$@" || true; }
show "$bin" eval --strict -E '(import ./contrib/examples/demo.nix).users'
show ls -la "$mnt"
show cat "$mnt/greeting"
show cat "$mnt/answer"; echo
show ls "$mnt/users/alice/groups"
show cat "$mnt/users/alice/groups/0"; echo
show cat "$mnt/hello/.drv"; echo
show cat "$mnt/hello/.context"
show readlink "$mnt/hello/out"
show getfattr -d -m user.nix "$mnt/hello"
show getfattr -n user.nix.position "$mnt/users"
show cat "$mnt/broken"
show getfattr -n user.nix.error "$mnt/broken"
show cat "$mnt/double"
show find "$mnt" -maxdepth 2
