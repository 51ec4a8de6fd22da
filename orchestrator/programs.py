"""A program as an answer: run the model's code in the sandbox and read the last line it printed.

Program-aided reasoning (PAL, Gao et al. 2022; Program of Thoughts, Chen et al. 2022): the model writes the
computation, our sandbox runs it, and our code reads the result. `crosscheck` solves with such programs and
the `verify` state checks an answer with one; both read the answer the same way, here.
"""

from __future__ import annotations

from orchestrator.answers import Answer, extract_answer
from orchestrator.run import Run
from orchestrator.trajectory import Step


def run_program(run: Run, step: Step, reply: str, phase: str) -> Answer | None:
    """Run the first ```python block of `reply` in `run`'s sandbox as `step`'s program and read the last
    line it printed as an answer. The step records the code, what the program printed (or its error) and how
    long it ran; the sandbox time is charged to `phase`. None when the reply has no code block (then
    `step.code` stays None), or the program failed (`step.error` says how) or printed no answer."""
    from orchestrator.tools.python_tool import extract_code_blocks

    blocks = extract_code_blocks(reply)
    if not blocks:
        return None
    result = run.sandbox.run(blocks[0])
    run.ledger.record_tool(result.duration, phase)
    step.code, step.observation, step.error = blocks[0], result.to_observation(2000), result.error
    step.seconds = result.duration
    lines = [line for line in (result.stdout or "").splitlines() if line.strip()]
    return extract_answer(lines[-1], run.kind) if lines and result.error is None else None
