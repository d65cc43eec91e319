#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian/Ubuntu machine: OpenBLAS
# (LAPACK for ndarray-linalg), pkg-config, and Chromium (the headless check of
# figures/index.html). Does nothing when they are already there.
set -euo pipefail
need=()
ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so' || need+=(libopenblas-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
# The Python bindings' tests build in a virtual environment.
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv python3-dev)
if [ "${SCORESDE_NO_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${need[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
