"""Run model x strategy arms on a pinned benchmark sample and print the summary table.

    python -m research.eval_arms --dataset gsm8k --limit 50 --seed 0 \
        --arm local/qwen2.5-coder-1.5b:plain --arm local/qwen2.5-coder-1.5b:chain --out research/results/x

An arm is MODEL:STRATEGY[:key=value,...] where keys are ReasonConfig fields (e.g. tools=true) or strategy
options (e.g. samples=16), as in `reason bench -s STRATEGY:KEY=VALUE,...`. Results are
appended to OUT/results.jsonl (resumable); `--local-slots N` solves N problems of a local model at once
(continuous batching); the summary goes to OUT/summary.json and OUT/summary.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from orchestrator.bench.arms import parse_strategy, write_manifest
from orchestrator.bench.datasets import load_dataset
from orchestrator.bench.runner import Arm, read_results, run_bench
from orchestrator.bench.stats import markdown_table, summarize
from orchestrator.config import ReasonConfig
from orchestrator.ledger import Budget


def parse_arm(spec: str) -> Arm:
    if spec.startswith("http"):  # URL#model|strategy[|options]: a URL has colons of its own
        parts = spec.split("|")
    else:
        parts = spec.split(":")
    model, strategy = parts[0], parts[1]
    label = parts[2] if len(parts) > 2 else ""
    overrides, options, budget = {}, {}, {}
    if "=" in label:  # KEY=VALUE,...: read as `reason bench -s STRATEGY:KEY=VALUE,...` reads it
        knobs = parse_strategy(f"{strategy}:{label}")[1]
        overrides, options, budget = knobs.config, knobs.options, knobs.budget
    return Arm(model=model, strategy=strategy, budget=Budget(**budget), label=label,
               config=ReasonConfig(**overrides), strategy_options=options)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="gsm8k")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arm", action="append", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--local-slots", type=int, default=1,
                    help="problems a local model solves at once, decoded together (see docs/bench.md)")
    args = ap.parse_args()
    problems = load_dataset(args.dataset, limit=args.limit, seed=args.seed)
    out = Path(args.out)
    arms = [parse_arm(a) for a in args.arm]
    write_manifest(out, args.dataset, args.seed, args.limit, arms, [p.id for p in problems],
                   command=" ".join(["python -m research.eval_arms", *sys.argv[1:]]))

    def show(row):
        print(f"{row['arm']:<50} {row['problem_id']:<14} {'OK ' if row['correct'] else 'BAD'} "
              f"pred={row.get('predicted')!s:<10} gold={row['gold']:<8} {row['seconds']:.1f}s "
              f"{row.get('prompt_tokens', 0) + row.get('completion_tokens', 0)} tok {row['stop_reason']}",
              flush=True)

    path = run_bench(problems, arms, out, seed=args.seed, on_row=show, local_slots=args.local_slots)
    keys = {a.key for a in arms}
    ids = {p.id for p in problems}
    rows = [r for r in read_results(path) if r["arm"] in keys and r["problem_id"] in ids]
    summary = summarize(rows)
    (out / "summary.json").write_text(json.dumps(
        {"dataset": args.dataset, "limit": args.limit, "seed": args.seed, "arms": summary}, indent=2))
    table = markdown_table(summary)
    (out / "summary.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
