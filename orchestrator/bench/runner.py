"""Run (model, strategy, budget) arms over the same problems; append one JSON line per finished problem.

Resumable: a rerun reads the results file and skips every (arm, problem) already recorded, so a killed run
loses at most the problems in flight and repeats none. Each line is flushed (so a SIGKILL keeps it) and
fsynced at least once a second (so a power cut loses at most that second). Only the main thread writes.

Each remote model gets its own lane of `concurrency` workers (see `lanes.py`), so models run side by side and
a rate-limited provider slows only its own arms; local models share one lane with a single worker. Within a
lane, tasks go problem by problem across arms, so a partial run compares the arms on the same problems.
"""

from __future__ import annotations

import json
import os
import queue
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.bench.arms import Arm, budget_label, parse_budget
from orchestrator.bench.datasets import Problem
from orchestrator.bench.lanes import Finished, Lane, Task
from orchestrator.bench.scorers import score
from orchestrator.errors import ConfigError, SolveFailed
from orchestrator.kinds import StopReason
from orchestrator.models import get_model, provider_of
from orchestrator.models.base import ChatModel
from orchestrator.reasoner import Reasoner


@dataclass
class Hooks:
    """Optional callbacks: `start({arm key: problems to do}, rows already done)`, `row(row)` for each row
    recorded, `notice(text)` for rate limits and stopped lanes."""

    start: Callable[[dict[str, int], int], None] | None = None
    row: Callable[[dict[str, Any]], None] | None = None
    notice: Callable[[str], None] | None = None


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every row of a results file, in order; a torn line (from a kill) is skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def done_keys(path: Path, retry_errors: bool = False) -> set[tuple[str, str]]:
    """(arm key, problem id) pairs already recorded; with `retry_errors`, a pair whose last row is an error
    does not count."""
    last = {(r["arm"], r["problem_id"]): r for r in read_results(path)}
    return {k for k, r in last.items() if not (retry_errors and r.get("stop_reason") == StopReason.ERROR)}


class ResultsFile:
    """Append-only JSONL, written by one thread: every line flushed, fsynced at most once a second."""

    def __init__(self, path: Path, fsync_every: float = 1.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fsync_every = fsync_every
        # Repair a torn last line left by a kill, so the next append starts on a fresh line.
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with open(path, "ab") as f:
                f.write(b"\n")
        self._file = open(path, "a", encoding="utf-8")
        self._synced = time.monotonic()

    def append(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()
        if time.monotonic() - self._synced >= self.fsync_every:
            self.sync()

    def sync(self) -> None:
        os.fsync(self._file.fileno())
        self._synced = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()


def problem_row(arm: Arm, problem: Problem, seed: int | None) -> dict[str, Any]:
    """The fields of a results row that name what was solved: the arm, the problem and the seed."""
    return {
        "arm": arm.key, "model": arm.model, "strategy": arm.strategy, "label": arm.label,
        "problem_id": problem.id, "kind": problem.kind, "gold": problem.answer, "seed": seed,
    }


def solve_one(reasoner: Reasoner, arm: Arm, problem: Problem, seed: int | None) -> dict[str, Any]:
    """Solve and score one problem; a failed solve is recorded as an error row, not raised."""
    start = time.monotonic()
    row = problem_row(arm, problem, seed)
    try:
        result = reasoner.attempt(problem.question)
    except SolveFailed as failed:  # one problem's failure must not end the benchmark; it is recorded
        spent = failed.usage
        row.update(correct=False, predicted=None, stop_reason="error", error=str(failed),
                   seconds=time.monotonic() - start, prompt_tokens=spent.prompt_tokens,
                   completion_tokens=spent.completion_tokens, cost_usd=spent.cost_usd, calls=spent.calls,
                   trajectory=failed.trajectory_path)
        return row
    u = result.usage
    row.update(
        predicted=result.answer, normalized=result.normalized,
        correct=bool(result.answer is not None and score(problem, result.answer)),
        stop_reason=result.stop_reason, verified=result.verified, error=result.error, prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens, reasoning_tokens=u.reasoning_tokens,
        cached_tokens=u.cached_tokens, calls=u.calls, tool_calls=u.tool_calls, cost_usd=u.cost_usd,
        seconds=time.monotonic() - start,
        samples_used=result.samples_used, samples_allowed=result.samples_allowed,
        trajectory=result.trajectory_path,
    )
    return row


def is_rate_limited(row: dict[str, Any]) -> bool:
    """Whether a row failed on an HTTP 429 that outlasted the adapter's retries."""
    error = row.get("error") or ""
    return row.get("stop_reason") == StopReason.ERROR and ("(HTTP 429)" in error or "RateLimitError" in error)


def run_bench(
    problems: list[Problem],
    arms: Iterable[Arm],
    out: Path,
    *,
    concurrency: int = 8,
    local_slots: int = 1,
    seed: int | None = 0,
    runs_dir: Path | None = None,
    cache: bool | Path = False,
    save_trajectories: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    hooks: Hooks | None = None,
    retry_errors: bool = False,
    rate_limit_retries: int = 5,
    rate_limit_pause: float = 5.0,
    max_errors_in_a_row: int = 10,
) -> Path:
    """Run every arm on every problem not yet in `out/results.jsonl`; return that file's path.

    Local models solve one problem at a time, or `local_slots` at once with their calls decoded together in
    batches (`LocalModel(slots=...)`). A rate-limited problem goes back in line and its lane halves its
    concurrency and pauses (`rate_limit_pause` seconds, doubling while it lasts); after `rate_limit_retries`
    such retries the problem is left unrecorded (a rerun tries it again). A lane whose last
    `max_errors_in_a_row` solves all failed is stopped: a server that is down should not be recorded as hundreds
    of wrong answers. On Ctrl-C, finished rows are written, then KeyboardInterrupt propagates."""
    hooks = hooks or Hooks()
    hooks = Hooks(hooks.start, on_row or hooks.row, hooks.notice)
    arms = list(arms)
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ConfigError(f"problem ids must be unique; repeated: {', '.join(twice)}")
    done = done_keys(out / "results.jsonl", retry_errors)
    finished: queue.Queue[Finished] = queue.Queue()
    models: dict[str, ChatModel] = {}
    reasoners: dict[tuple[str, str], Reasoner] = {}
    lanes: dict[str, Lane] = {}
    try:
        for arm in arms:
            if arm.model not in models:
                local = provider_of(arm.model) == "local"
                models[arm.model] = get_model(arm.model, slots=local_slots) if local else get_model(arm.model)
            model = models[arm.model]
            for kind in sorted({p.kind for p in problems}):  # each problem is solved as its own kind
                update: dict[str, Any] = {"kind": kind} if seed is None else {"kind": kind, "seed": seed}
                reasoners[(arm.key, kind)] = Reasoner(
                    model, arm.strategy, arm.budget, arm.config.model_copy(update=update),
                    runs_dir=runs_dir or out / "trajectories", cache=cache, concurrency=1,
                    strategy_options=arm.strategy_options, save_trajectory=save_trajectories,
                )
            name = "local" if model.is_local else arm.model
            if name not in lanes:
                workers = model.slots if model.is_local else max(1, concurrency)
                solve = _solver(reasoners, seed)
                lanes[name] = Lane(name, deque(), workers, solve, finished, is_rate_limited,
                                   rate_limit_retries, rate_limit_pause)
    except BaseException:
        for model in models.values():
            model.close()
        raise
    skipped = 0
    for problem in problems:  # problem-major: partial runs stay paired across arms
        for arm in arms:
            if (arm.key, problem.id) in done:
                skipped += 1
            else:
                lanes["local" if models[arm.model].is_local else arm.model].tasks.append((arm, problem))
    results = ResultsFile(out / "results.jsonl")
    try:
        if hooks.start:
            hooks.start(dict(Counter(arm.key for lane in lanes.values() for arm, _ in lane.tasks)), skipped)
        for lane in lanes.values():
            lane.start()
        while any(lane.busy for lane in lanes.values()) or not finished.empty():
            try:
                report = finished.get(timeout=0.5)
            except queue.Empty:
                continue
            _handle(report, max_errors_in_a_row, results, hooks)
    except KeyboardInterrupt:
        for lane in lanes.values():
            lane.stop()
        while not finished.empty():  # solves that ended before the interrupt: keep them
            if (report := finished.get_nowait()).outcome == "row":
                _record(report.row, results, hooks)
        raise
    finally:
        for lane in lanes.values():
            lane.stop()
        results.close()
        if not any(lane.busy for lane in lanes.values()):  # never free a model a worker is still inside
            for model in models.values():
                model.close()
    return results.path


def _solver(reasoners: dict[tuple[str, str], Reasoner], seed: int | None) -> Callable[[Task], dict[str, Any]]:
    def solve(task: Task) -> dict[str, Any]:
        arm, problem = task
        return solve_one(reasoners[(arm.key, problem.kind)], arm, problem, seed)

    return solve


def _handle(report: Finished, max_errors: int, results: ResultsFile, hooks: Hooks) -> None:
    """Record a finished solve; say when a lane backs off, gives a problem up, or stops."""
    lane, problem = report.lane, report.task[1]
    if report.outcome == "requeued":
        _notice(hooks, f"{lane.name}: rate limited; concurrency now {lane.throttle.limit}, "
                f"paused {report.pause:.0f}s")
        return
    if report.outcome == "dropped":
        _notice(hooks, f"{lane.name}: {problem.id} rate limited {lane.retries + 1} times; left for a rerun")
        return
    row = report.row
    _record(row, results, hooks)
    lane.errors_in_a_row = lane.errors_in_a_row + 1 if row.get("stop_reason") == StopReason.ERROR else 0
    if lane.errors_in_a_row >= max_errors and not lane.stopped:
        lane.stop()
        _notice(hooks, f"{lane.name}: {max_errors} errors in a row (last: {row.get('error')}); its arms are "
                "stopped. Fix the cause and rerun with --retry-errors.")


def _record(row: dict[str, Any], results: ResultsFile, hooks: Hooks) -> None:
    results.append(row)
    if hooks.row:
        hooks.row(row)


def _notice(hooks: Hooks, text: str) -> None:
    if hooks.notice:
        hooks.notice(text)


__all__ = [
    "Arm", "Hooks", "budget_label", "done_keys", "parse_budget", "read_results", "run_bench", "solve_one",
]
