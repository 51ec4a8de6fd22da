"""The options of each strategy, declared once: typed models (`extra="forbid"`, a docstring per field) that
hold the defaults and that the strategies read (`ctx.options`).

The front ends reach them through `orchestrator.strategies.knobs.split_settings`, which also sorts config
fields and budgets out of the same flat settings. `auto` has its own options and those of the vote or
best-of-n it escalates to. A key the strategy does not have is an error that names the close match
(`difflib`) and the valid keys. References: mini-swe-agent's `AgentConfig`; DSPy's `BestOfN` `Args:` list.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.confidence import SCORES
from orchestrator.config import ReasonConfig
from orchestrator.errors import ConfigError
from orchestrator.strategies.stopping import Rule, StopRule

Temperature = Field(None, ge=0, le=2)


class StrategyOptions(BaseModel):
    """The options every strategy has: none (`chain`, `plain`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


RUN_FIELDS = {"prompts_dir", "sandbox", "tools", "system"}
"""Config fields that hold for every chain of a run (its prompts, sandbox, interpreter and system text): the
`chain` option cannot override them per chain, so what `reason serve` refuses a client stays refused."""


class SampledOptions(StrategyOptions):
    """Options of the strategies that sample several chains."""

    samples: int = Field(8, ge=1, le=1000)
    """How many chains at most."""
    temperature: float | None = Temperature
    """Sampling temperature of the sampled chains (None: the model's `sample_temperature`)."""
    chain: dict[str, Any] = Field(default_factory=dict)
    """Config overrides of the sampled chains (fields of `ReasonConfig`, but not those of the whole run)."""

    @field_validator("chain")
    @classmethod
    def _config_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        fixed = sorted(set(value) & RUN_FIELDS)
        if fixed:  # the run's own: a server refuses them at the top level, so they cannot come in through here
            raise ValueError(f"chain.{fixed[0]}: set for the whole run, not per sampled chain")
        try:
            ReasonConfig(**value)  # unknown fields and wrong types fail here, with their names
        except ValidationError as e:
            first = e.errors()[0]
            raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        return value


class VoteOptions(SampledOptions):
    """`vote`'s options (see `orchestrator.strategies.vote`)."""

    speculate: int = Field(0, ge=0)
    """Samples launched beyond what the stopping rule needs (faster, possibly wasted)."""
    sampler: Literal["chain", "plain"] = "chain"
    """What one sample is: a cheap chain of the state machine, or the bare question in one call."""
    weight: str | None = None
    """Weight each vote by this confidence score of the model's tokens (None: one vote each)."""
    rule: Rule = StopRule.rule
    """Stopping rule: Adaptive-Consistency's Beta criterion, a unanimous window, or none (run all samples)."""
    confidence: float = Field(StopRule.confidence, gt=0, le=1)
    """beta: stop once P(the leader is the true majority) reaches this."""
    window: int = Field(StopRule.window, ge=1)
    """window: stop once this many last answers agree."""
    min_samples: int = Field(StopRule.min_samples, ge=1)
    """Never stop on a rule before this many samples."""
    min_gain: float = Field(StopRule.min_gain, ge=0)
    """Stop when expected answer flips per 1,000 tokens of the remaining samples fall below this (0: off)."""

    @field_validator("weight")
    @classmethod
    def _known_score(cls, value: str | None) -> str | None:
        if value in (None, "", "none"):
            return None
        if value not in SCORES:
            raise ValueError(f"unknown vote weight {value!r}; choose from none, {', '.join(SCORES)}")
        return value

    def stop_rule(self) -> StopRule:
        """The stopping rule these options set."""
        return StopRule(self.rule, self.confidence, self.window, self.min_samples, self.min_gain)


class BestOfNOptions(SampledOptions):
    """`best-of-n`'s options (see `orchestrator.strategies.best_of_n`)."""

    samples: int = Field(4, ge=1, le=1000)
    """How many full chains at most."""
    scorer: Literal["reward", "judge", "check"] | None = None
    """How answers are scored (None: `check` where the sandbox can recompute the answer, else `reward`)."""
    stop_on_verified: bool = False
    """Stop as soon as a chain's own verification passes."""
    sample_first: bool = False
    """Sample the first chain too (off: it runs at the run's own temperature, as `chain` would)."""


class BeamOptions(StrategyOptions):
    """`beam`'s options (see `orchestrator.strategies.beam`)."""

    width: int = Field(2, ge=1, le=64)
    """Open nodes expanded per level."""
    branch: int = Field(2, ge=1, le=64)
    """Children per expanded node."""
    max_depth: int = Field(6, ge=1)
    """Levels at most."""
    max_backoffs: int = Field(2, ge=0)
    """Times the search may abandon a dead frontier for the alternates of an earlier level."""
    max_nodes: int | None = Field(None, ge=1)
    """Nodes expanded at most (None: width * branch * max_depth)."""
    temperature: float | None = Temperature
    """Sampling temperature of the sampled children (None: the model's `sample_temperature`)."""
    sample_first: bool = False
    """Sample a node's first child too (off: it is decoded at the run's own temperature)."""


class AutoOptions(VoteOptions, BestOfNOptions):
    """`auto`'s options, and those of the vote or best-of-n it escalates to."""

    samples: int = Field(6, ge=0, le=1000)
    """Chains the escalation adds at most (0: never escalate)."""
    escalate: Literal["vote", "best-of-n", "none"] | None = None
    """Force the escalation (None: chosen by the first chain's difficulty)."""
    trust_self: bool = False
    """Let the model's own review (or a confident reward) make a question easy."""
    confident: float | None = Field(None, ge=0, le=1)
    """With trust_self, the reward that counts as easy where nothing can be verified (None: `reward_high`)."""
    min_escalation: int = Field(2, ge=1)
    """Escalate only if the budget is projected to pay for this many more samples."""


class CrosscheckOptions(StrategyOptions):
    """`crosscheck`'s options (see `orchestrator.strategies.crosscheck`)."""

    rounds: int = Field(3, ge=1, le=16)
    """Rounds at most, each one prose solution and one program (the first, greedy round included)."""
    temperature: float | None = Temperature
    """Sampling temperature of the rounds after the first (None: the model's `sample_temperature`)."""
    margin: int = Field(1, ge=1)
    """Votes by which the leading answer must lead every other to stop early (it also needs two votes)."""
    programs: bool = True
    """Solve as programs too, where the sandbox can run them and the answer is a number (off: prose only)."""


MODELS: dict[str, type[StrategyOptions]] = {
    "crosscheck": CrosscheckOptions, "chain": StrategyOptions, "plain": StrategyOptions, "vote": VoteOptions,
    "best-of-n": BestOfNOptions, "beam": BeamOptions, "auto": AutoOptions,
}


class UnknownOption(ConfigError):
    """A setting no front end knows, with the close match and the valid keys in its message."""

    def __init__(self, key: str, strategy: str, valid: dict[str, Iterable[str]]) -> None:
        self.key = key
        names = [name for group in valid.values() for name in group]
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        others = [name for name, model in MODELS.items() if name != strategy and key in model.model_fields]
        hint = f" (did you mean {close[0]!r}?)" if close else f" (an option of {', '.join(others)})" if others else ""
        listed = "; ".join(f"{what}: {', '.join(group) or 'none'}" for what, group in valid.items())
        super().__init__(f"{strategy} has no setting {key!r}{hint}; valid keys are {listed}")


def options_model(strategy: str) -> type[StrategyOptions]:
    """The options model of a strategy (a `ConfigError` for an unknown one)."""
    if strategy not in MODELS:
        raise ConfigError(f"unknown strategy {strategy!r}; choose from: {', '.join(MODELS)}")
    return MODELS[strategy]


def parse_options(strategy: str, options: Mapping[str, Any] | StrategyOptions | None = None) -> StrategyOptions:
    """The validated options of `strategy`; `UnknownOption` for a key it does not have, `ConfigError` naming
    the option for a bad value."""
    model = options_model(strategy)
    if isinstance(options, model):
        return options
    given = dict(options.model_dump(exclude_unset=True) if isinstance(options, StrategyOptions) else options or {})
    unknown = [key for key in given if key not in model.model_fields]
    if unknown:
        raise UnknownOption(str(unknown[0]), strategy, {f"{strategy}'s options": list(model.model_fields)})
    try:
        return model(**given)
    except ValidationError as e:
        error = e.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "options"
        raise ConfigError(f"{strategy} option {where}={_shown(error.get('input'))}: {error['msg']}") from None


def check_options(strategy: str, options: Mapping[str, Any]) -> None:
    """Raise `ConfigError` for an option `strategy` does not have or a bad value (`parse_options`)."""
    parse_options(strategy, options)


def describe(strategy: str) -> list[tuple[str, str, str, str]]:
    """(name, type, default, help) of each option of `strategy`, read from its model."""
    rows = []
    for name, info in options_model(strategy).model_fields.items():
        default = info.get_default(call_default_factory=True)
        shown = "none" if default is None else default if isinstance(default, str) else json.dumps(default)
        rows.append((name, _type_name(info.annotation), shown, info.description or ""))
    return rows


def _type_name(annotation: Any) -> str:
    """`int`, `float or none`, `chain|plain`: a type as a user writes its value."""
    args = get_args(annotation)
    if get_origin(annotation) is Literal:
        return "|".join(map(str, args))
    if get_origin(annotation) in (Union, UnionType):
        return " or ".join("none" if a is type(None) else _type_name(a) for a in args)
    return getattr(get_origin(annotation) or annotation, "__name__", str(annotation))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
