"""`auto`: choose the strategy per question from the budget and, once seen, the difficulty.

Reference: Snell et al. 2024 (Scaling LLM Test-Time Compute Optimally): picking the strategy per question by
its difficulty beats any fixed one; easy questions need little more than one chain, hard ones parallel
samples checked by a verifier; and Large Language Monkeys (Brown et al. 2024): without a checker, voting is
what sampling can do. One chain runs first, as configured; the evidence on its answer rates the difficulty:

- easy: its answer passed a check independent of the chain: solved again as a program that our sandbox ran
  (math with tools), or by independent re-solves (`verify_by=resolve`). Stop: `verified`.
- medium: an answer rewarded at least `reward_low` that no independent check confirmed, including one the
  model's own review passed. Escalate to `vote`, the chain's answer counted as the first vote: the vote's
  stopping rule ends it as soon as fresh samples agree with it (Beta at 0.95: three that agree).
- hard: no answer, a failed verification, or a reward below `reward_low`. Escalate to `best-of-n` with the
  `check` scorer when a checker can recompute the answer (tools on, a numeric kind), else to `vote`.

The model's opinion of its own chain (the judge's verdict, the reflection reward) does not make a question
easy unless `trust_self` is set (then a passed review, or, where nothing can be verified, a reward of at
least `confident`, default `reward_high`, counts as easy, as it did before): a model reviewing its own
reasoning repeats its mistakes (Huang et al. 2023, "Large Language Models Cannot Self-Correct Reasoning
Yet").

The escalation runs `samples` more chains with the remaining budget, the first chain counting as a vote
or candidate. It starts only if `min_escalation` more samples are projected to fit (projected from the
first chain: its think calls for a vote sample, its first think call for a `sampler=plain` one, all of it
for a best-of-n sample); else the chain's answer is returned with `budget_<resource>`. `escalate` ('vote',
'best-of-n' or 'none') overrides the choice.
The decision is recorded in `details['auto']`.
"""

from __future__ import annotations

from typing import Any

from orchestrator.kinds import StepKind, StopReason, budget_stop, is_budget
from orchestrator.run import Run
from orchestrator.strategies.base import Outcome, StrategyContext
from orchestrator.strategies.best_of_n import best_of_n, default_scorer
from orchestrator.strategies.options import AutoOptions, VoteOptions
from orchestrator.strategies.sampling import blocked
from orchestrator.strategies.vote import check_options, vote


def difficulty(run: Run, confident: float, reward_low: float, verifiable: bool, trust_self: bool = False) -> str:
    """'easy', 'medium' or 'hard' from a finished chain's answer, reward and verification (see the module)."""
    c = run.final
    if c is None or c.verified is False:
        return "hard"
    reward = c.reward or 0.0
    independent = verifiable and run.verification in ("program", "resolve")
    if c.verified is True and (independent or trust_self):
        return "easy"
    if trust_self and not verifiable and reward >= confident:
        return "easy"
    return "medium" if reward >= reward_low else "hard"


def sample_cost(ctx: StrategyContext, target: str, first: Run) -> dict[str, float]:
    """One escalation sample's projected cost from the first chain: all of it for best-of-n, its think calls
    for a vote of chains, its first think call for a vote of bare calls (`sampler=plain`: one call, the
    question without the system prompt, so it still errs high)."""
    if target == "vote" and ctx.options_as(VoteOptions).sampler == "plain":
        thinks = (step for step in first.trajectory.steps if step.kind == StepKind.THINK and step.calls)
        call = next((step.calls[0] for step in thinks), None)
        if call is not None:
            return {"calls": 1.0, "tokens": float(call.prompt_tokens + call.completion_tokens),
                    "usd": call.cost_usd, "seconds": call.seconds}
    phases = ctx.ledger.by_phase()
    parts = [p for name, p in phases.items() if target == "best-of-n" or name in ("think", "answer")]
    parts = parts or list(phases.values())
    return {
        "calls": float(sum(p.calls for p in parts)),
        "tokens": float(sum(p.total_tokens for p in parts)),
        "usd": sum(p.cost_usd for p in parts),
        "seconds": sum(p.model_seconds + p.tool_seconds for p in parts),
    }


def solve(ctx: StrategyContext) -> Outcome:
    """One chain; stop if it is confident, else escalate to vote or best-of-n within the remaining budget."""
    cfg, o = ctx.config, ctx.options_as(AutoOptions)
    check_options(ctx)  # a weight the model cannot report fails before any call
    first = ctx.run_chain(0)
    verifiable = cfg.verify and first.can_verify
    confident = cfg.reward_high if o.confident is None else o.confident
    level = difficulty(first, confident, cfg.reward_low, verifiable, o.trust_self)
    c = first.final
    decision: dict[str, Any] = {
        "first": {"answer": c.answer if c else None, "reward": c.reward if c else None,
                  "verified": c.verified if c else None, "verified_by": first.verification if verifiable else None,
                  "stop_reason": first.stop_reason},
        "difficulty": level, "escalated_to": None,
    }
    checker = default_scorer(ctx) == "check"
    target = o.escalate or ("best-of-n" if level == "hard" and checker else "vote")
    n = o.samples
    cost = sample_cost(ctx, target, first)
    short = blocked(ctx, cost, running=o.min_escalation - 1)

    def single(reason: StopReason, why: str) -> Outcome:
        decision["why"] = why
        return Outcome(answer=c, stop_reason=reason, runs=[first], samples_used=1, samples_allowed=1 + n,
                       details={"auto": decision}, error=first.error)

    if first.stop_reason is not None and is_budget(first.stop_reason):
        return single(first.stop_reason, "the first chain used up the budget")
    if level == "easy":
        reason = StopReason.VERIFIED if c and c.verified else first.stop_reason or StopReason.ANSWERED
        by = decision["first"]["verified_by"]
        why = (f"first chain verified by {'a program' if by == 'program' else 're-solves'}"
               if c and c.verified and by in ("program", "resolve")
               else "first chain passed its own review (trust_self)" if c and c.verified
               else "confident first chain (trust_self)")
        return single(reason, why)
    if target == "none" or n <= 0:
        return single(first.stop_reason or StopReason.ANSWERED, "escalation turned off")
    if short is not None:
        return single(budget_stop(short), f"the budget cannot pay for {o.min_escalation} samples")
    why = f"{level} question; {'a checker' if checker else 'no checker'} available"
    decision.update(escalated_to=target, why=why)
    escalate = best_of_n if target == "best-of-n" else vote
    outcome = escalate(ctx, list(range(1, 1 + n)), prior=[first], estimate=cost)
    outcome.details = {"auto": decision, **outcome.details}
    return outcome
