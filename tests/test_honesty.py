"""Honest answers and exit codes (issue #22, items 1, 2 and 4), through the real console script against a real
HTTP server on 127.0.0.1, and the state machine with the scripted model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fake_openai_server import serve
from orchestrator import Reasoner, ScriptedModel
from orchestrator.config import ReasonConfig
from orchestrator.keys import ENV_VARS
from sandbox_support import needs_bwrap

REASON = Path(sys.executable).parent / "reason"
Q = "What is 17 * 23?"
STEPS_ONLY = "Step 1: 17*20 = 340\nStep 2: 17*3 = 51\nStep 3: Now add them."


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS.values()}
    return subprocess.run([str(REASON), *args], capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)


def is_program_call(messages: list[dict]) -> bool:
    return "Python program" in str(messages[-1]["content"])


@pytest.mark.parametrize("strategy", ["chain", "crosscheck", "plain"])
def test_a_budget_stop_never_prints_a_step_label_as_the_answer(strategy):
    with serve(replies=STEPS_ONLY) as srv:
        done = cli("--strategy", strategy, "--budget-calls", "1", "--no-tools", "-m", srv.model("m"), Q)
    assert done.stdout.strip() == "" and "3" not in done.stdout
    assert done.returncode == 1 and "no answer" in done.stderr


def test_a_chain_cut_off_at_the_length_cap_has_no_answer():
    cut = {"content": "Step 1: 17*20 = 340\nStep 2: 17*3 = 51", "finish_reason": "length"}
    with serve(replies=[cut]) as srv:
        done = cli("--strategy", "chain", "--budget-calls", "1", "--no-tools", "-m", srv.model("m"), "--json", Q)
    data = json.loads(done.stdout)
    assert data["answer"] is None and data["exit_code"] == 1 and done.returncode == 1


@needs_bwrap
def test_exit_0_only_for_an_answer_independent_evidence_supports():
    def reply(messages):
        return "```python\nprint(17 * 23)\n```" if is_program_call(messages) else "17*23 = 391. Final answer: 391"

    with serve(replies=reply) as srv:
        done = cli("--strategy", "crosscheck", "--tools", "-m", srv.model("m"), "--json", Q)
    data = json.loads(done.stdout)
    assert (data["answer"], data["verified"], data["strategy"]) == ("391", True, "crosscheck")
    assert data["evidence"] == "a program and a prose solution agree"
    assert done.returncode == 0 == data["exit_code"]


def test_exit_3_for_an_answer_nothing_supports_and_the_final_line_says_unverified():
    with serve(replies="Final answer: 391") as srv:
        done = cli("--strategy", "plain", "-m", srv.model("m"), Q)
    assert done.stdout.strip() == "391" and done.returncode == 3
    assert "unverified: no check supports it" in done.stderr and "passed its check" not in done.stderr


def test_exit_3_when_only_the_models_own_review_passed_the_answer():
    script = ["Step 1: 17*23 = 381.\nFinal answer: 381", "Reward: 0.9", "Verdict: CORRECT"]
    with serve(replies=script) as srv:
        done = cli("--strategy", "chain", "--no-tools", "--verify-by", "judge", "-m", srv.model("m"), "--json", Q)
    data = json.loads(done.stdout)
    assert data["answer"] == "381" and data["verified"] is None and "own review" in data["evidence"]
    assert done.returncode == 3


def test_exit_4_for_a_budget_stop_with_a_best_so_far_answer():
    with serve(replies="Final answer: 390") as srv:  # never agrees with a second sample: the budget ends it
        done = cli("--strategy", "crosscheck", "--no-tools", "--budget-calls", "1", "-m", srv.model("m"), "--json",
                   Q)
    data = json.loads(done.stdout)
    assert data["answer"] == "390" and data["stop_reason"] == "budget_calls" and data["verified"] is None
    assert done.returncode == 4 == data["exit_code"]


def test_the_help_documents_the_exit_codes():
    done = cli("ask", "--help")
    assert "3 answered, but a" in done.stdout and "4 stopped on the budget" in done.stdout


def test_no_lesson_is_asked_after_the_last_attempt():
    script = ["Final answer: 8", "Reward: 0.9", "Verdict: INCORRECT"]  # one attempt, refuted
    model = ScriptedModel(script)
    result = Reasoner(model, "chain", config=ReasonConfig(max_attempts=1, verify_by="judge"), tools=False).solve(Q)
    assert [s.kind for s in result.steps] == ["think", "reflect", "verify", "answer"]
    assert len(model.calls) == 3 and result.verified is False


def test_a_lesson_is_still_written_when_another_attempt_follows():
    script = ["Final answer: 8", "Reward: 0.9", "Verdict: INCORRECT", "Lesson: read again.",
              "Final answer: 9", "Reward: 0.9", "Verdict: CORRECT"]
    result = Reasoner(ScriptedModel(script), "chain", config=ReasonConfig(max_attempts=2, verify_by="judge"),
                      tools=False).solve(Q)
    assert [s.kind for s in result.steps].count("lesson") == 1 and result.answer == "9"


@pytest.mark.parametrize("strategy", ["vote", "best-of-n"])
def test_a_sampled_answer_states_how_many_samples_agree(strategy):
    answers = [f"Step 1: add.\nFinal answer: {v}" for v in (9, 8, 9, 9)]
    options = {"samples": 4, **({"rule": "none"} if strategy == "vote" else {"scorer": "reward"})}
    model = ScriptedModel(answers if strategy == "vote" else [a for v in answers for a in (v, "Reward: 0.9")])
    result = Reasoner(model, strategy, concurrency=1, strategy_options=options,
                      config=ReasonConfig(verify=False)).solve("What is 3 + 6?")
    assert result.answer == "9" and result.evidence == "3 of 4 samples agree" and result.verified is None
