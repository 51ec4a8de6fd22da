"""A several-chain solve keeps one outcome file beside its samples; every reader also reads the two files that
older run folders have (`outcome.json` with the strategy's decision, `solve.json` with the result)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import Reasoner, ScriptedModel
from orchestrator.cli import cli
from orchestrator.cli.runs_cmd import summarize
from orchestrator.solves import OLD_RESULT, OUTCOME, load_solve
from orchestrator.view import stop_point

Q = "What is 3 + 6?"


def vote_run(tmp_path: Path) -> tuple[Path, dict]:
    answers = [f"Step 1: add.\nFinal answer: {v}" for v in (9, 8, 9, 9)]
    result = Reasoner(ScriptedModel(answers), "vote", runs_dir=tmp_path / "runs", concurrency=1,
                      strategy_options={"samples": 4}).solve(Q)
    return Path(result.trajectory_path), result.to_dict()


def as_old_folder(folder: Path, keep: tuple[str, ...]) -> None:
    """Rewrite a run folder's outcome as a run saved before it was one file did: the decision in `outcome.json`
    and the result in `solve.json`, keeping only the files named in `keep`."""
    saved = json.loads((folder / OUTCOME).read_text())
    decision = {"strategy": saved["strategy"], "options": saved["options"], "stop_reason": saved["stop_reason"],
                "answer": saved["answer"], "samples_used": saved["samples"]["used"],
                "samples_allowed": saved["samples"]["allowed"], "details": saved["details"]}
    result = {k: v for k, v in saved.items() if k != "options"}
    (folder / OUTCOME).unlink()
    if OUTCOME in keep:
        (folder / OUTCOME).write_text(json.dumps(decision))
    if OLD_RESULT in keep:
        (folder / OLD_RESULT).write_text(json.dumps(result))


def test_a_solve_writes_one_outcome_file_with_the_result_and_the_decision(tmp_path):
    folder, result = vote_run(tmp_path)
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".json") == [OUTCOME]
    saved = json.loads((folder / OUTCOME).read_text())
    assert saved == {**{k: v for k, v in result.items() if k != "steps"}, "options": {"samples": 4}}
    assert saved["details"]["votes"] == {"9": 3, "8": 1} and saved["usage"]["calls"] == 4


@pytest.mark.parametrize("keep", [(OUTCOME, OLD_RESULT), (OUTCOME,), (OLD_RESULT,)],
                         ids=["both-old-files", "old-outcome-only", "old-solve-only"])
def test_logs_replay_view_and_export_read_old_run_folders_as_new_ones(tmp_path, keep):
    folder, _ = vote_run(tmp_path)
    new_summary, new_solve = summarize(folder), load_solve(folder)
    new_stop = stop_point(new_solve)[2]
    as_old_folder(folder, keep)
    summary, solve = summarize(folder), load_solve(folder)
    assert summary is not None and new_summary is not None
    assert (summary["stop_reason"], summary["answer"], summary["tally"]) == ("limit", "9", {"9": 3, "8": 1})
    assert summary["stop_reason"] == new_summary["stop_reason"] and summary["tally"] == new_summary["tally"]
    if OLD_RESULT in keep:  # the usage was saved only with the result
        assert summary["calls"] == new_summary["calls"] == 4
    assert solve.outcome["samples_allowed"] == new_solve.outcome["samples_allowed"] == 4
    assert solve.tally() == new_solve.tally() and stop_point(solve)[2] == new_stop
    shown = CliRunner().invoke(cli, ["replay", str(folder)], catch_exceptions=False)
    assert shown.exit_code == 0 and "solve: 9 (limit" in shown.output and "votes 9 ×3" in shown.output
