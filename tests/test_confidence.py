"""Token confidence (DeepConf's statistics) and the offline replay of confidence-weighted votes."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from orchestrator.bench.confidence_replay import (
    Scored, auroc, replay_confidence, scored, separation, top_half,
)
from orchestrator.bench.stopping_replay import check_record
from test_scheduler import FakeDecoder
from test_strategies import sure
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


def pool_line(pid, gold, answers, confs):
    return {"id": pid, "gold": gold, "answers": answers, "tokens": [100] * len(answers),
            "confidence": [None if c is None else {"mean_logprob": -1.0 / c, "mean_conf": c, "min_window_conf": c,
                                                   "tail_conf": c, "tokens": 100} for c in confs]}


def test_a_score_that_marks_the_right_samples_turns_a_lost_vote():
    # 3 wrong samples that agree, 2 right ones the model was surer of.
    records = [pool_line("p", "7", ["7", "9", "9", "7", "9"], [9.0, 2.0, 2.5, 8.0, 3.0])]
    problems = scored(records)
    assert problems[0].right == [True, False, False, True, False]
    report = replay_confidence(problems, count=50, seed=0)
    last = report["table"][-1]
    assert last["majority"] == 0.0 and last["weighted-mean_conf"] == 1.0 and last["top-half-mean_conf"] == 1.0
    assert report["separation"]["mean_conf"]["within_auroc"] == 1.0
    assert report["versus_majority"]["weighted-mean_conf"]["diff"] == 1.0
    # as `vote` runs (stopping by Beta at 0.95, which counts votes): the weighting still picks the surer answer
    adaptive = report["adaptive"]
    assert adaptive["accuracy"]["majority"] < adaptive["accuracy"]["weighted-mean_conf"]
    assert 2 <= adaptive["samples"] <= 5


def test_voting_helpers_and_auroc():
    assert weighted(["a", "b", "b", None], [5.0, 2.0, 2.0, 9.0]) == "a"
    assert weighted([None], [1.0]) is None
    assert top_half(["a", "b", "b", "a"], [1.0, 3.0, 2.0, 0.5]) == "b"  # the two most confident: b, b
    assert auroc([2.0, 3.0], [1.0, 2.0]) == pytest.approx(0.875) and auroc([], [1.0]) is None
    flat = Scored("p", ["a", "b"], [True, False], {n: [1.0, 1.0] for n in
                                                  ("mean_conf", "min_window_conf", "tail_conf", "mean_prob")})
    assert separation([flat])["mean_conf"]["within_auroc"] == 0.5


def test_pools_without_or_with_misaligned_summaries_are_refused():
    line = pool_line("p", "7", ["7", "9"], [1.0, 2.0])
    assert check_record(line) == []
    bad = {**line, "confidence": line["confidence"][:1]}
    assert check_record(bad) and check_record({**line, "confidence": [1, None]})
    plain = {k: v for k, v in line.items() if k != "confidence"}
    with pytest.raises(ValueError, match="no confidence"):
        scored([plain])


def test_confidence_command_prints_the_report(tmp_path, capsys, monkeypatch):
    from benchmark_script import load_benchmark

    pool = tmp_path / "pool.jsonl"
    pool.write_text("\n".join(json.dumps(pool_line(f"p{i}", "1", ["1", "2", "1"], [3.0, 1.0, 2.0]))
                              for i in range(3)) + "\n", encoding="utf-8")
    script = load_benchmark("stopping_pool")
    monkeypatch.setattr("sys.argv", ["stopping_pool.py", "confidence", "--pool", str(pool), "--orderings", "5",
                                     "--json", str(tmp_path / "r.json")])
    script.main()
    out = capsys.readouterr().out
    assert "within problems" in out and "weighted-mean_conf" in out
    assert json.loads((tmp_path / "r.json").read_text())["samples"] == 3


def test_live_votes_weighed_again_from_their_trajectories(tmp_path):
    from orchestrator import Reasoner, ScriptedModel
    from orchestrator.bench.confidence_replay import rescore_markdown, rescore_votes

    script = [sure(3, 2.0), sure(9, 8.0), sure(3, 2.5), sure(9, 7.0), sure(3, 1.0)]
    reasoner = Reasoner(ScriptedModel(script, reports_confidence=True), "vote", runs_dir=tmp_path,
                        strategy_options={"samples": 5})
    result = reasoner.solve("What is 4 + 5?")
    row = {"arm": "fake|vote|", "problem_id": "p", "gold": "9", "kind": "math", "correct": result.answer == "9",
           "trajectory": str(result.trajectory_path)}
    report = rescore_votes([row])
    assert report["agrees"] == 1 and report["unweighted"] == 0
    assert report["methods"]["majority"]["correct"] == 0  # 3 wins three votes to two
    assert report["methods"]["weighted-mean_conf"]["correct"] == 1  # the surer 9s win on weight
    assert report["methods"]["weighted-mean_conf"]["gained"] == 1
    assert report["separation"]["mean_conf"]["within_auroc"] == 1.0  # both right samples were the surer ones
    assert "weighted-tail_conf" in rescore_markdown(report, "fake|vote|")
    assert rescore_votes([row], with_statistics=True)["problems"] == 1
    bare = Reasoner(ScriptedModel(["Final answer: 9"], repeat_last=True), "vote", runs_dir=tmp_path).solve("Q?")
    bare_row = {**row, "trajectory": str(bare.trajectory_path), "correct": True}
    assert rescore_votes([bare_row], with_statistics=True)["problems"] == 0
    assert rescore_votes([bare_row])["unweighted"] == 1


def test_the_committed_confidence_pool_repeats_the_stopping_pool_and_replays():
    from pathlib import Path

    from orchestrator.bench.stopping_replay import read_pool

    data = Path(__file__).parent / "data"
    pool, plain = read_pool(data / "confidence_pool_t0.4.jsonl"), read_pool(data / "stopping_pool_t0.4.jsonl")
    assert {r["id"]: check_record(r) for r in pool if check_record(r)} == {}
    # The same seeds through the same batched sampler drew the same answers, token for token.
    assert [(r["id"], r["answers"], r["tokens"]) for r in pool] == [(r["id"], r["answers"], r["tokens"]) for r in plain]
    assert all(c and c["tokens"] > 0 for r in pool for c in r["confidence"])
    report = replay_confidence(scored(pool), count=5, seed=0)
    assert report["problems"] == 50 and report["samples"] == 8 and len(report["table"]) == 8
