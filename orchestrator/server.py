"""An OpenAI-compatible API, so that any OpenAI client can use a reasoning strategy as if it were a model.

    reason serve --port 8000 -m local/qwen2.5-coder-1.5b
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    client.chat.completions.create(model="reason:chain:local/qwen2.5-coder-1.5b", messages=[...],
                                   extra_body={"reasoning": True, "max_usd": 0.05})

Model names: `reason:STRATEGY:MODEL`, `reason:MODEL` or a plain `MODEL` (the server's default strategy),
`reason` or `reason:STRATEGY` (the server's default model: the first configured). Only the models the operator
configured are served (`server_requests.ModelPolicy`). The last user message is the question; earlier turns
are given as context; system messages become `ReasonConfig.system`. The body may carry budgets
(`max_tokens_budget`, `max_usd`, `max_seconds`, `max_calls`), `reasoning_effort`, and, as fields beside them, the
strategy's options and every `ReasonConfig` field but the operator's (`server_requests.REFUSED`), sorted as
`reason ask -S` sorts them (`strategy_options` may hold the options too); `max_tokens` caps each call;
`reasoning: true` (or `include_reasoning`) returns
the steps in `message.reasoning_content` and `message.reasoning`. Usage is reported like o1: every generated
token was spent reasoning, so `reasoning_tokens` equals `completion_tokens`. Solves run in worker threads, so
concurrent requests work; a stream sends an SSE comment every `keepalive` seconds while it waits. A client that
disconnects (streaming or not) cancels its solve: it stops at its next step, no further model call is made,
and its trajectory ends with the stop reason `interrupted`. Every failure is an OpenAI-shaped error with a
short message (`server_output.public_error`); the details go to the server log.
References: the OpenAI chat completions API; vLLM's and OpenRouter's `reasoning_content` field.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orchestrator.config import ReasonConfig
from orchestrator.errors import Cancelled, ConfigError
from orchestrator.keys import add_secret, redact
from orchestrator.ledger import Budget
from orchestrator.models import DEFAULT_MODEL, ChatModel, get_model, provider_of
from orchestrator.reasoner import Reasoner, Result
from orchestrator.server_output import (
    SolveStream,
    completion,
    extras,
    finish_reason,
    log,
    public_error,
    solve_events,
    sse,
    step_text,
    usage,
    watch_disconnect,
)
from orchestrator.server_requests import (
    BUDGET_KEYS,
    EFFORT,
    FIELDS,
    REFUSED,
    APIError,
    ModelPolicy,
    budget_of,
    check_length,
    conversation,
    effort_of,
    knobs_of,
    read_body,
    settings_of,
    short,
)
from orchestrator.strategies import DEFAULT_STRATEGY, STRATEGIES
from orchestrator.strategies.knobs import Knobs, split_settings
from orchestrator.strategies.options import UnknownOption, parse_options
from orchestrator.trajectory import default_runs_dir

MAX_BODY = 2 * 1024 * 1024  # bytes: ~500k tokens of text, more than any context window we serve
KEEPALIVE = 15.0  # seconds between SSE comments while a solve is quiet
RUN_NAME = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}(\.jsonl)?")  # what `Reasoner` names a run


class ReasonAPI:
    """The server's state: settings, the allow-list and cache of model adapters, and the request handlers.
    `model`: the model (or models; the first is the default) the operator serves; `allow_models`: patterns of
    further names; `keep_runs`: seconds a trajectory is kept (0: none written; None: kept)."""

    def __init__(self, api_key: str | None = None, model: str | list[str] = DEFAULT_MODEL,
                 strategy: str = DEFAULT_STRATEGY, runs_dir: str | Path | None = None, tools: bool | None = None,
                 sandbox: str = "local", allow_models: list[str] | tuple[str, ...] = (), max_body: int = MAX_BODY,
                 keep_runs: float | None = None, keepalive: float = KEEPALIVE) -> None:
        models = [model] if isinstance(model, str) else list(model)
        self.api_key, self.default_model, self.default_strategy = api_key, models[0], strategy
        add_secret(api_key, guard=True)  # redacted everywhere, and never sent to a model server
        self.policy = ModelPolicy(models, allow_models)
        if keep_runs and runs_dir is None:  # pruning must not reach the CLI's runs in the shared folder
            runs_dir = default_runs_dir() / "serve"
        self.runs_dir, self.tools, self.sandbox = runs_dir, tools, sandbox
        self.max_body, self.keep_runs, self.keepalive = max_body, keep_runs, keepalive
        self.models: dict[str, ChatModel] = {}
        self._lock = threading.Lock()
        self._pruned = 0.0

    def check_key(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise APIError(401, "invalid API key: send `Authorization: Bearer KEY`", "invalid_api_key")

    def parse_model(self, name: Any) -> tuple[str, str, bool]:
        """(strategy, model, whether the name chose the strategy) from a name of the forms in the docstring."""
        if not isinstance(name, str) or not name.strip():
            raise APIError(400, "`model` is required", param="model")
        strategy, model, chosen = self.default_strategy, name.strip(), False
        if model == "reason" or model.startswith("reason:"):
            rest = model.removeprefix("reason").removeprefix(":")
            head, sep, tail = rest.partition(":")
            if sep and "/" not in head and head not in ("http", "https"):
                strategy, model, chosen = head, tail, True
            elif rest and "/" not in rest:
                strategy, model, chosen = rest, "", True
            else:
                model = rest
        if strategy not in STRATEGIES:
            raise APIError(404, f"unknown strategy {short(strategy)} in model {short(name)}; strategies: "
                                f"{', '.join(STRATEGIES)}", "model_not_found", "model")
        model = model or self.default_model
        self.policy.check(model)
        return strategy, model, chosen

    def model(self, name: str) -> ChatModel:
        """The adapter for an allowed model name, built once; replays are rebuilt per request (one-shot)."""
        one_shot = provider_of(name) in ("replay", "fake")
        with self._lock:
            if name in self.models:
                return self.models[name]
            try:
                built = get_model(name)
            except Exception as e:  # noqa: BLE001 - the operator's model: the details are for the log only
                log.error("model %s cannot be built: %s: %s", name, type(e).__name__, redact(str(e)))
                raise APIError(503, f"model {short(name)} is not available on this server (see its log)",
                               "model_unavailable", "model") from None
            if not one_shot:
                self.models[name] = built
            return built

    def reasoner(self, body: dict[str, Any]) -> tuple[Reasoner, str]:
        settings = settings_of(body)
        strategy, name, chosen = self.parse_model(body.get("model"))
        if body.get("n") not in (None, 1):
            raise APIError(400, "only n=1 is supported", param="n")
        effort = effort_of(body)
        if effort and not chosen:
            strategy = EFFORT[effort][0]
        question, system = conversation(body.get("messages"))
        given = body.get("strategy_options") or {}
        if not isinstance(given, dict):
            raise APIError(400, "`strategy_options` must be an object", param="strategy_options")
        knobs = self.knobs(strategy, settings, given)
        try:
            config = ReasonConfig(system=system, **{**knobs_of(body), **knobs.config})
        except ValidationError as e:
            first = e.errors()[0]
            raise APIError(400, f"{first['loc'][0]}: {first['msg']}", param=str(first["loc"][0])) from None
        budget = budget_of(knobs.budget, effort)
        options = knobs.options
        model = self.model(name)
        check_length(question, system, name, model.context_window)
        reasoner = Reasoner(model, strategy, Budget(**budget), config, runs_dir=self.runs_dir,
                            tools=self.tools, sandbox=self.sandbox, strategy_options=options,
                            save_trajectory=self.keep_runs != 0)
        return reasoner, question

    @staticmethod
    def knobs(strategy: str, settings: dict[str, Any], options: dict[str, Any]) -> Knobs:
        """A request's settings sorted into config, budget and strategy options (`split_settings`, the path of
        `reason ask -S` and bench arms); `options` (the `strategy_options` object) may hold options only."""
        try:
            parse_options(strategy, options)
            knobs = split_settings(strategy, {**options, **settings}, budget_keys=BUDGET_KEYS, refused=REFUSED,
                                   also=sorted(FIELDS))
        except UnknownOption as e:
            raise APIError(400, str(e), "unknown_parameter", e.key[:60]) from None
        except ConfigError as e:
            raise APIError(400, str(e), "invalid_request") from None
        return knobs

    async def chat(self, request: Request) -> Response:
        """POST /v1/chat/completions. Every failure becomes an OpenAI-shaped error here (none reaches uvicorn,
        which would log its text)."""
        request_id = uuid.uuid4().hex[:12]
        try:
            self.check_key(request)
            body: dict[str, Any] = await read_body(request, self.max_body)
            reasoner, question = self.reasoner(body)
            reasoning = bool(body.get("reasoning") or body.get("include_reasoning"))
            cancel = threading.Event()  # set once the client is gone: the solve stops at its next step
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                events = self.events(reasoner, question, body["model"], reasoning, include_usage, cancel,
                                     request_id)
                return SolveStream(events, cancel)
            watcher = asyncio.ensure_future(watch_disconnect(request, cancel))
            try:
                result = await run_in_threadpool(reasoner.solve, question, cancel=cancel)
            except Cancelled:
                return Response(status_code=499)  # nginx's "client closed request"; nobody will read it
            finally:
                watcher.cancel()
                self.release(reasoner)
            return JSONResponse(completion(result, body["model"], reasoning))
        except APIError as e:
            log.info("request %s: %s %s", request_id, e.status, e)
            return JSONResponse(e.body(), status_code=e.status)
        except Exception as e:  # noqa: BLE001 - mapped to a short message; the details go to the log
            error = public_error(e, request_id)
            return JSONResponse(error.body(), status_code=error.status)

    async def events(self, reasoner: Reasoner, question: str, model: str, reasoning: bool, include_usage: bool,
                     cancel: threading.Event, request_id: str) -> AsyncIterator[str]:
        """SSE chunks: the role, the steps as they happen (on request), the answer, the usage, [DONE];
        a comment line whenever the solve is quiet for `keepalive` seconds."""
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            return sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

        yield chunk({"role": "assistant", "content": ""})
        try:
            result: Result | None = None
            async for kind, payload in solve_events(reasoner, question, cancel, self.keepalive,
                                                    lambda: self.release(reasoner)):
                if kind == "keepalive":
                    yield ": keep-alive\n\n"
                elif kind == "step" and reasoning:
                    text = step_text(payload)
                    yield chunk({"reasoning_content": text, "reasoning": text})
                elif kind == "result":
                    result = payload
            assert result is not None
            yield chunk({"content": redact(result.answer or "")})
            yield chunk({}, finish_reason(result), reason=extras(result))
            if include_usage:
                yield sse({**base, "choices": [], "usage": usage(result)})
        except Cancelled:
            return  # the client is gone; a KeyboardInterrupt must not reach the event loop
        except Exception as e:  # noqa: BLE001 - the headers are sent: report in-stream, as OpenAI does
            yield sse(public_error(e, request_id).body())
        yield "data: [DONE]\n\n"

    def release(self, reasoner: Reasoner) -> None:
        """After a solve: close a one-shot model, prune old runs."""
        if reasoner.model not in self.models.values():
            reasoner.close()
        self.prune()

    def prune(self, now: float | None = None) -> int:
        """Delete runs older than `keep_runs` from the runs folder (at most once a minute). Returns how many."""
        now = time.time() if now is None else now
        if not self.keep_runs or now - self._pruned < 60 or self.runs_dir is None:
            return 0
        self._pruned, removed = now, 0
        for entry in Path(self.runs_dir).glob("*"):
            try:
                if RUN_NAME.fullmatch(entry.name) and now - entry.stat().st_mtime > self.keep_runs:
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                    removed += 1
            except OSError as e:  # another request pruning too, or a file in use: next time
                log.warning("could not prune %s: %s", entry, e)
        return removed

    async def list_models(self, request: Request) -> Response:
        try:
            self.check_key(request)
        except APIError as e:
            return JSONResponse(e.body(), status_code=e.status)
        names = [f"reason:{s}:{m}" for m in self.policy.models for s in STRATEGIES]
        created = int(time.time())
        data = [{"id": n, "object": "model", "created": created, "owned_by": "reason"}
                for n in dict.fromkeys(names)]
        return JSONResponse({"object": "list", "data": data})

    def close(self) -> None:
        for model in self.models.values():
            model.close()


def create_app(api_key: str | None = None, **settings: Any) -> Starlette:
    """The ASGI app. `settings` go to `ReasonAPI` (model, strategy, runs_dir, tools, sandbox, allow_models,
    max_body, keep_runs, keepalive)."""
    api = ReasonAPI(api_key=api_key, **settings)
    api.prune()

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse(APIError(exc.status_code, str(exc.detail)).body(), status_code=exc.status_code)

    async def on_crash(request: Request, exc: Exception) -> Response:
        error = public_error(exc, uuid.uuid4().hex[:12])
        return JSONResponse(error.body(), status_code=error.status)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: on_http_error, Exception: on_crash}
    app = Starlette(
        routes=[Route("/v1/chat/completions", api.chat, methods=["POST"]),
                Route("/v1/models", api.list_models, methods=["GET"]), Route("/health", health)],
        exception_handlers=handlers,
    )
    app.state.api = api
    return app
