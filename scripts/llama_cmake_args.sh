#!/usr/bin/env bash
# CMake flags for building llama-cpp-python on this machine.
#   bash scripts/llama_cmake_args.sh              the flags
#   bash scripts/llama_cmake_args.sh --backend    cpu or cuda
#   bash scripts/llama_cmake_args.sh --key VER    the wheel cache key of llama-cpp-python VER built with them
# The backend is cuda where a CUDA GPU and toolkit are present (`nvidia-smi -L` works and `nvcc` is found,
# on the PATH or in $CUDA_HOME/bin, default /usr/local/cuda); REASON_LLAMA_BACKEND=cpu|cuda forces one.
# REASON_CUDA_ARCHITECTURES (e.g. 90 for an H100/H200) builds the CUDA kernels for those only (much shorter).
# We never use -march=native: on CPUs with AMX (seen here: Sapphire Rapids in a VM) llama.cpp's AMX kernels
# crash in batched prompt decoding, so AMX is always off and the SIMD levels are taken from /proc/cpuinfo.
set -euo pipefail
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { [[ " $flags " == *" $1 "* ]] && echo ON || echo OFF; }
args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
args+=" -DGGML_AVX=$(has avx) -DGGML_AVX2=$(has avx2) -DGGML_FMA=$(has fma) -DGGML_F16C=$(has f16c)"
args+=" -DGGML_AVX512=$(has avx512f) -DGGML_AVX512_VBMI=$(has avx512vbmi) -DGGML_AVX512_VNNI=$(has avx512_vnni)"
args+=" -DGGML_AVX_VNNI=$(has avx_vnni) -DGGML_BMI2=$(has bmi2)"

nvcc_path() {
  command -v nvcc 2>/dev/null && return
  local candidate="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
  [ -x "$candidate" ] && echo "$candidate"
}

backend=${REASON_LLAMA_BACKEND:-auto}
case "$backend" in
  auto)
    backend=cpu
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && [ -n "$(nvcc_path)" ]; then
      backend=cuda
    fi ;;
  cpu) ;;
  cuda)
    if [ -z "$(nvcc_path)" ]; then
      echo "REASON_LLAMA_BACKEND=cuda but nvcc is not found: install the CUDA toolkit or set CUDA_HOME" >&2
      exit 2
    fi ;;
  *) echo "REASON_LLAMA_BACKEND must be cpu or cuda, not '$backend'" >&2; exit 2 ;;
esac

if [ "$backend" = cuda ]; then
  args+=" -DGGML_CUDA=on"
  if [ -n "${REASON_CUDA_ARCHITECTURES:-}" ]; then
    args+=" -DCMAKE_CUDA_ARCHITECTURES=$REASON_CUDA_ARCHITECTURES"
  fi
  # CMake looks for nvcc on the PATH; one found only under $CUDA_HOME is named to it.
  if ! command -v nvcc >/dev/null 2>&1 && [ -z "${CUDACXX:-}" ]; then
    args+=" -DCMAKE_CUDA_COMPILER=$(nvcc_path)"
  fi
fi

case "${1:-}" in
  --backend) echo "$backend" ;;
  # The CPU key is the one setup.sh has always used (a CPU machine keeps its cached wheel); a CUDA key also
  # names the backend and the toolkit's release, so a CPU wheel is never reused on a GPU machine, nor the reverse.
  --key)
    if [ "$backend" = cpu ]; then
      echo "${2:?--key needs the llama-cpp-python version} $args" | sha256sum | cut -c1-16
    else
      release=$("$(nvcc_path)" --version | grep -o 'release [0-9.]*' | head -1)
      echo "cuda-$(echo "${2:?--key needs the llama-cpp-python version} cuda $release $args" | sha256sum | cut -c1-16)"
    fi ;;
  "") echo "$args" ;;
  *) echo "usage: llama_cmake_args.sh [--backend | --key VERSION]" >&2; exit 2 ;;
esac
