"""Test-time search strategies driven through the real machine by the scripted model: stop reasons, budgets,
concurrency, grouping by meaning, escalation and the beam's tree."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from orchestrator import Budget, Reasoner, ReasonConfig, ScriptedModel, load_trajectory
from orchestrator.errors import ConfigError
from orchestrator.strategies import DESCRIPTIONS, STRATEGIES, get_strategy

Q = "Tom has 3 apples and buys 6 more. How many apples does he have?"


def role(messages) -> str:
    """Which state asked: read from the instruction at the end of the prompt."""
    last = messages[-1]["content"]
    markers = (("Score: X", "judge"), ("program that checks", "check"), ("Verdict: CORRECT", "verify"),
               ("Reward: X", "reflect"), ("Lesson:", "lesson"))
    for marker, name in markers:
        if marker in last:
            return name
    return "think"


def by_role(**replies):
    """A scripted model function: each role answers from its own list, in order (the last one repeats)."""
    queues = {k: list(v) if isinstance(v, list) else [v] for k, v in replies.items()}
    lock = threading.Lock()

    def reply(messages):
        with lock:
            q = queues[role(messages)]
            return q.pop(0) if len(q) > 1 else q[0]

    return reply


def solve(model, strategy, options=None, budget=None, config=None, concurrency=1):
    reasoner = Reasoner(model, strategy, budget=budget, config=config or ReasonConfig(),
                        strategy_options=options or {}, concurrency=concurrency)
    result = reasoner.solve(Q)
    json.dumps(result.to_dict())  # details and accounting are JSON-ready
    return result


def answers(*values):
    return [f"Step 1: add.\nFinal answer: {v}" for v in values]


def test_every_strategy_is_registered_and_described():
    for name in ("vote", "best-of-n", "beam", "auto"):
        assert name in STRATEGIES and name in DESCRIPTIONS and callable(get_strategy(name))


# --- vote ---------------------------------------------------------------------------------------------
def test_vote_stops_early_on_consensus():
    model = ScriptedModel(answers(9), repeat_last=True)
    result = solve(model, "vote", {"samples": 8})
    assert result.stop_reason == "consensus" and result.answer == "9"
    assert result.samples_used == 4 < result.samples_allowed == 8  # Beta criterion: 4-0 passes 0.95
    assert result.details["votes"] == {"9": 4} and result.details["stopped_by"] == "beta"
    assert set(result.phases) == {"think"}  # cheap chains: no reflection or verification


def test_vote_groups_answers_by_meaning():
    model = ScriptedModel(answers("0.5", "1/2", "3", "3", "0.5"))
    result = solve(model, "vote", {"samples": 5, "rule": "none"})
    assert result.details["votes"] == {"0.5": 3, "3": 2}
    assert result.answer == "0.5" and result.stop_reason == "limit"


def test_vote_limit_when_samples_run_out_without_consensus():
    model = ScriptedModel(answers(1, 2, 1, 2, 3, 4))
    result = solve(model, "vote", {"samples": 6})
    assert result.stop_reason == "limit" and result.samples_used == 6
    assert result.answer == "1"  # a tie goes to the answer seen first


def test_vote_window_rule_and_marginal_gain_rule():
    model = ScriptedModel(answers(5, 9, 9, 9), repeat_last=True)
    result = solve(model, "vote", {"rule": "window", "window": 3})
    assert (result.stop_reason, result.samples_used, result.answer) == ("consensus", 4, "9")
    # 2-0 fails the Beta rule, but six more samples would rarely flip it: under 0.5 flips per 1k tokens
    result = solve(ScriptedModel(answers(7), repeat_last=True), "vote", {"min_gain": 0.5, "samples": 8})
    assert (result.stop_reason, result.samples_used) == ("consensus", 2)
    assert result.details["stopped_by"] == "min_gain"


def sure(value, conf):
    """A scripted think reply with token statistics: `conf` for every summary score."""
    return {"content": answers(value)[0], "confidence": {
        "mean_logprob": -1 / conf, "mean_conf": conf, "min_window_conf": conf, "tail_conf": conf, "tokens": 10}}


def test_a_weighted_vote_lets_the_surer_answer_win_a_split_and_stops_as_the_plain_vote_does():
    script = [sure(3, 2.0), sure(9, 8.0), sure(3, 2.5), sure(9, 7.0), sure(3, 1.0)]
    plain = solve(ScriptedModel(script, reports_confidence=True), "vote", {"samples": 5})
    weighted = solve(ScriptedModel(script, reports_confidence=True), "vote",
                     {"samples": 5, "weight": "mean_conf"})
    assert plain.answer == "3" and plain.details["votes"] == {"3": 3, "9": 2}
    assert weighted.answer == "9" and weighted.details["votes"] == plain.details["votes"]
    assert weighted.samples_used == plain.samples_used == 5 and weighted.stop_reason == plain.stop_reason
    assert weighted.details["weight"] == {"score": "mean_conf", "majority": "3", "totals": {"3": 5.5, "9": 15.0}}
    assert [s["weight"] for s in weighted.details["samples"]] == [2.0, 8.0, 2.5, 7.0, 1.0]


def test_a_weighted_vote_needs_token_statistics():
    with pytest.raises(ConfigError, match="does not report"):
        solve(ScriptedModel(answers(1), repeat_last=True), "vote", {"weight": "mean_conf"})
    with pytest.raises(ConfigError, match="unknown vote weight"):
        solve(ScriptedModel(answers(1), repeat_last=True, reports_confidence=True), "vote", {"weight": "loud"})
    # A sample without statistics (decoded alone, or an old cache entry): the plain majority decides.
    mixed = [sure(3, 9.0), answers(9)[0], sure(3, 9.0), sure(9, 1.0), sure(9, 1.0)]  # weighed: 3 would win
    result = solve(ScriptedModel(mixed, reports_confidence=True), "vote", {"samples": 5, "weight": "mean_conf"})
    assert result.answer == "9" and "no token statistics" in result.details["weight"]["unweighted"]


def test_a_plain_sampled_vote_asks_the_bare_question_and_counts_the_same_way():
    model = ScriptedModel(["So 3 + 6 = 9. The answer is 9.", "The answer is 8.", "I get 9.", "9", "9"])
    result = solve(model, "vote", {"samples": 5, "sampler": "plain"})
    assert model.calls == [[{"role": "user", "content": Q}]] * len(model.calls)  # no system prompt, no chain
    assert result.answer == "9" and result.details["votes"] == {"9": 4, "8": 1} and result.samples_used == 5
    assert [s["label"] for s in result.details["samples"]] == ["9", "8", "9", "9", "9"]
    files = sorted(Path(result.trajectory_path).glob("sample-*.jsonl"))
    assert len(files) == 5 and all([s.kind for s in load_trajectory(f)[1]] == ["think"] for f in files)
    weighted = solve(ScriptedModel([sure(3, 2.0), sure(9, 8.0), sure(3, 2.5)], reports_confidence=True), "vote",
                     {"samples": 3, "sampler": "plain", "weight": "tail_conf"})
    assert weighted.answer == "9" and weighted.details["weight"]["majority"] == "3"


@pytest.mark.parametrize("strategy", ["vote", "auto"])
def test_bad_vote_options_fail_before_any_call(strategy):
    for options, words in (({"sampler": "tree"}, "sampler='tree'.*'chain' or 'plain'"),
                           ({"rule": "vibes"}, "rule='vibes'.*'beta', 'window' or 'none'"),
                           ({"weight": "loud"}, "unknown vote weight 'loud'"),
                           ({"weight": "mean_conf"}, "does not report")):
        model = ScriptedModel(answers(9), repeat_last=True)
        with pytest.raises(ConfigError, match=words):
            solve(model, strategy, options)
        assert model.calls == []
    with pytest.raises(ConfigError, match="escalate='panic'.*'vote', 'best-of-n' or 'none'"):
        solve(model, "auto", {"escalate": "panic"})
    assert model.calls == []


@pytest.mark.parametrize("budget, resource", [
    (Budget(max_calls=3), "calls"), (Budget(max_tokens=700), "tokens"), (Budget(max_usd=0.7), "usd"),
])
@pytest.mark.parametrize("concurrency", [1, 3])
def test_vote_budget_stop_never_overruns_by_more_than_a_call(budget, resource, concurrency):
    model = ScriptedModel(answers(*range(1, 40)), usd_per_token=0.001, latency=0.01)
    result = solve(model, "vote", {"samples": 30}, budget=budget, concurrency=concurrency)
    assert result.stop_reason == f"budget_{resource}" and 2 < result.samples_used < 30
    per_call = max(s.tokens for s in result.steps if s.calls)
    u = result.usage
    assert u.calls <= (budget.max_calls or 10**9)
    assert u.total_tokens <= (budget.max_tokens or 10**9) + per_call
    assert u.cost_usd <= (budget.max_usd or 10**9) + per_call * 0.001 + 1e-9
    assert result.answer is not None  # the best answer so far is kept


def test_vote_runs_samples_concurrently_within_the_bound():
    model = ScriptedModel(answers(*range(12)), latency=0.05)
    result = solve(model, "vote", {"samples": 12, "rule": "none"}, concurrency=3)
    assert 1 < model.max_active <= 3 and result.samples_used == 12


def test_parallel_vote_launches_only_what_its_rule_needs_so_an_early_stop_saves_samples():
    # 8 may run at once, but Beta at 0.95 cannot stop before 4 answers: 4 run, agree, and the vote stops.
    model = ScriptedModel(answers(9), repeat_last=True, latency=0.05)
    result = solve(model, "vote", {"samples": 8}, concurrency=8)
    assert (result.stop_reason, result.samples_used, model.max_active) == ("consensus", 4, 4)
    # 9, 9, 9, 5 first: Beta needs 6-1 (5-1 falls short), so 3 more run at once, agree, and the vote stops.
    model = ScriptedModel(answers(9, 9, 9, 5, 9), repeat_last=True, latency=0.05)
    result = solve(model, "vote", {"samples": 16}, concurrency=8)
    assert (result.stop_reason, result.samples_used, result.details["votes"]) == ("consensus", 7, {"9": 6, "5": 1})
    assert model.max_active == 4
    # speculate: launch more than needed (faster, possibly wasted); a large number launches all at once
    model = ScriptedModel(answers(9), repeat_last=True, latency=0.5)  # long enough that all 8 overlap under load
    result = solve(model, "vote", {"samples": 8, "speculate": 8}, concurrency=8)
    assert (result.stop_reason, result.samples_used, model.max_active) == ("consensus", 8, 8)


def test_vote_runs_one_at_a_time_for_a_local_model():
    model = ScriptedModel(answers(*range(6)), latency=0.02)
    model.is_local = True
    result = solve(model, "vote", {"samples": 6, "rule": "none"}, concurrency=4)
    assert model.max_active == 1 and result.samples_used == 6


def test_vote_writes_one_trajectory_per_sample():
    result = solve(ScriptedModel(answers(9), repeat_last=True), "vote")
    files = sorted(p.name for p in Path(result.trajectory_path).glob("*.jsonl"))
    assert files == [f"sample-{i:03d}.jsonl" for i in range(4)]


# --- best-of-n ----------------------------------------------------------------------------------------
NO_VERIFY = {"chain": {"verify": False, "max_attempts": 1}}


def test_best_of_n_keeps_the_best_rewarded_answer():
    rewards = ["Reward: 0.85", "Reward: 0.95", "Reward: 0.8"]
    model = ScriptedModel(by_role(think=answers(8, 9, 7), reflect=rewards))
    result = solve(model, "best-of-n", {"samples": 3, **NO_VERIFY})
    assert result.answer == "9" and result.stop_reason == "limit" and result.samples_used == 3
    assert result.details["scorer"] == "reward" and result.details["chosen_sample"] == 1


class Tempered(ScriptedModel):
    """A scripted model that notes the temperature of every call, in order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.temperatures = []

    def _complete(self, messages, options):
        self.temperatures.append(options.temperature)
        return super()._complete(messages, options)


@pytest.mark.parametrize("sample_first", [False, True])
def test_best_of_n_runs_its_first_chain_like_chain_unless_told_to_sample_it(sample_first):
    model = Tempered(by_role(think=answers(8, 9), reflect="Reward: 0.9"))
    options = {"samples": 2, "temperature": 0.6, "sample_first": sample_first, **NO_VERIFY}
    result = solve(model, "best-of-n", options, config=ReasonConfig(temperature=0.0))
    assert result.samples_used == 2 and len(model.temperatures) == 4  # think + reflect, twice, one at a time
    first, second = model.temperatures[:2], model.temperatures[2:]
    assert first == ([0.6, 0.6] if sample_first else [0.0, 0.0]) and second == [0.6, 0.6]


@pytest.mark.parametrize("strategy", ["vote", "best-of-n", "beam"])
def test_sampling_strategies_draw_at_the_models_sample_temperature_unless_told(strategy, tmp_path):
    from orchestrator.models.cache import CachedModel
    from orchestrator.models.local import LocalModel

    def run(options):
        model = Tempered(by_role(think=answers(9), reflect="Reward: 0.9", verify="Verdict: CORRECT"),
                         repeat_last=True)
        model.sample_temperature = 0.3
        own = {"vote": {"samples": 3}, "best-of-n": {"samples": 3, "sample_first": True},
               "beam": {"sample_first": True}}[strategy]  # each strategy takes only its own options
        solve(model, strategy, {**own, **options})
        return set(model.temperatures)

    assert run({}) == {0.3} and run({"temperature": 0.9}) == {0.9}
    qwen = LocalModel("local/qwen2.5-coder-1.5b")  # the weights load on the first call, not here
    assert qwen.sample_temperature == 0.4 and LocalModel("local/smollm2-135m").sample_temperature == 0.7
    assert CachedModel(qwen, tmp_path / "cache").sample_temperature == 0.4


def test_best_of_n_stops_when_a_chain_is_verified():
    model = ScriptedModel(by_role(think=answers(9), reflect="Reward: 0.9", verify="Verdict: CORRECT"))
    result = solve(model, "best-of-n", {"samples": 4, "stop_on_verified": True})
    assert result.stop_reason == "verified" and result.samples_used == 1 < result.samples_allowed


def test_best_of_n_judge_is_an_extra_call_per_distinct_answer_in_its_own_phase():
    rewards = ["Reward: 0.95", "Reward: 0.85", "Reward: 0.95"]
    judge = ["Wrong reading.\nScore: 0.1", "Right.\nScore: 0.9"]
    model = ScriptedModel(by_role(think=answers(8, 9, 8), reflect=rewards, judge=judge))
    result = solve(model, "best-of-n", {"samples": 3, "scorer": "judge", **NO_VERIFY})
    assert result.answer == "9"  # the judge overrules the chains' own rewards
    assert result.phases["judge"].calls == 2 and result.details["scores"] == {"8": 0.1, "9": 0.9}
    assert [s.kind for s in result.steps].count("judge") == 2


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_best_of_n_check_runs_code_and_stops_on_a_passed_check():
    wrong = "```python\nok = 3 + 6 == 8\nprint(ok)\n```"
    right = "```python\nok = 3 + 6 == 9\nprint(ok)\n```"
    model = ScriptedModel(by_role(think=answers(8, 9), reflect="Reward: 0.9", check=[wrong, right]))
    config = ReasonConfig(tools=True, verify=False)
    result = solve(model, "best-of-n", {"samples": 4, "chain": {"max_attempts": 1}}, config=config)
    assert result.details["scorer"] == "check" and result.details["checks"] == {"8": False, "9": True}
    assert result.stop_reason == "verified" and result.answer == "9" and result.samples_used == 2
    assert result.phases["check"].calls == 2 and result.phases["check"].tool_calls == 2


def test_best_of_n_respects_the_call_budget():
    model = ScriptedModel(by_role(think=answers(*range(1, 30)), reflect="Reward: 0.9",
                                  verify="Verdict: INCORRECT", lesson="Lesson: recheck."), latency=0.01)
    result = solve(model, "best-of-n", {"samples": 10}, budget=Budget(max_calls=9), concurrency=4)
    assert result.stop_reason == "budget_calls" and result.usage.calls <= 9  # in-flight calls are counted


# --- beam ---------------------------------------------------------------------------------------------
def test_beam_prunes_and_keeps_abandoned_nodes_in_the_trajectory():
    script = ["Step 1: 3 apples to start.", "Good start.\nReward: 0.9",
              "Step 1: 3 - 6 = -3.", "Wrong operation.\nReward: 0.2",
              "Step 2: 3 + 6 = 9.\nFinal answer: 9", "Right.\nReward: 0.95", "Verdict: CORRECT"]
    model = ScriptedModel(script)
    result = solve(model, "beam", {"width": 2, "branch": 2})
    assert result.stop_reason == "verified" and result.answer == "9"
    tree = result.details["tree"]
    assert [(n["id"], n["parent"], n["abandoned"]) for n in tree] == [(1, 0, False), (2, 0, True),
                                                                      (3, 1, False)]
    assert [s.kind for s in result.steps if s.abandoned] == ["think", "reflect"]
    assert "3 - 6" not in str(model.calls[4])  # the pruned branch is not in the surviving branch's prompt
    _, steps, end = load_trajectory(result.trajectory_path + "/sample-000.jsonl")
    assert [s.abandoned for s in steps] == [s.abandoned for s in result.steps] and end["answer"] == "9"


def test_beam_backs_off_when_every_child_scores_low():
    low = ["Step: a dead end.", "Reward: 0.2"]
    script = ["Step 1: path A.", "Reward: 0.9", "Step 1: path B.", "Reward: 0.6", *low * 4,
              "Step 1: 3 + 6 = 9.\nFinal answer: 9", "Reward: 0.9", "Verdict: CORRECT"]
    result = solve(ScriptedModel(script), "beam", {"width": 2, "branch": 2})
    assert result.stop_reason == "verified" and result.details["backoffs"] == 1
    tree = {n["id"]: n for n in result.details["tree"]}
    assert all(tree[i]["abandoned"] for i in range(1, 7))
    assert tree[7]["parent"] == 0 and not tree[7]["abandoned"]
    assert result.samples_used == 7


@pytest.mark.parametrize("sample_first", [False, True])
def test_beam_decodes_a_nodes_first_child_like_chain_unless_told_to_sample_it(sample_first):
    # width 1, branch 2, depth 2: the root's two children, then the better one's two; reflections pass
    model = Tempered(lambda m: "Reward: 0.7" if role(m) == "reflect" else "Step: more.", repeat_last=True)
    result = solve(model, "beam", {"width": 1, "branch": 2, "max_depth": 2, "temperature": 0.6,
                                   "sample_first": sample_first}, config=ReasonConfig(temperature=0.0))
    assert result.stop_reason == "limit" and result.samples_used == 4
    think = model.temperatures[::2]  # think, reflect per node, one node at a time
    assert think == ([0.6] * 4 if sample_first else [0.0, 0.6, 0.0, 0.6])
    assert model.temperatures[1::2] == think  # a node's reflection runs at its node's temperature


def test_beam_samples_every_child_of_a_node_it_expands_again_after_a_back_off():
    model = Tempered(lambda m: "Reward: 0.2" if role(m) == "reflect" else "Step: a dead end.", repeat_last=True)
    result = solve(model, "beam", {"width": 1, "branch": 2, "max_backoffs": 1, "temperature": 0.6},
                   config=ReasonConfig(temperature=0.0))
    assert result.stop_reason == "limit" and result.details["backoffs"] == 2 and result.samples_used == 4
    assert model.temperatures[::2] == [0.0, 0.6, 0.6, 0.6]  # the root, expanded twice: one greedy child in all


def test_beam_limit_and_budget():
    result = solve(ScriptedModel(["Step: more.", "Reward: 0.7"], repeat_last=True), "beam",
                   {"width": 1, "branch": 1, "max_depth": 3})
    assert result.stop_reason == "limit" and result.samples_used == 3
    model = ScriptedModel(lambda m: "Reward: 0.7" if role(m) == "reflect" else "Step: more.")
    result = solve(model, "beam", {"width": 2, "branch": 2}, budget=Budget(max_calls=7), concurrency=2)
    assert result.stop_reason == "budget_calls" and result.usage.calls <= 7


def busy(messages):
    r = role(messages)
    return {"reflect": "Unsure.\nReward: 0.6", "verify": "Verdict: INCORRECT", "lesson": "Lesson: slow down.",
            "judge": "Score: 0.5"}.get(r, "Step 1: " + "think " * 30 + "\nFinal answer: 9")


@pytest.mark.parametrize("strategy", ["best-of-n", "beam", "auto"])
def test_token_budget_holds_for_every_strategy(strategy):
    result = solve(ScriptedModel(busy), strategy, {} if strategy == "beam" else {"scorer": "judge"},
                   budget=Budget(max_tokens=3000), concurrency=2)
    per_call = max(s.tokens for s in result.steps if s.calls)
    assert result.stop_reason == "budget_tokens"
    assert result.usage.total_tokens <= 3000 + per_call and result.answer == "9"


# --- auto ---------------------------------------------------------------------------------------------
def test_auto_stops_after_a_chain_that_independent_re_solves_verify():
    model = ScriptedModel(by_role(think=answers(9), reflect="Reward: 0.9"))  # the re-solves answer 9 too
    result = solve(model, "auto", config=ReasonConfig(verify_by="resolve"))
    decision = result.details["auto"]
    assert result.stop_reason == "verified" and result.samples_used == 1 and result.answer == "9"
    assert decision["difficulty"] == "easy" and decision["escalated_to"] is None
    assert decision["first"]["verified_by"] == "resolve" and decision["why"] == "first chain verified by re-solves"


def test_auto_does_not_take_the_models_own_review_as_proof():
    model = ScriptedModel(by_role(think=answers(9), reflect="Reward: 0.9", verify="Verdict: CORRECT"))
    result = solve(model, "auto")
    decision = result.details["auto"]
    assert decision["first"]["verified"] is True and decision["first"]["verified_by"] == "judge"
    assert decision["difficulty"] == "medium" and decision["escalated_to"] == "vote"
    # the chain is the first vote; Beta at 0.95 stops once three fresh samples agree with it (4-0)
    assert result.stop_reason == "consensus" and result.samples_used == 4 and result.details["order"] == ["9"] * 4
    trusting = solve(ScriptedModel(by_role(think=answers(9), reflect="Reward: 0.9", verify="Verdict: CORRECT")),
                     "auto", {"trust_self": True})
    assert trusting.stop_reason == "verified" and trusting.samples_used == 1
    assert trusting.details["auto"]["why"] == "first chain passed its own review (trust_self)"


def test_auto_escalates_to_vote_when_the_chain_is_unsure():
    model = ScriptedModel(by_role(think=answers(8, 8, 9, 9, 9, 9), reflect="Hmm.\nReward: 0.3",
                                  lesson="Lesson: reread."))
    result = solve(model, "auto", {"samples": 6})
    decision = result.details["auto"]
    assert decision["difficulty"] == "hard" and decision["escalated_to"] == "vote"
    assert result.answer == "9" and result.stop_reason == "consensus"
    assert result.details["order"][0] == "8"  # the first chain's answer counted as a vote


def test_auto_without_verification_trusts_a_high_reward_only_when_told_to():
    def run(options):
        model = ScriptedModel(by_role(think=answers(9), reflect="Reward: 0.9"))
        return solve(model, "auto", options, config=ReasonConfig(verify=False))
    assert run({}).details["auto"]["escalated_to"] == "vote"
    trusting = run({"trust_self": True})
    assert trusting.samples_used == 1 and trusting.details["auto"]["difficulty"] == "easy"
    assert trusting.details["auto"]["why"] == "confident first chain (trust_self)"


def test_auto_projects_its_vote_samples_from_what_they_repeat_not_from_the_whole_first_chain():
    # the first chain's review is long (reflect, verify); a vote sample is a think call: 3 fit in what is left
    review = "Checked every step carefully. " * 60 + "\nReward: 0.9"
    model = ScriptedModel(by_role(think=answers(9), reflect=review, verify="Verdict: CORRECT"))
    result = solve(model, "auto", budget=Budget(max_tokens=1300))
    first, *votes = result.details["tokens_per_sample"]
    assert first > 1300 / 2 and len(votes) == 3 and all(0 < t < first / 5 for t in votes)
    assert result.stop_reason == "consensus" and result.answer == "9" and result.usage.total_tokens <= 1300


def test_auto_vote_prices_more_samples_at_its_own_samples_not_the_first_chain():
    # the cost rule weighs flips against what the remaining samples cost: a vote sample (one think call),
    # not the long first chain, whose cost would make more samples look 7x dearer and stop at 2-0
    review = "Checked every step carefully. " * 60 + "\nReward: 0.9"
    model = ScriptedModel(by_role(think=answers(9), reflect=review, verify="Verdict: CORRECT"))
    result = solve(model, "auto", {"rule": "none", "min_gain": 0.2, "samples": 6})
    first, *votes = result.details["tokens_per_sample"]
    assert first > 5 * max(votes)
    # 2-0: 0.41 flips per 1k tokens at the vote samples' price (go on); 3-0: 0.14 (stop)
    assert result.samples_used == 3 and result.details["stopped_by"] == "min_gain"


def test_auto_projects_a_plain_sample_as_one_call():
    # the first chain: two think calls, a review, a verdict (4 calls). A chain sample repeats the two think
    # calls: 2 more samples need 4 calls, over a budget of 6. A plain sample is one call: 2 fit.
    def run(sampler):
        model = ScriptedModel(by_role(think=["Step 1: 3 apples to start.", "Step 2: add 6.\nFinal answer: 9"],
                                      reflect="Reward: 0.9", verify="Verdict: CORRECT"))
        return solve(model, "auto", {"sampler": sampler}, budget=Budget(max_calls=6))
    chains = run("chain")
    assert chains.samples_used == 1 and chains.details["auto"]["why"] == "the budget cannot pay for 2 samples"
    plain = run("plain")
    assert plain.details["auto"]["escalated_to"] == "vote" and plain.samples_used == 3
    assert plain.usage.calls == 6 and plain.stop_reason == "budget_calls" and plain.answer == "9"


def test_a_vote_sample_that_outgrows_the_context_does_not_end_the_vote():
    # sample 1 rambles until its prompt no longer fits; it stops (context_length), the vote goes on
    from orchestrator.errors import ContextLengthExceeded

    rambling = "Hmm, let me think again about the apples. " * 30
    replies = iter(["Final answer: 9", rambling, rambling, "Final answer: 9"])

    def reply(messages):
        if "".join(str(m["content"]) for m in messages).count(rambling.strip()) > 1:
            raise ContextLengthExceeded("the prompt does not fit")
        return next(replies)

    result = solve(ScriptedModel(reply), "vote", {"samples": 3, "rule": "none"})
    assert result.answer == "9" and result.stop_reason == "limit" and result.samples_used == 3
    stops = [s["stop_reason"] for s in result.details["samples"]]
    assert stops == ["answered", "context_length", "answered"] and result.details["order"] == ["9", None, "9"]


def test_a_beam_path_that_outgrows_the_context_is_a_dead_end_not_a_crash():
    from orchestrator.errors import ContextLengthExceeded

    rambling = "Step: the apples again, slowly. " * 30
    scripted = by_role(think=rambling, reflect="Fine so far.\nReward: 0.9")

    def reply(messages):
        if "".join(str(m["content"]) for m in messages).count(rambling.strip()) > 2:
            raise ContextLengthExceeded("the prompt does not fit")
        return scripted(messages)

    result = solve(ScriptedModel(reply), "beam", {"width": 1, "branch": 1, "max_depth": 5})
    assert result.stop_reason == "limit" and result.answer is None
    depths = [n["depth"] for n in result.details["tree"]]
    assert max(depths) == 3 and result.details["backoffs"] > 0  # depth 3 no longer fits: backed off, then gave up


def test_auto_does_not_escalate_without_budget_for_it():
    model = ScriptedModel(by_role(think=answers(8), reflect="Hmm.\nReward: 0.3", lesson="Lesson: reread."))
    result = solve(model, "auto", budget=Budget(max_calls=6))
    assert result.stop_reason == "budget_calls" and result.samples_used == 1
    assert result.details["auto"]["escalated_to"] is None and result.answer == "8"


def test_a_plain_sampled_vote_takes_the_call_settings_of_the_chain_overrides():
    class Recording(ScriptedModel):
        def _complete(self, messages, options):
            self.options_seen.append((options.max_tokens, options.temperature, options.seed))
            return super()._complete(messages, options)

    model = Recording(["The answer is 9."], repeat_last=True)
    model.options_seen = []
    result = solve(model, "vote", {"samples": 2, "sampler": "plain", "temperature": 0.3,
                                   "chain": {"max_tokens_per_call": 77}}, config=ReasonConfig(seed=5))
    assert result.answer == "9" and sorted(model.options_seen) == [(77, 0.3, 5), (77, 0.3, 1005)]


def test_options_are_a_typed_model_whose_defaults_the_strategies_use(tmp_path):
    from orchestrator import Reasoner
    from orchestrator.strategies.options import BeamOptions, VoteOptions

    model = ScriptedModel(answers(9), repeat_last=True)
    assert solve(model, "vote", {"rule": "none"}).samples_allowed == VoteOptions().samples == 8
    result = Reasoner(ScriptedModel(answers(9), repeat_last=True), "vote", strategy_options=VoteOptions(samples=3,
                      rule="none"), runs_dir=tmp_path, concurrency=1).solve("What is 4 + 5?")
    assert result.samples_allowed == 3 and result.samples_used == 3
    with pytest.raises(ConfigError, match="vote has no setting 'width'"):
        Reasoner(model, "vote", strategy_options=BeamOptions(width=1))
