#!/usr/bin/env bash
# Virtualenvs for the serving benchmark's peers (benchmarks/serving_compare.py), kept apart from ai4hep's own .venv
# because MLServer and KServe pin their own fastapi / uvicorn / protobuf / grpcio versions.
#
#   benchmarks/peers/setup.sh [--triton] [DIR]        # default DIR: bench-data/peers (git-ignored)
#
# Creates DIR/mlserver-venv and DIR/kserve-venv; with --triton also DIR/pytriton-venv (nvidia-pytriton, which bundles
# a real tritonserver, for tests/test_triton_conformance.py; it pins numpy<2). Lower bounds only; torch is never
# installed there (the peers run the exported ONNX file with onnxruntime). Re-running only upgrades to the bounds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
triton=0
if [ "${1:-}" = "--triton" ]; then triton=1; shift; fi
dir="${1:-$root/bench-data/peers}"
python="${PYTHON:-python3}"
mkdir -p "$dir"

make_venv() {  # name, packages...
  local venv="$dir/$1"; shift
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
  fi
  "$venv/bin/python" -m pip install --quiet --prefer-binary "$@"
  # A peer venv that pulled torch would be a different (and slower to build) benchmark: refuse it.
  if "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"; then
    echo "error: torch got installed into $venv; remove it (the peers only need onnxruntime)" >&2
    exit 2
  fi
  echo "$venv: $("$venv/bin/python" -m pip list --format=freeze 2>/dev/null | grep -iE '^(mlserver|kserve|nvidia-pytriton|onnxruntime|numpy)==' | tr '\n' ' ')"
}

make_venv mlserver-venv "mlserver>=1.7" "onnxruntime>=1.17" "numpy>=1.24"
make_venv kserve-venv "kserve>=0.21" "onnxruntime>=1.17" "numpy>=1.24"
if [ "$triton" = 1 ]; then
  make_venv pytriton-venv "nvidia-pytriton>=0.7" "onnxruntime>=1.17"
fi
