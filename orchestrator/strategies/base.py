"""What every strategy gets (`StrategyContext`) and returns (`Outcome`).

A strategy runs one or more chains of the state machine on a shared ledger and budget, and decides which
answer to return and why it stopped. Chains of one solve share a directory of trajectory files.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.config import ReasonConfig
from orchestrator.kinds import StopReason
from orchestrator.ledger import Budget, Ledger
from orchestrator.machine import run_machine
from orchestrator.models.base import ChatModel
from orchestrator.run import Candidate, EventHandler, Run
from orchestrator.strategies.options import StrategyOptions
from orchestrator.trajectory import Trajectory

Options = TypeVar("Options", bound=StrategyOptions)


@dataclass
class StrategyContext:
    """The question and the machinery a strategy may use."""

    question: str
    kind: str
    model: ChatModel
    config: ReasonConfig
    budget: Budget
    ledger: Ledger
    header: dict[str, Any]
    trajectory_dir: Path | None  # None: trajectories are not saved
    single_file: bool = True  # a one-chain strategy writes `trajectory_dir.jsonl` instead of a folder
    make_sandbox: Callable[[], Any] | None = None
    on_event: EventHandler | None = None
    stream_tokens: bool = False
    concurrency: int = 4
    options: StrategyOptions = field(default_factory=StrategyOptions)  # the strategy's, validated

    def options_as(self, model: type[Options]) -> Options:
        """The options as `model` (the strategy's own, or those of a strategy that escalates to it)."""
        if not isinstance(self.options, model):
            raise TypeError(f"{type(self.options).__name__} given where {model.__name__} is needed")
        return self.options

    @property
    def streams(self) -> bool:
        """Whether calls stream their tokens: when asked to, on every backend but a local model that decodes
        several calls together (streaming one would take it out of the batch)."""
        return self.stream_tokens and (not self.model.is_local or self.model.slots == 1)

    @property
    def parallel(self) -> int:
        """How many chains may run at once: an in-process model's slots (one unless it decodes several calls
        together), else the configured bound."""
        return self.model.slots if self.model.is_local else max(1, self.concurrency)

    def trajectory(self, sample: int, extra: dict[str, Any] | None = None) -> Trajectory:
        header = {**self.header, "sample": sample, **(extra or {})}
        if self.trajectory_dir is None:
            return Trajectory(None, header)
        if self.single_file:
            return Trajectory(self.trajectory_dir.with_suffix(".jsonl"), header)
        return Trajectory(self.trajectory_dir / f"sample-{sample:03d}.jsonl", header)

    @property
    def trajectory_path(self) -> Path | None:
        if self.trajectory_dir is None:
            return None
        return self.trajectory_dir.with_suffix(".jsonl") if self.single_file else self.trajectory_dir

    def sample_header(self, config: ReasonConfig, sampler: str) -> dict[str, Any]:
        """What a sample's trajectory header adds to the solve's: the config it ran under (the solve's, with
        the strategy's per-sample overrides) and how it was drawn ('chain' of the state machine, or 'plain':
        the bare question in one call), so `reason replay --rerun` can re-drive that one sample."""
        return {"config": config.model_dump(), "sampler": sampler}

    def run_chain(self, sample: int, **overrides: Any) -> Run:
        """Run one chain of the state machine to its end. Config fields may be overridden per chain."""
        config = self.config.model_copy(update=overrides) if overrides else self.config
        sandbox = self.make_sandbox() if (config.tools and self.make_sandbox) else None
        run = Run(
            question=self.question, kind=self.kind, model=self.model, config=config,
            trajectory=self.trajectory(sample, self.sample_header(config, "chain")), ledger=self.ledger,
            budget=self.budget, sandbox=sandbox, on_event=self.on_event,
            stream_tokens=self.streams, sample=sample,
        )
        try:
            return run_machine(run)
        finally:
            if sandbox is not None:
                sandbox.close()

    def map_chains(self, samples: list[int], **overrides: Any) -> list[Run]:
        """Run several chains, at most `parallel` at a time; results in the order of `samples`."""
        if self.parallel == 1 or len(samples) == 1:
            return [self.run_chain(s, **overrides) for s in samples]
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(samples))) as pool:
            return list(pool.map(lambda s: self.run_chain(s, **overrides), samples))


@dataclass
class Outcome:
    """A strategy's decision: the answer, why it stopped, and the chains it ran."""

    answer: Candidate | None
    stop_reason: StopReason
    runs: list[Run]
    samples_used: int = 1
    samples_allowed: int = 1
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
