#!/usr/bin/env bash
# scoresde against PyTorch on this machine, in one run, one workload after the other (never
# concurrently): installs torch into a virtual environment outside the repository
# (~/.cache/scoresde-torch) on first use, then prints every figure and its ratio:
#   * networks: `cargo bench --bench net_throughput` beside `benches/pytorch_reference.py`;
#   * the exact oracle: `cargo bench --bench em_throughput` and `--bench mixture_score` beside
#     `benches/pytorch_oracle.py` (torch.compile'd float32 EM, batched float64 mixture score);
#   * whole processes: `scoresde train` (500 steps, 3x256, batch 1024) and `scoresde sample`
#     (10^4 x 100 EM with that network) as a user runs them, beside the same work as a PyTorch
#     script (`pytorch_reference.py --whole-process`), best of 3 each, alternating.
# BENCH_PAIRS (default 3) sets how many Rust/PyTorch pairs each benchmark comparison runs.
# Set BENCH_SKIP_ORACLE=1 or BENCH_SKIP_WHOLE=1 to leave a part out.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
venv="${SCORESDE_TORCH_VENV:-$HOME/.cache/scoresde-torch}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch numpy
fi
py="$venv/bin/python"
threads=$(nproc)
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $threads threads, $(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || echo AVX2)"
show() { tee >(cat >&2); }  # keep a copy on stderr without reopening it
rate() { grep -F "$2" <<<"$1" | grep -Eo '[0-9.]+ (steps/s|M particle-steps/s|M particle-scores/s)' | head -1 | awk '{print $1}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# Each comparison runs as BENCH_PAIRS pairs (Rust, then PyTorch, alternating) and quotes the
# median of the per-pair ratios with their range: the machine's speed drifts within a minute,
# and a ratio of two medians taken minutes apart carries that drift.
pairs=${BENCH_PAIRS:-3}
# ratios OUT_A OUT_B PATTERN_A PATTERN_B: "median (min–max)" of the per-pair ratios.
ratios() {
    local -n outs_a=$1 outs_b=$2
    local i all=()
    for i in "${!outs_a[@]}"; do
        all+=("$(ratio "$(rate "${outs_a[$i]}" "$3")" "$(rate "${outs_b[$i]}" "$4")")")
    done
    printf '%s\n' "${all[@]}" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2fx (%.2f-%.2f over %d pairs)", v[int((NR + 1) / 2)], v[1], v[NR], NR }'
}
nets_rs=() nets_py=()
for _ in $(seq "$pairs"); do
    nets_rs+=("$(cargo bench --bench net_throughput 2>/dev/null | show)")
    nets_py+=("$("$py" benches/pytorch_reference.py --threads "$threads" | show)")
done
report="ratio training reference:   $(ratios nets_rs nets_py 'training reference' 'training reference') PyTorch
ratio training default:     $(ratios nets_rs nets_py 'training default' 'training default') PyTorch
ratio network sampling:     $(ratios nets_rs nets_py 'sampling:' 'sampling reference') PyTorch"

if [ -z "${BENCH_SKIP_ORACLE:-}" ]; then
    oracle_rs=() oracle_py=()
    for _ in $(seq "$pairs"); do
        oracle_rs+=("$({ cargo bench --bench em_throughput; cargo bench --bench mixture_score; } 2>/dev/null | show)")
        oracle_py+=("$("$py" benches/pytorch_oracle.py --threads "$threads" | show)")
    done
    report+="
ratio exact EM:             $(ratios oracle_rs oracle_py 'reverse EM' 'exact EM compiled') torch.compile; $(ratios oracle_rs oracle_py 'reverse EM' 'exact EM eager') eager"
    while read -r dk; do
        report+="
ratio mixture score $dk: $(ratios oracle_rs oracle_py "mixture score $dk " "mixture score $dk ") PyTorch float64"
    done < <(grep -Eo 'd=[0-9]+ K=[0-9]+' <<<"${oracle_rs[0]}")
fi

if [ -z "${BENCH_SKIP_WHOLE:-}" ]; then
    cargo build --release -q
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # Whole seconds of one command; a failed command stops the script (its time would be a lie).
    secs() {
        local s; s=$(date +%s.%N)
        "$@" >/dev/null 2>&1 || { echo "bench-vs-pytorch: failed: $*" >&2; return 1; }
        awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'
    }
    best() { sort -g | head -1; }
    train_rs=() train_py=() sample_rs=() sample_py=() fixed=()
    for _ in 1 2 3; do
        rm -rf "$work/rs"
        t=$(secs ./target/release/scoresde train --data 8gaussians --steps 10 --batch 1024 --hidden 256 --layers 3 --time-dim 128 --fourier 0 --residual false --out "$work/rs") || exit 1
        fixed+=("$t")
        rm -rf "$work/rs" "$work/py" && mkdir -p "$work/py"
        t=$(secs ./target/release/scoresde train --data 8gaussians --steps 500 --batch 1024 --hidden 256 --layers 3 --time-dim 128 --fourier 0 --residual false --out "$work/rs") || exit 1
        train_rs+=("$t")
        t=$(secs "$py" benches/pytorch_reference.py --threads "$threads" --whole-process train --out "$work/py") || exit 1
        train_py+=("$t")
        t=$(secs ./target/release/scoresde sample --model "$work/rs" --n 10000 --steps 100 --out "$work/rs/samples.csv") || exit 1
        sample_rs+=("$t")
        t=$(secs "$py" benches/pytorch_reference.py --threads "$threads" --whole-process sample --out "$work/py") || exit 1
        sample_py+=("$t")
    done
    tr=$(printf '%s\n' "${train_rs[@]}" | best) tp=$(printf '%s\n' "${train_py[@]}" | best)
    sr=$(printf '%s\n' "${sample_rs[@]}" | best) sp=$(printf '%s\n' "${sample_py[@]}" | best)
    fx=$(printf '%s\n' "${fixed[@]}" | best)
    # The fixed cost of a run (start-up, the final checkpoint, loss.csv, loss.png) is bounded by
    # the whole time of a 10-step run; the in-loop time of a 500-step run is the rest.
    echo "whole process, best of 3: scoresde train ${tr}s ($(ratio 500 "$tr") steps/s; a 10-step run takes ${fx}s: fixed cost <= $(awk -v f="$fx" -v w="$tr" 'BEGIN { printf "%.1f", 100 * f / (w - f) }')% of the in-loop time), PyTorch ${tp}s; scoresde sample ${sr}s, PyTorch ${sp}s"
    report+="
ratio whole-process train:  $(ratio "$tp" "$tr")x PyTorch
ratio whole-process sample: $(ratio "$sp" "$sr")x PyTorch"
fi
echo "$report"
