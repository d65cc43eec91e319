#!/usr/bin/env bash
# The main job (until named experiments land): sample 8gaussians and a full-covariance mixture
# with the exact score, by reverse-SDE Euler–Maruyama and by the adaptive PF-ODE, and test each
# sample set against exact draws. Outputs go to figures/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --quiet
bin=target/release/scoresde
out=figures/demo
mkdir -p "$out"
for data in 8gaussians experiments/full-cov-mixture.toml; do
    name=$(basename "$data" .toml)
    for sampler in em pf-rk45; do
        "$bin" sample --data "$data" --sampler "$sampler" --n 2000 --seed 1 --out "$out/$name-$sampler.csv"
        "$bin" test --samples "$out/$name-$sampler.csv" --data "$data" --seed 1
    done
done
