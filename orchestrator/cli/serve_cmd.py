"""`reason serve`: the OpenAI-compatible API of `orchestrator.server`, on uvicorn."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

import click

from orchestrator.cli.common import check_strategy, settings
from orchestrator.keys import HTTP_KEY_ENV, LEGACY_KEY_ENV, SERVE_KEY_ENV

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def duration(value: str | None) -> float | None:
    """Seconds from `90`, `30m`, `12h` or `7d`; None for None."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration like 0, 3600, 30m, 12h or 7d",
                                 param_hint="'--keep-runs'")
    return float(match[1]) * UNITS[match[2]]


def runs_of(configured: str | None, keep: float | None) -> str | None:
    """The configured runs folder, or a `serve` folder inside it when old runs are pruned (the CLI's stay)."""
    return str(Path(configured) / "serve") if configured and keep else configured


def log_to_stderr(level: str) -> None:
    """The server's own log (`reason.serve`: refused requests, errors in full, redacted) on stderr."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     reason: %(message)s"))
    logger = logging.getLogger("reason.serve")
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def guard_key(api_key: str | None) -> str | None:
    """The guard key: --api-key / REASON_SERVE_API_KEY, else the deprecated REASON_SERVER_API_KEY (warned)."""
    if api_key is None and (legacy := os.environ.get(LEGACY_KEY_ENV)):
        click.echo(f"reason: {LEGACY_KEY_ENV} is deprecated for `reason serve`; set {SERVE_KEY_ENV} instead "
                   f"(the guard key is never sent to model servers; give http:// models {HTTP_KEY_ENV})", err=True)
        api_key = legacy
    if api_key is not None and not api_key.strip():
        raise click.BadParameter("the API key is empty", param_hint="'--api-key'")
    if api_key is not None and os.environ.get(HTTP_KEY_ENV) == api_key:
        raise click.UsageError(f"{HTTP_KEY_ENV} is the server's own guard key; the key sent to model servers "
                               "must be a different one")
    return api_key


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.option("--api-key", envvar=SERVE_KEY_ENV,
              help=f"Require `Authorization: Bearer KEY` (env {SERVE_KEY_ENV}). Needed off loopback. Never sent "
                   "to model servers.")
@click.option("-m", "--model", "models", multiple=True,
              help="A model to serve (repeatable); the first is the default. Only these are served. "
                   "Default: config, local.")
@click.option("--allow-model", "allow", multiple=True, metavar="PATTERN",
              help="Also serve model names matching this glob (`openai/*`); never URLs, files or routers.")
@click.option("-s", "--strategy", help="Strategy for names without one (a plain model name). Default: crosscheck.")
@click.option("--tools/--no-tools", default=None, help="Let the model run Python in the sandbox.")
@click.option("--sandbox", type=click.Choice(["local", "local-unsafe", "e2b"]), help="Sandbox for --tools.")
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Where trajectories are written.")
@click.option("--keep-runs", metavar="DURATION",
              help="Delete trajectories older than this (`12h`, `7d`); `0` writes none. Default: keep all. "
                   "Without --runs-dir they go to a `serve` folder of their own.")
@click.option("--max-body-kb", default=2048, show_default=True, type=click.IntRange(1),
              help="Largest request body accepted (larger: 413).")
@click.option("--keepalive", default=15.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds between SSE keep-alive comments while a streamed solve is quiet.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, api_key: str | None, models: tuple[str, ...], allow: tuple[str, ...],
          strategy: str | None, tools: bool | None, sandbox: str | None, runs_dir: str | None,
          keep_runs: str | None, max_body_kb: int, keepalive: float, log_level: str) -> None:
    """Serve strategies as an OpenAI-compatible API (POST /v1/chat/completions, GET /v1/models).

    Use model names like `reason:chain:MODEL` for a MODEL given with -m; pass budgets in the request body
    (`max_usd`, `max_seconds`, `max_calls`, `max_tokens_budget`), `reasoning_effort`, and `reasoning: true`
    for the steps. See docs/security.md for what the server allows.
    """
    api_key = guard_key(api_key)
    if not is_loopback(host) and not api_key:
        raise click.UsageError(f"refusing to serve on {host} without --api-key: anyone who can reach it "
                               f"could spend your budget. Set --api-key (or {SERVE_KEY_ENV}).")
    keep = duration(keep_runs)
    s = settings()
    try:
        import uvicorn

        from orchestrator.server import create_app
    except ImportError as e:
        raise click.ClickException(f"serving needs: pip install 'reasonloop[server]' ({e})") from None
    from orchestrator.models import DEFAULT_MODEL

    app = create_app(
        api_key=api_key, model=list(models) or [s.model or DEFAULT_MODEL], allow_models=list(allow),
        strategy=check_strategy(strategy or s.strategy),
        runs_dir=runs_dir or runs_of(s.runs_dir, keep), tools=s.tools if tools is None else tools,
        sandbox=sandbox or s.sandbox, max_body=max_body_kb * 1024, keep_runs=keep, keepalive=keepalive,
    )
    log_to_stderr(log_level)
    served = ", ".join(app.state.api.policy.models + [f"{p} (pattern)" for p in allow])
    click.echo(f"reason: OpenAI-compatible API on http://{host}:{port}/v1 (models: {served}; "
               f"auth: {'Bearer key' if api_key else 'none'})", err=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        app.state.api.close()
