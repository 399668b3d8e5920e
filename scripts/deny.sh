#!/usr/bin/env bash
# Checks tracemap's dependencies with cargo-deny (deny.toml): permissive
# licenses only, crates.io only, no wildcard versions. Installs cargo-deny
# into ~/.cache/tracemap/cargo-tools the first time (a few minutes).
# Advisories need the RustSec database from GitHub, unreachable from this
# build machine: run `cargo deny check advisories` where GitHub is.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="$HOME/.cache/tracemap/cargo-tools"
if [ ! -x "$TOOLS/bin/cargo-deny" ]; then
  echo "deny: installing cargo-deny into $TOOLS"
  CARGO_TARGET_DIR="$HOME/.cache/tracemap/target-tools" \
    cargo install --locked --quiet cargo-deny@0.20.2 --root "$TOOLS"
fi
"$TOOLS/bin/cargo-deny" --locked check licenses bans sources
