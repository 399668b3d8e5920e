#!/usr/bin/env bash
# The benchmark suite (issue 8) in one command: builds release and prints the
# in-process table (benches/suite.rs: R1, R2, R4, R5, R8, disk, write
# amplification, every ratio from one run) and the server-level table
# (benches/server.rs: spans/s per core, refusals, ack latency, CPU at a light
# load, idle RSS). Figures go to docs/performance.md with the machine.
#
#   benches/run.sh                 # the full run (about five minutes)
#   TRACEMAP_SUITE_REQUESTS=500 benches/run.sh   # a smaller corpus
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tracemap/target}"

cargo build --release --locked --benches --bins
echo "## In process (benches/suite.rs)"
cargo bench --locked --bench suite 2>/dev/null
echo
echo "## Server (benches/server.rs)"
cargo bench --locked --bench server 2>/dev/null
