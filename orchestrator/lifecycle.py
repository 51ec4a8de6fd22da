"""How a chain ends when its model calls raise: one mapping from exceptions to stop reasons.

Every driver of a `Run` (the state machine, `plain`'s calls, one or several drawn together, `crosscheck`'s
programs, `beam`'s tree; `beam`'s nodes ask `stop_reason`) runs its calls inside `lifecycle(run)`, so each way
of ending reads the same in every trajectory's `end` record:

- `BudgetExceeded`: the chain stops `budget_<resource>` with the best answer it has; nothing is raised;
- `ContextLengthExceeded` once the chain has steps: it outgrew the window and stops `context_length`, like a
  budget stop (one runaway sample does not end a vote); on its first call (the question alone does not fit)
  it is an error, and raised;
- `KeyboardInterrupt` (Ctrl-C, a cancel): `interrupted`, raised;
- anything else (a provider that failed, a malformed response after its retries, a bug): `error`, raised.

The trajectory is closed (`Run.finish`) whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.errors import BudgetExceeded, ContextLengthExceeded
from orchestrator.kinds import StopReason, budget_stop
from orchestrator.run import Run


def describe(error: BaseException) -> str:
    """An error as the `error` field of a stopped chain: its type and message."""
    return f"{type(error).__name__}: {error}"


def stop_reason(run: Run, error: BaseException) -> StopReason | None:
    """The stop reason with which `error` ends `run` quietly, or None when it must be raised (the solve
    cannot go on: an interrupt, a provider error, a first call that does not fit, a bug)."""
    if isinstance(error, BudgetExceeded):
        return budget_stop(error.reason)
    if isinstance(error, ContextLengthExceeded) and run.trajectory.steps:
        return StopReason.CONTEXT_LENGTH
    return None


@contextmanager
def lifecycle(runs: Run | list[Run]) -> Iterator[None]:
    """Run the block as the model calls of `runs` (one run, or the runs of samples drawn together, a list the
    block may still add to): map what it raises to each run's stop reason (see the module), raise what must
    be raised, and close every trajectory in every case."""
    try:
        yield
    except BaseException as e:
        every = runs if isinstance(runs, list) else [runs]
        reasons = [stop_reason(run, e) for run in every]
        interrupted = isinstance(e, KeyboardInterrupt)
        for run, reason in zip(every, reasons, strict=True):
            if reason is not None:
                run.stop(reason, str(e))
            elif interrupted:
                run.stop(StopReason.INTERRUPTED)
            else:
                run.stop(StopReason.ERROR, describe(e))
        if None in reasons:
            raise
    finally:
        for run in runs if isinstance(runs, list) else [runs]:
            run.finish()
