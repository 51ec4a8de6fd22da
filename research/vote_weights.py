"""What confidence-weighted voting picks from a benchmark's live `vote` samples.

    python -m research.vote_weights research/results/gsm8k-chain \
        --arm "local/qwen2.5-coder-1.5b|vote|temperature=0.4" --with-statistics

For every problem of the arm, reads its samples' trajectories (each call's token statistics, recorded by
the local model since they were added), and recomputes the plain majority and each `vote:weight=SCORE`
winner (`research.confidence_replay.rescore_votes`). Weighting changes only which answer wins,
never which samples run, so this is the weighted vote's result on the same samples. Problems whose samples
have no statistics (runs from before) keep the majority and are counted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from research.confidence_replay import rescore_markdown, rescore_votes
from orchestrator.bench.stats import latest


def trajectory(row: dict, folder: Path) -> Path:
    """The row's trajectory folder, or the one of that name under `folder/trajectories` (rows name the path
    they were recorded at, e.g. benchmarks/results/...; an unpacked research archive holds them here)."""
    path = Path(row["trajectory"])
    return path if path.exists() else folder / "trajectories" / path.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="a `reason bench` output folder")
    ap.add_argument("--arm", required=True, help="model|strategy|label of a vote arm")
    ap.add_argument("--problems", default="", help="only these problem ids (comma-separated)")
    ap.add_argument("--with-statistics", action="store_true",
                    help="only the problems whose samples all carry token statistics")
    args = ap.parse_args()
    path = Path(args.folder) / "results.jsonl"
    if not path.exists():
        raise SystemExit(f"no results.jsonl in {args.folder}")
    rows = [r for r in latest([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                               if line.strip()]) if r.get("arm") == args.arm and not r.get("error")]
    if args.problems:
        wanted = set(args.problems.split(","))
        rows = [r for r in rows if r["problem_id"] in wanted]
    if not rows:
        raise SystemExit(f"no rows of arm {args.arm!r} in {path}")
    rows = [{**r, "trajectory": str(trajectory(r, Path(args.folder)))} for r in rows]
    report = rescore_votes(rows, with_statistics=args.with_statistics)
    if not report["problems"]:
        raise SystemExit(f"no problem of arm {args.arm!r} has token statistics in all its samples")
    print(rescore_markdown(report, args.arm))


if __name__ == "__main__":
    main()
