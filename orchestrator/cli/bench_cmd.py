"""`reason bench`: compare models x strategies x budgets on a benchmark; `report` and `diff` read the results.

    reason bench --dataset gsm8k --limit 100 -m openai/gpt-4o-mini -s plain -s chain --out runs/gsm8k
    reason bench report runs/gsm8k
    reason bench diff runs/gsm8k --a plain --b chain

A thin layer over `orchestrator.bench` (runner, report); this module only parses options and shows progress.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import ReasonFailure, check_strategy, user_errors, warn
from orchestrator.kinds import StopReason


def _budgets(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    from orchestrator.bench.arms import parse_budget
    from orchestrator.errors import ConfigError

    for value in values:
        try:
            parse_budget(value)
        except ConfigError as e:
            raise click.BadParameter(str(e)) from None
    return values


def _strategies(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    from orchestrator.bench.arms import parse_strategy
    from orchestrator.errors import ConfigError

    for value in values:
        check_strategy(value.partition(":")[0].strip())
        try:
            parse_strategy(value)  # an unknown key or a bad value: refused before any model call
        except ConfigError as e:
            raise click.BadParameter(str(e), param_hint="'-s' / '--strategy'") from None
    return values


def price_models(arms: list[Any]) -> None:
    """Register the `[prices]` of config.toml for the arms' models, and refuse a dollar budget on a model that
    still has no known price (every call would count $0: the budget would never stop anything)."""
    from orchestrator.cli.common import settings
    from orchestrator.errors import ConfigError
    from orchestrator.models import get_model, pricing, provider_of

    prices = settings().prices
    for name in dict.fromkeys(a.model for a in arms):
        dollars = [a.budget for a in arms if a.model == name and a.budget.max_usd is not None]
        if provider_of(name) in ("local", "fake", "replay") or not (dollars or name in prices):
            continue  # a local model is free: nothing to look up (and no weights to load for it)
        model = get_model(name)
        try:
            if name in prices:
                pricing.register(getattr(model, "pricing_name", model.name), *prices[name])
            for budget in dollars:
                budget.refuse_unenforceable(model)
        except ConfigError as e:
            raise click.UsageError(f"{e} (in `reason bench`: a [prices] entry for {name!r})") from None
        finally:
            model.close()


def _datasets_help() -> str:
    from orchestrator.bench.datasets import DATASETS

    names = "\n".join(f"  {name:<11} {info.size:>5}  {info.description}" for name, info in DATASETS.items())
    return f"Datasets (or a .jsonl file of {{\"question\", \"answer\"}} lines):\n\n\b\n{names}"


@click.group("bench", invoke_without_command=True, epilog=_datasets_help(),
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-d", "--dataset", help="A built-in benchmark (below) or a .jsonl file.")
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Problems to sample (default: all).")
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True,
              help="Leave out the sample's first SKIP problems: --limit 200 --skip 150 solves problems 151-200 of "
              "the draw --limit 200 takes (e.g. to extend or hold out part of an earlier run).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Sample seed (the same seed, the same problems); also passed to the models.")
@click.option("-m", "--model", "models", multiple=True, metavar="MODEL",
              help="A model to compare (repeatable): local/…, openai/…, http://HOST/v1#NAME, "
              "router/CONFIG.yaml…")
@click.option("-s", "--strategy", "strategies", multiple=True, callback=_strategies, metavar="STRATEGY",
              help="A strategy to compare (repeatable; default: plain and chain). STRATEGY:KEY=VALUE,... sets "
              "its config or options, e.g. chain:verify_by=resolve or vote:samples=16.")
@click.option("-b", "--budget", "budgets", multiple=True, callback=_budgets, metavar="SPEC",
              help="Per-problem budget, e.g. tokens=20000,usd=0.05,seconds=60,calls=30 (repeatable: one "
              "point per budget on the scaling curve).")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=8, show_default=True,
              help="Problems in flight per remote model (local models: see --local-slots).")
@click.option("--local-slots", type=click.IntRange(min=1), default=1, show_default=True,
              help="Problems a local model solves at once, their calls decoded together in batches (faster "
              "on a CPU: ~2.4x at 8; greedy text can differ where two tokens tie within rounding).")
@click.option("--cache/--no-cache", default=False, show_default=True, help="Reuse identical completions.")
@click.option("--tools", is_flag=True, help="Let the model run Python in the sandbox.")
@click.option("--retry-errors", is_flag=True, help="Solve again the problems whose recorded row is an error.")
@click.option("--trajectories/--no-trajectories", default=True, show_default=True,
              help="Keep the full trajectory of every solve in OUT/trajectories/.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: results.jsonl (resumable), summary.md/.json, scaling.png.")
@click.option("-o", "old_out", type=click.Path(file_okay=False, path_type=Path), hidden=True,
              help="Old short name of --out (-o is a model option in `reason ask`).")
@click.pass_context
def bench(ctx: click.Context, dataset: str | None, limit: int | None, skip: int, seed: int, models: tuple[str, ...],
          strategies: tuple[str, ...], budgets: tuple[str, ...], concurrency: int, local_slots: int,
          cache: bool, tools: bool, retry_errors: bool, trajectories: bool, out: Path | None,
          old_out: Path | None) -> None:
    """Run every (model, strategy, budget) arm on the same problems and report accuracy (95% CI), tokens,
    $ and latency per arm, with a plot of accuracy against tokens per problem.

    Results are appended to OUT/results.jsonl as each problem finishes: rerun the same command after a
    crash or Ctrl-C and it resumes where it stopped.
    """
    if ctx.invoked_subcommand is not None:
        return
    if old_out is not None:
        warn("`reason bench -o DIR` is now `--out DIR` (-o is a model option in `reason ask`); reading it as "
             "--out this once")
        out = out or old_out
    missing = [flag for flag, value in (("--dataset", dataset), ("-m/--model", models), ("--out", out))
               if not value]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (see `reason bench --help`)")
    assert dataset is not None and out is not None
    from orchestrator.bench.arms import make_arms, write_manifest
    from orchestrator.bench.datasets import load_dataset
    from orchestrator.bench.runner import Hooks, run_bench

    with user_errors():
        problems = load_dataset(dataset, limit=limit, seed=seed)
        if not problems:
            raise ReasonFailure(f"{dataset} has no problems")
        if skip >= len(problems):
            raise ReasonFailure(f"--skip {skip} leaves none of the {len(problems)} problems of the sample")
        problems = problems[skip:]
        arms = make_arms(list(models), list(strategies or ("plain", "chain")), list(budgets), tools)
        price_models(arms)
        name = str(Path(dataset).resolve()) if Path(dataset).is_file() else dataset
        command = shlex.join(["reason", "bench", *sys.argv[sys.argv.index("bench") + 1:]]) \
            if "bench" in sys.argv else None
        write_manifest(out, name, seed, limit, arms, [p.id for p in problems], command)
    progress = BenchProgress()
    click.echo(f"{dataset}: {len(problems)} problems x {len(arms)} arms -> {out}", err=True)
    try:
        with user_errors(), progress:
            run_bench(problems, arms, out, concurrency=concurrency, local_slots=local_slots, seed=seed, cache=cache,
                      save_trajectories=trajectories, retry_errors=retry_errors,
                      hooks=Hooks(progress.start, progress.row, progress.notice))
    except ReasonFailure as e:
        if e.exit_code != 130:
            raise
        raise ReasonFailure(f"interrupted: {progress.rows} results recorded this time in "
                            f"{out / 'results.jsonl'}; run the same command again to resume",
                            exit_code=130) from None
    _report(out)


@bench.command("report")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
def report(out: Path) -> None:
    """Regenerate summary.md, summary.json and scaling.png of OUT from its results.jsonl."""
    _report(out)


@bench.command("diff")
@click.argument("run_a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(exists=True, file_okay=False, path_type=Path), required=False)
@click.option("--a", "arm_a", metavar="ARM", help="Arm of RUN_A (its key, or a unique part of it).")
@click.option("--b", "arm_b", metavar="ARM", help="Arm of RUN_B (or of RUN_A when only one run is given).")
@click.option("--show", type=click.IntRange(min=0), default=20, show_default=True,
              help="Problem ids listed per direction.")
def diff(run_a: Path, run_b: Path | None, arm_a: str | None, arm_b: str | None, show: int) -> None:
    """Per-problem diff of two runs (arms with the same key), or of two arms of one run: which problems
    flipped right -> wrong and wrong -> right, with McNemar's exact test."""
    from orchestrator.bench.report import diff_arms, format_diff, load_rows, pairs_to_diff

    with user_errors():
        rows_a = load_rows(run_a)
        rows_b = load_rows(run_b) if run_b else rows_a
        keys_a, keys_b = _keys(rows_a), _keys(rows_b)
        pairs = pairs_to_diff(keys_a, keys_b, arm_a, arm_b, same=run_b is None)
        for i, (a, b) in enumerate(pairs):
            click.echo(("\n" if i else "") + format_diff(diff_arms(rows_a, a, rows_b, b), show))


def _keys(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["arm"] for r in rows))


def _report(out: Path) -> None:
    from orchestrator.bench.report import write_report

    with user_errors():
        result = write_report(out)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(result.table)
    written = [result.markdown, result.json, *([result.plot] if result.plot else [])]
    click.echo("wrote " + ", ".join(str(p) for p in written), err=True)


def _short(key: str) -> str:
    """An arm key shortened for a progress line: `http://host/v1#m|chain|calls=5` -> `m chain calls=5`."""
    model, strategy, label = key.split("|", 2)
    if "#" in model or model.startswith("router/"):
        model = model.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
    return " ".join(filter(None, (model, strategy, label)))


class BenchProgress:
    """A rich progress bar per arm on stderr, with running accuracy, tokens and $; plain lines when stderr
    is not a terminal."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.rows = 0
        self.tasks: dict[str, Any] = {}
        self.stats: dict[str, list[float]] = {}  # arm -> [rows, correct, tokens, usd, errors]
        self.total = 0
        self._progress: Any = None

    def __enter__(self) -> BenchProgress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[stats]}"), console=self.console,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, todo: dict[str, int], done: int) -> None:
        self.total = sum(todo.values())
        if done:
            self.console.print(f"resuming: {done} results already recorded, {self.total} to go")
        for arm, count in todo.items():
            self.stats[arm] = [0, 0, 0, 0.0, 0]
            if self._progress is not None:
                self.tasks[arm] = self._progress.add_task(_short(arm), total=count, stats="")

    def row(self, row: dict[str, Any]) -> None:
        from orchestrator.bench.stats import usd

        self.rows += 1
        s = self.stats.setdefault(row["arm"], [0, 0, 0, 0.0, 0])
        s[0] += 1
        s[1] += bool(row.get("correct"))
        s[2] += (row.get("prompt_tokens") or 0) + (row.get("completion_tokens") or 0)
        s[3] += row.get("cost_usd") or 0.0
        s[4] += row.get("stop_reason") == StopReason.ERROR
        text = (f"acc {100 * s[1] / s[0]:.0f}% ({s[1]}/{s[0]}) {s[2] / 1000:.1f}k tok ${usd(s[3])}"
                + (f" {s[4]} errors" if s[4] else ""))
        if self._progress is not None and row["arm"] in self.tasks:
            self._progress.update(self.tasks[row["arm"]], advance=1, stats=text)
        elif self.total and (self.rows % max(1, self.total // 10) == 0 or self.rows == self.total):
            self.console.print(f"[{self.rows}/{self.total}] {row['arm']}: {text}", highlight=False,
                               soft_wrap=True)

    def notice(self, text: str) -> None:
        self.console.print(text, style="yellow", highlight=False, soft_wrap=True)
