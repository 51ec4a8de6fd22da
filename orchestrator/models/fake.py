"""Deterministic models for tests and replays, shipped in the package.

`ScriptedModel` answers from a script: a list of replies (strings, or functions of the messages), or a
function of the messages alone. A reply may also be a dict `{"content": str, "tool_calls": [...]}`
(OpenAI-style tool calls; set `supports_tools=True` to stand in for a provider with native tool calling),
and `"confidence": {...}` (token statistics, as `orchestrator.confidence.summarise` makes them; set
`reports_confidence=True` to stand in for a backend that has them).
`ReplayModel` answers with the raw outputs (and tool calls) recorded in a trajectory, so a saved run can be
re-driven offline through the real state machine.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.models.base import CallOptions, ChatModel, Completion, Message, Usage

Reply = str | dict[str, Any] | Callable[[list[Message]], str | dict[str, Any]]


def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: one token per whitespace-separated word (at least 1)."""
    return max(1, len(text.split()))


class ScriptExhausted(RuntimeError):
    """The scripted model was called more times than its script has replies."""


class ScriptedModel(ChatModel):
    """Replies from a script, in order. Thread-safe. Costs `usd_per_token` per token (default free)."""

    def __init__(
        self,
        script: Sequence[Reply] | Callable[[list[Message]], str | dict[str, Any]],
        name: str = "fake/scripted",
        latency: float = 0.0,
        usd_per_token: float = 0.0,
        repeat_last: bool = False,
        context_window: int | None = 32768,
        options: CallOptions | None = None,
        supports_tools: bool = False,
        reports_confidence: bool = False,
    ) -> None:
        super().__init__(options)
        self.name = name
        self.supports_tools = supports_tools
        self.reports_confidence = reports_confidence
        self.script = script
        self.latency = latency
        self.usd_per_token = usd_per_token
        self.price_source = "given" if usd_per_token else "free"
        self.repeat_last = repeat_last
        self.context_window = context_window
        self.calls: list[list[Message]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def _next_reply(self, messages: list[Message]) -> str | dict[str, Any]:
        with self._lock:
            index = len(self.calls)
            self.calls.append(messages)
        if callable(self.script):
            return self.script(messages)
        if index >= len(self.script):
            if not (self.repeat_last and self.script):
                raise ScriptExhausted(f"script has {len(self.script)} replies; call {index + 1} asked")
            index = len(self.script) - 1
        reply = self.script[index]
        return reply(messages) if callable(reply) else reply

    def _enter(self) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1

    def _reply(self, messages: list[Message], options: CallOptions) -> Completion:
        reply = self._next_reply(messages)
        text, tool_calls = (reply.get("content") or "", reply.get("tool_calls") or []) if isinstance(reply, dict) \
            else (reply, [])
        confidence = reply.get("confidence") if isinstance(reply, dict) else None
        if options.stop:
            cut = [text.find(s) for s in options.stop if s and text.find(s) >= 0]
            if cut:
                text = text[: min(cut)]
        prompt = sum(count_tokens(str(m.get("content") or "")) for m in messages)
        usage = Usage(prompt_tokens=prompt, completion_tokens=count_tokens(text))
        finish = "tool_calls" if tool_calls else "stop"
        return Completion(text=text, model=self.name, finish_reason=finish, usage=usage, tool_calls=tool_calls,
                          confidence=confidence, raw={"text": text})

    def _complete(self, messages: list[Message], options: CallOptions) -> Completion:
        self._enter()
        try:
            if self.latency:
                time.sleep(self.latency)
            return self._reply(messages, options)
        finally:
            self._leave()

    async def _acomplete(self, messages: list[Message], options: CallOptions) -> Completion:
        # Sleeps without holding a thread, so tests can measure real async concurrency.
        self._enter()
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return self._reply(messages, options)
        finally:
            self._leave()

    def cost(self, usage: Usage) -> float:
        return usage.total_tokens * self.usd_per_token


def _records(path: Path) -> list[dict[str, Any]]:
    """The records of a trajectory file; a `ConfigError` for a missing file or one that is not a trajectory."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot replay {path}: {getattr(e, 'strerror', None) or e}") from None
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise ConfigError(f"cannot replay {path}: line {n} is not JSON; is it a trajectory (.jsonl)?") from None
        if not isinstance(record, dict):
            raise ConfigError(f"cannot replay {path}: line {n} is not a trajectory record")
        records.append(record)
    if not records or records[0].get("type") != "header":
        raise ConfigError(f"cannot replay {path}: it has no trajectory header (is it a trajectory file?)")
    return records


class ReplayModel(ScriptedModel):
    """Replays the raw model outputs of a saved trajectory (JSONL), in the order they were produced."""

    def __init__(self, trajectory: str | Path, options: CallOptions | None = None) -> None:
        outputs: list[Reply] = []
        tools = False
        name = "fake/replay"
        for record in _records(Path(trajectory)):
            if record.get("type") == "header":
                name = f"replay/{record.get('model', 'unknown')}"
            for call in record.get("calls", []):
                if call.get("tool_calls"):
                    tools = True
                    outputs.append({"content": call["raw_output"], "tool_calls": call["tool_calls"]})
                else:
                    outputs.append(call["raw_output"])
        super().__init__(outputs, name=name, options=options, supports_tools=tools)
