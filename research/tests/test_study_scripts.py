"""The one-off study scripts: `eval_arms` reads arm settings as `reason bench` does, and `recover_rows`
rebuilds lost results rows from their trajectories (against the real fake OpenAI server)."""

from __future__ import annotations

import json

import pytest
from fake_openai_server import serve
from test_bench import answers, invoke, write_problems

from orchestrator.bench.runner import read_results
from orchestrator.errors import ConfigError
from research import eval_arms, recover_rows


def test_eval_arms_reads_arm_settings_as_reason_bench_does():
    module = eval_arms
    arm = module.parse_arm("local/qwen2.5-coder-1.5b:chain:verify_by=resolve,max_attempts=3")
    assert (arm.key, arm.config.verify_by, arm.config.max_attempts) == (
        "local/qwen2.5-coder-1.5b|chain|verify_by=resolve,max_attempts=3", "resolve", 3)
    arm = module.parse_arm("local/m:vote:samples=16,tools=true")
    assert arm.strategy_options == {"samples": 16} and arm.config.tools is True
    arm = module.parse_arm("http://127.0.0.1:8000/v1#qwen|plain|optillm-cot_reflection")  # a label, no settings
    assert (arm.model, arm.label, arm.strategy_options) == (
        "http://127.0.0.1:8000/v1#qwen", "optillm-cot_reflection", {})
    with pytest.raises(ConfigError, match="bad strategy"):
        module.parse_arm("local/m:chain:verify_by=resolve,oops")


def test_lost_rows_are_rebuilt_from_the_trajectories(tmp_path):
    module = recover_rows
    gold = write_problems(tmp_path / "q.jsonl", 6)
    out = tmp_path / "out"
    with serve(replies=answers(gold, right=lambda i: i % 2 == 0)) as srv:
        result = invoke("-d", str(tmp_path / "q.jsonl"), "-m", srv.model("m"), "-s", "plain", "-o", str(out))
        assert result.exit_code == 0, result.output
        arm = f"{srv.model('m')}|plain|"
    rows = read_results(out / "results.jsonl")
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))  # 4 rows lost
    rebuilt = module.recover(out, arm)
    assert sorted(r["problem_id"] for r in rebuilt) == sorted(r["problem_id"] for r in rows[2:])
    originals = {r["problem_id"]: r for r in rows}
    for r in rebuilt:
        o = originals[r["problem_id"]]
        assert r["recovered"] and (r["correct"], r["predicted"], r["gold"], r["completion_tokens"]) == (
            o["correct"], o["predicted"], o["gold"], o["completion_tokens"])
    assert module.recover(out, arm, since="99999999") == []  # outside the time window
    with pytest.raises(SystemExit, match="several trajectories"):
        module.recover(out, f"{srv.model('m')}|vote|")


def test_seed_runs_tallies_each_seed_and_resumes(tmp_path, capsys):
    from research import seed_runs

    def reply(messages):
        if "Python program" in messages[-1]["content"]:
            return "```python\nprint(17 * 23)\n```"
        return "17 * 23 = 391. The answer is 391."

    rows = tmp_path / "rows.jsonl"
    with serve(replies=reply) as srv:
        argv = ["What is 17 * 23?", "--seeds", "2", "--gold", "391", "--model", srv.model("m"), "--out", str(rows)]
        assert seed_runs.main(argv) == 0
        first = capsys.readouterr().out
        assert "right 2/2 (gold 391)" in first and "{'391': 2}" in first
        assert [json.loads(line)["seed"] for line in rows.read_text().splitlines()] == [0, 1]
        calls = len(srv.requests)
        assert seed_runs.main([*argv[:2], "3", *argv[3:]]) == 0  # seeds 0 and 1 are read back, 2 is run
        assert [json.loads(line)["seed"] for line in rows.read_text().splitlines()] == [0, 1, 2]
        assert 0 < len(srv.requests) - calls <= calls // 2 + 2
        assert "3 seeds" in capsys.readouterr().out
