#!/usr/bin/env bash
# Fuzzes every decoder (fuzz/, see docs/reliability.md): each target runs for
# SECONDS (default 20), one at a time, from the committed seed corpus in
# fuzz/corpus/<target>/. Installs cargo-fuzz first when it is missing.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# cargo-fuzz needs nightly-only rustc flags (sanitizers); on a stable toolchain
# they are allowed with RUSTC_BOOTSTRAP=1, for this build only. The library is
# built without its `rocks` feature, so RocksDB's C++ is never compiled here.
# New inputs found are kept in a scratch corpus under the cache, not in the
# clone; a crash leaves its input in fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(otlp_protobuf otlp_json xray_datagram zipkin_json query_params storage_keys)
fi

cache="$HOME/.cache/tracemap"
export PATH="$cache/cargo-bin/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz into $cache/cargo-bin"
  cargo install cargo-fuzz --locked --root "$cache/cargo-bin"
fi

export RUSTC_BOOTSTRAP=1
target_dir="$cache/fuzz-target"
cd fuzz
cargo fuzz build --target-dir "$target_dir"
mkdir -p "$cache/fuzz-logs"
for target in "${targets[@]}"; do
  scratch="$cache/fuzz-corpus/$target"
  log="$cache/fuzz-logs/$target.log"
  mkdir -p "$scratch"
  echo "fuzz: $target for ${seconds}s (log: $log)"
  # -max_len: requests up to 64 KiB are explored (the largest seed is 20 KB).
  # -rss_limit_mb, -timeout: one input may not take 2 GiB or 10 s.
  if ! cargo fuzz run --target-dir "$target_dir" "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
done
