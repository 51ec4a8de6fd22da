"""Bad input to the CLI (issue #23 item 17) and `--json` on failures (issue #22 item 5), through the real
console script: each bad input is one `Error:` line with the documented exit code (2 usage, 1 an error),
never a traceback, and no model call; with `--json`, stdout is exactly one JSON object, `error` set."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai_server import serve

REASON = Path(sys.executable).parent / "reason"
Q = "What is 2+2?"


@pytest.fixture(autouse=True)
def no_server_key(monkeypatch):
    monkeypatch.delenv("REASON_SERVER_API_KEY", raising=False)


@pytest.fixture(scope="module")
def srv():
    with serve(replies=["Step 1: 2 + 2 = 4.\nFinal answer: 4"]) as s:
        yield s


def cli(*args: str | bytes, input: bytes | None = None, env: dict[str, str] | None = None):
    return subprocess.run([str(REASON), *args], input=input, capture_output=True, timeout=60, check=False,
                          stdin=None if input is not None else subprocess.DEVNULL, env={**os.environ, **(env or {})})


def one_error(done: subprocess.CompletedProcess[bytes], code: int, *words: str) -> str:
    err = done.stderr.decode(errors="replace")
    assert done.returncode == code, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def broken_prompts(tmp: Path) -> str:
    folder = tmp / "prompts"
    folder.mkdir()
    (folder / "think.j2").write_text("{% if %}never closed")
    return str(folder)


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--strategy", "vote", "-S", "samples", "abc"], 2, ["samples", "integer"]),
    (["--strategy", "vote", "-S", "temperature", "hot"], 2, ["temperature"]),
    (["--strategy", "vote", "-S", "chain", "x"], 2, ["chain"]),
    (["--strategy", "beam", "-S", "width", "0"], 2, ["width"]),
    (["--strategy", "beam", "-S", "width", "wide"], 2, ["width"]),
    (["--strategy", "vote", "-S", "sampels", "3"], 2, ["sampels", "did you mean 'samples'", "vote's options: samples"]),
    (["--strategy", "vote", "-S", "smaples", "3"], 2, ["did you mean 'samples'", "config: max_steps", "budget_usd"]),
    (["--strategy", "vote", "-S", "width", "3"], 2, ["vote has no setting 'width' (an option of beam)"]),
    (["--strategy", "beam", "-S", "samples", "3"], 2, ["beam has no setting 'samples'", "beam's options: width"]),
    (["--strategy", "vote", "-S", "max_attempts", "0"], 2, ["max_attempts"]),
    (["-S", "budget_usd", "-1"], 2, ["budget_usd", "positive"]),
    (["-o", "stream", "true"], 2, ["stream"]),
    (["--max-usd", "nan"], 2, ["above 0"]),
    (["--max-usd", "0"], 2, ["above 0"]),
    (["--max-tokens", "-5"], 2, ["above 0"]),
    (["--max-seconds", "0"], 2, ["above 0"]),
    (["--max-calls", "0"], 2, ["above 0"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_options_are_usage_errors_before_any_call(srv, args, code, words):
    before = len(srv.posts())
    one_error(cli("-m", srv.model("m"), *args, Q), code, *words)
    assert len(srv.posts()) == before  # no call was made


def test_S_sorts_config_fields_budgets_and_strategy_options(srv):
    from orchestrator import load_trajectory

    done = cli("-m", srv.model("m"), "--json", "-S", "max_attempts", "3", "-S", "budget_calls", "7",
               "-S", "temperature", "0.3", Q)  # chain has no options: all three are the run's config and budget
    header = load_trajectory(json.loads(done.stdout)["trajectory"])[0]
    assert (header["config"]["max_attempts"], header["config"]["temperature"]) == (3, 0.3), done.stderr
    assert header["budget"]["max_calls"] == 7
    done = cli("-m", srv.model("m"), "--json", "--strategy", "vote", "-S", "samples", "2", "-S", "rule", "none",
               "-S", "config.seed", "5", Q)
    out = json.loads(done.stdout)
    assert out["samples"] == {"used": 2, "allowed": 2}, done.stderr
    outcome = json.loads((Path(out["trajectory"]) / "outcome.json").read_text())
    assert outcome["options"] == {"samples": 2, "rule": "none"}
    assert load_trajectory(Path(out["trajectory"]) / "sample-000.jsonl")[0]["config"]["seed"] == 5


def test_reason_strategies_lists_every_option_with_its_default():
    from orchestrator.strategies.options import MODELS

    done = cli("strategies")
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    for strategy, model in MODELS.items():
        assert f"{strategy}: " in out
        for name in model.model_fields:
            assert f"  {name} (" in out, name
    assert "samples (int, default 8)" in out and "rule (beta|window|none, default beta)" in out
    assert "samples (int, default 6)" in out  # auto's own default, not vote's


def test_a_model_url_with_an_unterminated_ipv6_literal():
    one_error(cli("-m", "http://[::1/v1#m", Q), 1, "not a usable URL")


def test_a_runs_dir_under_a_regular_file(srv, tmp_path):
    (tmp_path / "file").write_text("x")
    one_error(cli("-m", srv.model("m"), "--runs-dir", str(tmp_path / "file" / "runs"), Q), 2, "--runs-dir")


def test_a_prompt_folder_with_a_broken_template(srv, tmp_path):
    before = len(srv.posts())
    one_error(cli("-m", srv.model("m"), "--prompts", broken_prompts(tmp_path), Q), 2, "think.j2", "line 1")
    assert len(srv.posts()) == before


@pytest.mark.parametrize("content", [None, "not a trajectory\n", '{"type": "step"}\n'],
                         ids=["missing", "text", "no-header"])
def test_replay_of_a_missing_or_non_trajectory_file(tmp_path, content):
    path = tmp_path / "run.jsonl"
    if content is not None:
        path.write_text(content)
    one_error(cli("-m", f"replay/{path}", Q), 1, "cannot replay")


def test_invalid_utf8_in_argv():
    one_error(cli(b"What is \xff\xfe?"), 2, "UTF-8")


def test_a_5mb_question_to_a_model_of_unknown_context_fails_before_the_call(srv):
    before = len(srv.posts())
    error = one_error(cli("-m", srv.model("m"), "-", input=b"w" * 5_000_000), 1, "5,000,000 characters",
                      "1,000,000")
    assert "context window" in error and len(srv.posts()) == before


# --- #22.5: --json is one JSON object, whatever happens ---------------------------------------------------
def only_json(done: subprocess.CompletedProcess[bytes]) -> dict:
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


def test_json_on_a_connection_error_is_one_object_with_the_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    done = cli("-m", f"http://127.0.0.1:{port}/v1#m", "--json", Q, env={"REASON_HTTP_RETRIES": "0"})
    out = only_json(done)
    assert done.returncode == 1 and out["answer"] is None
    assert out["stop_reason"] == "error" and "Connection" in out["error"]


def test_json_on_a_usage_error_is_one_object_with_the_error(srv):
    done = cli("-m", srv.model("m"), "--json", "--max-usd", "nan", Q)
    out = only_json(done)
    assert (done.returncode, out["exit_code"], out["answer"]) == (2, 2, None)
    assert "above 0" in out["error"]


def test_json_of_an_answer_has_the_documented_fields(srv):
    out = only_json(cli("-m", srv.model("m"), "--json", Q))
    documented = Path(__file__).parents[1].joinpath("docs", "output.md").read_text()
    for field in out:
        assert f"`{field}`" in documented, field
    assert out["error"] is None and out["answer"] == "4"
