"""Step kinds and stop reasons are `StrEnum`s: what reaches the disk and `--json` is the plain strings it was."""

from __future__ import annotations

import json

import pytest

from orchestrator import Budget, ReasonConfig, Reasoner, ScriptedModel
from orchestrator.kinds import StepKind, StopReason, budget_stop, is_budget
from orchestrator.trajectory import load_trajectory

Q = "What is 17 * 23?"
REPLIES = ["<thinking>17 * 23 = 391</thinking>\nFinal answer: 391", "Reward: 0.9. The product is right.",
           "391 / 23 = 17.\nVerdict: CORRECT", "Final answer: 391"]


def test_members_serialize_as_their_plain_strings():
    assert json.dumps(StopReason.BUDGET_USD) == '"budget_usd"'
    assert json.dumps({StepKind.FORMAT_ERROR: [StopReason.ANSWERED]}) == '{"format_error": ["answered"]}'
    assert f"{StopReason.CONTEXT_LENGTH} {StepKind.THINK}" == "context_length think"
    assert StopReason("interrupted") is StopReason.INTERRUPTED and {"error": 1}[StopReason.ERROR] == 1


def test_budget_stops_are_the_four_resources_and_strings_from_disk_count():
    assert {budget_stop(r) for r in ("tokens", "usd", "seconds", "calls")} == {
        r for r in StopReason if r.startswith("budget_")}
    assert is_budget("budget_seconds") and is_budget(StopReason.BUDGET_CALLS)
    assert not any(is_budget(r) for r in (None, "budget", "step_limit", StopReason.LIMIT))
    with pytest.raises(ValueError):
        budget_stop("minutes")


def test_a_trajectory_and_the_json_result_hold_the_same_strings(tmp_path):
    result = Reasoner(ScriptedModel(REPLIES), "chain", runs_dir=tmp_path, tools=False,
                      config=ReasonConfig(plan=False)).solve(Q)
    assert result.stop_reason is StopReason.ANSWERED
    lines = next(tmp_path.iterdir()).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    kinds = [r["kind"] for r in records if r["type"] == "step"]
    assert kinds[0] == "think" and type(kinds[0]) is str and set(kinds) <= {k.value for k in StepKind}
    assert records[-1]["stop_reason"] == "answered" and '"stop_reason": "answered"' in lines[-1]
    out = json.loads(json.dumps(result.to_dict()))
    assert (out["stop_reason"], [s["kind"] for s in out["steps"]]) == ("answered", kinds)
    # read back, each step is typed again, and written again it is the same line, byte for byte
    _, steps, end = load_trajectory(next(tmp_path.iterdir()))
    assert [type(s.kind) for s in steps] == [StepKind] * len(kinds) and end and end["stop_reason"] == "answered"
    again = [json.dumps({"type": "step", **s.to_dict()}, ensure_ascii=False, default=str) for s in steps]
    assert again == [line for line, r in zip(lines, records, strict=True) if r["type"] == "step"]


def test_a_budget_stop_reads_budget_calls_on_disk(tmp_path):
    result = Reasoner(ScriptedModel(["<thinking>17 * 23 is about 400</thinking>"] * 5), "chain",
                      budget=Budget(max_calls=2), runs_dir=tmp_path, tools=False,
                      config=ReasonConfig(plan=False)).solve(Q)
    assert result.stop_reason is StopReason.BUDGET_CALLS and is_budget(result.stop_reason)
    end = json.loads(next(tmp_path.iterdir()).read_text(encoding="utf-8").splitlines()[-1])
    assert end["stop_reason"] == "budget_calls"


def test_a_step_kind_this_version_does_not_know_still_loads():
    from orchestrator.trajectory import Step

    step = Step.from_dict({"kind": "observe", "text": "from an older or newer writer"})
    assert step.kind == "observe" and Step.from_dict({"kind": "think", "text": ""}).kind is StepKind.THINK
