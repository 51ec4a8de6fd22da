"""The one interface every model call goes through: messages in, a `Completion` out.

Adapters subclass `ChatModel` and implement `_complete` (and optionally `_acomplete`, `_stream`).
Everything above this layer (ledger, cache, the state machine) sees only `Completion`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.keys import StreamRedactor, redact

Message = dict[str, Any]  # OpenAI-style: {"role": "user"|"system"|"assistant"|"tool", "content": str, ...}


@dataclass
class Usage:
    """Token counts of one call. `cached_tokens` are prompt tokens served from a prefix cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass
class Completion:
    """The result of one chat completion."""

    text: str
    model: str
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    # where cost_usd came from: "provider" (reported in the response), "litellm" (litellm's own figure), "table"
    # (the price map), "given" (a price the user gave), "free" (a local model) or "unknown" (no price: not $0)
    cost_source: str = ""
    seconds: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    cached: bool = False  # served from the disk cache: no tokens spent this time
    confidence: dict[str, float] | None = None  # the model's token statistics, where the backend has them
    raw: Any = None

    def to_dict(self, raw: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not raw:
            d.pop("raw")
        return d


@dataclass
class CallOptions:
    """Sampling parameters passed to every adapter. Unknown provider options go in `extra`."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def merged(self, **overrides: Any) -> CallOptions:
        data = {**asdict(self), **{k: v for k, v in overrides.items() if v is not None}}
        return CallOptions(**data)

    def key(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}


class ChatModel:
    """Base class of all adapters. Subclasses set `name` and implement `_complete`."""

    name: str = "model"
    context_window: int | None = None
    supports_tools: bool = False
    is_local: bool = False  # in-process: calls must not run concurrently, unless it has slots
    slots: int = 1  # calls an in-process model serves at once (decoded together; see `LocalModel`)
    sample_temperature: float = 0.7  # what vote, best-of-n and beam sample at unless told (see `Weights`)
    reports_confidence: bool = False  # completions carry token statistics (`Completion.confidence`)
    price_source: str = "free"  # where `cost` gets its price (see `Completion.cost_source`)

    @property
    def priced(self) -> bool:
        """Whether a call's dollar cost is known (a free local model's is: $0)."""
        return self.price_source != "unknown"

    def __init__(self, options: CallOptions | None = None) -> None:
        self.options = options or CallOptions()

    # --- to implement -------------------------------------------------------------------
    def _complete(self, messages: list[Message], options: CallOptions) -> Completion:
        raise NotImplementedError

    async def _acomplete(self, messages: list[Message], options: CallOptions) -> Completion:
        return await asyncio.to_thread(self._complete, messages, options)

    def _stream(
        self, messages: list[Message], options: CallOptions, on_token: Callable[[str], None]
    ) -> Completion:
        completion = self._complete(messages, options)
        on_token(completion.text)
        return completion

    def cost(self, usage: Usage) -> float:
        return 0.0

    # --- public -------------------------------------------------------------------------
    def complete(
        self,
        messages: list[Message],
        on_token: Callable[[str], None] | None = None,
        sample_index: int = 0,
        **options: Any,
    ) -> Completion:
        """One chat completion; streams tokens to `on_token` where the backend can. `sample_index` only
        matters to the disk cache (it tells repeated samples of one prompt apart)."""
        opts = self.options.merged(**options)
        start = time.perf_counter()
        if on_token is None:
            completion = self._complete(messages, opts)
        else:
            tokens = StreamRedactor(on_token)
            completion = self._stream(messages, opts, tokens)
            tokens.flush()
        return self._finish(completion, start)

    async def acomplete(self, messages: list[Message], sample_index: int = 0, **options: Any) -> Completion:
        opts = self.options.merged(**options)
        start = time.perf_counter()
        completion = await self._acomplete(messages, opts)
        return self._finish(completion, start)

    def sample(self, messages: list[Message], seeds: list[int], **options: Any) -> list[Completion]:
        """One completion per seed for the same messages (independent samples, e.g. for voting). Here one
        call each; an adapter that can draw them together (the local model: one batch) overrides this."""
        return [self.complete(messages, sample_index=i, **{**options, "seed": s}) for i, s in enumerate(seeds)]

    def _finish(self, completion: Completion, start: float) -> Completion:
        # A model may repeat a key it was sent or saw (a server echoing headers, a leaked prompt): from here on,
        # in answers, prompts, trajectories and output, it is [REDACTED].
        completion.text = redact(completion.text)
        for call in completion.tool_calls:
            if isinstance(fn := call.get("function"), dict) and isinstance(fn.get("arguments"), str):
                fn["arguments"] = redact(fn["arguments"])
        if not completion.seconds:
            completion.seconds = time.perf_counter() - start
        if completion.cached:
            return completion
        if completion.cost_source or completion.cost_usd:  # the adapter read it from the response
            completion.cost_source = completion.cost_source or "provider"
        else:
            completion.cost_usd = self.cost(completion.usage)
            completion.cost_source = self.price_source
        return completion

    def close(self) -> None:
        """Release resources (HTTP clients, loaded weights)."""

    async def aclose(self) -> None:
        """Release what `acomplete` holds in the running event loop (async HTTP connections); call it before
        the loop ends. The model stays usable: a later call opens new connections."""

