"""The user's defaults for the `reason` CLI, read from `config.toml` in the config directory.

The file lives in `platformdirs.user_config_dir("reason")` (or `$REASON_CONFIG_DIR`), next to keys.json.
Command-line flags override it; it overrides the built-in defaults. Every value is checked when it is set
(`reason config set`) and when the file is read, so a typo is an error at once, not a failure later:

    model = "openai/gpt-4o-mini"
    strategy = "crosscheck"
    budget_usd = 0.05
    tools = true

    [prices]                         # USD per million tokens (input, output) of a model without a known price
    "http://127.0.0.1:8080/v1#my-model" = [0.15, 0.60]

    [endpoints.vllm]                 # the model `endpoint/vllm`
    base_url = "http://127.0.0.1:8000/v1"
    model = "Qwen/Qwen2.5-7B-Instruct"
    api_key_env = "VLLM_API_KEY"     # optional: the environment variable holding its key
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.errors import ConfigError
from orchestrator.keys import config_dir

# Names the budget settings had before they said what they limit (read, with a warning, for one release).
RENAMED = {"max_tokens": "budget_tokens", "max_usd": "budget_usd", "max_seconds": "budget_seconds",
           "max_calls": "budget_calls"}


class Endpoint(BaseModel):
    """An `[endpoints.NAME]` table: an OpenAI-compatible server reached as the model `endpoint/NAME`."""

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)

    base_url: str
    """The server's API root, e.g. `http://127.0.0.1:8000/v1`."""
    model: str = "default"
    """The model name the server expects."""
    api_key_env: str | None = None
    """The environment variable that holds its API key (none: no key is sent)."""
    logprobs: bool = False
    """Ask for token log-probabilities (for `vote:weight=...`)."""


class Settings(BaseModel):
    """Defaults for every `reason` run. `None` means: use the built-in default."""

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)

    model: str | None = None
    """Model used when `-m` is not given (built-in default: the embedded `local/qwen2.5-coder-1.5b`)."""
    strategy: str = "crosscheck"
    """Strategy used when `--strategy` is not given (`reason ask --help` lists them)."""
    system: str | None = None
    """Extra system instructions, appended to the built-in system prompt (`-s`)."""
    temperature: float | None = Field(None, ge=0, le=2)
    """Sampling temperature of the first attempt (`-t`; None: the backend's default, greedy for local models)."""
    budget_tokens: int | None = Field(None, ge=1)
    """Token budget of one whole run: prompt + completion, all calls together (`--budget-tokens`)."""
    budget_usd: float | None = Field(None, ge=0)
    """Dollar budget of one whole run (`--budget-usd`; refused for a model without a known price)."""
    budget_seconds: float | None = Field(None, gt=0)
    """Wall-clock budget of one whole run (`--budget-seconds`)."""
    budget_calls: int | None = Field(None, ge=1)
    """Model-call budget of one whole run (`--budget-calls`)."""
    max_tokens_per_call: int | None = Field(None, ge=16)
    """Completion cap of each model call (`--max-tokens-per-call`; built-in default 1024)."""
    max_steps: int | None = Field(None, ge=1, le=1000)
    """Step budget the model sees and our code counts down (`--max-steps`; built-in default 20)."""
    attempts: int | None = Field(None, ge=1, le=20)
    """Attempts; each failed one leaves a lesson for the next (`--attempts`; built-in default 2)."""
    verify_by: Literal["auto", "judge", "program", "resolve"] | None = None
    """How an answer is checked (`--verify-by`): auto, judge, program or resolve."""
    tools: bool | None = None
    """Let the model run Python in the sandbox (`--tools`/`--no-tools`; unset: on wherever the sandbox starts)."""
    sandbox: Literal["local", "local-unsafe", "e2b"] = "local"
    """Sandbox for tools and `reason exec`: `local` (bubblewrap), `local-unsafe` or `e2b`."""
    cache: bool = False
    """Serve repeated identical model calls from the disk cache (`--cache`)."""
    runs_dir: str | None = None
    """Where trajectories are written (default: the user data dir, or `$REASON_RUNS_DIR`)."""
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    """`[prices]`: "MODEL" = [input, output] in USD per million tokens, for models without a known price."""
    endpoints: dict[str, Endpoint] = Field(default_factory=dict)
    """`[endpoints.NAME]` tables for `endpoint/NAME` models (see `Endpoint`)."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in RENAMED.items():
                if old in data and new not in data:
                    data = {**{k: v for k, v in data.items() if k != old}, new: data[old]}
        return data

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        from orchestrator.strategies import STRATEGIES

        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; choose from: {', '.join(STRATEGIES)}")
        return name

    @field_validator("prices", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:  # TOML has arrays, not tuples; strict mode wants the tuple
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()} if isinstance(value, dict) \
            else value


TABLES = ("prices", "endpoints")
SETTABLE = tuple(name for name in Settings.model_fields if name not in TABLES)


def config_path() -> Path:
    """The config file: `config.toml` in the config directory."""
    return config_dir() / "config.toml"


def _validate(data: dict[str, Any], path: Path) -> Settings:
    try:
        return Settings(**data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        hint = f" (known settings: {', '.join(SETTABLE)})" if first["type"] == "extra_forbidden" else ""
        given = f" (got {first['input']!r})" if first["type"] not in ("extra_forbidden", "missing") else ""
        raise ConfigError(f"{path}: {where}: {first['msg']}{given}{hint}") from None


def read_file(path: Path) -> dict[str, Any]:
    """The parsed TOML of `path` ({} when there is none); `ConfigError` if it is not TOML."""
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from None


def load_settings(path: Path | None = None) -> Settings:
    """The settings in the config file (defaults when there is none); `ConfigError` if it is invalid."""
    path = path or config_path()
    return _validate(read_file(path), path)


def renamed_in(path: Path | None = None) -> list[str]:
    """The old budget names the file still uses (each is read as its new name)."""
    return [old for old in RENAMED if old in read_file(path or config_path())]


def parse_value(text: str) -> Any:
    """A value typed on the command line: a TOML literal when it is one (`0.05`, `true`), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except ValueError:
        return text


def toml_literal(value: Any) -> str:
    """`value` written as a TOML literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def split_key(key: str) -> tuple[str | None, str, str]:
    """(table, key, key as written) of a `config set` KEY: `budget_usd`, `prices.MODEL` (MODEL may hold dots)
    or `endpoints.NAME.FIELD`. An old budget name is its new one."""
    if key.startswith("prices."):
        name = key.split(".", 1)[1]
        return "prices", name, json.dumps(name, ensure_ascii=False)
    if key.startswith("endpoints."):
        name, _, field = key.split(".", 1)[1].rpartition(".")
        if not name or field not in Endpoint.model_fields:
            raise ConfigError(f"{key!r}: use endpoints.NAME.FIELD, FIELD one of {', '.join(Endpoint.model_fields)}")
        return f"endpoints.{name}", field, field
    key = RENAMED.get(key, key)
    if key not in SETTABLE:
        raise ConfigError(f"unknown setting {key!r}; known: {', '.join(SETTABLE)}, prices.MODEL, "
                          "endpoints.NAME.FIELD")
    return None, key, key


def _updated(data: dict[str, Any], table: str | None, key: str, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(data, default=str))  # a deep copy
    node = data
    for part in (table.split(".", 1) if table else []):
        node = node.setdefault(part, {})
    node.pop(key, None)
    if table is None:
        for old, new in RENAMED.items():
            if new == key:
                node.pop(old, None)
    if value is not None:
        node[key] = value
    return data


def _rewrite(lines: list[str], table: str | None, written: str, value: Any) -> list[str]:
    """`lines` with `written = value` set (or removed, `value=None`) in `table` (None: the top level)."""
    names = [written] + ([old for old, new in RENAMED.items() if new == written] if table is None else [])
    pattern = re.compile(rf"^\s*({'|'.join(re.escape(n) for n in names)})\s*=")
    if table is None:
        start: int | None = 0
        end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    else:
        header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
        start = next((i + 1 for i, line in enumerate(lines) if header.match(line)), None)
        if start is None:
            if value is None:
                return lines
            return [*lines, *([""] if lines else []), f"[{table}]", f"{written} = {toml_literal(value)}"]
        end = next((i for i in range(start, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    section = [line for line in lines[start:end] if not pattern.match(line)]
    blank = []
    while section and not section[-1].strip():
        blank.append(section.pop())
    if value is not None:
        section.append(f"{written} = {toml_literal(value)}")
    if table is None and end < len(lines) and section:
        blank = [""]
    return lines[:start] + section + blank + lines[end:]


def set_setting(key: str, value: Any, path: Path | None = None) -> Path:
    """Set (or with `value=None`, remove) one setting, keeping the rest of the file (comments too) as it is.
    `ConfigError`, and the file untouched, if the result would not be valid."""
    path = path or config_path()
    table, name, written = split_key(key)
    _validate(_updated(read_file(path), table, name, value), path)
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    text = "\n".join(_rewrite(lines, table, written, value)).strip("\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text + "\n" if text else "", encoding="utf-8")
    try:
        load_settings(tmp)  # never replace the file with one we cannot read back
    except ConfigError:
        tmp.unlink()
        raise
    tmp.replace(path)
    return path
