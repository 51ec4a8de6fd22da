"""`reason strategies`: every strategy with its options, their types, defaults and help, read from the
options models (`orchestrator.strategies.options`), so the list cannot drift from what the strategies take."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name", required=False)
def strategies(name: str | None) -> None:
    """List the strategies and their options (`-S KEY VALUE`, a bench arm's `STRATEGY:KEY=VALUE`, a
    `reason serve` request field), or those of NAME."""
    from orchestrator.cli.common import check_strategy
    from orchestrator.strategies import DESCRIPTIONS, STRATEGIES
    from orchestrator.strategies.options import describe

    chosen = [check_strategy(name)] if name else list(STRATEGIES)
    for i, strategy in enumerate(chosen):
        click.echo(("\n" if i else "") + f"{strategy}: {DESCRIPTIONS[strategy]}")
        rows = describe(strategy)
        if not rows:
            click.echo("  (no options)")
        for option, kind, default, text in rows:
            click.echo(f"  {option} ({kind}, default {default}): {text}")
    click.echo("\nAny ReasonConfig field (max_attempts, verify_by, ...) and budget (budget_usd, ...) is accepted "
               "beside them; `config.KEY` names the config field where a strategy has an option of that name.")
