"""Model servers that misbehave (issue #23, items 7-10): malformed replies, hangs, drips, long Retry-After,
empty choices in one vote sample, and budgets under concurrent samples. Real HTTP on 127.0.0.1 (the fake
server, `tests/fake_openai_server.py`), the real loop, and the real console script where exit codes matter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai_server import Fault, serve

from orchestrator import Budget, Reasoner
from orchestrator.errors import BudgetExceeded, MalformedResponse
from orchestrator.models import get_model, limits
from orchestrator.models.retry import RetryPolicy

REASON = Path(sys.executable).parent / "reason"
Q = "What is 2+2?"
FAST = RetryPolicy(base_wait=0.01, max_wait=0.05)
ANSWERS = ["Step 1: 2 + 2 is 4.\nFinal answer: 4", "Correct.\nReward: 0.9", "Verdict: CORRECT"]
MALFORMED = ["garbage", "truncated", "bad_usage", "empty_choices"]
USER = [{"role": "user", "content": Q}]


@pytest.fixture(autouse=True)
def no_server_key(monkeypatch):
    monkeypatch.delenv("REASON_SERVER_API_KEY", raising=False)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The console script, with its wall time in `.seconds`."""
    start = time.monotonic()
    done = subprocess.run([str(REASON), *args], capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    done.seconds = time.monotonic() - start  # type: ignore[attr-defined]
    return done


def last_record(path: str | Path) -> dict:
    return json.loads(Path(path).read_text().splitlines()[-1])


# --- 9: a malformed reply is a bounded, retried fault, then a clean error ------------------------------------
@pytest.mark.parametrize("fault", MALFORMED)
def test_a_malformed_reply_is_retried(fault):
    with serve(replies=["The answer is 4"], faults=[fault]) as srv:
        c = get_model(srv.model("m"), retry_policy=FAST).complete(USER)
        assert (c.text, c.usage.completion_tokens, len(srv.posts())) == ("The answer is 4", 4, 2)


@pytest.mark.parametrize("fault", MALFORMED)
def test_a_reply_malformed_every_time_is_a_one_line_error_and_the_trajectory_ends(fault, tmp_path):
    with serve(replies=ANSWERS, faults=[fault] * 2) as srv:
        done = cli("-m", srv.model("m"), "--runs-dir", str(tmp_path), Q, env={"REASON_HTTP_RETRIES": "1"})
        assert len(srv.posts()) == 2  # one retry, then given up
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: ") and "gave up after 2 attempts" in error and "(trajectory: " in error
    (path,) = tmp_path.glob("*.jsonl")
    end = last_record(path)
    assert end["type"] == "end" and end["stop_reason"] == "error" and "MalformedResponse" in end["error"]


# --- 8: --max-seconds is a deadline for every wait -----------------------------------------------------------
def slow_cli(srv, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return cli("-m", srv.model("m"), "--json", "--max-seconds", "2", *args, Q, env=env, timeout=25)
    except subprocess.TimeoutExpired:
        pytest.fail("the run outlasted its 2 s budget by more than 20 s")


@pytest.mark.parametrize("fault", [Fault.rate_limit(retry_after="30"), Fault.hang(60), Fault.drip(1.0)],
                         ids=["retry-after-30", "hang", "drip"])
def test_no_wait_outlasts_max_seconds(fault, tmp_path):
    with serve(replies=ANSWERS, faults=[fault]) as srv:
        done = slow_cli(srv, "--runs-dir", str(tmp_path), env={"REASON_HTTP_TIMEOUT": "5"})
    out = json.loads(done.stdout)
    assert out["stop_reason"] == "budget_seconds", done.stderr
    assert out["usage"]["seconds"] < 3.0  # the deadline, plus the moment it takes to notice
    assert "Traceback" not in done.stderr
    (path,) = tmp_path.glob("*.jsonl")
    assert last_record(path)["stop_reason"] == "budget_seconds"


def test_a_call_that_hangs_after_an_answer_stops_on_the_deadline_with_that_answer():
    with serve(replies=ANSWERS) as srv:
        srv.replies = [ANSWERS[0], lambda messages: (srv.stopping.wait(60), "Reward: 0.9")[1]]
        done = slow_cli(srv)
    out = json.loads(done.stdout)
    assert (out["stop_reason"], out["answer"]) == ("budget_seconds", "4")
    assert out["usage"]["seconds"] < 3.0


def test_a_dripped_stream_is_given_up_at_the_deadline():
    with serve(replies=["The answer is 4"], faults=[Fault.drip(0.5)]) as srv:
        model = get_model(srv.model("m"), retry_policy=FAST)
        start = time.monotonic()
        with limits.scope(time.monotonic() + 1.0, None), pytest.raises(BudgetExceeded):
            model.complete(USER, on_token=lambda t: None)
        assert time.monotonic() - start < 1.5


# --- 10: an empty `choices` in one vote sample fails only that sample ----------------------------------------
@pytest.mark.parametrize("concurrency", [1, 4])
def test_one_failed_vote_sample_leaves_the_vote_to_the_others(concurrency, tmp_path):
    with serve(replies=["Step 1: 2 + 2 = 4. The answer is 4"], faults=["empty_choices"]) as srv:
        model = get_model(srv.model("m"), max_retries=0)
        result = Reasoner(model, "vote", runs_dir=tmp_path, concurrency=concurrency,
                          strategy_options={"samples": 4, "rule": "none"}).solve(Q)
    assert result.answer == "4"
    states = sorted(s["stop_reason"] for s in result.details["samples"])
    assert states.count("error") == 1 and states.count("answered") == 3
    (folder,) = tmp_path.iterdir()
    ends = [last_record(p) for p in sorted(folder.glob("sample-*.jsonl"))]
    assert len(ends) == 4 and all(e["type"] == "end" for e in ends)


def test_a_vote_whose_every_sample_failed_raises_the_error(tmp_path):
    with serve(replies=["The answer is 4"], faults=["empty_choices"] * 10) as srv:
        model = get_model(srv.model("m"), max_retries=0)
        with pytest.raises(MalformedResponse, match="no choices"):
            Reasoner(model, "vote", runs_dir=tmp_path, concurrency=2,
                     strategy_options={"samples": 3, "rule": "none"}).solve(Q)


# --- 7: concurrent samples never overrun a budget by more than one call -------------------------------------
LONG = "Step 1: 2 + 2 = 4. The answer is 4. " + "And so on, " * 2000


def biggest_call(result) -> tuple[int, float]:
    calls = [c for step in result.steps for c in step.calls]
    return max(c.prompt_tokens + c.completion_tokens for c in calls), max(c.cost_usd for c in calls)


@pytest.mark.parametrize(("strategy", "budget"), [
    ("vote", Budget(max_tokens=2500)), ("vote", Budget(max_usd=0.01)), ("best-of-n", Budget(max_usd=0.02)),
], ids=["vote-tokens", "vote-usd", "best-of-n-usd"])
def test_concurrent_samples_overrun_a_budget_by_one_call_at_most(strategy, budget, tmp_path):
    with serve(replies=LONG, latency=0.3, honor_max_tokens=True) as srv:
        model = get_model(srv.model("gpt-4o"), retry_policy=FAST)  # priced: $2.50 / $10 per million
        result = Reasoner(model, strategy, budget, runs_dir=tmp_path, concurrency=4,
                          strategy_options={"samples": 8}).solve(Q)
    tokens, usd = biggest_call(result)
    if budget.max_tokens:
        assert result.usage.total_tokens <= budget.max_tokens + tokens
    if budget.max_usd:
        assert result.usage.cost_usd <= budget.max_usd + usd
    assert result.stop_reason.startswith("budget_")


# --- 11: huge replies from a server that ignores max_tokens ------------------------------------------------
def test_huge_replies_are_cut_to_their_cap_and_an_unreviewed_answer_is_reported_as_such(tmp_path):
    huge = ("The answer is 4. " + "lorem ipsum dolor " * 1000) * 4  # 12,000 words whatever max_tokens says
    with serve(replies=huge) as srv:
        done = cli("-m", srv.model("m"), "--json", "--runs-dir", str(tmp_path), Q)
    out = json.loads(done.stdout)
    assert (out["stop_reason"], out["verified"]) == ("format_errors", None)
    assert "never reviewed" in done.stderr and "answered" not in done.stderr
    # each reply was cut to its call's cap, so the prompts that carry it back stay small
    assert all(len(step["text"].split()) <= 1100 for step in out["steps"])  # think: 1,024 tokens
    assert out["usage"]["prompt_tokens"] < 6000


def test_samples_drawn_together_obey_the_deadline_too():
    with serve(replies=["The answer is 4"]) as srv:
        srv.faults.extend([Fault.hang(30)] * 3)
        model = get_model(srv.model("m"), retry_policy=FAST)
        start = time.monotonic()
        with limits.scope(time.monotonic() + 1.0, None), pytest.raises(BudgetExceeded):
            model.sample(USER, seeds=[1, 2, 3])
        assert time.monotonic() - start < 1.5
