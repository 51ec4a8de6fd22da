"""The options each strategy accepts (`-S KEY VALUE`, a bench arm's `:key=value`, a server's
`strategy_options`), typed, so that a wrong value is a one-line error before any model call.

The strategies read their options themselves; this module only checks them, with the types and ranges
their docstrings give. `auto` accepts its own and those of the strategies it escalates to. A name that no
strategy has is an error (a typo); one that another strategy has is ignored, so that one set of options
can be given to several strategies (a bench comparing arms).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.config import ReasonConfig
from orchestrator.errors import ConfigError

Temperature = Field(None, ge=0, le=2)


class _Options(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Sampled(_Options):
    temperature: float | None = Temperature
    """The sampling temperature of the chains (the model's `sample_temperature` unless set)."""
    chain: dict[str, Any] | None = None
    """Config overrides of the sampled chains (fields of `ReasonConfig`)."""
    samples: int | None = Field(None, ge=1, le=1000)
    """How many chains at most."""

    @field_validator("chain")
    @classmethod
    def _config_fields(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value:
            try:
                ReasonConfig(**value)  # unknown fields and wrong types fail here, with their names
            except ValidationError as e:
                first = e.errors()[0]
                raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        return value


class VoteOptions(_Sampled):
    """`vote`'s options (see `orchestrator.strategies.vote`)."""

    speculate: int | None = Field(None, ge=0)
    sampler: str | None = None
    weight: str | None = None
    rule: str | None = None
    confidence: float | None = Field(None, gt=0, le=1)
    window: int | None = Field(None, ge=1)
    min_samples: int | None = Field(None, ge=1)
    min_gain: float | None = Field(None, ge=0)


class BestOfNOptions(_Sampled):
    """`best-of-n`'s options (see `orchestrator.strategies.best_of_n`)."""

    scorer: str | None = None
    stop_on_verified: bool | None = None
    sample_first: bool | None = None


class BeamOptions(_Options):
    """`beam`'s options (see `orchestrator.strategies.beam`)."""

    width: int | None = Field(None, ge=1, le=64)
    branch: int | None = Field(None, ge=1, le=64)
    max_depth: int | None = Field(None, ge=1)
    max_backoffs: int | None = Field(None, ge=0)
    max_nodes: int | None = Field(None, ge=1)
    temperature: float | None = Temperature
    sample_first: bool | None = None


class AutoOptions(VoteOptions, BestOfNOptions):
    """`auto`'s options, and those of the vote or best-of-n it escalates to."""

    samples: int | None = Field(None, ge=0, le=1000)
    escalate: str | None = None
    trust_self: bool | None = None
    confident: float | None = Field(None, ge=0, le=1)
    min_escalation: int | None = Field(None, ge=1)


MODELS: dict[str, type[_Options]] = {
    "chain": _Options, "plain": _Options, "vote": VoteOptions, "best-of-n": BestOfNOptions,
    "beam": BeamOptions, "auto": AutoOptions,
}


def check_options(strategy: str, options: dict[str, Any]) -> None:
    """Raise `ConfigError` naming the first option of `strategy` that it does not have or that has a bad
    value."""
    model = MODELS.get(strategy)
    if model is None or not options:
        return
    known = {name for m in MODELS.values() for name in m.model_fields}
    unknown = [name for name in options if name not in known]
    if unknown:
        mine = ", ".join(model.model_fields) or "none"
        raise ConfigError(f"no strategy has an option {unknown[0]!r}; {strategy}'s options: {mine}")
    try:
        model(**options)
    except ValidationError as e:
        error = e.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "options"
        raise ConfigError(f"{strategy} option {where}={_shown(error.get('input'))}: {error['msg']}") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
