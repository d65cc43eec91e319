#!/usr/bin/env bash
# The test suite: set-up, formatting, lints, then every test in release mode (the statistical
# tests are fixed-seed and take about a minute there). Ends with a total "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
mkdir -p target
log=target/test-output.log
status=0
cargo test --release --workspace 2>&1 | tee "$log" || status=$?
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "total: $passed passed, $failed failed"
exit "$status"
