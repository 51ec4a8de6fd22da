"""What `reason serve` sends back: OpenAI-shaped completions and SSE chunks, and errors a client may see.

Errors: a client gets a status and a short message of ours, never an exception's text (which can quote a
file, a provider's paragraph or a key); the details go to the server log (`reason.serve`), redacted, under
the request id the client was given. The reasoning goes out as both `reasoning_content` (DeepSeek, llama.cpp,
LiteLLM) and `reasoning` (vLLM, OpenRouter). Every text sent is passed through `keys.redact`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from orchestrator.errors import (
    ConfigError,
    ContextLengthExceeded,
    MissingDependency,
    MissingKey,
    ModelUnavailable,
    ProviderError,
)
from orchestrator.keys import redact
from orchestrator.kinds import StepKind, StopReason, is_budget
from orchestrator.reasoner import Reasoner, Result
from orchestrator.server_requests import APIError
from orchestrator.trajectory import Step

log = logging.getLogger("reason.serve")
# class -> (status, code, the message a client sees); ConfigError's own message is about the request
PUBLIC = [
    (ContextLengthExceeded, 400, "context_length_exceeded", "the conversation does not fit the model's context"),
    (MissingKey, 503, "missing_provider_key", "the server has no API key for this model's provider"),
    (MissingDependency, 503, "missing_dependency", "the server lacks a package this model needs"),
    (ModelUnavailable, 503, "model_unavailable", "the model's weights are not available on this server"),
    (ProviderError, 502, "upstream_error", "the model server failed or refused the call"),
    (ConfigError, 400, "invalid_request", ""),
]


def public_error(e: BaseException, request_id: str) -> APIError:
    """The error a client sees for an exception, logged in full (redacted) under `request_id`."""
    status, code, message = next(((s, c, m) for cls, s, c, m in PUBLIC if isinstance(e, cls)),
                                 (500, "internal_error", "internal server error"))
    if isinstance(e, ConfigError):
        message = redact(str(e).strip().splitlines()[0] if str(e).strip() else "invalid request")[:300]
    if status >= 500:
        log.error("request %s: %s", request_id, redact("".join(traceback.format_exception(e)).strip()))
    else:
        log.warning("request %s: %s: %s", request_id, type(e).__name__, redact(str(e)))
    return APIError(status, f"{message} (request {request_id})" if status >= 500 else message, code)


def step_text(step: Step) -> str:
    """One step as reasoning text: a heading (kind, reward, verdict) and its content."""
    head = f"[{step.kind}" + (f" reward={step.reward:.2f}" if step.reward is not None else "")
    head += (" verdict=" + ("correct" if step.verdict else "incorrect")) if step.verdict is not None else ""
    head += " abandoned]" if step.abandoned else "]"
    body = f"```python\n{step.code}\n```\n{step.observation or ''}" if step.kind == StepKind.ACT else step.text
    return redact(f"{head}\n{body.strip()}\n\n")


def usage(result: Result) -> dict[str, Any]:
    """OpenAI usage, o1-style: every generated token went into reasoning."""
    u = result.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens, "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": u.completion_tokens}}


def finish_reason(result: Result) -> str:
    """`length` when a budget or the step limit ended the run without an answer."""
    cut = is_budget(result.stop_reason) or result.stop_reason == StopReason.STEP_LIMIT
    return "length" if result.answer is None and cut else "stop"


def extras(result: Result) -> dict[str, Any]:
    """What an OpenAI response has no field for: strategy, stop reason, cost, the trajectory file."""
    return {"model": result.model, "strategy": result.strategy, "stop_reason": result.stop_reason,
            "normalized": result.normalized, "calls": result.usage.calls,
            "cost_usd": round(result.usage.cost_usd, 8), "seconds": round(result.seconds, 3),
            "steps": len(result.steps), "trajectory": result.trajectory_path}


def completion(result: Result, model: str, reasoning: bool) -> dict[str, Any]:
    """The chat.completion object of a finished solve."""
    message: dict[str, Any] = {"role": "assistant", "content": redact(result.answer or "")}
    if reasoning:
        message["reasoning_content"] = message["reasoning"] = "".join(step_text(s) for s in result.steps)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(result)}],
        "usage": usage(result), "reason": extras(result),
    }


async def watch_disconnect(request: Request, cancel: threading.Event) -> None:
    """Set `cancel` when the client goes away. The body is read by then, so the next ASGI message can only
    be the disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    cancel.set()


class SolveStream(StreamingResponse):
    """The SSE response of a solve, which it cancels if the client disconnects mid-answer."""

    def __init__(self, content: AsyncIterator[str], cancel: threading.Event) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.cancel = cancel

    async def listen_for_disconnect(self, receive: Receive) -> None:
        await super().listen_for_disconnect(receive)
        self.cancel.set()  # now, not when the body iterator returns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cancel.set()  # however the response ended (ASGI 2.4 reports a disconnect as OSError)


async def solve_events(reasoner: Reasoner, question: str, cancel: threading.Event, keepalive: float,
                       done: Callable[[], None]) -> AsyncIterator[tuple[str, Any]]:
    """`reasoner.stream` from a worker thread, with ("keepalive", None) whenever `keepalive` seconds pass
    without an event (so proxies and clients keep a long solve's connection open). `done` runs in the worker
    once the solve is over, whether or not anyone still listens."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(item: tuple[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        try:
            for item in reasoner.stream(question, cancel):
                put(item)
        except BaseException as e:  # noqa: BLE001 - handed to the event loop and re-raised there
            put(("error", e))
        finally:
            done()
            put(("done", None))

    threading.Thread(target=work, daemon=True, name="serve-solve").start()
    try:
        while True:
            try:
                kind, payload = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield "keepalive", None
                continue
            if kind == "done":
                return
            if kind == "error":
                raise payload
            yield kind, payload
    finally:
        cancel.set()  # a consumer that stops early (the client left) stops the solve too


def sse(data: Any) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"
