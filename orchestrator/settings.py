"""The user's defaults for the `reason` CLI, read from `config.toml` in the config directory.

The file lives in `platformdirs.user_config_dir("reason")` (or `$REASON_CONFIG_DIR`), next to keys.json.
Command-line flags override it; it overrides the built-in defaults. `[endpoints.NAME]` tables in the same file
belong to the HTTP adapter (`endpoint/NAME` models) and are kept as they are.

    model = "openai/gpt-4o-mini"
    strategy = "crosscheck"
    max_usd = 0.05
    tools = true
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import ConfigError
from orchestrator.keys import config_dir


class Settings(BaseModel):
    """Defaults for every `reason` run. `None` means: use the built-in default."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    model: str | None = None
    """Model name used when `-m` is not given (built-in default: the embedded `local/qwen2.5-coder-1.5b`)."""
    strategy: str = "crosscheck"
    """Strategy used when `-s` is not given (`reason models` and `reason --help` list them)."""
    max_tokens: int | None = Field(None, ge=1)
    """Token budget of one run (prompt + completion, all calls)."""
    max_usd: float | None = Field(None, ge=0)
    """Dollar budget of one run."""
    max_seconds: float | None = Field(None, gt=0)
    """Wall-clock budget of one run."""
    max_calls: int | None = Field(None, ge=1)
    """Model-call budget of one run."""
    tools: bool | None = None
    """Let the model run Python in the sandbox mid-thought."""
    sandbox: str = "local"
    """Sandbox for tools and `reason exec`: `local` (bubblewrap), `local-unsafe` or `e2b`."""
    cache: bool = False
    """Serve repeated identical model calls from the disk cache."""
    runs_dir: str | None = None
    """Where trajectories are written (default: the user data dir, or `$REASON_RUNS_DIR`)."""
    endpoints: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """`[endpoints.NAME]` tables for `endpoint/NAME` models (the HTTP adapter reads them; kept untouched)."""


SETTABLE = tuple(name for name in Settings.model_fields if name != "endpoints")


def config_path() -> Path:
    """The config file: `config.toml` in the config directory."""
    return config_dir() / "config.toml"


def _validate(data: dict[str, Any], path: Path) -> Settings:
    try:
        return Settings(**data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        known = ", ".join(SETTABLE)
        hint = f" (known settings: {known})" if first["type"] == "extra_forbidden" else ""
        raise ConfigError(f"{path}: {where}: {first['msg']}{hint}") from None


def load_settings(path: Path | None = None) -> Settings:
    """The settings in the config file (defaults when there is none); `ConfigError` if it is invalid."""
    path = path or config_path()
    if not path.is_file():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    return _validate(data, path)


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
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def set_setting(key: str, value: Any, path: Path | None = None) -> Path:
    """Set (or with `value=None`, remove) one top-level setting, keeping the rest of the file as it is."""
    path = path or config_path()
    if key not in SETTABLE:
        raise ConfigError(f"unknown setting {key!r}; known: {', '.join(SETTABLE)}")
    current = load_settings(path).model_dump(exclude_unset=True)
    updated = {k: v for k, v in current.items() if k != key}
    _validate(updated if value is None else {**updated, key: value}, path)
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    first_table = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    top = [line for line in lines[:first_table] if not pattern.match(line)]
    while top and not top[-1].strip():
        top.pop()
    if value is not None:
        top.append(f"{key} = {toml_literal(value)}")
    rest = lines[first_table:]
    text = "\n".join(top + ([""] if top and rest else []) + rest)
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
