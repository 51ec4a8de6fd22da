"""The stopping rules of `vote` as pure functions (orchestrator.strategies.stopping), and the bootstrap interval
the replays report. Their offline replay on recorded pools is a study: research/tests/test_stopping_replay.py."""

from __future__ import annotations


from orchestrator.bench.stats import bootstrap_interval
from orchestrator.strategies.stopping import (
    StopRule, beta_confidence, flip_probability, majority, marginal_gain, needed, stop_point, tally,
)


def test_tally_and_majority_ignore_missing_answers_and_break_ties_by_first_seen():
    labels = ["b", None, "a", "a", "b"]
    assert tally(labels) == [("b", 2), ("a", 2)] and majority(labels) == "b"
    assert majority([None, None]) is None


def test_beta_confidence_matches_the_closed_form():
    assert beta_confidence(1, 0) == 0.75 and beta_confidence(4, 0) == 31 / 32
    assert beta_confidence(3, 3) == 0.5
    assert beta_confidence(6, 1) > 0.95 > beta_confidence(5, 1)


def test_flip_probability_is_zero_when_the_lead_cannot_be_caught():
    assert flip_probability(5, 0, 4) == 0.0 and flip_probability(3, 0, 0) == 0.0
    assert 0 < flip_probability(2, 1, 3) < flip_probability(1, 1, 3) <= 1
    assert marginal_gain(["a", "a"], 6, 0.0) == float("inf")  # free samples are always worth taking


def test_stop_point_per_rule():
    assert stop_point(["a"] * 8, StopRule()) == (4, "consensus")
    assert stop_point(["a", "b"] * 4, StopRule()) == (8, "limit")
    assert stop_point(["a", "b", "b", "b"], StopRule("window", window=3)) == (4, "consensus")
    assert stop_point(["a"] * 8, StopRule("none")) == (8, "limit")
    assert stop_point(["a"] * 8, StopRule("none", min_gain=0.05), [500.0] * 8) == (2, "min_gain")
    assert stop_point([None] * 8, StopRule("none", min_gain=0.05), [500.0] * 8) == (8, "limit")


def test_needed_is_the_fewest_samples_after_which_the_rule_could_stop():
    beta = StopRule()  # 0.95: 4-0 passes, 3-0 does not; 6-1 passes, 5-1 does not
    assert [needed([], beta, 8), needed(["a"], beta, 8), needed(["a", None], beta, 8)] == [4, 3, 3]
    assert needed(["a", "b"], beta, 8) == 5 and needed(["a", "b"], beta, 3) == 3  # capped by what is allowed
    assert needed(["a", "b"], StopRule("window", window=3), 8) == 2  # b, b: the last three are not all a
    assert needed(["a"] * 3, StopRule("none"), 5) == 5  # fixed k: all of them
    assert needed(["a"] * 5, StopRule(min_gain=0.1), 3) == 1  # the cost rule may stop after any sample
    assert needed(["a"], beta, 0) == 0
    # Lossless: for every sequence, a one-at-a-time run cannot stop before `needed` more answers are in.
    import itertools

    for seq in itertools.product("ab", repeat=6):
        n, _ = stop_point(list(seq), beta)
        for i in range(6):
            if n > i:  # not stopped after the first i: it stops no sooner than i + needed
                assert n >= i + needed(list(seq[:i]), beta, 6 - i)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = [1.0] * 30 + [0.0] * 20
    lo, hi = bootstrap_interval(values, seed=3)
    assert (lo, hi) == bootstrap_interval(values, seed=3)
    assert 0.4 < lo < 0.6 < hi < 0.8  # mean 0.6, sd of the mean ~0.07
    assert bootstrap_interval([0.5] * 10) == (0.5, 0.5)
    assert bootstrap_interval([]) == (0.0, 0.0)
