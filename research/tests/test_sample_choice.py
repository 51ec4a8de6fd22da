"""research/sample_choice.py on a results folder written here: samples read from their trajectories,
agreement and choice counted by meaning, overruns measured against the largest call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.trajectory import Call, Step, Trajectory
from research import sample_choice


def load_script():
    return sample_choice


def write_sample(path: Path, answer: str | None, calls: list[int], stop: str = "answered") -> None:
    """A sample's trajectory as the state machine writes it: one think step a call of `calls` tokens."""
    trajectory = Trajectory(path, {"kind": "math"})
    for t in calls:
        call = Call(messages=[], raw_output="", prompt_tokens=t // 2, completion_tokens=t - t // 2,
                    cached_tokens=0, cost_usd=0.0, seconds=0.0)
        trajectory.append(Step(kind="think", text="", calls=[call]))
    trajectory.close({"stop_reason": stop, "normalized": answer})


def make_run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    problems = {  # id: (gold, sample answers, arm's answer right?, total tokens)
        "p1": ("4", ["4", "4.0"], True, 900),  # agree (by meaning), right
        "p2": ("7", ["7", "8"], False, 1300),  # disagree, one right, the arm chose wrong; 300 over
        "p3": ("2", ["5", None], False, 1000),  # disagree (one gave no answer), none right
    }
    rows = []
    for pid, (gold, answers, correct, total) in problems.items():
        run = folder / "trajectories" / pid
        run.mkdir(parents=True)
        for i, answer in enumerate(answers):
            write_sample(run / f"sample-{i:03d}.jsonl", answer, [200, 600 if pid == "p2" else 100])
        rows.append({"arm": "m|best-of-n|", "problem_id": pid, "gold": gold, "correct": correct,  # kind: header
                     "prompt_tokens": total // 2, "completion_tokens": total - total // 2,
                     "trajectory": f"/elsewhere/{pid}"})  # moved: found under folder/trajectories
    rows.append({**rows[0], "arm": "other"})
    (folder / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


def test_report_counts_agreement_choice_and_overruns(tmp_path):
    script = load_script()
    folder = make_run(tmp_path)
    rows = [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]
    r = script.report([x for x in rows if x["arm"] == "m|best-of-n|"], folder, budget_tokens=1000)
    assert (r["problems"], r["samples"], r["samples_right"]) == (3, 6, 3)
    assert (r["agreed"], r["agreed_right"]) == (1, 1)
    assert (r["disagreed"], r["disagreed_one_right"], r["chosen_right"]) == (2, 1, 0)
    assert r["over_budget"] == [{"problem": "p2", "over": 300, "of_largest_call": 0.5}]


def test_command_prints_the_report_and_refuses_an_unknown_arm(tmp_path, capsys, monkeypatch):
    script = load_script()
    folder = make_run(tmp_path)
    monkeypatch.setattr("sys.argv", ["sample_choice.py", str(folder), "--arm", "m|best-of-n|",
                                     "--budget-tokens", "1000"])
    script.main()
    out = capsys.readouterr().out
    assert "samples: 6 (2.00 a problem), right 3" in out
    assert "one or more right on 1, of which the arm chose a right one on 0" in out
    assert "over 1000 tokens: 1 problems by 300 to 300; overrun / largest call: [0.5]" in out
    monkeypatch.setattr("sys.argv", ["sample_choice.py", str(folder), "--arm", "nope"])
    with pytest.raises(SystemExit, match="no rows for arm 'nope'"):
        script.main()
