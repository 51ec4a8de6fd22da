"""Verifiers for `best-of-n`: the model as judge, or a program that checks the answer in the sandbox.

Each makes one extra call per distinct answer (phase `judge` or `check` in the ledger, so their cost shows
apart from the chains'), checked against the budget like every call. Their steps go to a trajectory of
their own (`judge.jsonl` / `check.jsonl` next to the samples). A judge is the model's opinion (a score in
[0, 1]); a check is evidence: the model writes code that recomputes the answer and our sandbox runs it.
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator import parsing
from orchestrator.errors import ConfigError
from orchestrator.kinds import StepKind, StopReason
from orchestrator.run import Candidate, Run
from orchestrator.strategies.base import StrategyContext
from orchestrator.trajectory import Step, Trajectory

METHODS = ("reward", "judge", "check")
_LAST_BOOL = re.compile(r"\b(True|False)\b")


def solution_text(run: Run, candidate: Candidate, limit: int = 4000) -> str:
    """The think steps of the attempt that produced `candidate` (the tail, if long)."""
    steps = run.trajectory.steps
    text = "\n\n".join(
        s.text for s in steps if s.kind == StepKind.THINK and s.attempt == candidate.attempt and not s.abandoned
    )
    return text[-limit:] if text else f"Final answer: {candidate.answer}"


class Scorer:
    """Scores answers with extra calls (`judge` or `check`); `runs()` gives the record to keep."""

    def __init__(self, ctx: StrategyContext, method: str) -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown scorer {method!r}; choose from {', '.join(METHODS)}")
        self.ctx, self.method = ctx, method
        self.sandbox: Any = None
        saved = ctx.trajectory_dir is not None and method != "reward"
        path = ctx.trajectory_dir / f"{method}.jsonl" if saved and ctx.trajectory_dir else None
        self.record = Run(
            question=ctx.question, kind=ctx.kind, model=ctx.model, config=ctx.config, ledger=ctx.ledger,
            trajectory=Trajectory(path, {**ctx.header, "role": method}), budget=ctx.budget,
            on_event=ctx.on_event,
        )

    def _scratch(self) -> Run:
        """A run with no steps: its prompt is the system prompt, the question and one instruction."""
        c = self.ctx
        return Run(question=c.question, kind=c.kind, model=c.model, config=c.config,
                   trajectory=Trajectory(None, {}), ledger=c.ledger, budget=c.budget, on_event=c.on_event,
                   stream_tokens=c.streams)

    def judge(self, run: Run, candidate: Candidate) -> float | None:
        """The model's 0-1 score for `candidate` given the chain that reached it (None if unreadable)."""
        solution = solution_text(run, candidate)
        instruction = self.record.render("judge", solution=solution, answer=candidate.answer)
        text, call = self._scratch().ask(instruction, "judge", max_tokens=256)
        score = parsing.parse_reward(text)
        self.record.add(Step(kind=StepKind.JUDGE, text=text.strip(), instruction=instruction, calls=[call],
                             reward=score, answer=candidate.answer, normalized=candidate.normalized))
        return score

    def check(self, candidate: Candidate) -> bool | None:
        """Run model-written code that recomputes the answer: True/False as printed, None if it failed."""
        from orchestrator.tools.python_tool import extract_code_blocks

        instruction = self.record.render("check", answer=candidate.answer)
        text, call = self._scratch().ask(instruction, "check", max_tokens=512)
        blocks = extract_code_blocks(text)
        step = Step(kind=StepKind.CHECK, text=text.strip(), instruction=instruction, calls=[call],
                    answer=candidate.answer, normalized=candidate.normalized)
        if blocks and self.ctx.make_sandbox is not None:
            if self.sandbox is None:
                self.sandbox = self.ctx.make_sandbox()
            result = self.sandbox.run(blocks[0])
            self.ctx.ledger.record_tool(result.duration, "check")
            step.code, step.observation, step.error = blocks[0], result.to_observation(2000), result.error
            printed = _LAST_BOOL.findall(result.stdout or "")
            if result.error is None and printed:
                step.verdict = printed[-1] == "True"
        self.record.add(step)
        return step.verdict

    def runs(self) -> list[Run]:
        """Close the sandbox and the record; the record (as a list, empty when nothing was scored)."""
        if self.sandbox is not None:
            self.sandbox.close()
        if self.method == "reward":
            return []
        self.record.stop(StopReason.SCORED)
        self.record.finish()
        return [self.record]
