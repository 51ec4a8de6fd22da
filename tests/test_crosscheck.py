"""The default strategy, `crosscheck`, driven with the scripted model and the real bubblewrap sandbox."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable

import pytest

from orchestrator import reasoner as reasoner_module
from orchestrator.errors import ConfigError
from orchestrator.ledger import Budget
from orchestrator.models.fake import ScriptedModel
from orchestrator.reasoner import Reasoner

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
QUESTION = "What is 17 * 23?"


def is_program_call(messages: list[dict]) -> bool:
    return "Python program" in str(messages[-1]["content"]) or "corrected program" in str(messages[-1]["content"])


def router(prose: Callable[[int], str], program: Callable[[int], str]) -> Callable[[list[dict]], str]:
    """A script that answers prose calls and program calls from their own lists, in order."""
    counts = {"prose": 0, "program": 0}

    def reply(messages: list[dict]) -> str:
        which = "program" if is_program_call(messages) else "prose"
        counts[which] += 1
        return (program if which == "program" else prose)(counts[which] - 1)

    return reply


def code(expression: str) -> str:
    return f"```python\nresult = {expression}\nprint(result)\n```"


def solve(model: ScriptedModel, tools: bool = True, budget: Budget | None = None, **options) -> object:
    r = Reasoner(model, budget=budget, tools=tools, strategy_options=options, save_trajectory=True)
    return r.solve(QUESTION)


@needs_bwrap
def test_a_prose_answer_and_a_program_that_agree_end_after_two_calls_verified():
    model = ScriptedModel(router(lambda i: "17 * 23 = 391. Final answer: 391", lambda i: code("17 * 23")))
    result = solve(model)
    assert (result.strategy, result.answer, result.verified) == ("crosscheck", "391", True)
    assert result.usage.calls == 2 and result.samples_used == 2 and result.stop_reason == "consensus"
    assert result.evidence == "a program and a prose solution agree"
    sources = sorted(s["source"] for s in result.details["samples"])
    assert sources == ["program", "prose"]
    program_step = next(s for s in result.steps if s.kind == "program")
    assert program_step.code and "391" in (program_step.observation or "")


@needs_bwrap
def test_disagreement_draws_another_round_and_the_majority_with_both_sources_wins():
    prose = ["Final answer: 390", "Final answer: 391"]
    model = ScriptedModel(router(lambda i: prose[min(i, 1)], lambda i: code("17 * 23")))
    result = solve(model)
    assert result.answer == "391" and result.verified is True
    assert result.samples_used == 4 and result.usage.calls == 4
    assert result.details["votes"] == {"390": 1, "391": 3}
    assert result.evidence == "3 of 4 answers (2 programs, 1 prose)"


@needs_bwrap
def test_two_programs_against_scattered_prose_stop_but_stay_unverified():
    prose = ["Final answer: 390", "Final answer: 392"]
    model = ScriptedModel(router(lambda i: prose[min(i, 1)], lambda i: code("17 * 23")))
    result = solve(model)
    assert result.answer == "391" and result.samples_used == 4
    assert result.verified is None and result.evidence == "2 of 4 answers (2 programs)"


@needs_bwrap
def test_a_persistent_split_runs_every_round_and_is_reported_unverified():
    model = ScriptedModel(router(lambda i: "Final answer: 390", lambda i: code("17 * 23")))
    result = solve(model, rounds=3)
    assert result.samples_used == 6 and result.stop_reason == "limit"
    assert result.answer == "390"  # a 3-3 tie with no answer backed by both kinds goes to the earliest
    assert result.verified is None and result.evidence == "3 of 6 answers (3 prose)"


@needs_bwrap
def test_a_failing_program_is_shown_its_error_once_and_may_correct_itself():
    programs = ["```python\nprint(undefined_name)\n```", code("17 * 23")]
    model = ScriptedModel(router(lambda i: "Final answer: 391", lambda i: programs[min(i, 1)]))
    result = solve(model)
    assert result.answer == "391" and result.verified is True and result.usage.calls == 3
    repair = next(m for m in model.calls if "corrected program" in str(m[-1]["content"]))
    assert "NameError" in str(repair[-1]["content"])


@needs_bwrap
def test_a_program_that_prints_nothing_gives_no_vote_not_a_number_from_its_code():
    silent = "```python\nx = 17 * 23\n```"
    model = ScriptedModel(router(lambda i: "Final answer: 391", lambda i: silent))
    result = solve(model, rounds=1)
    program = [s for s in result.details["samples"] if s["source"] == "program"]
    assert program == [{"sample": 1, "source": "program", "answer": None, "label": None, "stop_reason": "no_answer"}]
    assert result.answer == "391" and result.verified is None  # one prose answer alone verifies nothing


def test_without_tools_every_sample_is_prose_and_two_that_agree_are_not_enough_to_verify():
    model = ScriptedModel(lambda m: "Final answer: 391")
    result = solve(model, tools=False)
    assert all(s["source"] == "prose" for s in result.details["samples"])
    assert result.samples_used == 2 and result.answer == "391"
    assert result.verified is None and result.evidence == "2 of 2 answers (2 prose)"
    assert not any(is_program_call(m) for m in model.calls)


def test_without_tools_two_of_three_stop_unverified():
    model = ScriptedModel(["Final answer: 390", "Final answer: 391", "Final answer: 391"])
    result = solve(model, tools=False)
    assert result.answer == "391" and result.samples_used == 3
    assert result.verified is None and result.evidence == "2 of 3 answers (2 prose)"


def test_without_tools_three_agreeing_samples_of_four_verify():
    answers = ["Final answer: 391", "Final answer: 390", "Final answer: 391", "Final answer: 391"]
    model = ScriptedModel(answers)
    result = solve(model, tools=False, margin=2)
    assert result.answer == "391" and result.samples_used == 4
    assert result.verified is True and result.evidence == "3 of 4 answers (3 prose)"


def test_a_missing_bubblewrap_says_once_how_to_install_it_and_carries_on_without_code(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(reasoner_module, "_SANDBOX_PROBES", {})
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap here
    with caplog.at_level(logging.WARNING, logger="reason"):
        first = Reasoner(ScriptedModel(lambda m: "Final answer: 391"))
        second = Reasoner(ScriptedModel(lambda m: "Final answer: 391"))
        assert reasoner_module._SANDBOX_PROBES == {}  # making a Reasoner probes nothing
        result = first.solve(QUESTION)
        second.solve(QUESTION)
    assert first.tools is False and second.tools is False
    notices = [r.getMessage() for r in caplog.records if "sandbox is unavailable" in r.getMessage()]
    assert len(notices) == 1 and "apt-get install bubblewrap" in notices[0]
    assert result.answer == "391" and result.details["programs"] is False
    header = json.loads(open(result.trajectory_path + "/sample-000.jsonl").readline())
    assert header["config"]["tools"] is False  # the trajectory records what the probe settled


@needs_bwrap
def test_tools_are_on_by_default_where_bubblewrap_works(monkeypatch):
    monkeypatch.setattr(reasoner_module, "_SANDBOX_PROBES", {})
    assert Reasoner(ScriptedModel(["x"])).tools is True
    assert Reasoner(ScriptedModel(["x"]), tools=False).tools is False


@needs_bwrap
@pytest.mark.parametrize("limit", [1, 3, 5])
def test_the_call_budget_is_never_overrun(limit):
    model = ScriptedModel(router(lambda i: f"Final answer: {390 + i}", lambda i: code(f"{i} + 1")))
    result = solve(model, budget=Budget(max_calls=limit))
    assert result.usage.calls <= limit
    assert result.stop_reason == "budget_calls" and result.verified is None


@needs_bwrap
def test_the_token_budget_is_overrun_by_at_most_one_call():
    long = "Let me think. " * 60 + "Final answer: {}"
    model = ScriptedModel(router(lambda i: long.format(390 + i), lambda i: code(f"{i} + 1")))
    budget = Budget(max_tokens=700)
    result = solve(model, budget=budget)
    biggest = max(c.prompt_tokens + c.completion_tokens for s in result.steps for c in s.calls)
    assert result.usage.total_tokens <= 700 + biggest and result.usage.calls >= 2
    assert result.stop_reason.startswith("budget_")


def test_a_misspelled_option_is_an_error_naming_the_valid_ones():
    with pytest.raises(ConfigError, match="rounds, temperature, margin, programs"):
        solve(ScriptedModel(["x"]), tools=False, roudns=2)
    with pytest.raises(ConfigError, match="rounds"):
        solve(ScriptedModel(["x"]), tools=False, rounds="lots")


@needs_bwrap
def test_every_sample_trajectory_is_on_disk_with_its_source(tmp_path):
    model = ScriptedModel(router(lambda i: "Final answer: 391", lambda i: code("17 * 23")))
    r = Reasoner(model, tools=True, runs_dir=tmp_path)
    result = r.solve(QUESTION)
    files = sorted((tmp_path).glob("*/sample-*.jsonl"))
    assert len(files) == 2
    headers = [json.loads(f.read_text().splitlines()[0]) for f in files]
    assert sorted(h["sampler"] for h in headers) == ["plain", "program"]
    assert all(json.loads(f.read_text().splitlines()[-1])["type"] == "end" for f in files)
    assert result.trajectory_path == str(files[0].parent)
