"""Saved runs read back as searches: a solve's chains, its beam tree, its bench row, and how each chain is judged.

What `reason export` turns into training data and `reason view` draws. A run on disk is a trajectory file
(`chain`, `plain`), a folder of `sample-NNN.jsonl` (`vote`, `best-of-n`, `auto`) or a folder with one file
holding every node of a `beam`; `outcome.json` beside the samples (written by `Reasoner.solve`) keeps the
solve's outcome: the result as `--json` prints it, without the steps (the strategy's decision: tally, stop
rule, tree, in `details`), and the strategy's options. Runs saved before it held all of that have the
decision in `outcome.json` and the result in `solve.json`; `read_outcome` reads either or both. Without
either the tally is counted again and a beam's tree is read from the prompts: a node's parent is the latest
node whose think step is in its prompt. A bench folder (`results.jsonl`, `run.json`) adds the gold answer
and the dataset to each solve.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.answers import group, same_answer
from orchestrator.kinds import StepKind
from orchestrator.trajectory import Step, load_trajectory

OUTCOME = "outcome.json"
OLD_RESULT = "solve.json"  # the result half of the outcome, in run folders saved before it was one file
STEP_KINDS = (StepKind.THINK, StepKind.ACT)  # the model's own reasoning; reflections and checks are about it


@dataclass
class Node:
    """One node of a beam: the steps it added, its score, what it proposed, whether it was pruned."""

    id: int
    parent: int | None
    depth: int
    score: float
    steps: list[int]
    answer: str | None = None
    abandoned: bool = False


@dataclass
class Chain:
    """One line of reasoning from the question to an answer (a sample, or a beam path to an answered node)."""

    sample: int
    steps: list[Step]
    answer: str | None
    normalized: str | None
    stop_reason: str | None = None
    node: int | None = None  # the beam node it ends at
    file: Path | None = None
    finished: float = 0.0  # when its end record was written (the order samples finished in)
    correct: bool | None = None  # None: not judged (no gold, no independent check, no majority)
    judged_by: str | None = None

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.steps)


@dataclass
class Solve:
    """One question's search as saved: its chains, the strategy's outcome, the bench row if it came from one."""

    path: Path
    header: dict[str, Any]
    chains: list[Chain]
    files: list[Path]
    steps: list[Step] = field(default_factory=list)  # every step of a beam, pruned ones included
    tree: list[Node] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)
    row: dict[str, Any] | None = None
    dataset: str | None = None

    @property
    def question(self) -> str:
        return str(self.header.get("question", ""))

    @property
    def kind(self) -> str:
        return str(self.header.get("kind", "text"))

    @property
    def strategy(self) -> str:
        return str(self.header.get("strategy", "chain"))

    @property
    def seed(self) -> int | None:
        return (self.row or {}).get("seed", (self.header.get("config") or {}).get("seed"))

    @property
    def gold(self) -> str | None:
        return (self.row or {}).get("gold")

    def tally(self) -> dict[str, int]:
        """Answers grouped by meaning, with their votes (the strategy's own count when it was saved)."""
        saved = (self.outcome.get("details") or {}).get("votes")
        if saved:
            return dict(saved)
        seen: list[str] = []
        labels = [group(c.normalized, seen, self.kind) for c in self.chains]
        return dict(Counter(label for label in labels if label is not None).most_common())


def write_outcome(folder: Path, record: dict[str, Any]) -> None:
    """Keep a solve's outcome beside its sample files (ignored when the folder was never made)."""
    if folder.is_dir():
        (folder / OUTCOME).write_text(json.dumps(record, ensure_ascii=False, default=str), encoding="utf-8")


def read_outcome(folder: Path) -> dict[str, Any]:
    """A run folder's saved outcome ({} when it has none, or for a trajectory file): the result's fields
    (`stop_reason`, `answer`, `usage`, `details`, ...) with `samples_used` and `samples_allowed`, from
    `outcome.json`, or from the two files older runs have (`outcome.json`, `solve.json`). An unreadable file
    counts as missing."""
    record: dict[str, Any] = {}
    for name in (OLD_RESULT, OUTCOME):
        file = folder / name
        if folder.is_dir() and file.is_file():
            try:
                found = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(found, dict):
                record.update(found)
    samples = record.get("samples")
    if isinstance(samples, dict):
        record.setdefault("samples_used", samples.get("used"))
        record.setdefault("samples_allowed", samples.get("allowed"))
    return record


def load_solve(path: str | Path, row: dict[str, Any] | None = None, dataset: str | None = None) -> Solve:
    """Read one saved run (a trajectory file or a run folder) as a `Solve`."""
    path = Path(path)
    files = (sorted(path.glob("sample-*.jsonl")) or sorted(path.glob("*.jsonl"))) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{path} holds no trajectory files")
    outcome = read_outcome(path)
    try:
        loaded = [load_trajectory(f) for f in files]
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a reason trajectory ({type(e).__name__}: {e})") from None
    header = loaded[0][0]
    solve = Solve(path, header, [], files, outcome=outcome, row=row, dataset=dataset)
    if "beam" in header:
        _read_beam(solve, loaded[0][1], loaded[0][2])
    else:
        for file, (h, steps, end) in zip(files, loaded, strict=True):
            end = end or {}
            solve.chains.append(Chain(int(h.get("sample", 0)), steps, end.get("answer"), end.get("normalized"),
                                      end.get("stop_reason"), file=file, finished=float(end.get("finished", 0))))
    return solve


def _read_beam(solve: Solve, steps: list[Step], end: dict[str, Any] | None) -> None:
    solve.steps = steps
    saved = (solve.outcome.get("details") or {}).get("tree")
    if saved:
        solve.tree = [Node(n["id"], n["parent"], n["depth"], n["score"], n["steps"], n.get("answer"),
                           n["abandoned"]) for n in saved]
    else:
        solve.tree = tree_from_steps(steps)
    by_id = {n.id: n for n in solve.tree}
    for node in solve.tree:
        if node.answer is None:
            continue
        path: list[int] = []
        walk: Node | None = node
        while walk is not None:
            path = walk.steps + path
            walk = by_id.get(walk.parent) if walk.parent is not None else None
        last = steps[node.steps[0]] if node.steps else None
        normalized = last.normalized if last is not None and last.normalized else node.answer
        solve.chains.append(Chain(node.id, [steps[i] for i in path], node.answer, normalized,
                                  "abandoned" if node.abandoned else (end or {}).get("stop_reason"), node.id,
                                  solve.files[0]))


def tree_from_steps(steps: list[Step]) -> list[Node]:
    """A beam's nodes read from its steps alone: each think step starts a node; its parent is the latest
    earlier node whose think output is one of the assistant turns of its prompt (none: the question)."""
    nodes: list[Node] = []
    for i, step in enumerate(steps):
        failed_think = step.kind == StepKind.FORMAT_ERROR and (i == 0 or steps[i - 1].kind != StepKind.THINK)
        if step.kind == StepKind.THINK or failed_think or not nodes:
            turns = {m.get("content") for m in (step.calls[0].messages if step.calls else [])
                     if m.get("role") == "assistant"}
            parent = next((n for n in reversed(nodes) if _said(steps[n.steps[0]]) & turns), None)
            nodes.append(Node(len(nodes) + 1, parent.id if parent else 0, parent.depth + 1 if parent else 1,
                              0.0, [], abandoned=step.abandoned))
        node = nodes[-1]
        node.steps.append(step.index)
        if step.kind == StepKind.REFLECT and step.reward is not None:
            node.score = step.reward
        if step.kind == StepKind.THINK and step.answer is not None:
            node.answer = step.answer
    return nodes


def _said(step: Step) -> set[str | None]:
    """What a step put into its children's prompts: its text, or the raw output it was parsed from."""
    return {step.text, step.text.strip(), *(c.raw_output for c in step.calls[:1])}


# --- judging chains -------------------------------------------------------------------------------------
JUDGES = ("auto", "gold", "check", "agreement")


def judge(solve: Solve, how: str = "auto") -> None:
    """Mark each chain right or wrong. `gold`: scored against the bench's gold answer. `check`: an independent
    check passed or failed (a program we ran, or re-solves that never saw the chain; a model reviewing its own
    chain is not one). `agreement`: the chain's answer is, or is not, held by a strict majority of the solve's
    answered chains (at least three). `auto`: gold where there is one, else check."""
    for chain in solve.chains:
        verdict, by = None, None
        if how in ("auto", "gold") and solve.gold is not None:
            verdict, by = _by_gold(solve, chain), "gold"
        elif how in ("auto", "check"):
            verdict, by = _by_check(chain), "check"
        chain.correct, chain.judged_by = verdict, by if verdict is not None else None
    if how == "agreement":
        _by_agreement(solve)


def _by_gold(solve: Solve, chain: Chain) -> bool | None:
    row = solve.row or {}
    if chain.answer is None:
        return False
    final = row.get("normalized")
    if final is not None and chain.normalized is not None and same_answer(chain.normalized, final, solve.kind):
        return bool(row.get("correct"))  # the bench's own score for this answer
    if solve.kind == "game24":
        numbers = re.search(r"numbers ((?:\d+ ?)+)", solve.question)
        if not numbers:
            return None
        from orchestrator.bench.scorers import check_24

        return check_24(chain.answer, [int(n) for n in numbers.group(1).split()])
    if solve.kind == "code":
        return None  # running the tests again is the bench's job
    return same_answer(chain.answer, str(solve.gold), solve.kind)


def _by_check(chain: Chain) -> bool | None:
    for step in reversed(chain.steps):
        independent = step.code is not None or (step.observation or "").startswith("[check] solved again")
        if step.kind == StepKind.VERIFY and independent and step.verdict is not None:
            return step.verdict
    return None


def _by_agreement(solve: Solve) -> None:
    seen: list[str] = []
    labels = [group(c.normalized, seen, solve.kind) if c.answer is not None else None for c in solve.chains]
    votes = Counter(label for label in labels if label is not None)
    answered = sum(votes.values())
    if answered < 3:
        return
    top, count = votes.most_common(1)[0]
    if 2 * count <= answered:
        return
    for chain, label in zip(solve.chains, labels, strict=True):
        if label is not None:
            chain.correct, chain.judged_by = label == top, "agreement"


# --- finding runs -----------------------------------------------------------------------------------------
def is_bench(path: Path) -> bool:
    return path.is_dir() and (path / "results.jsonl").is_file()


def bench_rows(folder: Path) -> list[dict[str, Any]]:
    """A bench folder's rows, the last one of each (arm, problem) (a retried error is replaced)."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for line in (folder / "results.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a torn line from a kill
        last[(row.get("arm", ""), row.get("problem_id", ""))] = row
    return list(last.values())


def row_trajectory(folder: Path, row: dict[str, Any]) -> Path | None:
    """Where a bench row's trajectory is now: as recorded, else under the folder (which may have moved)."""
    recorded = row.get("trajectory")
    if not recorded:
        return None
    for candidate in (Path(recorded), folder / "trajectories" / Path(recorded).name):
        if candidate.exists():
            return candidate
    return None


def find_solves(paths: list[str | Path]) -> list[Solve]:
    """Every solve under `paths`: bench folders (by their rows), run folders, trajectory files, runs dirs."""
    found: list[Solve] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if is_bench(path):
            manifest = path / "run.json"
            dataset = json.loads(manifest.read_text(encoding="utf-8")).get("dataset") if manifest.is_file() else None
            for row in bench_rows(path):
                where = row_trajectory(path, row)
                if where is not None:
                    found.append(load_solve(where, row, dataset))
        elif path.is_file() or any(path.glob("sample-*.jsonl")) or read_outcome(path):
            found.append(load_solve(path))
        else:
            runs = sorted(p for p in path.iterdir() if p.suffix == ".jsonl" or (p.is_dir() and any(p.glob("*.jsonl"))))
            found.extend(load_solve(p) for p in runs)
    return found
