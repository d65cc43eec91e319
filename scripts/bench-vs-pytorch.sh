#!/usr/bin/env bash
# Network throughput of scoresde against PyTorch on this machine, in one run: installs torch
# into a virtual environment outside the repository (~/.cache/scoresde-torch) on first use,
# then runs `cargo bench --bench net_throughput` and `benches/pytorch_reference.py` one after
# the other (never concurrently) and prints both with the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
venv="${SCORESDE_TORCH_VENV:-$HOME/.cache/scoresde-torch}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch numpy
fi
rust=$(cargo bench --bench net_throughput 2>/dev/null | tee /dev/stderr)
py=$("$venv/bin/python" benches/pytorch_reference.py --threads "$(nproc)" | tee /dev/stderr)
rate() { grep -F "$2" <<<"$1" | grep -Eo '[0-9.]+ (steps/s|M particle-steps/s)' | head -1 | awk '{print $1}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "ratio training reference: $(ratio "$(rate "$rust" 'training reference')" "$(rate "$py" 'training reference')")x PyTorch"
echo "ratio training default:   $(ratio "$(rate "$rust" 'training default')" "$(rate "$py" 'training default')")x PyTorch"
echo "ratio sampling:           $(ratio "$(rate "$rust" 'sampling:')" "$(rate "$py" 'sampling reference')")x PyTorch"
