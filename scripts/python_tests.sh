#!/usr/bin/env bash
# The Python bindings as a user gets them: `pip install ./bindings/python` into a virtual
# environment (target/py-venv), the stubs checked against the compiled module (mypy's
# stubtest), the examples type-checked (mypy --strict), then the pytest suite. The PyTorch
# example runs only where torch is installed in that environment (it is not a test dependency).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/py-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
fi
"$venv/bin/pip" install -q numpy pytest mypy
"$venv/bin/pip" install -q ./bindings/python
(cd bindings/python && MYPYPATH=python "../../$venv/bin/python" -m mypy.stubtest scoresde._scoresde)
"$venv/bin/python" -m mypy --strict examples/python/quickstart.py
"$venv/bin/python" -m pytest -q bindings/python/tests "$@"
