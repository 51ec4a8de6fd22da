"""Flat `key=value` settings as (config, budget, strategy options): the one path of `reason ask -S`, a
`reason bench` arm (`vote:samples=16`) and the fields of a `reason serve` request.

A key is the strategy's option where the strategy has one (`temperature` of `vote` is its sampling
temperature), else a `ReasonConfig` field, else a budget; `config.KEY` names the config field whatever the
strategy has. Anything else is an `UnknownOption` that lists the valid keys, with the close match.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from orchestrator.config import ReasonConfig
from orchestrator.errors import ConfigError
from orchestrator.strategies.options import UnknownOption, options_model, parse_options

# name in the settings -> `Budget` field (the CLI's flag names; `reason serve` passes its own names)
BUDGET_KEYS = {"budget_tokens": "max_tokens", "budget_usd": "max_usd", "budget_seconds": "max_seconds",
               "budget_calls": "max_calls"}
WHOLE = ("max_tokens", "max_calls")  # budgets counted in whole units
CONFIG_PREFIX = "config."


@dataclass(frozen=True)
class Knobs:
    """Validated settings, sorted: `ReasonConfig` overrides, `Budget` fields and the strategy's options."""

    config: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def parse_value(raw: str) -> Any:
    """A setting's value: JSON where it parses (`3`, `0.2`, `true`, `{"plan": true}`), else the word."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.strip()


def split_settings(strategy: str, settings: Mapping[str, Any], *, budget_keys: Mapping[str, str] = BUDGET_KEYS,
                   refused: Mapping[str, str] | None = None, also: Iterable[str] = ()) -> Knobs:
    """Sort `settings` into config overrides, budget fields and options of `strategy`, each validated.
    `refused`: config fields this front end does not take, with why; `also`: names the front end reads
    itself (offered as close matches only)."""
    model = options_model(strategy)
    refused = refused or {}
    config: dict[str, Any] = {}
    budget: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in settings.items():
        name = key.removeprefix(CONFIG_PREFIX)
        if name in refused and (name != key or name not in model.model_fields):
            raise ConfigError(f"{name!r} cannot be set here: {refused[name]}")
        if key in model.model_fields:
            options[key] = value
        elif name in ReasonConfig.model_fields:
            config[name] = value
        elif key in budget_keys:
            budget[budget_keys[key]] = _budget_value(key, value, whole=budget_keys[key] in WHOLE)
        else:
            fields = [f for f in ReasonConfig.model_fields if f not in refused]
            raise UnknownOption(key, strategy, {f"{strategy}'s options": list(model.model_fields),
                                                "config": fields, "budget": list(budget_keys),
                                                **({"request": list(also)} if also else {})})
    if config:
        try:
            ReasonConfig(**config)
        except ValidationError as e:
            first = e.errors()[0]
            raise ConfigError(f"{first['loc'][0]}={first.get('input')!r}: {first['msg']}") from None
    parse_options(strategy, options)
    return Knobs(config, budget, options)


def _budget_value(key: str, value: Any, whole: bool) -> float | int:
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number <= 0:
        raise ConfigError(f"`{key}` must be a positive number, not {value!r}")
    if whole and not float(number).is_integer():
        raise ConfigError(f"`{key}` must be a whole number, not {value!r}")
    return int(number) if whole else float(number)
