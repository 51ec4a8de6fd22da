"""Helpers shared by the commands: one-line errors, `-o KEY VALUE` parsing, reading stdin, settings."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from orchestrator.kinds import StopReason

if TYPE_CHECKING:
    from orchestrator.settings import Settings


def one_line(message: str) -> str:
    """A message on one line, with any API key in it redacted."""
    from orchestrator.keys import redact

    return redact(re.sub(r"\s*\n\s*", " ", str(message)).strip())


def warn(message: str) -> None:
    """A one-line `Warning: ...` on stderr (a deprecated flag, a guess the command made)."""
    click.echo(f"Warning: {one_line(message)}", err=True)


class ReasonFailure(click.ClickException):
    """A failure reported as `Error: <one line>`; `exit_code` defaults to 1."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(one_line(message))
        self.exit_code = exit_code  # type: ignore[misc]  # click's stubs make it a ClassVar; each failure has its own


@contextmanager
def user_errors(trajectory: Any = None) -> Iterator[None]:
    """Turn `ReasonError`s into one-line errors; `trajectory()` (if given) names the run's file."""
    from orchestrator.errors import ReasonError
    from orchestrator.models.fake import ScriptExhausted

    try:
        yield
    except (ReasonError, ScriptExhausted) as e:
        message = str(e) or type(e).__name__
        if isinstance(e, ScriptExhausted):
            message = f"the replayed run has no more recorded outputs; this run diverged from it ({e})"
        raise ReasonFailure(message + _where(trajectory)) from None
    except KeyboardInterrupt:
        raise ReasonFailure("interrupted" + _where(trajectory), exit_code=130) from None


@contextmanager
def interrupts() -> Iterator[None]:
    """Within the block, SIGTERM is handled like Ctrl-C: the first of either raises KeyboardInterrupt (the
    solve gives up its calls and reports what it has), a second one exits at once with status 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if seen:
            sys.stderr.write("\ninterrupted again: exiting now\n")
            os._exit(130)
        seen.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        if not seen:  # once interrupted, a second signal while the process winds down still exits at once
            for sig, old in previous.items():
                signal.signal(sig, old)


def error_json(message: str, exit_code: int, stop_reason: str = StopReason.ERROR) -> dict[str, Any]:
    """The `--json` object of a run that failed before it had a result: the same fields, `error` set."""
    return {"question": None, "answer": None, "normalized": None, "kind": None, "model": None, "strategy": None,
            "stop_reason": stop_reason, "verified": None, "usage": None, "phases": {}, "samples": None,
            "steps": [], "details": {}, "error": one_line(message), "trajectory": None, "exit_code": exit_code}


def _where(trajectory: Any) -> str:
    path = trajectory() if callable(trajectory) else trajectory
    return f" (trajectory: {path})" if path else ""


def parse_pairs(pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """`-o KEY VALUE` pairs as a dict; each value is parsed as JSON when it is JSON (`0.2`, `true`, `[1]`)."""
    options: dict[str, Any] = {}
    for key, value in pairs:
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def read_stdin() -> str:
    """All of stdin as text; binary input (not UTF-8, or containing NUL bytes) is a usage error."""
    data = sys.stdin.buffer.read()
    if b"\x00" in data:
        raise click.UsageError("stdin holds binary data (NUL bytes), not a question")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise click.UsageError("stdin is not UTF-8 text; pass the question as text") from None


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def settings() -> Settings:
    """The user's settings from config.toml, with invalid files reported as one-line errors."""
    from orchestrator.settings import load_settings

    with user_errors():
        return load_settings()


def check_strategy(name: str) -> str:
    """`name` if it is a known strategy, else a usage error listing them."""
    from orchestrator.strategies import STRATEGIES

    if name not in STRATEGIES:
        raise click.BadParameter(f"unknown strategy {name!r}; choose from: {', '.join(STRATEGIES)}",
                                 param_hint="'--strategy'")
    return name


def new_entries(folder: Path, before: set[Path]) -> Path | None:
    """The newest entry of `folder` that was not in `before` (the run a failed solve left behind)."""
    if not folder.is_dir():
        return None
    fresh = [p for p in folder.iterdir() if p not in before]
    return max(fresh, key=lambda p: p.stat().st_mtime, default=None)
