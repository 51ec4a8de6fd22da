"""`reason export` turns saved runs and bench folders into training data; `reason view` draws a run as a web page."""

from __future__ import annotations

import tempfile
import webbrowser
from pathlib import Path

import click

from orchestrator.cli.common import ReasonFailure, user_errors


@click.command("export")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["sft", "preference", "steps"]), default="sft", show_default=True,
              help="sft: chat examples of right chains; preference: right/wrong pairs; steps: step labels for a PRM.")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False), required=True,
              help="The train file (JSONL); the test split goes beside it as NAME.test.jsonl.")
@click.option("--judge", "judge_by", type=click.Choice(["auto", "gold", "check", "agreement"]), default="auto",
              show_default=True, help="What makes a chain right: the bench's gold answer, an independent check "
              "(a program we ran, re-solves), or a strict majority of the solve's chains; auto: gold, else check.")
@click.option("--answer-only", is_flag=True, help="The assistant turn is the final answer alone, not the reasoning.")
@click.option("--test-share", type=float, default=0.1, show_default=True,
              help="Share of questions held out for the test split (0: no test file).")
@click.option("--max-pairs", type=int, default=4, show_default=True, help="Preference pairs per question at most.")
@click.option("--redact", multiple=True, metavar="REGEX",
              help="Text you mark private: every match is replaced by [PRIVATE] (repeatable). Keys always are.")
def export(paths: tuple[str, ...], fmt: str, out: str, judge_by: str, answer_only: bool, test_share: float,
           max_pairs: int, redact: tuple[str, ...]) -> None:
    """Export runs (trajectory files, run folders, runs directories) and bench folders as training data.

    Example: reason export benchmarks/results/gsm8k --format sft --out sft.jsonl
    """
    from orchestrator.export import export as run_export
    from orchestrator.export import split_path

    with user_errors():
        stats = run_export(list(paths), fmt, out, judge_by=judge_by, reasoning=not answer_only,
                           test_share=test_share, max_pairs=max_pairs, redact=redact)
    click.echo(f"wrote {out}" + (f" and {split_path(Path(out))}" if test_share > 0 else ""), err=True)
    click.echo(stats.line())
    if not stats.examples:
        raise ReasonFailure(f"no {fmt} examples: {stats.judged} of {stats.chains} chains could be judged "
                            f"({stats.right} right); try --judge agreement or a bench folder with gold answers")


@click.command("view")
@click.argument("run", type=click.Path(exists=True))
@click.option("--html", "out", type=click.Path(dir_okay=False),
              help="Write the page here (default: a temporary file, opened in your browser).")
def view(run: str, out: str | None) -> None:
    """Write one self-contained web page of a run: a chain's steps, a vote's samples and tally, a beam's
    tree, or a bench folder's table (each problem's page goes in NAME-runs/ beside it)."""
    from orchestrator.view import write_view

    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="reason-view-")) / "view.html"
    with user_errors():
        try:
            pages = write_view(Path(run), target)
        except (FileNotFoundError, KeyError, ValueError) as e:
            why = f"{type(e).__name__}: {e}"
            raise ReasonFailure(f"{run} is not a run or bench folder reason can read ({why})") from None
    click.echo(f"wrote {target}" + (f" and {pages - 1} run pages" if pages > 1 else ""))
    if out is None:
        webbrowser.open(target.resolve().as_uri())
