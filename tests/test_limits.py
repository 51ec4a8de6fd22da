"""Every limit of the state machine, crosscheck and the budget, tested at its boundary: exactly at the limit is
allowed, one past it is not. Driven through the real machine by the scripted model; `tests/tools/mutants.py`
flips each comparison and shows that these tests catch it."""

from __future__ import annotations

import shutil

import pytest

from orchestrator import Budget, Reasoner, ReasonConfig, ScriptedModel
from orchestrator.errors import ConfigError
from orchestrator.ledger import Ledger
from orchestrator.models.base import Completion, Usage

Q = "A farmer has 17 sheep; all but 9 run away. How many are left?"
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def chain(script, **config):
    """Solve Q with the chain strategy on `script`; the judge's verification is off unless asked for."""
    model = ScriptedModel(script)
    result = Reasoner(model, "chain", config=ReasonConfig(**{"verify": False, **config})).solve(Q)
    return result, model


def kinds(result):
    return [s.kind for s in result.steps]


# --- the state machine ------------------------------------------------------------------------------------
@pytest.mark.parametrize("allowed", [0, 1, 2])
def test_max_backtracks_allows_exactly_that_many_backtracks_then_fails_the_attempt(allowed):
    wrong = ["Step 1: 17 - 9 = 8.", "Wrong.\nReward: 0.2"]
    result, model = chain(wrong * (allowed + 1) + ["Final answer: 8"], max_backtracks=allowed, max_attempts=1,
                          reflect_every=1)
    assert kinds(result) == ["think", "reflect", "backtrack"] * allowed + ["think", "reflect", "answer"]
    assert len(model.calls) == 2 * (allowed + 1) + 1  # the last call: "give your final answer now"


@pytest.mark.parametrize("allowed", [1, 2])
def test_max_adjusts_allows_exactly_that_many_adjustments_of_an_answer(allowed):
    middling = ["Final answer: 8", "Check it.\nReward: 0.6"]
    result, _ = chain(middling * (allowed + 1), max_adjusts=allowed, max_attempts=1)
    assert kinds(result) == ["think", "reflect"] * (allowed + 1) + ["answer"]  # the last one fails the attempt
    assert result.answer == "8"


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_max_attempts_runs_exactly_that_many_attempts_with_a_lesson_between_each(attempts):
    failed = ["Final answer: 8", "Doubtful.\nReward: 0.2"]
    result, model = chain([*failed, "Lesson: reread."] * (attempts - 1) + failed, max_attempts=attempts)
    assert kinds(result) == ["think", "reflect", "lesson"] * (attempts - 1) + ["think", "reflect", "answer"]
    assert sorted({s.attempt for s in result.steps}) == list(range(attempts))
    assert len(model.calls) == 3 * attempts - 1


def test_a_chain_that_spends_its_last_step_answers_now():
    result, _ = chain(["Step 1: a.\nStep 2: b.", "Final answer: 9"], max_steps=2, reflect_every=5)
    assert kinds(result) == ["think", "answer"] and result.stop_reason == "step_limit"
    assert result.answer == "9"


def test_a_chain_with_one_step_left_thinks_once_more():
    result, model = chain(["Step 1: a.\nStep 2: b.", "Step 3: c.", "Final answer: 9"], max_steps=3,
                          reflect_every=5)
    assert kinds(result) == ["think", "think", "answer"] and result.stop_reason == "step_limit"
    assert "You have 1 steps left" in model.calls[1][-1]["content"]


def test_extra_steps_are_granted_up_to_the_total_cap_across_requests():
    script = ["Step 1: a. I need 1 more steps.", "Step 2: b. I need 5 more steps.", "Step 3: c.", "Final answer: 9"]
    result, model = chain(script, max_steps=1, max_extra_steps=2, reflect_every=5)
    # 1 step, +1 granted (1 left), spent, +1 more (the cap of 2 reached: 1 left), spent: out of steps
    assert "You have 1 steps left" in model.calls[1][-1]["content"]
    assert "You have 1 steps left" in model.calls[2][-1]["content"]
    assert kinds(result) == ["think", "think", "think", "answer"] and result.stop_reason == "step_limit"


def test_extra_steps_beyond_the_cap_are_not_granted():
    result, model = chain(["Step 1: a. I need 5 more steps.", "Step 2: b.\nFinal answer: 9"], max_steps=1,
                          max_extra_steps=3, reflect=False)
    assert "You have 3 steps left" in model.calls[1][-1]["content"]
    assert result.answer == "9"


@pytest.mark.parametrize("every", [1, 2, 3])
def test_reflection_comes_after_exactly_reflect_every_thinks(every):
    thinks = [f"Step {i}: more." for i in range(1, every + 1)]
    result, _ = chain([*thinks, "Going well.\nReward: 0.9", "Final answer: 9", "Right.\nReward: 0.9"],
                      reflect_every=every)
    assert kinds(result) == ["think"] * every + ["reflect", "think", "reflect", "answer"]


@pytest.mark.parametrize("allowed", [1, 2, 3])
def test_max_format_errors_unreadable_replies_in_a_row_stop_the_run(allowed):
    result, model = chain(["Final answer: 9"] + ["I think it is fine."] * allowed, max_format_errors=allowed)
    assert kinds(result) == ["think"] + ["format_error"] * allowed
    assert result.stop_reason == "format_errors" and len(model.calls) == 1 + allowed


@pytest.mark.parametrize("allowed", [2, 3])
def test_one_unreadable_reply_fewer_than_the_cap_is_only_feedback(allowed):
    script = ["Final answer: 9"] + ["I think it is fine."] * (allowed - 1) + ["Fine.\nReward: 0.9"]
    result, _ = chain(script, max_format_errors=allowed)
    assert kinds(result) == ["think"] + ["format_error"] * (allowed - 1) + ["reflect", "answer"]
    assert result.stop_reason == "answered"


# --- the reward thresholds: reward_high accepts, reward_low adjusts (final) or continues (mid-chain) -------
def test_a_final_answer_rewarded_exactly_reward_high_is_accepted():
    result, _ = chain(["Final answer: 9", "Reward: 0.8"], max_attempts=1)
    assert kinds(result) == ["think", "reflect", "answer"] and result.answer == "9"


def test_a_final_answer_rewarded_exactly_reward_high_goes_to_verification():
    result, _ = chain(["Final answer: 9", "Reward: 0.8", "Verdict: CORRECT"], verify=True)
    assert kinds(result) == ["think", "reflect", "verify", "answer"]


def test_a_final_answer_rewarded_exactly_reward_low_is_adjusted_not_failed():
    result, model = chain(["Final answer: 8", "Check 'all but'.\nReward: 0.5", "Final answer: 9", "Reward: 0.9"],
                          max_attempts=1)
    assert kinds(result) == ["think", "reflect", "think", "reflect", "answer"]
    assert "Check 'all but'" in model.calls[2][-1]["content"]  # the critique became advice
    assert result.answer == "9"


def test_an_adjustment_at_reward_low_counts_against_max_adjusts():
    # with no adjustment allowed, a reward of exactly reward_low on the answer fails the attempt
    result, _ = chain(["Final answer: 8", "Reward: 0.5"], max_adjusts=0, max_attempts=1)
    assert kinds(result) == ["think", "reflect", "answer"] and result.answer == "8"


def test_a_mid_chain_reward_of_exactly_reward_low_continues_without_backtracking():
    result, _ = chain(["Step 1: a.", "So-so.\nReward: 0.5", "Final answer: 9", "Reward: 0.9"], reflect_every=1)
    assert kinds(result) == ["think", "reflect", "think", "reflect", "answer"]
    assert not any(s.abandoned for s in result.steps)


def test_a_mid_chain_reward_just_below_reward_low_backtracks():
    result, _ = chain(["Step 1: a.", "Bad.\nReward: 0.49", "Final answer: 9", "Reward: 0.9"], reflect_every=1)
    assert kinds(result) == ["think", "reflect", "backtrack", "think", "reflect", "answer"]


# --- verification by re-solves: a tie is neither verified nor refuted ----------------------------------------
def test_resolve_verification_leaves_a_tied_vote_unverified():
    # the chain's 9 and one re-solve against two 8s: 2 votes each
    result, _ = chain(["Final answer: 9", "Reward: 0.9", "8", "8", "9"], verify=True, verify_by="resolve",
                      resolve_samples=3)
    check = next(s for s in result.steps if s.kind == "verify")
    assert check.verdict is None and kinds(result) == ["think", "reflect", "verify", "answer"]
    assert "no majority" in (check.observation or "")


def test_resolve_verification_with_one_vote_more_verifies_or_refutes():
    verified, _ = chain(["Final answer: 9", "Reward: 0.9", "8", "9", "7"], verify=True, verify_by="resolve",
                        resolve_samples=3)
    assert next(s.verdict for s in verified.steps if s.kind == "verify") is True
    refuted, _ = chain(["Final answer: 9", "Reward: 0.9", "8", "8", "7"], verify=True, verify_by="resolve",
                       resolve_samples=3, max_attempts=1)
    assert next(s.verdict for s in refuted.steps if s.kind == "verify") is False


# --- crosscheck: rounds and margin (prose only: no sandbox needed) ------------------------------------------
def crosscheck(replies, tools=False, **options):
    model = ScriptedModel(replies)
    result = Reasoner(model, "crosscheck", tools=tools, strategy_options=options, concurrency=1).solve(Q)
    return result, model


def test_crosscheck_stops_when_the_lead_equals_the_margin():
    result, model = crosscheck(["Final answer: 9", "Final answer: 8", "Final answer: 9", "Final answer: 7"],
                               rounds=3, margin=1)
    assert result.stop_reason == "consensus" and result.samples_used == 3 and len(model.calls) == 3


def test_crosscheck_goes_on_while_the_lead_is_below_the_margin():
    result, _ = crosscheck(["Final answer: 9", "Final answer: 8", "Final answer: 9", "Final answer: 9"],
                           rounds=3, margin=2)
    assert result.stop_reason == "consensus" and result.samples_used == 4  # 3 to 1 after the fourth
    assert result.answer == "9"


def test_crosscheck_two_agreeing_answers_are_enough_to_stop():
    result, model = crosscheck(["Final answer: 9", "Final answer: 9", "Final answer: 9"], rounds=2)
    assert result.stop_reason == "consensus" and len(model.calls) == 2


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_crosscheck_prose_only_draws_rounds_plus_one_samples_at_most(rounds):
    replies = [f"Final answer: {n}" for n in range(1, 10)]
    result, model = crosscheck(replies, rounds=rounds)
    assert result.stop_reason == "limit" and len(model.calls) == result.samples_used == rounds + 1


@needs_bwrap
def test_crosscheck_with_programs_draws_two_samples_a_round_at_most():
    def reply(messages):
        program = "Python program" in str(messages[-1]["content"])
        n = len(model.calls)
        return f"```python\nprint({n})\n```" if program else f"Final answer: {100 + n}"

    model = ScriptedModel(reply)
    result = Reasoner(model, "crosscheck", tools=True, strategy_options={"rounds": 2}).solve(Q)
    assert result.details["programs"] is True
    assert result.stop_reason == "limit" and result.samples_used == 4 == len(model.calls)


# --- the budget: a limit is the most a run may spend, reached exactly ------------------------------------
def spent(*tokens_and_usd, phase="think"):
    ledger = Ledger()
    for tokens, usd in tokens_and_usd:
        ledger.record(Completion("x", "m", usage=Usage(prompt_tokens=tokens), cost_usd=usd), phase)
    return ledger


def test_the_call_budget_admits_the_last_call_and_no_more():
    assert Budget(max_calls=2).exhausted(spent((10, 0.0))) is None
    assert Budget(max_calls=2).exhausted(spent((10, 0.0), (10, 0.0))) == "calls"
    assert Budget(max_calls=2).exhausted(spent((10, 0.0)), in_flight=1) == "calls"


def test_the_token_budget_admits_a_call_projected_to_end_exactly_at_it():
    ledger = spent((300, 0.0))  # the next think call is projected at 300 tokens
    assert Budget(max_tokens=600).exhausted(ledger, phase="think") is None
    assert Budget(max_tokens=599).exhausted(ledger, phase="think") == "tokens"


def test_the_dollar_budget_admits_a_call_projected_to_end_exactly_at_it():
    ledger = spent((10, 0.25))
    assert Budget(max_usd=0.5).exhausted(ledger, phase="think") is None
    assert Budget(max_usd=0.49).exhausted(ledger, phase="think") == "usd"


def test_a_token_budget_of_exactly_one_projected_call_is_enforceable():
    model = ScriptedModel([])
    Budget(max_tokens=600).refuse_unenforceable(model)  # the first call is projected at 600 tokens
    with pytest.raises(ConfigError, match="too small for one call"):
        Budget(max_tokens=599).refuse_unenforceable(model)


def test_a_chain_that_needs_exactly_its_call_budget_answers():
    model = ScriptedModel(["Final answer: 9", "Reward: 0.9", "Verdict: CORRECT"])
    result = Reasoner(model, "chain", budget=Budget(max_calls=3)).solve(Q)
    assert result.stop_reason == "answered" and result.usage.calls == 3 and result.answer == "9"


def vote(budget, usd_per_token=0.0):
    # 14 + 3 = 17 tokens a sample; 1/64 is exact in binary, so the dollar sums are too
    model = ScriptedModel([f"Final answer: {n}" for n in range(1, 10)], usd_per_token=usd_per_token)
    result = Reasoner(model, "vote", budget=budget, concurrency=1,
                      strategy_options={"samples": 6, "sampler": "plain", "rule": "none"}).solve(Q)
    return result, model


def test_vote_launches_the_sample_that_uses_the_last_call_of_the_budget():
    result, model = vote(Budget(max_calls=3))
    assert result.stop_reason == "budget_calls" and result.samples_used == 3 == len(model.calls)


def test_vote_launches_the_sample_that_uses_the_last_tokens_of_the_budget():
    result, model = vote(Budget(max_tokens=51, first_call_tokens=17))
    assert result.usage.total_tokens == 51 and result.samples_used == 3 == len(model.calls)
    assert result.stop_reason == "budget_tokens"


def test_vote_launches_the_sample_that_uses_the_last_dollars_of_the_budget():
    result, model = vote(Budget(max_usd=3 * 17 / 64), usd_per_token=1 / 64)
    assert result.usage.cost_usd == 3 * 17 / 64 and result.samples_used == 3 == len(model.calls)
    assert result.stop_reason == "budget_usd"
