"""An OpenAI-compatible API, so that any OpenAI client can use a reasoning strategy as if it were a model.

    reason serve --port 8000
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    client.chat.completions.create(model="reason:chain:local/qwen2.5-coder-1.5b", messages=[...],
                                   extra_body={"reasoning": True, "max_usd": 0.05})

Model names: `reason:STRATEGY:MODEL`, `reason:MODEL` or a plain `MODEL` (the server's default strategy),
`reason` or `reason:STRATEGY` (the server's default model). The last user message is the question; earlier
turns are given as context; system messages become `ReasonConfig.system`. `extra_body` may carry budgets
(`max_tokens_budget`, `max_usd`, `max_seconds`, `max_calls`), `strategy_options` and the config knobs in
`CONFIG_KEYS`; `reasoning: true` (or `include_reasoning`) returns the steps in `message.reasoning_content`.
Usage is reported like o1: every generated token was spent reasoning, so `reasoning_tokens` equals
`completion_tokens`. Blocking solves run in a thread pool, so concurrent requests work. A client that
disconnects (streaming or not) cancels its solve: it stops at its next step, no further model call is made,
and its trajectory ends with the stop reason `interrupted`.
References: the OpenAI chat completions API; vLLM's and OpenRouter's `reasoning_content` field.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from orchestrator.config import ReasonConfig
from orchestrator.strategies import DEFAULT_STRATEGY, STRATEGIES
from orchestrator.errors import ConfigError, ContextLengthExceeded, MissingDependency, MissingKey
from orchestrator.errors import Cancelled, ModelUnavailable, ProviderError, ReasonError
from orchestrator.ledger import Budget
from orchestrator.models import DEFAULT_MODEL, ChatModel, get_model, provider_of
from orchestrator.reasoner import Reasoner, Result
from orchestrator.trajectory import Step

CONFIG_KEYS = ("max_steps", "max_attempts", "max_extra_steps", "plan", "reflect", "verify", "reflect_every",
               "reward_high", "reward_low", "max_backtracks", "max_tokens_per_call", "temperature", "seed",
               "kind")
BUDGET_KEYS = {"max_tokens_budget": "max_tokens", "max_usd": "max_usd", "max_seconds": "max_seconds",
               "max_calls": "max_calls"}
STATUS = [(MissingKey, 400, "missing_provider_key"), (ContextLengthExceeded, 400, "context_length_exceeded"),
          (ConfigError, 400, None), (MissingDependency, 500, "missing_dependency"),
          (ModelUnavailable, 503, "model_unavailable"), (ProviderError, 502, "upstream_error"),
          (ReasonError, 500, None)]


class APIError(Exception):
    """A request the server refuses, with the HTTP status and OpenAI error fields to report."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.param = status, code, param

    def body(self) -> dict[str, Any]:
        kind = ("authentication_error" if self.status == 401 else "invalid_request_error" if self.status < 500
                else "server_error")
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.code}}


def api_error(e: Exception) -> APIError:
    """The OpenAI-style error for an exception: mapped by class, anything else a 500. Keys are redacted."""
    from orchestrator.keys import redact

    status, code = next(((s, c) for cls, s, c in STATUS if isinstance(e, cls)), (500, "internal_error"))
    message = str(e) if isinstance(e, ReasonError) else f"{type(e).__name__}: {e}"
    return APIError(status, redact(message), code)


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of text parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise APIError(400, "only text content is supported", "unsupported_content", "messages")


def conversation(messages: Any) -> tuple[str, str | None]:
    """(question, system) from OpenAI messages: the last user turn, with earlier turns as context."""
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise APIError(400, "`messages` must be a non-empty list of message objects", param="messages")
    instructions = [m for m in messages if m.get("role") in ("system", "developer")]
    system = "\n\n".join(text_of(m.get("content")) for m in instructions)
    turns = [(m.get("role"), text_of(m.get("content"))) for m in messages if m not in instructions]
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise APIError(400, "the last message must be a non-empty user message", param="messages")
    question = turns[-1][1].strip()
    if len(turns) > 1:
        earlier = "\n\n".join(f"{str(role).capitalize()}: {text.strip()}" for role, text in turns[:-1])
        question = f"Earlier in this conversation:\n\n{earlier}\n\nThe question to answer now:\n\n{question}"
    return question, system or None


def step_text(step: Step) -> str:
    """One step as reasoning text: a heading (kind, reward, verdict) and its content."""
    head = f"[{step.kind}" + (f" reward={step.reward:.2f}" if step.reward is not None else "")
    head += (" verdict=" + ("correct" if step.verdict else "incorrect")) if step.verdict is not None else ""
    head += " abandoned]" if step.abandoned else "]"
    body = f"```python\n{step.code}\n```\n{step.observation or ''}" if step.kind == "act" else step.text
    return f"{head}\n{body.strip()}\n\n"


def usage(result: Result) -> dict[str, Any]:
    """OpenAI usage, o1-style: every generated token went into reasoning."""
    u = result.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens, "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": u.completion_tokens}}


def finish_reason(result: Result) -> str:
    """`length` when a budget or the step limit ended the run without an answer."""
    return "length" if result.answer is None and result.stop_reason.startswith(("budget", "step")) else "stop"


async def watch_disconnect(request: Request, cancel: threading.Event) -> None:
    """Set `cancel` when the client goes away. The body is read by then, so the next ASGI message can only
    be the disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    cancel.set()


class SolveStream(StreamingResponse):
    """The SSE response of a solve, which it cancels if the client disconnects mid-answer."""

    def __init__(self, content: AsyncIterator[str], cancel: threading.Event) -> None:
        super().__init__(content, media_type="text/event-stream")
        self.cancel = cancel

    async def listen_for_disconnect(self, receive: Receive) -> None:
        await super().listen_for_disconnect(receive)
        self.cancel.set()  # now, not when the body iterator returns: it waits (shielded) for the next step

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cancel.set()  # however the response ended (ASGI 2.4 reports a disconnect as OSError)


class ReasonAPI:
    """The server's state: settings, the cache of model adapters, and the request handlers."""

    def __init__(self, api_key: str | None = None, model: str = DEFAULT_MODEL, strategy: str = DEFAULT_STRATEGY,
                 runs_dir: str | Path | None = None, tools: bool | None = None, sandbox: str = "local") -> None:
        self.api_key, self.default_model, self.default_strategy = api_key, model, strategy
        self.runs_dir, self.tools, self.sandbox = runs_dir, tools, sandbox
        self.models: dict[str, ChatModel] = {}
        self._lock = threading.Lock()

    def check_key(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise APIError(401, "invalid API key: send `Authorization: Bearer KEY`", "invalid_api_key")

    def parse_model(self, name: Any) -> tuple[str, str]:
        """(strategy, model) from a model name of the forms in the module docstring."""
        if not isinstance(name, str) or not name.strip():
            raise APIError(400, "`model` is required", param="model")
        strategy, model = self.default_strategy, name.strip()
        if model == "reason" or model.startswith("reason:"):
            rest = model.removeprefix("reason").removeprefix(":")
            head, sep, tail = rest.partition(":")
            if sep and "/" not in head and head not in ("http", "https"):
                strategy, model = head, tail
            elif rest and "/" not in rest:
                strategy, model = rest, ""
            else:
                model = rest
        if strategy not in STRATEGIES:
            raise APIError(404, f"unknown strategy {strategy!r} in model {name!r}; strategies: "
                                f"{', '.join(STRATEGIES)}", "model_not_found", "model")
        return strategy, model or self.default_model

    def model(self, name: str) -> ChatModel:
        """The adapter for a model name, built once; replays are rebuilt per request (they are one-shot)."""
        one_shot = provider_of(name) in ("replay", "fake")
        with self._lock:
            if name in self.models:
                return self.models[name]
            try:
                built = get_model(name)
            except (ConfigError, FileNotFoundError) as e:
                raise APIError(404, f"unknown model {name!r}: {e}", "model_not_found", "model") from None
            if not one_shot:
                self.models[name] = built
            return built

    def reasoner(self, body: dict[str, Any]) -> tuple[Reasoner, str]:
        strategy, name = self.parse_model(body.get("model"))
        if body.get("n", 1) != 1:
            raise APIError(400, "only n=1 is supported", param="n")
        question, system = conversation(body.get("messages"))
        budget: dict[str, Any] = {}
        for key, field in BUDGET_KEYS.items():
            value = body.get(key)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if value is not None and not (number and value > 0):
                raise APIError(400, f"`{key}` must be a positive number", param=key)
            budget[field] = value
        options = body.get("strategy_options") or {}
        if not isinstance(options, dict):
            raise APIError(400, "`strategy_options` must be an object", param="strategy_options")
        knobs = {k: body[k] for k in CONFIG_KEYS if body.get(k) is not None}
        try:
            config = ReasonConfig(system=system, **knobs)
        except ValidationError as e:
            first = e.errors()[0]
            raise APIError(400, f"{first['loc'][0]}: {first['msg']}", param=str(first["loc"][0])) from None
        model = self.model(name)
        reasoner = Reasoner(model, strategy, Budget(**budget), config, runs_dir=self.runs_dir,
                            tools=self.tools, sandbox=self.sandbox, strategy_options=options)
        return reasoner, question

    def completion(self, result: Result, model: str, reasoning: bool) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": result.answer or ""}
        if reasoning:
            message["reasoning_content"] = "".join(step_text(s) for s in result.steps)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(result)}],
            "usage": usage(result), "reason": extras(result),
        }

    async def chat(self, request: Request) -> Response:
        self.check_key(request)
        try:
            body = await request.json()
        except ValueError:
            raise APIError(400, "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise APIError(400, "the request body must be a JSON object")
        try:
            reasoner, question = self.reasoner(body)
        except ReasonError as e:
            raise api_error(e) from None
        reasoning = bool(body.get("reasoning") or body.get("include_reasoning"))
        cancel = threading.Event()  # set once the client is gone: the solve stops at its next step
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = self.events(reasoner, question, body["model"], reasoning, include_usage, cancel)
            return SolveStream(events, cancel)
        watcher = asyncio.ensure_future(watch_disconnect(request, cancel))
        try:
            result = await run_in_threadpool(reasoner.solve, question, cancel=cancel)
        except Cancelled:
            return Response(status_code=499)  # nginx's "client closed request"; nobody will read it
        except ReasonError as e:
            raise api_error(e) from None
        finally:
            watcher.cancel()
            self.release(reasoner)
        return JSONResponse(self.completion(result, body["model"], reasoning))

    async def events(self, reasoner: Reasoner, question: str, model: str, reasoning: bool,
                     include_usage: bool, cancel: threading.Event) -> AsyncIterator[str]:
        """SSE chunks: the role, the steps as they happen (on request), the answer, the usage, [DONE]."""
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            data = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        try:
            async for kind, payload in iterate_in_threadpool(reasoner.stream(question, cancel)):
                if kind == "step" and reasoning:
                    yield chunk({"reasoning_content": step_text(payload)})
                elif kind == "result":
                    result: Result = payload
            yield chunk({"content": result.answer or ""})
            yield chunk({}, finish_reason(result), reason=extras(result))
            if include_usage:
                yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage(result)})}\n\n"
        except Cancelled:
            return  # the client is gone; a KeyboardInterrupt must not reach the event loop
        except Exception as e:  # noqa: BLE001 - the headers are sent: report in-stream, as OpenAI does
            yield f"data: {json.dumps(api_error(e).body())}\n\n"
        finally:
            self.release(reasoner)
        yield "data: [DONE]\n\n"

    def release(self, reasoner: Reasoner) -> None:
        if reasoner.model not in self.models.values():
            reasoner.close()

    async def list_models(self, request: Request) -> Response:
        self.check_key(request)
        from orchestrator.models.weights import WEIGHTS

        names = [f"reason:{s}:{self.default_model}" for s in STRATEGIES]
        names += [f"reason:{self.default_strategy}:local/{k}" for k in WEIGHTS]
        created = int(time.time())
        data = [{"id": n, "object": "model", "created": created, "owned_by": "reason"}
                for n in dict.fromkeys(names)]
        return JSONResponse({"object": "list", "data": data})

    def close(self) -> None:
        for model in self.models.values():
            model.close()


def extras(result: Result) -> dict[str, Any]:
    """What an OpenAI response has no field for: strategy, stop reason, cost, the trajectory file."""
    return {"model": result.model, "strategy": result.strategy, "stop_reason": result.stop_reason,
            "normalized": result.normalized, "calls": result.usage.calls,
            "cost_usd": round(result.usage.cost_usd, 8), "seconds": round(result.seconds, 3),
            "steps": len(result.steps), "trajectory": result.trajectory_path}


def create_app(api_key: str | None = None, **settings: Any) -> Starlette:
    """The ASGI app. `settings` go to `ReasonAPI` (model, strategy, runs_dir, tools, sandbox)."""
    api = ReasonAPI(api_key=api_key, **settings)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse(APIError(exc.status_code, str(exc.detail)).body(), status_code=exc.status_code)

    async def on_crash(request: Request, exc: Exception) -> Response:
        return JSONResponse(api_error(exc).body(), status_code=500)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[Route("/v1/chat/completions", api.chat, methods=["POST"]),
                Route("/v1/models", api.list_models, methods=["GET"]), Route("/health", health)],
        exception_handlers={APIError: on_api_error, HTTPException: on_http_error, Exception: on_crash},
    )
    app.state.api = api
    return app
