"""`reason serve` under attack: a real server (a subprocess on 127.0.0.1) driven over real HTTP.

The guard key never leaves the server, a client cannot choose the upstream or name a server file, no file
contents or exception text reach a client, body and length limits hold before any model call, and every bad
request gets a 4xx with an OpenAI-shaped error body.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fake_openai_server import serve as fake_upstream

REASON = Path(sys.executable).parent / "reason"
GUARD = "guard-key-0123456789abcdef"
UPSTREAM_KEY = "upstream-key-9876543210fedcba"
ECHO = "I was sent the key {api_key}.\nFinal answer: 4"
Q = [{"role": "user", "content": "What is 2+2?"}]
# What a leak of an exception or a file looks like in a response.
LEAKS = ("Traceback", "ValueError", "TypeError", "UnicodeEncodeError", "KeyError", "PW_SECRET_123", "root:x:0",
         "litellm", GUARD, UPSTREAM_KEY)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def reason_serve(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, Path]]:
    """`reason serve ARGS` on a free port; yields (url, the file its stdout and stderr go to)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("OPENAI_API_KEY", "REASON_SERVER_API_KEY", "REASON_SERVE_API_KEY", "REASON_HTTP_API_KEY")}
    full = {**base, "REASON_RUNS_DIR": str(tmp / "runs"), "REASON_CONFIG_DIR": str(tmp / "config"), **(env or {})}
    port, log = free_port(), tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(REASON), "serve", "--port", str(port), "--log-level", "info", *args],
                                env=full, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start: {log.read_text()}")
        time.sleep(0.1)
    try:
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def upstream():
    with fake_upstream(replies=ECHO) as srv:
        yield srv


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory) -> Path:
    """A server-side file no client should see: a router config that is not valid YAML."""
    path = tmp_path_factory.mktemp("secret") / "router.yaml"
    path.write_text('model_list: [\n  {"db_password": "PW_SECRET_123"}\n  : : broken\n')
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream, secret_file):
    """Guarded by GUARD, given as the deprecated variable too (which was once also the upstream key)."""
    tmp = tmp_path_factory.mktemp("serve")
    env = {"REASON_SERVE_API_KEY": GUARD, "REASON_SERVER_API_KEY": GUARD}
    with reason_serve(tmp, "-m", upstream.model("m"), "-m", f"router/{secret_file}", "--max-body-kb", "1024",
                      env=env) as (url, log):
        yield url, log, tmp


def post(url: str, body: object = None, raw: bytes | None = None, key: str = GUARD, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{url}/v1/chat/completions", content=content, headers=headers, timeout=30, **kw)


def assert_clean_error(response: httpx.Response, status: int | tuple[int, ...]) -> dict:
    """An OpenAI-shaped error with our short message: no exception text, no file contents, no key."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    for leak in LEAKS:
        assert leak not in response.text
    return error


def test_the_guard_key_never_leaves_the_server(server, upstream):
    url, log, tmp = server
    before = len(upstream.posts())
    response = post(url, {"model": f"reason:plain:{upstream.model('m')}", "messages": Q})
    assert response.status_code == 200, response.text
    sent = upstream.posts()[before:]
    assert sent and all(GUARD not in json.dumps(r.headers) + json.dumps(r.body) for r in sent)
    assert sent[0].headers["authorization"] == "Bearer none"  # the old shared name is the guard here, not sent
    assert GUARD not in response.text
    assert GUARD not in log.read_text() and not any(GUARD in p.read_text() for p in (tmp / "runs").rglob("*.jsonl"))


def test_an_upstream_key_echoed_by_the_model_is_redacted_everywhere(tmp_path, upstream):
    env = {"REASON_SERVE_API_KEY": GUARD, "REASON_HTTP_API_KEY": UPSTREAM_KEY}
    with reason_serve(tmp_path, "-m", upstream.model("m"), env=env) as (url, log):
        before = len(upstream.posts())
        body = {"model": f"reason:chain:{upstream.model('m')}", "messages": Q, "reasoning": True}
        blocking = post(url, body)
        streamed = post(url, {**body, "stream": True})
    assert upstream.posts()[before].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"  # it was sent, and echoed
    assert blocking.status_code == streamed.status_code == 200
    assert "[REDACTED]" in blocking.json()["choices"][0]["message"]["reasoning_content"]
    assert "[REDACTED]" in streamed.text
    runs = list((tmp_path / "runs").rglob("*.jsonl"))
    assert runs and "[REDACTED]" in runs[0].read_text()
    for text in (blocking.text, streamed.text, log.read_text(), *(p.read_text() for p in runs)):
        assert UPSTREAM_KEY not in text and GUARD not in text


@pytest.mark.parametrize("model", [
    "reason:chain:http://127.0.0.1:{other}/v1#m", "reason:plain:https://evil.example/v1#m",
    "http://127.0.0.1:{other}/v1#m", "reason:chain:router/{secret}", "reason:chain:replay//etc/passwd",
    "reason:chain:replay//tmp", "reason:plain:local//etc/passwd", "reason:plain:fake/x",
])
def test_client_chosen_upstreams_and_files_are_refused(server, secret_file, model):
    url, _, _ = server
    with fake_upstream(replies="4") as other:
        name = model.format(other=other.port, secret=secret_file.parent / "other.yaml")
        error = assert_clean_error(post(url, {"model": name, "messages": Q}), 400)
        assert not other.requests  # no request reached the host the client named
    assert error["code"] == "model_not_allowed" and error["param"] == "model"


def test_no_file_contents_or_exception_text_from_a_broken_operator_model(server):
    url, log, _ = server
    error = assert_clean_error(post(url, {"model": "reason:chain:router/" + str(server[2]), "messages": Q}), 400)
    assert error["code"] == "model_not_allowed"
    listed = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {GUARD}"}).json()["data"]
    configured = next(m["id"] for m in listed if "router/" in m["id"])
    error = assert_clean_error(post(url, {"model": configured, "messages": Q}), 503)
    assert error["code"] == "model_unavailable"
    assert "router.yaml" in log.read_text()  # the details are in the server's log


@pytest.mark.parametrize(("body", "code"), [
    ({"strategy_options": {"samples": "lots"}, "model": "reason:vote:{m}"}, None),  # refused before any call
    # what the operator owns cannot come in per sampled chain either (a folder probe, the server's templates)
    ({"strategy_options": {"chain": {"prompts_dir": "/etc"}}, "model": "reason:vote:{m}"}, None),
    ({"strategy_options": {"chain": {"system": "x"}, "samples": 2}, "model": "reason:best-of-n:{m}"}, None),
    ({"temperature": 99}, None),
    ({"temperature": -0.5}, None),
    ({"max_tokens": 5}, None),
    ({"model": "reason:chain:groq/nope"}, "model_not_found"),
    ({"model": "reason:nope:{m}"}, "model_not_found"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "unsupported_parameter"),
    ({"response_format": {"type": "json_object"}}, "unsupported_parameter"),
    ({"logprobs": True}, "unsupported_parameter"),
    ({"max_step": 3}, "unknown_parameter"),
    ({"reasoning_effort": "extreme"}, None),
    ({"max_usd": -1}, None),
    ({"n": 3}, None),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "unsupported_content"),
    ({"messages": "hi"}, None),
    ({"model": ""}, None),
])
def test_every_bad_request_gets_a_4xx(server, upstream, body, code):
    url, _, _ = server
    before = len(upstream.posts())
    m = upstream.model("m")
    payload = {"model": f"reason:chain:{m}", "messages": Q, **body}
    payload["model"] = payload["model"].replace("{m}", m)
    error = assert_clean_error(post(url, payload), (400, 404))
    assert code is None or error["code"] == code
    assert len(upstream.posts()) == before  # refused before any model call


@pytest.mark.parametrize(("raw", "what"), [
    (b'{"model": "reason", "messages": [{"role": "user", "content": "\\ud800 what?"}]}', "lone surrogate"),
    (b'{"model": "reason", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "not valid JSON"),
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b"\xff\xfe garbage", "not valid JSON"),
])
def test_malformed_bodies_get_a_400(server, raw, what):
    error = assert_clean_error(post(server[0], raw=raw), 400)
    assert what in error["message"]


def test_body_limits_hold_with_and_without_a_length(server, upstream):
    url, _, _ = server
    before = len(upstream.posts())
    big = {"model": f"reason:plain:{upstream.model('m')}", "messages": [{"role": "user", "content": "x" * 1_100_000}]}
    assert_clean_error(post(url, big), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts what arrives
        yield b'{"model": "reason", "messages": [{"role": "user", "content": "'
        for _ in range(1200):
            yield b"y" * 1024
        yield b'"}]}'

    response = httpx.post(f"{url}/v1/chat/completions", content=chunks(), timeout=30,
                          headers={"Authorization": f"Bearer {GUARD}", "Content-Type": "application/json"})
    assert_clean_error(response, 413)
    assert len(upstream.posts()) == before


def test_a_question_longer_than_the_context_is_refused_before_any_call(server, upstream):
    url, _, _ = server
    before = len(upstream.posts())
    long = {"model": f"reason:plain:{upstream.model('m')}",
            "messages": [{"role": "user", "content": "word " * 200_000}]}  # ~1 MB, ~250k tokens
    error = assert_clean_error(post(url, long), 400)
    assert error["code"] == "context_length_exceeded" and "249999 tokens" in error["message"]
    assert len(upstream.posts()) == before


def test_a_wrong_key_is_401_and_spends_nothing(server, upstream):
    before = len(upstream.posts())
    error = assert_clean_error(post(server[0], {"model": "reason", "messages": Q}, key="wrong"), 401)
    assert error["code"] == "invalid_api_key" and len(upstream.posts()) == before


def test_the_deprecated_variable_still_guards_with_a_warning(tmp_path):
    with reason_serve(tmp_path, env={"REASON_SERVER_API_KEY": GUARD}) as (url, log):
        refused = post(url, {"model": "reason", "messages": Q}, key="wrong")
    assert refused.status_code == 401
    assert "REASON_SERVER_API_KEY is deprecated" in log.read_text() and "REASON_SERVE_API_KEY" in log.read_text()


def test_an_upstream_key_equal_to_the_guard_key_is_refused_at_startup(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REASON_SERVE")}
    done = subprocess.run([str(REASON), "serve", "--api-key", GUARD], capture_output=True, text=True, timeout=60,
                          env={**env, "REASON_HTTP_API_KEY": GUARD}, check=False)
    assert done.returncode == 2 and "REASON_HTTP_API_KEY is the server's own guard key" in done.stderr
    assert GUARD not in done.stderr
