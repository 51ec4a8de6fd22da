"""`best-of-n`: several full chains, each answer scored by a verifier, the best one kept.

The reranking rung of o1's ladder (single chain < majority vote < verifier-reranked samples; OpenAI 2024).
Scoring, option `scorer`:
- `reward` (the default without tools): free; the chain's own evidence, its final reflection reward and the
  verdict of its verify step.
- `judge`: one extra call per distinct answer: the model reads the best chain for that answer and gives a
  score in [0, 1] (ledger phase `judge`).
- `check` (the default when tools are on and the answer is a number or an expression): one extra call per
  distinct answer asking for a program that recomputes it; our sandbox runs the program and its printed
  True/False is the verdict (phases `check`). Code that ran is evidence; a judge's score is an opinion.

Ranking: a passed check first, then a chain whose verify step passed, then answers nothing refuted (no failed
check or verification), then the score (the judge's, else the reflection reward), then the votes, then the
earliest. Stops early with `verified` when a check passes (or, with `stop_on_verified`, when a chain's own
verification passes); otherwise after `samples` chains (`limit`, or `verified` when the chosen answer was
verified), or before a chain the budget could not pay for (`budget_<resource>`).
Options (`BestOfNOptions` in `orchestrator.strategies.options`, with their defaults): samples, scorer,
stop_on_verified, temperature (as for `vote`), chain (config overrides), sample_first.

The first chain is not sampled unless `sample_first` is set: it runs at the run's own temperature, as the
`chain` strategy would (greedy on the local model, the provider's default elsewhere), and the others at
`temperature`, so that `best-of-n` under a budget that pays for one chain is the chain, not one sample of it.
When earlier chains are passed in (`prior`: `auto` escalating), every new chain is sampled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from orchestrator.answers import group
from orchestrator.errors import BudgetExceeded
from orchestrator.kinds import StopReason, budget_stop
from orchestrator.run import Run
from orchestrator.strategies.base import Outcome, StrategyContext
from orchestrator.strategies.options import BestOfNOptions
from orchestrator.strategies.sampling import Projection, run_samples
from orchestrator.strategies.scoring import Scorer
from orchestrator.strategies.vote import chain_overrides


def solve(ctx: StrategyContext) -> Outcome:
    """Sample `samples` full chains (or fewer: verified early, budget), score them, keep the best."""
    return best_of_n(ctx, list(range(ctx.options_as(BestOfNOptions).samples)))


def default_scorer(ctx: StrategyContext) -> str:
    """`check` when the sandbox can recompute the answer, else `reward`."""
    checkable = ctx.config.tools and ctx.make_sandbox is not None and ctx.kind in ("math", "game24")
    return "check" if checkable else "reward"


def best_of_n(ctx: StrategyContext, indices: list[int], prior: Sequence[Run] = (),
              estimate: dict[str, float] | None = None) -> Outcome:
    """Best-of-n over chains `indices`; `prior` chains (already run) are candidates too. `estimate`: one
    sample's projected cost until one has finished (else projected from `prior`)."""
    o = ctx.options_as(BestOfNOptions)
    method = o.scorer or default_scorer(ctx)
    stop_on_verified = o.stop_on_verified
    scorer = Scorer(ctx, method)
    seen: list[str] = []
    labels: list[str | None] = []
    scores: dict[str, float | None] = {}
    checks: dict[str, bool | None] = {}
    spent: list[StopReason] = []  # the budget ran out while scoring

    def score(run: Run, label: str | None) -> None:
        if label is None or label in scores or spent or run.final is None:
            return
        scores[label] = None
        try:
            if method == "judge":
                scores[label] = scorer.judge(run, run.final)
            elif method == "check":
                checks[label] = scorer.check(run.final)
        except BudgetExceeded as e:
            spent.append(budget_stop(e.reason))

    def decide(run: Run) -> StopReason | None:
        label = group(run.final.normalized if run.final else None, seen, ctx.kind)
        labels.append(label)
        score(run, label)
        if label is not None and checks.get(label) is True:
            return StopReason.VERIFIED
        if stop_on_verified and run.final is not None and run.final.verified:
            return StopReason.VERIFIED
        return spent[0] if spent else None

    early = next((r for r in map(decide, prior) if r is not None), None)
    first_calls = 3.0 + (method != "reward")  # think, reflect, verify (+ the scorer's call)
    if early is None:
        projection = Projection(ctx, len(prior), first_calls, estimate)
        overrides = chain_overrides(ctx, cheap=False)
        first = {} if prior or not indices or o.sample_first else {
            indices[0]: {key: getattr(ctx.config, key) for key in ("temperature", "retry_temperature")
                         if key not in o.chain}}
        sampled = run_samples(ctx, indices, decide, projection, per_index=first, **overrides)
        new_runs, reason = sampled.runs, sampled.stop_reason
    else:
        new_runs, reason = [], early
    runs = [*prior, *new_runs]
    votes = Counter(label for label in labels if label is not None)

    def rank(i: int) -> tuple[Any, ...]:
        c, label = runs[i].final, labels[i]
        assert c is not None and label is not None
        check, judged = checks.get(label), scores.get(label)
        refuted = check is False or c.verified is False
        return (check is True, c.verified is True, not refuted,
                c.reward or 0.0 if judged is None else judged, votes[label], -i)

    answered = [i for i, r in enumerate(runs) if r.final is not None and labels[i] is not None]
    best = max(answered, key=rank) if answered else None
    chosen = runs[best].final if best is not None else None
    label = labels[best] if best is not None else None
    if reason == StopReason.LIMIT and label is not None and (checks.get(label) or (chosen and chosen.verified)):
        reason = StopReason.VERIFIED
    details = {
        "scorer": method, "votes": dict(votes), "scores": scores, "checks": checks,
        "chosen_sample": runs[best].sample if best is not None else None,
        "candidates": [{"sample": r.sample, "answer": r.final.answer if r.final else None, "label": label,
                        "reward": r.final.reward if r.final else None,
                        "verified": r.final.verified if r.final else None, "stop_reason": r.stop_reason}
                       for r, label in zip(runs, labels, strict=True)],
    }
    return Outcome(
        answer=chosen, stop_reason=reason, runs=[*sorted(runs, key=lambda r: r.sample), *scorer.runs()],
        samples_used=len(runs), samples_allowed=len(prior) + len(indices), details=details,
    )
