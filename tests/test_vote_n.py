"""`vote:sampler=plain` against a real HTTP server on 127.0.0.1 (`fake_openai_server`): the samples the
stopping rule wants at once go out as one request with `n` where the server takes it (vLLM), one request each
where it does not (llama-server), clipped to what the budget admits, and one request each after a refusal.
Every sample keeps its own trajectory file."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_openai_server import serve

from orchestrator import Budget, Reasoner, ReasonConfig, load_trajectory
from orchestrator.models import get_model, openai_compat
from orchestrator.models.retry import RetryPolicy
from orchestrator.models.servers import SERVERS, url_variable

Q = "Tom has 3 apples and buys 6 more. How many apples does he have?"
FAST = RetryPolicy(base_wait=0.01, max_wait=0.05)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for server in SERVERS:
        monkeypatch.delenv(url_variable(server), raising=False)
    for var in ("REASON_LOGPROBS", "REASON_N", "REASON_SERVER_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(openai_compat, "_NO_N", set())


def vote(srv, monkeypatch, server="vllm", budget=None, concurrency=4, **options):
    monkeypatch.setenv(url_variable(server), srv.base_url)
    model = get_model(f"{server}/Qwen/Qwen2.5-7B-Instruct", retry_policy=FAST)
    reasoner = Reasoner(model, "vote", budget=budget, config=ReasonConfig(seed=3, max_tokens_per_call=64),
                        strategy_options={"sampler": "plain", **options}, concurrency=concurrency)
    return reasoner.solve(Q)


def sample_files(result) -> list[Path]:
    return sorted(Path(result.trajectory_path).glob("sample-*.jsonl"))


@pytest.mark.parametrize("concurrency", [4, 1])  # one request at a time: still one request for the wave
def test_vllm_gets_a_vote_of_k_plain_samples_as_one_request_with_n(monkeypatch, concurrency):
    with serve(replies=["The answer is 9."] * 3 + ["The answer is 8."]) as srv:
        result = vote(srv, monkeypatch, samples=4, rule="none", concurrency=concurrency)
        bodies = [r.body for r in srv.posts("/v1/chat/completions")]
    assert len(bodies) == 1 and bodies[0]["n"] == 4 and bodies[0]["seed"] == 3  # the first sample's seed
    assert bodies[0]["messages"] == [{"role": "user", "content": Q}]
    assert result.answer == "9" and result.details["votes"] == {"9": 3, "8": 1} and result.samples_used == 4
    files = sample_files(result)
    assert len(files) == 4  # each choice is its own sample, on disk
    answers = []
    for path in files:
        header, steps, summary = load_trajectory(path)
        assert header["sampler"] == "plain" and [s.kind for s in steps] == ["think"]
        answers.append(summary["answer"])
    assert sorted(answers) == ["8", "9", "9", "9"]
    # the server's counts, not multiplied: the prompt once (on the first sample), each choice its own tokens
    prompt = len(Q.split())
    assert result.usage.prompt_tokens == prompt and result.usage.completion_tokens == 4 * 4
    assert [s["tokens"] for s in result.details["samples"]] == [prompt + 4, 4, 4, 4]


def test_llama_server_gets_one_request_per_sample(monkeypatch):
    with serve(replies=["The answer is 9."] * 3 + ["The answer is 8."]) as srv:
        result = vote(srv, monkeypatch, server="llama-server", samples=4, rule="none")
        bodies = [r.body for r in srv.posts("/v1/chat/completions")]
    assert len(bodies) == 4 and all("n" not in b for b in bodies)
    assert sorted(b["seed"] for b in bodies) == [3, 1003, 2003, 3003]
    assert result.samples_used == 4 and len(sample_files(result)) == 4


def test_adaptive_stopping_draws_its_waves_as_n_requests(monkeypatch):
    """Beta at 0.95 can stop after 4 agreeing samples at the earliest: the first wave is one request of 4; a
    split tally asks for the next wave as one request of what the rule then needs."""
    replies = ["The answer is 9.", "The answer is 8.", "The answer is 9.", "The answer is 7."] + ["9"] * 12
    with serve(replies=replies) as srv:
        result = vote(srv, monkeypatch, samples=12)
        ns = [r.body.get("n", 1) for r in srv.posts()]
    assert ns[0] == 4 and len(ns) < result.samples_used  # waves, not one request a sample
    assert sum(ns) == result.samples_used and result.answer == "9"
    assert result.details["stopped_by"] == "beta" and result.samples_used < 12
    assert len(sample_files(result)) == result.samples_used


@pytest.mark.parametrize("concurrency", [4, 1])
def test_a_calls_budget_clips_n(monkeypatch, concurrency):
    with serve(replies="The answer is 9.") as srv:
        result = vote(srv, monkeypatch, budget=Budget(max_calls=2), samples=6, rule="none", concurrency=concurrency)
        ns = [r.body.get("n", 1) for r in srv.posts()]
    assert ns == [2] and result.samples_used == 2 and result.usage.calls == 2
    assert result.stop_reason == "budget_calls" and len(sample_files(result)) == 2


def test_a_token_budget_clips_n_to_the_samples_it_admits(monkeypatch):
    """Each sample is held at its bound (the prompt, about a third of its characters, plus max_tokens_per_call:
    89 tokens here) as if the others were already in flight: 250 tokens admit three of four, so n is 3."""
    with serve(replies="The answer is 9.") as srv:
        budget = Budget(max_tokens=250, first_call_tokens=50)
        result = vote(srv, monkeypatch, budget=budget, samples=4, rule="none")
        ns = [r.body.get("n", 1) for r in srv.posts()]
    assert ns[0] == 3
    assert result.usage.total_tokens <= 250 and sum(ns) == result.samples_used
    assert len(sample_files(result)) == result.samples_used


def test_a_server_that_refuses_n_gets_the_vote_one_request_a_sample(monkeypatch, caplog):
    with serve(replies="The answer is 9.", reject_n=400) as srv:
        with caplog.at_level("WARNING", logger="orchestrator.models"):
            result = vote(srv, monkeypatch, samples=4, rule="none")
            again = vote(srv, monkeypatch, samples=3, rule="none")  # a later solve in the same process
        ns = [r.body.get("n", 1) for r in srv.posts()]
    assert ns == [4] + [1] * 4 + [1] * 3  # refused once; then one request a sample, never n again
    assert result.answer == "9" and result.samples_used == 4 and len(sample_files(result)) == 4
    assert again.samples_used == 3
    assert sum("refused n=4" in r.getMessage() for r in caplog.records) == 1


def test_a_cached_model_asks_one_request_a_sample(monkeypatch, tmp_path):
    """With the disk cache each sample is its own entry (keyed by its index), so each is its own request: a
    rerun is served from the cache, sample by sample."""
    with serve(replies="The answer is 9.") as srv:
        monkeypatch.setenv("REASON_VLLM_URL", srv.base_url)
        for _ in range(2):
            reasoner = Reasoner("vllm/m", "vote", cache=tmp_path / "cache", config=ReasonConfig(seed=3),
                                strategy_options={"sampler": "plain", "samples": 4, "rule": "none"})
            result = reasoner.solve(Q)
        ns = [r.body.get("n", 1) for r in srv.posts()]
    assert ns == [1, 1, 1, 1] and result.answer == "9" and result.usage.calls == 4


def test_a_failed_wave_fails_only_the_samples_it_asked_for():
    """A wave clipped by the budget to k samples, whose request then fails, fails those k: the samples never
    asked for go back to the queue and are drawn later (not counted as used and failed)."""
    from fake_openai_server import Fault

    srv_box: list = []

    def reply(messages):
        if len(srv_box[0].posts("/v1/chat/completions")) == 1:  # after the first wave: one refused key
            srv_box[0].faults.append(Fault.unauthorized())
        return "The answer is 9."

    with serve(replies=reply) as srv:
        srv_box.append(srv)
        model = get_model(f"{srv.base_url}#m", retry_policy=FAST, n=True)
        reasoner = Reasoner(model, "vote", budget=Budget(max_tokens=700),
                            config=ReasonConfig(seed=3, max_tokens_per_call=300),
                            strategy_options={"sampler": "plain", "samples": 8, "rule": "none"}, concurrency=1)
        result = reasoner.solve(Q)
        bodies = [r.body for r in srv.posts("/v1/chat/completions")]
    assert len(bodies) >= 2
    failed_n = bodies[1].get("n", 1)  # the refused request, as the budget clipped it
    assert [b.get("n", 1) for b in bodies][:2] == [1, 3]  # waves the token budget clipped (of 7 wanted)
    failed = [p for p in sample_files(result) if load_trajectory(p)[2].get("stop_reason") == "error"]
    assert len(failed) == failed_n
    assert result.samples_used == sum(b.get("n", 1) for b in bodies)  # every sample counted was asked for
