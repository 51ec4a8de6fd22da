"""What `reason ask` checks before a run, and how it reports one that failed or was interrupted.

Bad input is a usage error before any model call (`check_inputs`, `BudgetValue`); with `--json`, stdout is
one JSON object whatever happens (`JsonCommand`): the result, or on an error the same fields with `error`
set. An interrupted solve's partial result is what it reports (`interruptible`). See docs/output.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import error_json
from orchestrator.kinds import StopReason, is_budget

# Request fields `reason` sets itself; `-o` may not override them.
RESERVED_OPTIONS = ("model", "messages", "stream", "stream_options", "n", "tools")


class BudgetValue(click.ParamType):
    """A budget: a number above 0, not NaN (a budget of 0 could pay for nothing)."""

    name = "number"

    def __init__(self, integer: bool = False) -> None:
        self.integer = integer

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | int:
        try:
            number = int(value) if self.integer else float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a {'whole ' if self.integer else ''}number", param, ctx)
        if not number > 0:  # NaN fails this too
            self.fail(f"{value!r}: a budget must be above 0", param, ctx)
        return number


class JsonCommand(click.Command):
    """A command that, with `--json`, prints one JSON object even when its arguments are wrong or it fails
    before it has a result (a command that printed its result sets `ctx.meta['json_printed']`)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        wants_json = "--json" in args
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            if wants_json:
                echo_error(e)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as e:
            if ctx.params.get("as_json") and not ctx.meta.get("json_printed"):
                echo_error(e)
            raise


def echo_error(e: click.ClickException) -> None:
    click.echo(json.dumps(error_json(e.format_message(), e.exit_code), ensure_ascii=False))


def interruptible(solve: Any, *args: Any, **kwargs: Any) -> Any:
    """`solve(...)`'s result; for an interrupted solve, its partial result (stop reason `interrupted`, the
    best answer so far) instead of its exception."""
    from orchestrator.errors import Interrupted

    try:
        return solve(*args, **kwargs)
    except Interrupted as e:
        return e.result


def check_inputs(model_options: dict[str, Any], runs_dir: Path, prompts_dir: str | None) -> None:
    """Usage errors that would otherwise surface mid-run: `-o` options `reason` sets itself, a runs folder
    that cannot be made, a prompt folder with a broken template (`-S` is checked as it is sorted)."""
    from orchestrator.errors import ConfigError
    from orchestrator.prompting import check_folder

    reserved = [k for k in model_options if k in RESERVED_OPTIONS]
    if reserved:
        raise click.BadParameter(f"{reserved[0]!r} is set by reason itself (--show-thinking streams the steps)",
                                 param_hint="'-o' / '--option'")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise click.BadParameter(f"cannot make {runs_dir}: {e.strerror or e}", param_hint="'--runs-dir'") from None
    if prompts_dir is not None:
        try:
            check_folder(prompts_dir)
        except ConfigError as e:
            raise click.BadParameter(str(e), param_hint="'--prompts'") from None


EXIT_CODES = """Exit codes: 0 answered and verified (independent evidence supports the answer); 3 answered, but a
check failed or nothing supports the answer (unverified); 4 stopped on the budget with a best-so-far answer
(unverified); 1 no answer, or an error; 2 bad usage; 130 interrupted (the best answer so far is printed)."""


def exit_code(result: Any) -> int:
    """The exit code of a run that has a result (`EXIT_CODES`)."""
    if result.stop_reason == StopReason.INTERRUPTED:
        return 130
    if result.answer is None:
        return 1
    if is_budget(result.stop_reason):
        return 4
    return 0 if result.verified is True else 3
