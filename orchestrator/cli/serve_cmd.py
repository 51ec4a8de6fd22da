"""`reason serve`: the OpenAI-compatible API of `orchestrator.server`, on uvicorn."""

from __future__ import annotations

import ipaddress

import click

from orchestrator.cli.common import check_strategy, settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.option("--api-key", envvar="REASON_SERVER_API_KEY",
              help="Require `Authorization: Bearer KEY` (env REASON_SERVER_API_KEY). Needed off loopback.")
@click.option("-m", "--model", help="Model for names without one (`reason:chain`). Default: config, local.")
@click.option("-s", "--strategy", help="Strategy for names without one (a plain model name). Default: chain.")
@click.option("--tools/--no-tools", default=None, help="Let the model run Python in the sandbox.")
@click.option("--sandbox", type=click.Choice(["local", "local-unsafe", "e2b"]), help="Sandbox for --tools.")
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Where trajectories are written.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, api_key: str | None, model: str | None, strategy: str | None,
          tools: bool | None, sandbox: str | None, runs_dir: str | None, log_level: str) -> None:
    """Serve strategies as an OpenAI-compatible API (POST /v1/chat/completions, GET /v1/models).

    Use model names like `reason:chain:local/smollm2-135m`; pass budgets in the request body
    (`max_usd`, `max_seconds`, `max_calls`, `max_tokens_budget`) and `reasoning: true` for the steps.
    """
    if not is_loopback(host) and not api_key:
        raise click.UsageError(f"refusing to serve on {host} without --api-key: anyone who can reach it "
                               "could spend your budget. Set --api-key (or REASON_SERVER_API_KEY).")
    if api_key is not None and not api_key.strip():
        raise click.BadParameter("the API key is empty", param_hint="'--api-key'")
    s = settings()
    try:
        import uvicorn

        from orchestrator.server import create_app
    except ImportError as e:
        raise click.ClickException(f"serving needs: pip install 'reasonloop[server]' ({e})") from None
    from orchestrator.models import DEFAULT_MODEL

    app = create_app(
        api_key=api_key, model=model or s.model or DEFAULT_MODEL,
        strategy=check_strategy(strategy or s.strategy),
        runs_dir=runs_dir or s.runs_dir, tools=s.tools if tools is None else tools,
        sandbox=sandbox or s.sandbox,
    )
    click.echo(f"reason: OpenAI-compatible API on http://{host}:{port}/v1 "
               f"(model names: reason:STRATEGY:MODEL; auth: {'Bearer key' if api_key else 'none'})", err=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        app.state.api.close()
