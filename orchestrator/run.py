"""The context of one reasoning run: counters the machine reads, the model call, the next prompt.

The next prompt is a pure function of the trajectory: the system prompt, the question with the lessons so
far, then for every live step of the current attempt its instruction (a user turn) and the model's reply (an
assistant turn). Messages only grow within an attempt, so a local model reuses its KV cache for the prefix.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.config import ReasonConfig
from orchestrator.kinds import StepKind, StopReason
from orchestrator.ledger import Budget, Ledger, call_bound
from orchestrator.models.base import ChatModel, Message
from orchestrator.prompting import render
from orchestrator.tools.python_tool import PYTHON_TOOL
from orchestrator.trajectory import Call, Step, Trajectory

# ("call", Token) as a model call starts (its text: the phase), ("called", Token) when it returns or fails,
# ("token", Token) for each streamed piece, ("step", Step), ("stop", Run) as a chain ends
EventHandler = Callable[[str, Any], None]


class Token(str):
    """A piece of text (a `str`) from one chain: which `sample` wrote it, in which `phase` (think, reflect...)."""

    sample: int
    phase: str

    def __new__(cls, text: str, sample: int = 0, phase: str = "think") -> Token:
        token = super().__new__(cls, text)
        token.sample, token.phase = sample, phase
        return token


@dataclass
class Candidate:
    """A final answer an attempt arrived at, with the evidence for it."""

    answer: str
    normalized: str
    reward: float | None
    verified: bool | None
    attempt: int


def sample_seed(seed: int | None, sample: int, offset: int = 0) -> int | None:
    """The one per-sample seed rule: sample `sample` of a run seeded `seed` draws with `seed + 1000 * sample`,
    plus `offset` (a chain's attempt; a re-solve's draws); None when the run is unseeded."""
    return None if seed is None else seed + 1000 * sample + offset


@dataclass
class Run:
    """Everything the state functions read and update during one run."""

    question: str
    kind: str
    model: ChatModel
    config: ReasonConfig
    trajectory: Trajectory
    ledger: Ledger = field(default_factory=Ledger)
    budget: Budget = field(default_factory=Budget)
    sandbox: Any = None
    on_event: EventHandler | None = None
    stream_tokens: bool = False
    sample: int = 0  # index of this chain among a strategy's samples (varies the seed)

    attempt: int = 0
    lessons: list[str] = field(default_factory=list)
    steps_left: int = 0
    extra_steps_granted: int = 0
    thinks_since_reflect: int = 0
    backtracks: int = 0
    adjusts: int = 0  # middling rewards on proposed answers in this attempt
    format_errors: int = 0
    retrying: bool = False
    advice: str | None = None
    backtracked: bool = False
    pending: Step | None = None  # the think step that proposed the answer under review
    candidates: list[Candidate] = field(default_factory=list)
    final: Candidate | None = None
    stop_reason: StopReason | None = None
    error: str | None = None
    transitions: int = 0
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.steps_left = self.config.max_steps
        self.ledger.runs.append(self)
        # A hard cap on loop iterations, whatever the model does: every think spends at least one step.
        self.max_transitions = 8 * (self.config.max_steps + self.config.max_extra_steps) * self.config.max_attempts

    # --- derived ----------------------------------------------------------------------------
    @property
    def can_verify(self) -> bool:
        return self.kind in ("math", "choice", "code", "game24")

    @property
    def verification(self) -> str:
        """How the verify state checks an answer: 'program' (solved again as code in the sandbox, math with
        tools), 'resolve' (solved again from the bare question) or 'judge' (the model reviews its own chain).
        The first two are independent of the chain; a judge's verdict is the model's opinion of its own work."""
        how = self.config.verify_by
        if how in ("auto", "program") and self.sandbox is not None and self.kind == "math":
            return "program"
        return "resolve" if how == "resolve" else "judge"

    @property
    def native_tools(self) -> bool:
        """Whether the interpreter is offered through the provider's tool calling (else: fenced code)."""
        return self.sandbox is not None and self.config.native_tools and bool(self.model.supports_tools)

    @property
    def live_steps(self) -> list[Step]:
        return [s for s in self.trajectory.steps if s.attempt == self.attempt and not s.abandoned]

    def temperature(self) -> float | None:
        if self.format_errors:  # the same prompt at the same temperature would repeat the same mistake
            return self.config.retry_temperature
        if self.attempt == 0 and self.sample == 0:
            return self.config.temperature
        return self.config.retry_temperature

    # --- prompts and calls ------------------------------------------------------------------
    def render(self, name: str, **variables: Any) -> str:
        return render(name, self.config.prompts_dir, **variables)

    def messages(self, instruction: str, fresh: bool = False) -> list[Message]:
        """The prompt for the next call: built from the trajectory alone. `fresh`: the system prompt and the
        bare question with `instruction`, none of the chain (for a check that must not copy the chain)."""
        system = self.render("system", tools=self.sandbox is not None, native=self.native_tools,
                             custom_system=self.config.system)
        messages: list[Message] = [{"role": "system", "content": system}]
        if fresh:
            question = self.render("question", question=self.question, lessons=[])
            return [*messages, {"role": "user", "content": f"{question}\n\n{instruction}"}]
        user = self.render("question", question=self.question, lessons=self.lessons)
        for step in self.live_steps:
            if step.kind == StepKind.FORMAT_ERROR:
                continue  # kept in the trajectory; its complaint opens the next instruction instead
            if step.calls and not step.instruction:
                continue  # its calls were conversations of their own (independent re-solves)
            if step.instruction:
                user = f"{user}\n\n{step.instruction}" if user else step.instruction
            if step.calls:
                messages += [{"role": "user", "content": user}, _assistant(step)]
                user = ""
            if step.kind == StepKind.ACT and step.tool_call_id:  # the answer to a native call is a tool message
                messages.append({"role": "tool", "tool_call_id": step.tool_call_id, "content": step.observation})
        user = f"{user}\n\n{instruction}" if user else instruction
        messages.append({"role": "user", "content": user})
        return messages

    def ask(self, instruction: str, phase: str, max_tokens: int, fresh: bool = False,
            tools: bool = False) -> tuple[str, Call]:
        """One model call, checked against the budget first and recorded in the ledger. `tools`: offer the
        interpreter as a native tool (when the model has tool calling); its calls are in `Call.tool_calls`."""
        messages = self.messages(instruction, fresh)
        max_tokens = min(max_tokens, self.config.max_tokens_per_call)  # the cap holds for every call
        extra = {"tools": [PYTHON_TOOL]} if tools and self.native_tools else {}
        seed = sample_seed(self.config.seed, self.sample, self.attempt)
        on_token = (lambda t: self.emit("token", Token(t, self.sample, phase))) if self.stream_tokens else None
        # chains running at once count each other's calls in flight; a call is priced like its phase's
        with self.ledger.reserve(self.budget, phase=phase, bound=call_bound(self.model, messages, max_tokens)):
            self.emit("call", Token(phase, self.sample, phase))
            try:
                completion = self.model.complete(
                    messages, on_token=on_token, sample_index=self.sample, max_tokens=max_tokens,
                    temperature=self.temperature(), seed=seed, **extra,
                )
            finally:
                self.emit("called", Token(phase, self.sample, phase))
            self.ledger.record(completion, phase)
        call = Call.from_completion(messages, completion)
        return completion.text, call

    def ask_plain(self, n: int, phase: str, max_tokens: int) -> list[tuple[str, Call]]:
        """`n` independent answers to the bare question, asked as `plain` asks it (no system prompt, none of
        the chain), at the retry temperature with a seed each; drawn together where the model can (a remote
        model requests them at once, a local model decodes them in one batch). The budget is checked for all
        `n` before any is drawn."""
        messages: list[Message] = [{"role": "user", "content": self.question}]
        max_tokens = min(max_tokens, self.config.max_tokens_per_call)
        first = sample_seed(self.config.seed or 0, self.sample, 100 * self.attempt + 10)
        assert first is not None
        seeds = [first + i for i in range(n)]
        with self.ledger.reserve(self.budget, calls=n, phase=phase,
                                 bound=call_bound(self.model, messages, max_tokens, calls=n)):
            completions = self.model.sample(messages, seeds, max_tokens=max_tokens,
                                            temperature=self.config.retry_temperature)
            for completion in completions:
                self.ledger.record(completion, phase)
        return [(c.text, Call.from_completion(messages, c)) for c in completions]

    # --- bookkeeping ------------------------------------------------------------------------
    def emit(self, kind: str, payload: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, payload)

    def add(self, step: Step) -> Step:
        step.attempt = step.attempt if step.kind == StepKind.LESSON else self.attempt
        step.sample = self.sample
        self.format_errors = self.format_errors + 1 if step.kind == StepKind.FORMAT_ERROR else 0
        self.trajectory.append(step)
        self.emit("step", step)
        return step

    def best(self) -> Candidate | None:
        """The answer to return: verified first, then the most agreed-on, then one no check refuted, then the
        best rewarded. (A tie between an answer a program refuted twice and the program's own result, twice,
        goes to the program: its arithmetic ran, the model's was only rewarded by the model.)"""
        if not self.candidates:
            return None
        votes = Counter(c.normalized for c in self.candidates)
        return max(
            self.candidates,
            key=lambda c: (c.verified is True, votes[c.normalized], c.verified is not False, c.reward or 0.0,
                           -c.attempt),
        )

    def _salvage(self) -> None:
        """Stopped before any answer was proposed: take one from the latest think step, if it has one."""
        from orchestrator.answers import extract_answer

        for step in reversed(self.trajectory.steps):
            if step.kind == StepKind.THINK and not step.abandoned:
                # only an answer the step states, never its last number (a step label, an intermediate
                # result); a reply cut off at the length cap proposed nothing
                cut = bool(step.calls) and step.calls[-1].finish_reason == "length"
                found = None if cut else extract_answer(step.text, self.kind, strict=True)
                if found is not None:
                    self.candidates.append(Candidate(found.text, found.normalized, 0.0, None, step.attempt))
                return

    def stop(self, reason: StopReason, error: str | None = None) -> None:
        if self.stop_reason is None:
            self.stop_reason, self.error = reason, error

    def finish(self) -> None:
        """Settle the final answer (best so far on any stop) and close the trajectory."""
        if self.pending is not None and self.pending.answer is not None:
            self.candidates.append(Candidate(
                self.pending.answer, self.pending.normalized or self.pending.answer, self.pending.reward, None,
                self.attempt,
            ))
            self.pending = None
        if not self.candidates:
            self._salvage()
        if self.final is None:
            self.final = self.best()
        calls = [c for s in self.trajectory.steps for c in s.calls]
        usage = {  # this chain's own calls: the ledger may be shared with a strategy's other chains
            "prompt_tokens": sum(c.prompt_tokens for c in calls),
            "completion_tokens": sum(c.completion_tokens for c in calls),
            "cached_tokens": sum(c.cached_tokens for c in calls),
            "calls": len(calls),
            "cost_usd": sum(c.cost_usd for c in calls),
            "unpriced_calls": sum(c.cost_source == "unknown" for c in calls),
            "tool_seconds": sum(s.seconds for s in self.trajectory.steps if s.kind == StepKind.ACT),
        }
        self.trajectory.close({
            "stop_reason": self.stop_reason or StopReason.ERROR,
            "error": self.error,
            "answer": self.final.answer if self.final else None,
            "normalized": self.final.normalized if self.final else None,
            "usage": usage,
            "seconds": time.monotonic() - self.started,
        })
        self.emit("stop", self)


def _assistant(step: Step) -> Message:
    """The assistant turn of a step; a native tool call is sent back with it (the one we ran)."""
    if step.tool_call_id:
        call = next((c for c in step.calls[-1].tool_calls if c.get("id") == step.tool_call_id), None)
        if call is not None:
            return {"role": "assistant", "content": step.text or None, "tool_calls": [call]}
    return {"role": "assistant", "content": step.text}
