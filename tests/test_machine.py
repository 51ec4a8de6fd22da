"""The reasoning state machine driven by the scripted model: every transition, stop reason and the file."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import pytest

from orchestrator import Budget, ReasonConfig, Reasoner, ReplayModel, ScriptedModel, load_trajectory
from orchestrator.errors import ContextLengthExceeded
from orchestrator.machine import State, next_state
from orchestrator.trajectory import Step

Q = "A farmer has 17 sheep; all but 9 run away. How many are left?"
PLAN = "Facts: 17 sheep; all but 9 run away. Asked: sheep left."


def solve(script, config=None, budget=None, **kw):
    model = ScriptedModel(script)
    result = Reasoner(model, "chain", config=config or ReasonConfig(plan=True), budget=budget, **kw).solve(Q)
    return result, model


def kinds(result):
    return [s.kind for s in result.steps]


def test_happy_path_plan_think_reflect_verify_answer():
    result, model = solve([PLAN, "Step 1: 9 stay.\nFinal answer: 9", "Correct.\nReward: 0.9",
                           "9 did not run. Verdict: CORRECT"])
    assert kinds(result) == ["plan", "think", "reflect", "verify", "answer"]
    assert (result.answer, result.stop_reason) == ("9", "answered")
    assert result.usage.calls == len(model.calls) == 4


def test_low_mid_chain_reward_backtracks_and_keeps_abandoned_branch():
    script = [PLAN, "Step 1: 17 - 9 = 8.", "Step 2: so 8 are left over.", "Step 3: double check 8.",
              "Wrong: 'all but 9' means 9 remain.\nReward: 0.2",
              "Step 1: all but 9 means 9 stay.\nFinal answer: 9", "Right.\nReward: 0.95", "Verdict: CORRECT"]
    result, model = solve(script)
    assert kinds(result) == ["plan", "think", "think", "think", "reflect", "backtrack", "think", "reflect",
                             "verify", "answer"]
    abandoned = [s.kind for s in result.steps if s.abandoned]
    assert abandoned == ["think", "think", "think", "reflect"]
    # The prompt after the backtrack holds the plan but none of the abandoned steps.
    after = model.calls[5]
    text = json.dumps(after)
    assert "17 - 9 = 8" not in text and PLAN in text and "different approach" in text
    _, steps, end = load_trajectory(result.trajectory_path)
    assert [s.abandoned for s in steps] == [s.abandoned for s in result.steps]
    assert end["answer"] == "9"


def test_mid_reward_adjusts_with_the_critique_as_advice():
    script = [PLAN, "Step 1: 8 remain.\nFinal answer: 8", "Check the phrase 'all but'.\nReward: 0.6",
              "Step 2: all but 9 means 9.\nFinal answer: 9", "Good.\nReward: 0.9", "Verdict: CORRECT"]
    result, model = solve(script)
    assert kinds(result) == ["plan", "think", "reflect", "think", "reflect", "verify", "answer"]
    assert "Check the phrase 'all but'" in model.calls[3][-1]["content"]
    assert result.answer == "9"


def test_failed_verification_writes_a_lesson_that_reaches_the_next_attempt():
    script = [PLAN, "Final answer: 8", "Looks fine.\nReward: 0.9", "8 + 9 = 17 but 9 stay. Verdict: INCORRECT",
              "Lesson: 'all but N' means N remain; do not subtract.",
              PLAN, "Final answer: 9", "Reward: 0.9", "Verdict: CORRECT"]
    result, model = solve(script)
    assert kinds(result) == ["plan", "think", "reflect", "verify", "lesson", "plan", "think", "reflect", "verify",
                             "answer"]
    assert [s.attempt for s in result.steps][:6] == [0, 0, 0, 0, 0, 1]
    second_attempt_question = model.calls[5][1]["content"]
    assert "'all but N' means N remain" in second_attempt_question
    # the model's own review passing the answer is not an independent check: reported unverified
    assert result.answer == "9" and result.verified is None and "own review" in result.evidence


def test_an_answer_that_failed_its_check_says_so_when_attempts_run_out():
    script = [PLAN, "Final answer: 8", "Reward: 0.9", "Verdict: INCORRECT", "Lesson: reread."]
    result, _ = solve(script, ReasonConfig(plan=True, max_attempts=1))
    assert (result.answer, result.verified) == ("8", False)


def test_low_final_reward_fails_the_attempt_and_best_answer_is_kept_when_attempts_run_out():
    script = [PLAN, "Final answer: 8", "Doubtful.\nReward: 0.3", "Lesson: reread the question.",
              PLAN, "Final answer: 8", "Still doubtful.\nReward: 0.4", "Lesson: think again."]
    result, _ = solve(script, ReasonConfig(plan=True, max_attempts=2))
    assert kinds(result)[-1] == "answer"
    assert result.answer == "8" and result.stop_reason == "answered"


def test_budget_stop_mid_chain_returns_best_so_far():
    script = [PLAN, "Final answer: 9", "Hmm.\nReward: 0.6"] + ["Step: still thinking about it."] * 50
    model = ScriptedModel(script)
    result = Reasoner(model, "chain", config=ReasonConfig(plan=True), budget=Budget(max_calls=6)).solve(Q)
    assert result.stop_reason == "budget_calls"
    assert result.usage.calls == 6 and len(model.calls) == 6
    assert result.answer == "9"  # the answer proposed before the budget ran out
    _, _, end = load_trajectory(result.trajectory_path)
    assert end["stop_reason"] == "budget_calls" and end["answer"] == "9"


def test_token_budget_is_never_overrun_by_more_than_one_call():
    model = ScriptedModel(["word " * 50], repeat_last=True)
    result = Reasoner(model, "chain", budget=Budget(max_tokens=1000)).solve(Q)
    assert result.stop_reason == "budget_tokens"
    per_call = max(s.tokens for s in result.steps if s.calls)
    assert result.usage.total_tokens <= 1000 + per_call


def test_a_call_is_priced_like_the_calls_of_its_phase():
    from orchestrator.errors import BudgetExceeded
    from orchestrator.ledger import Ledger
    from orchestrator.models.base import Completion, Usage

    ledger, budget = Ledger(), Budget(max_tokens=2100)
    for phase, tokens in (("think", 100), ("reflect", 900), ("reflect", 900)):
        ledger.record(Completion("x", "m", usage=Usage(prompt_tokens=tokens)), phase)
    assert budget.next_call(ledger, "think")["tokens"] == 100  # its own phase
    assert budget.next_call(ledger)["tokens"] == pytest.approx(1900 / 3)  # no phase: every call
    assert budget.next_call(ledger, "judge")["tokens"] == pytest.approx(1900 / 3)  # a phase not seen yet
    with ledger.reserve(budget, phase="think"):  # 1900 + 100 fits in 2100
        pass
    for phase in ("reflect", None):
        with pytest.raises(BudgetExceeded), ledger.reserve(budget, phase=phase):
            pass


def test_usd_budget_uses_the_models_price():
    model = ScriptedModel(["word " * 20], repeat_last=True, usd_per_token=0.001)
    result = Reasoner(model, "chain", budget=Budget(max_usd=0.5)).solve(Q)
    assert result.stop_reason == "budget_usd"
    assert 0.3 < result.usage.cost_usd <= 0.5 + 0.2


def test_format_errors_are_fed_back_and_capped():
    script = [PLAN, "Final answer: 9", "I think it is fine.", "Seems ok.", "Yes."]
    result, model = solve(script, ReasonConfig(plan=True, max_format_errors=3))
    assert kinds(result)[-3:] == ["format_error"] * 3
    assert result.stop_reason == "format_errors"
    assert "could not read your reply" in model.calls[3][-1]["content"]
    assert result.answer == "9"


def test_format_error_then_recovery():
    script = [PLAN, "Final answer: 9", "fine", "ok now.\nReward: 0.9", "Verdict: CORRECT"]
    result, _ = solve(script)
    assert kinds(result) == ["plan", "think", "format_error", "reflect", "verify", "answer"]
    assert result.stop_reason == "answered"


def test_step_budget_counts_down_and_forces_an_answer():
    three = "Step 1: a.\nStep 2: b.\nStep 3: c."
    script = [PLAN, three, "Fine.\nReward: 0.9", three, "Final answer: 9"]
    config = ReasonConfig(plan=True, max_steps=6, reflect_every=1, verify=False)
    result, model = solve(script, config)
    thinks = [s for s in result.steps if s.kind == "think"]
    assert len(thinks) == 2  # 3 steps each against a budget of 6
    assert "You have 3 steps left" in model.calls[3][-1]["content"]
    assert result.stop_reason == "step_limit" and result.answer == "9"


def test_model_may_ask_for_more_steps_within_the_limit():
    script = [PLAN, "Step 1: a. I need 5 more steps.", "Step 2: b.\nFinal answer: 9", "Reward: 0.9"]
    config = ReasonConfig(plan=True, max_steps=1, max_extra_steps=3, verify=False)
    result, model = solve(script, config)
    assert result.answer == "9"
    assert "You have 3 steps left" in model.calls[2][-1]["content"]


def test_reflection_on_a_schedule():
    script = [PLAN, "Step 1: a.", "Step 2: b.", "Going well.\nReward: 0.85", "Final answer: 9", "Reward: 0.9"]
    result, _ = solve(script, ReasonConfig(plan=True, reflect_every=2, verify=False))
    assert kinds(result) == ["plan", "think", "think", "reflect", "think", "reflect", "answer"]


def test_events_stream_in_order_and_stream_api():
    script = [PLAN, "Final answer: 9", "Reward: 0.9", "Verdict: CORRECT"]
    reasoner = Reasoner(ScriptedModel(script), "chain", config=ReasonConfig(plan=True))
    events = list(reasoner.stream(Q))
    assert [k for k, _ in events] == ["step"] * 5 + ["result"]
    assert events[-1][1].answer == "9"


def test_provider_error_propagates_and_trajectory_records_it(tmp_path):
    def boom(messages):
        raise ConnectionError("server went away")

    model = ScriptedModel([PLAN, boom])
    with pytest.raises(ConnectionError):
        Reasoner(model, "chain", runs_dir=tmp_path, config=ReasonConfig(plan=True)).solve(Q)
    (path,) = list(tmp_path.glob("*.jsonl"))
    _, steps, end = load_trajectory(path)
    assert [s.kind for s in steps] == ["plan"]
    assert end["stop_reason"] == "error" and "server went away" in end["error"]


def overflowing(reply: str, steps: int):
    """A scripted reply function whose context window, like a provider's, refuses a prompt that holds more
    than `steps` of its earlier replies (a prompt of any other size fits)."""
    def answer(messages):
        if "".join(str(m["content"]) for m in messages).count(reply.strip()) > steps:
            raise ContextLengthExceeded(f"the prompt holds more than {steps} long steps")
        return reply
    return answer


def test_a_chain_that_outgrows_the_context_window_stops_with_what_it_has(tmp_path):
    # every think step is long and unfinished (a model repeating itself to the length cap): the prompt grows
    # until the model refuses it; the chain stops, its trajectory says why, and nothing is raised
    model = ScriptedModel(overflowing("Let me reconsider the sheep once more. " * 40, 2))
    result = Reasoner(model, "chain", runs_dir=tmp_path, config=ReasonConfig(reflect=False)).solve(Q)
    assert result.stop_reason == "context_length" and result.answer is None
    assert "more than 2 long steps" in result.error and kinds(result) == ["think"] * 3
    _, steps, end = load_trajectory(result.trajectory_path)
    assert len(steps) == 3 and end["stop_reason"] == "context_length" and "2 long steps" in end["error"]


def test_a_first_call_that_does_not_fit_is_an_error(tmp_path):
    def refuse(messages):
        raise ContextLengthExceeded("the prompt does not fit")

    with pytest.raises(ContextLengthExceeded):
        Reasoner(ScriptedModel(refuse), "chain", runs_dir=tmp_path).solve(Q)
    _, steps, end = load_trajectory(next(tmp_path.glob("*.jsonl")))
    assert steps == [] and end["stop_reason"] == "error"


@pytest.fixture
def sigint():
    """Ctrl-C raises KeyboardInterrupt even when the test run inherited SIGINT ignored (a background job)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_ctrl_c_leaves_a_valid_trajectory(tmp_path, sigint):
    def interrupt(messages):
        signal.raise_signal(signal.SIGINT)
        return "unreachable"

    model = ScriptedModel([PLAN, "Step 1: 9 stay.", interrupt])
    assert threading.current_thread() is threading.main_thread()
    with pytest.raises(KeyboardInterrupt):
        Reasoner(model, "chain", runs_dir=tmp_path, config=ReasonConfig(plan=True, reflect_every=1)).solve(Q)
    (path,) = list(tmp_path.glob("*.jsonl"))
    lines = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert lines[0]["type"] == "header" and lines[-1]["type"] == "end"
    assert lines[-1]["stop_reason"] == "interrupted"
    assert [r["kind"] for r in lines if r["type"] == "step"] == ["plan", "think"]


@pytest.mark.parametrize("strategy", ["chain", "vote"])
def test_cancel_stops_before_the_next_model_call_and_closes_the_trajectory(tmp_path, strategy):
    from orchestrator.errors import Cancelled

    cancel = threading.Event()
    model = ScriptedModel(["Step 1: thinking."], repeat_last=True)
    reasoner = Reasoner(model, strategy=strategy, runs_dir=tmp_path, concurrency=1,
                        strategy_options={"samples": 5} if strategy == "vote" else {})
    with pytest.raises(Cancelled) as caught:
        reasoner.solve(Q, on_event=lambda kind, payload: cancel.set() if kind == "step" else None, cancel=cancel)
    assert len(model.calls) == 1  # the step after the first call saw the flag; no chain started another
    path = Path(caught.value.trajectory_path)
    files = [path] if path.is_file() else sorted(path.glob("*.jsonl"))
    ends = [json.loads(f.read_text().splitlines()[-1]) for f in files]
    assert ends and all(e["type"] == "end" and e["stop_reason"] == "interrupted" for e in ends)


def test_a_solve_cancelled_before_it_starts_makes_no_call(tmp_path):
    from orchestrator.errors import Cancelled

    cancel = threading.Event()
    cancel.set()
    model = ScriptedModel(["Final answer: 9"])
    with pytest.raises(Cancelled) as caught:
        Reasoner(model, strategy="plain", runs_dir=tmp_path).solve(Q, cancel=cancel)
    assert model.calls == []
    end = json.loads(Path(caught.value.trajectory_path).read_text().splitlines()[-1])
    assert end["stop_reason"] == "interrupted"


def test_replay_reproduces_a_saved_run_offline():
    script = [PLAN, "Step 1: 17 - 9 = 8.", "Step 2: 8.", "Step 3: 8.", "Wrong.\nReward: 0.1",
              "Final answer: 9", "Reward: 0.9", "Verdict: CORRECT"]
    first, _ = solve(script)
    replayed = Reasoner(ReplayModel(first.trajectory_path), "chain", config=ReasonConfig(plan=True)).solve(Q)
    assert kinds(replayed) == kinds(first)
    assert replayed.answer == first.answer == "9"


def test_empty_question_is_a_clear_error():
    from orchestrator.errors import ConfigError

    with pytest.raises(ConfigError, match="empty"):
        Reasoner(ScriptedModel(["x"])).solve("   ")


def test_question_longer_than_the_context_is_refused():
    from orchestrator.errors import ConfigError

    model = ScriptedModel(["x"], context_window=1000)
    with pytest.raises(ConfigError, match="context"):
        Reasoner(model).solve("why? " * 2000)


def test_next_state_is_the_single_decision():
    from orchestrator.run import Run
    from orchestrator.trajectory import Trajectory

    run = Run(question=Q, kind="math", model=ScriptedModel([]), config=ReasonConfig(),
              trajectory=Trajectory(None, {}))
    assert next_state(State.PLAN, Step(kind="plan", text=""), run) == State.THINK
    assert next_state(State.THINK, Step(kind="think", text="", code="print(1)"), run) == State.ACT
    assert next_state(State.THINK, Step(kind="think", text="", answer="9"), run) == State.REFLECT
    assert next_state(State.REFLECT, Step(kind="reflect", text="", reward=0.3), run) == State.BACKTRACK
    assert next_state(State.REFLECT, Step(kind="reflect", text="", reward=0.3, answer="9"), run) == State.LESSON
    assert next_state(State.REFLECT, Step(kind="reflect", text="", reward=0.9, answer="9"), run) == State.VERIFY
    assert next_state(State.VERIFY, Step(kind="verify", text="", verdict=False), run) == State.LESSON


def test_an_unreadable_reply_is_not_replayed_to_the_model_and_the_retry_is_focused():
    script = [PLAN, "Final answer: 9", "A long review that never states a score", "Reward: 0.9", "Verdict: CORRECT"]
    result, model = solve(script)
    retry = model.calls[3]
    assert "never states a score" not in json.dumps(retry)
    assert retry[-1]["content"].startswith("I could not read your reply") and "Reward: X" in retry[-1]["content"]
    assert result.steps[2].kind == "format_error" and result.answer == "9"


def test_repeated_middling_rewards_on_an_answer_fail_the_attempt_instead_of_looping():
    script = [PLAN, "Final answer: 2", "Hmm.\nReward: 0.5", "Final answer: 2", "Hmm.\nReward: 0.5",
              "Final answer: 2", "Hmm.\nReward: 0.5"]
    result, _ = solve(script, ReasonConfig(plan=True, max_adjusts=2, max_attempts=1))
    # no lesson: with no attempt left, nobody would read it
    assert kinds(result) == ["plan", "think", "reflect", "think", "reflect", "think", "reflect", "answer"]
    assert result.answer == "2" and result.stop_reason == "answered"


# --- verification by independent re-solves (self-consistency as the check) -----------------------------
RESOLVE = ReasonConfig(verify_by="resolve", resolve_samples=4)


def test_resolve_verification_asks_the_bare_question_again_and_verifies_a_majority_answer():
    script = ["Step 1: 9 stay.\nFinal answer: 9", "Correct.\nReward: 0.9",
              "9 are left.", "The answer is 9", "17 - 9 = 8", "Final answer: 9"]
    result, model = solve(script, RESOLVE)
    assert kinds(result) == ["think", "reflect", "verify", "answer"]
    check = result.steps[2]
    assert check.verdict is True and len(check.calls) == 4 and (result.answer, result.stop_reason) == ("9", "answered")
    # Each re-solve is the plain question alone: no system prompt, none of the chain.
    assert all(calls == [{"role": "user", "content": Q}] for calls in model.calls[2:6])
    assert "9 x3, 8 x1" in check.observation and "has 4 of 5 votes" in check.observation
    assert result.usage.calls == 6 and result.verified is True and result.to_dict()["verified"] is True


def test_resolve_verification_refutes_an_outvoted_answer_and_the_lesson_names_the_votes():
    script = ["Final answer: 8", "Reward: 0.9", "9", "Answer: 9", "so 9 remain", "8",
              "Lesson: 'all but 9' means 9 remain.",
              "Final answer: 9", "Reward: 0.9", "9", "9", "8", "9"]
    result, model = solve(script, RESOLVE)
    assert kinds(result) == ["think", "reflect", "verify", "lesson", "think", "reflect", "verify", "answer"]
    assert result.steps[2].verdict is False and result.steps[6].verdict is True
    assert "the answer 8 has 2 votes, 9 has 3" in model.calls[6][-1]["content"]  # the lesson prompt
    assert all(m["content"] for m in model.calls[6])  # the re-solves are not replayed into the chain
    assert "'all but 9' means 9 remain." in model.calls[7][-1]["content"]  # reaches the second attempt
    assert result.answer == "9"


def test_resolve_verification_with_no_readable_answer_leaves_the_answer_unverified():
    script = ["Final answer: 9", "Reward: 0.9", "hmm", "I am not sure", "?", "no idea"]
    result, _ = solve(script, RESOLVE)
    assert result.steps[2].verdict is None and kinds(result)[-1] == "answer" and result.answer == "9"
    assert result.verified is None


def test_resolve_verification_wins_the_final_vote_when_attempts_run_out():
    script = ["Final answer: 8", "Reward: 0.9", "9", "9", "9", "8", "Lesson: recount.",
              "Final answer: 8", "Reward: 0.9", "9", "9", "7", "9", "Lesson: again."]
    result, _ = solve(script, RESOLVE)
    assert [s.verdict for s in result.steps if s.kind == "verify"] == [False, False]
    assert result.answer == "9"  # 6 re-solves say 9, the chain said 8 twice
    assert result.verified is None  # the re-solves' answer won the vote; it was not itself checked


def test_resolve_verification_checks_the_budget_for_all_its_calls_before_drawing_any():
    script = ["Final answer: 9", "Reward: 0.9"] + ["9"] * 4
    model = ScriptedModel(script)
    result = Reasoner(model, "chain", config=RESOLVE, budget=Budget(max_calls=4)).solve(Q)
    assert result.stop_reason == "budget_calls" and len(model.calls) == 2  # 2 + 4 would overrun 4
    assert result.answer == "9"


def test_a_run_verified_by_re_solves_replays_offline(tmp_path):
    script = ["Final answer: 9", "Reward: 0.9", "9", "9", "8", "9"]
    result, _ = solve(script, RESOLVE, runs_dir=tmp_path)
    replayed = Reasoner(ReplayModel(result.trajectory_path), "chain", config=RESOLVE).solve(Q)
    assert replayed.answer == result.answer and kinds(replayed) == kinds(result)
