"""How often a verification step was right: verdicts of the last check before each final answer, against
the answer's correctness, from a results folder's trajectories.

    python -m research.verdicts research/results/gsm8k-chain --arm "local/qwen2.5-coder-1.5b|chain|"

Prints, for the arm's problems, a table of (final answer right?, last verdict) counts, and every verdict of
every attempt (a first answer refuted, then a second one passed, shows as `False, True`). For an arm with
`verify_by=resolve`, also how many of the re-solves' answers (read from each verify step's tally) were right.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from orchestrator.answers import same_answer

TALLY = re.compile(r"(.+?) x(\d+)(?:, |$)")  # "solved again 4 times without the chain: 100 x1, 76 x2"


def resolve_answers(step: dict) -> list[tuple[str, int]]:
    """(answer, votes) of the re-solves a `verify_by=resolve` step counted ([] for other verify steps)."""
    text = step.get("text") or ""
    if not text.startswith("solved again"):
        return []
    return [(a, int(k)) for a, k in TALLY.findall(text.split(": ", 1)[1].split("; ")[0])]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--arm", required=True)
    args = ap.parse_args()
    rows = [json.loads(line) for line in (Path(args.folder) / "results.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["arm"] == args.arm]
    last: Counter[tuple[bool, object]] = Counter()
    every: Counter[tuple[bool, tuple]] = Counter()
    resolves = Counter()
    for r in rows:
        path = Path(r["trajectory"])
        if not path.is_file():
            path = Path(args.folder) / "trajectories" / path.name
        steps = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        verdicts = tuple(s.get("verdict") for s in steps if s.get("kind") == "verify")
        for step in (s for s in steps if s.get("kind") == "verify"):
            for answer, votes in resolve_answers(step):
                resolves["all"] += votes
                resolves["right"] += votes * same_answer(answer, r["gold"], r.get("kind", "math"))
        last[(r["correct"], verdicts[-1] if verdicts else "no check")] += 1
        every[(r["correct"], verdicts)] += 1
    print(f"{len(rows)} problems of {args.arm}")
    print("| final answer | last verdict | problems |\n|---|---|---|")
    for (right, verdict), n in sorted(last.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        print(f"| {'right' if right else 'wrong'} | {verdict} | {n} |")
    print("\n| final answer | verdicts, attempt by attempt | problems |\n|---|---|---|")
    for (right, verdicts), n in sorted(every.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        print(f"| {'right' if right else 'wrong'} | {', '.join(map(str, verdicts)) or '-'} | {n} |")
    if resolves["all"]:
        print(f"\nre-solve answers right: {resolves['right']} of {resolves['all']} "
              f"({resolves['right'] / resolves['all']:.1%})")


if __name__ == "__main__":
    main()
