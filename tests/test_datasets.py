"""Benchmark sets load offline from pinned wheels, with every byte checked against a pinned sha256."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

from orchestrator.answers import guess_kind
from orchestrator.bench.datasets import (
    DATASETS,
    GAME24,
    GSM8K,
    DatasetUnavailable,
    Problem,
    load_dataset,
)
from orchestrator.errors import ConfigError
from orchestrator.pypi_data import sha256_file

EXPECTED = {"gsm8k": 1319, "gpqa": 198, "aime2025": 30, "game24": 1362, "game24-tot": 100, "humaneval": 164,
            "failure-modes": 102}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_each_dataset_loads_with_its_size(name: str) -> None:
    problems = load_dataset(name, seed=None)
    assert len(problems) == DATASETS[name].size == EXPECTED[name]
    assert len({p.id for p in problems}) == len(problems)
    assert all(p.question.strip() and p.answer.strip() for p in problems)


def test_gsm8k_gold_is_the_number_after_hashes() -> None:
    first = load_dataset("gsm8k", seed=None)[0]
    assert (first.id, first.answer, first.kind) == ("gsm8k/0", "18", "math")
    assert first.meta["solution"].endswith("#### 18")
    assert all(p.answer.lstrip("-").isdigit() for p in load_dataset("gsm8k"))  # "#### 1,600" -> "1600"


def test_aime_answers_are_plain_integers() -> None:
    problems = load_dataset("aime2025", seed=None)
    assert [p.id for p in problems[:2]] == ["aime2025-I/1", "aime2025-I/2"]
    assert problems[0].answer == "70"
    assert all(p.answer.isdigit() for p in problems)  # "336^\\circ" -> "336"


def test_gpqa_is_multiple_choice_with_a_stable_shuffle() -> None:
    problems = load_dataset("gpqa", seed=None)
    again = load_dataset("gpqa", seed=None)
    assert [p.question for p in problems] == [p.question for p in again]
    first = problems[0]
    assert first.id == "gpqa/rec06pnAkLOr2t2mp" and first.kind == "choice"
    assert first.meta["choices"][first.answer] == "10^-4 eV"
    assert "\nA) " in first.question and "\nD) " in first.question
    assert {p.answer for p in problems} == {"A", "B", "C", "D"}  # the shuffle spreads the gold letter
    assert all(guess_kind(p.question) == "choice" for p in problems)


def test_game24_and_humaneval_fields() -> None:
    puzzle = load_dataset("game24", seed=None)[0]
    assert puzzle.meta["numbers"] == [1, 1, 4, 6] and puzzle.kind == "game24"
    assert load_dataset("game24-tot", seed=None)[0].meta["rank"] == 901
    task = load_dataset("humaneval", seed=None)[0]
    assert task.id == "HumanEval/0" and task.kind == "code"
    assert task.meta["entry_point"] == "has_close_elements"
    assert "def check(candidate)" in task.answer
    assert task.meta["prompt"] in task.question


def test_seeded_sample_is_deterministic() -> None:
    a = [p.id for p in load_dataset("gsm8k", limit=10, seed=7)]
    assert a == [p.id for p in load_dataset("gsm8k", limit=10, seed=7)]
    assert a != [p.id for p in load_dataset("gsm8k", limit=10, seed=8)]
    assert [p.id for p in load_dataset("gsm8k", limit=3, seed=None)] == ["gsm8k/0", "gsm8k/1", "gsm8k/2"]
    assert len(load_dataset("aime2025", limit=100)) == 30


def test_user_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [
        {"question": "What is 6 * 7?", "answer": "$42.00"},
        {"id": "colour", "question": "Sky colour?", "answer": "blue", "choices": ["red", "blue"]},
        {"question": "Capital of France?", "answer": "Paris", "kind": "text", "source": "me"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    problems = load_dataset(str(path), seed=None)
    assert problems[0] == Problem("mine/1", "What is 6 * 7?", "42", "math", {})
    assert problems[1].id == "colour" and problems[1].kind == "choice" and problems[1].answer == "B"
    assert problems[1].question.endswith("A) red\nB) blue")
    assert (problems[2].kind, problems[2].answer, problems[2].meta) == ("text", "paris", {"source": "me"})


def test_bad_user_files_and_names(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.jsonl:1"):
        load_dataset(str(bad))
    bad.write_text('{"question": "q", "answer": "1", "kind": "poem"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="kind"):
        load_dataset(str(bad))
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("no-such-set")
    with pytest.raises(ConfigError, match="no such file"):
        load_dataset(str(tmp_path / "missing.jsonl"))


def test_member_sha256_mismatch_is_refused() -> None:
    wrong = dataclasses.replace(GSM8K, sha256="0" * 64)
    with pytest.raises(DatasetUnavailable, match="sha256"):
        wrong.read()


def test_tampered_installed_copy_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed copy is read in place, with no wheel hash to check: the member's sha256 must catch it."""
    info = tmp_path / "tree_of_thoughts_llm-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tree-of-thoughts-llm\nVersion: 0.1.0\n")
    data = tmp_path / GAME24.path
    data.parent.mkdir(parents=True)
    data.write_text("Rank,Puzzles\n1,1 1 1 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DatasetUnavailable, match="tot/data/24/24.csv"):
        load_dataset("game24")


def test_corrupted_cached_wheel_is_fetched_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASON_CACHE_DIR", str(tmp_path))
    wheel = tmp_path / "wheels" / "tree_of_thoughts_llm-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(b"PK\x03\x04 not the pinned wheel")
    assert len(load_dataset("game24", seed=None)) == 1362  # needs pip to reach the package index
    assert sha256_file(wheel) == GAME24.wheel.sha256


def test_failure_modes_has_six_families_of_17_with_typed_answers() -> None:
    from collections import Counter

    problems = DATASETS["failure-modes"].loader()
    families = Counter(p.meta["family"] for p in problems)
    assert len(problems) == 102 and len(families) == 6 and set(families.values()) == {17}
    weekdays = {p.answer for p in problems if p.kind == "text"}
    assert weekdays <= {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "yes", "no"}
    assert all(p.kind == "math" for p in problems if p.meta["family"] != "calendar_arithmetic")
    assert len({p.id for p in problems}) == 102


def test_a_changed_failure_modes_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.bench import failure_modes

    changed = tmp_path / "failure_modes.jsonl"
    changed.write_bytes(failure_modes.DATA.read_bytes().replace(b'"answer": "', b'"answer": "1', 1))
    monkeypatch.setattr(failure_modes, "DATA", changed)
    with pytest.raises(DatasetUnavailable, match="pinned sha256"):
        DATASETS["failure-modes"].loader()


@pytest.mark.skipif(importlib.util.find_spec("sympy") is None or importlib.util.find_spec("magiccube") is None,
                    reason="reasoning-gym's dependencies are not installed (the `gym` extra)")
def test_the_failure_modes_file_is_what_the_pinned_generator_makes() -> None:
    from orchestrator.bench.failure_modes import DATA, generate

    assert generate() == DATA.read_text(encoding="utf-8")  # the wheel is fetched by hash, its code run apart
