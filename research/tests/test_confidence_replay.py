"""The offline replay of confidence-weighted votes (research/confidence_replay.py) on synthetic and recorded
pools, and on live `vote` samples weighed again from their trajectories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_strategies import sure

from orchestrator import Reasoner, ScriptedModel
from research import stopping_pool
from research.confidence_replay import (
    Scored, auroc, replay_confidence, rescore_markdown, rescore_votes, scored, separation, top_half,
)
from research.stopping_replay import check_record, read_pool

POOLS = Path(__file__).parents[1] / "pools"


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
    pool = tmp_path / "pool.jsonl"
    pool.write_text("\n".join(json.dumps(pool_line(f"p{i}", "1", ["1", "2", "1"], [3.0, 1.0, 2.0]))
                              for i in range(3)) + "\n", encoding="utf-8")
    script = stopping_pool
    monkeypatch.setattr("sys.argv", ["stopping_pool.py", "confidence", "--pool", str(pool), "--orderings", "5",
                                     "--json", str(tmp_path / "r.json")])
    script.main()
    out = capsys.readouterr().out
    assert "within problems" in out and "weighted-mean_conf" in out
    assert json.loads((tmp_path / "r.json").read_text())["samples"] == 3


def test_live_votes_weighed_again_from_their_trajectories(tmp_path):
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
    data = POOLS
    pool, plain = read_pool(data / "confidence_pool_t0.4.jsonl"), read_pool(data / "stopping_pool_t0.4.jsonl")
    assert {r["id"]: check_record(r) for r in pool if check_record(r)} == {}
    # The same seeds through the same batched sampler drew the same answers, token for token.
    assert [(r["id"], r["answers"], r["tokens"]) for r in pool] == [(r["id"], r["answers"], r["tokens"]) for r in plain]
    assert all(c and c["tokens"] > 0 for r in pool for c in r["confidence"])
    report = replay_confidence(scored(pool), count=5, seed=0)
    assert report["problems"] == 50 and report["samples"] == 8 and len(report["table"]) == 8
