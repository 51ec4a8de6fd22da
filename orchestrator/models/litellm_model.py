"""Every other provider through litellm (`groq/...`, `openrouter/...`, `bedrock/...`), and litellm's Router.

litellm is imported on the first call (its import takes seconds), with the bundled price map so that it
never fetches one. Its own retries are off; `retry.py` does them. `router/PATH[#GROUP]`, or the
`router_config=PATH` keyword, spreads calls over the deployments of a Router config (YAML or JSON with a
`model_list`); GROUP is a `model_name` there (default: the first).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError, MissingDependency
from orchestrator.keys import add_secret, get_key
from orchestrator.models import pricing, retry
from orchestrator.models.base import CallOptions, Completion, Message
from orchestrator.models.openai_compat import reported_cost, usage_of
from orchestrator.models.remote import RemoteModel


def load_litellm() -> Any:
    """Import litellm offline and quiet."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError:
        raise MissingDependency("this model needs `pip install litellm`") from None
    litellm.suppress_debug_info = True
    return litellm


def read_router_config(path: str | Path) -> dict[str, Any]:
    """A litellm Router config: {"model_list": [...], "router_settings": {...}} from YAML or JSON."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"router config {path} not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, dict) or not data.get("model_list"):
        raise ConfigError(f"{path}: a router config needs a non-empty `model_list`")
    return data


def deployment_model(config: dict[str, Any] | None, group: str) -> str:
    """The litellm model behind a Router group (its first deployment), for prices; `group` itself outside
    a Router."""
    deployments = [d for d in (config or {}).get("model_list", []) if d.get("model_name") == group]
    return deployments[0].get("litellm_params", {}).get("model", group) if deployments else group


class LiteLLMModel(RemoteModel):
    """Any model litellm knows, or a litellm Router over several deployments."""

    def __init__(
        self,
        name: str,
        options: CallOptions | None = None,
        *,
        api_key: str | None = None,
        router_config: str | Path | None = None,
        **settings: Any,
    ) -> None:
        """`settings`: the rest of `RemoteModel`'s keywords (base_url, timeout, max_retries, ...)."""
        model, config = name, None
        if name.startswith("router/") or router_config is not None:
            path, _, group = (str(router_config) if router_config else name.split("/", 1)[1]).partition("#")
            config = read_router_config(path)
            model = group or config["model_list"][0]["model_name"]
        provider = name.split("/", 1)[0] if "/" in name and config is None else None
        # A stored or explicit key wins; otherwise litellm finds its own credentials (env, AWS, GCP).
        api_key = get_key(provider, api_key, required=False) if provider else api_key
        super().__init__(
            name, options, model=model, api_key=api_key, pricing_name=deployment_model(config, model), **settings
        )
        self.router_settings: dict[str, Any] | None = config
        known = pricing.entry(self.pricing_name) or {}
        self.supports_tools = bool(known.get("supports_function_calling"))  # unknown: use text tools
        deployments = (config or {}).get("model_list", [])
        self.secrets = [self.api_key, *(d.get("litellm_params", {}).get("api_key") for d in deployments)]
        for secret in self.secrets:
            add_secret(secret if isinstance(secret, str) else None)  # a router's keys are scrubbed too
        self._router: Any = None

    def _backend(self) -> Any:
        """The litellm module, or the Router built on first use."""
        litellm = load_litellm()
        if self.router_settings is None:
            return litellm
        with self._lock:
            if self._router is None:
                settings = {**self.router_settings.get("router_settings", {}), "num_retries": 0}
                self._router = litellm.Router(
                    model_list=self.router_settings["model_list"], timeout=self.timeout, **settings
                )
            return self._router

    def _request(self, messages: list[Message], options: CallOptions) -> dict[str, Any]:
        req: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "timeout": self.timeout,
            "num_retries": 0,
        }
        if self.router_settings is None:
            req["max_retries"] = 0  # the underlying SDK client's retries
        if self.api_key:
            req["api_key"] = self.api_key
        if self.base_url:
            req["api_base"] = self.base_url
        for key in ("temperature", "top_p", "max_tokens", "stop", "seed", "tools"):
            if (value := getattr(options, key)) not in (None, []):
                req[key] = value
        return {**req, **options.extra}

    def _completion(self, response: Any) -> Completion:
        choice = response.choices[0]
        usage = usage_of(getattr(response, "usage", None))
        hidden = getattr(response, "_hidden_params", None) or {}
        # the provider's own figure (OpenRouter's usage.cost) first, then litellm's, then our price map
        cost, source = reported_cost(getattr(response, "usage", None)), "provider"
        if cost is None and isinstance(hidden.get("response_cost"), (int, float)):
            cost, source = float(hidden["response_cost"]), "litellm"
        return Completion(
            text=choice.message.content or "",
            model=self.name,
            finish_reason=choice.finish_reason or "stop",
            usage=usage,
            cost_usd=cost or 0.0,
            cost_source=source if cost is not None else "",
            tool_calls=[
                c.model_dump() if hasattr(c, "model_dump") else dict(c)
                for c in choice.message.tool_calls or []
            ],
            raw=response.model_dump(),
        )

    def _complete(self, messages: list[Message], options: CallOptions) -> Completion:
        req = self._request(messages, options)
        return self._completion(
            retry.call(lambda: self._backend().completion(**req), self.retry, self.secrets)
        )

    async def _acomplete(self, messages: list[Message], options: CallOptions) -> Completion:
        req = self._request(messages, options)
        response = await retry.acall(lambda: self._backend().acompletion(**req), self.retry, self.secrets)
        return self._completion(response)

    def _stream(
        self, messages: list[Message], options: CallOptions, on_token: Callable[[str], None]
    ) -> Completion:
        """Stream deltas to `on_token`; litellm rebuilds the whole response from the chunks."""
        req = {**self._request(messages, options), "stream": True, "stream_options": {"include_usage": True}}

        def run() -> Any:
            chunks = []
            for chunk in self._backend().completion(**req):
                chunks.append(chunk)
                if chunk.choices and (piece := chunk.choices[0].delta.content):
                    on_token(piece)
            return load_litellm().stream_chunk_builder(chunks, messages=messages)

        return self._completion(retry.call(run, self.retry, self.secrets))
