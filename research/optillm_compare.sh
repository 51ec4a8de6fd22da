#!/usr/bin/env bash
# optillm (a peer) on the same local model and the same pinned GSM8K sample, for comparison.
#
#   OPTILLM_VENV=/tmp/optvenv bash research/optillm_compare.sh cot_reflection 50 0 research/results/gsm8k-chain
#
# Needs optillm==0.4.0 installed in its own virtualenv (it pulls torch and transformers; we never import it):
#   python3 -m venv /tmp/optvenv && /tmp/optvenv/bin/pip install optillm==0.4.0 torch==2.13.0
# The embedded model is served by `benchmarks/model_server.py` on 127.0.0.1:8080 (messages passed to the model
# as they come; 8 slots, so the concurrent requests of the 8 problems in flight are decoded together, as a
# llama.cpp server with parallel slots would), optillm proxies it on 127.0.0.1:8000, and `eval_arms.py` sends
# each question as the only message (strategy plain). optillm reports only completion tokens, so the server
# logs every call's usage to OUT/optillm-APPROACH-usage.jsonl and the total is printed at the end (prompt +
# completion tokens of every call optillm made, per problem; a resumed run's log also holds the calls of the
# problems cut off before, so start a fresh OUT for exact totals).
set -euo pipefail
cd "$(dirname "$0")/.."
approach=${1:-cot_reflection}; limit=${2:-50}; seed=${3:-0}; out=${4:-research/results/gsm8k-chain}
venv=${OPTILLM_VENV:-/tmp/optvenv}
usage="$out/optillm-$approach-usage.jsonl"
mkdir -p "$out"
OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/model_server.py --model local/qwen2.5-coder-1.5b \
  --slots "${SLOTS:-8}" --port 8080 --usage-log "$usage" >/tmp/model_server.log 2>&1 &
llama_pid=$!
OPENAI_API_KEY=none "$venv/bin/optillm" --base-url http://127.0.0.1:8080/v1 --approach "$approach" \
  --host 127.0.0.1 --port 8000 >/tmp/optillm.log 2>&1 &
optillm_pid=$!
trap 'kill $llama_pid $optillm_pid 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -sf http://127.0.0.1:8080/v1/models >/dev/null && curl -s http://127.0.0.1:8000/ >/dev/null && break
  sleep 1
done
# One moa request is several model calls queued behind 7 other problems' calls: a one-day client timeout (a
# request cut off at the default 600 s would be sent again while optillm still computes the first).
OPENAI_API_KEY=none REASON_HTTP_TIMEOUT=86400 .venv/bin/python -m research.eval_arms --dataset gsm8k --limit "$limit" --seed "$seed" \
  --arm "http://127.0.0.1:8000/v1#qwen|plain|optillm-$approach" --out "$out"
.venv/bin/python - "$usage" "$limit" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
p, c = sum(r["prompt_tokens"] for r in rows), sum(r["completion_tokens"] for r in rows)
print(f"backend usage: {len(rows)} calls, {p} prompt + {c} completion tokens; {(p + c) / int(sys.argv[2]):.0f} a "
      f"problem if this log holds the calls of all {sys.argv[2]} (a run that extended an arm holds only the new ones)")
PY
