#!/usr/bin/env bash
# Runs every test of tracemap: formatting, lints, unit, integration (real
# server, real OpenTelemetry SDK exporters in Rust and Python, SIGKILL rounds)
# and the benches in test mode. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# Builds are cached outside the clone so a fresh clone rebuilds only our crate.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tracemap/target}"
export TRACEMAP_PYTHON="${TRACEMAP_PYTHON:-${TRACEMAP_VENV:-$HOME/.cache/tracemap/venv}/bin/python}"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
bash scripts/deny.sh
# Benches run once each in test mode, so they are known to work; the
# measured runs are `cargo bench` (docs/performance.md).
cargo test --benches --locked
cargo test --lib --bins --tests --locked
# Every decoder fuzzed for 15 s from the seed corpus (scripts/fuzz.sh; the
# longer run is in docs/reliability.md). The first run installs cargo-fuzz
# and builds the targets (about 15 minutes on two cores, cached after).
bash scripts/fuzz.sh 15
