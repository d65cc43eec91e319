#!/usr/bin/env bash
# The main job: regenerate the paper figures (`scoresde figures`), then sample 8gaussians and a full-covariance mixture
# with the exact score, by reverse-SDE Euler–Maruyama and by the adaptive PF-ODE, and test each
# sample set against exact draws; then train an ε-network on each (default config, reused when
# the run exists), evaluate its excess loss against the exact ε*, and test its samples.
# Outputs go to figures/demo/ (runs in figures/demo/runs/, each with loss.png).
set -euo pipefail
cd "$(dirname "$0")/.."
SCORESDE_NO_BROWSER=1 ./scripts/setup.sh
cargo build --release --quiet
bin=target/release/scoresde
# The paper figures (committed under figures/NAME/); a failed claim is reported, not fatal here.
"$bin" figures || echo "(figures: a claim failed, see above)"
out=figures/demo
mkdir -p "$out"
for data in 8gaussians experiments/full-cov-mixture.toml; do
    name=$(basename "$data" .toml)
    for sampler in em pf-rk45; do
        "$bin" sample --data "$data" --sampler "$sampler" --n 2000 --seed 1 --out "$out/$name-$sampler.csv"
        "$bin" test --samples "$out/$name-$sampler.csv" --data "$data" --seed 1
    done
done
# A few samplers of the zoo at 20 NFE, and likelihoods: PF-ODE NLL vs −ELBO (exact model).
for sampler in dpm-solver-3 dpm-solver-pp2m ddim edm-heun; do
    steps=20; [ "$sampler" = edm-heun ] && steps=11
    "$bin" sample --data 8gaussians --sampler "$sampler" --steps "$steps" --n 2000 --seed 1 --out "$out/8gaussians-$sampler.csv"
done
"$bin" nll --data 8gaussians --exact --n 1000 --seed 1 --out "$out/8gaussians-nll.csv"
"$bin" elbo --data 8gaussians --exact --T 1000 --n 1000 --seed 1 --out "$out/8gaussians-elbo-terms.csv"
for data in 8gaussians experiments/full-cov-mixture.toml; do
    name=$(basename "$data" .toml)
    run="$out/runs/$name"
    if [ ! -f "$run/run.toml" ]; then
        "$bin" train --data "$data" --out "$run"
    fi
    # eval exits 1 when a sample test rejects: report it, keep going.
    "$bin" eval --model "$run" --n 2000 --seed 1 --out "$out/$name-excess.csv" || echo "(eval: a test rejected, see above)"
    "$bin" nll --model "$run" --n 500 --seed 1 --out "$out/$name-model-nll.csv"
    "$bin" elbo --model "$run" --T 1000 --n 500 --seed 1 --out "$out/$name-model-elbo-terms.csv"
done
