"""A real OpenAI- and Anthropic-compatible HTTP server for tests, run in-process on a free port.

    from fake_openai_server import Fault, serve

    with serve(replies=["4"], latency=0.1, faults=[Fault(429, retry_after="1"), "reset"]) as srv:
        model = get_model(srv.model("gpt-4o-mini"))       # "http://127.0.0.1:PORT/v1#gpt-4o-mini"
        ...
        assert len(srv.requests) == 3                    # two faults, then the success

Endpoints (stdlib `ThreadingHTTPServer`: one thread per connection, so hundreds of concurrent clients):
- POST /v1/chat/completions: JSON, or SSE when `"stream": true` (a final usage chunk when
  `stream_options.include_usage`); `n` choices (one whatever `n` asks with `honour_n=False`; a request
  with `n` > 1 refused with status `reject_n`, e.g. 400, and llama-server's "Only one completion choice is
  allowed").
- GET /v1/models: `srv.models` as a model list.   GET /health: 200.
- POST /v1/messages: Anthropic Messages API, JSON or SSE. Point the Anthropic SDK at `srv.url`.

Replies: a string, a list (served in order; the last one repeats), or a function of the messages
(OpenAI-style, content flattened to a string; an Anthropic `system` becomes a system message) that
returns a string or a dict with "content", "tool_calls" (OpenAI style), "finish_reason" and/or "logprob"
(what every token's log-probability is when the request asks for `logprobs`; each whitespace-separated
piece is a token, with `top_logprobs` alternatives at -5.0).
Default: echo the last user message. Usage counts one token per whitespace-separated word.
A reply's text may contain `{api_key}`: the key the request carried is put there (a server that echoes the
`Authorization` header back, as the red-team's did).

Faults are served one per POST, in order, before any success: `Fault(status, retry_after=...,
message=..., code=...)`, `Fault.hang(seconds)` (no answer; outlast the client timeout), `Fault.reset()`
(TCP RST), `Fault.close()` (close without a response), `Fault.cut()` (headers and half the answer, then
RST), `Fault.context_length()`, `Fault.unauthorized()`; malformed successes: `Fault.garbage()` (a 200 whose JSON
body is not JSON), `Fault.truncated()` (a complete HTTP response holding half the JSON), `Fault.bad_usage()`
(`completion_tokens: "x"`), `Fault.empty_choices()`, and `Fault.drip(seconds)` (the answer one byte every
`seconds`); shorthand: an int status or a kind name.
`srv.faults` is a deque of such specs and may be appended to while the server runs. With `api_key=` set, requests
without that key get 401. With `honor_max_tokens=True` a reply is cut to the request's `max_tokens` words
(finish_reason "length"), as a real server cuts it. Every request is recorded in `srv.requests` (method, path,
lower-cased headers, parsed JSON body, monotonic time of arrival).
"""

from __future__ import annotations

import collections
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Self

Reply = str | dict[str, Any]
ReplyFn = Callable[[list[dict[str, Any]]], Reply]


@dataclass
class Fault:
    """One failure served instead of a success. `message` may contain `{api_key}` (the key received)."""

    status: int = 500
    kind: str = "status"  # status | hang | reset | close | cut | garbage | truncated | bad_usage | ...
    retry_after: str | None = None
    message: str = "injected fault"
    code: str | None = None
    seconds: float = 30.0  # how long a hang lasts (it ends early when the server stops)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Fault:
        return cls(kind="hang", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        return cls(kind="reset")

    @classmethod
    def close(cls) -> Fault:
        return cls(kind="close")

    @classmethod
    def cut(cls) -> Fault:
        return cls(kind="cut")

    @classmethod
    def garbage(cls) -> Fault:
        return cls(kind="garbage")

    @classmethod
    def truncated(cls) -> Fault:
        return cls(kind="truncated")

    @classmethod
    def bad_usage(cls) -> Fault:
        return cls(kind="bad_usage")

    @classmethod
    def empty_choices(cls) -> Fault:
        return cls(kind="empty_choices")

    @classmethod
    def drip(cls, seconds: float = 1.0) -> Fault:
        return cls(kind="drip", seconds=seconds)

    @classmethod
    def rate_limit(cls, retry_after: str | None = "1") -> Fault:
        return cls(429, retry_after=retry_after, message="Rate limit reached", code="rate_limit_exceeded")

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls(401, message="Incorrect API key provided: {api_key}.", code="invalid_api_key")

    @classmethod
    def context_length(cls) -> Fault:
        return cls(
            400,
            code="context_length_exceeded",
            message="This model's maximum context length is 4096 tokens. However, your messages resulted "
            "in 9000 tokens. Please reduce the length of the messages.",
        )

    @classmethod
    def of(cls, spec: Fault | int | str) -> Fault:
        """A fault from shorthand: 429, 500, "hang", "reset", "close", "cut", "context_length", ..."""
        if isinstance(spec, Fault):
            return spec
        if isinstance(spec, int):
            return {429: cls.rate_limit, 401: cls.unauthorized}.get(spec, lambda: cls(spec))()
        named = {
            "context_length": cls.context_length,
            "rate_limit": cls.rate_limit,
            "unauthorized": cls.unauthorized,
            "hang": cls.hang,
            "reset": cls.reset,
            "close": cls.close,
            "cut": cls.cut,
            "garbage": cls.garbage,
            "truncated": cls.truncated,
            "bad_usage": cls.bad_usage,
            "empty_choices": cls.empty_choices,
            "drip": cls.drip,
        }
        if spec not in named:
            raise ValueError(f"unknown fault {spec!r}; one of {sorted(named)} or an HTTP status")
        return named[spec]()


BODY_FAULTS = {"cut", "truncated", "bad_usage", "empty_choices", "drip"}  # faults inside a 200 reply


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(p.get("text", p.get("content", ""))) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _count(text: str) -> int:
    return max(1, len(text.split()))


def _pieces(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*?", text) or [text]


def _logprobs(r: dict[str, Any], pieces: list[str], top: int) -> dict[str, Any]:
    """OpenAI's `logprobs` of a choice: each piece at the reply's "logprob" (default -0.1), with `top`
    alternatives (itself, then tokens at -5.0)."""
    lp = float(r.get("logprob", -0.1))
    return {"content": [
        {"token": p, "logprob": lp, "bytes": None,
         "top_logprobs": [{"token": p, "logprob": lp, "bytes": None}]
         + [{"token": f"alt{j}", "logprob": -5.0, "bytes": None} for j in range(1, top)]}
        for p in pieces]}


def _echo(messages: list[dict[str, Any]]) -> str:
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1] if users else "ok"


class FakeServer:
    """The server's state; `serve()` starts one. Attributes may be changed while it runs."""

    def __init__(
        self,
        replies: str | list[Reply] | ReplyFn | None = None,
        latency: float = 0.0,
        faults: list[Fault | int | str] | None = None,
        api_key: str | None = None,
        models: list[str] | None = None,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        chunk_delay: float = 0.0,
        honour_n: bool = True,
        reject_n: int | None = None,
        reported_cost: float | None = None,
        honor_max_tokens: bool = False,
    ) -> None:
        self.replies = replies
        self.reported_cost = reported_cost  # sent as `usage.cost` (USD), as OpenRouter reports it
        self.latency = latency
        self.faults: collections.deque[Fault | int | str] = collections.deque(faults or [])
        self.api_key = api_key
        self.models = models or ["default"]
        self.cached_tokens = cached_tokens
        self.reasoning_tokens = reasoning_tokens
        self.chunk_delay = chunk_delay
        self.honour_n = honour_n
        self.reject_n = reject_n
        self.honor_max_tokens = honor_max_tokens
        self.requests: list[Recorded] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._served = 0
        self._http = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._http.fake = self
        self.port: int = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"fake-llm-{self.port}",
        )

    def model(self, name: str = "default") -> str:
        """A `reason` model name that points at this server: `http://127.0.0.1:PORT/v1#name`."""
        return f"{self.base_url}#{name}"

    def posts(self, path: str | None = None) -> list[Recorded]:
        """The POST requests received (to `path`, if given)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and (path is None or r.path == path)]

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._http.shutdown()
        self._http.close_all()
        self._http.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- used by the handler ----------------------------------------------------------------
    def record(self, r: Recorded) -> Fault | None:
        with self._lock:
            self.requests.append(r)
            return Fault.of(self.faults.popleft()) if r.method == "POST" and self.faults else None

    def reply(self, messages: list[dict[str, Any]], api_key: str = "") -> dict[str, Any]:
        with self._lock:
            index = self._served
            self._served += 1
        source = self.replies
        if source is None:
            out: Reply = _echo(messages)
        elif isinstance(source, str):
            out = source
        elif callable(source):
            out = source(messages)
        else:
            out = source[min(index, len(source) - 1)]
            out = out(messages) if callable(out) else out
        out = {"content": out} if isinstance(out, str) else dict(out)
        if isinstance(out.get("content"), str):
            out["content"] = out["content"].replace("{api_key}", api_key)
        return out


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: FakeServer

    def __init__(self, *args: Any) -> None:
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(*args)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        with self.conn_lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (timeouts, resets) are part of the tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else small responses wait ~40 ms for delayed ACKs
    timeout = 60  # idle keep-alive connections end eventually
    server: _HTTPServer
    dripping = 0.0  # seconds between the bytes of a dripped stream

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass

    @property
    def fake(self) -> FakeServer:
        return self.server.fake

    # --- plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _event(self, data: Any, event: str | None = None) -> None:
        head = f"event: {event}\n" if event else ""
        payload = data if isinstance(data, str) else json.dumps(data)
        encoded = f"{head}data: {payload}\n\n".encode()
        if self.dripping:
            return self._drip(encoded, self.dripping)
        self.wfile.write(encoded)
        self.wfile.flush()
        if self.fake.chunk_delay:
            time.sleep(self.fake.chunk_delay)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _key_received(self) -> str:
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ").strip() or self.headers.get("x-api-key", "")

    def _error(
        self, status: int, message: str, code: str | None, headers: dict[str, str] | None = None
    ) -> None:
        kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}.get(
            status, "api_error"
        )
        if self.path.endswith("/messages"):
            body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        self._send(status, body, headers)

    # --- routes -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self.fake.record(Recorded("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, None))
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.fake.models]
            self._send(200, {"object": "list", "data": data})
        elif self.path == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._error(404, f"no route {self.path}", None)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        fault = self.fake.record(Recorded("POST", self.path, headers, body))
        if body is None:
            return self._error(400, "body is not JSON", None)
        if self.fake.api_key and self._key_received() != self.fake.api_key:
            fault = Fault.unauthorized()
        if fault is not None and fault.kind not in BODY_FAULTS:
            return self._fault(fault)
        if self.fake.reject_n and int(body.get("n") or 1) > 1:
            return self._error(self.fake.reject_n, "Only one completion choice is allowed", None)
        if self.fake.latency:
            time.sleep(self.fake.latency)
        if self.path.endswith("/chat/completions"):
            return self._chat(body, fault)
        if self.path.endswith("/messages"):
            return self._messages(body, cut=fault is not None and fault.kind == "cut")
        self._error(404, f"no route {self.path}", None)

    def _fault(self, fault: Fault) -> None:
        if fault.kind == "hang":
            self.fake.stopping.wait(fault.seconds)
            self.close_connection = True
        elif fault.kind == "reset":
            self._reset()
        elif fault.kind == "close":
            self.close_connection = True
        elif fault.kind == "garbage":
            data = b"<html><body>502 Bad Gateway</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            message = fault.message.replace("{api_key}", self._key_received())
            if fault.code == "context_length_exceeded" and self.path.endswith("/messages"):
                message = "prompt is too long: 9000 tokens > 4096 maximum"
            self._error(fault.status, message, fault.code, headers)

    def _usage(self, messages: list[dict[str, Any]], completion: str) -> tuple[int, int, int]:
        prompt = sum(_count(m["content"]) for m in messages)
        return prompt + self.fake.cached_tokens, _count(completion), self.fake.cached_tokens

    def _drip(self, data: bytes, seconds: float) -> None:
        """Write `data` one byte every `seconds` (a server that never stalls long enough to time out)."""
        for i in range(len(data)):
            if self.fake.stopping.wait(seconds):
                break
            try:
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
            except OSError:
                break  # the client gave up
        if self.fake.stopping.is_set():
            raise ConnectionAbortedError("the server is stopping")

    def _chat(self, body: dict[str, Any], fault: Fault | None = None) -> None:
        kind = fault.kind if fault is not None else None
        cut = kind == "cut"
        messages = [
            {"role": m.get("role", "user"), "content": _text(m.get("content"))}
            for m in body.get("messages", [])
        ]
        model = body.get("model", "default")
        n = int(body.get("n") or 1) if self.fake.honour_n else 1
        replies = [self.fake.reply(messages, self._key_received()) for _ in range(n)]
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if self.fake.honor_max_tokens and limit:
            for r in replies:
                words = (r.get("content") or "").split()
                if len(words) > limit:
                    r["content"], r["finish_reason"] = " ".join(words[:limit]), "length"
        prompt, completion, cached = self._usage(messages, " ".join(r.get("content") or "" for r in replies))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": self.fake.reasoning_tokens},
            **({} if self.fake.reported_cost is None else {"cost": self.fake.reported_cost}),
        }
        head = {"id": f"chatcmpl-{id(body)}", "created": int(time.time()), "model": model}

        def finish(r: dict[str, Any]) -> str:
            return r.get("finish_reason") or ("tool_calls" if r.get("tool_calls") else "stop")

        if not body.get("stream"):
            choices = []
            for i, r in enumerate(replies):
                message = {"role": "assistant", "content": r.get("content")}
                if r.get("tool_calls"):
                    message["tool_calls"] = r["tool_calls"]
                lp = _logprobs(r, _pieces(r.get("content") or ""), int(body.get("top_logprobs") or 0)) \
                    if body.get("logprobs") else None
                choices.append({"index": i, "message": message, "finish_reason": finish(r), "logprobs": lp})
            out = {**head, "object": "chat.completion", "choices": choices, "usage": usage}
            if kind == "bad_usage":
                out["usage"] = {**usage, "completion_tokens": "x"}
            if kind == "empty_choices":
                out["choices"] = []
            if kind in ("truncated", "drip"):
                data = json.dumps(out).encode()
                data = data[: len(data) // 2] if kind == "truncated" else data
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if kind == "drip":
                    return self._drip(data, fault.seconds)
                self.wfile.write(data)
                return None
            if cut:
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                return self._reset()
            return self._send(200, out)
        self._start_sse()
        self.dripping = fault.seconds if kind == "drip" and fault is not None else 0.0
        chunk = {**head, "object": "chat.completion.chunk"}
        for i, r in enumerate(replies):
            self._event(
                {
                    **chunk,
                    "choices": [
                        {"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                    ],
                }
            )
            pieces = _pieces(r.get("content") or "")
            for n, piece in enumerate(pieces):
                if cut and n >= len(pieces) // 2:
                    return self._reset()
                lp = _logprobs(r, [piece], int(body.get("top_logprobs") or 0)) if body.get("logprobs") else None
                self._event({**chunk, "choices": [{"index": i, "delta": {"content": piece}, "finish_reason": None,
                                                   "logprobs": lp}]})
            for t, call in enumerate(r.get("tool_calls") or []):
                self._event(
                    {
                        **chunk,
                        "choices": [
                            {
                                "index": i,
                                "delta": {"tool_calls": [{**call, "index": t}]},
                                "finish_reason": None,
                            }
                        ],
                    }
                )
            self._event({**chunk, "choices": [{"index": i, "delta": {}, "finish_reason": finish(r)}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({**chunk, "choices": [], "usage": usage})
        self._event("[DONE]")

    def _messages(self, body: dict[str, Any], cut: bool) -> None:
        messages = [{"role": "system", "content": _text(body["system"])}] if body.get("system") else []
        messages += [
            {"role": m.get("role", "user"), "content": _text(m.get("content"))}
            for m in body.get("messages", [])
        ]
        r = self.fake.reply(messages, self._key_received())
        text = r.get("content") or ""
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        for call in r.get("tool_calls") or []:
            fn = call["function"]
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.get("id", "toolu_1"),
                    "name": fn["name"],
                    "input": json.loads(fn.get("arguments") or "{}"),
                }
            )
        stop = {"tool_calls": "tool_use", "length": "max_tokens"}.get(
            r.get("finish_reason") or ("tool_calls" if r.get("tool_calls") else ""), "end_turn"
        )
        prompt, completion, cached = self._usage(messages, text)
        usage = {
            "input_tokens": prompt - cached,
            "output_tokens": completion,
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": 0,
        }
        message = {
            "id": f"msg_{id(body)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "default"),
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return self._send(200, message)
        self._start_sse()
        self._event(
            {
                "type": "message_start",
                "message": {
                    **message,
                    "content": [],
                    "stop_reason": None,
                    "usage": {**usage, "output_tokens": 1},
                },
            },
            "message_start",
        )
        for i, block in enumerate(blocks):
            start = {**block, "text": ""} if block["type"] == "text" else {**block, "input": {}}
            self._event(
                {"type": "content_block_start", "index": i, "content_block": start}, "content_block_start"
            )
            if block["type"] == "text":
                pieces = _pieces(block["text"])
                for n, piece in enumerate(pieces):
                    if cut and n >= len(pieces) // 2:
                        return self._reset()
                    self._event(
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                        "content_block_delta",
                    )
            else:
                self._event(
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                    },
                    "content_block_delta",
                )
            self._event({"type": "content_block_stop", "index": i}, "content_block_stop")
        self._event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": completion},
            },
            "message_delta",
        )
        self._event({"type": "message_stop"}, "message_stop")


@contextmanager
def serve(**kwargs: Any) -> Iterator[FakeServer]:
    """Run a `FakeServer` (same keyword arguments) for the duration of a `with` block."""
    with FakeServer(**kwargs) as srv:
        yield srv
