"""The remote adapters over real HTTP against the in-process fake server: success, streaming, tools,
retries (429 with Retry-After, 5xx, timeouts, resets), no retries (401, context length), async concurrency,
cost, key lookup and endpoint config."""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fake_openai_server import Fault, serve

from orchestrator.errors import ConfigError, ContextLengthExceeded, MissingKey, ProviderError
from orchestrator.keys import set_key
from orchestrator.models import get_model, pricing
from orchestrator.models.anthropic_model import AnthropicModel, to_anthropic, tools_to_anthropic
from orchestrator.models.openai_compat import OpenAIModel
from orchestrator.models.retry import RetryPolicy, call, retry_after

LIVE_ENV = {var: os.environ.get(var) for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}  # before isolation
FAST = RetryPolicy(base_wait=0.01, max_wait=0.05)
KEY = "sk-proj-TESTKEY0123456789abcdefghij"
ANT_KEY = "sk-ant-api03-TESTKEY0123456789abcdef"
USER = [{"role": "user", "content": "what is two plus two"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "python",
        "description": "Run Python code.",
        "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "python", "arguments": '{"code": "2+2"}'}}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("REASON_CONFIG_DIR", str(tmp_path / "config"))
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL",
                "REASON_SERVER_API_KEY", "REASON_HTTP_API_KEY", "REASON_SERVE_API_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def srv():
    with serve(replies=["The answer is 4"]) as s:
        yield s


def openai_model(srv, name: str = "gpt-4o-mini", **kwargs) -> OpenAIModel:
    return get_model(srv.model(name), retry_policy=RetryPolicy(base_wait=0.01, max_wait=0.05), **kwargs)


def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def test_adapter_modules_do_not_import_sdks():
    code = (
        "import sys, orchestrator.models.openai_compat, orchestrator.models.anthropic_model, "
        "orchestrator.models.litellm_model, orchestrator.models.cache, orchestrator.models.pricing; "
        "print(sorted({'openai', 'anthropic', 'litellm'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- OpenAI-compatible ----------------------------------------------------------------------------
def test_complete_returns_text_usage_and_raw(srv):
    srv.cached_tokens, srv.reasoning_tokens = 3, 2
    model = openai_model(srv)
    c = model.complete(
        USER, temperature=0.5, max_tokens=50, seed=7, stop=["\n\n"], top_p=0.9, extra={"logprobs": False}
    )
    assert c.text == "The answer is 4" and c.finish_reason == "stop" and c.model == srv.model("gpt-4o-mini")
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (5 + 3, 4)
    assert (c.usage.cached_tokens, c.usage.reasoning_tokens) == (3, 2)
    assert c.raw["choices"][0]["message"]["content"] == "The answer is 4"
    body = srv.posts("/v1/chat/completions")[0].body
    assert body["model"] == "gpt-4o-mini" and body["messages"] == USER
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.5, 0.9, 50, 7)
    assert body["stop"] == ["\n\n"] and body["logprobs"] is False
    assert srv.requests[0].headers["authorization"] == "Bearer none"
    assert isinstance(model, OpenAIModel) and model.supports_tools and model.context_window == 128000


@pytest.mark.parametrize("stream", [False, True])
def test_server_specific_options_reach_the_server_as_given(srv, stream):
    # vLLM and llama.cpp take sampling options OpenAI does not have; they go in the body unchanged.
    on_token = (lambda piece: None) if stream else None
    c = openai_model(srv).complete(USER, on_token=on_token, extra={"top_k": 20, "repetition_penalty": 1.1})
    assert c.text == "The answer is 4"
    body = srv.posts()[0].body
    assert (body["top_k"], body["repetition_penalty"]) == (20, 1.1) and body.get("stream", False) is stream


def test_cost_uses_the_model_part_of_an_http_name(srv):
    c = openai_model(srv, "gpt-4o-mini").complete(USER)
    assert c.cost_usd == pytest.approx(pricing.cost("gpt-4o-mini", c.usage)) and c.cost_usd > 0
    unknown = openai_model(srv, "my-local-model")
    assert unknown.complete(USER).cost_usd == 0.0 and pricing.price("my-local-model") is None
    assert openai_model(srv, "default").context_window is None
    priced = openai_model(srv, "my-local-model", pricing_name="openai/gpt-4o")
    assert priced.complete(USER).cost_usd > 0


def test_stream_sends_pieces_and_assembles_text_and_usage(srv):
    pieces: list[str] = []
    c = openai_model(srv).complete(USER, on_token=pieces.append)
    assert pieces == ["The", " answer", " is", " 4"]
    assert c.text == "The answer is 4" and c.usage.completion_tokens == 4 and c.usage.prompt_tokens == 5
    assert c.finish_reason == "stop" and c.cost_usd > 0
    body = srv.posts()[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [False, True])
def test_native_tool_calls(srv, stream):
    srv.replies = [{"content": "", "tool_calls": [CALL]}]
    c = openai_model(srv).complete(USER, tools=[TOOL], on_token=(lambda t: None) if stream else None)
    assert c.finish_reason == "tool_calls"
    assert [
        (t["id"], t["function"]["name"], json.loads(t["function"]["arguments"])) for t in c.tool_calls
    ] == [("call_1", "python", {"code": "2+2"})]
    assert srv.posts()[0].body["tools"] == [TOOL]


def test_429_waits_for_retry_after_then_succeeds(srv):
    srv.faults.append(Fault.rate_limit(retry_after="0.6"))
    c, seconds = timed(lambda: openai_model(srv).complete(USER))
    assert c.text == "The answer is 4" and len(srv.posts()) == 2
    assert seconds >= 0.55
    gap = srv.posts()[1].at - srv.posts()[0].at
    assert 0.55 <= gap < 3


def test_retry_after_is_capped_and_accepts_http_dates(srv):
    srv.faults.append(Fault.rate_limit(retry_after="3600"))
    model = get_model(srv.model(), retry_policy=RetryPolicy(base_wait=0.01, max_retry_after=0.2))
    _, seconds = timed(lambda: model.complete(USER))
    assert 0.2 <= seconds < 2

    class Response:
        def __init__(self) -> None:
            self.headers = {"retry-after": email.utils.formatdate(time.time() + 30, usegmt=True)}

    class Limited(Exception):
        response = Response()

    assert 25 < retry_after(Limited()) <= 31


@pytest.mark.parametrize("fault", [500, 502, 503, Fault.reset(), Fault.close(), Fault.cut()])
def test_server_errors_and_broken_connections_are_retried(srv, fault):
    srv.faults.extend([Fault.of(fault), Fault.of(fault)])
    assert openai_model(srv).complete(USER).text == "The answer is 4"
    assert len(srv.posts()) == 3


def test_a_stream_cut_midway_is_retried(srv):
    srv.faults.append(Fault.cut())
    pieces: list[str] = []
    c = openai_model(srv).complete(USER, on_token=pieces.append)
    assert c.text == "The answer is 4" and len(srv.posts()) == 2
    assert "".join(pieces).endswith("The answer is 4")


def test_timeout_then_success(srv):
    srv.faults.append(Fault.hang(10))
    c, seconds = timed(lambda: openai_model(srv, timeout=0.5).complete(USER))
    assert c.text == "The answer is 4" and len(srv.posts()) == 2
    assert 0.5 <= seconds < 3


def test_the_timeout_can_be_set_from_the_environment(srv, monkeypatch):
    monkeypatch.setenv("REASON_HTTP_TIMEOUT", "0.5")
    srv.faults.append(Fault.hang(10))
    model = openai_model(srv)
    assert model.timeout == 0.5 and model.complete(USER).text == "The answer is 4" and len(srv.posts()) == 2
    monkeypatch.setenv("REASON_HTTP_TIMEOUT", "7200")
    assert openai_model(srv).timeout == 7200 and openai_model(srv, timeout=3).timeout == 3
    for bad in ("soon", "0", "-5", "inf", "nan"):
        monkeypatch.setenv("REASON_HTTP_TIMEOUT", bad)
        with pytest.raises(ConfigError, match="REASON_HTTP_TIMEOUT must be a number of seconds"):
            openai_model(srv)
    monkeypatch.delenv("REASON_HTTP_TIMEOUT")
    assert openai_model(srv).timeout == 600


def test_gives_up_after_the_configured_attempts(srv):
    srv.faults.extend([503] * 10)
    with pytest.raises(ProviderError, match=r"HTTP 503.*gave up after 3 attempts"):
        openai_model(srv, max_retries=2).complete(USER)
    assert len(srv.posts()) == 3


def test_401_is_not_retried_and_the_key_is_scrubbed(srv):
    srv.faults.append(Fault.unauthorized())  # echoes the key it received, as some providers do
    with pytest.raises(ProviderError) as info:
        openai_model(srv, api_key=KEY).complete(USER)
    assert len(srv.posts()) == 1
    assert srv.posts()[0].headers["authorization"] == f"Bearer {KEY}"
    assert "401" in str(info.value) and KEY not in str(info.value) and "TESTKEY" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_bad_requests_are_not_retried(srv, status):
    srv.faults.append(Fault(status, message="no"))
    with pytest.raises(ProviderError) as info:
        openai_model(srv).complete(USER)
    assert not isinstance(info.value, ContextLengthExceeded) and len(srv.posts()) == 1


def test_context_length_is_not_retried(srv):
    srv.faults.append(Fault.context_length())
    with pytest.raises(ContextLengthExceeded, match="maximum context length"):
        openai_model(srv).complete(USER)
    assert len(srv.posts()) == 1


def test_bugs_are_raised_unchanged_and_not_retried():
    calls = []

    def broken():
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        call(broken, FAST)
    assert len(calls) == 1


async def test_async_calls_run_concurrently(srv):
    srv.latency = 0.2
    model = openai_model(srv)
    start = time.monotonic()
    results = await asyncio.gather(
        *(model.acomplete([{"role": "user", "content": f"q{i}"}]) for i in range(8))
    )
    assert time.monotonic() - start < 0.8
    assert [r.text for r in results] == ["The answer is 4"] * 8 and all(r.cost_usd > 0 for r in results)
    client = model._aclient()
    await model.aclose()
    assert client.is_closed() and model._async is None
    assert (await model.acomplete(USER)).text == "The answer is 4"  # usable again: a new client
    await model.aclose()


async def test_async_retries_429_and_raises_401(srv):
    srv.faults.extend([Fault.rate_limit("0.3"), 500])
    model = openai_model(srv, api_key=KEY)
    start = time.monotonic()
    assert (await model.acomplete(USER)).text == "The answer is 4"
    assert time.monotonic() - start >= 0.25 and len(srv.posts()) == 3
    srv.faults.append(Fault.unauthorized())
    with pytest.raises(ProviderError) as info:
        await model.acomplete(USER)
    assert KEY not in str(info.value) and len(srv.posts()) == 4
    await model.aclose()


def test_one_model_serves_32_threads_at_once(srv):
    srv.latency = 0.3
    model = openai_model(srv)
    start = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        texts = list(
            pool.map(lambda i: model.complete([{"role": "user", "content": str(i)}]).text, range(32))
        )
    assert texts == ["The answer is 4"] * 32 and time.monotonic() - start < 3


def test_samples_are_requested_at_once_each_with_its_seed(srv):
    srv.latency = 1.0
    model = openai_model(srv)
    completions = model.sample(USER, [7, 8, 9, 10], temperature=0.7, max_tokens=32)
    assert [c.text for c in completions] == ["The answer is 4"] * 4
    bodies = [r.body for r in srv.requests]
    assert sorted(b["seed"] for b in bodies) == [7, 8, 9, 10] and {b["temperature"] for b in bodies} == {0.7}
    arrivals = sorted(r.at for r in srv.requests)
    assert arrivals[-1] - arrivals[0] < 0.5  # all four were in flight before the first answer (1 s) came


def test_models_endpoint(srv):
    import httpx

    srv.models = ["a", "b"]
    data = httpx.get(f"{srv.base_url}/models").json()
    assert [m["id"] for m in data["data"]] == ["a", "b"]


# --- keys and config ------------------------------------------------------------------------------
def test_openai_names_need_a_key_and_find_it(srv, monkeypatch):
    with pytest.raises(MissingKey, match="reason keys set openai"):
        get_model("openai/gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-0123456789abcdef")
    set_key("openai", "sk-from-file-0123456789abcdef")
    model = get_model("openai/gpt-4o-mini", base_url=srv.base_url, retry_policy=FAST)
    model.complete(USER, max_tokens=5)
    request = srv.posts()[0]
    assert request.headers["authorization"] == "Bearer sk-from-file-0123456789abcdef"
    assert request.body["max_tokens"] == 5  # a compatible server: not max_completion_tokens
    assert (
        get_model("openai/gpt-4o-mini")._request(USER, model.options.merged(max_tokens=5))[
            "max_completion_tokens"
        ]
        == 5
    )


def test_http_names_never_send_the_openai_key_elsewhere(srv, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-0123456789abcdef")
    openai_model(srv).complete(USER)
    assert srv.posts()[0].headers["authorization"] == "Bearer none"  # 127.0.0.1 is not api.openai.com
    monkeypatch.setenv("REASON_HTTP_API_KEY", "server-key-0123456789")
    openai_model(srv).complete(USER)
    assert srv.posts()[1].headers["authorization"] == "Bearer server-key-0123456789"
    monkeypatch.delenv("REASON_HTTP_API_KEY")
    monkeypatch.setenv("REASON_SERVER_API_KEY", "legacy-key-0123456789")  # the old name: still read, warned
    with pytest.warns(DeprecationWarning, match="REASON_HTTP_API_KEY"):
        assert openai_model(srv).api_key == "legacy-key-0123456789"
    monkeypatch.delenv("REASON_SERVER_API_KEY")
    assert get_model("https://api.openai.com/v1#gpt-4o-mini").api_key == "sk-env-0123456789abcdef"
    assert get_model("http://api.openai.com.evil.example/v1#m").api_key == "none"


def test_endpoint_from_config(srv, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"\[endpoints.mine\]"):
        get_model("endpoint/mine")
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.toml").write_text(
        f'[endpoints.mine]\nbase_url = "{srv.base_url}"\nmodel = "served-model"\napi_key_env = "MINE_KEY"\n'
    )
    with pytest.raises(MissingKey, match="MINE_KEY"):
        get_model("endpoint/mine")
    monkeypatch.setenv("MINE_KEY", "mine-0123456789")
    assert get_model("endpoint/mine", retry_policy=FAST).complete(USER).text == "The answer is 4"
    assert srv.posts()[0].body["model"] == "served-model"
    assert srv.posts()[0].headers["authorization"] == "Bearer mine-0123456789"


# --- Anthropic ------------------------------------------------------------------------------------
def anthropic_model(srv, **kwargs) -> AnthropicModel:
    return get_model(
        "anthropic/claude-haiku-4-5", api_key=ANT_KEY, base_url=srv.url, retry_policy=FAST, **kwargs
    )


def test_anthropic_message_conversion():
    system, messages = to_anthropic(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "4"},
            {"role": "system", "content": "Answer in digits."},
        ]
    )
    assert system == "Be brief.\n\nAnswer in digits."
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_1", "name": "python", "input": {"code": "2+2"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "4"}]},
    ]
    assert tools_to_anthropic([TOOL]) == [
        {"name": "python", "description": "Run Python code.", "input_schema": TOOL["function"]["parameters"]}
    ]


def test_anthropic_complete_and_stream(srv):
    srv.cached_tokens = 2
    model = anthropic_model(srv)
    messages = [{"role": "system", "content": "Be brief."}, *USER]
    c = model.complete(messages, stop=["END"])
    body = srv.posts("/v1/messages")[0].body
    assert body["system"] == "Be brief." and body["max_tokens"] == 4096 and body["stop_sequences"] == ["END"]
    assert c.text == "The answer is 4" and c.finish_reason == "stop"
    assert (c.usage.prompt_tokens, c.usage.cached_tokens, c.usage.completion_tokens) == (9, 2, 4)
    assert c.cost_usd == pytest.approx(pricing.cost("claude-haiku-4-5", c.usage)) and c.cost_usd > 0
    assert model.context_window == 200000 and model.supports_tools
    pieces: list[str] = []
    s = model.complete(messages, on_token=pieces.append)
    assert pieces == ["The", " answer", " is", " 4"] and s.text == c.text and s.usage == c.usage


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tools(srv, stream):
    srv.replies = [{"content": "Let me run it.", "tool_calls": [CALL]}]
    c = anthropic_model(srv).complete(USER, tools=[TOOL], on_token=(lambda t: None) if stream else None)
    assert c.finish_reason == "tool_calls" and c.text == "Let me run it."
    assert c.tool_calls == [
        {"id": "call_1", "type": "function", "function": {"name": "python", "arguments": '{"code": "2+2"}'}}
    ]
    assert srv.posts()[0].body["tools"][0]["input_schema"]["required"] == ["code"]


def test_anthropic_retries_and_refusals(srv):
    srv.faults.extend([Fault.rate_limit("0.3"), 529, Fault.reset()])
    c, seconds = timed(lambda: anthropic_model(srv).complete(USER))
    assert c.text == "The answer is 4" and len(srv.posts()) == 4 and seconds >= 0.25
    srv.faults.append(Fault.unauthorized())
    with pytest.raises(ProviderError) as info:
        anthropic_model(srv).complete(USER)
    assert len(srv.posts()) == 5 and ANT_KEY not in str(info.value)
    srv.faults.append(Fault.context_length())
    with pytest.raises(ContextLengthExceeded, match="prompt is too long"):
        anthropic_model(srv).complete(USER)
    assert len(srv.posts()) == 6


async def test_anthropic_async_concurrency(srv):
    srv.latency = 0.2
    model = anthropic_model(srv)
    start = time.monotonic()
    results = await asyncio.gather(*(model.acomplete(USER) for _ in range(8)))
    assert time.monotonic() - start < 0.8 and {r.text for r in results} == {"The answer is 4"}
    await model.aclose()


def test_anthropic_needs_a_key():
    with pytest.raises(MissingKey, match="ANTHROPIC_API_KEY"):
        get_model("anthropic/claude-haiku-4-5")


# --- litellm (one import, ~4 s) -------------------------------------------------------------------
def test_litellm_complete_stream_retry_and_router(srv, tmp_path):
    from orchestrator.models.litellm_model import LiteLLMModel

    set_key("openai", KEY)  # litellm names use the stored key too
    model = LiteLLMModel("openai/gpt-4o-mini", base_url=srv.base_url, retry_policy=FAST, timeout=5)
    assert model.supports_tools and model.context_window == 128000
    c = model.complete(USER, temperature=0)
    assert c.text == "The answer is 4" and c.usage.completion_tokens == 4 and c.cost_usd > 0
    assert srv.posts()[0].body["temperature"] == 0
    assert srv.posts()[0].headers["authorization"] == f"Bearer {KEY}"
    pieces: list[str] = []
    s = model.complete(USER, on_token=pieces.append)
    assert "".join(pieces) == "The answer is 4" and s.usage.completion_tokens == 4
    srv.faults.extend([Fault.rate_limit("0.3"), 500])
    assert model.complete(USER).text == "The answer is 4" and len(srv.posts()) == 5
    srv.faults.append(Fault.unauthorized())
    with pytest.raises(ProviderError) as info:
        model.complete(USER)
    assert len(srv.posts()) == 6 and KEY not in str(info.value)
    srv.faults.append(Fault.context_length())
    with pytest.raises(ContextLengthExceeded):
        model.complete(USER)

    config = tmp_path / "router.json"
    deployment = {"model": "openai/gpt-4o-mini", "api_base": srv.base_url}
    config.write_text(
        json.dumps(
            {
                "model_list": [
                    {"model_name": "pool", "litellm_params": {**deployment, "api_key": "key-aaaaaaaa"}},
                    {"model_name": "pool", "litellm_params": {**deployment, "api_key": "key-bbbbbbbb"}},
                ],
                "router_settings": {"routing_strategy": "simple-shuffle"},
            }
        )
    )
    router = get_model(f"router/{config}", retry_policy=FAST)
    assert isinstance(router, LiteLLMModel) and router.context_window == 128000
    srv.latency = 0.2
    before = len(srv.posts())

    async def many():
        return await asyncio.gather(*(router.acomplete(USER) for _ in range(16)))

    start = time.monotonic()
    results = asyncio.run(many())
    assert time.monotonic() - start < 1.6 and {r.text for r in results} == {"The answer is 4"}
    keys = {r.headers["authorization"] for r in srv.posts()[before:]}
    assert keys == {"Bearer key-aaaaaaaa", "Bearer key-bbbbbbbb"}


# --- live (opt-in: --live and a key) --------------------------------------------------------------
@pytest.mark.live
@pytest.mark.parametrize(
    ("name", "var"),
    [("openai/gpt-4o-mini", "OPENAI_API_KEY"), ("anthropic/claude-haiku-4-5", "ANTHROPIC_API_KEY")],
)
def test_live_provider(name, var, monkeypatch):
    if not LIVE_ENV[var]:
        pytest.skip(f"set {var}")
    monkeypatch.setenv(var, LIVE_ENV[var])
    model = get_model(name)
    question = [{"role": "user", "content": "Reply with the single word: pong"}]
    c = model.complete(question, max_tokens=20)
    assert "pong" in c.text.lower() and c.usage.prompt_tokens > 0 and c.cost_usd > 0
    pieces: list[str] = []
    s = model.complete(question, max_tokens=20, on_token=pieces.append)
    assert "".join(pieces) == s.text and s.usage.completion_tokens > 0


# --- token statistics ----------------------------------------------------------------------------------
def test_logprobs_become_token_statistics_and_weigh_a_vote(monkeypatch):
    from orchestrator import Reasoner

    order = [3, 3, 9, 3, 9]  # three votes for 3, two for the surer 9

    def reply(messages):
        value = order.pop(0)
        return {"content": f"Step 1: add.\nFinal answer: {value}", "logprob": -0.05 if value == 9 else -2.0}

    with serve(replies=["Step 1: x\nFinal answer: 4"]) as srv:
        plain = get_model(srv.model("m"))
        assert plain.complete([{"role": "user", "content": "hi"}]).confidence is None
        assert "logprobs" not in srv.requests[-1].body and not plain.reports_confidence
        model = get_model(srv.model("m"), logprobs=True)
        c = model.complete([{"role": "user", "content": "hi"}])
        assert srv.requests[-1].body["logprobs"] is True and srv.requests[-1].body["top_logprobs"] == 20
        # each token: log-prob -0.1; confidence: minus the mean of the 20 alternatives (-0.1 and 19 x -5.0)
        assert c.confidence["tokens"] == 6 and c.confidence["mean_logprob"] == pytest.approx(-0.1)
        assert c.confidence["mean_conf"] == pytest.approx((0.1 + 19 * 5.0) / 20)
        streamed = model.complete([{"role": "user", "content": "hi"}], on_token=lambda t: None)
        assert streamed.confidence == c.confidence
        monkeypatch.setenv("REASON_LOGPROBS", "1")
        assert get_model(srv.model("m")).reports_confidence
    with serve(replies=reply) as srv:
        result = Reasoner(get_model(srv.model("m"), logprobs=True), "vote", save_trajectory=False,
                          strategy_options={"samples": 5, "weight": "mean_prob", "rule": "none"}).solve("Q?")
    assert result.details["votes"] == {"3": 3, "9": 2} and result.answer == "9"
