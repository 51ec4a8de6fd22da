"""`reason logs` lists recent runs; `reason replay` shows a saved run again or re-drives it offline."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import ReasonFailure, settings, user_errors


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


def summarize(path: Path) -> dict[str, Any] | None:
    """One line's worth of a run: when, model, strategy, stop reason, answer, question, path."""
    files = trajectory_files(path)
    if not files:
        return None
    pairs = [_first_and_last(f) for f in files]
    header = pairs[0][0]
    if header.get("type") != "header":
        return None
    ends = [end for _, end in pairs]
    answers = Counter(e.get("answer") for e in ends if e.get("answer") is not None)
    stops = Counter(e.get("stop_reason") or "unfinished" for e in ends)
    return {
        "started": header.get("started"), "model": header.get("model"), "strategy": header.get("strategy"),
        "stop_reason": stops.most_common(1)[0][0] if len(files) == 1 else
        ", ".join(f"{k}×{v}" for k, v in stops.most_common()),
        "answer": answers.most_common(1)[0][0] if answers else None,
        "question": header.get("question"), "samples": len(files), "path": str(path),
    }


@click.command()
@click.option("-n", "--count", default=10, show_default=True, type=click.IntRange(min=1), help="How many.")
@click.option("--runs-dir", "folder", type=click.Path(file_okay=False), help="Runs directory to read.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of text.")
def logs(count: int, folder: str | None, as_json: bool) -> None:
    """List the most recent runs, newest first."""
    root = runs_dir(folder)
    entries = [p for p in root.iterdir() if p.suffix == ".jsonl" or p.is_dir()] if root.is_dir() else []
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    runs = [r for r in map(summarize, entries[: count * 2]) if r is not None][:count]
    if as_json:
        click.echo(json.dumps(runs, indent=2, ensure_ascii=False))
        return
    if not runs:
        click.echo(f"no runs in {root}", err=True)
    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"])) if r["started"] else "?"
        question = " ".join((r["question"] or "").split())
        click.echo(f"{when}  {r['strategy']} · {r['model']} · {r['stop_reason']} · answer: {r['answer']}")
        click.echo(f"  {question[:100] + ('…' if len(question) > 100 else '')}")
        click.echo(f"  {r['path']}")


@click.command()
@click.argument("trajectory", type=click.Path(exists=True))
@click.option("--show-thinking/--hide-thinking", "thinking", default=None,
              help="Whole step texts, or only the answer (default: a line or two per step).")
@click.option("--rerun", is_flag=True, help="Re-drive the run offline through the state machine.")
@click.option("--runs-dir", "folder", type=click.Path(file_okay=False), help="Where a rerun is written.")
def replay(trajectory: str, thinking: bool | None, rerun: bool, folder: str | None) -> None:
    """Show a saved run (a .jsonl file, or a directory of sample-*.jsonl) step by step, with its answer."""
    from rich.console import Console
    from rich.text import Text

    from orchestrator.cli.render import step_renderable
    from orchestrator.trajectory import load_trajectory

    files = trajectory_files(Path(trajectory))
    if not files:
        raise click.BadParameter(f"no trajectory files in {trajectory}", param_hint="TRAJECTORY")
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
                out.print(step_renderable(step, full=bool(thinking)))
        recorded = (end or {}).get("answer")
        stop = (end or {}).get("stop_reason", "unfinished")
        out.print(Text.assemble(("answer: ", "bold"), str(recorded), (f" ({stop})", "dim")))
        if rerun:
            _rerun(path, header, recorded, folder)


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
