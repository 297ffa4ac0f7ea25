#!/usr/bin/env bash
# Regenerates the expected outputs of these cases with C++ Nix 2.8
# (Debian's nix-bin), the oracle attrfs must match:
#
#   NAME.exp        stdout of `nix-instantiate --eval --strict --readonly-mode NAME.nix`
#   fail-NAME.nix   must fail (exit status 1, an `error:` message); no .exp
#
# Run from anywhere; review the diff before committing it.
set -euo pipefail
cd "$(dirname "$0")"
nix-instantiate --version | grep -q ' 2\.8\.' || { echo "expected C++ Nix 2.8" >&2; exit 1; }
for f in *.nix; do
  case $f in fail-*) continue ;; esac
  env -i PATH="$PATH" HOME=/homeless-shelter nix-instantiate --eval --strict --readonly-mode "$f" >"${f%.nix}.exp"
done
