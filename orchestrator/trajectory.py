"""Steps as data, and the append-only trajectory written to disk as it happens.

A trajectory file is JSONL: a `header` record, one `step` record per step (flushed as it is appended, so
a crash or Ctrl-C loses nothing; fsynced when the run ends), and an `end` record with the stop reason and
answer. Each step keeps the model calls that produced it (rendered messages, raw output, usage, cost, seconds), which is
what `ReplayModel` re-drives offline.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

from orchestrator.keys import redact
from orchestrator.kinds import StepKind

VERSION = 1


@dataclass
class Call:
    """One model call made for a step."""

    messages: list[dict[str, Any]]
    raw_output: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: float
    seconds: float
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # native tool calls (OpenAI style)
    confidence: dict[str, float] | None = None  # the model's token statistics (`orchestrator.confidence`)
    cost_source: str = ""  # where cost_usd came from (`Completion.cost_source`): provider, table, unknown, ...

    @classmethod
    def from_completion(cls, messages: list[dict[str, Any]], completion: Any) -> Call:
        """The record of `completion`; a reply served from the disk cache cost no tokens this time."""
        u, cached = completion.usage, completion.cached
        return cls(
            messages=messages, raw_output=completion.text, prompt_tokens=0 if cached else u.prompt_tokens,
            completion_tokens=0 if cached else u.completion_tokens, cached_tokens=u.cached_tokens,
            cost_usd=completion.cost_usd, seconds=completion.seconds, finish_reason=completion.finish_reason,
            tool_calls=list(completion.tool_calls or []), confidence=completion.confidence,
            cost_source=completion.cost_source,
        )


@dataclass
class Step:
    """One step of a reasoning run. `kind` is the state that produced it."""

    kind: StepKind
    text: str
    attempt: int = 0
    sample: int = 0  # the chain (of a strategy's samples, or a beam's nodes) that made it
    index: int = 0
    reward: float | None = None
    instruction: str = ""  # the user turn that asked for this step ("" for steps without a model call)
    answer: str | None = None
    normalized: str | None = None
    verdict: bool | None = None
    code: str | None = None
    tool_call_id: str | None = None  # set when the code came as a native tool call (its result goes back as one)
    observation: str | None = None
    error: str | None = None
    abandoned: bool = False
    calls: list[Call] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return sum(c.prompt_tokens + c.completion_tokens for c in self.calls)

    @property
    def cost_usd(self) -> float:
        return sum(c.cost_usd for c in self.calls)

    def to_dict(self, calls: bool = True) -> dict[str, Any]:
        """A JSON-ready view, shallow: the messages of its calls are the step's own lists, not copies
        (`dataclasses.asdict` deep-copies every prompt of every call, which costs more than writing it)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if calls:
            d["calls"] = [dict(vars(c)) for c in self.calls]
        else:
            del d["calls"]
        return {**d, "tokens": self.tokens, "cost_usd": self.cost_usd}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        d = {k: v for k, v in d.items() if k not in ("tokens", "cost_usd", "type")}
        d["calls"] = [Call(**c) for c in d.get("calls", [])]
        if d["kind"] in StepKind._value2member_map_:  # a kind this version does not know is kept as written
            d["kind"] = StepKind(d["kind"])
        return cls(**d)


def default_runs_dir() -> Path:
    return Path(os.environ.get("REASON_RUNS_DIR") or Path(user_data_dir("reason")) / "runs")


class Trajectory:
    """The steps of one run, mirrored to a JSONL file as they are appended."""

    def __init__(self, path: Path | None, header: dict[str, Any]) -> None:
        self.steps: list[Step] = []
        self.path = path
        self.header = {"type": "header", "version": VERSION, "started": time.time(), **header}
        self.end: dict[str, Any] | None = None
        self._file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")
            self._write(self.header)

    @classmethod
    def create(cls, runs_dir: Path | str | None, header: dict[str, Any], save: bool = True) -> Trajectory:
        if not save:
            return cls(None, header)
        folder = Path(runs_dir) if runs_dir else default_runs_dir()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return cls(folder / f"{stamp}-{uuid.uuid4().hex[:8]}.jsonl", header)

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        # Every record, whatever it holds (a question, an observation, an error): no key reaches the disk.
        self._file.write(redact(json.dumps(record, ensure_ascii=False, default=str)) + "\n")
        self._file.flush()  # in the OS after every record: a crash or Ctrl-C of ours loses nothing

    def append(self, step: Step) -> Step:
        for name in ("text", "observation", "error", "answer", "code"):  # so later prompts and the view are clean
            if isinstance(value := getattr(step, name), str):
                setattr(step, name, redact(value))
        step.index = len(self.steps)
        self.steps.append(step)
        self._write({"type": "step", **step.to_dict()})
        return step

    def mark_abandoned(self, indices: list[int]) -> None:
        for i in indices:
            self.steps[i].abandoned = True
        self._write({"type": "abandon", "indices": indices})

    def close(self, end: dict[str, Any]) -> None:
        """Write the end record (once) and close the file."""
        if self.end is None:
            self.end = {"type": "end", "finished": time.time(), **end}
            self._write(self.end)
        if self._file is not None:
            os.fsync(self._file.fileno())  # and on the disk once the run is over
            self._file.close()
            self._file = None


def load_trajectory(path: str | Path) -> tuple[dict[str, Any], list[Step], dict[str, Any] | None]:
    """Read a trajectory file back: (header, steps with abandon marks applied, end record or None)."""
    header: dict[str, Any] = {}
    steps: list[Step] = []
    end = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            break  # a torn last line from a crash: everything before it is intact
        kind = record.get("type")
        if kind == "header":
            header = record
        elif kind == "step":
            steps.append(Step.from_dict(record))
        elif kind == "abandon":
            for i in record["indices"]:
                steps[i].abandoned = True
        elif kind == "end":
            end = record
    return header, steps, end
