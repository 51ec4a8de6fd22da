"""Export speed: `reason export` over a bench folder holding 10,000 recorded steps.

    python benchmarks/export_speed.py [--problems 200] [--samples 5] [--steps 10] [--repeats 3]

Writes a bench folder as `reason bench` would (results.jsonl with gold answers, run.json, one vote folder of
`sample-NNN.jsonl` per problem; every step with its call's rendered prompt, which grows along the chain as the
real one does), then times the export to each format and prints the seconds (median of the repeats). Setup
is not timed. Target: a few seconds for 10,000 steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from orchestrator.bench.runner import ResultsFile
from orchestrator.export import FORMATS, export
from orchestrator.trajectory import Call, Step, Trajectory

SYSTEM = "You are a careful problem solver. You reason in small, explicit steps and check your own work."


def chain(path: Path, question: str, sample: int, steps: int, answer: str) -> None:
    """One sample: `steps` think steps whose prompts carry the steps before them, then the end record."""
    header = {"question": question, "kind": "math", "model": "fake/scripted", "strategy": "vote",
              "config": {"seed": 0}, "sample": sample}
    trajectory = Trajectory(path, header)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    for i in range(steps):
        last = i == steps - 1
        text = f"Step {i + 1}: carry the {i}th partial sum forward and check it against the question." + (
            f"\nFinal answer: {answer}" if last else "")
        call = Call(list(messages), text, sum(len(m["content"].split()) for m in messages), len(text.split()),
                    0, 0.0, 0.01)
        trajectory.append(Step("think", text, answer=answer if last else None, normalized=answer if last else None,
                               calls=[call]))
        messages += [{"role": "assistant", "content": text}, {"role": "user", "content": "Continue."}]
    trajectory.close({"stop_reason": "answered", "answer": answer, "normalized": answer})


def make_bench(folder: Path, problems: int, samples: int, steps: int) -> int:
    """A bench folder of `problems` votes of `samples` chains of `steps` steps; the steps written."""
    results = ResultsFile(folder / "results.jsonl")
    for p in range(problems):
        question, gold = f"What is {p} plus {p + 1}, counted one at a time?", str(2 * p + 1)
        run = folder / "trajectories" / f"run-{p:05d}"
        for s in range(samples):
            chain(run / f"sample-{s:03d}.jsonl", question, s, steps, gold if s % 3 else str(2 * p + 2))
        results.append({"arm": "fake/scripted|vote|", "model": "fake/scripted", "strategy": "vote",
                        "problem_id": f"sums/{p}", "kind": "math", "gold": gold, "seed": 0, "predicted": gold,
                        "normalized": gold, "correct": True, "stop_reason": "limit", "trajectory": str(run)})
    results.close()
    (folder / "run.json").write_text(json.dumps({"dataset": "sums", "seed": 0}))
    return problems * samples * steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Path(tmp) / "bench"
        n = make_bench(bench, args.problems, args.samples, args.steps)
        size = sum(f.stat().st_size for f in bench.rglob("*.jsonl")) / 1e6
        print(f"{n} recorded steps in {args.problems * args.samples} trajectories ({size:.1f} MB)")
        for fmt in FORMATS:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                stats = export([bench], fmt, Path(tmp) / f"{fmt}.jsonl")
                times.append(time.perf_counter() - start)
            print(f"{fmt:>10}: {statistics.median(times):.2f} s median over {args.repeats} "
                  f"({', '.join(f'{t:.2f}' for t in times)}); {stats.examples} examples")


if __name__ == "__main__":
    main()
