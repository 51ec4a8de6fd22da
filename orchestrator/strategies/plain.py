"""`plain`: the baseline, the question as the only message (no system prompt, plan or reflection)."""

from __future__ import annotations

from orchestrator.answers import extract_answer
from orchestrator.errors import BudgetExceeded
from orchestrator.run import Candidate, Run
from orchestrator.strategies.base import Outcome, StrategyContext
from orchestrator.trajectory import Call, Step


def solve(ctx: StrategyContext) -> Outcome:
    """One call; the answer is read from it with the same lenient parser every strategy uses."""
    run = Run(question=ctx.question, kind=ctx.kind, model=ctx.model, config=ctx.config,
              trajectory=ctx.trajectory(0), ledger=ctx.ledger, budget=ctx.budget, on_event=ctx.on_event)
    try:
        messages = [{"role": "user", "content": ctx.question}]
        with ctx.ledger.reserve(ctx.budget, phase="think"):
            c = ctx.model.complete(messages, max_tokens=ctx.config.max_tokens_per_call,
                                   temperature=ctx.config.temperature, seed=ctx.config.seed)
            ctx.ledger.record(c, "think")
        call = Call.from_completion(messages, c)
        step = run.add(Step(kind="think", text=c.text.strip(), calls=[call]))
        found = extract_answer(c.text, ctx.kind)
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
    return Outcome(answer=run.final, stop_reason=run.stop_reason or "error", runs=[run], error=run.error)
