"""`plain`: the baseline, the question as the only message (no system prompt, plan or reflection).

`answer_once` is also how `vote:sampler=plain` draws its samples: the bare question at the sampling
temperature, one call each, read by the same parser. `answer_many` draws several such samples as one request
with `n` where the model can (`draws_together`: vLLM, SGLang, OpenAI), each still its own run and trajectory.
"""

from __future__ import annotations

from typing import Any

from orchestrator.answers import extract_answer
from orchestrator.config import ReasonConfig
from orchestrator.errors import ContextLengthExceeded, ProviderError
from orchestrator.kinds import StepKind, StopReason
from orchestrator.ledger import call_bound
from orchestrator.lifecycle import lifecycle
from orchestrator.models.base import ChatModel, Completion, Message
from orchestrator.run import Candidate, Run, Token, sample_seed
from orchestrator.strategies.base import Outcome, StrategyContext
from orchestrator.trajectory import Call, Step


def _plain_run(ctx: StrategyContext, sample: int, config: ReasonConfig) -> Run:
    """The run of plain sample `sample`, its trajectory opened."""
    return Run(question=ctx.question, kind=ctx.kind, model=ctx.model, config=config,
               trajectory=ctx.trajectory(sample, ctx.sample_header(config, "plain")), ledger=ctx.ledger,
               budget=ctx.budget, on_event=ctx.on_event, sample=sample)


def _seed(config: ReasonConfig, sample: int) -> int | None:
    return sample_seed(config.seed, sample)


def _answered(ctx: StrategyContext, run: Run, messages: list[Message], c: Completion) -> None:
    """Record completion `c` as the run's one step and read its answer; the run stops."""
    call = Call.from_completion(messages, c)
    step = run.add(Step(kind=StepKind.THINK, text=c.text.strip(), calls=[call]))
    found = extract_answer(c.text, ctx.kind, strict=c.finish_reason == "length")  # cut off: stated only
    if found is not None:
        step.answer, step.normalized = found.text, found.normalized
        run.candidates.append(Candidate(found.text, found.normalized, None, None, 0))
    run.stop(StopReason.ANSWERED if found is not None else StopReason.NO_ANSWER)


def answer_once(ctx: StrategyContext, sample: int = 0, **overrides: Any) -> Run:
    """One call with the question as the only message, as a finished run (its trajectory: sample `sample`).
    Config fields may be overridden (a vote's temperature); sample i is seeded `seed + 1000 * i`, as a
    chain's first call is."""
    config = ctx.config.model_copy(update=overrides) if overrides else ctx.config
    run = _plain_run(ctx, sample, config)
    with lifecycle(run):
        messages: list[Message] = [{"role": "user", "content": ctx.question}]
        on_token = (lambda t: run.emit("token", Token(t, sample, "think"))) if ctx.streams else None
        bound = call_bound(ctx.model, messages, config.max_tokens_per_call)
        with ctx.ledger.reserve(ctx.budget, phase="think", bound=bound):
            run.emit("call", Token("think", sample, "think"))
            try:
                c = ctx.model.complete(messages, sample_index=sample, max_tokens=config.max_tokens_per_call,
                                       temperature=config.temperature, seed=_seed(config, sample),
                                       on_token=on_token)
            finally:
                run.emit("called", Token("think", sample, "think"))
            ctx.ledger.record(c, "think")
        _answered(ctx, run, messages, c)
    return run


def draws_together(model: ChatModel) -> bool:
    """Whether `model` draws several samples of one prompt in one request (`n`: `OpenAIModel.supports_n`)."""
    return bool(getattr(model, "supports_n", False))


class WaveFailed(Exception):
    """The one request of samples drawn together failed with `error`; `drawn`: the samples it was for (those
    the budget admitted; the others of the wave were never asked for)."""

    def __init__(self, error: ProviderError, drawn: list[int]) -> None:
        super().__init__(str(error))
        self.error, self.drawn = error, drawn


def answer_many(ctx: StrategyContext, samples: list[int], **overrides: Any) -> list[Run]:
    """`answer_once` for each of `samples`, drawn together by `ChatModel.sample` (one request with `n` where
    the model takes it; the seed of the first sample seeds it). Each sample is its own run with its own
    trajectory, read as `answer_once` reads it. The budget admits as many as it has room for, each checked
    as a separate call would be (`Ledger.reserve(clip=True)`); the runs of those admitted come back, in the
    order of `samples` (the rest are not drawn: the caller may ask for them again). When none is, the first
    sample's run comes back stopped `budget_<resource>`, as `answer_once`'s would. Each run ends as any chain
    does (`lifecycle`)."""
    config = ctx.config.model_copy(update=overrides) if overrides else ctx.config
    messages: list[Message] = [{"role": "user", "content": ctx.question}]
    bound = call_bound(ctx.model, messages, config.max_tokens_per_call, calls=len(samples))
    runs = [_plain_run(ctx, samples[0], config)]  # drawn, or the record of a budget that admits none
    try:
        _draw(ctx, runs, samples, messages, bound, config)
    except ContextLengthExceeded:
        raise
    except ProviderError as e:  # each run is stopped 'error' and closed: say which samples it was for
        raise WaveFailed(e, [run.sample for run in runs]) from e
    return runs


def _draw(ctx: StrategyContext, runs: list[Run], samples: list[int], messages: list[Message], bound: Any,
          config: ReasonConfig) -> None:
    with lifecycle(runs):
        with ctx.ledger.reserve(ctx.budget, calls=len(samples), phase="think", bound=bound, clip=True) as k:
            runs += [_plain_run(ctx, s, config) for s in samples[1:k]]
            for run in runs:
                run.emit("call", Token("think", run.sample, "think"))
            seeds: list[Any] = [_seed(config, s) for s in samples[:k]]
            try:
                drawn = ctx.model.sample(messages, seeds, max_tokens=config.max_tokens_per_call,
                                         temperature=config.temperature)
            finally:
                for run in runs:
                    run.emit("called", Token("think", run.sample, "think"))
            for c in drawn:
                ctx.ledger.record(c, "think")
        for run, c in zip(runs, drawn, strict=True):
            if ctx.streams:  # drawn together, not streamed: the whole text at once
                run.emit("token", Token(c.text, run.sample, "think"))
            _answered(ctx, run, messages, c)


def solve(ctx: StrategyContext) -> Outcome:
    """One call; the answer is read from it with the same lenient parser every strategy uses."""
    run = answer_once(ctx)
    return Outcome(answer=run.final, stop_reason=run.stop_reason or StopReason.ERROR, runs=[run], error=run.error)
