"""Offline: does the model's token confidence tell right samples from wrong ones, and does it make votes better?

Replays a pool recorded with per-sample confidence summaries (`research/stopping_pool.py record --batch`,
see `orchestrator.confidence`) in many random orders, as `stopping_replay` does, and compares over the first k
samples, for k = 1..N:

- `majority`: plain self-consistency (ties: the first seen);
- `weighted-<score>`: each vote weighted by the sample's score (DeepConf's confidence-weighted voting);
- `top-half-<score>`: only the ceil(k/2) most confident samples vote (DeepConf's filtering; the paper keeps
  the top 10% or 90% of hundreds of traces, which for k <= 16 leaves one sample or all of them, hence a half).

Scores: `mean_conf`, `min_window_conf`, `tail_conf` (DeepConf's average, lowest-group and tail confidences)
and `mean_prob` (the geometric-mean probability of the chosen tokens). A sample without a summary (a failed
call) has score 0: it still votes in `majority`, weighs nothing in the others.

It also reports how well each score separates right from wrong samples: the AUROC over all samples, and
within problems (over the pairs of a right and a wrong sample of the same problem, which is what a vote
needs: the question's difficulty moves every sample's confidence together).

`rescore_votes` does the same for a benchmark's live `vote` runs, from their trajectories: what
`vote:weight=SCORE` picks from the very samples the run drew (`research/vote_weights.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.answers import group, same_answer
from orchestrator.bench.stats import bootstrap_interval, mcnemar, wilson
from research.stopping_replay import orderings, prepare
from orchestrator.confidence import SCORES, combine
from orchestrator.strategies.stopping import Label, StopRule, majority, stop_point, weighted_majority


@dataclass
class Scored:
    """One problem of the pool: its samples' labels, whether each is right, and each one's scores."""

    id: str
    labels: list[Label]
    right: list[bool]
    scores: dict[str, list[float]]

    def correct(self, label: Label) -> bool:
        return label is not None and any(r for lab, r in zip(self.labels, self.right, strict=True) if lab == label)


def scored(records: Sequence[dict[str, Any]], kind: str = "math", samples: int | None = None) -> list[Scored]:
    """The pool's problems with labels grouped by meaning (`stopping_replay.prepare`) and each sample's
    scores (first `samples` only). Refuses a pool without confidence summaries."""
    missing = [r.get("id") for r in records if "confidence" not in r]
    if missing:
        raise ValueError(f"{missing[0]}: no confidence summaries (record the pool with --batch)")
    out = []
    for r, p in zip(records, prepare(records, kind), strict=True):
        n = len(p.labels) if samples is None else min(samples, len(p.labels))
        labels = p.labels[:n]
        summaries = r["confidence"][:n]
        scores = {name: [f(c) if c else 0.0 for c in summaries] for name, f in SCORES.items()}
        out.append(Scored(p.id, labels, [bool(lab and p.correct[lab]) for lab in labels], scores))
    return out


def top_half(labels: Sequence[Label], scores: Sequence[float]) -> Label:
    """Majority among the ceil(k/2) highest-scored samples (ties in score: the earlier sample)."""
    keep = -(-len(labels) // 2)
    best = sorted(range(len(labels)), key=lambda i: (-scores[i], i))[:keep]
    return majority([labels[i] for i in sorted(best)])


def methods() -> dict[str, Callable[[Scored, list[int]], Label]]:
    """Every voting method the replay compares, by name: a function of a problem and an ordering's prefix."""
    out: dict[str, Callable[[Scored, list[int]], Label]] = {
        "majority": lambda p, idx: majority([p.labels[i] for i in idx])}
    for name in SCORES:
        out[f"weighted-{name}"] = (lambda n: lambda p, idx: weighted_majority(
            [p.labels[i] for i in idx], [p.scores[n][i] for i in idx]))(name)
        out[f"top-half-{name}"] = (lambda n: lambda p, idx: top_half(
            [p.labels[i] for i in idx], [p.scores[n][i] for i in idx]))(name)
    return out


def auroc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    """P(a random positive scores above a random negative), ties half; None without both."""
    if not pos or not neg:
        return None
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def separation(problems: Sequence[Scored]) -> dict[str, dict[str, float | None]]:
    """Per score: AUROC of right vs wrong samples over the whole pool, and within problems (pairs of a right
    and a wrong sample of one problem), with the number of such pairs."""
    out: dict[str, dict[str, float | None]] = {}
    for name in SCORES:
        pos = [s for p in problems for s, r in zip(p.scores[name], p.right, strict=True) if r]
        neg = [s for p in problems for s, r in zip(p.scores[name], p.right, strict=True) if not r]
        wins = pairs = 0.0
        for p in problems:
            right = [s for s, r in zip(p.scores[name], p.right, strict=True) if r]
            wrong = [s for s, r in zip(p.scores[name], p.right, strict=True) if not r]
            wins += sum((a > b) + 0.5 * (a == b) for a in right for b in wrong)
            pairs += len(right) * len(wrong)
        out[name] = {"pooled_auroc": auroc(pos, neg), "within_auroc": wins / pairs if pairs else None,
                     "within_pairs": pairs}
    return out


def replay_confidence(problems: Sequence[Scored], count: int = 200, seed: int = 0) -> dict[str, Any]:
    """Accuracy of every method over the first k samples (k = 1..N, N the fewest samples of any problem),
    averaged over `count` orderings per problem; at k = N, each method minus majority with a bootstrap
    interval over problems."""
    n = min((len(p.labels) for p in problems), default=0)
    problems = [Scored(p.id, p.labels[:n], p.right[:n], {k: v[:n] for k, v in p.scores.items()}) for p in problems]
    orders = [orderings(p, count, seed) for p in problems]
    table: list[dict[str, Any]] = []
    per_problem: dict[str, list[float]] = {}
    for k in range(1, n + 1):
        row: dict[str, Any] = {"k": k}
        for name, method in methods().items():
            scores = [sum(p.correct(method(p, order[:k])) for order in per) / max(len(per), 1)
                      for p, per in zip(problems, orders, strict=True)]
            row[name] = sum(scores) / len(scores) if scores else 0.0
            if k == n:
                per_problem[name] = scores
        table.append(row)
    return {"problems": len(problems), "samples": n, "orderings": count, "seed": seed, "table": table,
            "versus_majority": versus_majority(per_problem, seed),
            "adaptive": adaptive_weighted(problems, orders, seed), "separation": separation(problems),
            "any_right": sum(any(p.right[:n]) for p in problems)}


def versus_majority(per_problem: dict[str, list[float]], seed: int) -> dict[str, dict[str, Any]]:
    """Each method's mean per-problem score minus majority's, with a bootstrap interval over problems."""
    base = per_problem.get("majority", [])
    return {name: {"diff": row_mean(diff), "ci": bootstrap_interval(diff, seed=seed)}
            for name, scores in per_problem.items() if name != "majority"
            for diff in [[a - b for a, b in zip(scores, base, strict=True)]]}


def adaptive_weighted(problems: Sequence[Scored], orders: Sequence[list[list[int]]], seed: int,
                      rule: StopRule | None = None) -> dict[str, Any]:
    """`vote` as it runs: samples stop by `rule` (the default Beta at 0.95, which counts votes), then the
    majority or a weighted vote over the samples drawn picks the answer. Accuracy per method, the mean
    samples, and each weighting minus majority with a bootstrap interval over problems."""
    rule = rule or StopRule("beta", confidence=0.95)
    names = ["majority", *(f"weighted-{name}" for name in SCORES)]
    per: dict[str, list[float]] = {m: [] for m in names}
    used: list[float] = []
    for p, pers in zip(problems, orders, strict=True):
        right = dict.fromkeys(names, 0.0)
        spent = 0
        for order in pers:
            labels = [p.labels[i] for i in order]
            k, _ = stop_point(labels, rule, [1.0] * len(labels))
            spent += k
            right["majority"] += p.correct(majority(labels[:k]))
            for name in SCORES:
                weights = [p.scores[name][i] for i in order[:k]]
                right[f"weighted-{name}"] += p.correct(weighted_majority(labels[:k], weights))
        count = max(len(pers), 1)
        for m in names:
            per[m].append(right[m] / count)
        used.append(spent / count)
    return {"rule": rule.to_dict(), "samples": row_mean(used),
            "accuracy": {m: row_mean(v) for m, v in per.items()}, "versus_majority": versus_majority(per, seed)}


def row_mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def confidence_markdown(report: dict[str, Any]) -> str:
    """The report as markdown: separation per score, accuracy by k, and each method against majority at N."""
    n = report["samples"]
    lines = [f"{report['problems']} problems x {n} samples, {report['orderings']} orderings "
             f"(a right answer among the {n}: {report['any_right']})", "",
             "| score | AUROC, all samples | AUROC, within problems | right/wrong pairs |", "|---|---|---|---|"]
    for name, s in report["separation"].items():
        fmt = [f"{v:.3f}" if v is not None else "-" for v in (s["pooled_auroc"], s["within_auroc"])]
        lines.append(f"| {name} | {fmt[0]} | {fmt[1]} | {s['within_pairs']:.0f} |")
    names = [key for key in report["table"][0] if key != "k"] if report["table"] else []
    lines += ["", "| k | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += ["| " + " | ".join([str(row["k"])] + [f"{row[m]:.3f}" for m in names]) + " |" for row in report["table"]]
    lines += ["", f"| at k = {n} | minus majority (95% bootstrap CI over problems) |", "|---|---|"]
    lines += [f"| {name} | {v['diff']:+.3f} ({v['ci'][0]:+.3f} to {v['ci'][1]:+.3f}) |"
              for name, v in report["versus_majority"].items()]
    a = report["adaptive"]
    lines += ["", f"`vote` as it runs (stopping by {a['rule']['rule']} at {a['rule']['confidence']}, "
              f"{a['samples']:.2f} samples of {n}):", "",
              "| votes | accuracy | minus majority (95% bootstrap CI over problems) |", "|---|---|---|"]
    for m, acc in a["accuracy"].items():
        v = a["versus_majority"].get(m)
        diff = f"{v['diff']:+.3f} ({v['ci'][0]:+.3f} to {v['ci'][1]:+.3f})" if v else ""
        lines.append(f"| {m} | {acc:.3f} | {diff} |")
    return "\n".join(lines)


# --- live votes, weighed again ---------------------------------------------------------------------------
def vote_samples(folder: str | Path) -> list[dict[str, Any]]:
    """A `vote` problem's samples (its trajectory folder), in the order they finished: each one's normalized
    answer and its calls' combined token statistics (None where a call has none)."""
    out = []
    for path in sorted(Path(folder).glob("sample-*.jsonl")):
        end: dict[str, Any] = {}
        summaries: list[dict[str, float] | None] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.strip() else {}
            if record.get("type") == "step":
                summaries += [c.get("confidence") for c in record.get("calls") or []]
            elif record.get("type") == "end":
                end = record
        if end:  # a sample cut off before its end record did not vote
            out.append({"finished": end.get("finished", 0.0), "normalized": end.get("normalized"),
                        "confidence": combine(summaries)})
    return sorted(out, key=lambda s: s["finished"])


def rescore_votes(rows: Sequence[dict[str, Any]], with_statistics: bool = False) -> dict[str, Any]:
    """What each weighting would have picked from a benchmark's live `vote` samples (weighting never changes
    which samples run, so this is the weighted vote's answer on those samples), against the recomputed
    plain majority: accuracy, and problems gained and lost. `agrees`: problems where the recomputed majority
    scores as the row did (a check on the recomputation). Problems whose samples lack statistics are
    counted in `unweighted` and keep the majority, as the live vote would; with `with_statistics`, they are
    left out."""
    methods = ["majority", *(f"weighted-{name}" for name in SCORES)]
    right: dict[str, list[bool]] = {m: [] for m in methods}
    weighed: list[Scored] = []  # the problems with statistics, for how well each score separates
    agrees = unweighted = n = 0
    for row in rows:
        kind = row.get("kind") or "math"
        samples = vote_samples(row["trajectory"])
        have = all(s["confidence"] for s in samples) and bool(samples)
        if with_statistics and not have:
            continue
        n += 1
        unweighted += not have
        seen: list[str] = []
        labels = [group(s["normalized"], seen, kind) for s in samples]
        win = {"majority": majority(labels)}
        scores = {name: [f(s["confidence"]) for s in samples] if have else [] for name, f in SCORES.items()}
        for name in SCORES:
            win[f"weighted-{name}"] = weighted_majority(labels, scores[name]) if have else win["majority"]
        if have:
            good = [bool(lab and same_answer(lab, str(row["gold"]), kind)) for lab in labels]
            weighed.append(Scored(row["problem_id"], labels, good, scores))
        for m in methods:
            right[m].append(bool(win[m] and same_answer(win[m], str(row["gold"]), kind)))
        agrees += right["majority"][-1] == bool(row["correct"])
    base = right["majority"]
    report: dict[str, Any] = {"problems": n, "agrees": agrees, "unweighted": unweighted, "methods": {},
                              "separation": separation(weighed)}
    for m in methods:
        gained = sum(a and not b for a, b in zip(right[m], base, strict=True))
        lost = sum(b and not a for a, b in zip(right[m], base, strict=True))
        report["methods"][m] = {"correct": sum(right[m]), "accuracy": sum(right[m]) / n if n else 0.0,
                                "ci": wilson(sum(right[m]), n), "gained": gained, "lost": lost,
                                "p": mcnemar(gained, lost)}
    return report


def rescore_markdown(report: dict[str, Any], arm: str) -> str:
    """The re-weighed votes as a markdown table."""
    lines = [f"{arm}: {report['problems']} problems (recomputed majority scores as recorded on "
             f"{report['agrees']}; samples without token statistics on {report['unweighted']})", "",
             "| votes | accuracy (95% Wilson CI) | vs majority: gained | lost | McNemar p |", "|---|---|---|---|---|"]
    for m, r in report["methods"].items():
        lines.append(f"| {m} | {r['accuracy']:.1%} ({r['ci'][0]:.1%}–{r['ci'][1]:.1%}) | {r['gained']} | "
                     f"{r['lost']} | {r['p']:.2f} |")
    lines += ["", "| score | AUROC, right vs wrong samples, all | within problems | right/wrong pairs |",
              "|---|---|---|---|"]
    for name, v in report["separation"].items():
        fmt = [f"{x:.3f}" if x is not None else "-" for x in (v["pooled_auroc"], v["within_auroc"])]
        lines.append(f"| {name} | {fmt[0]} | {fmt[1]} | {v['within_pairs']:.0f} |")
    return "\n".join(lines)
