"""Anthropic's Messages API via the `anthropic` SDK (imported when a client is built). Names: `anthropic/MODEL`.

OpenAI-style messages and tools are converted on the way in (system messages become the `system`
parameter, consecutive same-role messages merge, tool results become `tool_result` blocks) and
`tool_use` blocks come back as OpenAI-style `tool_calls`, so callers see one format for every provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from orchestrator.errors import MissingDependency
from orchestrator.keys import get_key
from orchestrator.models import retry
from orchestrator.models.base import CallOptions, Completion, Message, Usage
from orchestrator.models.remote import RemoteModel

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [
        {"type": "text", "text": p["text"]} if p.get("type") == "text" else p
        for p in content
        if p.get("type") != "text" or p.get("text")
    ]


def to_anthropic(messages: list[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """(system prompt, Anthropic messages) from OpenAI-style messages."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        if role in ("system", "developer"):
            system.append(
                m["content"]
                if isinstance(m["content"], str)
                else "".join(b.get("text", "") for b in m["content"])
            )
            continue
        if role == "tool":
            role, blocks = (
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": m.get("tool_call_id", ""),
                        "content": m.get("content") or "",
                    }
                ],
            )
        else:
            blocks = _blocks(m.get("content"))
            for call in m.get("tool_calls") or []:
                fn = call["function"]
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": fn["name"],
                        "input": json.loads(fn.get("arguments") or "{}"),
                    }
                )
        if out and out[-1]["role"] == role:
            out[-1]["content"] += blocks
        else:
            out.append({"role": role, "content": blocks})
    return ("\n\n".join(system) or None), out


def tools_to_anthropic(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI function-tool schemas as Anthropic tools (already-Anthropic tools pass through)."""
    out = []
    for tool in tools:
        fn = tool.get("function")
        if fn is None:
            out.append(tool)
            continue
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
        out.append({"name": fn["name"], "description": fn.get("description", ""), "input_schema": schema})
    return out


class AnthropicModel(RemoteModel):
    """Claude models with native tool calling and prompt-cache accounting."""

    supports_tools = True
    client_classes = ("Anthropic", "AsyncAnthropic")

    def __init__(
        self,
        name: str,
        options: CallOptions | None = None,
        *,
        api_key: str | None = None,
        max_tokens: int = 4096,
        **settings: Any,
    ) -> None:
        """`settings`: the rest of `RemoteModel`'s keywords (base_url, timeout, max_retries, ...)."""
        model = name.split("/", 1)[-1]
        super().__init__(name, options, model=model, api_key=get_key("anthropic", api_key), **settings)
        self.max_tokens = max_tokens  # the API requires one; a call's `max_tokens` overrides it

    def _make(self, cls_name: str) -> Any:
        try:
            import anthropic
        except ImportError:
            raise MissingDependency("this model needs `pip install anthropic`") from None
        cls = getattr(anthropic, cls_name)
        return cls(api_key=self.api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    def _request(self, messages: list[Message], options: CallOptions) -> dict[str, Any]:
        system, converted = to_anthropic(messages)
        req: dict[str, Any] = {
            "model": self.model,
            "messages": converted,
            "max_tokens": options.max_tokens or self.max_tokens,
        }
        if system:
            req["system"] = system
        if options.temperature is not None:
            req["temperature"] = options.temperature
        if options.top_p is not None:
            req["top_p"] = options.top_p
        if options.stop:
            req["stop_sequences"] = options.stop
        if options.tools:
            req["tools"] = tools_to_anthropic(options.tools)
        return {**req, **options.extra}  # Anthropic has no `seed`

    def _completion(self, message: Any) -> Completion:
        text = "".join(b.text for b in message.content if b.type == "text")
        calls = [
            {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
            for b in message.content
            if b.type == "tool_use"
        ]
        u = message.usage
        cached = u.cache_read_input_tokens or 0
        prompt = u.input_tokens + cached + (u.cache_creation_input_tokens or 0)
        return Completion(
            text=text,
            model=self.name,
            finish_reason=FINISH.get(message.stop_reason or "", "stop"),
            usage=Usage(prompt, u.output_tokens, cached),
            tool_calls=calls,
            raw=message.model_dump(),
        )

    def _complete(self, messages: list[Message], options: CallOptions) -> Completion:
        req = self._request(messages, options)
        message = retry.call(lambda: self._client().messages.create(**req), self.retry, [self.api_key])
        return self._completion(message)

    async def _acomplete(self, messages: list[Message], options: CallOptions) -> Completion:
        req = self._request(messages, options)
        message = await retry.acall(
            lambda: self._aclient().messages.create(**req), self.retry, [self.api_key]
        )
        return self._completion(message)

    def _stream(
        self, messages: list[Message], options: CallOptions, on_token: Callable[[str], None]
    ) -> Completion:
        """Stream text deltas to `on_token`. A stream cut midway is retried from the start."""
        req = self._request(messages, options)

        def run() -> Any:
            with self._client().messages.stream(**req) as stream:
                for text in stream.text_stream:
                    on_token(text)
                return stream.get_final_message()

        return self._completion(retry.call(run, self.retry, [self.api_key]))
