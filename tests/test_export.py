"""`reason export` on trajectories the scripted model writes through the real strategies and bench runner:
records checked field by field, loaded with the `datasets` library, split by question, deduplicated and
scrubbed; a `steps` label computed on a hand-made beam tree; the CLI's exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from orchestrator import Reasoner, ReasonConfig, ScriptedModel
from orchestrator.bench.arms import Arm
from orchestrator.bench.datasets import Problem
from orchestrator.bench.runner import ResultsFile, solve_one
from orchestrator.export import export, split_path, steps_records
from orchestrator.solves import OUTCOME, judge, load_solve, tree_from_steps
from orchestrator.trajectory import Call, Step, Trajectory

CLI = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
APPLES = "Tom has 3 apples and buys 6 more. How many apples does he have?"
KEY = "sk-proj-abcdefghijklmnopqrstuvwx"


def question(i: int) -> str:
    return f"What is {i} plus {i + 1}?"


def sums_model() -> ScriptedModel:
    """Per question, the second of every three samples is wrong (one wrong, two right in a 3-sample vote)."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def reply(messages):
        text = messages[1]["content"]
        i = int(text.split()[2])
        with lock:
            k = seen[text] = seen.get(text, -1) + 1
        answer = 2 * i + 1 if k % 3 != 1 else 2 * i + 2
        return f"Step 1: {i} + {i + 1}. Key {KEY}.\nFinal answer: {answer}"

    return ScriptedModel(reply)


def make_bench(folder: Path, n: int = 8) -> Path:
    """A bench folder as `reason bench` writes it: a 3-sample vote per question through `solve_one`."""
    arm = Arm("fake/scripted", "vote", strategy_options={"samples": 3, "rule": "none"})
    reasoner = Reasoner(sums_model(), "vote", config=ReasonConfig(kind="math", seed=0),
                        runs_dir=folder / "trajectories", strategy_options=arm.strategy_options)
    results = ResultsFile(folder / "results.jsonl")
    for i in range(n):
        results.append(solve_one(reasoner, arm, Problem(f"sums/{i}", question(i), str(2 * i + 1), "math"), 0))
    results.close()
    (folder / "run.json").write_text(json.dumps({"dataset": "sums", "seed": 0}))
    return folder


def reason(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, check=False)


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def bench(tmp_path):
    return make_bench(tmp_path / "bench")


def test_sft_keeps_right_chains_once_each_with_their_provenance(bench, tmp_path):
    out = tmp_path / "sft.jsonl"
    stats = export([bench], "sft", out, test_share=0)
    records = read(out)
    # 8 questions x 3 samples: 16 right, 8 wrong; the two right samples of a question are the same text
    assert (stats.chains, stats.judged, stats.right) == (24, 24, 16)
    assert stats.examples == len(records) == 8 and stats.duplicates == 8 and stats.questions == 8
    first = next(r for r in records if r["messages"][0]["content"] == question(0))
    assert first["messages"][0] == {"role": "user", "content": question(0)}
    assert first["messages"][1]["role"] == "assistant"
    assert first["messages"][1]["content"] == "Step 1: 0 + 1. Key [REDACTED].\nFinal answer: 1"
    assert first["answer"] == "1"
    p = first["provenance"]
    assert Path(p["trajectory"]).is_file() and Path(p["trajectory"]).name == f"sample-{p['sample']:03d}.jsonl"
    assert (p["model"], p["strategy"], p["seed"], p["dataset"], p["problem_id"], p["judged_by"]) == (
        "fake/scripted", "vote", 0, "sums", "sums/0", "gold")
    assert p["arm"] == "fake/scripted|vote|" and p["node"] is None
    text = out.read_text()
    assert KEY not in text, text[text.find(KEY) - 200:]
    assert stats.tokens == 8 * 10  # the scripted model counts words: 10 a reply
    only = tmp_path / "answers.jsonl"
    export([bench], "sft", only, reasoning=False, test_share=0)
    assert {r["messages"][1]["content"] for r in read(only)} == {str(2 * i + 1) for i in range(8)}


def test_preference_pairs_a_right_and_a_wrong_chain_of_the_same_question(bench, tmp_path):
    out = tmp_path / "pairs.jsonl"
    stats = export([bench], "preference", out, test_share=0, redact=[r"Key \S+\."])
    records = read(out)
    assert len(records) == stats.examples == 8  # the second pair repeats the first: dropped
    r = next(r for r in records if r["prompt"][0]["content"] == question(3))
    assert r["prompt"] == [{"role": "user", "content": question(3)}]
    assert r["chosen"] == [{"role": "assistant", "content": "Step 1: 3 + 4. [PRIVATE]\nFinal answer: 7"}]
    assert r["rejected"] == [{"role": "assistant", "content": "Step 1: 3 + 4. [PRIVATE]\nFinal answer: 8"}]
    assert (r["chosen_answer"], r["rejected_answer"]) == ("7", "8")
    assert r["provenance"]["chosen"]["sample"] != r["provenance"]["rejected"]["sample"]
    assert r["provenance"]["rejected"]["judged_by"] == "gold" and r["provenance"]["chosen"]["problem_id"] == "sums/3"


def test_no_question_sits_in_both_splits_and_the_splits_load_with_datasets(bench, tmp_path):
    datasets = pytest.importorskip("datasets", reason="the export extra: pip install '.[export]'")
    for fmt in ("sft", "preference", "steps"):
        out = tmp_path / f"{fmt}.jsonl"
        stats = export([bench], fmt, out, test_share=0.5)
        train, test = read(out), read(split_path(out))
        key = "messages" if fmt == "sft" else "prompt"

        def q(r, key=key):
            return r[key] if isinstance(r[key], str) else r[key][0]["content"]

        assert train and test and len(train) + len(test) == stats.examples
        assert not {q(r) for r in train} & {q(r) for r in test}
        loaded = datasets.load_dataset("json", data_files={"train": str(out), "test": str(split_path(out))})
        assert (loaded["train"].num_rows, loaded["test"].num_rows) == (stats.train, stats.test)
        row = loaded["train"][0]
        assert row["provenance"]["dataset"] == "sums" if fmt != "preference" else row["provenance"]["chosen"]
        if fmt == "steps":
            assert row["labels"] == [row["correct"]] and row["values"] == [1.0 if row["correct"] else 0.0]


# --- a hand-made beam tree ------------------------------------------------------------------------------
def step(kind: str, text: str, reward: float | None = None, answer: str | None = None,
         prompt: list[str] = ()) -> Step:
    """A step as the beam records it; `prompt`: the assistant turns its call saw (its path so far)."""
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    for turn in prompt:
        messages += [{"role": "assistant", "content": turn}, {"role": "user", "content": "go on"}]
    call = Call(messages, text, 10, len(text.split()), 0, 0.0, 0.0)
    return Step(kind=kind, text=text, reward=reward, answer=answer, normalized=answer, calls=[call])


def hand_made_beam(folder: Path) -> Path:
    """node 1 (A, 0.9) -> node 3 (answer 9, right) and node 4 (answer 8, wrong); node 2 (B, 0.3, pruned) ->
    node 5 (answer 9, right)."""
    a, b = "Step 1: path A.", "Step 1: path B."
    nodes = [(1, 0, [step("think", a), step("reflect", "ok", 0.9)]),
             (2, 0, [step("think", b), step("reflect", "meh", 0.3)]),
             (3, 1, [step("think", "Step 2: A, so 9.", answer="9", prompt=[a, "ok"]),
                     step("reflect", "good", 0.95, prompt=[a, "ok", "Step 2: A, so 9."])]),
             (4, 1, [step("think", "Step 2: A, so 8.", answer="8", prompt=[a, "ok"]),
                     step("reflect", "fine", 0.85, prompt=[a, "ok", "Step 2: A, so 8."])]),
             (5, 2, [step("think", "Step 2: B, so 9.", answer="9", prompt=[b, "meh"]),
                     step("reflect", "good", 0.9, prompt=[b, "meh", "Step 2: B, so 9."])])]
    trajectory = Trajectory(folder / "sample-000.jsonl", {"question": "q?", "kind": "math", "model": "fake/x",
                                                          "strategy": "beam", "beam": {"width": 2}})
    tree = []
    for node_id, parent, steps in nodes:
        for s in steps:
            trajectory.append(s)
        tree.append({"id": node_id, "parent": parent, "depth": 1 if parent == 0 else 2,
                     "score": steps[-1].reward, "answer": steps[0].answer, "steps": [s.index for s in steps],
                     "abandoned": node_id in (2, 4, 5)})
    trajectory.mark_abandoned([s.index for n, _, steps in nodes if n in (2, 4, 5) for s in steps])
    trajectory.close({"stop_reason": "answered", "answer": "9", "normalized": "9"})
    (folder / OUTCOME).write_text(json.dumps({"details": {"tree": tree}, "stop_reason": "answered", "answer": "9"}))
    return folder


def test_a_step_label_is_the_share_of_the_chains_through_it_that_end_right(tmp_path):
    solve = load_solve(hand_made_beam(tmp_path / "beam"), row={"gold": "9", "problem_id": "p", "seed": 3})
    judge(solve, "gold")
    assert [(c.node, c.correct) for c in solve.chains] == [(3, True), (4, False), (5, True)]
    records = {r["provenance"]["node"]: r for r in steps_records([solve])}
    right, wrong, other = records[3], records[4], records[5]
    assert right["completions"] == ["Step 1: path A.", "Step 2: A, so 9."]
    assert right["values"] == [0.5, 1.0] and right["labels"] == [True, True] and right["rollouts"] == [2, 1]
    assert wrong["values"] == [0.5, 0.0] and wrong["labels"] == [True, False]
    assert other["values"] == [1.0, 1.0] and other["rollouts"] == [1, 1]
    assert right["rewards"] == [0.9, 0.95] and other["rewards"] == [0.3, 0.9]  # the model's own, kept apart
    assert right["kinds"] == ["think", "think"] and right["provenance"]["seed"] == 3
    # without the saved tree the same parents are read from the prompts
    (tmp_path / "beam" / OUTCOME).unlink()
    read_back = tree_from_steps(load_solve(tmp_path / "beam").steps)
    assert [(n.id, n.parent, n.answer, n.abandoned) for n in read_back] == [
        (1, 0, None, False), (2, 0, None, True), (3, 1, "9", False), (4, 1, "8", True), (5, 2, "9", True)]


def test_a_real_beam_run_exports_step_labels_and_keeps_its_tree(tmp_path):
    script = ["Step 1: 3 apples to start.", "Good start.\nReward: 0.9",
              "Step 1: 3 - 6 = -3.", "Wrong operation.\nReward: 0.2",
              "Step 2: 3 + 6 = 9.\nFinal answer: 9", "Right.\nReward: 0.95", "Verdict: CORRECT"]
    result = Reasoner(ScriptedModel(script), "beam", strategy_options={"width": 2, "branch": 2},
                      runs_dir=tmp_path, concurrency=1).solve(APPLES)
    saved = json.loads((Path(result.trajectory_path) / OUTCOME).read_text())
    assert saved["details"]["tree"] == result.details["tree"] and saved["stop_reason"] == "verified"
    solve = load_solve(result.trajectory_path)
    assert [(n.id, n.parent) for n in tree_from_steps(solve.steps)] == [(n.id, n.parent) for n in solve.tree]
    judge(solve, "agreement")  # one answered node: no majority to agree with
    assert solve.chains[0].correct is None
    judge(solve, "check")  # the model's own verdict is not an independent check
    assert solve.chains[0].correct is None


def test_agreement_judges_by_a_strict_majority_without_gold(tmp_path):
    model = ScriptedModel([f"Step 1: add.\nFinal answer: {v}" for v in (9, 9, 8, 9)])
    result = Reasoner(model, "vote", strategy_options={"samples": 4, "rule": "none"}, runs_dir=tmp_path,
                      concurrency=1).solve(APPLES)
    out = tmp_path / "agree.jsonl"
    stats = export([result.trajectory_path], "preference", out, judge_by="agreement", test_share=0)
    assert (stats.judged, stats.right, stats.examples) == (4, 3, 1)
    assert read(out)[0]["rejected_answer"] == "8"
    assert export([result.trajectory_path], "sft", out, test_share=0).examples == 0  # no gold, no check


def test_the_command_line_exports_and_fails_clearly(bench, tmp_path):
    out = tmp_path / "cli.jsonl"
    done = reason("export", str(bench), "--format", "steps", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("examples ") and split_path(out).is_file()
    bad = reason("export", str(bench), "--format", "nope", "--out", str(out))
    assert bad.returncode == 2 and "nope" in bad.stderr
    (tmp_path / "empty").mkdir()
    runs = reason("export", str(tmp_path / "empty"), "--out", str(out))
    assert runs.returncode == 1 and "no sft examples" in runs.stderr


def test_a_file_that_is_not_a_trajectory_is_a_clear_error(tmp_path):
    bogus = tmp_path / "notes.jsonl"
    bogus.write_text('{"type": "header"}\n{"type": "step", "colour": "blue"}\n')
    done = reason("export", str(bogus), "--out", str(tmp_path / "x.jsonl"))
    assert done.returncode == 1 and "notes.jsonl is not a reason trajectory" in done.stderr
    assert "Traceback" not in done.stderr
