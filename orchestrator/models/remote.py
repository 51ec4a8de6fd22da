"""What the remote adapters (OpenAI, Anthropic, litellm) share, so that each keeps only its SDK's calls:
the connection settings, the retry policy, the context window and price lookup, and the SDK clients.

Every call is bounded by the limits the ledger set for it (`limits`): it is given up at the run's deadline
or on a cancel (Ctrl-C), however the server behaves (a hang, a drip of one byte a second), and each HTTP
request's own timeout is cut to the time left."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Callable
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.keys import HTTP_KEY_ENV, add_secret, is_guard_key
from orchestrator.models import limits, pricing, retry
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


def http_retries() -> int | None:
    """Retries after a failed request: `REASON_HTTP_RETRIES` (0 or more), else None (the policy's: 4)."""
    raw = os.environ.get("REASON_HTTP_RETRIES", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ConfigError(f"REASON_HTTP_RETRIES must be a whole number of retries (0 or more), not {raw!r}")
    return int(raw)


SAMPLE_THREADS = 16  # requests one `sample` draw has in flight at most


OVER_CAP = 1.25  # a reply this far over its max_tokens came from a server that ignored the cap


def capped(completion: Completion, max_tokens: int | None) -> Completion:
    """`completion`, its text cut to about `max_tokens` (finish_reason 'length') when the server reported
    more completion tokens than that: a server that ignores the cap would otherwise grow every later prompt
    of the chain by the whole reply. The usage stays as reported (it was paid for)."""
    used = completion.usage.completion_tokens
    if not max_tokens or used <= max_tokens * OVER_CAP or not completion.text:
        return completion
    completion.raw = {"uncapped_chars": len(completion.text), "response": completion.raw}
    completion.text = completion.text[: len(completion.text) * max_tokens // used]
    completion.finish_reason = "length"
    return completion


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
        times out is retried. `max_retries` N means N + 1 attempts (default `REASON_HTTP_RETRIES`, else 4);
        `pricing_name` (default `model`) finds prices and the context window in the price map."""
        super().__init__(options)
        if is_guard_key(api_key):  # however it got here (an env var, an endpoint table): it stays in the server
            raise ConfigError(f"{name}: its key is the guard key of `reason serve`, which is never sent to a model"
                              f" server; give the model its own key ({HTTP_KEY_ENV} for http:// models)")
        add_secret(api_key)  # so that `redact` scrubs it wherever it came from
        self.name, self.model, self.api_key, self.base_url = name, model, api_key, base_url
        self.timeout = http_timeout() if timeout is None else timeout
        self.retry = retry_policy or retry.RetryPolicy()
        if max_retries is None and retry_policy is None:
            max_retries = http_retries()
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

    def complete(self, messages: list[Message], on_token: Callable[[str], None] | None = None,
                 sample_index: int = 0, **options: Any) -> Completion:
        """`ChatModel.complete`, given up at the call's deadline or on a cancel (`limits.bounded`); a reply far
        over the `max_tokens` asked for is cut to it (`capped`)."""
        completion = limits.bounded(
            lambda: super(RemoteModel, self).complete(messages, on_token, sample_index, **options))
        return capped(completion, options.get("max_tokens") or self.options.max_tokens)

    def _request_options(self) -> dict[str, Any]:
        """Per-request SDK options: the HTTP timeout, cut to the time the call has left (so a request given up
        at the deadline does not linger in its thread for the full timeout)."""
        left = limits.current().time_left()
        return {} if left is None or left + 1 >= self.timeout else {"timeout": max(0.1, left + 1)}

    def sample(self, messages: list[Message], seeds: list[int], **options: Any) -> list[Completion]:
        """One completion per seed, requested at once (a thread each; the results in the order of `seeds`):
        independent samples cost one call's latency, not `len(seeds)`. Each request keeps its own seed and its
        own retries; at most `SAMPLE_THREADS` are in flight (a larger draw queues; 429s are retried as usual).
        (Not one request with `n`: that would give every sample the same seed, and many servers ignore `n`.)"""
        if len(seeds) < 2:
            return super().sample(messages, seeds, **options)
        from concurrent.futures import ThreadPoolExecutor

        # each request runs in a copy of this thread's context: under the limits of the call that drew them
        contexts = [contextvars.copy_context() for _ in seeds]
        with ThreadPoolExecutor(min(len(seeds), SAMPLE_THREADS), thread_name_prefix="sample") as pool:
            return list(pool.map(
                lambda i: contexts[i].run(self.complete, messages, sample_index=i, **{**options, "seed": seeds[i]}),
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
