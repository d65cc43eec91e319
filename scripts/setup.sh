#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian/Ubuntu machine: OpenBLAS (LAPACK for
# ndarray-linalg) and pkg-config. Does nothing when they are already there.
set -euo pipefail
if ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so' && command -v pkg-config >/dev/null; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing libopenblas-dev and pkg-config" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev pkg-config >/dev/null
