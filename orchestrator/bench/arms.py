"""What a benchmark compares: arms (model x strategy x budget), budget strings, and the run's manifest.

The manifest (`OUT/run.json`) records the dataset and seed of an output folder, so that a rerun into the
same folder resumes the same sample and a different one is refused instead of silently mixed in.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.config import ReasonConfig
from orchestrator.errors import ConfigError
from orchestrator.ledger import Budget
from orchestrator.strategies.knobs import Knobs, parse_value, split_settings

BUDGET_KEYS = {"tokens": ("max_tokens", int), "usd": ("max_usd", float), "seconds": ("max_seconds", float),
               "calls": ("max_calls", int)}
MANIFEST = "run.json"


@dataclass
class Arm:
    """One configuration under test: a model, a strategy and a per-problem budget."""

    model: str
    strategy: str
    budget: Budget = field(default_factory=Budget)
    label: str = ""  # distinguishes two budgets of the same model and strategy
    config: ReasonConfig = field(default_factory=ReasonConfig)
    strategy_options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.model}|{self.strategy}|{self.label}"


def parse_budget(spec: str) -> Budget:
    """`tokens=20000,usd=0.05,seconds=60,calls=30` (any subset) as a per-problem `Budget`."""
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, raw = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in BUDGET_KEYS:
            raise ConfigError(f"bad budget {spec!r}: expected KEY=VALUE pairs with keys "
                              f"{', '.join(BUDGET_KEYS)}, e.g. tokens=20000,usd=0.05")
        name, cast = BUDGET_KEYS[key]
        try:
            number = float(raw)
            value = int(number) if cast is int and number.is_integer() else cast(raw)
        except ValueError:
            raise ConfigError(f"bad budget {spec!r}: {key} must be a number, not {raw.strip()!r}") from None
        if not value > 0:
            raise ConfigError(f"bad budget {spec!r}: {key} must be positive")
        values[name] = value
    if not values:
        raise ConfigError(f"bad budget {spec!r}: give at least one of {', '.join(BUDGET_KEYS)}")
    return Budget(**values)


def budget_label(budget: Budget) -> str:
    """The canonical spelling of a budget (`tokens=20000,usd=0.05`), '' when unlimited."""
    return ",".join(f"{key}={getattr(budget, name):g}" for key, (name, _) in BUDGET_KEYS.items()
                    if getattr(budget, name) is not None)


def parse_strategy(spec: str) -> tuple[str, Knobs]:
    """`chain:verify_by=resolve,max_attempts=3` or `vote:samples=16` as (strategy, its settings sorted into
    config overrides, budget and strategy options by `split_settings`: an unknown key or a bad value is a
    `ConfigError` naming the valid keys). Values are read as JSON where they parse, else kept as words."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    settings: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"bad strategy {spec!r}: expected STRATEGY:KEY=VALUE,..., e.g. vote:samples=16")
        settings[key] = parse_value(raw)
    try:
        return name, split_settings(name, settings)
    except ConfigError as e:
        raise ConfigError(f"bad strategy {spec!r}: {e}") from None


def make_arms(models: list[str], strategies: list[str], budgets: list[str], tools: bool = False,
              config: ReasonConfig | None = None) -> list[Arm]:
    """Every (model, strategy, budget) combination; the label names the budget (and `tools` when on), and
    the overrides of a `STRATEGY:KEY=VALUE,...` spec (see `parse_strategy`)."""
    config = (config or ReasonConfig()).model_copy(update={"tools": True} if tools else {})
    parsed = [parse_budget(b) for b in budgets] or [Budget()]
    arms = []
    for model in models:
        for spec in strategies:
            strategy, knobs = parse_strategy(spec)
            settings = spec.partition(":")[2].replace(" ", "")
            for budget in parsed:
                merged = replace(budget, **knobs.budget)  # the spec's budget_* keys win over -b: name what runs
                label = " ".join(filter(None, (settings, budget_label(merged), "tools" if tools else "")))
                arms.append(Arm(model, strategy, merged, label, config.model_copy(update=knobs.config),
                                knobs.options))
    keys = [a.key for a in arms]
    if len(set(keys)) != len(keys):
        raise ConfigError("the same model, strategy and budget is given twice")
    return arms


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of an output folder ({} when there is none)."""
    path = out / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_manifest(out: Path, dataset: str, seed: int | None, limit: int | None, arms: list[Arm],
                   problem_ids: list[str], command: str | None = None) -> dict[str, Any]:
    """Record (or extend) what this folder holds; refuse a different dataset or seed. `limit` is the widest
    any command took (None: all), since the folder holds the problems of every command."""
    old = read_manifest(out)
    for name, value in (("dataset", dataset), ("seed", seed)):
        if old and old.get(name) != value:
            raise ConfigError(f"{out} holds a run with {name} {old.get(name)!r}, not {value!r}; "
                              "use another --out (or the same settings to resume)")
    known = list(old.get("arms", []))
    ids = list(old.get("problem_ids", []))
    seen = set(ids)
    commands = [c for c in (old.get("command") or "").splitlines() if c]  # every command that added to it
    if command and command not in commands:
        commands.append(command)
    if "limit" in old:  # the widest draw any command took (None: every problem) is what the folder holds
        limit = None if limit is None or old["limit"] is None else max(limit, old["limit"])
    manifest = {
        "version": 1, "dataset": dataset, "seed": seed, "limit": limit,
        "command": "\n".join(commands) or None,
        "arms": known + [a.key for a in arms if a.key not in known],
        "problem_ids": ids + [p for p in problem_ids if p not in seen],
        "created": old.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / MANIFEST)
    return manifest
