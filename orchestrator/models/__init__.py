"""Model names a user types, mapped to adapters. Adapters are imported only when a model is built.

Names:
- `local/qwen2.5-coder-1.5b` (default), `local/smollm2-135m`, `local/PATH.gguf`: in-process llama.cpp
- `hf/OWNER/REPO/FILE.gguf`: any GGUF on the Hugging Face hub, downloaded into the hub's cache, in-process
- `openai/MODEL`: OpenAI; `anthropic/MODEL`: Anthropic
- `http://HOST:PORT/v1#MODEL` (or https): any OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...)
- `endpoint/NAME`: an OpenAI-compatible endpoint from the config file
- `vllm/MODEL`, `sglang/MODEL`, `llama-server/MODEL`, `ollama/MODEL`: a GPU inference server (`servers.py`)
- `fake/...`: the scripted model (tests); `replay/PATH.jsonl`: replays a saved trajectory
- anything else: litellm (`groq/...`, `openrouter/...`, `bedrock/...`, ...)
"""

from __future__ import annotations

import importlib
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

__all__ = [
    "ADAPTERS", "DEFAULT_MODEL", "CallOptions", "ChatModel", "Completion", "Message", "Usage", "get_model",
    "provider_of",
]


def provider_of(name: str) -> str:
    """The adapter prefix of a model name (`litellm` for anything unrecognised)."""
    if name.startswith(("http://", "https://")):
        return "http"
    if name.startswith("hf/"):  # a hub GGUF runs in-process like the embedded models
        return "local"
    prefix = name.split("/", 1)[0] if "/" in name else ""
    if prefix in ("fake", "replay"):
        return prefix
    return prefix if prefix in ADAPTERS else "litellm"


def _load(path: str) -> type[ChatModel]:
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
    if provider == "litellm" and name.startswith("litellm/"):
        name = name.split("/", 1)[1]
    return _load(ADAPTERS[provider])(name, options=options, **kwargs)
