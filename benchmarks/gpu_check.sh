#!/usr/bin/env bash
# The GPU device check (issue 25; docs/gpu.md): build llama-cpp-python with CUDA for the H200 only (sm_90),
# run the embedded SmolLM2 with every layer offloaded, and compare it with the CPU build.
#
#   bash benchmarks/gpu_check.sh prepare   here, with PyPI reachable: fills .gpu/a (22 MiB) and .gpu/b (~50 MiB)
#   bash benchmarks/gpu_check.sh build     on the GPU machine, call 1 (carry .gpu/a): the CUDA wheel, ~5 min
#   bash benchmarks/gpu_check.sh bench     on the GPU machine, call 2 (carry .gpu/b), while call 1's machine is
#                                          still warm (30 s): throughput, `reason bench` plain and vote on
#                                          50 GSM8K problems at 32 slots, greedy answers against the CPU's
#   bash benchmarks/gpu_check.sh cpu-ref   here, optional, on an idle CPU: the CPU build's greedy plain answers
#                                          on the same 50 problems (.gpu/cpu_plain.jsonl, carried in .gpu/b);
#                                          without it, `bench` runs the CUDA build with the GPU hidden instead
# The GPU machine has no registry: everything it needs travels in .gpu (64 MiB a call, the working tree
# included), and what call 1 leaves in /tmp/gpu lasts only while the machine stays warm.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
LLAMA_VERSION=0.3.36
W=/tmp/gpu
OUT=${OUT:-$W/out}
MODEL=SmolLM2-135M-Instruct.Q4_1.gguf
BENCH=(-d gsm8k -n 50 --seed 0 -m local/smollm2-135m --local-slots 32 --no-trajectories)
# reason's runtime needs that the GPU machine's image lacks (it has numpy, jinja2, click, rich, sympy, ...),
# at the versions installed here, as wheels for its Python 3.12; setuptools builds reason's own wheel there.
NEEDS=(pydantic pydantic_core annotated_types typing_inspection typing_extensions platformdirs tenacity diskcache
       math-verify latex2sympy2_extended antlr4-python3-runtime setuptools)

say() { printf '\n== %s\n' "$*"; }

trim_source() {  # the sdist without what a wheel build never reads: vocabularies, docs, tests, other backends
  local src=$1 v=$1/vendor/llama.cpp
  rm -rf "$src"/{.git,.github,docs,examples,tests,docker} "$v"/{.git,.github,models,docs,benches,tests,examples} \
    "$v"/{conversion,scripts,pocs,app,gguf-py,media,grammars,prompts,requirements,.devops,ci,licenses,skills}
  rm -f "$v"/convert_*.py
  (cd "$v/tools" && ls | grep -v -x -e mtmd -e CMakeLists.txt | xargs rm -rf)
  (cd "$v/ggml/src" && rm -rf ggml-{blas,cann,et,hexagon,hip,metal,musa,opencl,openvino,rpc,sycl,virtgpu,vulkan,webgpu,zdnn,zendnn})
}

prepare() {
  local py=.venv/bin/python tmp
  tmp=$(mktemp -d)
  rm -rf .gpu/a .gpu/b && mkdir -p .gpu/a .gpu/b/wheels
  say "llama-cpp-python $LLAMA_VERSION source, trimmed"
  "$py" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: -d "$tmp" \
    "llama-cpp-python==$LLAMA_VERSION"
  tar xzf "$tmp/llama_cpp_python-$LLAMA_VERSION.tar.gz" -C "$tmp"
  trim_source "$tmp/llama_cpp_python-$LLAMA_VERSION"
  tar cJf .gpu/a/llama-src.tar.xz -C "$tmp" "llama_cpp_python-$LLAMA_VERSION"
  say "SmolLM2 in two pieces, sha256-checked"
  local weights
  weights=$("$py" -c "from orchestrator.models.weights import weights_path; print(weights_path('smollm2-135m'))")
  split -n 2 -d -a 1 "$weights" "$tmp/smollm2.part"
  mv "$tmp/smollm2.part0" .gpu/a/ && mv "$tmp/smollm2.part1" .gpu/b/
  (cd .gpu/a && sha256sum smollm2.part0 >SHA256SUMS)
  (cd .gpu/b && sha256sum smollm2.part1 >SHA256SUMS && sha256sum "$weights" | sed "s|$weights|$MODEL|" >>SHA256SUMS)
  say "wheels for the GPU machine's Python 3.12"
  local pins=() name
  for name in "${NEEDS[@]}"; do pins+=("$name==$("$py" -m pip show "$name" | sed -n 's/^Version: //p')"); done
  "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/b/wheels "${pins[@]}"
  "$py" -c "from pathlib import Path; from orchestrator.bench.datasets import AIB; from orchestrator.pypi_data import \
download_wheels; download_wheels([AIB], Path('.gpu/b/wheels'))"  # GSM8K, pinned by sha256
  [ -f .gpu/cpu_plain.jsonl ] && cp .gpu/cpu_plain.jsonl .gpu/b/
  rm -rf "$tmp"
  du -sh .gpu/a .gpu/b
  echo "each call carries one folder plus the working tree: keep each under 64 MiB together"
}

cpu_ref() {
  .venv/bin/reason bench "${BENCH[@]}" -s plain -o runs/gpu-cpu-ref
  cp runs/gpu-cpu-ref/results.jsonl .gpu/cpu_plain.jsonl
  echo "wrote .gpu/cpu_plain.jsonl; run prepare again to carry it"
}

build() {
  say "machine"
  nvidia-smi -L && nvcc --version | tail -2 && python3 --version && nproc
  (cd .gpu/a && sha256sum -c SHA256SUMS)
  mkdir -p "$W" && cp .gpu/a/smollm2.part0 "$W/"
  tar xJf .gpu/a/llama-src.tar.xz -C "$W"
  local extra="" inc dir
  inc=$(dirname "$(command -v nvcc)")/../include
  if [ ! -f "$inc/cublas_v2.h" ]; then  # a toolkit without cuBLAS: use the pip package PyTorch runs on
    dir=$(python3 -c "import site; print(' '.join(site.getsitepackages()))" | xargs -n1 -I{} find {}/nvidia \
          -name cublas_v2.h 2>/dev/null | head -1 | xargs -r dirname | xargs -r dirname)
    [ -n "$dir" ] || { echo "no cuBLAS headers in the toolkit or in pip's nvidia packages" >&2; exit 4; }
    echo "cuBLAS from $dir"
    extra="-DCUDA_cublas_LIBRARY=$(ls "$dir"/lib/libcublas.so* | head -1)"
    extra+=" -DCUDA_cublasLt_LIBRARY=$(ls "$dir"/lib/libcublasLt.so* | head -1)"
    extra+=" -DCMAKE_CUDA_FLAGS=-I$dir/include -DCMAKE_CXX_FLAGS=-I$dir/include"
    echo "$dir/lib" >"$W/ld_path"
  fi
  local args start
  # no multimodal library (reason never loads it); GPU_CHECK_FA=OFF skips the FlashAttention kernels, most of
  # the compile, should a build not fit one 10-minute call
  args="$(REASON_LLAMA_BACKEND=cuda REASON_CUDA_ARCHITECTURES=90 bash scripts/llama_cmake_args.sh) -DLLAVA_BUILD=OFF"
  args+=" -DGGML_CUDA_FA=${GPU_CHECK_FA:-ON}"
  say "building with CMAKE_ARGS=$args $extra"
  start=$(date +%s)
  CMAKE_ARGS="$args $extra" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) python3 -m pip wheel -q --no-deps \
    --no-build-isolation --no-index -w "$W/wheel" "$W/llama_cpp_python-$LLAMA_VERSION"
  echo "build seconds: $(($(date +%s) - start))"
  python3 -m pip install -q --no-deps --no-index --upgrade --target "$W/site" "$W"/wheel/llama_cpp_python-*.whl
  ls -la "$W"/wheel
  LD_LIBRARY_PATH="$(cat "$W/ld_path" 2>/dev/null || true):${LD_LIBRARY_PATH:-}" PYTHONPATH="$W/site" python3 -c \
    "import llama_cpp; print('gpu offload:', llama_cpp.llama_supports_gpu_offload())"
  echo "BUILD OK: now call 2, within 30 s: bash benchmarks/gpu_check.sh bench (carry .gpu/b)"
}

rate() {  # generated tokens per second of a bench run: its rows' completion tokens over its wall time
  python3 - "$1/results.jsonl" "$2" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
tokens = sum(r["completion_tokens"] for r in rows)
right = sum(bool(r["correct"]) for r in rows)
print(f"{len(rows)} problems, {right} right, {tokens} generated tokens in {sys.argv[2]} s: "
      f"{tokens / float(sys.argv[2]):.0f} tok/s")
EOF
}

bench() {
  [ -d "$W/site/llama_cpp" ] || { echo "no CUDA build in $W: the machine went cold after call 1; run build again" >&2; exit 3; }
  mkdir -p "$OUT" "$W/cache/models"
  cat "$W/smollm2.part0" .gpu/b/smollm2.part1 >"$W/cache/models/$MODEL"
  (cd .gpu/b && grep " smollm2.part1\$" SHA256SUMS | sha256sum -c)
  (cd "$W/cache/models" && grep " $MODEL\$" "$REPO/.gpu/b/SHA256SUMS" | sha256sum -c)
  python3 -m pip install -q --no-deps --no-index --upgrade --target "$W/site" .gpu/b/wheels/*.whl
  export PYTHONPATH="$W/site" REASON_CACHE_DIR="$W/cache" REASON_RUNS_DIR="$W/runs" HF_HUB_OFFLINE=1
  export LD_LIBRARY_PATH="$(cat "$W/ld_path" 2>/dev/null || true):${LD_LIBRARY_PATH:-}" PYTHONUNBUFFERED=1
  python3 -m pip wheel -q --no-deps --no-build-isolation --no-index -w "$W/reason" . >/dev/null
  python3 -m pip install -q --no-deps --no-index --upgrade --target "$W/site" "$W"/reason/reason-*.whl
  local reason=(python3 -m orchestrator.cli) start
  say "devices"
  "${reason[@]}" models | grep -m1 "runs on"
  say "throughput (CPU figures, 2 cores, docs/results.md: 67.5 tok/s one call; 101.25 tok/s at 8 slots)"
  python3 benchmarks/local_model.py throughput --model smollm2-135m --runs 3 | tee "$OUT/local_model.txt"
  python3 benchmarks/local_model.py slots --model smollm2-135m --samples 32 --runs 1 | tee -a "$OUT/local_model.txt"
  for strategy in plain vote; do
    say "reason bench $strategy, 50 GSM8K problems, 32 slots, GPU"
    start=$(date +%s)
    "${reason[@]}" bench "${BENCH[@]}" -s "$strategy" -o "$W/bench-$strategy" >"$OUT/bench-$strategy.log" 2>&1 \
      || { tail -20 "$OUT/bench-$strategy.log"; exit 1; }
    rate "$W/bench-$strategy" $(($(date +%s) - start)) | tee -a "$OUT/summary.txt"
    cp "$W/bench-$strategy/results.jsonl" "$OUT/$strategy-gpu.jsonl"
  done
  local ref=.gpu/b/cpu_plain.jsonl
  if [ ! -f "$ref" ]; then
    say "no CPU reference carried: plain on this CUDA build with the GPU hidden (CPU, $(nproc) threads)"
    start=$(date +%s)
    CUDA_VISIBLE_DEVICES="" REASON_LOCAL_GPU_LAYERS=0 "${reason[@]}" bench "${BENCH[@]}" -s plain \
      -o "$W/bench-cpu" >"$OUT/bench-cpu.log" 2>&1 || { tail -20 "$OUT/bench-cpu.log"; exit 1; }
    rate "$W/bench-cpu" $(($(date +%s) - start)) | tee -a "$OUT/summary.txt"
    ref="$W/bench-cpu/results.jsonl" && cp "$ref" "$OUT/plain-cpu.jsonl"
  fi
  say "greedy plain answers, GPU against CPU"
  python3 - "$OUT/plain-gpu.jsonl" "$ref" <<'EOF' | tee -a "$OUT/summary.txt"
import json, sys
gpu, cpu = ({(r := json.loads(line))["problem_id"]: r["predicted"] for line in open(p)} for p in sys.argv[1:3])
same = [i for i in gpu if i in cpu and gpu[i] == cpu[i]]
print(f"the same answer on {len(same)} of {len(gpu.keys() & cpu.keys())} problems; differ: "
      + ", ".join(f"{i} ({cpu[i]} -> {gpu[i]})" for i in sorted(gpu.keys() & cpu.keys()) if gpu[i] != cpu[i]))
EOF
}

case "${1:-}" in
  prepare) prepare ;;
  cpu-ref) cpu_ref ;;
  build) build ;;
  bench) bench ;;
  *) echo "usage: bash benchmarks/gpu_check.sh prepare|cpu-ref|build|bench" >&2; exit 2 ;;
esac
