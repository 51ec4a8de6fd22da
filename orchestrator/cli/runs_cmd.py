"""`reason logs` lists recent runs; `reason replay` shows a saved run again or re-drives it offline."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import ReasonFailure, settings, user_errors
from orchestrator.cli.outcome import tally_text, why_stopped


def runs_dir(option: str | None) -> Path:
    from orchestrator.trajectory import default_runs_dir

    return Path(option or settings().runs_dir or default_runs_dir())


def trajectory_files(path: Path) -> list[Path]:
    """The JSONL files of a run: the file itself, or a directory's `sample-*.jsonl` (or any `*.jsonl`)."""
    if path.is_dir():
        return sorted(path.glob("sample-*.jsonl")) or sorted(path.glob("*.jsonl"))
    return [path]


def _first_and_last(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and end records of a trajectory without reading the steps in between."""
    with open(path, "rb") as f:
        first = f.readline()
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 65536))
        tail = f.read().splitlines()
    records = []
    for raw in (first, tail[-1] if tail else b""):
        try:
            records.append(json.loads(raw))
        except ValueError:
            records.append({})
    header, end = records
    return header, end if end.get("type") == "end" else {}


def _solve_record(path: Path) -> dict[str, Any]:
    """A several-chain solve's own outcome (stop reason, usage, details), {} if it has none."""
    from orchestrator.solves import read_outcome

    return read_outcome(path)


def summarize(path: Path) -> dict[str, Any] | None:
    """One line's worth of a run: when, model, strategy, its stop reason, answer, tokens, $, seconds, path."""
    files = trajectory_files(path)
    if not files:
        return None
    pairs = [_first_and_last(f) for f in files]
    header = pairs[0][0]
    if header.get("type") != "header":
        return None
    ends = [end for _, end in pairs]
    solve = _solve_record(path)
    answers = Counter(e.get("answer") for e in ends if e.get("answer") is not None)
    stops = Counter(e.get("stop_reason") or "unfinished" for e in ends)
    usage = solve.get("usage") or {
        "total_tokens": sum(e.get("usage", {}).get("prompt_tokens", 0) + e.get("usage", {}).get(
            "completion_tokens", 0) for e in ends),
        "calls": sum(e.get("usage", {}).get("calls", 0) for e in ends),
        "cost_usd": sum(e.get("usage", {}).get("cost_usd", 0.0) for e in ends),
        "cost_known": not any(e.get("usage", {}).get("unpriced_calls") for e in ends),
        "seconds": max((e.get("seconds") or 0.0 for e in ends), default=0.0),
    }
    if solve:
        stop = solve.get("stop_reason")
    elif len(files) == 1:
        stop = stops.most_common(1)[0][0]
    else:  # a solve that did not finish, or one recorded before solves kept their own outcome
        stop = ", ".join(f"{k}×{v}" for k, v in stops.most_common())
    return {
        "id": path.stem if path.suffix == ".jsonl" else path.name,
        "started": header.get("started"), "model": header.get("model"), "strategy": header.get("strategy"),
        "stop_reason": stop,
        "answer": solve["answer"] if solve else answers.most_common(1)[0][0] if answers else None,
        "tally": (solve.get("details") or {}).get("votes") or dict(answers.most_common()) if len(files) > 1
        else None,
        "tokens": usage.get("total_tokens", 0), "calls": usage.get("calls", 0),
        "cost_usd": usage.get("cost_usd", 0.0), "cost_known": usage.get("cost_known", True),
        "seconds": usage.get("seconds", 0.0),
        "question": header.get("question"), "samples": len(files), "path": str(path),
    }


def all_runs(root: Path) -> list[Path]:
    """The runs in `root` (trajectory files and solve folders), newest first."""
    entries = [p for p in root.iterdir() if p.suffix == ".jsonl" or p.is_dir()] if root.is_dir() else []
    return sorted(entries, key=lambda p: p.stat().st_mtime, reverse=True)


def find_run(ref: str, folder: str | None) -> Path:
    """A run by path, by id (`20261203-134442-b20f2d26`, or any unique part of it) or `last` (the newest)."""
    if Path(ref).exists():
        return Path(ref)
    root = runs_dir(folder)
    entries = all_runs(root)
    if ref == "last":
        if not entries:
            raise click.BadParameter(f"no runs in {root} yet", param_hint="RUN")
        return entries[0]
    ids = {(p.stem if p.suffix == ".jsonl" else p.name): p for p in entries}
    matches = [p for name, p in ids.items() if name == ref] or [p for name, p in ids.items() if ref in name]
    if len(matches) != 1:
        found = "no run" if not matches else f"{len(matches)} runs"
        raise click.BadParameter(f"{found} in {root} matches {ref!r} (`reason logs` lists them; `last` is the "
                                 "newest)", param_hint="RUN")
    return matches[0]


def money(cost: float, known: bool) -> str:
    return f"${cost:.4f}" if known else "$?"


@click.command()
@click.option("-n", "--count", default=10, show_default=True, type=click.IntRange(min=1), help="How many.")
@click.option("--stop", help="Only runs whose stop reason starts with this (answered, budget, budget_usd, ...).")
@click.option("--strategy", help="Only runs of this strategy.")
@click.option("-m", "--model", help="Only runs whose model name contains this.")
@click.option("-q", "--query", help="Only runs whose question contains this (case-insensitive).")
@click.option("--no-answer", is_flag=True, help="Only runs that ended without an answer.")
@click.option("--runs-dir", "folder", type=click.Path(file_okay=False), help="Runs directory to read.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of text.")
def logs(count: int, stop: str | None, strategy: str | None, model: str | None, query: str | None,
         no_answer: bool, folder: str | None, as_json: bool) -> None:
    """List the most recent runs, newest first: stop reason, tokens, $, seconds and the answer."""
    def wanted(r: dict[str, Any]) -> bool:
        return ((stop is None or str(r["stop_reason"]).startswith(stop))
                and (strategy is None or r["strategy"] == strategy)
                and (model is None or model in str(r["model"]))
                and (query is None or query.lower() in str(r["question"]).lower())
                and (not no_answer or r["answer"] is None))

    root = runs_dir(folder)
    runs: list[dict[str, Any]] = []
    for entry in all_runs(root):
        if (r := summarize(entry)) is not None and wanted(r):
            runs.append(r)
            if len(runs) == count:
                break
    if as_json:
        click.echo(json.dumps(runs, indent=2, ensure_ascii=False))
        return
    if not runs:
        click.echo(f"no runs in {root}" + (" match" if any((stop, strategy, model, query, no_answer)) else ""),
                   err=True)
    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"])) if r["started"] else "?"
        question = " ".join((r["question"] or "").split())
        click.echo(f"{when}  {r['id']}  {r['strategy']} · {r['model']} · {r['stop_reason']}")
        click.echo(f"  answer: {r['answer']}" + (f" ({tally_text(r['tally'])})" if r["tally"] else "")
                   + f" · {r['calls']} calls · {r['tokens']:,} tokens · {money(r['cost_usd'], r['cost_known'])}"
                   f" · {r['seconds']:.1f}s")
        click.echo(f"  {question[:100] + ('…' if len(question) > 100 else '')}")


@click.command()
@click.argument("run", metavar="RUN")
@click.option("--show-thinking/--hide-thinking", "thinking", default=None,
              help="Whole step texts, or only the answer (default: a line or two per step).")
@click.option("--rerun", is_flag=True, help="Re-drive the run offline through the state machine.")
@click.option("--runs-dir", "folder", type=click.Path(file_okay=False), help="Where runs are (and a rerun goes).")
def replay(run: str, thinking: bool | None, rerun: bool, folder: str | None) -> None:
    """Show a saved run step by step, with its answer. RUN is a run id from `reason logs` (or any unique part
    of it), `last` for the newest run, or a path: a .jsonl file or a solve's folder of sample-*.jsonl."""
    from rich.console import Console
    from rich.text import Text

    from orchestrator.cli.render import step_renderable
    from orchestrator.trajectory import load_trajectory

    trajectory = find_run(run, folder)
    files = trajectory_files(trajectory)
    if not files:
        raise click.BadParameter(f"no trajectory files in {trajectory}", param_hint="RUN")
    out = Console(highlight=False)
    for path in files:
        try:
            header, steps, end = load_trajectory(path)
        except (OSError, UnicodeDecodeError, KeyError, TypeError) as e:
            raise ReasonFailure(f"{path} is not a reason trajectory ({type(e).__name__}: {e})") from None
        if not header:
            raise ReasonFailure(f"{path} is not a reason trajectory (no header record)")
        out.print(Text(str(header.get("question", "")), style="bold"))
        out.print(Text(f"{header.get('model')} · {header.get('strategy')} · sample {header.get('sample', 0)}",
                       style="dim"))
        out.print(Text(str(path), style="dim"), soft_wrap=True)
        if thinking is not False:
            for step in steps:
                out.print(step_renderable(step, full=bool(thinking), sample=header.get("sample")
                                          if len(files) > 1 else None))
        recorded = (end or {}).get("answer")
        stop = (end or {}).get("stop_reason", "unfinished")
        out.print(Text.assemble(("answer: ", "bold"), str(recorded), (f" ({stop})", "dim")))
        if rerun:
            _rerun(path, header, recorded, folder)
    if len(files) > 1 and (summary := summarize(trajectory)) is not None:
        solve = _solve_record(trajectory)
        why = why_stopped(str(summary["strategy"]), str(summary["stop_reason"]), solve.get("details") or {},
                          solve.get("samples_used") or 0, solve.get("samples_allowed") or 0) \
            if solve else ""
        out.print(Text.assemble(
            ("solve: ", "bold"), str(summary["answer"]), (f" ({summary['stop_reason']}" + (f": {why})" if why
                                                                                           else ")"), "dim"),
            (f" · votes {tally_text(summary['tally'])}" if summary["tally"] else "", ""),
            (f" · {summary['samples']} samples · {summary['calls']} calls · {summary['tokens']:,} tokens · "
             f"{money(summary['cost_usd'], summary['cost_known'])} · {summary['seconds']:.1f}s", "dim"),
        ), soft_wrap=True)


def rerun_strategy(path: Path, header: dict[str, Any]) -> str:
    """How to re-drive one recorded sample: 'plain' (one bare call) or 'chain' (the state machine, under the
    config in its header). A beam search's tree, a judge's or verifier's calls, and a sample of a
    several-sample strategy recorded before samples kept their own settings cannot be: ReasonFailure."""
    strategy = header.get("strategy")
    if "beam" in header:
        raise ReasonFailure(f"{path} is a beam search's tree, not one chain: --rerun re-drives chains and plain calls")
    if header.get("role"):
        raise ReasonFailure(f"{path} holds the {header['role']} calls of a {strategy} solve, not a chain: "
                            "rerun its sample-*.jsonl files")
    sampler = header.get("sampler")
    if sampler is None and strategy not in ("chain", "plain"):
        raise ReasonFailure(f"{path} is a {strategy} sample recorded without its own settings (by an older "
                            "reason); it cannot be re-driven as it ran")
    return "plain" if (sampler or strategy) == "plain" else "chain"


def _rerun(path: Path, header: dict[str, Any], recorded: str | None, folder: str | None) -> None:
    from orchestrator.cli.render import LiveView
    from orchestrator.config import ReasonConfig
    from orchestrator.ledger import Budget
    from orchestrator.models.fake import ReplayModel
    from orchestrator.reasoner import Reasoner

    strategy = rerun_strategy(path, header)
    config = {k: v for k, v in header.get("config", {}).items() if k in ReasonConfig.model_fields}
    budget = {k: v for k, v in header.get("budget", {}).items() if k in ("max_tokens", "max_usd",
                                                                        "max_seconds", "max_calls")}
    with user_errors():
        model = ReplayModel(path)
        reasoner = Reasoner(model, strategy, Budget(**budget), ReasonConfig(**config),
                            runs_dir=runs_dir(folder))
        with LiveView(model.name, strategy, "summary") as view:
            result = reasoner.solve(header.get("question", ""), on_event=view.on_event)
        view.summary(result)
    same = "the same answer as recorded" if result.answer == recorded else f"recorded: {recorded}"
    click.echo(f"rerun answer: {result.answer} ({same})")
    if result.answer is None:
        raise ReasonFailure(f"the rerun gave no answer ({result.stop_reason})")
