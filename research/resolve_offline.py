"""What `verify_by=resolve` would score, replayed offline from recorded data (no model calls).

    python -m research.resolve_offline --results research/results/gsm8k-chain/results.jsonl \
        --arm "local/qwen2.5-coder-1.5b|chain|" --pool research/pools/stopping_pool.jsonl --orderings 200

For each problem both files have, the chain's recorded answer meets k re-solves drawn from the pool's plain
samples of the same problem (T = 0.7, in random orders, seeded per problem). As `_verify_by_resolving` does,
the answers are grouped by meaning; the chain's answer stands when no other answer has more votes (it is
kept on a tie: it carries the reflection's reward), else the most-voted answer wins. This leaves out the
second attempt that a refuted answer gets live (a new chain with the lesson), so it estimates the first
attempt alone. Prints accuracy (95% Wilson interval over problems, each problem's score averaged over the
orderings), the share of problems whose answer the re-solves changed, and the mean extra tokens, for
k = 0 (the chain alone) to N.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from orchestrator.answers import group, same_answer
from orchestrator.bench.stats import wilson
from research.stopping_replay import sample_count


def decide(chain: str | None, resolves: list[str | None], kind: str = "math") -> str | None:
    """The answer after a resolve check: the chain's unless another answer has more votes."""
    seen: list[str] = []
    votes = Counter(label for a in [chain, *resolves] if (label := group(a, seen, kind)) is not None)
    if not votes:
        return None
    mine = votes[group(chain, seen, kind)] if chain else 0
    best, most = max(votes.items(), key=lambda kv: kv[1])
    return chain if chain is not None and mine >= most else best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--arm", required=True)
    ap.add_argument("--pool", required=True)
    ap.add_argument("--orderings", type=int, default=200)
    ap.add_argument("--samples", type=sample_count, default=None, help="use each problem's first N pool samples only")
    args = ap.parse_args()
    rows = {r["problem_id"]: r for r in map(json.loads, Path(args.results).read_text().splitlines())
            if r["arm"] == args.arm}
    pool = {r["id"]: r for r in map(json.loads, Path(args.pool).read_text().splitlines())}
    if args.samples is not None:
        pool = {i: {**r, "answers": r["answers"][:args.samples], "tokens": r["tokens"][:args.samples]}
                for i, r in pool.items()}
    ids = [i for i in pool if i in rows]
    n_samples = min(len(pool[i]["answers"]) for i in ids)
    print(f"{len(ids)} problems in both; {n_samples} pool samples each; {args.orderings} orderings")
    print("| re-solves k | accuracy (95% CI) | answer changed | extra tokens |")
    print("|---|---|---|---|")
    for k in range(n_samples + 1):
        scores, refuted, extra = [], [], []
        for pid in ids:
            row, rec = rows[pid], pool[pid]
            rng = random.Random(f"{pid}:{k}")
            right = flips = 0.0
            for _ in range(args.orderings if k else 1):
                order = rng.sample(range(len(rec["answers"])), k)
                answer = decide(row.get("normalized"), [rec["answers"][j] for j in order])
                right += answer is not None and same_answer(answer, rec["gold"], "math")
                flips += answer != row.get("normalized")
                extra.append(sum(rec["tokens"][j] for j in order))
            runs = args.orderings if k else 1
            scores.append(right / runs)
            refuted.append(flips / runs)
        acc = sum(scores) / len(scores)
        lo, hi = wilson(round(sum(scores)), len(scores))
        print(f"| {k} | {100 * acc:.1f}% ({100 * lo:.1f}–{100 * hi:.1f}) | {100 * sum(refuted) / len(refuted):.0f}% "
              f"| {sum(extra) / len(extra):.0f} |")


if __name__ == "__main__":
    main()
