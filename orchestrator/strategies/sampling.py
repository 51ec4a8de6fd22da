"""Running independent chains under a budget: launch while it is affordable, decide as results arrive.

Before each new sample we project its cost from the samples this loop has finished (what the ledger grew by
since the loop began / samples finished; before the first finishes, the caller's estimate, else the mean of
the samples already paid for) and do not launch it if it, together with the samples still running, would
overrun any limit. Inside a sample every call is checked again (`Run.ask`, counting calls in flight in other
chains), so the budget is overrun by at most one call's worth. The projection errs high (running samples'
partial costs count twice). Samples run at most `ctx.parallel` at a time: one for an in-process model without
slots (then in this thread), else a rolling pool in which a finished sample is decided on before the next one
is launched. A strategy whose stopping rule could end the sampling early also bounds how many run at once
(`wanted`): `vote` launches only the samples its rule needs whatever they answer, so parallel sampling spends
no sample a one-at-a-time run would not have.

A sample the provider fails (a reply still malformed after its retries, a refused request) is recorded as a
failed run (`stop_reason` 'error', no answer) and the others decide; only when every sample failed is the
error raised. On Ctrl-C (or a cancel) no sample is launched, the ones in flight are cancelled (their calls
are given up at once: `limits.bounded`) and end `interrupted`, and the interrupt propagates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import ContextLengthExceeded, ProviderError
from orchestrator.kinds import StopReason, budget_stop, is_budget
from orchestrator.lifecycle import describe
from orchestrator.run import Run
from orchestrator.strategies.base import StrategyContext
from orchestrator.strategies.plain import WaveFailed
from orchestrator.trajectory import Trajectory

Decide = Callable[[Run], "StopReason | None"]


@dataclass
class Sampled:
    """The chains a sampling loop ran (in the order they finished) and why it stopped launching."""

    runs: list[Run] = field(default_factory=list)
    stop_reason: StopReason = StopReason.LIMIT
    errors: list[ProviderError] = field(default_factory=list)  # of the samples the provider failed


def failed_run(ctx: StrategyContext, index: int, error: ProviderError, **overrides: Any) -> Run:
    """The record of sample `index` that the provider failed: no steps, no answer, stop reason 'error' (its
    own trajectory file was closed with the error when the chain stopped)."""
    config = ctx.config.model_copy(update=overrides) if overrides else ctx.config
    run = Run(question=ctx.question, kind=ctx.kind, model=ctx.model, config=config,
              trajectory=Trajectory(None, {"sample": index}), ledger=ctx.ledger, budget=ctx.budget, sample=index)
    run.stop(StopReason.ERROR, describe(error))
    run.finish()
    return run


def per_sample(ctx: StrategyContext, done: int, first_calls: float = 1.0) -> dict[str, float]:
    """Projected cost of one sample: ledger totals / finished samples (calls, tokens, usd, seconds)."""
    nxt = ctx.budget.next_call(ctx.ledger)
    t = ctx.ledger.totals()
    calls = t.calls / done if done and t.calls else first_calls
    return {
        "calls": calls,
        "tokens": t.total_tokens / done if done and t.calls else calls * nxt["tokens"],
        "usd": t.cost_usd / done if done and t.calls else calls * nxt["usd"],
        "seconds": calls * nxt["seconds"],  # one sample's calls run one after another
    }


class Projection:
    """One more sample's projected cost in a sampling loop (calls, tokens, usd, seconds).

    The mean of the samples the loop has finished: what the ledger grew by since the loop began, over their
    number (samples still running add their partial cost, so it errs high). Before any has finished:
    `estimate`, when the caller has one (`auto` escalating to cheap vote samples after a full chain: the
    part of that chain a sample repeats), else the mean of the `done` samples already paid for, else
    `first_calls` calls at the next call's price. A loop's own samples are what it projects from: a vote
    sample after a full chain costs a fraction of that chain."""

    def __init__(self, ctx: StrategyContext, done: int = 0, first_calls: float = 1.0,
                 estimate: dict[str, float] | None = None) -> None:
        self.ctx, self.done, self.first_calls, self.estimate = ctx, done, first_calls, estimate
        self.start = ctx.ledger.totals()
        self.finished = 0

    def cost(self) -> dict[str, float]:
        """The projected cost of one more sample."""
        if not self.finished:
            return dict(self.estimate) if self.estimate else per_sample(self.ctx, self.done, self.first_calls)
        t, k = self.ctx.ledger.totals(), self.finished
        calls = (t.calls - self.start.calls) / k
        return {"calls": calls, "tokens": (t.total_tokens - self.start.total_tokens) / k,
                "usd": (t.cost_usd - self.start.cost_usd) / k,
                "seconds": calls * self.ctx.budget.next_call(self.ctx.ledger)["seconds"]}


def blocked(ctx: StrategyContext, cost: dict[str, float], running: int = 0) -> str | None:
    """The resource that one more sample costing `cost` (with `running` still in flight) is projected to
    overrun, or None."""
    t, b = ctx.ledger.totals(), ctx.budget
    k = running + 1
    if b.max_calls is not None and t.calls + math.ceil(k * cost["calls"]) > b.max_calls:
        return "calls"
    if b.max_tokens is not None and t.total_tokens + k * cost["tokens"] > b.max_tokens:
        return "tokens"
    if b.max_usd is not None and t.cost_usd + k * cost["usd"] > b.max_usd:
        return "usd"
    if b.max_seconds is not None and ctx.ledger.elapsed + cost["seconds"] > b.max_seconds:
        return "seconds"
    return None


def affordable(ctx: StrategyContext, cost: dict[str, float]) -> int | None:
    """How many more samples costing `cost` each the budget is projected to pay for (None: unlimited)."""
    left = ctx.budget.remaining(ctx.ledger)
    counts = [
        math.floor(have / cost[key]) if cost[key] > 0 else None
        for r, key in (("calls", "calls"), ("tokens", "tokens"), ("usd", "usd"), ("seconds", "seconds"))
        if (have := left[r]) is not None
    ]
    whole = [max(0, c) for c in counts if c is not None]
    return min(whole) if whole else None


def run_samples(
    ctx: StrategyContext, indices: list[int], decide: Decide, projection: Projection,
    wanted: Callable[[], int] | None = None, per_index: dict[int, dict[str, Any]] | None = None,
    runner: Callable[..., Run] | None = None, batch: Callable[..., list[Run]] | None = None,
    **overrides: Any,
) -> Sampled:
    """Run chains `indices` (config `overrides`, then `per_index[i]` for chain i) until `decide` names a stop
    reason, the budget would be overrun, or all have run ('limit'). `projection`: the loop's cost projection,
    made by the caller before the loop (its `decide` may project too); each finished sample is counted in it
    here. `wanted()`: how many samples to have in flight now (asked before each launch; at least one runs).
    `runner(index, **overrides)` draws one sample (default: a chain of the state machine, `ctx.run_chain`).
    `batch(indices, **overrides)` draws a wave of samples together (one request with `n`: `plain.answer_many`)
    and returns the runs of those the budget admitted (the rest go back to the queue); with it, each launch
    is one wave of as many samples as `wanted()` asks for and the budget is projected to pay for, and a wave
    counts as one of the `ctx.parallel` requests in flight (`per_index` does not apply)."""
    out = Sampled()
    queue = list(indices)
    draw = runner or ctx.run_chain

    def chain(index: int) -> Run:
        options = {**overrides, **(per_index or {}).get(index, {})}
        try:
            return draw(index, **options)
        except ContextLengthExceeded:
            raise  # the question alone does not fit: every sample would fail alike
        except ProviderError as e:  # this sample failed; the others may still answer
            out.errors.append(e)
            return failed_run(ctx, index, e, **options)

    def wave(group: list[int]) -> list[Run]:
        if batch is None:
            return [chain(group[0])]
        try:
            runs = batch(group, **overrides)
        except ContextLengthExceeded:
            raise
        except WaveFailed as e:  # the request failed: the samples it was for failed with it; the rest go back
            out.errors += [e.error] * len(e.drawn)
            return [failed_run(ctx, index, e.error, **overrides) for index in e.drawn]
        except ProviderError as e:  # failed before it knew what the budget admitted: all of the wave failed
            out.errors += [e] * len(group)
            return [failed_run(ctx, index, e, **overrides) for index in group]
        return runs

    def landed(group: list[int], runs: list[Run]) -> list[Run]:
        """The runs of a wave, in sample order; the samples the budget did not admit go back to the queue."""
        drawn = {r.sample for r in runs}
        queue[:0] = [index for index in group if index not in drawn]
        return sorted(runs, key=lambda r: r.sample)

    def settle(run: Run) -> StopReason | None:
        out.runs.append(run)
        projection.finished += 1
        found = decide(run)  # every finished chain is decided on, a budget-stopped one included
        if found is None and is_budget(run.stop_reason):
            return run.stop_reason
        return found

    def stop_launching(running: int) -> StopReason | None:
        resource = blocked(ctx, projection.cost(), running)
        return budget_stop(resource) if resource else None

    def room() -> int:
        return min(ctx.parallel, max(1, wanted())) if wanted else ctx.parallel

    pending: dict[Future[list[Run]], list[int]] = {}  # waves in flight, each its samples

    def running() -> int:
        return sum(len(group) for group in pending.values())

    def size() -> int:
        """The next wave's samples: as many as are wanted and the budget is projected to pay for (one
        without `batch`)."""
        if batch is None:
            return 1
        take = max(1, (wanted() if wanted else len(queue)) - running())
        paid = affordable(ctx, projection.cost())
        return min(take, len(queue), max(1, paid - running()) if paid is not None else take)

    reason: StopReason | None = None
    if ctx.parallel == 1:
        while queue and out.stop_reason == StopReason.LIMIT:
            if (reason := stop_launching(0)) is not None:
                out.stop_reason = reason
                break
            group = queue[:size()]
            del queue[:len(group)]
            for run in landed(group, wave(group)):  # a wave's samples are all decided on: they were drawn
                if (reason := settle(run)) is not None and out.stop_reason == StopReason.LIMIT:
                    out.stop_reason = reason
        return _checked(out)

    with ThreadPoolExecutor(max_workers=ctx.parallel) as pool:
        try:
            while True:
                while reason is None and queue and (len(pending) if batch else running()) < room():
                    if batch is not None and wanted is not None and pending and running() >= wanted():
                        break  # the wave in flight is all the rule can use
                    if (short := stop_launching(running())) is not None:
                        reason = None if pending else short  # with samples in flight, decide again when they end
                        break
                    group = queue[:size()]
                    del queue[:len(group)]
                    pending[pool.submit(wave, group)] = group
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: pending[f][0]):
                    for run in landed(pending.pop(future), future.result()):
                        found = settle(run)
                        reason = reason or found
        except BaseException:
            # Ctrl-C here, or a sample's error: the samples in flight are given up (their next call or wait
            # raises `Cancelled`), so leaving this block does not wait for their calls to end.
            if ctx.ledger.cancel is not None:
                ctx.ledger.cancel.set()
            raise
    out.stop_reason = reason or StopReason.LIMIT
    return _checked(out)


def _checked(out: Sampled) -> Sampled:
    """`out`, unless every sample it ran failed: then the first failure is the error."""
    if out.errors and len(out.errors) == len(out.runs):
        raise out.errors[0]
    return out


def run_tokens(run: Run) -> int:
    """Tokens one chain spent (its steps' calls; a cache hit counts zero)."""
    return sum(step.tokens for step in run.trajectory.steps)
