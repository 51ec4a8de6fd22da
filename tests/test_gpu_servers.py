"""GPU inference servers as named backends (`vllm/MODEL`, ...) against a real HTTP server on 127.0.0.1 that
speaks their dialect (`fake_openai_server`): `n` samples in one request, the server's own token counts,
logprobs, and where each server is looked for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_openai_server import serve

from orchestrator import Reasoner, ReasonConfig, load_trajectory
from orchestrator.errors import ConfigError
from orchestrator.models import get_model, openai_compat
from orchestrator.models.openai_compat import OpenAIModel, shares
from orchestrator.models.retry import RetryPolicy
from orchestrator.models.servers import SERVERS, ServerModel, url_variable

USER = [{"role": "user", "content": "what is two plus two"}]
REPLIES = ["Final answer: 4", "I think the answer is 4 so Final answer: 4", "Final answer: 5", "Final answer: 4"]
FAST = RetryPolicy(base_wait=0.01, max_wait=0.05)


@pytest.fixture(autouse=True)
def no_server_env(monkeypatch):
    for server in SERVERS:
        monkeypatch.delenv(url_variable(server), raising=False)
    monkeypatch.delenv("REASON_LOGPROBS", raising=False)
    monkeypatch.delenv("REASON_SERVER_API_KEY", raising=False)
    monkeypatch.delenv("REASON_N", raising=False)
    monkeypatch.setattr(openai_compat, "_NO_N", set())  # which servers refused n: per process, so per test


def server_model(srv, monkeypatch, name: str = "vllm/Qwen/Qwen2.5-7B-Instruct") -> ServerModel:
    monkeypatch.setenv(url_variable(name.split("/", 1)[0]), srv.base_url)
    model = get_model(name, retry_policy=FAST)
    assert isinstance(model, ServerModel)
    return model


def test_each_server_has_its_usual_address_and_an_override(monkeypatch):
    assert get_model("vllm/m").base_url == "http://127.0.0.1:8000/v1"
    assert get_model("sglang/m").base_url == "http://127.0.0.1:30000/v1"
    assert get_model("llama-server/m").base_url == "http://127.0.0.1:8080/v1"
    assert get_model("ollama/qwen2.5:7b").base_url == "http://127.0.0.1:11434/v1"
    monkeypatch.setenv("REASON_LLAMA_SERVER_URL", "http://gpu-box:9000/v1")
    model = get_model("llama-server/default")
    assert model.base_url == "http://gpu-box:9000/v1" and model.model == "default"
    assert model.name == "llama-server/default" and model.server == "llama-server"
    with pytest.raises(ConfigError, match="vllm/MODEL"):
        get_model("vllm/")


def test_vllm_draws_all_samples_in_one_request_with_n(monkeypatch):
    with serve(replies=REPLIES) as srv:
        model = server_model(srv, monkeypatch)
        completions = model.sample(USER, [7, 8, 9, 10], temperature=0.7, max_tokens=64)
        posts = srv.posts("/v1/chat/completions")
    assert len(posts) == 1
    body = posts[0].body
    assert body["n"] == 4 and body["seed"] == 7 and body["temperature"] == 0.7
    assert body["model"] == "Qwen/Qwen2.5-7B-Instruct"
    assert [c.text for c in completions] == REPLIES
    # the server's counts: the prompt was evaluated once, each choice's generated tokens are its own
    assert [c.usage.prompt_tokens for c in completions] == [5, 0, 0, 0]  # paid once, as the server counted it
    assert [c.usage.cached_tokens for c in completions] == [0, 0, 0, 0]
    assert [c.usage.completion_tokens for c in completions] == [len(r.split()) for r in REPLIES]
    assert {c.raw["tokens"] for c in completions} == {"logprobs"}
    # logprobs are asked for by default on vLLM: each sample has token statistics for weighted votes
    assert body["logprobs"] is True and all(c.confidence for c in completions)


def test_the_generated_tokens_are_split_by_text_without_logprobs(monkeypatch):
    monkeypatch.setenv("REASON_LOGPROBS", "0")
    with serve(replies=REPLIES) as srv:
        model = server_model(srv, monkeypatch, "sglang/m")
        completions = model.sample(USER, [1, 2, 3, 4])
        body = srv.posts()[0].body
    assert "logprobs" not in body and body["n"] == 4
    total = sum(len(r.split()) for r in REPLIES)  # what the server counted for all choices together
    counts = [c.usage.completion_tokens for c in completions]
    assert sum(counts) == total and counts[1] > counts[0]  # the longer answer gets the larger share


def test_a_server_that_ignores_n_gets_the_rest_one_request_each(monkeypatch):
    with serve(replies=REPLIES, honour_n=False) as srv:
        model = server_model(srv, monkeypatch)
        completions = model.sample(USER, [7, 8, 9])
        bodies = [r.body for r in srv.posts()]
        again = model.sample(USER, [1, 2])
        later = [r.body for r in srv.posts()][len(bodies):]
    assert len(completions) == 3 and bodies[0]["n"] == 3
    assert sorted(b["seed"] for b in bodies[1:]) == [8, 9] and all("n" not in b for b in bodies[1:])
    assert len(again) == 2 and all("n" not in b for b in later)  # not asked with n again


@pytest.mark.parametrize("status", [400, 500])  # llama-server's refusal: 400 now, 500 in older versions
def test_a_server_that_refuses_n_is_asked_one_request_a_sample_once_per_process(monkeypatch, caplog, status):
    with serve(replies=REPLIES, reject_n=status) as srv:
        monkeypatch.setenv("REASON_N", "1")  # say an http:// server takes n, and it does not
        model = get_model(srv.model("m"), retry_policy=FAST)
        assert model.supports_n
        with caplog.at_level("WARNING", logger="orchestrator.models"):
            completions = model.sample(USER, [7, 8, 9])
            other = get_model(srv.model("m"), retry_policy=FAST)  # a second model of the same server
            again = other.sample(USER, [1, 2])
        bodies = [r.body for r in srv.posts()]
    assert sorted(c.text for c in completions) == sorted(REPLIES[:3]) and len(again) == 2  # in flight at once
    assert [b.get("n") for b in bodies] == [3, None, None, None, None, None]  # refused once, not retried
    notices = [r for r in caplog.records if "refused n=3" in r.getMessage()]
    assert len(notices) == 1 and "one request each" in notices[0].getMessage()
    assert len(caplog.records) == 1


def test_n_defaults_on_for_openai_and_the_known_servers_and_reason_n_overrides(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert get_model("openai/gpt-4o-mini").supports_n
    assert get_model("vllm/m").supports_n and not get_model("llama-server/m").supports_n
    assert not get_model("http://127.0.0.1:9/v1#m").supports_n
    monkeypatch.setenv("REASON_N", "0")
    assert not get_model("openai/gpt-4o-mini").supports_n and not get_model("vllm/m").supports_n
    assert get_model("vllm/m", n=True).supports_n  # the keyword beats the environment
    monkeypatch.setenv("REASON_N", "1")
    assert get_model("http://127.0.0.1:9/v1#m").supports_n and get_model("ollama/m").supports_n
    monkeypatch.setenv("REASON_N", "yes")
    with pytest.raises(ConfigError, match="REASON_N"):
        get_model("vllm/m")


@pytest.mark.parametrize("name", ["llama-server/default", "ollama/qwen2.5:7b"])
def test_servers_without_n_get_one_request_per_sample(monkeypatch, name):
    with serve(replies=REPLIES) as srv:
        model = server_model(srv, monkeypatch, name)
        completions = model.sample(USER, [7, 8, 9, 10])
        bodies = [r.body for r in srv.posts()]
    assert len(completions) == 4 and len(bodies) == 4 and all("n" not in b for b in bodies)
    assert sorted(b["seed"] for b in bodies) == [7, 8, 9, 10]
    assert ("logprobs" in bodies[0]) is (name.startswith("llama-server"))  # Ollama returns none


def test_plain_urls_keep_one_request_per_sample_unless_the_endpoint_says_n(monkeypatch, tmp_path):
    with serve(replies=REPLIES) as srv:
        get_model(srv.model("m"), retry_policy=FAST).sample(USER, [1, 2])
        assert len(srv.posts()) == 2
        config = Path(os.environ["REASON_CONFIG_DIR"]) / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'[endpoints.box]\nbase_url = "{srv.base_url}"\nmodel = "m"\nn = true\n')
        model = get_model("endpoint/box", retry_policy=FAST)
        assert isinstance(model, OpenAIModel) and model.supports_n
        model.sample(USER, [1, 2, 3])
        assert len(srv.posts()) == 3 and srv.posts()[-1].body["n"] == 3


def test_resolving_verification_asks_its_resolves_in_one_request(monkeypatch):
    """`verify_by=resolve` draws its re-solves through `sample`: one request with `n` on vLLM."""
    replies = ["Step 1: 2 + 2 = 4.\nFinal answer: 4", "Correct.\nReward: 0.9"] + ["Final answer: 4"] * 4
    with serve(replies=replies) as srv:
        model = server_model(srv, monkeypatch)
        config = ReasonConfig(verify_by="resolve", resolve_samples=4, max_attempts=1)
        result = Reasoner(model, "chain", config=config).solve("What is 2+2?")
        bodies = [r.body for r in srv.posts()]
    assert result.answer == "4"
    assert [b.get("n", 1) for b in bodies] == [1, 1, 4]  # think, reflect, the four re-solves
    header, _, _ = load_trajectory(result.trajectory_path)
    assert header["backend"] == "vllm" and header["device"] == f"remote 127.0.0.1:{srv.port}"


def test_shares_add_up_to_the_total():
    assert sorted(shares(10, [1, 1, 1])) == [3, 3, 4]
    assert shares(7, [0, 0]) in ([4, 3], [3, 4])
    assert shares(100, [1, 3]) == [25, 75]


def test_an_n_reply_without_choices_is_retried(monkeypatch):
    with serve(replies=REPLIES, faults=["empty_choices"]) as srv:
        completions = server_model(srv, monkeypatch).sample(USER, [1, 2, 3, 4])
        ns = [r.body.get("n") for r in srv.posts()]
    assert ns == [4, 4] and len(completions) == 4  # the malformed reply, then the same request again
