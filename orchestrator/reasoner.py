"""The public SDK: `Reasoner(model, strategy, budget, tools).solve(question) -> Result`."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.answers import guess_kind
from orchestrator.config import ReasonConfig
from orchestrator.errors import ConfigError, Interrupted, ReasonError, SolveFailed
from orchestrator.kinds import StopReason
from orchestrator.ledger import Budget, Ledger, Totals
from orchestrator.models import DEFAULT_MODEL, get_model
from orchestrator.models.base import CallOptions, ChatModel
from orchestrator.models.device import describe
from orchestrator.run import Candidate, EventHandler, Run
from orchestrator.strategies import DEFAULT_STRATEGY, Outcome, StrategyContext, get_strategy, stopping
from orchestrator.strategies.options import StrategyOptions, parse_options
from orchestrator.trajectory import Step, default_runs_dir

log = logging.getLogger("reason")
_SANDBOX_PROBES: dict[str, str | None] = {}
_lock = threading.Lock()


def sandbox_problem(kind: str) -> str | None:
    """Why the `kind` sandbox cannot run code here (None: it can), probed once per process by starting it."""
    with _lock:
        if kind not in _SANDBOX_PROBES:
            from orchestrator.tools import get_sandbox

            try:
                with get_sandbox(kind) as sandbox:
                    result = sandbox.run("print(6 * 7)")
                _SANDBOX_PROBES[kind] = None if result.stdout.strip() == "42" else (
                    f"a test program did not run ({result.error or result.exit_reason})")
            except (ReasonError, OSError) as e:  # a sandbox that cannot start, a missing dependency
                _SANDBOX_PROBES[kind] = str(e)
            if _SANDBOX_PROBES[kind] is not None:
                hint = " (install bubblewrap: `apt-get install bubblewrap`)" if kind == "local" else ""
                log.warning("reason: the %s code sandbox is unavailable: %s%s; answering without running code "
                            "(--no-tools silences this)", kind, _SANDBOX_PROBES[kind], hint)
        return _SANDBOX_PROBES[kind]

UNKNOWN_WINDOW_CHARS = 1_000_000  # the longest question sent to a model whose context window is unknown


@dataclass
class Result:
    """What a solve returns: the answer, how it was reached, what it cost, and where the trajectory is."""

    question: str
    answer: str | None
    normalized: str | None
    kind: str
    model: str
    strategy: str
    stop_reason: StopReason
    usage: Totals
    steps: list[Step]
    trajectory_path: str | None
    seconds: float
    samples_used: int = 1
    samples_allowed: int = 1
    phases: dict[str, Totals] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    verified: bool | None = None
    """True: independent evidence supports the answer (a program we ran, re-solves or samples that agree);
    False: a check refuted it; None: unverified (no check, a tie, or only the model's own review passed it)."""
    evidence: str | None = None
    """What the answer rests on, in words ('a program and a prose solution agree', '3 of 4 answers ...')."""

    def to_dict(self, calls: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (the CLI's `--json` output); `calls=True` keeps prompts and raw outputs."""
        usage = self.usage.to_dict()
        return {
            "question": self.question, "answer": self.answer, "normalized": self.normalized, "kind": self.kind,
            "model": self.model, "strategy": self.strategy, "stop_reason": self.stop_reason,
            "verified": self.verified, "evidence": self.evidence,
            "usage": {
                "prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
                "reasoning_tokens": usage["completion_tokens"], "cached_tokens": usage["cached_tokens"],
                "total_tokens": usage["total_tokens"], "calls": usage["calls"], "tool_calls": usage["tool_calls"],
                "cost_usd": round(usage["cost_usd"], 8), "seconds": round(self.seconds, 3),
                "cost_known": self.usage.cost_known,  # false: some call's model has no known price
            },
            "phases": {k: v.to_dict() for k, v in self.phases.items()},
            "samples": {"used": self.samples_used, "allowed": self.samples_allowed},
            "steps": [s.to_dict(calls=calls) for s in self.steps],
            "details": self.details, "error": self.error, "trajectory": self.trajectory_path,
        }


class Reasoner:
    """A reasoning front-end for one model and strategy. Thread-safe: `solve` may run concurrently."""

    def __init__(
        self,
        model: str | ChatModel = DEFAULT_MODEL,
        strategy: str = DEFAULT_STRATEGY,
        budget: Budget | None = None,
        config: ReasonConfig | None = None,
        *,
        tools: bool | None = None,
        sandbox: str | None = None,
        runs_dir: str | Path | None = None,
        save_trajectory: bool = True,
        cache: bool | str | Path = False,
        model_options: dict[str, Any] | None = None,
        strategy_options: dict[str, Any] | StrategyOptions | None = None,
        concurrency: int = 4,
        on_event: EventHandler | None = None,
        stream_tokens: bool = False,
    ) -> None:
        get_strategy(strategy)  # fail early on a bad name
        self.options = parse_options(strategy, strategy_options)  # a bad option fails before any call
        updates = {k: v for k, v in {"tools": tools, "sandbox": sandbox}.items() if v is not None}
        self.config = (config or ReasonConfig()).model_copy(update=updates)  # tools None: see `tools`
        self.strategy = strategy
        self.budget = budget or Budget()
        self.model = model if isinstance(model, ChatModel) else get_model(
            model, options=CallOptions(extra=dict(model_options or {}))
        )
        if cache:
            from orchestrator.models.cache import CachedModel
            from orchestrator.pypi_data import cache_dir

            folder = Path(cache) if isinstance(cache, (str, Path)) else cache_dir("completions")
            self.model = CachedModel(self.model, folder)
        self.runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
        self.save_trajectory = save_trajectory
        self.strategy_options = (strategy_options.model_dump(exclude_unset=True)  # as given, for the record
                                 if isinstance(strategy_options, StrategyOptions) else dict(strategy_options or {}))
        self.concurrency = concurrency
        self.on_event = on_event
        self.stream_tokens = stream_tokens

    @property
    def tools(self) -> bool:
        """Whether solves may run code: as configured, else (tools None) wherever the sandbox starts. That is
        probed the first time a solve needs to know, once per process (`sandbox_problem`: one notice when it
        cannot start), not when the `Reasoner` is made."""
        if self.config.tools is None:
            self.config = self.config.model_copy(update={"tools": sandbox_problem(self.config.sandbox) is None})
        return bool(self.config.tools)

    def _check_question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise ConfigError("the question is empty")
        question = question.strip()
        window = getattr(self.model, "context_window", None)
        if not window and len(question) > UNKNOWN_WINDOW_CHARS:  # sent as is, it would only come back refused
            raise ConfigError(
                f"the question is {len(question):,} characters; {self.model.name} has no known context window, "
                f"and questions longer than {UNKNOWN_WINDOW_CHARS:,} characters (about "
                f"{UNKNOWN_WINDOW_CHARS // 4:,} tokens) are refused for such a model. Shorten it.")
        if window:
            estimate = len(question) // 4  # English averages ~4 characters a token
            if estimate > window * 3 // 4:
                raise ConfigError(
                    f"the question is about {estimate} tokens; {self.model.name} has a {window}-token context"
                    " and needs room to reason. Shorten it or choose a model with a longer context."
                )
        return question

    def solve(self, question: str, on_event: EventHandler | None = None,
              cancel: threading.Event | None = None) -> Result:
        """Answer one question with the configured strategy and budget. Setting `cancel` (from another
        thread) gives the solve up: its calls in flight are abandoned and it raises `Interrupted` (a `Cancelled`)
        carrying the best answer so far; so does Ctrl-C. Every trajectory ends `interrupted`. Any other error
        is raised as it is (its trajectory is on disk, ended `error`)."""
        return self._solve(question, on_event, cancel, wrap=False)

    def attempt(self, question: str, on_event: EventHandler | None = None,
                cancel: threading.Event | None = None) -> Result:
        """As `solve`, but an error is raised as `SolveFailed`, which carries it with what the solve had spent
        and where its trajectory is (what `reason bench` records for a failed problem)."""
        return self._solve(question, on_event, cancel, wrap=True)

    def _solve(self, question: str, on_event: EventHandler | None, cancel: threading.Event | None,
               wrap: bool) -> Result:
        try:
            question = self._check_question(question)
        except ConfigError as e:
            if wrap:  # refused before anything was spent or saved
                raise SolveFailed(e, Totals(), None) from e
            raise
        kind = guess_kind(question) if self.config.kind == "auto" else self.config.kind
        make_sandbox = self._sandbox_factory()  # settles tools=None (a probe) before the config is recorded
        ledger = Ledger(cancel=cancel or threading.Event())  # an event even so: Ctrl-C sets it
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = self.runs_dir / f"{stamp}-{uuid.uuid4().hex[:8]}" if self.save_trajectory else None
        header = {
            "question": question, "kind": kind, "model": self.model.name, "strategy": self.strategy,
            "config": self.config.model_dump(), "budget": self.budget.to_dict(), **describe(self.model),
        }
        ctx = StrategyContext(
            question=question, kind=kind, model=self.model, config=self.config, budget=self.budget,
            ledger=ledger, header=header, trajectory_dir=folder, single_file=self.strategy in ("chain", "plain"),
            make_sandbox=make_sandbox, on_event=on_event or self.on_event,
            stream_tokens=self.stream_tokens, concurrency=self.concurrency, options=self.options,
        )
        start = time.monotonic()
        try:
            outcome = get_strategy(self.strategy)(ctx)
        except KeyboardInterrupt as e:
            assert ledger.cancel is not None
            ledger.cancel.set()  # nothing more starts, in any chain
            partial = self._partial(ctx, start)
            raise Interrupted(str(e) or "interrupted", partial) from None
        except Exception as e:
            if wrap:  # the trajectory is on disk whatever happened, and the ledger says what the solve spent
                raise SolveFailed(e, ledger.totals(), str(ctx.trajectory_path) if ctx.trajectory_path else None) from e
            raise
        steps = [s for run in outcome.runs for s in run.trajectory.steps]
        answer = outcome.answer
        verified, evidence = judge_evidence(outcome)
        result = Result(
            question=question, answer=answer.answer if answer else None,
            normalized=answer.normalized if answer else None, kind=kind, model=self.model.name,
            strategy=self.strategy, stop_reason=outcome.stop_reason, usage=ledger.totals(), steps=steps,
            trajectory_path=str(ctx.trajectory_path) if ctx.trajectory_path else None,
            seconds=time.monotonic() - start, samples_used=outcome.samples_used,
            samples_allowed=outcome.samples_allowed, phases=ledger.by_phase(), details=outcome.details,
            error=outcome.error, verified=verified, evidence=evidence,
        )
        if folder is not None and folder.is_dir():  # a several-chain solve: its outcome beside its samples
            from orchestrator.solves import write_outcome  # for `reason logs`, `replay`, `view` and `export`

            summary = {k: v for k, v in result.to_dict().items() if k != "steps"}
            write_outcome(folder, {**summary, "options": self.strategy_options})
        return result

    def _partial(self, ctx: StrategyContext, start: float) -> Result:
        """The result of an interrupted solve: what its chains had spent and found (`best_so_far`)."""
        ledger, best = ctx.ledger, best_so_far(ctx.ledger.runs)
        return Result(
            question=ctx.question, answer=best.answer if best else None,
            normalized=best.normalized if best else None, kind=ctx.kind, model=self.model.name,
            strategy=self.strategy, stop_reason=StopReason.INTERRUPTED, usage=ledger.totals(),
            steps=[step for run in ledger.runs for step in run.trajectory.steps],
            trajectory_path=str(ctx.trajectory_path) if ctx.trajectory_path else None,
            seconds=time.monotonic() - start, phases=ledger.by_phase(), verified=best.verified if best else None,
        )

    async def asolve(self, question: str, on_event: EventHandler | None = None) -> Result:
        """The async twin of `solve` (runs it in a worker thread)."""
        return await asyncio.to_thread(self.solve, question, on_event)

    def stream(self, question: str, cancel: threading.Event | None = None) -> Iterator[tuple[str, Any]]:
        """Yield `("step", Step)` (and `("token", str)` with stream_tokens) as they happen, then
        `("result", Result)`. Errors are raised in the caller's thread. `cancel`: as in `solve`."""
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = self.solve(question, on_event=lambda k, p: events.put((k, p)), cancel=cancel)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer's thread and re-raised there
                box["error"] = e
            finally:
                events.put(("done", None))

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        while True:
            kind, payload = events.get()
            if kind == "done":
                break
            if kind not in ("stop", "call", "called"):  # those are for `on_event` handlers (a live view)
                yield kind, payload
        thread.join()
        if "error" in box:
            raise box["error"]
        yield "result", box["result"]

    def _sandbox_factory(self):
        if not self.tools:
            return None
        kind = self.config.sandbox

        def make() -> Any:
            from orchestrator.tools import get_sandbox

            return get_sandbox(kind)

        return make

    def close(self) -> None:
        self.model.close()


CHECKS = {"program": "a program solving it again agrees", "resolve": "independent re-solves agree"}


def judge_evidence(outcome: Outcome) -> tuple[bool | None, str | None]:
    """Whether the answer is verified, and what it rests on. Only independent evidence verifies: a program we
    ran, re-solves or samples that agree. The model's own review passing its chain does not (it passes nearly
    every wrong answer of a small model), so that answer is reported unverified."""
    answer = outcome.answer
    if answer is None:
        return None, None
    found = outcome.details.get("evidence")
    if isinstance(found, dict):
        return answer.verified, str(found.get("summary"))
    votes = outcome.details.get("votes")
    samples = outcome.details.get("samples") or outcome.details.get("candidates") or []
    ranked = stopping.tally([s.get("label") for s in samples]) if isinstance(votes, dict) and votes else []
    if ranked:  # the samples' answers, counted as the strategies count them
        return (True if answer.verified else None), f"{ranked[0][1]} of {sum(n for _, n in ranked)} samples agree"
    run = next((r for r in outcome.runs if r.final is not None and r.final.normalized == answer.normalized),
               outcome.runs[0] if outcome.runs else None)
    how = run.verification if run is not None and run.config.verify else None
    if answer.verified is True and how in CHECKS:
        return True, CHECKS[how]
    if answer.verified is True:
        return None, "only the model's own review passed it"
    if answer.verified is False:
        return False, f"its check ({how or 'review'}) failed"
    return None, "no check supports it"


def best_so_far(runs: list[Run]) -> Candidate | None:
    """The answer of an interrupted solve: the one most of its chains arrived at (each chain's best), then the
    verified, then the best rewarded. None when no chain had one."""
    finals = [r.final for r in runs if r.final is not None]
    if not finals:
        return None
    votes = Counter(c.normalized for c in finals)
    return max(finals, key=lambda c: (votes[c.normalized], c.verified is True, c.reward or 0.0))


def solve(question: str, model: str = DEFAULT_MODEL, strategy: str = DEFAULT_STRATEGY, **kwargs: Any) -> Result:
    """One-shot convenience: `Reasoner(model, strategy, **kwargs).solve(question)`."""
    return Reasoner(model, strategy, **kwargs).solve(question)
