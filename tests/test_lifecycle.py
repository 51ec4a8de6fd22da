"""One lifecycle for every driver of a chain: each way a model call fails ends its trajectory the same way."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sandbox_support import needs_bwrap

from orchestrator import ReasonConfig, Reasoner, ScriptedModel
from orchestrator.errors import Cancelled, ConfigError, ContextLengthExceeded, Interrupted, SolveFailed

Q = "What is 17 * 23?"
DRIVERS = ["chain", "plain", "beam", "crosscheck"]  # run_machine, answer_once, the beam's tree, crosscheck's samples


def ends(path: str | Path) -> list[dict]:
    """The end records of a run's trajectory files (one file, or a folder of them)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.glob("*.jsonl"))
    return [json.loads(f.read_text(encoding="utf-8").splitlines()[-1]) for f in files]


@pytest.mark.parametrize("strategy", DRIVERS)
def test_a_failing_provider_ends_every_driver_with_the_same_error_record(tmp_path, strategy):
    def boom(messages):
        raise ConnectionError("server went away")

    reasoner = Reasoner(ScriptedModel(boom), strategy, runs_dir=tmp_path, concurrency=1, tools=False,
                        config=ReasonConfig(plan=False))
    with pytest.raises(ConnectionError):
        reasoner.solve(Q)
    (run,) = tmp_path.iterdir()
    found = ends(run)
    assert found and all(e["type"] == "end" for e in found)
    assert {(e["stop_reason"], e["error"]) for e in found} == {("error", "ConnectionError: server went away")}


@pytest.mark.parametrize("strategy", DRIVERS)
def test_a_cancel_ends_every_driver_interrupted_without_an_error(tmp_path, strategy):
    cancel = threading.Event()
    cancel.set()
    reasoner = Reasoner(ScriptedModel(["Final answer: 391"]), strategy, runs_dir=tmp_path, tools=False)
    with pytest.raises(Cancelled) as caught:
        reasoner.solve(Q, cancel=cancel)
    found = ends(caught.value.trajectory_path)
    assert found and {(e["stop_reason"], e["error"]) for e in found} == {("interrupted", None)}


@pytest.mark.parametrize("strategy", DRIVERS)
def test_a_first_call_that_does_not_fit_is_raised_by_every_driver(tmp_path, strategy):
    def refuse(messages):
        raise ContextLengthExceeded("the prompt does not fit")

    reasoner = Reasoner(ScriptedModel(refuse), strategy, runs_dir=tmp_path, concurrency=1, tools=False)
    with pytest.raises(ContextLengthExceeded):
        reasoner.solve(Q)
    (run,) = tmp_path.iterdir()
    assert {e["stop_reason"] for e in ends(run)} == {"error"}


@needs_bwrap
def test_a_program_that_outgrows_the_window_stops_like_a_chain_and_the_solve_goes_on(tmp_path):
    # the first program fails; its correction no longer fits the context window: that sample stops
    # `context_length` (as a chain would), and the prose answer still stands
    def reply(messages):
        asked = str(messages[-1]["content"])
        if "corrected program" in asked:
            raise ContextLengthExceeded("the corrected program's prompt does not fit")
        if "Python program" in asked:
            return "```python\nprint(1 / 0)\n```"
        return "17 * 23 = 391. Final answer: 391"

    reasoner = Reasoner(ScriptedModel(reply), "crosscheck", runs_dir=tmp_path, tools=True,
                        strategy_options={"rounds": 1})
    result = reasoner.solve(Q)
    assert result.answer == "391"
    program = next(s for s in result.details["samples"] if s["source"] == "program")
    assert program["stop_reason"] == "context_length"
    stopped = [e for e in ends(result.trajectory_path) if e["stop_reason"] == "context_length"]
    assert len(stopped) == 1 and "does not fit" in stopped[0]["error"]


def test_attempt_raises_a_typed_failure_with_what_the_solve_spent_and_solve_raises_the_error(tmp_path):
    def gone(messages):
        raise ConnectionError("server went away")

    reasoner = Reasoner(ScriptedModel(["Step 1: 17 * 23.", gone]), "chain", runs_dir=tmp_path,
                        config=ReasonConfig(reflect=False, plan=False))
    with pytest.raises(SolveFailed) as caught:
        reasoner.attempt(Q)
    failed = caught.value
    assert isinstance(failed.error, ConnectionError) and failed.__cause__ is failed.error
    assert str(failed) == "ConnectionError: server went away"
    assert failed.usage.calls == 1 and Path(failed.trajectory_path).is_file()
    assert ends(failed.trajectory_path)[0]["stop_reason"] == "error"
    again = Reasoner(ScriptedModel(["Step 1: 17 * 23.", gone]), "chain", runs_dir=tmp_path,
                     config=ReasonConfig(reflect=False, plan=False))
    with pytest.raises(ConnectionError) as raised:
        again.solve(Q)
    assert not hasattr(raised.value, "usage") and not hasattr(raised.value, "trajectory_path")


def test_attempt_reports_a_refused_question_as_a_failure_that_spent_nothing():
    with pytest.raises(SolveFailed) as caught:
        Reasoner(ScriptedModel(["x"]), "plain").attempt("   ")
    assert isinstance(caught.value.error, ConfigError) and caught.value.usage.calls == 0
    assert caught.value.trajectory_path is None


def test_an_interrupted_solve_carries_its_result_usage_and_path_as_typed_fields(tmp_path):
    cancel = threading.Event()
    model = ScriptedModel(["Step 1: thinking."], repeat_last=True)
    reasoner = Reasoner(model, "chain", runs_dir=tmp_path)
    with pytest.raises(Interrupted) as caught:
        reasoner.solve(Q, on_event=lambda kind, payload: cancel.set() if kind == "step" else None, cancel=cancel)
    stopped = caught.value
    assert stopped.usage is stopped.result.usage and stopped.usage.calls == 1
    assert stopped.trajectory_path == stopped.result.trajectory_path and Path(stopped.trajectory_path).is_file()


def test_samples_drawn_together_end_as_one_chain_would_when_their_request_fails(tmp_path, monkeypatch):
    # vLLM takes `n`: a vote's plain samples are one request; it keeps coming back malformed, so every
    # sample's own trajectory ends `error` naming the failure, as a single chain's would
    from fake_openai_server import serve

    from orchestrator.errors import MalformedResponse
    from orchestrator.models import get_model, openai_compat
    from orchestrator.models.retry import RetryPolicy
    from orchestrator.models.servers import url_variable

    monkeypatch.setattr(openai_compat, "_NO_N", set())
    with serve(replies=["The answer is 9."], faults=["garbage"] * 20) as srv:
        monkeypatch.setenv(url_variable("vllm"), srv.base_url)
        model = get_model("vllm/Qwen/Qwen2.5-7B-Instruct", retry_policy=RetryPolicy(attempts=2, base_wait=0.01))
        reasoner = Reasoner(model, "vote", runs_dir=tmp_path, tools=False,
                            strategy_options={"sampler": "plain", "samples": 3, "rule": "none"})
        with pytest.raises(MalformedResponse):
            reasoner.solve(Q)
        assert srv.posts("/v1/chat/completions")[0].body["n"] == 3
    (run,) = tmp_path.iterdir()
    found = ends(run)
    assert len(found) == 3 and {e["stop_reason"] for e in found} == {"error"}
    assert all(e["error"].startswith("MalformedResponse: ") for e in found)
