#!/usr/bin/env bash
# The test suite: set-up, formatting, lints, then every test in release mode (the statistical
# tests are fixed-seed and take about a minute there), then `scoresde figures --quick`.
# Ends with a total "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# fmt and clippy ship with the toolchain here; skip (loudly) where a toolchain lacks them.
# File by file as well: a module reached only through a macro would escape cargo fmt.
if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --all -- --check
    git ls-files '*.rs' | xargs rustfmt --edition 2021 --check
else
    echo "test.sh: rustfmt missing, format check skipped" >&2
fi
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --release --workspace --all-targets -- -D warnings
else
    echo "test.sh: clippy missing, lint check skipped" >&2
fi
mkdir -p target
log=target/test-output.log
status=0
cargo test --release --workspace --exclude scoresde-python 2>&1 | tee "$log" || status=$?
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
# The examples run as a user would run them; each asserts its own result.
for ex in examples/*.rs; do
    name=$(basename "$ex" .rs)
    if cargo run --release --quiet --example "$name"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); status=1
        echo "test.sh: example $name failed" >&2
    fi
done
# The Python bindings: installed with pip, stubs checked, pytest (its "N passed" joins the count).
pylog=target/python-tests.log
pystatus=0
./scripts/python_tests.sh 2>&1 | tee "$pylog" || pystatus=$?
count() { { grep -Eo "[0-9]+ $1" "$pylog" || true; } | awk '{s += $1} END {print s + 0}'; }
passed=$((passed + $(count passed)))
failed=$((failed + $(count failed)))
if [ "$pystatus" -ne 0 ]; then
    status=1
    grep -Eq '[0-9]+ failed' "$pylog" || failed=$((failed + 1))
fi
# Every paper figure at --quick size, into a scratch directory: each asserted claim must hold;
# then the run's index.html must render in headless Chromium with every figure loaded.
figs=$(mktemp -d)
if target/release/scoresde figures --quick --out "$figs"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); status=1
    echo "test.sh: scoresde figures --quick failed" >&2
fi
if ./scripts/check_index.sh "$figs"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); status=1
    echo "test.sh: figures index did not render" >&2
fi
# Power control: with one figure gone the same check must fail.
rm -f "$figs/samplers-vs-nfe/errors.png"
if ./scripts/check_index.sh "$figs" >/dev/null 2>&1; then
    failed=$((failed + 1)); status=1
    echo "test.sh: the index check passed with a figure missing" >&2
else
    passed=$((passed + 1))
fi
rm -rf "$figs"
# A real one-node Slurm cluster: a sweep run locally and as a job array merges byte-identical,
# a cancelled element is resubmitted alone. Skipped (never passed) where Slurm cannot run.
skipped=0
slurm_status=0
./scripts/slurm_check.sh || slurm_status=$?
case "$slurm_status" in
    0) passed=$((passed + 1)) ;;
    77) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)); status=1; echo "test.sh: scripts/slurm_check.sh failed" >&2 ;;
esac
echo "total: $passed passed, $failed failed, $skipped skipped"
exit "$status"
