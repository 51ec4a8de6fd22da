"""Offline evaluation of stopping rules: replay them on a recorded pool of samples in many random orders.

A pool (`research/pools/stopping_pool.jsonl`, written by `research/stopping_pool.py record`) holds, per
problem, the gold answer and N independently sampled answers with their token counts. For each problem we
draw random orderings of its samples (seeded per problem) and ask: what does majority voting over the first
k samples score, for k = 1..N, and what does an adaptive rule score, and after how many samples does it stop?
An adaptive rule "pays off" when it is within `tolerance` (1 point) of fixed-k accuracy at k = N while using
at most half the samples (the Adaptive-Consistency and ESC papers report savings of that order on GSM8K).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.answers import same_answer
from orchestrator.bench.stats import bootstrap_interval
from orchestrator.strategies.stopping import Label, StopRule, majority, stop_point

FIELDS = {"id": str, "gold": str, "answers": list, "tokens": list}


@dataclass
class PoolProblem:
    """One problem of a pool: answers grouped by meaning (labels) and which labels are right."""

    id: str
    gold: str
    labels: list[Label]
    tokens: list[int]
    correct: dict[str, bool] = field(default_factory=dict)


def check_record(record: dict[str, Any]) -> list[str]:
    """What is wrong with one pool line (empty when it is well formed)."""
    problems = [f"{name} should be a {kind.__name__}" for name, kind in FIELDS.items()
                if not isinstance(record.get(name), kind)]
    if problems:
        return problems
    answers, tokens = record["answers"], record["tokens"]
    if len(answers) != len(tokens):
        problems.append(f"{len(answers)} answers but {len(tokens)} token counts")
    odd = [(i, a) for i, a in enumerate(answers) if a is not None and not isinstance(a, str)]
    problems += [f"answer {i} is {a!r}" for i, a in odd]
    problems += [f"tokens {i} is {t!r}" for i, t in enumerate(tokens) if not isinstance(t, int) or t < 0]
    if "confidence" in record:
        kept = record["confidence"]
        if not isinstance(kept, list) or len(kept) != len(answers):
            problems.append(f"confidence should be a list of {len(answers)} summaries or nulls")
        else:
            problems += [f"confidence {i} is {c!r}" for i, c in enumerate(kept)
                         if c is not None and not (isinstance(c, dict) and "mean_conf" in c)]
    return problems


def read_pool(path: str | Path) -> list[dict[str, Any]]:
    """The records of a pool file, one JSON object a line."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def prepare(records: Sequence[dict[str, Any]], kind: str = "math") -> list[PoolProblem]:
    """Group each problem's answers by meaning (`same_answer`); mark the labels equal to the gold answer."""
    out = []
    for r in records:
        seen: list[str] = []
        labels: list[Label] = []
        for answer in r["answers"]:
            if not answer:
                labels.append(None)
                continue
            label = next((s for s in seen if s == answer or same_answer(s, answer, kind)), None)
            if label is None:
                seen.append(answer)
                label = answer
            labels.append(label)
        correct = {s: same_answer(s, r["gold"], kind) for s in seen}
        out.append(PoolProblem(r["id"], r["gold"], labels, list(r["tokens"]), correct))
    return out


def first_samples(problem: PoolProblem, n: int) -> PoolProblem:
    """The problem with only its first `n` samples (in recorded order)."""
    return PoolProblem(problem.id, problem.gold, problem.labels[:n], problem.tokens[:n], problem.correct)


def common_samples(problems: Sequence[PoolProblem], samples: int | None = None) -> tuple[int, list[PoolProblem]]:
    """N, the fewest samples any problem has (or `samples` when that is fewer), and each problem trimmed to
    its first N samples."""
    n = min((len(p.labels) for p in problems), default=0)
    if samples is not None:
        if samples < 1:
            raise ValueError(f"samples must be at least 1, not {samples}")
        n = min(n, samples)
    return n, [first_samples(p, n) for p in problems]


def orderings(problem: PoolProblem, count: int, seed: int) -> list[list[int]]:
    """`count` random orders of a problem's samples, the same for a given seed and problem id."""
    rng = random.Random(f"{seed}/{problem.id}")
    n = len(problem.labels)
    return [rng.sample(range(n), n) for _ in range(count)]


def _right(problem: PoolProblem, labels: Sequence[Label]) -> bool:
    winner = majority(labels)
    return winner is not None and problem.correct.get(winner, False)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def fixed_scores(problems: Sequence[PoolProblem], k: int, orders: Sequence[list[list[int]]]) -> list[float]:
    """Per problem, the share of its orderings whose majority over the first k samples is right."""
    return [_mean([_right(p, [p.labels[i] for i in order[:k]]) for order in per])
            for p, per in zip(problems, orders, strict=True)]


def fixed_k(problems: Sequence[PoolProblem], k: int, orders: Sequence[list[list[int]]]) -> float:
    """Accuracy of majority voting over the first k samples, averaged over problems and orderings."""
    return _mean(fixed_scores(problems, k, orders))


def adaptive_scores(
    problems: Sequence[PoolProblem], rule: StopRule, orders: Sequence[list[list[int]]]
) -> list[dict[str, float]]:
    """Per problem, over its orderings: accuracy, mean samples and mean tokens of voting that stops by `rule`."""
    out = []
    for p, per in zip(problems, orders, strict=True):
        right = samples = tokens = 0.0
        for order in per:
            labels = [p.labels[i] for i in order]
            spent = [float(p.tokens[i]) for i in order]
            n, _ = stop_point(labels, rule, spent)
            right += _right(p, labels[:n])
            samples += n
            tokens += sum(spent[:n])
        count = max(len(per), 1)
        out.append({"accuracy": right / count, "samples": samples / count, "tokens": tokens / count})
    return out


def adaptive(
    problems: Sequence[PoolProblem], rule: StopRule, orders: Sequence[list[list[int]]]
) -> dict[str, float]:
    """Accuracy, mean samples and mean tokens of voting that stops by `rule`, over problems and orderings."""
    return _summary(adaptive_scores(problems, rule, orders))


def _summary(per: Sequence[dict[str, float]]) -> dict[str, float]:
    return {key: _mean([r[key] for r in per]) for key in ("accuracy", "samples", "tokens")}


def sample_count(text: str) -> int:
    """A command-line sample count (`--samples`): an integer of at least 1, else argparse's error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def default_rules() -> dict[str, StopRule]:
    """The rules the replay compares: Beta at several confidences, ESC windows, the cost rule alone."""
    rules = {f"beta-{c}": StopRule("beta", confidence=c) for c in (0.8, 0.9, 0.95, 0.99)}
    rules |= {f"window-{w}": StopRule("window", window=w) for w in (2, 3, 4)}
    rules |= {f"gain-{g}": StopRule("none", min_gain=g) for g in (0.005, 0.01, 0.02, 0.05)}
    return rules


def grid_rules() -> dict[str, StopRule]:
    """A finer sweep (`--grid`): the Beta rule at confidences 0.8-0.95 and the cost rule alone at 0.02-0.05
    expected flips per 1,000 tokens, each by at least 2, 3 or 4 samples."""
    rules = {f"beta-{c}-min{m}": StopRule("beta", confidence=c, min_samples=m)
             for m in (2, 3, 4) for c in (0.8, 0.85, 0.88, 0.9, 0.92, 0.95)}
    rules |= {f"gain-{g}-min{m}": StopRule("none", min_gain=g, min_samples=m)
              for m in (2, 3, 4) for g in (0.02, 0.025, 0.03, 0.035, 0.04, 0.05)}
    return rules


def frontier(report: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """The two settings the target is about: the most accurate rule using at most half the samples, and the
    cheapest rule within `tolerance` of fixed-N (None when no rule qualifies)."""
    rows = report["adaptive"]
    full = report["fixed_k"][-1]["accuracy"] if report["fixed_k"] else 0.0
    half = [r for r in rows if r["fraction"] <= 0.5]
    close = [r for r in rows if r["accuracy"] >= full - report["tolerance"]]
    return {"best_under_half": max(half, key=lambda r: r["accuracy"], default=None),
            "cheapest_within": min(close, key=lambda r: r["samples"], default=None)}


def replay(
    problems: Sequence[PoolProblem], rules: dict[str, StopRule] | None = None, count: int = 200,
    seed: int = 0, tolerance: float = 0.01, samples: int | None = None,
) -> dict[str, Any]:
    """Fixed-k accuracy for k = 1..N and each adaptive rule's accuracy and cost, with the verdict per rule.

    Intervals (`ci`, and `vs_full_ci` for a rule's accuracy minus fixed-N's, paired per problem) are 95%
    percentile bootstraps over problems (seeded by `seed`): the problems are the sample; the orderings only
    average out the order within a problem.

    N is the fewest samples any problem has, or `samples` when that is fewer: each problem's first N samples
    (in recorded order) are replayed, so a pool recorded up to 16 replays as the pool of 8 it grew from."""
    rules = default_rules() if rules is None else rules
    n, problems = common_samples(problems, samples)
    orders = [orderings(p, count, seed) for p in problems]
    curve = []
    full_scores = [0.0] * len(problems)  # fixed-N per problem (N = 0: none right)
    for k in range(1, n + 1):
        full_scores = fixed_scores(problems, k, orders)
        curve.append({"k": k, "accuracy": _mean(full_scores), "ci": bootstrap_interval(full_scores, seed=seed)})
    full = curve[-1]["accuracy"] if curve else 0.0
    rows = []
    for name, rule in rules.items():
        per = adaptive_scores(problems, rule, orders)
        r = _summary(per)
        right = [x["accuracy"] for x in per]
        gap = [a - f for a, f in zip(right, full_scores, strict=True)]
        meets = r["accuracy"] >= full - tolerance and r["samples"] <= 0.5 * n
        rows.append({"rule": name, **r, "ci": bootstrap_interval(right, seed=seed), "vs_full": _mean(gap),
                     "vs_full_ci": bootstrap_interval(gap, seed=seed), "fraction": r["samples"] / n if n else 0.0,
                     "meets": meets})
    return {"problems": len(problems), "samples": n, "orderings": count, "seed": seed, "tolerance": tolerance,
            "fixed_k": curve, "adaptive": rows, "any_meets": any(r["meets"] for r in rows)}


CAP_RULES = ("beta-0.8", "beta-0.9", "beta-0.95", "window-2", "window-3")


def equal_accuracy(
    problems: Sequence[PoolProblem], rules: dict[str, StopRule] | None = None, count: int = 200, seed: int = 0,
    tolerance: float = 0.01, samples: int | None = None,
) -> dict[str, Any]:
    """The target read at equal accuracy: for each fixed k (2..N), the fewest samples an adaptive rule spends
    to come within `tolerance` of fixed-k's accuracy when it may draw up to `cap` samples, for caps 2..N (a
    cap of one is one sample, not a rule).

    Every cap replays the same orderings (the rule sees the first `cap` samples of each), as fixed-k sees the
    first k, so the curves are nested rather than drawn from different subsets. `replay` asks a stricter
    question (the rule capped at N against fixed-N); this one asks what fixed-k accuracy costs adaptively.
    Taking the cheapest cap that qualifies picks among noisy estimates, so a match is optimistic by about
    the noise between neighbouring caps; read the curve, not a single cell."""
    rules = {k: v for k, v in default_rules().items() if k in CAP_RULES} if rules is None else rules
    n, problems = common_samples(problems, samples)
    orders = [orderings(p, count, seed) for p in problems]
    fixed = [{"k": k, "accuracy": fixed_k(problems, k, orders)} for k in range(2, n + 1)]
    out: dict[str, Any] = {}
    for name, rule in rules.items():
        curve = [{"cap": c, **_summary(adaptive_scores(problems, rule, [[o[:c] for o in per] for per in orders]))}
                 for c in range(2, n + 1)]
        match = []
        for f in fixed:
            close = [c for c in curve if c["accuracy"] >= f["accuracy"] - tolerance]
            best = min(close, key=lambda c: c["samples"], default=None)
            match.append(None if best is None else {**best, "fraction": best["samples"] / f["k"]})
        out[name] = {"curve": curve, "match": match}
    return {"problems": len(problems), "samples": n, "orderings": count, "seed": seed, "tolerance": tolerance,
            "fixed_k": fixed, "rules": out}


def equal_accuracy_markdown(report: dict[str, Any]) -> str:
    """`equal_accuracy`'s report: per k, fixed-k accuracy and each rule's cheapest match (samples, share of k,
    the cap that gave it); a trailing `*` marks a match with at most half of k's samples."""
    names = list(report["rules"])
    points = report["tolerance"] * 100
    lines = [f"{report['problems']} problems x {report['samples']} samples, {report['orderings']} orderings; "
             f"the fewest samples within {points:g} point(s) of fixed-k (* = at most half of k)", "",
             "| k | fixed-k | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for i, f in enumerate(report["fixed_k"]):
        cells = []
        for name in names:
            m = report["rules"][name]["match"][i]
            cells.append("–" if m is None else f"{m['samples']:.2f} ({m['fraction']:.0%}, cap {m['cap']})"
                         + (" *" if m["fraction"] <= 0.5 else ""))
        lines.append(f"| {f['k']} | {f['accuracy']:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "| cap | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    curves = [report["rules"][name]["curve"] for name in names]
    for at_cap in zip(*curves, strict=True):  # one row a cap, one cell a rule
        cells = [f"{c['accuracy']:.3f} @ {c['samples']:.2f}" for c in at_cap]
        lines.append(f"| {at_cap[0]['cap']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_pools(
    first: Sequence[PoolProblem], second: Sequence[PoolProblem], count: int = 200, seed: int = 0,
    samples: int | None = None,
) -> dict[str, Any]:
    """Majority-of-k accuracy of two pools of the same problems (e.g. two sampling temperatures), k = 1..N,
    and the difference paired per problem with its 95% bootstrap interval over problems. N: the fewest
    samples any problem has in either pool, or `samples` when fewer. Problems missing from either are left
    out."""
    by_id = {p.id: p for p in second}
    pairs = [(p, by_id[p.id]) for p in first if p.id in by_id]
    n = min((min(len(a.labels), len(b.labels)) for a, b in pairs), default=0)
    n = min(n, samples) if samples is not None else n
    sides = [[first_samples(a, n) for a, _ in pairs], [first_samples(b, n) for _, b in pairs]]
    orders = [[orderings(p, count, seed) for p in side] for side in sides]
    rows = []
    for k in range(1, n + 1):
        a, b = (fixed_scores(side, k, order) for side, order in zip(sides, orders, strict=True))
        diff = [x - y for x, y in zip(a, b, strict=True)]
        rows.append({"k": k, "first": _mean(a), "second": _mean(b), "diff": _mean(diff),
                     "diff_ci": bootstrap_interval(diff, seed=seed)})
    return {"problems": len(pairs), "samples": n, "orderings": count, "seed": seed, "rows": rows}


def compare_markdown(report: dict[str, Any], names: Sequence[str] = ("first", "second")) -> str:
    """`compare_pools`' report as a markdown table."""
    a, b = names
    lines = [f"{report['problems']} problems in both pools x {report['samples']} samples, "
             f"{report['orderings']} orderings", "",
             f"| k | {a} | {b} | {a} minus {b} (95% CI, paired by problem) |", "|---|---|---|---|"]
    lines += [f"| {r['k']} | {r['first']:.3f} | {r['second']:.3f} | {r['diff']:+.3f} "
              f"({_span(r['diff_ci'], signed=True)}) |" for r in report["rows"]]
    return "\n".join(lines)


def _span(interval: Sequence[float], signed: bool = False) -> str:
    lo, hi = interval
    return f"{lo:+.3f} to {hi:+.3f}" if signed else f"{lo:.3f}–{hi:.3f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as two markdown tables and a one-line verdict."""
    n = report["samples"]
    head = f"{report['problems']} problems x {n} samples, {report['orderings']} orderings"
    lines = [head, "", "| k | accuracy (95% CI) |", "|---|---|"]
    lines += [f"| {row['k']} | {row['accuracy']:.3f} ({_span(row['ci'])}) |" for row in report["fixed_k"]]
    lines += ["", f"| rule | accuracy (95% CI) | minus fixed-{n} (95% CI) | samples | of N | tokens | meets |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['rule']} | {r['accuracy']:.3f} ({_span(r['ci'])}) | {r['vs_full']:+.3f} "
              f"({_span(r['vs_full_ci'], signed=True)}) | {r['samples']:.2f} | {r['fraction']:.0%} | "
              f"{r['tokens']:.0f} | {'yes' if r['meets'] else 'no'} |" for r in report["adaptive"]]
    verdict = "yes" if report["any_meets"] else "no"
    points = report["tolerance"] * 100
    ends = frontier(report)
    for key, what in (("best_under_half", "most accurate with <= 50% of the samples"),
                      ("cheapest_within", f"fewest samples within {points:g} point(s)")):
        r = ends[key]
        lines += ["", f"{what}: " + (f"{r['rule']}, {r['accuracy']:.3f} ({r['vs_full']:+.3f}), "
                                     f"{r['samples']:.2f} samples ({r['fraction']:.0%})" if r else "none")]
    lines += ["", f"Adaptive reaches fixed-{n} accuracy within {points:g} point(s) using <= 50% of the "
              f"samples: {verdict}"]
    return "\n".join(lines)
