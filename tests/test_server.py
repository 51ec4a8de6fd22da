"""`reason serve` for real (a subprocess on a free port), driven over HTTP by the official `openai` client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn
from fake_openai_server import serve as fake_upstream

from orchestrator import Reasoner, ScriptedModel, load_trajectory
from orchestrator.server import ReasonAPI, conversation, create_app

KEY = "test-server-key-0123456789"
Q = "What is 2+2?"
SCRIPT = ["Step 1: 2 + 2 is 4.\nFinal answer: 4", "Correct.\nReward: 0.9", "4 is right. Verdict: CORRECT"]
REASON = Path(sys.executable).parent / "reason"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> str:
    result = Reasoner(ScriptedModel(SCRIPT), "chain", runs_dir=tmp_path_factory.mktemp("recorded"),
                      tools=False).solve(Q)
    return str(result.trajectory_path)


@pytest.fixture(scope="module")
def upstream():
    with fake_upstream(replies=["2 plus 2 makes 4.\nFinal answer: 4"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def server(tmp_path_factory, recorded, upstream):
    root = tmp_path_factory.mktemp("server")
    env = {**os.environ, "REASON_RUNS_DIR": str(root / "runs"), "REASON_CONFIG_DIR": str(root / "config"),
           "REASON_LOCAL_THREADS": "1"}  # a busy machine makes spinning llama.cpp threads far slower
    env.pop("OPENAI_API_KEY", None)
    port = free_port()
    command = [str(REASON), "serve", "--port", str(port), "--api-key", KEY, "--log-level", "warning", "--strategy",
               "chain", "--no-tools",
               "-m", f"replay/{recorded}", "-m", upstream.model("tiny"), "-m", "local/smollm2-135m",
               "--allow-model", "openai/*"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
            pytest.fail(f"server did not start: {proc.stdout.read().decode() if proc.stdout else ''}")
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=60)


def ask(client: openai.OpenAI, model: str, content: str = Q, **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kw)


def test_lists_the_served_models_under_every_strategy(client, recorded, upstream):
    ids = [m.id for m in client.models.list()]
    assert f"reason:chain:replay/{recorded}" in ids and "reason:plain:local/smollm2-135m" in ids
    assert f"reason:vote:{upstream.model('tiny')}" in ids
    assert not any("qwen2.5-coder" in i for i in ids)  # the default model is not served unless configured


def test_completion_with_o1_style_usage(client, recorded):
    response = ask(client, f"reason:chain:replay/{recorded}")
    choice = response.choices[0]
    assert (choice.message.content, choice.finish_reason, choice.message.role) == ("4", "stop", "assistant")
    assert getattr(choice.message, "reasoning_content", None) is None  # only on request
    usage = response.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens_details.reasoning_tokens == usage.completion_tokens
    extra = response.model_extra["reason"]
    assert (extra["strategy"], extra["stop_reason"], extra["calls"]) == ("chain", "answered", 3)
    assert Path(extra["trajectory"]).is_file()


@pytest.mark.parametrize("flag", ["reasoning", "include_reasoning"])
def test_reasoning_on_request(client, recorded, flag):
    message = ask(client, f"reason:chain:replay/{recorded}", extra_body={flag: True}).choices[0].message
    reasoning = message.reasoning_content
    assert reasoning.index("[think") < reasoning.index("[reflect reward=0.90]") < reasoning.index("[verify")
    assert "Step 1: 2 + 2 is 4." in reasoning and message.content == "4"


def test_streaming_answer_reasoning_and_usage(client, recorded):
    stream = ask(client, f"reason:chain:replay/{recorded}", stream=True,
                 stream_options={"include_usage": True}, extra_body={"reasoning": True})
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    content = "".join(d.content or "" for d in deltas)
    reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert content == "4"
    assert "[reflect reward=0.90]" in reasoning and "Verdict: CORRECT" in reasoning
    assert deltas[0].role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert not chunks[-1].choices
    assert usage.completion_tokens_details.reasoning_tokens == usage.completion_tokens > 0
    # Without reasoning requested, the stream carries only the answer.
    quiet = list(ask(client, f"reason:chain:replay/{recorded}", stream=True))
    assert not any(getattr(c.choices[0].delta, "reasoning_content", None) for c in quiet if c.choices)


def test_multi_turn_and_system_message(client, recorded):
    response = client.chat.completions.create(
        model=f"reason:chain:replay/{recorded}",
        messages=[{"role": "system", "content": "Answer with a number."},
                  {"role": "user", "content": "What is 1+1?"}, {"role": "assistant", "content": "2"},
                  {"role": "user", "content": [{"type": "text", "text": "And 2+2?"}]}],
    )
    assert response.choices[0].message.content == "4"
    header = load_trajectory(response.model_extra["reason"]["trajectory"])[0]
    question = header["question"]
    assert question.index("User: What is 1+1?") < question.index("Assistant: 2") < question.index("And 2+2?")
    assert header["config"]["system"] == "Answer with a number."


def test_budget_and_config_through_extra_body(client, recorded):
    response = ask(client, f"reason:chain:replay/{recorded}", extra_body={"max_calls": 1, "max_steps": 9})
    extra = response.model_extra["reason"]
    assert (extra["stop_reason"], extra["calls"]) == ("budget_calls", 1)
    header = load_trajectory(extra["trajectory"])[0]
    assert header["budget"]["max_calls"] == 1 and header["config"]["max_steps"] == 9


EVERY_CONFIG_FIELD = {"max_steps": 9, "max_extra_steps": 3, "reflect_every": 2, "reward_high": 0.85, "reward_low": 0.4,
                      "max_attempts": 3, "max_backtracks": 1, "max_adjusts": 1, "max_format_errors": 2, "plan": True,
                      "reflect": False, "verify": False, "verify_by": "resolve", "resolve_samples": 2,
                      "native_tools": False, "retry_temperature": 0.5, "max_tokens_per_call": 300, "kind": "math",
                      "temperature": 0.1, "seed": 7}


def test_every_config_field_but_the_operators_reaches_the_run(client, upstream):
    from orchestrator.config import ReasonConfig
    from orchestrator.server_requests import REFUSED

    assert set(EVERY_CONFIG_FIELD) | set(REFUSED) == set(ReasonConfig.model_fields)  # a new field is tested here
    response = ask(client, f"reason:plain:{upstream.model('tiny')}", extra_body=EVERY_CONFIG_FIELD)
    config = load_trajectory(response.model_extra["reason"]["trajectory"])[0]["config"]
    assert {k: config[k] for k in EVERY_CONFIG_FIELD} == EVERY_CONFIG_FIELD


def test_strategy_options_beside_the_openai_fields(client, upstream):
    response = ask(client, f"reason:vote:{upstream.model('tiny')}",
                   extra_body={"samples": 2, "rule": "none", "max_attempts": 1, "max_calls": 50})
    extra = response.model_extra["reason"]
    assert response.choices[0].message.content == "4" and extra["calls"] == 2  # two cheap one-call chains
    header = load_trajectory(Path(extra["trajectory"]) / "sample-000.jsonl")[0]
    assert header["config"]["max_attempts"] == 1 and header["budget"]["max_calls"] == 50


@pytest.mark.parametrize(("body", "code", "words"), [
    ({"smaples": 3}, "unknown_parameter", ["did you mean 'samples'", "vote's options: samples, temperature"]),
    ({"strategy_options": {"smaples": 3}}, "unknown_parameter", ["did you mean 'samples'"]),
    ({"width": 2}, "unknown_parameter", ["vote has no setting 'width' (an option of beam)", "config: max_steps"]),
    ({"rule": "vibes"}, "invalid_request", ["rule='vibes'"]),
    ({"verify_by": "vibes"}, "invalid_request", ["verify_by"]),
    ({"prompts_dir": "/etc"}, "invalid_request", ["operator"]),
    ({"sandbox": "local-unsafe"}, "invalid_request", ["operator"]),
])
def test_a_bad_setting_is_a_400_naming_the_valid_keys(server, upstream, body, code, words):
    before = len(upstream.posts())
    payload = {"model": f"reason:vote:{upstream.model('tiny')}", "messages": [{"role": "user", "content": Q}],
               **body}
    response = httpx.post(f"{server}/v1/chat/completions", json=payload,
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == code
    assert all(word in error["message"] for word in words), error["message"]
    assert len(upstream.posts()) == before  # refused before any model call


def test_wrong_or_missing_key_is_401(server):
    bad = openai.OpenAI(base_url=f"{server}/v1", api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        ask(bad, "reason:chain:local/smollm2-135m")
    assert info.value.status_code == 401 and info.value.body["code"] == "invalid_api_key"
    anonymous = httpx.get(f"{server}/v1/models", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("model", ["reason:chain:groq/llama-nope", "reason:nope:local/smollm2-135m",
                                   "reason:chain:anthropic/claude-x"])
def test_unknown_model_is_404(client, model):
    with pytest.raises(openai.NotFoundError) as info:
        ask(client, model)
    assert info.value.body["code"] == "model_not_found" and info.value.body["param"] == "model"


@pytest.mark.parametrize(("body", "message"), [
    ({"messages": [{"role": "assistant", "content": "hi"}]}, "last message must be a non-empty user message"),
    ({"messages": []}, "non-empty list"),
    ({"max_usd": -1}, "`max_usd` must be a positive number"),
    ({"max_steps": 0}, "max_steps"),
    ({"n": 2}, "only n=1"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "text"),
])
def test_bad_requests_are_400_with_openai_error_bodies(server, recorded, body, message):
    payload = {"model": f"reason:chain:replay/{recorded}", "messages": [{"role": "user", "content": Q}],
               **body}
    response = httpx.post(f"{server}/v1/chat/completions", json=payload,
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"


def test_unknown_routes_get_json_errors(server):
    response = httpx.get(f"{server}/v1/nothing-here", timeout=10)
    assert response.status_code == 404 and response.json()["error"]["message"] == "Not Found"
    wrong_method = httpx.get(f"{server}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"})
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def test_concurrent_requests(client, recorded):
    def one(_: int) -> str | None:
        return ask(client, f"reason:chain:replay/{recorded}").choices[0].message.content

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(4)))
    assert answers == ["4"] * 4


def test_a_strategy_over_another_openai_compatible_server(client, upstream):
    response = ask(client, f"reason:plain:{upstream.model('tiny')}")
    assert response.choices[0].message.content == "4"
    assert upstream.posts()[-1].body["model"] == "tiny"


def test_refuses_to_serve_off_loopback_without_a_key():
    env = {k: v for k, v in os.environ.items() if k not in ("REASON_SERVER_API_KEY", "REASON_SERVE_API_KEY")}
    done = subprocess.run([str(REASON), "serve", "--host", "0.0.0.0"], capture_output=True, text=True,
                          timeout=60, env=env, check=False)
    assert done.returncode == 2 and "refusing to serve on 0.0.0.0 without --api-key" in done.stderr


# A solve that would take 61 calls (about 3 s): 60 think steps, then the answer.
LONG = [f"Step {i}: still working it out." for i in range(1, 61)] + ["Final answer: 4"]
LONG_CONFIG = {"max_steps": 60, "reflect": False, "verify": False}
LATENCY = 0.05


@pytest.fixture
def in_process(tmp_path):
    """The app on uvicorn in this process (as `reason serve` runs it), so a test can hand it a ScriptedModel
    and count its calls. Yields (model, url)."""
    app = create_app(runs_dir=tmp_path, model="fake/slow")
    model = ScriptedModel(LONG, latency=LATENCY)
    app.state.api.models["fake/slow"] = model
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield model, f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=10)


def ended_trajectory(runs: Path, timeout: float = 2.0) -> Path:
    """The one trajectory in `runs`, once it has its end record; long before the uncancelled solve would end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = list(runs.glob("*.jsonl"))
        if files and load_trajectory(files[0])[2] is not None:
            assert len(files) == 1
            return files[0]
        time.sleep(0.02)
    pytest.fail(f"no closed trajectory after {timeout} s: the solve went on after the client left")


def assert_cancelled(model: ScriptedModel, path: Path) -> None:
    """The solve stopped at a step boundary, far short of the script, and recorded why."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]  # every line is whole JSON
    assert lines[0]["type"] == "header" and lines[-1]["type"] == "end"
    assert [r["type"] for r in lines[1:-1]] == ["step"] * (len(lines) - 2)
    _, steps, end = load_trajectory(path)
    assert end["stop_reason"] == "interrupted"
    calls = len(model.calls)
    assert 1 <= calls <= 10 < len(LONG)  # those before the client left and the one in flight, not 61
    assert len(steps) == calls == end["usage"]["calls"]  # every call made is on record
    time.sleep(4 * LATENCY)
    assert len(model.calls) == calls and model.active == 0  # and none was made after the stop


def test_a_streaming_client_that_disconnects_cancels_the_solve(in_process, tmp_path):
    model, url = in_process
    body = {"model": "reason:chain:fake/slow", "messages": [{"role": "user", "content": Q}], "stream": True,
            "reasoning": True, **LONG_CONFIG}
    with httpx.Client(timeout=10) as http, http.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if "reasoning_content" in line:  # the first step: mid-answer, now hang up
                assert "Step 1: still working it out." in line
                break
        else:
            pytest.fail("the stream ended without a step")
    assert_cancelled(model, ended_trajectory(tmp_path))


def test_a_blocking_client_that_disconnects_cancels_the_solve(in_process, tmp_path):
    model, url = in_process
    body = {"model": "reason:chain:fake/slow", "messages": [{"role": "user", "content": Q}], **LONG_CONFIG}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up (and closes the connection) after 0.25 s
        httpx.post(f"{url}/v1/chat/completions", json=body, timeout=0.25)
    assert_cancelled(model, ended_trajectory(tmp_path))


@pytest.mark.parametrize(("name", "expected"), [
    ("local/smollm2-135m", ("crosscheck", "local/smollm2-135m")),
    ("reason:plain:local/smollm2-135m", ("plain", "local/smollm2-135m")),
    ("reason:local/smollm2-135m", ("crosscheck", "local/smollm2-135m")),
    ("reason:plain", ("plain", "local/qwen2.5-coder-1.5b")),
    ("reason", ("crosscheck", "local/qwen2.5-coder-1.5b")),
    ("reason:chain:http://127.0.0.1:9/v1#m", ("chain", "http://127.0.0.1:9/v1#m")),
])
def test_model_name_forms(name, expected):
    api = ReasonAPI(model=["local/qwen2.5-coder-1.5b", "http://127.0.0.1:9/v1#m"], allow_models=["local/*"])
    assert api.parse_model(name)[:2] == expected


def test_earlier_turns_become_context():
    question, system = conversation([
        {"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "What is 3*3?"},
    ])
    assert system == "Be brief."
    assert question.startswith("Earlier in this conversation:") and question.endswith("What is 3*3?")


@pytest.mark.slow
def test_one_short_real_call_with_the_small_local_model(client):
    response = ask(client, "reason:plain:local/smollm2-135m", "What is 2+2? Answer with a number.",
                   extra_body={"max_tokens_per_call": 16, "max_calls": 1})
    usage = response.usage
    assert 0 < usage.completion_tokens <= 17 and usage.prompt_tokens > 0
    assert isinstance(response.choices[0].message.content, str)
    assert json.dumps(response.model_extra["reason"])  # the extras are plain JSON
