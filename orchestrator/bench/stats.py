"""Summary statistics of benchmark rows: accuracy with a Wilson 95% interval, tokens, $, latency, McNemar."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from typing import Any

from orchestrator.kinds import StopReason


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default)."""
    if n == 0:
        return (0.0, 0.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for b right->wrong and c wrong->right flips (binomial, p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) with linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def bootstrap_interval(values: list[float], draws: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """A percentile bootstrap interval for the mean of `values` (e.g. per-problem scores, resampled with
    replacement `draws` times, seeded); (0, 0) for no values."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = [sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(draws)]
    tail = (1 - level) / 2
    return (percentile(means, tail), percentile(means, 1 - tail))


def latest(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (arm, problem): the last one written (a retried error supersedes the error)."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        last[(row["arm"], row["problem_id"])] = row
    return list(last.values())


def _mean(items: list[dict[str, Any]], *keys: str) -> float:
    return sum(sum(r.get(k) or 0 for k in keys) for r in items) / len(items)


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per arm, in order of first appearance."""
    by_arm: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in latest(rows):
        by_arm[row["arm"]].append(row)
    out = []
    for arm, items in by_arm.items():
        n = len(items)
        correct = sum(1 for r in items if r.get("correct"))
        lo, hi = wilson(correct, n)
        seconds = [float(r.get("seconds", 0.0)) for r in items]
        out.append({
            "arm": arm, "model": items[0]["model"], "strategy": items[0]["strategy"],
            "label": items[0].get("label", ""), "n": n, "correct": correct, "accuracy": correct / n,
            "ci95": [lo, hi],
            "mean_prompt_tokens": _mean(items, "prompt_tokens"),
            "mean_completion_tokens": _mean(items, "completion_tokens"),
            "mean_reasoning_tokens": _mean(items, "reasoning_tokens"),
            "mean_total_tokens": _mean(items, "prompt_tokens", "completion_tokens"),
            "mean_calls": _mean(items, "calls"),
            "usd_per_problem": _mean(items, "cost_usd"),
            "latency_p50": percentile(seconds, 0.5), "latency_p95": percentile(seconds, 0.95),
            "total_seconds": sum(seconds),
            "stop_reasons": dict(Counter(r.get("stop_reason", "?") for r in items)),
            "errors": sum(1 for r in items if r.get("stop_reason") == StopReason.ERROR),
        })
    return out


def usd(value: float) -> str:
    """Dollars readable at any scale: 0, 3.2e-06, 0.0123."""
    return "0" if not value else f"{value:.2e}" if value < 0.001 else f"{value:.4f}"


def markdown_table(summary: list[dict[str, Any]]) -> str:
    """The summary as a Markdown table."""
    head = ("| model | strategy | budget | n | accuracy (95% CI) | prompt tok | completion tok | total tok "
            "| $/problem | p50 s | p95 s | stop reasons |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for s in summary:
        lo, hi = s["ci95"]
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["stop_reasons"].items()))
        lines.append(
            f"| {s['model']} | {s['strategy']} | {s['label'] or '-'} | {s['n']} | "
            f"{100 * s['accuracy']:.1f}% ({100 * lo:.1f}–{100 * hi:.1f}) | {s['mean_prompt_tokens']:.0f} | "
            f"{s['mean_completion_tokens']:.0f} | {s['mean_total_tokens']:.0f} | "
            f"{usd(s['usd_per_problem'])} | {s['latency_p50']:.1f} | {s['latency_p95']:.1f} | {reasons} |"
        )
    return "\n".join(lines)
