"""The `reason` command line: `reason "question"` answers it; subcommands manage models, keys, runs, servers.

A click group with a default command (as in simonw/llm): anything that is not a subcommand is a question for
`reason ask`. Subcommands are imported only when they run, so `reason --help` loads neither the SDK nor any
provider library.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from orchestrator import __version__

# name -> ("module:attribute", one-line help shown by `reason --help` without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("orchestrator.cli.ask:ask", "Answer a question, thinking harder (the default command)."),
    "strategies": ("orchestrator.cli.strategies_cmd:strategies", "List the strategies, their options and defaults."),
    "models": ("orchestrator.cli.models_cmd:models", "List known models; `models pull NAME` gets weights."),
    "keys": ("orchestrator.cli.keys_cmd:keys", "Store and list API keys (values are never printed)."),
    "config": ("orchestrator.cli.config_cmd:config", "Show or change the defaults in config.toml."),
    "logs": ("orchestrator.cli.runs_cmd:logs", "List recent runs from the runs directory."),
    "replay": ("orchestrator.cli.runs_cmd:replay", "Show a saved run again, or re-drive it offline."),
    "exec": ("orchestrator.cli.exec_cmd:exec_code", "Run Python in the sandbox the agent uses."),
    "serve": ("orchestrator.cli.serve_cmd:serve", "Serve strategies as an OpenAI-compatible API."),
    "bench": ("orchestrator.cli.bench_cmd:bench", "Run a benchmark: accuracy, tokens, $ and time per arm."),
    "export": ("orchestrator.cli.export_cmd:export", "Export runs and bench folders as training data."),
    "view": ("orchestrator.cli.export_cmd:view", "Write a run or bench folder as one self-contained web page."),
}
DEFAULT = "ask"


class ReasonGroup(click.Group):
    """A group whose subcommands load lazily and whose unknown first word starts a question."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            return _missing(name, str(e))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from orchestrator.cli.common import stdin_is_terminal

        if not args and stdin_is_terminal():  # `reason` alone, at a prompt: what can I type?
            click.echo(ctx.get_help())
            ctx.exit(0)
        if not args or args[0] not in (*COMMANDS, *self.get_help_option_names(ctx), "--version"):
            args = [DEFAULT, *args]
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


def _missing(name: str, why: str) -> click.Command:
    def run(**_: Any) -> None:
        raise click.ClickException(f"`reason {name}` is not available in this installation ({why})")

    return click.Command(name, callback=run, context_settings={"ignore_unknown_options": True},
                         params=[click.Argument(["args"], nargs=-1)])


@click.group(
    cls=ReasonGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog='Examples:\n\n\b\n  reason "What is 9.11 - 9.8?"\n'
    '  echo "How many r\'s in strawberry?" | reason --json\n'
    '  reason -m gpt-4o-mini --strategy vote --budget-usd 0.02 "..."\n'
    '  reason -s "You are terse" -t 0.2 "..."          # -s is the system prompt, as in llm\n'
    '  reason logs --stop budget_usd; reason replay last\n\n'
    'Exit codes: 0 verified, 3 answered but unverified, 4 a budget stop with its best answer so far, 1 no '
    'answer or an error, 2 bad usage, 130 interrupted. `reason ask --help` lists all options '
    'and the strategies; docs/cli.md has flags, budgets, config and logs.',
)
@click.version_option(__version__, "--version", prog_name="reason")
def cli() -> None:
    """Make any language model reason harder: steps, reflection, verification, tools and budgets.

    `reason "question"` is `reason ask "question"`; a question on stdin works too. A question that is
    also a command name needs the explicit form: `reason ask models`.
    """


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="reason")
