"""One question answered by the shipped default over many seeds, one model load: the answer, whether it is
verified, the evidence and the tokens of each run, and a one-line tally.

    python research/seed_runs.py "What is 17 * 23?" --seeds 20 --gold 391
    python research/seed_runs.py "A farmer has 17 sheep; all but 9 run away. How many are left?" --seeds 10 --gold 9

Issue #21 asks for these two: 17 * 23 right on 20 of 20 seeds, and what the README's trick question gets over
10 seeds. Each run is the default `Reasoner()` (strategy, tools, model) with `ReasonConfig(seed=s)`; trajectories
go to the runs directory as any run's do. `--out FILE` appends one JSON row a run (resumable: seeds already in
FILE are skipped).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    parser.add_argument("--gold", help="the right answer, compared as the question's kind compares answers")
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, help="a JSONL file of rows, appended to and resumed from")
    args = parser.parse_args(argv)

    from orchestrator import Reasoner
    from orchestrator.answers import guess_kind, same_answer
    from orchestrator.config import ReasonConfig
    from orchestrator.models import DEFAULT_MODEL, get_model

    model = get_model(args.model or DEFAULT_MODEL)  # loaded once, shared by every seed's Reasoner
    done: dict[int, dict] = {}
    if args.out and args.out.exists():
        for line in args.out.read_text().splitlines():
            row = json.loads(line)
            if row["question"] == args.question:
                done[row["seed"]] = row
    kind = guess_kind(args.question)
    rows = []
    for seed in range(args.seeds):
        if seed in done:
            rows.append(done[seed])
            continue
        result = Reasoner(model, config=ReasonConfig(seed=seed)).solve(args.question)
        row = {"question": args.question, "seed": seed, "strategy": result.strategy, "answer": result.answer,
               "verified": result.verified, "evidence": result.evidence, "stop_reason": result.stop_reason,
               "tokens": result.usage.prompt_tokens + result.usage.completion_tokens, "calls": result.usage.calls,
               "correct": None if args.gold is None or result.answer is None
               else same_answer(result.answer, args.gold, kind),
               "trajectory": result.trajectory_path}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
    answers: dict[str, int] = {}
    for row in rows:
        answers[str(row["answer"])] = answers.get(str(row["answer"]), 0) + 1
    right = sum(1 for r in rows if r["correct"])
    verified = sum(1 for r in rows if r["verified"])
    wrong_verified = sum(1 for r in rows if r["verified"] and r["correct"] is False)
    tokens = sum(r["tokens"] for r in rows) / max(len(rows), 1)
    print(f"{args.question!r}: {len(rows)} seeds; answers {answers}; right {right}/{len(rows)}"
          f" (gold {args.gold}); verified {verified}, of them wrong {wrong_verified}; {tokens:.0f} tokens a run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
