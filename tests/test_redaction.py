"""Secrets are scrubbed from every text `reason` writes: model output, the live view, errors, trajectories.

The red-team case: a model server that echoes the key it was sent into its completion. The CLI runs as a real
subprocess against the fake OpenAI server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai_server import serve

from orchestrator import keys
from orchestrator.keys import REDACTED, StreamRedactor, add_secret, redact
from orchestrator.trajectory import Step, Trajectory

REASON = Path(sys.executable).parent / "reason"
HTTP_KEY = "http-key-0123456789abcdef"
STORED = "stored-openai-key-0123456789"
PROVIDER = "groq-env-key-0123456789abcd"
ECHO = (f"Sent {{api_key}}; I also know {STORED} and {PROVIDER}.\nStep 1: 2 + 2 = 4.\nFinal answer: 4\n"
        "Reward: 0.9\nVerdict: CORRECT")


def run_cli(tmp: Path, upstream, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"REASON_CONFIG_DIR": str(tmp / "config"), "REASON_RUNS_DIR": str(tmp / "runs"),
                "REASON_HTTP_API_KEY": HTTP_KEY, "GROQ_API_KEY": PROVIDER})
    (tmp / "config").mkdir(exist_ok=True)
    (tmp / "config" / "keys.json").write_text(json.dumps({"openai": STORED}))
    (tmp / "config" / "keys.json").chmod(0o600)
    return subprocess.run([str(REASON), "-m", upstream.model("m"), *args, "What is 2+2?"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("flags", [(), ("--json",), ("--show-thinking",)])
def test_a_key_echoed_by_the_model_reaches_no_output_and_no_trajectory(tmp_path, flags):
    with serve(replies=ECHO) as upstream:
        done = run_cli(tmp_path, upstream, *flags)
        assert upstream.posts()[0].headers["authorization"] == f"Bearer {HTTP_KEY}"  # sent, then echoed back
    runs = [p.read_text() for p in (tmp_path / "runs").rglob("*.jsonl")]
    assert runs and REDACTED in runs[0]
    for text in (done.stdout, done.stderr, *runs):
        for secret in (HTTP_KEY, STORED, PROVIDER):
            assert secret not in text


def test_a_key_split_across_streamed_tokens_is_caught(monkeypatch):
    monkeypatch.setattr(keys, "_seen", set())
    add_secret("split-secret-0123456789")
    out: list[str] = []
    stream = StreamRedactor(out.append)
    for token in ["The key", " is spl", "it-secret-01", "23456789", " and", " that", " is all."]:
        stream(token)
    stream.flush()
    text = "".join(out)
    assert text == f"The key is {REDACTED} and that is all." and "split" not in text
    assert out[:2] == ["The key", " is "] and out[-2:] == [" that", " is all."]  # other tokens pass as they came


def test_every_step_and_record_of_a_trajectory_is_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", "mistral-env-key-0123456789")
    path = tmp_path / "run.jsonl"
    trajectory = Trajectory(path, {"question": "leak mistral-env-key-0123456789 please"})
    step = trajectory.append(Step("act", "ran it", code="print(env)", observation="MISTRAL=mistral-env-key-0123456789",
                                  error="Bearer abcdefgh12345678"))
    trajectory.close({"stop_reason": "answered", "answer": "sk-proj-0123456789abcdefXYZ"})
    assert step.observation == f"MISTRAL={REDACTED}" and step.error == REDACTED  # the next prompt sees it clean
    text = path.read_text()
    assert "mistral-env-key" not in text and "abcdefgh1234" not in text and "sk-proj" not in text
    assert all(json.loads(line) for line in text.splitlines())  # still valid JSON, line by line


def test_the_serve_guard_key_is_a_known_secret(monkeypatch):
    monkeypatch.setattr(keys, "_guards", set())
    assert not keys.is_guard_key("guard-0123456789")
    add_secret("guard-0123456789", guard=True)
    assert keys.is_guard_key("guard-0123456789") and redact("x guard-0123456789 y") == f"x {REDACTED} y"
    monkeypatch.setenv("REASON_SERVE_API_KEY", "serve-env-key-0123456789")
    assert redact("serve-env-key-0123456789") == REDACTED


def test_a_model_without_a_key_passes_none_and_redaction_still_scrubs_the_rest():
    # a keyless server's refusal is redacted with `[model.api_key]`, which is [None] there
    assert redact("refused: sk-abcdefghijklmnopqrstuvwx", [None]) == f"refused: {REDACTED}"
    assert redact("nothing secret", [None, "short"]) == "nothing secret"
