"""`reason bench` end to end against a real OpenAI-compatible HTTP server on 127.0.0.1
(tests/fake_openai_server.py): concurrency, resume after SIGKILL and Ctrl-C, rate-limit back-off, report,
plot, diff, and bad input. Timing claims live in benchmarks/bench_concurrency.py, not here."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_openai_server import Fault, serve

from orchestrator.bench.arms import make_arms, parse_budget
from orchestrator.bench.datasets import load_jsonl
from orchestrator.bench.runner import Hooks, read_results, run_bench
from orchestrator.bench.stats import mcnemar, wilson
from orchestrator.config import ReasonConfig
from orchestrator.cli.bench_cmd import bench
from orchestrator.errors import ConfigError
from orchestrator.ledger import Budget

CLI = [sys.executable, "-c", "from orchestrator.cli import main; main()", "bench"]


def write_problems(path: Path, n: int) -> dict[str, tuple[int, str]]:
    """A user JSONL of n sums; returns question -> (index, gold answer)."""
    gold = {}
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            q = f"What is {i} plus {2 * i + 1}?"
            gold[q] = (i, str(3 * i + 1))
            f.write(json.dumps({"id": f"sum/{i}", "question": q, "answer": gold[q][1]}) + "\n")
    return gold


def answers(gold: dict[str, tuple[int, str]], right=lambda i: True):
    """A reply function for the fake server: the gold answer when `right(i)`, else a wrong one."""

    def reply(messages):
        i, answer = gold.get(messages[-1]["content"], (-1, "0"))
        return f"The answer is {answer if right(i) else '-1'}."

    return reply


def max_in_flight(arrivals: list[float], latency: float) -> int:
    """Requests that arrived within one latency of each other were all being served at the same moment."""
    arrivals, best, j = sorted(arrivals), 0, 0
    for i, t in enumerate(arrivals):
        while arrivals[j] < t - latency:
            j += 1
        best = max(best, i - j + 1)
    return best


def invoke(*args: str):
    return CliRunner().invoke(bench, list(args), catch_exceptions=False)


def test_budget_strings():
    assert parse_budget("tokens=20000,usd=0.05,seconds=60,calls=30") == Budget(20000, 0.05, 60.0, 30)
    assert parse_budget(" tokens = 1e4 ").max_tokens == 10000
    for bad in ("tokens", "tokens=abc", "speed=3", "calls=0", "usd=-1", ""):
        with pytest.raises(ConfigError, match="bad budget"):
            parse_budget(bad)
    arms = make_arms(["m1", "m2"], ["plain", "chain"], ["calls=1", "tokens=100"], tools=True)
    assert len(arms) == 8 and arms[0].key == "m1|plain|calls=1 tools" and arms[0].config.tools


def test_a_strategy_spec_sets_config_and_strategy_options():
    arms = make_arms(["m"], ["chain:verify_by=resolve,resolve_samples=6", "vote:samples=16,rule=window", "chain"], [])
    chain, vote, plain_chain = arms
    assert chain.key == "m|chain|verify_by=resolve,resolve_samples=6" and chain.strategy == "chain"
    assert (chain.config.verify_by, chain.config.resolve_samples, chain.strategy_options) == ("resolve", 6, {})
    assert vote.strategy_options == {"samples": 16, "rule": "window"} and vote.config == ReasonConfig()
    assert plain_chain.key == "m|chain|" and plain_chain.config.verify_by == "auto"
    for bad in ("chain:verify_by", "chain:verify_by=maybe", "chain:max_attempts=0"):
        with pytest.raises(ConfigError, match="bad strategy"):
            make_arms(["m"], [bad], [])


def test_a_spec_sorts_config_budget_and_options_and_refuses_other_keys():
    [arm] = make_arms(["m"], ["vote:samples=3,max_attempts=3,budget_usd=0.5,config.temperature=0.2"], ["tokens=900"])
    assert arm.strategy_options == {"samples": 3} and arm.config.max_attempts == 3
    assert arm.config.temperature == 0.2 and (arm.budget.max_tokens, arm.budget.max_usd) == (900, 0.5)
    [arm] = make_arms(["m"], ["vote:budget_tokens=1000"], ["tokens=5000"])
    assert arm.budget.max_tokens == 1000 and "tokens=5000" not in arm.label  # the label names what runs
    for bad, words in (("vote:smaples=3", "did you mean 'samples'"), ("vote:width=2", "vote's options: samples"),
                       ("beam:samples=2", "beam's options: width"), ("vote:rule=vibes", "rule='vibes'")):
        with pytest.raises(ConfigError, match=words):
            make_arms(["m"], [bad], [])


def test_the_cli_refuses_a_misspelled_option_before_any_model_call(tmp_path):
    write_problems(tmp_path / "q.jsonl", 2)
    with serve(replies=["The answer is 1."]) as srv:
        done = subprocess.run([*CLI, "--dataset", str(tmp_path / "q.jsonl"), "-m", srv.model("m"), "-s", "plain",
                               "-s", "vote:smaples=3", "--out", str(tmp_path / "out")],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 2, done.stderr
        assert "did you mean 'samples'" in done.stderr and "vote's options: samples, temperature" in done.stderr
        assert srv.posts() == [] and not (tmp_path / "out").exists()


def test_concurrency_reaches_the_server(tmp_path):
    """200 problems at concurrency 32 against 0.1 s of latency: the server sees >= 16 requests at once, and
    every problem is recorded once and scored right. (Timing: benchmarks/bench_concurrency.py.)"""
    gold = write_problems(tmp_path / "q.jsonl", 200)
    problems = load_jsonl(tmp_path / "q.jsonl")
    with serve(replies=answers(gold), latency=0.1) as srv:
        arms = make_arms([srv.model("gpt-4o-mini")], ["plain"], [])
        path = run_bench(problems, arms, tmp_path / "out", concurrency=32)
        arrivals = [r.at for r in srv.posts("/v1/chat/completions")]
    rows = read_results(path)
    assert sorted(r["problem_id"] for r in rows) == sorted(p.id for p in problems)
    assert all(r["correct"] and r["calls"] == 1 and r["verified"] is None for r in rows)  # plain: no check
    assert len(arrivals) == 200
    assert max_in_flight(arrivals, 0.1) >= 16


def test_resume_after_sigkill(tmp_path):
    """A real `reason bench` process killed mid-run, then rerun: every problem is recorded exactly once."""
    gold = write_problems(tmp_path / "q.jsonl", 60)
    out = tmp_path / "out"
    results = out / "results.jsonl"
    with serve(replies=answers(gold), latency=0.05) as srv:
        args = [*CLI, "-d", str(tmp_path / "q.jsonl"), "-m", srv.model("m"), "-s", "plain", "-c", "2",
                "--out", str(out)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not results.exists() or len(read_results(results)) < 10):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = read_results(results)
        assert 10 <= len(first) < 60, "the kill should land mid-run"
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"resuming: {len(first)} results already recorded" in done.stderr
    ids = [r["problem_id"] for r in read_results(results)]
    assert len(ids) == 60 and set(ids) == {f"sum/{i}" for i in range(60)}
    assert (out / "summary.md").is_file()


def test_ctrl_c_writes_what_finished_and_says_how_to_resume(tmp_path):
    gold = write_problems(tmp_path / "q.jsonl", 40)
    out = tmp_path / "out"
    with serve(replies=answers(gold), latency=0.1) as srv:
        args = [*CLI, "-d", str(tmp_path / "q.jsonl"), "-m", srv.model("m"), "-s", "plain", "-c", "1",
                "--out", str(out)]
        # Ctrl-C raises in the child even if this test run inherited SIGINT ignored (a background job).
        args[2] = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); " + args[2]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(read_results(out / "results.jsonl")) < 3:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "run the same command again to resume" in err
    rows = read_results(out / "results.jsonl")
    assert 3 <= len(rows) < 40 and len({r["problem_id"] for r in rows}) == len(rows)


def test_rate_limits_back_off_and_lose_nothing(tmp_path):
    """429s that outlast the adapter's 5 attempts put the problem back and slow the lane; all get solved."""
    gold = write_problems(tmp_path / "q.jsonl", 12)
    problems = load_jsonl(tmp_path / "q.jsonl")
    notices: list[str] = []
    faults = [Fault.rate_limit(retry_after="0") for _ in range(25)]
    with serve(replies=answers(gold), faults=faults) as srv:
        arms = make_arms([srv.model("m")], ["plain"], [])
        path = run_bench(problems, arms, tmp_path / "out", concurrency=4, rate_limit_pause=0.05,
                         hooks=Hooks(notice=notices.append))
    rows = read_results(path)
    assert sorted(r["problem_id"] for r in rows) == sorted(p.id for p in problems)
    assert all(r["correct"] for r in rows)
    assert any("rate limited; concurrency now" in n for n in notices)


def test_a_problem_rate_limited_too_often_is_left_for_a_rerun(tmp_path):
    gold = write_problems(tmp_path / "q.jsonl", 3)
    problems = load_jsonl(tmp_path / "q.jsonl")
    notices: list[str] = []
    with serve(replies=answers(gold), faults=[Fault.rate_limit(retry_after="0") for _ in range(5)]) as srv:
        arms = make_arms([srv.model("m")], ["plain"], [])
        path = run_bench(problems, arms, tmp_path / "out", concurrency=1, rate_limit_retries=0,
                         hooks=Hooks(notice=notices.append))
        assert len(read_results(path)) == 2 and any("left for a rerun" in n for n in notices)
        run_bench(problems, arms, tmp_path / "out", concurrency=1)
    assert sorted(r["problem_id"] for r in read_results(path)) == [p.id for p in problems]


def test_a_dead_server_stops_its_lane_and_errors_can_be_retried(tmp_path):
    gold = write_problems(tmp_path / "q.jsonl", 8)
    out = tmp_path / "out"
    with serve(replies=answers(gold), faults=[400] * 8) as srv:
        arms = make_arms([srv.model("m")], ["plain"], [])
        problems = load_jsonl(tmp_path / "q.jsonl")
        run_bench(problems, arms, out, concurrency=1, max_errors_in_a_row=3)
        rows = read_results(out / "results.jsonl")
        # the worker may have taken one more problem before the third error was counted
        assert len(rows) in (3, 4) and all(r["stop_reason"] == "error" for r in rows)
        srv.faults.clear()
        result = invoke("-d", str(tmp_path / "q.jsonl"), "-m", srv.model("m"), "-s", "plain", "--out", str(out),
                        "--retry-errors")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())["arms"]
    assert summary[0]["n"] == 8 and summary[0]["correct"] == 8 and summary[0]["errors"] == 0


def test_report_table_json_and_plot(tmp_path):
    """Two models x one strategy x two budgets: four arms with the right n, accuracy and Wilson CI."""
    gold = write_problems(tmp_path / "q.jsonl", 20)
    out = tmp_path / "out"
    with serve(replies=answers(gold), latency=0.01) as good, \
            serve(replies=answers(gold, lambda i: i % 2 == 0), latency=0.01) as half:
        result = invoke("-d", str(tmp_path / "q.jsonl"), "-m", good.model("gpt-4o-mini"), "-m",
                        half.model("gpt-4o"), "-s", "plain", "-b", "calls=1", "-b", "tokens=5000,usd=1",
                        "-c", "8", "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads((out / "summary.json").read_text())
    assert report["problems"] == 20 and len(report["arms"]) == 4
    for arm in report["arms"]:
        correct = 20 if "gpt-4o-mini" in arm["model"] else 10
        lo, hi = wilson(correct, 20)
        assert (arm["n"], arm["correct"]) == (20, correct)
        assert arm["ci95"] == pytest.approx([lo, hi])
        assert arm["usd_per_problem"] > 0 and arm["mean_total_tokens"] > 0
        assert arm["stop_reasons"] == {"answered": 20}
    table = (out / "summary.md").read_text()
    lo, hi = wilson(10, 20)
    assert f"| 20 | 50.0% ({100 * lo:.1f}–{100 * hi:.1f}) |" in table
    assert "| calls=1 |" in table and "| tokens=5000,usd=1 |" in table
    png = (out / "scaling.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert table.split("\n| model")[1].split("\n\n")[0] in result.output  # the table is printed too

    for name in ("summary.md", "summary.json", "scaling.png"):
        (out / name).unlink()
    again = invoke("report", str(out))
    assert again.exit_code == 0, again.output
    assert (out / "scaling.png").stat().st_size > 10_000
    assert json.loads((out / "summary.json").read_text())["arms"] == report["arms"]


def test_diff_two_runs_and_two_arms(tmp_path):
    gold = write_problems(tmp_path / "q.jsonl", 30)
    runs = {}
    for name, right in (("a", lambda i: i % 2 == 0), ("b", lambda i: i % 3 == 0)):
        with serve(replies=answers(gold, right)) as srv:
            result = invoke("-d", str(tmp_path / "q.jsonl"), "-m", srv.model("m"), "-s", "plain",
                            "--out", str(tmp_path / name), "--no-trajectories")
            assert result.exit_code == 0, result.output
            runs[name] = srv.model("m")
    assert not (tmp_path / "a" / "trajectories").exists()
    assert all(r["trajectory"] is None for r in read_results(tmp_path / "a" / "results.jsonl"))
    # right in A (even), wrong in B (not a multiple of 3): 10; wrong in A, right in B (odd multiples of 3): 5
    result = invoke("diff", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    assert "shared problems: 30" in result.output
    assert "right -> wrong (A right, B wrong): 10: sum/" in result.output
    assert "wrong -> right (A wrong, B right): 5: sum/3, sum/9, sum/15, sum/21, sum/27" in result.output
    assert f"McNemar: b=10 c=5, exact two-sided p = {mcnemar(10, 5):.4g}" in result.output
    assert mcnemar(10, 5) == pytest.approx(0.3018, abs=1e-4)

    both = tmp_path / "both"  # two arms of one run
    both.mkdir()
    lines = (tmp_path / "a" / "results.jsonl").read_text() + (tmp_path / "b" / "results.jsonl").read_text()
    (both / "results.jsonl").write_text(lines)
    result = invoke("diff", str(both), "--a", runs["a"], "--b", runs["b"], "--show", "2")
    assert result.exit_code == 0, result.output
    assert "right -> wrong (A right, B wrong): 10: sum/" in result.output and "… and 8 more" in result.output
    ambiguous = invoke("diff", str(both), "--a", "127.0.0.1", "--b", runs["b"])
    assert ambiguous.exit_code == 1 and "matches several arms" in ambiguous.output


def test_skip_solves_a_later_part_of_the_same_draw_and_a_full_run_resumes_around_it(tmp_path):
    from orchestrator.bench.datasets import load_dataset

    gold = write_problems(tmp_path / "q.jsonl", 20)
    draw = [p.id for p in load_dataset(str(tmp_path / "q.jsonl"), limit=10, seed=0)]
    out = tmp_path / "out"
    with serve(replies=answers(gold)) as srv:
        args = ("-d", str(tmp_path / "q.jsonl"), "-m", srv.model("m"), "-s", "plain", "-n", "10", "--out", str(out))
        assert invoke(*args, "--skip", "6").exit_code == 0
        assert sorted(r["problem_id"] for r in read_results(out / "results.jsonl")) == sorted(draw[6:])
        assert invoke(*args).exit_code == 0
        assert len(srv.posts()) == 10  # the full run solved only the six it did not have
    assert sorted(r["problem_id"] for r in read_results(out / "results.jsonl")) == sorted(draw)


def test_bad_input_is_a_clear_error(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n')
    q, out = str(tmp_path / "q.jsonl"), str(tmp_path / "out")
    cases = [
        (["-d", "nosuch", "-m", "http://127.0.0.1:9/v1#m", "--out", out], 1, "unknown dataset 'nosuch'"),
        (["-d", q, "-m", "m", "-b", "tokens=lots", "--out", out], 2, "tokens must be a number"),
        (["-d", q, "-m", "m", "-b", "speed=3", "--out", out], 2, "expected KEY=VALUE pairs"),
        (["-d", q, "-m", "m", "-s", "nosuch", "--out", out], 2, "unknown strategy 'nosuch'"),
        (["-d", q, "-m", "m", "-s", "nosuch:samples=3", "--out", out], 2, "unknown strategy 'nosuch'"),
        (["-d", q, "-m", "m", "-s", "chain:verify_by=maybe", "--out", out], 2, "bad strategy 'chain:verify_by=maybe'"),
        (["-d", q, "--out", out], 2, "missing -m/--model"),
        (["-d", str(tmp_path / "missing.jsonl"), "-m", "m", "--out", out], 1, "no such file"),
        (["report", str(tmp_path)], 1, "holds no results.jsonl"),
        (["-d", q, "-m", "http://127.0.0.1:9/v1#m", "--skip", "1", "--out", out], 1, "--skip 1 leaves none of the 1"),
    ]
    for args, code, message in cases:
        result = invoke(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
    (tmp_path / "twice.jsonl").write_text('{"id": "a", "question": "1+1?", "answer": "2"}\n' * 2)
    result = invoke("-d", str(tmp_path / "twice.jsonl"), "-m", "http://127.0.0.1:9/v1#m", "--out", out)
    assert result.exit_code == 1 and "problem ids must be unique; repeated: a" in result.output
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / "run.json").write_text(json.dumps({"dataset": "gsm8k", "seed": 0}))
    result = invoke("-d", q, "-m", "m", "--out", out)
    assert result.exit_code == 1 and "holds a run with dataset 'gsm8k'" in result.output



def test_a_router_config_spreads_the_benchmark_over_replicas(tmp_path):
    """`-m router/CONFIG.yaml`: one arm, its calls shared by two OpenAI-compatible replicas (as two vLLMs)."""
    gold = write_problems(tmp_path / "q.jsonl", 24)
    with serve(replies=answers(gold), latency=0.05) as one, serve(replies=answers(gold), latency=0.05) as two:
        config = tmp_path / "replicas.yaml"
        config.write_text(
            "model_list:\n"
            + "".join(f"  - model_name: pool\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
                      f"      api_base: {srv.base_url}\n      api_key: none\n" for srv in (one, two))
            + "router_settings:\n  routing_strategy: simple-shuffle\n"
        )
        result = invoke("-d", str(tmp_path / "q.jsonl"), "-m", f"router/{config}", "-s", "plain", "-c", "8",
                        "--out", str(tmp_path / "out"))
        served = len(one.posts()), len(two.posts())
    assert result.exit_code == 0, result.output
    assert sum(served) == 24 and min(served) > 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["arms"]
    assert summary[0]["correct"] == 24 and summary[0]["usd_per_problem"] > 0


def test_the_manifest_keeps_every_command_that_added_to_the_folder(tmp_path):
    from orchestrator.bench.arms import make_arms, read_manifest, write_manifest

    [arm] = make_arms(["fake/x"], ["plain"], [])
    write_manifest(tmp_path, "gsm8k", 0, 5, [arm], ["a"], command="cmd one")
    write_manifest(tmp_path, "gsm8k", 0, 5, [arm], ["b"], command="cmd two")
    write_manifest(tmp_path, "gsm8k", 0, 5, [arm], ["b"], command="cmd one")  # a resume adds nothing
    manifest = read_manifest(tmp_path)
    assert manifest["command"] == "cmd one\ncmd two" and manifest["problem_ids"] == ["a", "b"]
    write_manifest(tmp_path, "gsm8k", 0, 10, [arm], ["c"])
    assert read_manifest(tmp_path)["limit"] == 10
    write_manifest(tmp_path, "gsm8k", 0, 5, [arm], ["a"])  # a narrower command keeps the widest limit
    assert read_manifest(tmp_path)["limit"] == 10
    write_manifest(tmp_path, "gsm8k", 0, None, [arm], ["d"])
    write_manifest(tmp_path, "gsm8k", 0, 5, [arm], ["a"])
    assert read_manifest(tmp_path)["limit"] is None  # every problem, once any command took them all


def test_a_failed_solve_is_recorded_with_what_it_spent(tmp_path):
    """A solve that raises after some calls (here the server goes away on the second) is an error row that
    still counts the tokens and calls it spent, and names its trajectory."""
    from orchestrator import Reasoner, ScriptedModel
    from orchestrator.bench.arms import Arm
    from orchestrator.bench.datasets import Problem
    from orchestrator.bench.runner import solve_one

    def gone(messages):
        raise ConnectionError("server went away")

    reasoner = Reasoner(ScriptedModel(["Step 1: count the apples.", gone]), "chain", runs_dir=tmp_path,
                        config=ReasonConfig(reflect=False))
    row = solve_one(reasoner, Arm("fake/scripted", "chain"), Problem("p1", "What is 3 + 6?", "9", "math"), 0)
    assert row["stop_reason"] == "error" and "server went away" in row["error"] and row["correct"] is False
    assert row["calls"] == 1 and row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    assert Path(row["trajectory"]).is_file()
