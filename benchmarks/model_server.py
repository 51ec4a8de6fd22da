"""A bare OpenAI-compatible server for one of our models: the backend a peer (optillm) proxies in comparisons.

    python benchmarks/model_server.py --model local/qwen2.5-coder-1.5b --slots 8 --port 8080 \
        --usage-log /tmp/usage.jsonl

Unlike `reason serve`, which runs a strategy on the question, this server passes the messages to the model
as they come (system prompt, turns and all) and returns the model's reply: the peer's own method is what is
measured. Concurrent requests share the local model's batch (`--slots`, continuous batching), as a
llama.cpp server with parallel slots would; `n` > 1 draws the samples together with seeds SEED, SEED+1, ...
Every request appends its usage (prompt and completion tokens, all choices) to `--usage-log`, so the
total tokens a peer spends are counted here even when the peer reports only completion tokens; each line has
the request's duration and its end time (UTC), so a run's calls can be told from a resumed run's.

Endpoints: POST /v1/chat/completions (JSON; `stream` is refused), GET /v1/models, GET /health.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from orchestrator.models import get_model
from orchestrator.models.base import ChatModel
from orchestrator.server_requests import APIError, text_of


class BadRequest(ValueError):
    pass


def read_request(body: Any) -> tuple[list[dict[str, str]], dict[str, Any], int]:
    """(messages, call options, n) from a chat-completions body; BadRequest for what we cannot serve."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if body.get("stream"):
        raise BadRequest("streaming is not supported by this server")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise BadRequest("`messages` must be a non-empty list of message objects")
    msgs = [{"role": str(m.get("role")), "content": text_of(m.get("content"))} for m in messages]
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 64:
        raise BadRequest("`n` must be an integer from 1 to 64")
    options: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        options["max_tokens"] = int(max_tokens)
    if body.get("temperature") is not None:
        options["temperature"] = float(body["temperature"])
    top_p = body.get("top_p")
    if top_p is not None and float(top_p) < 1.0:  # 1.0 is no filter; leaving it out keeps the call batched
        options["top_p"] = float(top_p)
    stop = body.get("stop")
    if stop is not None:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("seed") is not None:
        options["seed"] = int(body["seed"])
    return msgs, options, n


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model: ChatModel, address: tuple[str, int], usage_log: Path | None = None) -> None:
        super().__init__(address, Handler)
        self.model, self.usage_log = model, usage_log
        self.lock = threading.Lock()
        self.requests = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def complete(self, body: Any) -> dict[str, Any]:
        messages, options, n = read_request(body)
        start = time.perf_counter()
        if n == 1:
            completions = [self.model.complete(messages, **options)]
        else:
            base = options.pop("seed", None)
            base = random.randrange(2**31) if base is None else base
            completions = self.model.sample(messages, [base + i for i in range(n)], **options)
        prompt = completions[0].usage.prompt_tokens
        generated = sum(c.usage.completion_tokens for c in completions)
        with self.lock:
            self.requests += 1
            if self.usage_log is not None:
                with self.usage_log.open("a") as f:
                    f.write(json.dumps({"prompt_tokens": prompt * n, "completion_tokens": generated, "n": n,
                                        "seconds": round(time.perf_counter() - start, 3),
                                        "ended": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
        return {
            "id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": int(time.time()),
            "model": str(body.get("model") or self.model.name),
            "choices": [{"index": i, "finish_reason": "length" if c.finish_reason == "length" else "stop",
                         "message": {"role": "assistant", "content": c.text}}
                        for i, c in enumerate(completions)],
            # Each choice is counted as its own prompt, as a server without a shared-prefix cache bills it.
            "usage": {"prompt_tokens": prompt * n, "completion_tokens": generated,
                      "total_tokens": prompt * n + generated},
        }


class Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the usage log is the record
        pass

    def send_json(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self.send_json(200, {"object": "list", "data": [{"id": self.server.model.name, "object": "model"}]})
        elif self.path == "/health":
            self.send_json(200, {"status": "ok"})
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw or b"null")
            self.send_json(200, self.server.complete(body))
        except (BadRequest, APIError, ValueError, TypeError) as e:
            self.send_json(400, {"error": {"message": str(e), "type": "invalid_request_error"}})
        except Exception as e:  # noqa: BLE001 -- the model failed: the client sees why, the server keeps serving
            self.send_json(500, {"error": {"message": f"{type(e).__name__}: {e}", "type": "server_error"}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="local/qwen2.5-coder-1.5b")
    ap.add_argument("--slots", type=int, default=8, help="requests a local model decodes together")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--usage-log", type=Path, help="append each request's token usage here (JSON lines)")
    args = ap.parse_args()
    model = get_model(args.model, **({"slots": args.slots} if args.model.startswith("local/") else {}))
    server = ModelServer(model, (args.host, args.port), args.usage_log)
    print(f"serving {args.model} on {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        model.close()


if __name__ == "__main__":
    main()
