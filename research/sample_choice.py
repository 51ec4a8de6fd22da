"""How well a sampling arm chose among its own samples, and how far it went over its budget, from a
results folder's rows and trajectories.

    python -m research.sample_choice research/results/gsm8k-chain \
        --arm "local/qwen2.5-coder-1.5b|best-of-n|tokens=4000" --budget-tokens 4000

For an arm whose solves sample several chains (`best-of-n`, `vote`, `auto`: a folder of `sample-NNN.jsonl`
per problem), prints how many samples were right, on how many problems the samples agreed, and, where they
disagreed and one of them was right, how often the arm's answer was a right one: the headroom of choosing
and what the arm's choice made of it. With `--budget-tokens`, the problems that ended over the budget and
each overrun as a share of the problem's largest single call (the budget promises at most one call over).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.answers import same_answer
from orchestrator.bench.report import load_rows
from orchestrator.errors import ConfigError
from orchestrator.trajectory import load_trajectory


def trajectory_files(row: dict[str, Any], folder: Path) -> list[Path]:
    """The trajectory files of one row: the row's file, or the `sample-*.jsonl` of its folder (looked up
    under `folder/trajectories` when the recorded path is not there)."""
    path = Path(row["trajectory"])
    if not path.exists():
        path = folder / "trajectories" / path.name
    return sorted(path.glob("sample-*.jsonl")) if path.is_dir() else [path]


def read_sample(path: Path) -> dict[str, Any]:
    """One sample's answer kind, final answer (normalized; None when it gave none), stop reason and largest
    call."""
    header, steps, end = load_trajectory(path)
    end = end or {}
    largest = max((c.prompt_tokens + c.completion_tokens for s in steps for c in s.calls), default=0)
    return {"kind": header.get("kind"), "answer": end.get("normalized"), "stop_reason": end.get("stop_reason"),
            "largest_call": largest}


def report(rows: Sequence[dict[str, Any]], folder: Path, budget_tokens: int | None = None) -> dict[str, Any]:
    """Counts over the rows of one arm (see the module's docstring)."""
    out: dict[str, Any] = {"problems": len(rows), "samples": 0, "samples_right": 0, "agreed": 0,
                           "agreed_right": 0, "disagreed": 0, "disagreed_one_right": 0, "chosen_right": 0,
                           "over_budget": []}
    for row in rows:
        samples = [read_sample(p) for p in trajectory_files(row, folder)]
        kind = row.get("kind") or next((s["kind"] for s in samples if s["kind"]), "math")
        right = [s["answer"] is not None and same_answer(s["answer"], row["gold"], kind) for s in samples]
        out["samples"] += len(samples)
        out["samples_right"] += sum(right)
        answers = [s["answer"] for s in samples]
        agreed = all(a is not None and same_answer(a, answers[0], kind) for a in answers)
        if agreed:
            out["agreed"] += 1
            out["agreed_right"] += bool(row["correct"])
        else:
            out["disagreed"] += 1
            if any(right):
                out["disagreed_one_right"] += 1
                out["chosen_right"] += bool(row["correct"])
        total = row["prompt_tokens"] + row["completion_tokens"]
        if budget_tokens is not None and total > budget_tokens:
            largest = max((s["largest_call"] for s in samples), default=0)
            share = (total - budget_tokens) / largest if largest else float("inf")
            out["over_budget"].append({"problem": row["problem_id"], "over": total - budget_tokens,
                                       "of_largest_call": round(share, 2)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--arm", required=True, help="the arm's key, as in results.jsonl")
    ap.add_argument("--budget-tokens", type=int, default=None)
    args = ap.parse_args()
    folder = Path(args.folder)
    try:
        rows = [r for r in load_rows(folder) if r["arm"] == args.arm]
    except ConfigError as e:
        raise SystemExit(str(e)) from None
    if not rows:
        raise SystemExit(f"no rows for arm {args.arm!r} in {folder / 'results.jsonl'}")
    r = report(rows, folder, args.budget_tokens)
    print(f"{r['problems']} problems of {args.arm}")
    print(f"samples: {r['samples']} ({r['samples'] / r['problems']:.2f} a problem), right {r['samples_right']}")
    print(f"samples agreed: {r['agreed']} problems ({r['agreed_right']} right)")
    print(f"samples disagreed: {r['disagreed']} problems; one or more right on {r['disagreed_one_right']}, "
          f"of which the arm chose a right one on {r['chosen_right']}")
    if args.budget_tokens is not None:
        over = r["over_budget"]
        shares = sorted(o["of_largest_call"] for o in over)
        spans = f"by {min(o['over'] for o in over)} to {max(o['over'] for o in over)}" if over else ""
        print(f"over {args.budget_tokens} tokens: {len(over)} problems {spans}; overrun / largest call: {shares}")


if __name__ == "__main__":
    main()
