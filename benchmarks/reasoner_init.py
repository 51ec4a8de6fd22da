"""How long a `Reasoner` takes to make, and its first solve, in a fresh process (the sandbox probe's cost).

    .venv/bin/python benchmarks/reasoner_init.py [--runs 7] [--tools on|off|auto]

Each run is a new interpreter (the sandbox is probed once per process): after the imports, it times
`Reasoner(ScriptedModel(...), "plain", tools=...)` and then its first `solve` against the instant scripted
model, and prints the medians. With `--tools auto` (the default: on where the sandbox starts) the probe
runs when the first solve needs to know, not when the `Reasoner` is made.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = """
import json, sys, time
from orchestrator import Reasoner, ScriptedModel
tools = {"on": True, "off": False, "auto": None}[sys.argv[1]]
start = time.perf_counter()
reasoner = Reasoner(ScriptedModel(["Final answer: 4"]), "plain", tools=tools, save_trajectory=False)
made = time.perf_counter()
reasoner.solve("What is 2 + 2?")
print(json.dumps({"init": made - start, "first_solve": time.perf_counter() - made}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tools", choices=("on", "off", "auto"), default="auto")
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", CHILD, args.tools], check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for key in ("init", "first_solve"):
        times = sorted(r[key] * 1000 for r in runs)
        print(f"{key:12s} median {statistics.median(times):7.1f} ms  (min {times[0]:.1f}, max {times[-1]:.1f})")


if __name__ == "__main__":
    main()
