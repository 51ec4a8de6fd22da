"""Every example runs as a script: offline on the small embedded model within a tight budget (slow), and
against the fake OpenAI-compatible server on 127.0.0.1; `hello.py` on the scripted model alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai_server import serve

from orchestrator.keys import ENV_VARS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SMALL = ["--model", "local/smollm2-135m", "--max-calls", "1", "--max-tokens-per-call", "32"]


def run_example(name: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS.values()}
    # One llama.cpp thread: on a busy machine, spinning threads make a 2-thread run up to 10x slower.
    env.update(REASON_LOCAL_THREADS="1")
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=env, capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def server_reply(messages) -> str:
    """What a compliant model would write to each of the state machine's prompts."""
    asked = messages[-1]["content"]
    if "Verdict:" in asked:
        return "9 of 17 stay. Verdict: CORRECT"
    if "Reward:" in asked:
        return "Each step holds. Reward: 0.9"
    return "Final answer: 9"


def trajectory(out: str) -> Path:
    line = next(line for line in out.splitlines() if line.startswith("trajectory: "))
    path = Path(line.removeprefix("trajectory: "))
    assert path.exists() and path.is_relative_to(os.environ["REASON_RUNS_DIR"])  # a file, or a folder of samples
    return path


@pytest.mark.slow
def test_quickstart():
    out = run_example("quickstart.py", *SMALL)
    assert "question: A farmer has 17 sheep" in out
    assert "stop reason: budget_calls" in out  # one call allowed: the budget stopped it
    assert "step 0: think" in out and "usage: 1 calls" in out
    trajectory(out)


@pytest.mark.slow
def test_custom_prompts_override_one_template():
    out = run_example("custom_prompts.py", *SMALL)
    assert "one fact or one calculation per step" in out  # from examples/prompts/think.j2
    assert "Final answer: <number>" in out
    trajectory(out)


@pytest.mark.slow
def test_streaming_app_prints_tokens_then_steps():
    out = run_example("streaming_app.py", *SMALL, "What is 3 + 5?")
    assert "] step 0: think" in out and "answer:" in out
    before_step = out.split("] step 0: think")[0]
    assert before_step.strip()  # the thinking was streamed before the step was reported
    trajectory(out)


@pytest.mark.slow
def test_local_vs_api_skips_the_api_politely_without_a_key():
    out = run_example("local_vs_api.py", *SMALL)
    assert "local/smollm2-135m" in out
    assert out.count("budget_calls") == 2  # both questions, asked concurrently
    assert "skipping openai/gpt-4o-mini: no API key for openai" in out


def test_hello_runs_on_the_scripted_model_alone():
    out = run_example("hello.py")
    assert "answer: 9 (stop reason: answered)" in out
    assert "step 2: reflect: Sound. Reward: 0.9" in out
    trajectory(out)


@pytest.mark.parametrize("name, args", [("quickstart.py", []), ("custom_prompts.py", []),
                                        ("streaming_app.py", ["How", "many", "sheep?"])])
def test_examples_run_against_an_openai_compatible_server(name, args):
    with serve(replies=server_reply) as srv:
        out = run_example(name, "--model", srv.model("m"), "--max-calls", "6", *args)
    assert re.search(r"^answer: 9\b", out, re.MULTILINE), out
    trajectory(out)
    assert srv.requests  # the example's model calls went to the server


def test_local_vs_api_compares_two_servers_and_skips_an_api_without_a_key():
    with serve(replies=server_reply) as srv:
        out = run_example("local_vs_api.py", "--model", srv.model("m"), "--api-model", "openai/gpt-4o-mini")
    assert out.count("answer=9") == 2  # both questions, asked concurrently
    assert "skipping openai/gpt-4o-mini: no API key for openai" in out
