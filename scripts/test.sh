#!/usr/bin/env bash
# The test suite: set-up, formatting, lints, then every test in release mode (the statistical
# tests are fixed-seed and take about a minute there).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
