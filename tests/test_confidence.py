"""Token confidence (DeepConf's statistics) and the weighted vote that reads it. The offline replay of
confidence-weighted votes is a study: research/tests/test_confidence_replay.py."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from test_scheduler import FakeDecoder
from orchestrator.confidence import TOP, summarise, token_stats
from orchestrator.models.local_batch import Request, Scheduler
from orchestrator.strategies.stopping import weighted_majority as weighted


def test_token_stats_are_the_models_log_probabilities():
    logits = np.zeros(100, dtype=np.float32)
    logits[7] = math.log(50.0)  # p(7) = 50 / (50 + 99)
    lp, conf = token_stats(logits, 7)
    assert lp == pytest.approx(math.log(50 / 149), abs=1e-5)
    # minus the mean log-probability of the TOP best tokens: token 7 and TOP - 1 tokens of p = 1/149
    expected = -(math.log(50 / 149) + (TOP - 1) * math.log(1 / 149)) / TOP
    assert conf == pytest.approx(expected, abs=1e-5)
    _, flat = token_stats(np.zeros(100, dtype=np.float32), 3)
    assert flat == pytest.approx(math.log(100), abs=1e-5) and flat < conf + 1  # a flat row: log(vocab)


def test_summary_takes_the_weakest_window_and_the_tail():
    confs = [5.0] * 10 + [1.0] * 4 + [6.0] * 6
    s = summarise([-0.1] * 20, confs, window=4)
    assert s["min_window_conf"] == pytest.approx(1.0) and s["tail_conf"] == pytest.approx(6.0)
    assert s["mean_conf"] == pytest.approx(sum(confs) / 20) and s["tokens"] == 20
    short = summarise([-0.5, -0.5], [2.0, 4.0], window=32)  # shorter than a window: one window
    assert short["min_window_conf"] == short["tail_conf"] == short["mean_conf"] == pytest.approx(3.0)
    assert summarise([], []) is None and summarise([-1.0], [1.0, 2.0]) is None


class PeakedDecoder(FakeDecoder):
    """The scheduler tests' fake decoder, with logits that favour `last + 1` by a margin that shrinks as
    the sequence grows."""

    def decode(self, entries):
        rows = super().decode(entries)
        wanted = [token for token, _pos, _seqs, want in entries if want]
        for row, token in zip(rows, wanted, strict=True):
            row[:] = 0.0
            row[(token + 1) % len(row)] = 12.0 - token  # later tokens: less sure
        return rows


def test_every_decoded_token_gets_its_statistics():
    sched = Scheduler(PeakedDecoder, threading.Lock(), 2, 1024)
    sample, _ = sched.submit(Request([1, 2], seed=0, temperature=0.0, max_tokens=6))
    assert sample.tokens == [3, 4, 5, 6, 7, 8]
    assert len(sample.logprobs) == len(sample.confs) == 6
    assert all(lp < 0 for lp in sample.logprobs)
    assert sample.confs == sorted(sample.confs, reverse=True)  # the margin shrinks token by token


def test_a_weighted_vote_lets_the_surer_answer_win_and_skips_missing_answers():
    assert weighted(["a", "b", "b", None], [5.0, 2.0, 2.0, 9.0]) == "a"
    assert weighted([None], [1.0]) is None
