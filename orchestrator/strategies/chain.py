"""`chain`: one run of the state machine (plan, think, act, reflect, verify, lessons, answer)."""

from __future__ import annotations

from orchestrator.kinds import StopReason
from orchestrator.strategies.base import Outcome, StrategyContext


def solve(ctx: StrategyContext) -> Outcome:
    """Run a single chain; its stop reason and best answer are the outcome."""
    run = ctx.run_chain(0)
    return Outcome(answer=run.final, stop_reason=run.stop_reason or StopReason.ERROR, runs=[run], error=run.error)
