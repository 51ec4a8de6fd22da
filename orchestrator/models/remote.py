"""What the remote adapters (OpenAI, Anthropic, litellm) share, so that each keeps only its SDK's calls:
the connection settings, the retry policy, the context window and price lookup, and the SDK clients."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.keys import HTTP_KEY_ENV, add_secret, is_guard_key
from orchestrator.models import pricing, retry
from orchestrator.models.base import CallOptions, ChatModel, Completion, Message, Usage


def http_timeout() -> float:
    """Seconds a remote request may take: `REASON_HTTP_TIMEOUT`, else 600. A slow server (a proxy running
    several calls of a CPU model per request) needs more; a request cut off by the timeout is retried, and a
    retried request that the server keeps computing only adds to its load."""
    raw = os.environ.get("REASON_HTTP_TIMEOUT", "").strip()
    if not raw:
        return 600.0
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"REASON_HTTP_TIMEOUT must be a number of seconds above 0, not {raw!r}")
    return value


SAMPLE_THREADS = 16  # requests one `sample` draw has in flight at most


class RemoteModel(ChatModel):
    """A model behind an HTTP API. `retry.py` retries its calls (the SDKs' own retries stay off). SDK clients
    are built on first use, so that importing an adapter never imports its SDK."""

    client_classes: tuple[str, str] = ("", "")  # the SDK's sync and async client classes, for `_make`

    def __init__(
        self,
        name: str,
        options: CallOptions | None = None,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        retry_policy: retry.RetryPolicy | None = None,
        context_window: int | None = None,
        pricing_name: str | None = None,
    ) -> None:
        """`timeout`: seconds a request may take (default `REASON_HTTP_TIMEOUT`, else 600); a request that
        times out is retried. `max_retries` N means N + 1 attempts; `pricing_name` (default `model`) finds
        prices and the context window in the price map."""
        super().__init__(options)
        if is_guard_key(api_key):  # however it got here (an env var, an endpoint table): it stays in the server
            raise ConfigError(f"{name}: its key is the guard key of `reason serve`, which is never sent to a model"
                              f" server; give the model its own key ({HTTP_KEY_ENV} for http:// models)")
        add_secret(api_key)  # so that `redact` scrubs it wherever it came from
        self.name, self.model, self.api_key, self.base_url = name, model, api_key, base_url
        self.timeout = http_timeout() if timeout is None else timeout
        self.retry = retry_policy or retry.RetryPolicy()
        if max_retries is not None:
            self.retry.attempts = max_retries + 1
        self.pricing_name = pricing_name or model
        self.context_window = context_window or pricing.context_window(self.pricing_name)
        self._sync: Any = None
        self._async: tuple[asyncio.AbstractEventLoop, Any] | None = None
        self._lock = threading.Lock()

    # --- clients ------------------------------------------------------------------------------
    def _make(self, cls_name: str) -> Any:
        """A new client of the SDK class `cls_name` (one of `client_classes`); the SDK is imported here."""
        raise NotImplementedError

    def _client(self) -> Any:
        with self._lock:
            if self._sync is None:
                self._sync = self._make(self.client_classes[0])
            return self._sync

    def _aclient(self) -> Any:
        # An async client's connections belong to one event loop: make one per loop.
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._async is None or self._async[0] is not loop:
                self._async = (loop, self._make(self.client_classes[1]))
            return self._async[1]

    @property
    def price_source(self) -> str:  # type: ignore[override]
        """ "given", "table" or "unknown": where this model's price comes from (`pricing.source`)."""
        return pricing.source(self.pricing_name)

    def cost(self, usage: Usage) -> float:
        return pricing.cost(self.pricing_name, usage)

    def sample(self, messages: list[Message], seeds: list[int], **options: Any) -> list[Completion]:
        """One completion per seed, requested at once (a thread each; the results in the order of `seeds`):
        independent samples cost one call's latency, not `len(seeds)`. Each request keeps its own seed and its
        own retries; at most `SAMPLE_THREADS` are in flight (a larger draw queues; 429s are retried as usual).
        (Not one request with `n`: that would give every sample the same seed, and many servers ignore `n`.)"""
        if len(seeds) < 2:
            return super().sample(messages, seeds, **options)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(len(seeds), SAMPLE_THREADS), thread_name_prefix="sample") as pool:
            return list(pool.map(
                lambda i: self.complete(messages, sample_index=i, **{**options, "seed": seeds[i]}),
                range(len(seeds))))

    def close(self) -> None:
        with self._lock:
            if self._sync is not None:
                self._sync.close()
            self._sync, self._async = None, None

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._async is None or self._async[0] is not loop:
                return  # nothing opened in this loop (another loop's client is that loop's to close)
            client, self._async = self._async[1], None
        await client.close()
