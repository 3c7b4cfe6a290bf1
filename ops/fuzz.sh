#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (ARCHITECTURE.md § Fuzzing) for a bounded time, starting from
# its committed corpus (fuzz/corpus/<target>/), and fails on the first crash, panic, hang or
# out-of-memory. New inputs libFuzzer finds go to a scratch directory, so a CI run never grows
# the committed corpus; a finding is left in fuzz/artifacts/<target>/ to reproduce with
# `cargo fuzz run --sanitizer none <target> fuzz/artifacts/<target>/<file>`.
#
#   bash ops/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 20 s, every target)
#
# cargo-fuzz on stable Rust: `--sanitizer none` (no AddressSanitizer; the code is safe Rust, and
# panics, overflow checks and debug assertions are what find bugs here).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
shift || true
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# One build of every target (they share one dependency graph), then the runs.
cargo fuzz build --sanitizer none
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  echo "ops/fuzz.sh: $target for ${seconds} s"
  # -timeout: an input that runs longer is a hang (the Rhai sandbox must stop every script
  # well within it); -rss_limit_mb: a memory bomb that gets past a limit is a finding.
  cargo fuzz run --sanitizer none "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    2> "$scratch/$target.log" || {
    tail -n 60 "$scratch/$target.log" >&2
    echo "ops/fuzz.sh: $target FAILED (the input is in fuzz/artifacts/$target/)" >&2
    exit 1
  }
  # libFuzzer's final stats: inputs tried (stat::number_of_executed_units) and the speed.
  { grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb):' \
    "$scratch/$target.log" || true; } | tr '\n' ' '
  echo
done
