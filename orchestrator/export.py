"""Search traces as training data: `sft` chat examples, `preference` pairs and `steps` process-reward labels.

The data-flywheel reading of o1: a chain that reached a right answer is a fine-tuning example; a right and a
wrong chain for the same question are a preference pair (TRL's conversational `prompt`/`chosen`/`rejected`);
each step of a judged chain gets a label from the chains that continue from it, the Monte-Carlo estimate of
Math-Shepherd (Wang et al. 2024): its `value` is the share of those chains that end right, its `label` whether
any does. Chains of a `beam` share their prefixes, so a step's value there counts every path through it;
a sample of `vote` or `best-of-n` is its own only continuation. The model's own reward is kept beside the
label (`rewards`), never used as it. Records are deduplicated, split train/test by a hash of the question
(so no question sits in both, and a question keeps its split as the data grows), carry their provenance,
and have every known API key and every `redact` pattern replaced.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.keys import KEY_PATTERNS, REDACTED, known_secrets
from orchestrator.kinds import StepKind
from orchestrator.solves import JUDGES, STEP_KINDS, Chain, Solve, find_solves, judge
from orchestrator.trajectory import Step

FORMATS = ("sft", "preference", "steps")


@dataclass
class ExportStats:
    """What an export wrote: examples per split, distinct questions, chains judged right, generated tokens."""

    examples: int = 0
    train: int = 0
    test: int = 0
    questions: int = 0
    chains: int = 0
    judged: int = 0
    right: int = 0
    tokens: int = 0
    duplicates: int = 0

    def line(self) -> str:
        """The one-line summary `reason export` ends with."""
        share = f"{self.right / self.judged:.0%}" if self.judged else "n/a"
        return (f"examples {self.examples} (train {self.train}, test {self.test}), questions {self.questions}, "
                f"right {self.right}/{self.judged} judged chains ({share}), tokens {self.tokens}, "
                f"duplicates dropped {self.duplicates}")


def redactor(patterns: Iterable[str] = ()) -> Callable[[str], str]:
    """A function scrubbing known keys, key-shaped strings and the user's private `patterns` from text."""
    secrets = sorted(known_secrets(), key=len, reverse=True)
    try:
        private = [re.compile(p) for p in patterns]
    except re.error as e:
        raise ConfigError(f"bad --redact pattern: {e}") from e

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        for pattern in private:
            text = pattern.sub("[PRIVATE]", text)
        return KEY_PATTERNS.sub(REDACTED, text)

    return scrub


def reasoning_steps(chain: Chain, beam: bool = False) -> list[tuple[Step, float | None]]:
    """The model's reasoning steps of a chain (its last attempt, pruned steps left out unless on a beam path),
    each with the reward the model gave it (its own, else the reflection that followed it)."""
    last = max((s.attempt for s in chain.steps), default=0)
    out: list[tuple[Step, float | None]] = []
    for step in chain.steps:
        if step.attempt != last or (step.abandoned and not beam):
            continue
        if step.kind in STEP_KINDS:
            out.append((step, step.reward))
        elif step.kind == StepKind.REFLECT and out and out[-1][1] is None:
            out[-1] = (out[-1][0], step.reward)
    return out


def chain_text(chain: Chain, reasoning: bool, beam: bool = False) -> str:
    """The assistant turn a chain teaches: its reasoning and its answer, or the answer alone."""
    answer = chain.answer or ""
    if not reasoning:
        return answer
    text = "\n\n".join(s.text.strip() for s, _ in reasoning_steps(chain, beam) if s.text.strip())
    return text if answer and answer in text[-400:] else f"{text}\n\nFinal answer: {answer}".strip()


def provenance(solve: Solve, chain: Chain) -> dict[str, Any]:
    """Where a record came from: the trajectory, model, strategy, seed, dataset and problem, how it was judged."""
    row = solve.row or {}
    return {"trajectory": str(chain.file or solve.path), "model": solve.header.get("model"),
            "strategy": solve.strategy, "seed": solve.seed, "dataset": solve.dataset,
            "problem_id": row.get("problem_id"), "arm": row.get("arm"), "sample": chain.sample,
            "node": chain.node, "judged_by": chain.judged_by}


def _generated(steps: Iterable[Step]) -> int:
    return sum(c.completion_tokens for s in steps for c in s.calls)


def sft_records(solves: list[Solve], reasoning: bool = True) -> list[dict[str, Any]]:
    """One chat example per chain judged right."""
    out = []
    for solve in solves:
        beam = bool(solve.tree)
        for chain in solve.chains:
            if chain.correct:
                out.append({"messages": [{"role": "user", "content": solve.question},
                                         {"role": "assistant", "content": chain_text(chain, reasoning, beam)}],
                            "answer": chain.answer, "provenance": provenance(solve, chain),
                            "_tokens": _generated(s for s, _ in reasoning_steps(chain, beam))})
    return out


def preference_records(solves: list[Solve], reasoning: bool = True, max_pairs: int = 4) -> list[dict[str, Any]]:
    """Up to `max_pairs` (right, wrong) pairs per question, across every solve of it (samples, beam paths, arms)."""
    by_question: dict[str, list[tuple[Solve, Chain]]] = {}
    for solve in solves:
        by_question.setdefault(solve.question, []).extend((solve, c) for c in solve.chains)
    out = []
    for question, chains in by_question.items():
        right = [(s, c) for s, c in chains if c.correct is True]
        wrong = [(s, c) for s, c in chains if c.correct is False]
        for i in range(min(max_pairs, max(len(right), len(wrong))) if right and wrong else 0):
            (rs, rc), (ws, wc) = right[i % len(right)], wrong[i % len(wrong)]
            chosen, rejected = chain_text(rc, reasoning, bool(rs.tree)), chain_text(wc, reasoning, bool(ws.tree))
            if chosen == rejected:
                continue
            out.append({"prompt": [{"role": "user", "content": question}],
                        "chosen": [{"role": "assistant", "content": chosen}],
                        "rejected": [{"role": "assistant", "content": rejected}],
                        "chosen_answer": rc.answer, "rejected_answer": wc.answer,
                        "provenance": {"chosen": provenance(rs, rc), "rejected": provenance(ws, wc)},
                        "_tokens": _generated(s for s, _ in [*reasoning_steps(rc), *reasoning_steps(wc)])})
    return out


def step_values(solve: Solve) -> dict[int, tuple[int, int]]:
    """For each reasoning step (by identity): (judged chains through it, those that end right)."""
    counts: dict[int, tuple[int, int]] = {}
    for chain in solve.chains:
        if chain.correct is None:
            continue
        for step, _ in reasoning_steps(chain, bool(solve.tree)):
            n, k = counts.get(id(step), (0, 0))
            counts[id(step)] = (n + 1, k + int(chain.correct))
    return counts


def steps_records(solves: list[Solve]) -> list[dict[str, Any]]:
    """One record per judged chain in TRL's stepwise form (`prompt`, `completions`, `labels`), with each step's
    Monte-Carlo value, the number of chains behind it, its kind and the model's own reward."""
    out = []
    for solve in solves:
        counts = step_values(solve)
        for chain in solve.chains:
            steps = reasoning_steps(chain, bool(solve.tree))
            if chain.correct is None or not steps:
                continue
            rollouts = [counts[id(s)] for s, _ in steps]
            out.append({"prompt": solve.question, "completions": [s.text.strip() for s, _ in steps],
                        "labels": [k > 0 for _, k in rollouts], "values": [round(k / n, 4) for n, k in rollouts],
                        "rollouts": [n for n, _ in rollouts], "kinds": [s.kind for s, _ in steps],
                        "rewards": [r for _, r in steps], "answer": chain.answer, "correct": chain.correct,
                        "provenance": provenance(solve, chain), "_tokens": _generated(s for s, _ in steps)})
    return out


def _question(record: dict[str, Any]) -> str:
    prompt = record["prompt"] if "prompt" in record else record["messages"]
    return prompt if isinstance(prompt, str) else str(prompt[0]["content"])


def in_test(question: str, share: float) -> bool:
    """Whether a question falls in the test split: a hash of its text below `share`, the same every export."""
    digest = hashlib.sha256(question.strip().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def export(paths: list[str | Path], fmt: str, out: str | Path, *, judge_by: str = "auto", reasoning: bool = True,
           test_share: float = 0.1, max_pairs: int = 4, redact: Iterable[str] = ()) -> ExportStats:
    """Export the runs and bench folders under `paths` as `fmt` records to `out` (train) and, when
    `test_share` > 0, `<out stem>.test<suffix>` (test); return the counts."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if judge_by not in JUDGES:
        raise ConfigError(f"unknown judge {judge_by!r}; choose from {', '.join(JUDGES)}")
    if not 0 <= test_share < 1:
        raise ConfigError("the test share is a fraction from 0 up to (not including) 1")
    try:
        solves = find_solves(list(paths))
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(str(e)) from e
    stats = ExportStats()
    for solve in solves:
        judge(solve, judge_by)
        stats.chains += len(solve.chains)
        stats.judged += sum(c.correct is not None for c in solve.chains)
        stats.right += sum(c.correct is True for c in solve.chains)
    if fmt == "sft":
        records = sft_records(solves, reasoning)
    elif fmt == "preference":
        records = preference_records(solves, reasoning, max_pairs)
    else:
        records = steps_records(solves)
    return write_splits(records, Path(out), test_share, redactor(redact), stats)


def write_splits(records: list[dict[str, Any]], out: Path, test_share: float, scrub: Callable[[str], str],
                 stats: ExportStats) -> ExportStats:
    """Write deduplicated, scrubbed records to the train file and (test_share > 0) the test file."""
    seen: set[str] = set()
    questions: set[str] = set()
    train: list[str] = []
    test: list[str] = []
    for record in records:
        tokens = record.pop("_tokens")
        key = json.dumps({k: v for k, v in record.items() if k != "provenance"}, sort_keys=True, default=str)
        if key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        question = _question(record)
        questions.add(question)
        split = test if test_share > 0 and in_test(question, test_share) else train
        split.append(scrub(json.dumps(record, ensure_ascii=False, default=str)) + "\n")
        stats.tokens += tokens
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(train), encoding="utf-8")
    if test_share > 0:
        split_path(out).write_text("".join(test), encoding="utf-8")
    stats.train, stats.test = len(train), len(test)
    stats.examples, stats.questions = len(train) + len(test), len(questions)
    return stats


def split_path(out: Path) -> Path:
    """Where the test split of an export to `out` goes: `name.test.jsonl` beside `name.jsonl`."""
    return out.with_name(f"{out.stem}.test{out.suffix or '.jsonl'}")


__all__ = ["FORMATS", "ExportStats", "export", "preference_records", "sft_records", "split_path", "steps_records"]
