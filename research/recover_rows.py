"""Rebuild the results rows of an arm from its trajectories, for solves whose row never reached results.jsonl.

    python -m research.recover_rows research/results/gsm8k-chain \
        --arm "http://127.0.0.1:8000/v1#qwen|plain|optillm-self_consistency" \
        --since 20261124-032700 --until 20261124-041100 [--write]

A row can be lost while its trajectory is safe on disk (the trajectory is fsynced per step; results.jsonl
is written by the bench process, and a file replaced under a running process loses what that process
appends afterwards). For each trajectory in OUT/trajectories/ of the arm's model and strategy that no row
names, with an `end` record, this finds the problem by its question among the folder's problems (dataset,
limit and seed from OUT/run.json), scores the recorded answer with the bench's scorer and prints the row;
`--write` appends the rows to results.jsonl, marked `"recovered": true`. `--since`/`--until` keep to the
trajectories of one run (their names start with the time they began, YYYYMMDD-HHMMSS), so that another arm
of the same model and strategy running beside it is not taken for this one. Only strategies that write one
trajectory per solve (plain, chain) can be rebuilt; a solve still running when the bench process died has no
`end` record and stays unrecorded (a rerun solves it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from orchestrator.bench.arms import Arm
from orchestrator.bench.datasets import load_dataset
from orchestrator.bench.runner import problem_row, read_results
from orchestrator.bench.scorers import score
from orchestrator.trajectory import load_trajectory

ONE_TRAJECTORY = ("plain", "chain")


def recover(folder: Path, arm: str, since: str = "", until: str = "~") -> list[dict[str, Any]]:
    model, strategy, label = arm.split("|", 2)
    if strategy not in ONE_TRAJECTORY:
        raise SystemExit(f"{strategy!r} writes several trajectories per solve; only {ONE_TRAJECTORY} can be rebuilt")
    manifest = json.loads((folder / "run.json").read_text())
    problems = load_dataset(manifest["dataset"], limit=manifest["limit"], seed=manifest["seed"])
    by_question = {p.question: p for p in problems}
    rows = read_results(folder / "results.jsonl")
    named = {Path(r["trajectory"]).name for r in rows if r.get("trajectory")}
    done = {r["problem_id"] for r in rows if r["arm"] == arm}
    recovered: list[dict[str, Any]] = []
    for path in sorted((folder / "trajectories").glob("*.jsonl")):
        if path.name in named or not since <= path.name[:15] <= until:
            continue
        header, _, end = load_trajectory(path)
        if header.get("model") != model or header.get("strategy") != strategy or end is None:
            continue
        problem = by_question.get(header.get("question", ""))
        if problem is None or problem.id in done:
            continue
        usage, answer = end.get("usage") or {}, end.get("answer")
        recovered.append({
            **problem_row(Arm(model=model, strategy=strategy, label=label), problem, manifest["seed"]),
            "predicted": answer, "normalized": end.get("normalized"),
            "correct": bool(answer is not None and score(problem, answer)),
            "stop_reason": end.get("stop_reason"), "error": end.get("error"),
            "prompt_tokens": usage.get("prompt_tokens", 0), "completion_tokens": usage.get("completion_tokens", 0),
            "cached_tokens": usage.get("cached_tokens", 0), "calls": usage.get("calls", 0),
            "cost_usd": usage.get("cost_usd", 0.0), "seconds": end.get("seconds"),
            "samples_used": 1, "samples_allowed": 1, "trajectory": str(path), "recovered": True,
        })
        done.add(problem.id)
    return recovered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--arm", required=True, help="the arm key, MODEL|STRATEGY|LABEL")
    ap.add_argument("--since", default="", help="first trajectory time, YYYYMMDD-HHMMSS")
    ap.add_argument("--until", default="~", help="last trajectory time, YYYYMMDD-HHMMSS")
    ap.add_argument("--write", action="store_true", help="append the rows to results.jsonl")
    args = ap.parse_args()
    rows = recover(args.folder, args.arm, args.since, args.until)
    for row in rows:
        print(f"{row['problem_id']:<14} {'OK ' if row['correct'] else 'BAD'} pred={row['predicted']!s:<10} "
              f"gold={row['gold']:<8} {row['seconds']:.1f}s {row['prompt_tokens'] + row['completion_tokens']} tok "
              f"{row['stop_reason']}")
    print(f"{len(rows)} rows to recover for {args.arm}")
    if args.write and rows:
        with (args.folder / "results.jsonl").open("a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
                f.flush()


if __name__ == "__main__":
    main()
