"""The OpenAI habits `reason serve` honours: keep-alive comments in long streams, the reasoning under both of
its field names, the usage chunk on request, `reasoning_effort`, `max_tokens` per call, and trajectories kept
for a limited time or not at all. The app runs on uvicorn in this process, driven over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from orchestrator import ScriptedModel, load_trajectory
from orchestrator.server import ReasonAPI, create_app
from orchestrator.server_requests import EFFORT

ANSWER = "Step 1: 2 + 2 = 4.\nFinal answer: 4\nReward: 0.9\nVerdict: CORRECT"
Q = [{"role": "user", "content": "What is 2+2?"}]


@contextmanager
def served(tmp: Path, model: ScriptedModel, **settings) -> Iterator[str]:
    """The app on uvicorn on a free port, serving `model` as `fake/x`; yields its URL."""
    app = create_app(runs_dir=tmp, model="fake/x", **settings)
    app.state.api.models["fake/x"] = model
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1/chat/completions"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def stream_lines(url: str, body: dict) -> list[str]:
    with httpx.Client(timeout=30) as http, http.stream("POST", url, json={**body, "stream": True}) as r:
        assert r.status_code == 200
        return [line for line in r.iter_lines() if line]


def chunks(lines: list[str]) -> list[dict]:
    return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


def test_a_quiet_stream_sends_keep_alive_comments(tmp_path):
    model = ScriptedModel([ANSWER], latency=0.5, repeat_last=True)
    with served(tmp_path, model, keepalive=0.1) as url:
        lines = stream_lines(url, {"model": "reason:plain:fake/x", "messages": Q})
    comments = [i for i, line in enumerate(lines) if line.startswith(":")]
    content = next(i for i, line in enumerate(lines) if '"content": "4"' in line)
    assert len(comments) >= 3 and comments[0] < content  # while the call ran, before the answer
    assert lines[-1] == "data: [DONE]"


def test_reasoning_under_both_names_and_usage_only_on_request(tmp_path):
    model = ScriptedModel([ANSWER], repeat_last=True)
    body = {"model": "reason:chain:fake/x", "messages": Q, "reasoning": True}
    with served(tmp_path, model) as url:
        message = httpx.post(url, json=body, timeout=30).json()["choices"][0]["message"]
        quiet = chunks(stream_lines(url, body))
        counted = chunks(stream_lines(url, {**body, "stream_options": {"include_usage": True}}))
    assert message["reasoning"] == message["reasoning_content"] and "[think" in message["reasoning"]
    deltas = [c["choices"][0]["delta"] for c in quiet if c["choices"]]
    steps = [d for d in deltas if "reasoning_content" in d]
    assert steps and all(d["reasoning"] == d["reasoning_content"] for d in steps)
    assert all("usage" not in c for c in quiet)
    assert counted[-1]["choices"] == [] and counted[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(("name", "body", "strategy", "tokens"), [
    ("reason:fake/x", {"reasoning_effort": "minimal"}, "plain", EFFORT["minimal"][1]),
    ("reason:fake/x", {"reasoning_effort": "high"}, "vote", EFFORT["high"][1]),
    ("reason:chain:fake/x", {"reasoning_effort": "high"}, "chain", EFFORT["high"][1]),  # the name's strategy wins
    ("reason:fake/x", {"reasoning_effort": "low", "max_tokens_budget": 999}, "chain", 999),  # so does a budget
])
def test_reasoning_effort_maps_to_a_strategy_and_a_token_budget(tmp_path, name, body, strategy, tokens):
    with served(tmp_path, ScriptedModel([ANSWER], repeat_last=True)) as url:
        response = httpx.post(url, json={"model": name, "messages": Q, **body}, timeout=60)
    extra = response.json()["reason"]
    assert extra["strategy"] == strategy
    path = Path(extra["trajectory"])  # a vote's is a folder of samples, each with the run's header
    header = load_trajectory(next(path.glob("*.jsonl")) if path.is_dir() else path)[0]
    assert header["budget"]["max_tokens"] == tokens


def test_max_tokens_caps_each_call(tmp_path):
    with served(tmp_path, ScriptedModel([ANSWER], repeat_last=True)) as url:
        response = httpx.post(url, json={"model": "reason:chain:fake/x", "messages": Q, "max_tokens": 64,
                                         "user": "someone"}, timeout=30)  # `user` is accepted and ignored
    header = load_trajectory(response.json()["reason"]["trajectory"])[0]
    assert header["config"]["max_tokens_per_call"] == 64 and header["budget"]["max_tokens"] is None


def test_keep_runs_zero_writes_no_trajectory(tmp_path):
    with served(tmp_path, ScriptedModel([ANSWER], repeat_last=True), keep_runs=0) as url:
        response = httpx.post(url, json={"model": "reason:chain:fake/x", "messages": Q}, timeout=30)
    assert response.status_code == 200 and response.json()["reason"]["trajectory"] is None
    assert not list(tmp_path.rglob("*.jsonl"))


def test_old_runs_are_pruned_and_nothing_else(tmp_path):
    old, new = tmp_path / "20260101-000000-0123abcd.jsonl", tmp_path / "20260101-000001-4567cdef"
    other = tmp_path / "notes.txt"
    old.write_text("{}")
    new.mkdir()
    other.write_text("mine")
    hours_ago = time.time() - 7200
    for path in (old, other):
        os.utime(path, (hours_ago, hours_ago))
    api = ReasonAPI(model="fake/x", runs_dir=tmp_path, keep_runs=3600)
    assert api.prune() == 1
    assert not old.exists() and new.is_dir() and other.read_text() == "mine"
    assert ReasonAPI(model="fake/x", keep_runs=60).runs_dir.name == "serve"  # its own folder by default
