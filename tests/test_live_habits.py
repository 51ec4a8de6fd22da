"""What a user watches while a run works: tokens streamed from every call of every phase (labelled by sample
when chains run at once), and the live view of vote / best-of-n: labels, a running tally, why it stopped,
and the call in flight. Against the fake OpenAI server on 127.0.0.1 and the scripted model."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

from fake_openai_server import serve
from rich.console import Console

from orchestrator import Reasoner, ScriptedModel
from orchestrator.cli.render import LiveView
from orchestrator.keys import ENV_VARS

Q = "What is 17 * 23?"
CHAIN = ["Step 1: 17 * 23 = 391.\nFinal answer: 391", "Correct.\nReward: 0.9", "391 is right. Verdict: CORRECT"]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def answers(*values: object) -> list[str]:
    return [f"Step 1: add.\nFinal answer: {v}" for v in values]


# --- 10: token streaming ----------------------------------------------------------------------------------
def test_every_call_of_every_phase_streams_from_a_remote_model():
    with serve(replies=CHAIN) as srv:
        reasoner = Reasoner(srv.model("m"), "chain", stream_tokens=True, save_trajectory=False)
        events = list(reasoner.stream(Q))
        assert all(r.body.get("stream") for r in srv.posts())
    tokens = [p for k, p in events if k == "token"]
    phases = {t.phase for t in tokens}
    assert phases >= {"think", "reflect", "verify"}
    for phase in ("think", "reflect", "verify"):
        step = next(p for k, p in events if k == "step" and p.kind == phase)
        assert "".join(t for t in tokens if t.phase == phase).strip() == step.text.strip()


def test_chains_that_run_at_once_stream_labelled_by_sample():
    with serve(replies=answers(9), latency=0.05) as srv:
        reasoner = Reasoner(srv.model("m"), "vote", stream_tokens=True, concurrency=4, save_trajectory=False,
                            strategy_options={"samples": 4, "rule": "none"})
        events = list(reasoner.stream(Q))
    tokens = [p for k, p in events if k == "token"]
    assert {t.sample for t in tokens} == {0, 1, 2, 3}
    for sample in range(4):
        assert "".join(t for t in tokens if t.sample == sample).strip() == answers(9)[0]


def test_a_beam_and_a_judge_stream_their_calls_too():
    beam = ["Step 1: 17*20 = 340.", "Reward: 0.9", "Step 2: 340+51 = 391.\nFinal answer: 391", "Reward: 0.9",
            "Verdict: CORRECT"]
    with serve(replies=beam) as srv:
        events = list(Reasoner(srv.model("m"), "beam", stream_tokens=True, save_trajectory=False,
                               strategy_options={"width": 1, "branch": 1}).stream(Q))
    assert {p.phase for k, p in events if k == "token"} >= {"think", "reflect", "verify"}
    assert [k for k, _ in events].count("step") == 5  # each step once, though its node's run made it
    with serve(replies=[*CHAIN, *CHAIN, "Score: 0.9"]) as srv:
        events = list(Reasoner(srv.model("m"), "best-of-n", stream_tokens=True, save_trajectory=False,
                               concurrency=1, strategy_options={"samples": 2, "scorer": "judge"}).stream(Q))
    assert "judge" in {p.phase for k, p in events if k == "token"}


def test_the_streaming_example_streams_what_it_says():
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS.values()}
    with serve(replies=CHAIN, chunk_delay=0.001) as srv:
        done = subprocess.run([sys.executable, str(EXAMPLES / "streaming_app.py"), "--model", srv.model("m"),
                               "--strategy", "chain", "--no-tools", Q],
                              env=env, check=False,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # each step's text is printed as it streams, before the line that reports the step
    assert out.index("391.") < out.index("step 0: think") < out.index("Reward: 0.9") < out.index("step 1: reflect")
    assert out.index("step 1: reflect") < out.index("Verdict: CORRECT") < out.index("step 2: verify")


# --- 11: the live view of several samples -----------------------------------------------------------------
def watch(model, strategy: str, options: dict, concurrency: int = 1) -> tuple[str, LiveView]:
    out = StringIO()
    view = LiveView(model.name, strategy, console=Console(file=out, width=300))
    with view:
        result = Reasoner(model, strategy, strategy_options=options, concurrency=concurrency,
                          save_trajectory=False).solve(Q, on_event=view.on_event)
    view.summary(result)
    return out.getvalue(), view


def test_a_vote_labels_steps_by_sample_keeps_a_running_tally_and_says_why_it_stopped():
    text, _ = watch(ScriptedModel(answers(9, 8, 9, 9)), "vote", {"samples": 4, "rule": "none"})
    assert all(f"[{s}] think" in text for s in range(4))
    assert "[1] done · tally: 9 ×1, 8 ×1" in text and "[3] done · tally: 9 ×3, 8 ×1" in text
    closing = next(line for line in text.splitlines() if line.startswith("limit"))
    assert closing.startswith("limit: all 4 samples ran, no stable majority sooner, P = 0.")
    assert "votes 9 ×3, 8 ×1" in closing


def test_a_vote_that_stops_early_says_the_majority_is_stable_with_its_confidence():
    text, _ = watch(ScriptedModel(answers(9), repeat_last=True), "vote", {"samples": 8})
    closing = next(line for line in text.splitlines() if line.startswith("consensus"))
    assert "consensus: majority stable (beta rule), P = 0.9" in closing and "of 8 samples" in closing


def test_best_of_n_labels_its_samples_and_names_its_stop():
    script = [CHAIN[0], CHAIN[1], CHAIN[2]] * 3
    text, _ = watch(ScriptedModel(script), "best-of-n", {"samples": 2})
    assert "[0] think" in text and "[1] think" in text and "tally: 391 ×2" in text
    assert any(line.startswith(("verified: an answer passed its check", "limit:")) for line in text.splitlines())


def test_the_footer_names_the_call_in_flight_not_the_last_step():
    seen: list[str] = []
    view: LiveView | None = None

    def reply(messages):
        assert view is not None
        seen.append(view.calls_text())
        return CHAIN[len(seen) - 1] if len(seen) <= 3 else CHAIN[-1]

    view = LiveView("fake", "chain", console=Console(file=StringIO()))
    with view:
        Reasoner(ScriptedModel(reply), "chain", save_trajectory=False).solve(Q, on_event=view.on_event)
    assert seen[:3] == ["think", "reflect", "verify"]
    assert view.calls_text() == "waiting"

    seen.clear()
    view = LiveView("fake", "vote", console=Console(file=StringIO()))
    with view:
        Reasoner(ScriptedModel(reply), "vote", strategy_options={"samples": 2, "rule": "none"},
                 save_trajectory=False, concurrency=1).solve(Q, on_event=view.on_event)
    assert seen[:2] == ["[0] think", "[1] think"]


def test_a_beam_labels_each_step_by_the_node_it_grew():
    script = ["Step 1: 17*20 = 340.", "Reward: 0.9", "Step 2: 340+51 = 391.\nFinal answer: 391", "Reward: 0.9",
              "Verdict: CORRECT"]
    text, _ = watch(ScriptedModel(script, repeat_last=True), "beam", {"width": 2, "branch": 2})
    labels = [line.split("]")[0] + "]" for line in text.splitlines() if line.startswith("[")]
    assert labels[:2] == ["[1]", "[1]"] and len(set(labels)) >= 2  # node 1's think and reflect, then a child
    assert "verified: an answer passed its check, 2 of 24 nodes" in text
