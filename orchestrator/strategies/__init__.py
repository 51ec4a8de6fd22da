"""Test-time strategies, selectable by name. Each is one module with `solve(ctx) -> Outcome`."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from orchestrator.errors import ConfigError
from orchestrator.strategies.base import Outcome, StrategyContext

DEFAULT_STRATEGY = "crosscheck"

STRATEGIES: dict[str, str] = {
    "crosscheck": "orchestrator.strategies.crosscheck",
    "chain": "orchestrator.strategies.chain",
    "plain": "orchestrator.strategies.plain",
    "vote": "orchestrator.strategies.vote",
    "best-of-n": "orchestrator.strategies.best_of_n",
    "beam": "orchestrator.strategies.beam",
    "auto": "orchestrator.strategies.auto",
}

DESCRIPTIONS: dict[str, str] = {
    "crosscheck": "the default: a prose answer and a program run in the sandbox; agree: done, else more rounds "
                  "until one answer leads (verified only when independent solutions agree)",
    "chain": "one run of the reasoning state machine",
    "plain": "a single direct call, no reasoning scaffold (the baseline)",
    "vote": "self-consistency: sample cheap chains, majority answer, stop once the majority is stable",
    "best-of-n": "several full chains, answers scored (reward, judge or code check), the best kept",
    "beam": "beam search over think steps scored by reflection, backing off from dead ends",
    "auto": "one chain; unless an independent check verified it, escalate to vote or best-of-n as the budget allows",
}


def get_strategy(name: str) -> Callable[[StrategyContext], Outcome]:
    """The `solve` function of a strategy by name."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose from: {', '.join(STRATEGIES)}")
    return importlib.import_module(STRATEGIES[name]).solve


__all__ = ["DEFAULT_STRATEGY", "DESCRIPTIONS", "STRATEGIES", "Outcome", "StrategyContext", "get_strategy"]
