"""The failure-modes suite: o1's known failure modes as a pinned, offline benchmark made with reasoning-gym.

Six families of reasoning-gym generators (Stojanovski et al. 2025, "Reasoning Gym"), 17 items each, one
seed: `letter_counting` (letters in a text, the "strawberry" family), `products` (multiplication),
`chain_sum` (sums and differences), `calendar_arithmetic` (weekdays and day counts), `number_format` (the
largest or smallest of numbers written in different formats: the "9.11 vs 9.8" family) and `gsm_symbolic`
(grade-school word problems with new numbers). A question that is a computation should cost about one short
program.

`python -m orchestrator.bench.failure_modes [OUT]` makes the file: it fetches reasoning-gym pinned by
version and the sha256 of its wheel (`pypi_data.download_wheels`), unpacks it, and runs its generators in
a subprocess, so its code never runs inside `reason`; its own dependencies must be installed (the `gym`
extra). The result ships as `orchestrator/bench/data/failure_modes.jsonl`, pinned by its sha256 in
`orchestrator.bench.datasets`, so `reason bench --dataset failure-modes` needs none of this.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from orchestrator.pypi_data import PinnedWheel, download_wheels

GYM = PinnedWheel("reasoning-gym", "0.1.25", "7f17a3eddb13c015d7d4a755ed576a061df889faf9468bcc2cca334ebe9e0435")
FAMILIES = ("letter_counting", "products", "chain_sum", "calendar_arithmetic", "number_format", "gsm_symbolic")
SIZE = 17
SEED = 20261203
DATA = Path(__file__).parent / "data" / "failure_modes.jsonl"

_GENERATE = """
import json, sys
import reasoning_gym
families, size, seed = json.loads(sys.argv[1])
for family in families:
    for i, item in enumerate(reasoning_gym.create_dataset(family, size=size, seed=seed)):
        print(json.dumps({"family": family, "index": i, "question": item["question"], "answer": str(item["answer"])}))
"""


def _kind(answer: str) -> str:
    try:
        float(answer.replace(",", ""))
    except ValueError:
        return "text"
    return "math"


def generate() -> str:
    """The suite as JSONL text, one {"id", "question", "answer", "kind", "family"} object a line."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_wheels([GYM], Path(tmp))[GYM.dist]
        with zipfile.ZipFile(wheel) as z:
            z.extractall(Path(tmp) / "src")
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src"), "PYTHONHASHSEED": "0"}
        out = subprocess.run([sys.executable, "-c", _GENERATE, json.dumps([FAMILIES, SIZE, SEED])],
                             capture_output=True, text=True, env=env, check=False, timeout=600)
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"reasoning-gym {GYM.version} failed to generate the suite: {tail[0]}")
    lines = []
    for line in out.stdout.splitlines():
        item = json.loads(line)
        lines.append(json.dumps({
            "id": f"failure-modes/{item['family']}/{item['index']}", "question": item["question"],
            "answer": item["answer"], "kind": _kind(item["answer"]), "family": item["family"],
        }, ensure_ascii=False))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA
    target.write_text(generate(), encoding="utf-8")
    print(f"wrote {target}")
