"""The offline replay of stopping rules on a synthetic pool, the pool recorder with the scripted model, and the
recorded pools in research/pools/ (format, and that the replay runs on them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator import ScriptedModel
from orchestrator.bench.datasets import Problem
from orchestrator.strategies.stopping import StopRule
from research import stopping_pool
from research.stopping_replay import (
    adaptive, check_record, compare_pools, equal_accuracy, equal_accuracy_markdown, fixed_k, frontier, grid_rules,
    markdown, orderings, prepare, read_pool, replay,
)

POOL = Path(__file__).parents[1] / "pools" / "stopping_pool.jsonl"


def load_script():
    return stopping_pool


# --- the replay on a synthetic pool -------------------------------------------------------------------
SYNTHETIC = [
    {"id": "easy", "gold": "5", "answers": ["5"] * 8, "tokens": [100] * 8},
    {"id": "split", "gold": "0.5", "answers": ["1/2", "3", "0.5", "3", "1/2", "0.5", None, "3"],
     "tokens": [120] * 8},
    {"id": "hard", "gold": "7", "answers": ["1", "2", "3", "4", "7", "6", "1", "2"], "tokens": [300] * 8},
]


def test_records_are_checked():
    assert all(check_record(r) == [] for r in SYNTHETIC)
    assert check_record({"id": "x", "gold": "1", "answers": ["1", 2], "tokens": [1]}) == [
        "2 answers but 1 token counts", "answer 1 is 2"]
    assert check_record({"id": "x", "answers": []}) == ["gold should be a str", "tokens should be a list"]


def test_prepare_groups_answers_by_meaning():
    split = prepare(SYNTHETIC)[1]
    assert split.labels == ["1/2", "3", "1/2", "3", "1/2", "1/2", None, "3"]
    assert split.correct == {"1/2": True, "3": False}


def test_fixed_k_and_adaptive_on_known_orders():
    problems = prepare(SYNTHETIC)
    identity = [[list(range(8))] for _ in problems]
    assert fixed_k(problems, 1, identity) == pytest.approx(2 / 3)  # easy and split right, hard wrong
    assert fixed_k(problems, 8, identity) == pytest.approx(2 / 3)
    result = adaptive(problems, StopRule(), identity)
    assert result["samples"] == pytest.approx((4 + 8 + 8) / 3)
    assert result["tokens"] == pytest.approx((400 + 960 + 2400) / 3)


def test_orderings_are_seeded_per_problem():
    p = prepare(SYNTHETIC)[2]
    assert orderings(p, 3, seed=1) == orderings(p, 3, seed=1) != orderings(p, 3, seed=2)
    assert all(sorted(o) == list(range(8)) for o in orderings(p, 5, seed=0))


def test_replay_reports_the_curve_and_the_verdict():
    report = replay(prepare(SYNTHETIC), count=20, seed=0)
    assert [row["k"] for row in report["fixed_k"]] == list(range(1, 9))
    rows = {r["rule"]: r for r in report["adaptive"]}
    assert set(rows) >= {"beta-0.95", "window-3", "gain-0.01"}
    for r in rows.values():
        expected = r["accuracy"] >= report["fixed_k"][-1]["accuracy"] - 0.01 and r["fraction"] <= 0.5
        assert r["meets"] == expected
    text = markdown(report)
    assert "| beta-0.95 |" in text and "within 1 point(s)" in text
    json.dumps(report)


def test_replay_intervals_are_bootstraps_over_problems_paired_with_fixed_n():
    problems = prepare(SYNTHETIC)
    rules = {"fixed": StopRule("none"), "eager": StopRule("window", window=2, min_samples=2)}
    report = replay(problems, rules=rules, count=20, seed=0)
    rows = {r["rule"]: r for r in report["adaptive"]}
    full = report["fixed_k"][-1]
    # a rule that never stops early is fixed-N itself: no gap, and no interval around it
    assert rows["fixed"]["accuracy"] == pytest.approx(full["accuracy"])
    assert rows["fixed"]["vs_full"] == 0 and tuple(rows["fixed"]["vs_full_ci"]) == (0, 0)
    for row in [*report["fixed_k"], *rows.values()]:
        lo, hi = row["ci"]
        assert 0 <= lo <= row["accuracy"] <= hi <= 1
    eager = rows["eager"]
    assert eager["vs_full"] == pytest.approx(eager["accuracy"] - full["accuracy"])
    assert eager["vs_full_ci"][0] <= eager["vs_full"] <= eager["vs_full_ci"][1]
    assert "minus fixed-8 (95% CI)" in markdown(report)
    assert replay(problems, rules=rules, count=20, seed=0) == report  # seeded


def test_replay_can_take_each_problems_first_samples_only():
    grown = [{**r, "answers": r["answers"] + ["999"] * 4, "tokens": r["tokens"] + [50] * 4} for r in SYNTHETIC]
    report = replay(prepare(grown), count=20, seed=0, samples=8)
    assert report == replay(prepare(SYNTHETIC), count=20, seed=0)  # the first 8, in recorded order
    assert replay(prepare(grown), count=20, seed=0)["samples"] == 12
    assert replay(prepare(grown), count=20, seed=0, samples=99)["samples"] == 12
    with pytest.raises(ValueError, match="at least 1"):
        replay(prepare(SYNTHETIC), count=2, seed=0, samples=0)


def test_replay_command_refuses_a_bad_sample_count_with_a_clear_error(capsys, monkeypatch):
    script = load_script()
    for bad, words in (("0", "must be at least 1, not 0"), ("two", "must be a whole number, not 'two'")):
        monkeypatch.setattr("sys.argv", ["stopping_pool.py", "replay", "--samples", bad])
        with pytest.raises(SystemExit) as exit_info:
            script.main()
        assert exit_info.value.code == 2 and words in capsys.readouterr().err


# --- the recorder -------------------------------------------------------------------------------------
def test_recorder_appends_per_sample_and_resumes(tmp_path):
    script = load_script()
    problems = [Problem("t/1", "What is 2 + 3?", "5", "math"), Problem("t/2", "Half of 1?", "1/2", "math")]
    out = tmp_path / "pool.jsonl"
    model = script.Metered(ScriptedModel(["The answer is 5.", "The answer is 6.", "0.5", "one half: 1/2"]))
    records = script.record_pool(problems, model, out, samples=2, on_sample=lambda line: None)
    assert [r["answers"] for r in records] == [["5", "6"], ["0.5", "1/2"]]
    assert all(check_record(r) == [] and r["seeds"] == [0, 1] and min(r["tokens"]) > 0 for r in records)
    more = script.Metered(ScriptedModel(["5", "1/2"]))
    records = script.record_pool(problems, more, out, samples=3, on_sample=lambda line: None)
    assert len(more.inner.calls) == 2  # only the third sample of each problem was asked for
    assert read_pool(out) == records and [len(r["answers"]) for r in records] == [3, 3]


def test_recorder_draws_a_problems_samples_together_in_batches(tmp_path):
    script = load_script()
    problems = [Problem("t/1", "What is 2 + 3?", "5", "math")]
    out = tmp_path / "pool.jsonl"
    model = script.Metered(ScriptedModel(["5", "6", "5"]))
    records = script.record_pool(problems, model, out, samples=3, batch=2, on_sample=lambda line: None)
    assert records[0]["answers"] == ["5", "6", "5"] and records[0]["seeds"] == [0, 1, 2]
    assert records[0]["sampler"] == "batch" and check_record(records[0]) == []
    assert [m[-1]["content"] for m in model.inner.calls] == ["What is 2 + 3?"] * 3  # the plain prompt
    assert model.tokens == sum(records[0]["tokens"])


# --- the committed pool -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, temperature", [("stopping_pool.jsonl", 0.7), ("stopping_pool_t0.4.jsonl", 0.4),
                                               ("confidence_pool_t0.4.jsonl", 0.4),
                                               ("confidence_pool_t0.4_101-150.jsonl", 0.4),
                                               ("stopping_pool_t0.4_16.jsonl", 0.4),
                                               ("stopping_pool_t0.4_16_101-150.jsonl", 0.4)])
def test_committed_pools_are_well_formed_and_replay(name, temperature):
    path = POOL.parent / name
    if not path.exists():
        pytest.skip(f"research/pools/{name} has not been recorded yet")
    records = read_pool(path)
    assert records and len({r["id"] for r in records}) == len(records)
    assert {r["id"]: check_record(r) for r in records if check_record(r)} == {}
    assert min(len(r["answers"]) for r in records) >= 8 and {r["temperature"] for r in records} == {temperature}
    report = replay(prepare(records), count=5, seed=0)
    assert report["problems"] == len(records) and report["fixed_k"]


def test_replay_command_writes_the_report_and_the_curve(tmp_path, capsys):
    import argparse

    script = load_script()
    out_json, out_png = tmp_path / "report.json", tmp_path / "curve.png"
    script.replay_cmd(argparse.Namespace(pool=[str(POOL)], orderings=3, seed=0, json=str(out_json),
                                         plot=str(out_png), samples=None, grid=False, caps=False))
    report = json.loads(out_json.read_text())
    assert len(report["fixed_k"]) == report["samples"] and {r["rule"] for r in report["adaptive"]} >= {"beta-0.8"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_png.stat().st_size > 10_000
    assert f"plot: {out_png}" in capsys.readouterr().out


def test_replay_command_grid_sweeps_the_beta_rule(capsys):
    import argparse

    load_script().replay_cmd(argparse.Namespace(pool=[str(POOL)], orderings=2, seed=0, json="", plot="",
                                                samples=8, grid=True, caps=False))
    text = capsys.readouterr().out
    assert "| beta-0.85-min3 |" in text and "| gain-0.035-min3 |" in text and "| window-3 |" not in text
    assert set(grid_rules()) >= {"beta-0.8-min2", "beta-0.95-min4", "gain-0.02-min2", "gain-0.05-min4"}
    assert "most accurate with <= 50% of the samples: " in text and "fewest samples within 1 point(s): " in text


def test_replay_takes_several_pools_as_one_and_refuses_a_problem_twice(tmp_path, capsys):
    import argparse

    script = load_script()
    records = read_pool(POOL)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    script.write_pool(first, records[:20])
    script.write_pool(second, records[20:])
    args = dict(orderings=2, seed=0, json="", plot="", samples=8, grid=False, caps=False)
    script.replay_cmd(argparse.Namespace(pool=[str(first), str(second)], **args))
    split = capsys.readouterr().out
    script.replay_cmd(argparse.Namespace(pool=[str(POOL)], **args))
    assert split == capsys.readouterr().out and "50 problems x 8 samples" in split  # the same pool, in two files
    with pytest.raises(SystemExit, match="more than one of the pools"):
        script.replay_cmd(argparse.Namespace(pool=[str(first), str(POOL)], **args))


def test_compare_pools_pairs_problems_and_trims_to_the_shorter_pool(capsys):
    import argparse

    def pool(answers):  # problem id -> answers; gold is always "1"
        return prepare([{"id": i, "gold": "1", "answers": a, "tokens": [10] * len(a)} for i, a in answers.items()])

    hot = pool({"p": ["1", "2", "1", "3"], "q": ["2", "2", "2", "2"], "only-here": ["1"] * 4})
    cold = pool({"p": ["1", "1", "1"], "q": ["2", "2", "1"]})
    report = compare_pools(cold, hot, count=20, seed=0)
    assert report["problems"] == 2 and report["samples"] == 3  # 'only-here' left out; the shorter pool's 3
    one = report["rows"][0]  # k = 1: cold is right on p always and on q a third of the time; hot 2/3 and 0
    assert one["first"] == pytest.approx(2 / 3, abs=0.1) and one["second"] == pytest.approx(1 / 3, abs=0.1)
    assert one["diff"] == pytest.approx(one["first"] - one["second"]) and one["diff_ci"][0] <= one["diff"]
    last = report["rows"][-1]  # k = 3 (hot trimmed to its first 3): both right on p, wrong on q
    assert (last["first"], last["second"], last["diff"]) == (0.5, 0.5, 0.0)
    assert compare_pools(cold, hot, count=5, samples=1)["samples"] == 1
    pools = [str(POOL.parent / "stopping_pool_t0.4.jsonl"), str(POOL)]
    load_script().compare_cmd(argparse.Namespace(pool=pools, orderings=2, seed=0, samples=8))
    text = capsys.readouterr().out
    assert "50 problems in both pools x 8 samples" in text and "| 8 | " in text


def test_frontier_picks_the_best_rule_under_half_and_the_cheapest_within_tolerance():
    curve = [{"k": 8, "accuracy": 0.70}]
    rows = [{"rule": "a", "accuracy": 0.66, "samples": 3.0, "fraction": 0.375, "vs_full": -0.04},
            {"rule": "b", "accuracy": 0.68, "samples": 4.0, "fraction": 0.5, "vs_full": -0.02},
            {"rule": "c", "accuracy": 0.69, "samples": 5.0, "fraction": 0.625, "vs_full": -0.01},
            {"rule": "d", "accuracy": 0.70, "samples": 6.0, "fraction": 0.75, "vs_full": 0.0}]
    ends = frontier({"fixed_k": curve, "adaptive": rows, "tolerance": 0.01})
    assert ends["best_under_half"]["rule"] == "b" and ends["cheapest_within"]["rule"] == "c"
    none = frontier({"fixed_k": curve, "adaptive": rows[2:], "tolerance": 0.0})
    assert none["best_under_half"] is None and none["cheapest_within"]["rule"] == "d"


def test_equal_accuracy_finds_the_cheapest_cap_that_matches_each_fixed_k(capsys):
    import argparse

    def record(i, answers):
        return {"id": i, "gold": "1", "answers": answers, "tokens": [10] * len(answers)}

    # ten easy problems (all eight agree: Beta stops after a few) and one split 5-3 for the right answer
    pool = prepare([record(f"e{i}", ["1"] * 8) for i in range(10)] + [record("s", ["1"] * 5 + ["2"] * 3)])
    report = equal_accuracy(pool, {"beta": StopRule("beta", confidence=0.8), "never": StopRule("none")},
                            count=30, seed=0)
    assert [f["k"] for f in report["fixed_k"]] == list(range(2, 9))
    beta, never = report["rules"]["beta"], report["rules"]["never"]
    assert [c["cap"] for c in beta["curve"]] == list(range(2, 9))
    spent = [c["samples"] for c in beta["curve"]]
    assert spent == sorted(spent) and spent[-1] < 4  # nested: a larger cap never stops sooner; easy ones stop
    assert [c["samples"] for c in never["curve"]] == list(range(2, 9))  # no rule: always the cap
    last = beta["match"][-1]  # fixed-8 is right on all 11; Beta at 0.8 gets there with under half the samples
    assert report["fixed_k"][-1]["accuracy"] == 1.0
    assert last["accuracy"] >= 0.99 and last["fraction"] <= 0.5 and last["samples"] == min(
        c["samples"] for c in beta["curve"] if c["accuracy"] >= 0.99)
    assert never["match"][-1]["fraction"] > 0.5
    text = equal_accuracy_markdown(report)
    assert "| k | fixed-k | beta | never |" in text and " *" in text and "| 8 | " in text
    load_script().replay_cmd(argparse.Namespace(pool=[str(POOL)], orderings=2, seed=0, json="", plot="",
                                                samples=8, grid=False, caps=True))
    assert "| cap | beta-0.8 | beta-0.9 | beta-0.95 | window-2 | window-3 |" in capsys.readouterr().out


def test_recorder_takes_a_later_range_of_the_same_draw():
    script = load_script()
    first, later = script.pool_problems("gsm8k", 50, 0), script.pool_problems("gsm8k", 150, 0, skip=100)
    assert [p.id for p in script.pool_problems("gsm8k", 150, 0)[:50]] == [p.id for p in first]
    assert len(later) == 50 and not {p.id for p in later} & {p.id for p in first}
    for skip in (-1, 150):
        with pytest.raises(SystemExit, match="--skip must be"):
            script.pool_problems("gsm8k", 150, 0, skip=skip)


def test_the_held_out_pool_holds_problems_101_to_150_of_the_draw():
    from orchestrator.bench.datasets import load_dataset

    held_out = read_pool(POOL.parent / "confidence_pool_t0.4_101-150.jsonl")
    draw = load_dataset("gsm8k", limit=150, seed=0)
    assert [r["id"] for r in held_out] == [p.id for p in draw[100:]]
    assert [r["gold"] for r in held_out] == [p.answer for p in draw[100:]]
    assert all(len(r["confidence"]) == 8 and all(r["confidence"]) for r in held_out)


@pytest.mark.parametrize("grown, base", [("stopping_pool_t0.4_16.jsonl", "confidence_pool_t0.4.jsonl"),
                                         ("stopping_pool_t0.4_16_101-150.jsonl", "confidence_pool_t0.4_101-150.jsonl")])
def test_the_16_sample_pools_grew_from_the_8_sample_ones(grown, base):
    """Seeds 8-15 were added by the recorder resuming a copy of the 8-sample pool: the first 8 samples of each
    problem are the old pool's, unchanged, and every sample keeps its seed and token statistics."""
    records, before = read_pool(POOL.parent / grown), read_pool(POOL.parent / base)
    assert [r["id"] for r in records] == [r["id"] for r in before]
    for r, old in zip(records, before, strict=True):
        assert r["seeds"] == list(range(16)) and len(r["answers"]) == len(r["tokens"]) == 16
        assert r["answers"][:8] == old["answers"] and r["tokens"][:8] == old["tokens"]
        assert r["confidence"][:8] == old["confidence"] and all(r["confidence"])
