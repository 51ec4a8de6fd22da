"""`plain`: the baseline, the question as the only message (no system prompt, plan or reflection).

`answer_once` is also how `vote:sampler=plain` draws its samples: the bare question at the sampling
temperature, one call each, read by the same parser.
"""

from __future__ import annotations

from typing import Any

from orchestrator.answers import extract_answer
from orchestrator.errors import BudgetExceeded
from orchestrator.ledger import call_bound
from orchestrator.run import Candidate, Run, Token
from orchestrator.strategies.base import Outcome, StrategyContext
from orchestrator.trajectory import Call, Step


def answer_once(ctx: StrategyContext, sample: int = 0, **overrides: Any) -> Run:
    """One call with the question as the only message, as a finished run (its trajectory: sample `sample`).
    Config fields may be overridden (a vote's temperature); sample i is seeded `seed + 1000 * i`, as a
    chain's first call is."""
    config = ctx.config.model_copy(update=overrides) if overrides else ctx.config
    run = Run(question=ctx.question, kind=ctx.kind, model=ctx.model, config=config,
              trajectory=ctx.trajectory(sample, ctx.sample_header(config, "plain")), ledger=ctx.ledger,
              budget=ctx.budget, on_event=ctx.on_event, sample=sample)
    try:
        messages = [{"role": "user", "content": ctx.question}]
        seed = None if config.seed is None else config.seed + 1000 * sample
        on_token = (lambda t: run.emit("token", Token(t, sample, "think"))) if ctx.streams else None
        bound = call_bound(ctx.model, messages, config.max_tokens_per_call)
        with ctx.ledger.reserve(ctx.budget, phase="think", bound=bound):
            run.emit("call", Token("think", sample, "think"))
            try:
                c = ctx.model.complete(messages, sample_index=sample, max_tokens=config.max_tokens_per_call,
                                       temperature=config.temperature, seed=seed, on_token=on_token)
            finally:
                run.emit("called", Token("think", sample, "think"))
            ctx.ledger.record(c, "think")
        call = Call.from_completion(messages, c)
        step = run.add(Step(kind="think", text=c.text.strip(), calls=[call]))
        found = extract_answer(c.text, ctx.kind, strict=c.finish_reason == "length")  # cut off: stated only
        if found is not None:
            step.answer, step.normalized = found.text, found.normalized
            run.candidates.append(Candidate(found.text, found.normalized, None, None, 0))
        run.stop("answered" if found is not None else "no_answer")
    except BudgetExceeded as e:
        run.stop(f"budget_{e.reason}", str(e))
    except KeyboardInterrupt:
        run.stop("interrupted")
        raise
    finally:
        run.finish()
    return run


def solve(ctx: StrategyContext) -> Outcome:
    """One call; the answer is read from it with the same lenient parser every strategy uses."""
    run = answer_once(ctx)
    return Outcome(answer=run.final, stop_reason=run.stop_reason or "error", runs=[run], error=run.error)
