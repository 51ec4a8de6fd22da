"""Model names a user types, mapped to adapters. Adapters are imported only when a model is built.

Names:
- `local/qwen2.5-coder-1.5b` (default), `local/smollm2-135m`, `local/PATH.gguf`: in-process llama.cpp
- `hf/OWNER/REPO/FILE.gguf`: any GGUF on the Hugging Face hub, downloaded into the hub's cache, in-process
- `openai/MODEL`: OpenAI; `anthropic/MODEL`: Anthropic
- `http://HOST:PORT/v1#MODEL` (or https): any OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...)
- `endpoint/NAME`: an OpenAI-compatible endpoint from the config file
- `vllm/MODEL`, `sglang/MODEL`, `llama-server/MODEL`, `ollama/MODEL`: a GPU inference server (`servers.py`)
- `fake/...`: the scripted model (tests); `replay/PATH.jsonl`: replays a saved trajectory
- a bare well-known name, as an llm or OpenAI CLI user types it: `gpt-*`, `o1`/`o3`/`o4-*` are `openai/NAME`
  and `claude-*` is `anthropic/NAME` (so the key stored with `reason keys set` is used)
- anything else: litellm (`groq/...`, `openrouter/...`, `bedrock/...`, ...); a bare name litellm does not
  know either is an error with the closest names it does know
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.models.base import CallOptions, ChatModel, Completion, Message, Usage

DEFAULT_MODEL = "local/qwen2.5-coder-1.5b"

# prefix -> "module:Class"; the adapter's constructor takes (name, **kwargs).
ADAPTERS: dict[str, str] = {
    "local": "orchestrator.models.local:LocalModel",
    "openai": "orchestrator.models.openai_compat:OpenAIModel",
    "http": "orchestrator.models.openai_compat:OpenAIModel",
    "https": "orchestrator.models.openai_compat:OpenAIModel",
    "endpoint": "orchestrator.models.openai_compat:OpenAIModel",
    "anthropic": "orchestrator.models.anthropic_model:AnthropicModel",
    "vllm": "orchestrator.models.servers:ServerModel",
    "sglang": "orchestrator.models.servers:ServerModel",
    "llama-server": "orchestrator.models.servers:ServerModel",
    "ollama": "orchestrator.models.servers:ServerModel",  # litellm's own route: litellm/ollama/MODEL
    "litellm": "orchestrator.models.litellm_model:LiteLLMModel",
}

# A bare name -> the provider it belongs to (checked in order).
BARE_NAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(gpt-|chatgpt-|o[134]($|-))"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
)

__all__ = [
    "ADAPTERS", "DEFAULT_MODEL", "CallOptions", "ChatModel", "Completion", "Message", "Usage", "get_model",
    "provider_of", "qualified",
]


def qualified(name: str) -> str:
    """`name` with its provider in front when it is a bare well-known name: `gpt-4o-mini` -> `openai/gpt-4o-mini`."""
    if "/" in name or ":" in name:
        return name
    for pattern, provider in BARE_NAMES:
        if pattern.match(name.lower()):
            return f"{provider}/{name}"
    return name


def suggestions(name: str, n: int = 3) -> list[str]:
    """The known model names closest to `name` (bare OpenAI and Anthropic names with their provider)."""
    from orchestrator.models import pricing

    known = [k for k in pricing.table() if k != "sample_spec"]
    known += ["local/qwen2.5-coder-1.5b", "local/smollm2-135m"]
    return [qualified(m) for m in difflib.get_close_matches(name.lower(), known, n=n, cutoff=0.6)]


def _check_bare(name: str) -> None:
    """A bare name litellm cannot place is a typo more often than a model: say so, with the closest names."""
    from orchestrator.models import pricing

    if "/" in name or not pricing.table() or pricing.entry(name) is not None:
        return
    close = suggestions(name)
    hint = f": did you mean {' or '.join(close)}?" if close else ""
    raise ConfigError(f"unknown model {name!r}{hint} (`reason models` lists models; a provider's model is "
                      "PROVIDER/NAME, e.g. openai/gpt-4o-mini or groq/llama-3.1-8b-instant)")


def provider_of(name: str) -> str:
    """The adapter prefix of a model name (`litellm` for anything unrecognised)."""
    if name.startswith(("http://", "https://")):
        return "http"
    if name.startswith("hf/"):  # a hub GGUF runs in-process like the embedded models
        return "local"
    name = qualified(name)
    prefix = name.split("/", 1)[0] if "/" in name else ""
    if prefix in ("fake", "replay"):
        return prefix
    return prefix if prefix in ADAPTERS else "litellm"


def _load(path: str) -> Callable[..., ChatModel]:
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)


def get_model(name: str, options: CallOptions | None = None, **kwargs: Any) -> ChatModel:
    """Build the adapter for a model name. Raises `ConfigError` for a malformed name."""
    name = name.strip()
    if not name:
        raise ConfigError("empty model name; try `reason models` for the list")
    provider = provider_of(name)
    if provider == "fake":
        from orchestrator.models.fake import ScriptedModel

        script = kwargs.pop("script", None)
        if script is None:
            raise ConfigError("fake models need a script (SDK only: get_model('fake/x', script=[...]))")
        return ScriptedModel(script, name=name, options=options, **kwargs)
    if provider == "replay":
        from orchestrator.models.fake import ReplayModel

        return ReplayModel(name.split("/", 1)[1], options=options)
    name = qualified(name)
    if provider == "litellm" and name.startswith("litellm/"):
        name = name.split("/", 1)[1]
    elif provider == "litellm":
        _check_bare(name)
    return _load(ADAPTERS[provider])(name, options=options, **kwargs)
