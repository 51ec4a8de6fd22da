"""`reason config`: show and change the defaults in config.toml (flags still override them).

Every value is checked before the file is written: `config set strategy votes` or `config set tools yes` is an
error naming what is allowed, and the file stays as it was.
"""

from __future__ import annotations

import click

from orchestrator.cli.common import settings, user_errors, warn

SET_HELP = """Set KEY to VALUE (`true`, `0.05`, `20` and `[0.15, 0.6]` are typed; anything else is a string).

\b
KEY is a setting (`reason config show` lists them), or a table entry:
  prices.MODEL          USD per million tokens, e.g. prices.my-model "[0.15, 0.6]"
  endpoints.NAME.FIELD  an OpenAI-compatible server, the model endpoint/NAME
                        (FIELD: base_url, model, api_key_env, logprobs)
"""


@click.group()
def config() -> None:
    """Show or change the defaults in config.toml (model, strategy, budgets, tools, sandbox, prices, endpoints)."""


def _renamed_warning() -> None:
    from orchestrator.settings import RENAMED, renamed_in

    with user_errors():
        for old in renamed_in():
            warn(f"config.toml: `{old}` is now `{RENAMED[old]}` (read as such); "
                 f"`reason config set {RENAMED[old]} ...` rewrites it")


@config.command()
def show() -> None:
    """Print every setting with its value; `# default` marks those not set in the file."""
    from orchestrator.settings import TABLES, Settings, config_path, toml_literal

    current = settings()
    _renamed_warning()
    click.echo(f"# {config_path()}")
    for name, field in Settings.model_fields.items():
        if name in TABLES:
            continue
        value = getattr(current, name)
        click.echo(f"# {field.description}")
        if value is None:
            click.echo(f"# {name} = (not set)\n")
        else:
            default = "" if name in current.model_fields_set else "  # default"
            click.echo(f"{name} = {toml_literal(value)}{default}\n")
    if current.prices:
        click.echo("[prices]  # USD per million tokens: input, output")
        for model, price in current.prices.items():
            click.echo(f"{toml_literal(model)} = {toml_literal(list(price))}")
        click.echo()
    for name, table in current.endpoints.items():
        click.echo(f"[endpoints.{name}]  # model endpoint/{name}")
        for key, value in table.model_dump(exclude_none=True).items():
            click.echo(f"{key} = {toml_literal(value)}")
        click.echo()


@config.command(name="set", context_settings={"ignore_unknown_options": True}, help=SET_HELP)
@click.argument("key")
@click.argument("value")
def set_(key: str, value: str) -> None:
    from orchestrator.settings import RENAMED, parse_value, set_setting

    if key in RENAMED:
        warn(f"`{key}` is now `{RENAMED[key]}` (the budget of the whole run); setting that")
    with user_errors():
        path = set_setting(key, parse_value(value))
    click.echo(f"{RENAMED.get(key, key)} set in {path}", err=True)


@config.command()
@click.argument("key")
def unset(key: str) -> None:
    """Remove KEY from the file (back to the built-in default)."""
    from orchestrator.settings import set_setting

    with user_errors():
        set_setting(key, None)


@config.command()
def path() -> None:
    """Print the path of config.toml."""
    from orchestrator.settings import config_path

    click.echo(str(config_path()))
