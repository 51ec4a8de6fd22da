"""The interpreter in the loop: the real local sandbox driven by the real state machine (scripted model)."""

from __future__ import annotations

import json

import pytest

from orchestrator import Reasoner, ReasonConfig, ReplayModel, ScriptedModel, load_trajectory
from sandbox_support import needs_bwrap

pytestmark = needs_bwrap

Q = "What is the 30th Fibonacci number (F1 = F2 = 1)?"
CODE = "Step 1: compute it.\n```python\na, b = 1, 1\nfor _ in range(28):\n    a, b = b, a + b\nprint(b)\n```\n"


def test_code_runs_mid_thought_and_its_output_is_fed_back():
    script = [CODE + "So the answer is 999 (imagined output that must be dropped).",
              "Step 2: the output is 832040.\nFinal answer: 832040", "Correct.\nReward: 0.9",
              "```python\nx, y = 1, 1\nfor _ in range(28):\n    x, y = y, x + y\nprint(y)\n```"]
    model = ScriptedModel(script)
    result = Reasoner(model, "chain", config=ReasonConfig(tools=True)).solve(Q)
    assert [s.kind for s in result.steps] == ["think", "act", "think", "reflect", "verify", "answer"]
    act = result.steps[1]
    assert act.code and "832040" in act.observation and act.error is None
    assert "imagined output" not in result.steps[0].text  # the reply is cut after the code block
    assert "832040" in model.calls[1][-1]["content"]  # the observation is the next user turn
    assert result.answer == "832040"
    assert result.steps[4].verdict is True and "832040 matches" in result.steps[4].observation
    assert result.usage.tool_calls == 2 and result.usage.tool_seconds > 0  # sandbox time is in the ledger
    _, steps, _ = load_trajectory(result.trajectory_path)
    assert steps[1].observation == act.observation


def test_state_persists_between_code_steps_and_errors_trigger_reflection():
    script = ["```python\nx = 41\n```", "```python\nprint(x + 1)\nprint(undefined_name)\n```",
              "The code failed on a typo.\nReward: 0.7", "Final answer: 42", "Reward: 0.9",
              "```python\nprint(41 + 1)\n```"]
    model = ScriptedModel(script)
    result = Reasoner(model, "chain", config=ReasonConfig(tools=True)).solve("What is 41 + 1?")
    kinds = [s.kind for s in result.steps]
    assert kinds[:5] == ["think", "act", "think", "act", "reflect"]
    second = result.steps[3]
    assert "42" in second.observation and "NameError" in (second.error or "")
    assert result.answer == "42"


def test_without_tools_code_is_just_text():
    script = [CODE + "\nFinal answer: 832040", "Reward: 0.9", "Verdict: CORRECT"]
    result = Reasoner(ScriptedModel(script), "chain", config=ReasonConfig(tools=False)).solve(Q)
    assert "act" not in [s.kind for s in result.steps]


PUZZLE = "Tom has 3 boxes of 12 eggs and breaks 5. How many eggs are left?"


def test_verification_solves_again_as_a_program_that_never_sees_the_chain():
    script = ["Step 1: 3 * 12 = 36; 36 - 5 = 30.\nFinal answer: 30", "Looks right.\nReward: 0.9",
              "```python\neggs = 3 * 12\nleft = eggs - 5\nprint(left)\n```",
              "Lesson: recompute the subtraction.", "Step 1: 36 - 5 = 31.\nFinal answer: 31", "Reward: 0.9",
              "```python\nprint(3 * 12 - 5)\n```"]
    model = ScriptedModel(script)
    result = Reasoner(model, "chain", config=ReasonConfig(tools=True)).solve(PUZZLE)
    assert [s.kind for s in result.steps] == ["think", "reflect", "verify", "lesson", "think", "reflect", "verify",
                                              "answer"]
    first, second = result.steps[2], result.steps[6]
    assert first.verdict is False and second.verdict is True and result.answer == "31"
    check_prompt = json.dumps(model.calls[2])
    assert "36 - 5 = 30" not in check_prompt and "Tom has 3 boxes" in check_prompt  # the bare question only
    assert "31 does not match the answer 30" in model.calls[3][-1]["content"]  # the lesson names the clash
    assert "recompute the subtraction." in model.calls[4][1]["content"]


def test_a_check_program_that_keeps_failing_leaves_the_answer_unverified_not_refuted():
    script = ["Final answer: 31", "Reward: 0.9", "```python\nprint(eggs)\n```", "I cannot write code today."]
    result = Reasoner(ScriptedModel(script), "chain", config=ReasonConfig(tools=True)).solve(PUZZLE)
    assert [s.kind for s in result.steps] == ["think", "reflect", "format_error", "verify", "answer"]
    assert "NameError" in result.steps[2].error and result.steps[3].verdict is None
    assert (result.answer, result.stop_reason) == ("31", "answered")


# --- native tool calling, over real HTTP (OpenAI and Anthropic wire formats) ----------------------------
FIB = "x, y = 1, 1\nfor _ in range(28):\n    x, y = y, x + y\nprint(y)"
NATIVE_SCRIPT = [
    {"content": "Step 1: compute it.",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "python", "arguments": json.dumps({"code": FIB})}}]},
    "Step 2: the tool printed 832040.\nFinal answer: 832040",
    "Correct.\nReward: 0.9",
    f"```python\n{FIB}\n```",
]


def _native_model(provider, srv):
    from orchestrator.models import get_model
    from orchestrator.models.retry import RetryPolicy

    fast = RetryPolicy(base_wait=0.01, max_wait=0.05)
    if provider == "openai":
        return get_model(srv.model("gpt-4o-mini"), retry_policy=fast)
    return get_model("anthropic/claude-haiku-4-5", api_key="sk-ant-api03-TESTKEY0123456789abcdef",
                     base_url=srv.url, retry_policy=fast)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_native_tool_call_runs_in_the_sandbox_and_its_result_goes_back_as_a_tool_message(provider):
    from fake_openai_server import serve

    with serve(replies=NATIVE_SCRIPT) as srv:
        model = _native_model(provider, srv)
        assert model.supports_tools
        result = Reasoner(model, "chain", config=ReasonConfig(tools=True)).solve(Q)
        bodies = [r.body for r in srv.posts()]
    assert [s.kind for s in result.steps] == ["think", "act", "think", "reflect", "verify", "answer"]
    assert result.steps[0].tool_call_id == "call_1" and result.steps[0].code == FIB
    assert "832040" in result.steps[1].observation and result.answer == "832040"
    names = [t.get("name") or t.get("function", {}).get("name") for t in bodies[0]["tools"]]
    assert names == ["python"]  # offered to think calls...
    assert "tools" not in bodies[2]  # ...and not to the reviews
    second = json.dumps(bodies[1]["messages"])
    if provider == "openai":
        tool_turn = next(m for m in bodies[1]["messages"] if m["role"] == "tool")
        assert tool_turn["tool_call_id"] == "call_1" and "832040" in tool_turn["content"]
        assistant = next(m for m in bodies[1]["messages"] if m["role"] == "assistant")
        assert assistant["tool_calls"][0]["id"] == "call_1"
    else:
        blocks = [b for m in bodies[1]["messages"] for b in m["content"] if isinstance(b, dict)]
        assert any(b["type"] == "tool_use" and b["id"] == "call_1" for b in blocks)
        assert any(b["type"] == "tool_result" and b["tool_use_id"] == "call_1" and "832040" in json.dumps(b)
                   for b in blocks)
    assert "Output of your Python code" not in second  # the output is sent once, as the tool result
    # The trajectory replays offline, tool calls included.
    replayed = Reasoner(ReplayModel(result.trajectory_path), "chain", config=ReasonConfig(tools=True)).solve(Q)
    assert [s.kind for s in replayed.steps] == [s.kind for s in result.steps] and replayed.answer == "832040"


def test_native_call_with_unreadable_arguments_is_a_format_error_fed_back():
    bad = {"content": "", "tool_calls": [{"id": "c1", "type": "function",
                                          "function": {"name": "python", "arguments": "{not json"}}]}
    script = [bad, "Final answer: 832040", "Reward: 0.9", f"```python\n{FIB}\n```"]
    model = ScriptedModel(script, supports_tools=True)
    result = Reasoner(model, "chain", config=ReasonConfig(tools=True)).solve(Q)
    assert [s.kind for s in result.steps][:2] == ["format_error", "think"]
    assert "not valid JSON" in model.calls[1][-1]["content"] and result.answer == "832040"


def test_native_tools_off_falls_back_to_fenced_code():
    script = [CODE, "Final answer: 832040", "Reward: 0.9", f"```python\n{FIB}\n```"]
    model = ScriptedModel(script, supports_tools=True)
    result = Reasoner(model, "chain", config=ReasonConfig(tools=True, native_tools=False)).solve(Q)
    assert [s.kind for s in result.steps][:2] == ["think", "act"] and result.steps[0].tool_call_id is None
    assert "```python" in model.calls[0][0]["content"]  # the system prompt teaches the fence protocol


def test_a_tie_between_a_refuted_answer_and_the_programs_result_goes_to_the_program():
    # The model adds 1 + 3 + 0.5 + 1.5 + 2 to 8.5 twice; the independent program prints 8.0 twice.
    program = "```python\nprint(1 + 3 * 1 + 0.5 + 3 / 2 + 2)\n```"
    script = ["Final answer: 8.5", "Reward: 1.0", program, "Lesson: add again.",
              "Final answer: 8.5", "Reward: 1.0", program, "Lesson: add again."]
    result = Reasoner(ScriptedModel(script), "chain", config=ReasonConfig(tools=True)).solve("How many hours in all?")
    assert [s.verdict for s in result.steps if s.kind == "verify"] == [False, False]
    assert result.answer == "8.0" and result.normalized == "8"
