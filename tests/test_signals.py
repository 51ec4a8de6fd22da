"""Ctrl-C and SIGTERM during model calls that hang (issue #23 items 12-13, issue #22 item 3), through the real
console script against the fake server on 127.0.0.1: the process exits 130 within a second or two, prints
the best answer so far, starts no new request, and every trajectory (each vote sample's too) ends with a
final record; a second signal exits at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai_server import serve

REASON = Path(sys.executable).parent / "reason"
Q = "What is 2+2?"
ANSWER = "Step 1: 2 + 2 = 4. The answer is 4"


@pytest.fixture(autouse=True)
def no_server_key(monkeypatch):
    monkeypatch.delenv("REASON_SERVER_API_KEY", raising=False)


def start(srv, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(REASON), "-m", srv.model("m"), "--json", "--runs-dir", str(tmp_path), *args, Q],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_posts(srv, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(srv.posts()) < n:
        assert time.monotonic() < deadline, f"only {len(srv.posts())} requests arrived"
        time.sleep(0.05)


def interrupt(proc: subprocess.Popen[str], *signals: int) -> tuple[float, str, str]:
    """Send `signals` (50 ms apart); the seconds until the process ended, and its output."""
    sent = time.monotonic()
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.05)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("still running 20 s after the signal")
    return time.monotonic() - sent, out, err


def ends(folder: Path) -> list[dict]:
    return [json.loads(p.read_text().splitlines()[-1]) for p in sorted(folder.rglob("*.jsonl"))]


def hanging(srv) -> object:
    return lambda messages: (srv.stopping.wait(60), "too late")[1]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_vote_cancels_its_calls_and_prints_the_best_answer_so_far(sig, tmp_path):
    with serve() as srv:
        srv.replies = [ANSWER, hanging(srv)]  # the first request answers, the others hang
        proc = start(srv, tmp_path, "--strategy", "vote", "-S", "samples", "4", "-S", "rule", "none")
        wait_for_posts(srv, 4)
        time.sleep(0.5)  # the answered sample is counted
        seconds, out, err = interrupt(proc, sig)
        sent = len(srv.posts())
        time.sleep(0.5)
        assert len(srv.posts()) == sent == 4  # no request after the signal
    assert proc.returncode == 130, err
    assert seconds < 2.5
    result = json.loads(out)  # one JSON object: the partial result
    assert (result["stop_reason"], result["answer"]) == ("interrupted", "4")
    assert "interrupted" in err.strip().splitlines()[-1] and "Traceback" not in err
    samples = ends(tmp_path)
    assert len(samples) == 4 and all(e["type"] == "end" for e in samples)
    assert sorted(e["stop_reason"] for e in samples) == ["answered"] + ["interrupted"] * 3


def test_sigterm_during_a_hung_chain_call_ends_its_trajectory_interrupted(tmp_path):
    with serve() as srv:
        srv.replies = hanging(srv)
        proc = start(srv, tmp_path)
        wait_for_posts(srv, 1)
        seconds, out, err = interrupt(proc, signal.SIGTERM)
    assert proc.returncode == 130 and seconds < 2.5, err
    assert json.loads(out)["stop_reason"] == "interrupted"
    (end,) = ends(tmp_path)
    assert (end["type"], end["stop_reason"], end["answer"]) == ("end", "interrupted", None)


def test_a_second_ctrl_c_exits_at_once(tmp_path):
    with serve() as srv:
        srv.replies = hanging(srv)
        proc = start(srv, tmp_path, "--strategy", "vote", "-S", "samples", "3")
        wait_for_posts(srv, 1)
        seconds, _, err = interrupt(proc, signal.SIGINT, signal.SIGINT)
    # 130 from us, or (a second signal as the interpreter shuts down) death by SIGINT, which a shell reports as 130
    assert proc.returncode in (130, -signal.SIGINT) and seconds < 1.5, err


def test_ctrl_c_during_a_chain_prints_the_answer_it_had_proposed(tmp_path):
    with serve() as srv:
        srv.replies = ["Step 1: 2 + 2 = 4.\nFinal answer: 4", hanging(srv)]  # the review hangs
        proc = start(srv, tmp_path)
        wait_for_posts(srv, 2)
        seconds, out, err = interrupt(proc, signal.SIGINT)
    assert proc.returncode == 130 and seconds < 2.5, err
    result = json.loads(out)
    assert (result["stop_reason"], result["answer"], result["exit_code"]) == ("interrupted", "4", 130)
    assert "best answer so far" in err.strip().splitlines()[-1]
