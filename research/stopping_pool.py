"""Record a pool of sampled answers, then replay stopping rules on it offline.

    python -m research.stopping_pool record --model local/qwen2.5-coder-1.5b --strategy plain \
        --dataset gsm8k --limit 30 --seed 0 --samples 8 --out research/pools/stopping_pool.jsonl
    python -m research.stopping_pool replay --pool research/pools/stopping_pool.jsonl --orderings 200
    python -m research.stopping_pool compare --pool research/pools/stopping_pool_t0.4.jsonl \
        --pool research/pools/stopping_pool.jsonl --samples 8
    python -m research.stopping_pool confidence --pool research/pools/confidence_pool_t0.4.jsonl

`record` samples each problem N times (`plain`, or a cheap `chain` without reflection or verification) at
temperature 0.7 with seeds 0..N-1, through the disk cache. It is resumable by itself: the pool file is
rewritten (atomically) after every sample, and samples already in it are skipped. One line per problem:
id, gold, answers (normalized; null when none was found), tokens per sample (cache hits count what the
call cost when it was made), seeds, model, strategy, temperature; recorded with `--batch`, also each
sample's token statistics (`confidence`: `orchestrator.confidence.summarise`; null where the model has none).
`--skip S` records problems S+1..LIMIT of the same seeded draw (a held-out pool beside one of the first
problems); `replay` and `confidence` take several `--pool` files as one pool.
`confidence` replays confidence-weighted and filtered votes on such a pool
(`research.confidence_replay`).
`replay` prints fixed-k majority accuracy for k = 1..N against the adaptive rules (see
`research.stopping_replay`) and whether one reaches fixed-N accuracy within a point with half the
samples; `--grid` replays a finer sweep of the Beta and cost rules instead of the default rules; `--json` also
writes the report, `--plot` the curve (accuracy against samples used). `--caps` asks the target at equal
accuracy instead: for each k, the fewest samples a rule spends (capped at any 2..N) to come within a point of
fixed-k.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.bench.datasets import Problem, load_dataset
from research.plot import plot_stopping
from research.stopping_replay import (
    check_record, compare_markdown, compare_pools, equal_accuracy, equal_accuracy_markdown, grid_rules, markdown,
    prepare, read_pool, replay, sample_count,
)
from orchestrator.config import ReasonConfig
from orchestrator.models import get_model
from orchestrator.models.base import ChatModel, Completion, Message, Usage
from orchestrator.reasoner import Reasoner
from orchestrator.strategies.vote import CHEAP


class Metered(ChatModel):
    """`inner` with a count of the tokens of every completion, cache hits included."""

    def __init__(self, inner: ChatModel) -> None:
        super().__init__(inner.options)
        self.inner, self.name, self.is_local = inner, inner.name, inner.is_local
        self.sample_temperature = inner.sample_temperature
        self.context_window, self.supports_tools = inner.context_window, inner.supports_tools
        self.tokens = 0

    def complete(self, messages: list[Message], on_token: Any = None, sample_index: int = 0,
                 **options: Any) -> Completion:
        """`inner.complete`, counting its tokens."""
        completion = self.inner.complete(messages, on_token=on_token, sample_index=sample_index, **options)
        self.tokens += completion.usage.total_tokens
        return completion

    def sample(self, messages: list[Message], seeds: list[int], **options: Any) -> list[Completion]:
        """`inner.sample` (batched for the local model), counting its tokens."""
        completions = self.inner.sample(messages, seeds, **options)
        self.tokens += sum(c.usage.total_tokens for c in completions)
        return completions

    def cost(self, usage: Usage) -> float:
        """The inner model's price."""
        return self.inner.cost(usage)

    def close(self) -> None:
        """Close the inner model."""
        self.inner.close()


def write_pool(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace the pool file with `records`, atomically (a crash leaves the old or the new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    os.replace(tmp, path)


def record_pool(
    problems: list[Problem], model: Metered, out: Path, samples: int, strategy: str = "plain",
    temperature: float = 0.7, sample_seed: int = 0, max_tokens: int = 1024,
    on_sample: Callable[[str], None] = print, batch: int = 0,
) -> list[dict[str, Any]]:
    """Sample each problem up to `samples` times, rewriting the pool after each sample (each batch, with
    `batch` > 1: `plain` samples drawn together by `model.sample`); skip what is there."""
    pool = {r["id"]: r for r in read_pool(out)} if out.exists() else {}
    ids = {p.id for p in problems}
    order = [p.id for p in problems] + [i for i in pool if i not in ids]
    overrides = CHEAP if strategy == "chain" else {}
    for p in problems:
        rec = pool.setdefault(p.id, {"id": p.id, "gold": p.answer, "answers": [], "tokens": [], "seeds": [],
                                     "model": model.name, "strategy": strategy, "temperature": temperature})
        if batch > 1 and strategy == "plain":
            rec.setdefault("sampler", "batch")
            _record_batches(p, rec, model, samples, temperature, sample_seed, max_tokens, batch,
                            lambda: write_pool(out, [pool[k] for k in order if k in pool]), on_sample)
            continue
        for i in range(len(rec["answers"]), samples):
            config = ReasonConfig(temperature=temperature, seed=sample_seed + i, kind=p.kind,
                                  max_tokens_per_call=max_tokens, **overrides)
            start, model.tokens = time.monotonic(), 0
            result = Reasoner(model, strategy, config=config, save_trajectory=False).solve(p.question)
            rec["answers"].append(result.normalized)
            if "confidence" in rec:  # a pool recorded in batches keeps one summary per sample
                rec["confidence"].append(None)
            rec["tokens"].append(model.tokens)
            rec["seeds"].append(sample_seed + i)
            write_pool(out, [pool[k] for k in order if k in pool])
            on_sample(f"{p.id:<14} sample {i}: {result.normalized!s:<12} gold={p.answer:<8} "
                      f"{model.tokens} tok {time.monotonic() - start:.1f}s")
    return [pool[k] for k in order if k in pool]


def _record_batches(p: Problem, rec: dict[str, Any], model: Metered, samples: int, temperature: float,
                    sample_seed: int, max_tokens: int, batch: int, save: Callable[[], None],
                    on_sample: Callable[[str], None]) -> None:
    """The missing `plain` samples of one problem, `batch` at a time: the plain strategy's prompt (the question
    as the only message) and its answer parser."""
    from orchestrator.answers import extract_answer

    messages: list[Message] = [{"role": "user", "content": p.question}]
    kept = rec.setdefault("confidence", [None] * len(rec["answers"]))  # summaries from before: none
    while len(rec["answers"]) < samples:
        seeds = [sample_seed + i for i in range(len(rec["answers"]), min(samples, len(rec["answers"]) + batch))]
        start = time.monotonic()
        completions = model.sample(messages, seeds, temperature=temperature, max_tokens=max_tokens)
        for seed, c in zip(seeds, completions, strict=True):
            found = extract_answer(c.text, p.kind)
            rec["answers"].append(found.normalized if found else None)
            rec["tokens"].append(c.usage.total_tokens)
            rec["seeds"].append(seed)
            kept.append(c.confidence)
        save()
        on_sample(f"{p.id:<14} samples {seeds[0]}-{seeds[-1]}: {rec['answers'][-len(seeds):]} gold={p.answer} "
                  f"{sum(c.usage.total_tokens for c in completions)} tok {time.monotonic() - start:.1f}s")


def pool_problems(dataset: str, limit: int, seed: int, skip: int = 0) -> list[Problem]:
    """Problems skip+1..limit of the seeded sample of `limit` (the first `limit` problems of the same draw
    for every larger limit, so a pool of problems 101-150 holds out from one of the first 50)."""
    if not 0 <= skip < limit:
        raise SystemExit(f"--skip must be at least 0 and less than --limit ({limit}), not {skip}")
    return load_dataset(dataset, limit=limit, seed=seed)[skip:]


def record(args: argparse.Namespace) -> None:
    """The `record` command: the model (through the disk cache) over the dataset sample."""
    problems = pool_problems(args.dataset, args.limit, args.seed, args.skip)  # bad input fails before the model loads
    inner = get_model(args.model)
    if args.cache != "off" and args.batch <= 1:  # batched samples are kept in the pool file only
        from orchestrator.models.cache import CachedModel
        from orchestrator.pypi_data import cache_dir

        inner = CachedModel(inner, Path(args.cache) if args.cache else cache_dir("completions"))
    model = Metered(inner)
    try:
        record_pool(problems, model, Path(args.out),
                    args.samples, args.strategy, args.temperature, args.sample_seed, args.max_tokens,
                    on_sample=lambda line: print(line, flush=True), batch=args.batch)
    finally:
        model.close()


def checked_pool(path: str) -> list[dict[str, Any]]:
    """The records of a pool file; exits naming the malformed lines (by problem id) if there are any."""
    records = read_pool(path)
    bad = {r.get("id", "?"): e for r in records if (e := check_record(r))}
    if bad:
        raise SystemExit(f"malformed pool lines in {path}: {bad}")
    return records


def checked_pools(paths: list[str]) -> list[dict[str, Any]]:
    """The records of one or more pool files, in order, as one pool (e.g. problems 1-50 and 101-150 of a
    draw); exits if a file is malformed or a problem appears twice."""
    records = [r for path in paths for r in checked_pool(path)]
    ids = [r["id"] for r in records]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise SystemExit(f"problems in more than one of the pools {', '.join(paths)}: {', '.join(twice[:5])}")
    return records


def replay_cmd(args: argparse.Namespace) -> None:
    """Print (and optionally save) the replay report of a pool (or of several, as one)."""
    records = checked_pools(args.pool)
    if args.caps:
        print(equal_accuracy_markdown(equal_accuracy(prepare(records), count=args.orderings, seed=args.seed,
                                                     samples=args.samples)))
        return
    rules = grid_rules() if args.grid else None
    report = replay(prepare(records), rules, count=args.orderings, seed=args.seed, samples=args.samples)
    print(markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.plot:
        print(f"plot: {plot_stopping(report, Path(args.plot))}")


def compare_cmd(args: argparse.Namespace) -> None:
    """Print majority-of-k accuracy of two pools of the same problems and their paired difference."""
    first, second = (checked_pool(path) for path in args.pool)
    report = compare_pools(prepare(first), prepare(second), count=args.orderings, seed=args.seed,
                           samples=args.samples)
    print(compare_markdown(report, [Path(p).name for p in args.pool]))


def confidence_cmd(args: argparse.Namespace) -> None:
    """Print how well token confidence separates right from wrong samples and what it does to votes."""
    from research.confidence_replay import confidence_markdown, replay_confidence, scored

    try:
        problems = scored(checked_pools(args.pool), samples=args.samples)
    except ValueError as e:
        raise SystemExit(f"{', '.join(args.pool)}: {e}") from None
    report = replay_confidence(problems, count=args.orderings, seed=args.seed)
    print(confidence_markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="sample a pool of answers (resumable)")
    rec.add_argument("--model", default="local/qwen2.5-coder-1.5b")
    rec.add_argument("--strategy", choices=("plain", "chain"), default="plain")
    rec.add_argument("--dataset", default="gsm8k")
    rec.add_argument("--limit", type=int, default=30)
    rec.add_argument("--seed", type=int, default=0, help="seed of the dataset sample")
    rec.add_argument("--skip", type=int, default=0,
                     help="leave out the sample's first SKIP problems (record problems SKIP+1..LIMIT, e.g. a "
                          "held-out pool beside one of the first problems)")
    rec.add_argument("--samples", type=int, default=8)
    rec.add_argument("--sample-seed", type=int, default=0, help="sample i uses seed sample_seed + i")
    rec.add_argument("--temperature", type=float, default=0.7)
    rec.add_argument("--max-tokens", type=int, default=1024, help="completion cap per call")
    rec.add_argument("--batch", type=int, default=0,
                     help="plain only: draw this many samples of a problem together (the local model decodes "
                          "them in one batch); 0 = one solve each, through the disk cache")
    rec.add_argument("--cache", default="", help="cache folder ('' = the reason cache, 'off' = none)")
    rec.add_argument("--out", default="research/pools/stopping_pool.jsonl")
    rep = sub.add_parser("replay", help="replay stopping rules on a pool")
    rep.add_argument("--pool", action="append", default=None,
                     help="a pool file (default research/pools/stopping_pool.jsonl); several replay as one pool")
    rep.add_argument("--orderings", type=int, default=200)
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--samples", type=sample_count, default=None,
                     help="replay each problem's first N samples only (default: all the pool has)")
    view = rep.add_mutually_exclusive_group()
    view.add_argument("--grid", action="store_true",
                      help="replay a finer sweep of the Beta and cost rules (threshold x minimum samples) instead")
    view.add_argument("--caps", action="store_true",
                      help="instead: the fewest samples each rule spends to match fixed-k accuracy, any cap up to N")
    rep.add_argument("--json", default="")
    rep.add_argument("--plot", default="", help="write the curve (accuracy vs samples used) to this PNG")
    cmp = sub.add_parser("compare", help="majority-of-k accuracy of two pools of the same problems, paired")
    cmp.add_argument("--pool", action="append", required=True, help="give two: --pool A --pool B")
    cmp.add_argument("--orderings", type=int, default=200)
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--samples", type=sample_count, default=None, help="compare the first N samples only")
    conf = sub.add_parser("confidence", help="token confidence: right vs wrong samples, weighted and filtered votes")
    conf.add_argument("--pool", action="append", default=None,
                      help="a pool file (default research/pools/confidence_pool_t0.4.jsonl); several count as one pool")
    conf.add_argument("--orderings", type=int, default=200)
    conf.add_argument("--seed", type=int, default=0)
    conf.add_argument("--samples", type=sample_count, default=None, help="the first N samples only")
    conf.add_argument("--json", default="")
    args = ap.parse_args()
    if args.command in ("replay", "confidence") and not args.pool:
        args.pool = [{"replay": "research/pools/stopping_pool.jsonl",
                      "confidence": "research/pools/confidence_pool_t0.4.jsonl"}[args.command]]
    if args.command == "compare" and len(args.pool) != 2:
        ap.error("compare takes exactly two --pool")
    {"record": record, "replay": replay_cmd, "compare": compare_cmd, "confidence": confidence_cmd}[args.command](args)


if __name__ == "__main__":
    main()
