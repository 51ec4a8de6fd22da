"""benchmarks/model_server.py: the bare backend a peer proxies, over real HTTP with the openai SDK."""

from __future__ import annotations

import json
import re
import threading

import httpx
import openai
import pytest
from benchmark_script import load_benchmark

from orchestrator.models.fake import ScriptedModel


def load_module():
    return load_benchmark("model_server")


@pytest.fixture
def served(tmp_path):
    module = load_module()
    model = ScriptedModel(lambda messages: f"reply to {messages[-1]['content']}")
    server = module.ModelServer(model, ("127.0.0.1", 0), tmp_path / "usage.jsonl")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, model, tmp_path / "usage.jsonl"
    finally:
        server.shutdown()
        server.server_close()


def test_messages_pass_verbatim_and_n_samples_are_counted(served):
    server, model, log = served
    client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "two words"}]
    r = client.chat.completions.create(model="qwen", messages=messages, n=3, temperature=1, max_tokens=64)
    assert [c.message.content for c in r.choices] == ["reply to two words"] * 3
    assert model.calls == [messages] * 3  # system prompt and all, not wrapped in a strategy
    # usage: each choice counted with its prompt (4 words) and its 4-word reply
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (12, 12)
    r1 = client.chat.completions.create(model="qwen", messages=messages[1:])
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(row["n"], row["prompt_tokens"], row["completion_tokens"]) for row in rows] == [(3, 12, 12), (1, 2, 4)]
    assert all(row["seconds"] >= 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["ended"]) for row in rows)
    assert r1.choices[0].message.content == "reply to two words"


def test_bad_requests_are_refused_with_a_reason_and_the_server_keeps_serving(served):
    server, model, log = served
    for body, words in [({"messages": [], "model": "q"}, "non-empty list"),
                        ({"messages": [{"role": "user", "content": "x"}], "n": 0}, "`n`"),
                        ({"messages": [{"role": "user", "content": "x"}], "stream": True}, "streaming"),
                        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "text content")]:
        r = httpx.post(server.url + "/chat/completions", json=body)
        assert r.status_code == 400 and words in r.json()["error"]["message"]
    assert httpx.post(server.url + "/chat/completions", content=b"{not json").status_code == 400
    assert model.calls == [] and not log.exists()
    r = httpx.post(server.url + "/chat/completions", json={"messages": [{"role": "user", "content": "ok"}]})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "reply to ok"
    assert httpx.get(server.url + "/models").json()["data"][0]["id"] == "fake/scripted"
