"""`vote`: self-consistency (Wang et al. 2022) with adaptive stopping (Aggarwal et al. 2023).

Independent chains sampled at `temperature` (cheap by default: no reflection, no verification, one attempt)
each give an answer; answers are grouped by meaning (`same_answer` with the run's kind, so '0.5' and '1/2'
vote together) and the majority wins. Sampling stops as soon as the stopping rule in
`orchestrator.strategies.stopping` says the majority is stable ('consensus'), when the budget would be
overrun by the next sample ('budget_<resource>'), or when `samples` have run ('limit').

Where chains run in parallel (a remote model, a local one with slots), only as many run at once as the rule
needs whatever they answer (`stopping.needed`: 4 at first for Beta at 0.95, then as the tally requires),
so an early stop saves the same samples it would one at a time; `speculate` launches that many more
(faster, and possibly wasted; a large number launches all at once).

Options (`VoteOptions` in `orchestrator.strategies.options`, with their defaults; `reason strategies` lists
them): samples, temperature, chain (config overrides for the sampled chains), speculate, the stopping rule's
rule, confidence, window, min_samples and min_gain (a remaining sample is priced at the mean of this vote's
own samples, not at a prior chain's, e.g. `auto`'s first), weight and sampler.

`sampler`: what one sample is. 'chain' (the default): a cheap chain of the state machine, with its system
prompt and step format. 'plain': the bare question in one call at the sampling temperature, as the `plain`
strategy asks it (Wang et al.'s self-consistency over the model's own chain of thought); of the `chain`
overrides only the fields one call reads apply to it (temperature, max_tokens_per_call, seed). Either way
the answers are parsed, grouped and counted by our code the same way. Where the model takes `n` (vLLM,
SGLang, OpenAI: `plain.draws_together`), the 'plain' samples the rule wants at once (a wave) go out as one
request with `n`, clipped to what the budget admits; each is still its own run and trajectory file.

`weight` (one of `orchestrator.confidence.SCORES`, e.g. `mean_conf`): each vote counts the model's own
confidence in that sample (DeepConf's confidence-weighted voting, Fu et al. 2025; a chain's calls combined by
`confidence.combine`) when picking the winner. The stopping rule still counts votes, so weighting changes
which answer wins a split vote, never how many samples run. It needs a model that reports token statistics
(`ChatModel.reports_confidence`: the local models when they decode calls together, `slots` > 1; OpenAI and
OpenAI-compatible servers asked for log-probabilities: `logprobs=True`, an endpoint's `logprobs = true`, or
REASON_LOGPROBS=1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.answers import group
from orchestrator.confidence import SCORES, combine
from orchestrator.errors import ConfigError
from orchestrator.kinds import StopReason
from orchestrator.run import Candidate, Run
from orchestrator.strategies import stopping
from orchestrator.strategies.base import Outcome, StrategyContext
from orchestrator.strategies.options import SampledOptions, VoteOptions
from orchestrator.strategies.plain import answer_many, answer_once, draws_together
from orchestrator.strategies.sampling import Projection, affordable, run_samples, run_tokens

CHEAP = {"plan": False, "reflect": False, "verify": False, "max_attempts": 1}


def chain_overrides(ctx: StrategyContext, cheap: bool = True) -> dict[str, Any]:
    """Config overrides of a sampled chain: sampling temperature, cheap by default, then the `chain` option."""
    o = ctx.options_as(SampledOptions)
    temperature = ctx.model.sample_temperature if o.temperature is None else o.temperature
    base = dict(CHEAP) if cheap else {}
    sampling = {"temperature": temperature, "retry_temperature": temperature}
    return {**base, **sampling, **o.chain}


def solve(ctx: StrategyContext) -> Outcome:
    """Sample chains until the majority is stable, the budget is spent, or `samples` have run."""
    return vote(ctx, list(range(ctx.options_as(VoteOptions).samples)))


def vote(ctx: StrategyContext, indices: list[int], prior: Sequence[Run] = (),
         estimate: dict[str, float] | None = None) -> Outcome:
    """Self-consistency over chains `indices`; `prior` chains (already run) count as the first votes.
    `estimate`: one sample's projected cost until one has finished (else projected from `prior`)."""
    rule, weight, draw = check_options(ctx)
    projection = Projection(ctx, done=len(prior), estimate=estimate)
    seen: list[str] = []
    labels = [group(r.final.normalized if r.final else None, seen, ctx.kind) for r in prior]
    tokens = [run_tokens(r) for r in prior]
    allowed = len(prior) + len(indices)
    why: dict[str, Any] = {}

    def decide(run: Run) -> StopReason | None:
        labels.append(group(run.final.normalized if run.final else None, seen, ctx.kind))
        tokens.append(run_tokens(run))
        more = allowed - len(labels)
        budget_left = affordable(ctx, projection.cost())
        if budget_left is not None:
            more = min(more, budget_left)
        own = tokens[len(prior):]  # this loop's samples (decide runs after each): what one more will cost
        found = stopping.decide(labels, rule, more, sum(own) / len(own))
        if found is not None:
            if not why:  # samples still in flight when the rule held are counted, not re-decided
                why.update(stopped_by=rule.rule if found == StopReason.CONSENSUS else found, after=len(labels))
            return StopReason.CONSENSUS
        return None

    speculate = ctx.options_as(VoteOptions).speculate

    def wanted() -> int:
        return stopping.needed(labels, rule, allowed - len(labels)) + speculate

    sampled = run_samples(ctx, indices, decide, projection, wanted=wanted, runner=draw, batch=waves(ctx),
                          **chain_overrides(ctx))
    runs = [*prior, *sampled.runs]
    found = [run_weight(r, weight) for r in runs] if weight else []
    weights = [w for w in found if w is not None]
    weighed = bool(weight) and len(weights) == len(runs)  # a sample without statistics: plain majority
    winner = stopping.weighted_majority(labels, weights) if weighed else stopping.majority(labels)
    v1, v2 = stopping.top_two(labels)
    details = {
        "votes": dict(stopping.tally(labels)), "order": labels, "tokens_per_sample": tokens,
        "rule": rule.to_dict(), **why, "confidence": round(stopping.beta_confidence(v1, v2), 4),
        "samples": [{"sample": r.sample, "answer": r.final.answer if r.final else None, "label": label,
                     "stop_reason": r.stop_reason, "tokens": n}
                    for r, label, n in zip(runs, labels, tokens, strict=True)],
    }
    if weighed:
        details["weight"] = {"score": weight, "majority": stopping.majority(labels),
                             "totals": {k: round(sum(w for lab, w in zip(labels, weights, strict=True) if lab == k), 4)
                                        for k, _ in stopping.tally(labels)}}
        for sample, w in zip(details["samples"], weights, strict=True):
            sample["weight"] = round(w, 4)
    elif weight:
        missing = [r.sample for r, w in zip(runs, found, strict=True) if w is None]
        details["weight"] = {"score": weight, "unweighted": f"samples {missing} have no token statistics"}
    return Outcome(
        answer=pick(runs, labels, winner), stop_reason=sampled.stop_reason,
        runs=sorted(runs, key=lambda r: r.sample), samples_used=len(runs), samples_allowed=allowed,
        details=details,
    )


def check_options(ctx: StrategyContext) -> tuple[stopping.StopRule, str | None, Callable[..., Run]]:
    """The vote's stopping rule, weight and sampler from its options; a `ConfigError` for a weight the model
    cannot report (strategies that may escalate to a vote call this before their first model call)."""
    return ctx.options_as(VoteOptions).stop_rule(), weight_option(ctx), sampler(ctx)


def sampler(ctx: StrategyContext) -> Callable[..., Run]:
    """How one sample is drawn (option `sampler`): a cheap chain of the state machine ('chain', the default)
    or the bare question in one call, as `plain` asks it ('plain')."""
    if ctx.options_as(VoteOptions).sampler == "plain":
        return lambda index, **overrides: answer_once(ctx, index, **overrides)
    return ctx.run_chain


def waves(ctx: StrategyContext) -> Callable[..., list[Run]] | None:
    """How a wave of samples is drawn together, where it can be: 'plain' samples of a model that takes `n`
    go out as one request (`plain.answer_many`); None: one request a sample."""
    if ctx.options_as(VoteOptions).sampler != "plain" or not draws_together(ctx.model):
        return None
    return lambda indices, **overrides: answer_many(ctx, indices, **overrides)


def weight_option(ctx: StrategyContext) -> str | None:
    """The score votes are weighted by (None: one vote each); a clear error for a model without token
    statistics (the options model checked the name)."""
    name = ctx.options_as(VoteOptions).weight
    if name is None:
        return None
    if not getattr(ctx.model, "reports_confidence", False):
        raise ConfigError(
            f"weight={name} needs token statistics, which {ctx.model.name} does not report: the local models "
            "report them when they decode calls together (REASON_LOCAL_SLOTS=N or `reason bench --local-slots N`, "
            "N > 1), OpenAI-compatible servers when asked for log-probabilities (REASON_LOGPROBS=1)")
    return name


def run_weight(run: Run, score: str) -> float | None:
    """A chain's vote weight: `score` of its calls' combined token statistics; None when a call has none
    (one decoded alone, a cache entry written before they were kept): then the vote is a plain majority."""
    summary = combine([c.confidence for step in run.trajectory.steps for c in step.calls])
    return SCORES[score](summary) if summary else None


def pick(runs: Sequence[Run], labels: Sequence[str | None], winner: str | None) -> Candidate | None:
    """The candidate to return for the winning label: verified first, then the best rewarded."""
    backing = [r.final for r, label in zip(runs, labels, strict=True) if label == winner and r.final]
    if not backing:
        return None
    return max(backing, key=lambda c: (bool(c.verified), c.reward or 0.0))
