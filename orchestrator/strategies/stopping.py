"""When to stop sampling: pure functions over the sequence of (meaning-grouped) answers, replayable offline.

The rule we use is Adaptive-Consistency's Beta criterion (Aggarwal et al. 2023, "Let's Sample Step by
Step"): with v1 and v2 votes for the two leading answers, the leader's share p of the votes between them has
the posterior Beta(v1 + 1, v2 + 1) under a flat prior, and we stop once P(p > 1/2) >= `confidence` (0.95 in
the paper). We picked it over Early-Stopping Self-Consistency's window rule (Li et al. 2024: stop when the
last w answers agree) because it weighs the whole tally rather than the latest run of answers: a 6-1 split
stops, while one dissenter resets ESC's window; it gives a probability, which the cost rule below reuses;
and for integer counts it has a closed form (P(X > 1/2) for X ~ Beta(a, b) is P(Binomial(a + b - 1, 1/2)
< a)), so it needs no sampling and no SciPy. The window rule is here too, for the offline comparison
(`python -m research.stopping_pool replay`). The paper found the Beta and Dirichlet criteria about equal; the
Beta needs only the top two counts.

The cost rule (`min_gain`): the probability that taking the `more` samples still allowed would change the
majority, divided by what they are projected to cost in thousands of tokens, i.e. expected answer flips
bought per 1,000 tokens. Sampling stops once that falls below `min_gain`. The flip probability is the
Beta-binomial tail of the same posterior: the runner-up gets K ~ BetaBinomial(more, v2 + 1, v1 + 1) of the
next samples and the answer flips (ties count as flips) when v2 + K >= v1 + more - K. It assumes every new
sample goes to one of the two leaders, which overstates flips, so the rule errs toward sampling on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from orchestrator.kinds import StopReason

Label = str | None  # a group of answers that mean the same; None: the sample gave no answer
Rule = Literal["beta", "window", "none"]


@dataclass(frozen=True)
class StopRule:
    """Settings of the stopping rule (`VoteOptions.stop_rule()`; these defaults are the options' defaults)."""

    rule: Rule = "beta"  # 'beta' (Adaptive-Consistency), 'window' (ESC) or 'none' (fixed k)
    confidence: float = 0.95  # beta: stop when P(leader is the true majority) >= this
    window: int = 3  # window: stop when the last `window` answers agree
    min_samples: int = 2  # never stop (on any rule) before this many samples
    min_gain: float = 0.0  # stop when expected flips per 1k tokens of the remaining samples < this (0: off)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return asdict(self)


def tally(labels: Sequence[Label]) -> list[tuple[str, int]]:
    """Answers with their vote counts, most votes first; a tie goes to the answer seen first."""
    counts: dict[str, int] = {}
    for label in labels:
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])  # sorted() is stable: first seen wins ties


def majority(labels: Sequence[Label]) -> str | None:
    """The majority answer (first seen among ties), or None when no sample answered."""
    top = tally(labels)
    return top[0][0] if top else None


def weighted_majority(labels: Sequence[Label], weights: Sequence[float]) -> str | None:
    """The answer with the largest total weight (a tie: the answer seen first), or None when no sample
    answered."""
    totals: dict[str, float] = {}
    for label, w in zip(labels, weights, strict=True):
        if label is not None:
            totals[label] = totals.get(label, 0.0) + w
    return max(totals, key=lambda k: totals[k]) if totals else None  # max() keeps the first of equals


def top_two(labels: Sequence[Label]) -> tuple[int, int]:
    """The vote counts of the leader and the runner-up (0 when absent)."""
    counts = [c for _, c in tally(labels)] + [0, 0]
    return counts[0], counts[1]


def beta_confidence(v1: int, v2: int) -> float:
    """P(p > 1/2) for p ~ Beta(v1 + 1, v2 + 1): how sure we are that the leader is the true majority."""
    n = v1 + v2 + 1
    return sum(math.comb(n, i) for i in range(v1 + 1)) / 2**n


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def flip_probability(v1: int, v2: int, more: int) -> float:
    """P(the runner-up catches up with the leader within `more` samples), Beta-binomial on the top two."""
    if more <= 0:
        return 0.0
    a, b = v2 + 1, v1 + 1  # the runner-up's share of the next votes ~ Beta(a, b)
    need = math.ceil((v1 - v2 + more) / 2)
    if need > more:
        return 0.0
    total = 0.0
    for k in range(max(0, need), more + 1):
        total += math.exp(math.log(math.comb(more, k)) + _log_beta(k + a, more - k + b) - _log_beta(a, b))
    return min(1.0, total)


def marginal_gain(labels: Sequence[Label], more: int, tokens_per_sample: float) -> float:
    """Expected answer flips per 1,000 tokens if the `more` remaining samples are taken (inf when free)."""
    flip = flip_probability(*top_two(labels), more)
    cost = more * tokens_per_sample / 1000
    if flip == 0.0:
        return 0.0
    return math.inf if cost <= 0 else flip / cost


def consensus(labels: Sequence[Label], rule: StopRule) -> bool:
    """Whether the majority is stable under `rule` (beta confidence or a unanimous window)."""
    if len(labels) < rule.min_samples or rule.rule == "none":
        return False
    if rule.rule == "window":
        last = labels[-rule.window:]
        return len(last) >= rule.window and last[0] is not None and all(x == last[0] for x in last)
    v1, v2 = top_two(labels)
    return v1 > 0 and beta_confidence(v1, v2) >= rule.confidence


def needed(labels: Sequence[Label], rule: StopRule, more: int) -> int:
    """The fewest further samples after which `rule` could stop, in the best case (all of them giving the one
    answer that gets there soonest); `more` when it cannot stop within the `more` samples still allowed.

    This is how many samples may run at once without waste: whatever they answer, a one-at-a-time run could
    not have stopped before all of them were in, so running them in parallel spends the same samples
    (as each finishes the count is taken again; one answer lowers it by at most one)."""
    if more <= 0:
        return 0
    gain_from = max(1, rule.min_samples - len(labels)) if rule.min_gain > 0 else more  # the cost rule
    if rule.rule == "none":
        return min(gain_from, more)
    fresh = object()  # an answer not seen yet
    answers: list[Any] = [label for label, _ in tally(labels)] + [fresh]
    for m in range(1, min(gain_from, more) + 1):
        if any(consensus([*labels, *[a] * m], rule) for a in answers):
            return m
    return min(gain_from, more)


def decide(labels: Sequence[Label], rule: StopRule, more: int, tokens_per_sample: float) -> StopReason | None:
    """Why to stop now: 'consensus' (the rule holds), 'min_gain' (more samples are not worth it), or None."""
    if consensus(labels, rule):
        return StopReason.CONSENSUS
    worth_asking = rule.min_gain > 0 and len(labels) >= rule.min_samples and more > 0 and majority(labels)
    if worth_asking and marginal_gain(labels, more, tokens_per_sample) < rule.min_gain:
        return StopReason.MIN_GAIN
    return None


def stop_point(
    labels: Sequence[Label], rule: StopRule, tokens: Sequence[float] | None = None, limit: int | None = None
) -> tuple[int, StopReason]:
    """Replay `rule` on a sequence: how many samples it takes and why it stops ('limit' if it never does)."""
    limit = len(labels) if limit is None else min(limit, len(labels))
    spent = 0.0
    for n in range(1, limit + 1):
        spent += tokens[n - 1] if tokens else 0.0
        reason = decide(labels[:n], rule, more=limit - n, tokens_per_sample=spent / n)
        if reason is not None:
            return n, reason
    return limit, StopReason.LIMIT
