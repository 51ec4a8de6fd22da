"""An opt-in disk cache of completions around any `ChatModel`.

The key is the sha256 of (model name, messages, call options, sample index): asking for sample 0 and
sample 1 of the same prompt gives two entries, so repeated sampling still samples. One JSON file per
entry, written to a temporary file and renamed into place, so concurrent threads and processes only
ever see whole entries (two racing misses both call the model; the last write wins).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.models.base import CallOptions, ChatModel, Completion, Message, Usage


class CachedModel(ChatModel):
    """`inner` with its completions stored under `directory`; a hit comes back with `cached=True`."""

    def __init__(self, inner: ChatModel, directory: str | Path) -> None:
        super().__init__(inner.options)
        self.inner = inner
        self.directory = Path(directory).expanduser()
        self.name = inner.name
        self.context_window = inner.context_window
        self.supports_tools = inner.supports_tools
        self.is_local = inner.is_local
        self.sample_temperature = inner.sample_temperature
        self.slots = inner.slots
        self.reports_confidence = inner.reports_confidence
        self.price_source = inner.price_source
        self.hits = 0
        self.misses = 0

    def key(self, messages: list[Message], options: CallOptions, sample_index: int = 0) -> str:
        """The cache key of one call."""
        data = {
            "model": self.inner.name,
            "messages": messages,
            "options": options.key(),
            "sample_index": sample_index,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def load(self, key: str) -> Completion | None:
        """The stored completion for `key`, marked cached; None on a miss or an unreadable entry."""
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            return Completion(**{**data, "usage": Usage(**data["usage"]), "cached": True})
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def store(self, key: str, completion: Completion) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({**completion.to_dict(raw=True), "cached": False}, f, default=str)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _hit(self, key: str, on_token: Callable[[str], None] | None) -> Completion | None:
        start = time.perf_counter()
        hit = self.load(key)
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        hit.seconds = time.perf_counter() - start
        if on_token is not None:
            on_token(hit.text)
        return hit

    def complete(
        self,
        messages: list[Message],
        on_token: Callable[[str], None] | None = None,
        sample_index: int = 0,
        **options: Any,
    ) -> Completion:
        """A stored completion, or `inner.complete(...)` stored for next time."""
        key = self.key(messages, self.inner.options.merged(**options), sample_index)
        if (hit := self._hit(key, on_token)) is not None:
            return hit
        completion = self.inner.complete(messages, on_token=on_token, **options)
        self.store(key, completion)
        return completion

    async def acomplete(self, messages: list[Message], sample_index: int = 0, **options: Any) -> Completion:
        key = self.key(messages, self.inner.options.merged(**options), sample_index)
        if (hit := self._hit(key, None)) is not None:
            return hit
        completion = await self.inner.acomplete(messages, **options)
        self.store(key, completion)
        return completion

    def cost(self, usage: Usage) -> float:
        return self.inner.cost(usage)

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()
