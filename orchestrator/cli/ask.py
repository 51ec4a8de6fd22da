"""`reason ask` (the default command): answer a question with a model, a strategy and a budget.

Flags follow the habits users bring from simonw/llm and the OpenAI CLI: `-s` is the system prompt, `-o KEY
VALUE` a model option, `-t` the temperature. Budgets are for the whole run and say so (`--budget-tokens`);
`--max-tokens-per-call` caps each call. `docs/cli.md` has the full story.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from orchestrator.cli.checks import EXIT_CODES, BudgetValue, JsonCommand, check_inputs, exit_code, interruptible
from orchestrator.cli.common import (
    ReasonFailure,
    check_strategy,
    interrupts,
    new_entries,
    parse_pairs,
    read_stdin,
    settings,
    stdin_is_terminal,
    user_errors,
    warn,
)
from orchestrator.kinds import StopReason

if TYPE_CHECKING:
    from orchestrator.strategies.knobs import Knobs

LOCAL_PROVIDERS = ("local", "fake", "replay")
BUDGETS = ("tokens", "usd", "seconds", "calls")
EXAMPLES = """Examples:

\b
  reason "What is 9.11 - 9.8?"
  echo "How many r's are in strawberry?" | reason --json
  reason -m gpt-4o-mini --strategy vote --budget-usd 0.02 "..."
  reason -m http://127.0.0.1:8080/v1#my-model -s "You are terse" -t 0.2 "..."
  reason --budget-tokens 20000 --max-tokens-per-call 512 "..."
  reason --tools "What is the 30th Fibonacci number?"

Budgets are for the whole run (all calls): --budget-tokens, --budget-usd, --budget-seconds, --budget-calls
(--max-usd, --max-seconds and --max-calls are the same flags; --max-tokens is the old name of --budget-tokens
and warns).

""" + EXIT_CODES


class AskCommand(JsonCommand):
    """`ask`, whose help ends with examples and the strategies (read when help is shown, not at import)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from orchestrator.strategies import DESCRIPTIONS

        super().format_epilog(ctx, formatter)
        with formatter.section("Strategies (--strategy NAME; `reason strategies` lists their -S options)"):
            formatter.write_dl(list(DESCRIPTIONS.items()))


def read_question(words: tuple[str, ...]) -> str:
    """The question from the arguments; `-` (or no argument, with piped input) reads stdin."""
    if not words:
        if stdin_is_terminal():
            raise click.UsageError('no question: try `reason "What is 9.11 - 9.8?"` or pipe one on stdin')
        words = ("-",)
    stdin = read_stdin() if "-" in words else ""
    question = " ".join(stdin if w == "-" else w for w in words).strip()
    if not question:
        raise click.UsageError("the question is empty")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8 in argv arrive as lone surrogates
        raise click.UsageError("the question is not valid UTF-8 text") from None
    return question


def pick_strategy(strategy: str | None, system: str | None) -> tuple[str | None, str | None]:
    """(strategy, system): `-s` is the system prompt, as in llm; `-s STRATEGY_NAME` (its meaning before) is
    still read as the strategy, with a warning, for one release."""
    from orchestrator.strategies import STRATEGIES

    if system in STRATEGIES and strategy is None:
        warn(f"`-s {system}` now sets the system prompt (as in llm); reading it as `--strategy {system}` "
             "this once. Use --strategy.")
        return system, None
    return strategy, system


def call_options(options: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """`-o` pairs, with the knobs `reason` owns moved to their flags: `-o temperature` is `-t`, `-o max_tokens`
    is `--max-tokens-per-call` and `-o seed` is `--seed` (sent to the provider as is, they would override
    the retry temperature and the per-phase caps of every call)."""
    for key, flag in (("temperature", "temperature"), ("max_tokens", "max_tokens_per_call"), ("seed", "seed")):
        if key in options:
            value = options.pop(key)
            if flags[flag] is None:
                flags[flag] = value
    return options


def strategy_knobs(strategy: str, pairs: tuple[tuple[str, str], ...]) -> Knobs:
    """`-S KEY VALUE` pairs sorted into config fields, budgets and the strategy's options
    (`strategies.knobs.split_settings`); a bad key or value is a one-line usage error (exit 2)."""
    from orchestrator.errors import ConfigError
    from orchestrator.strategies.knobs import split_settings

    try:
        return split_settings(strategy, parse_pairs(pairs))
    except ConfigError as e:
        raise ReasonFailure(f"-S: {e}", exit_code=2) from None


def budget_of(flags: dict[str, Any], s: Any) -> dict[str, Any]:
    """The whole-run budget from the flags, else the config file."""
    if flags["max_tokens"] is not None:
        warn("--max-tokens is now --budget-tokens (all calls of the run together); it will cap each call, as "
             "in OpenAI's API and llm, in the next release: for that, use --max-tokens-per-call")
        flags["budget_tokens"] = flags["budget_tokens"] or flags["max_tokens"]
    return {f"max_{r}": flags[f"budget_{r}"] if flags[f"budget_{r}"] is not None else getattr(s, f"budget_{r}")
            for r in BUDGETS}


@click.command(cls=AskCommand, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXAMPLES)
@click.argument("question", nargs=-1)
@click.option("-m", "--model", help="Model name: gpt-4o-mini, claude-haiku-4-5, local/…, http://HOST/v1#NAME "
              "(`reason models` lists them). Default: config, else the embedded local model.")
@click.option("--strategy", help="Strategy: crosscheck (default) or one listed below.")
@click.option("-S", "--strategy-option", "strategy_options", nargs=2, multiple=True, metavar="KEY VALUE",
              help="A setting: the strategy's option (-S samples 5), a config field (-S max_attempts 3) or a "
                   "budget (-S budget_usd 0.05); values parsed as JSON when possible. `reason strategies` lists "
                   "the options.")
@click.option("-s", "--system", help="Extra system instructions, appended to the built-in system prompt.")
@click.option("-o", "--option", "options", nargs=2, multiple=True, metavar="KEY VALUE",
              help="A model option passed to the provider, e.g. -o top_p 0.9 (JSON when possible).")
@click.option("-t", "--temperature", type=click.FloatRange(0, 2),
              help="Sampling temperature of the first attempt (retries and samples use their own).")
@click.option("--key", help="API key for this run (overrides stored keys and environment variables).")
@click.option("--prompts", "prompts_dir", type=click.Path(exists=True, file_okay=False),
              help="A folder of .j2 templates overriding the built-in prompts file by file.")
@click.option("--budget-tokens", type=BudgetValue(integer=True),
              help="Token budget of the whole run (all calls, prompt + completion).")
@click.option("--budget-usd", "--max-usd", "budget_usd", type=BudgetValue(),
              help="Dollar budget of the whole run (refused for a model without a known price: see --price).")
@click.option("--budget-seconds", "--max-seconds", "budget_seconds", type=BudgetValue(),
              help="Wall-clock budget of the whole run: a deadline no call or wait outlasts.")
@click.option("--budget-calls", "--max-calls", "budget_calls", type=BudgetValue(integer=True),
              help="Model-call budget of the whole run.")
@click.option("--max-tokens", type=BudgetValue(integer=True), hidden=True, help="Old name of --budget-tokens.")
@click.option("--max-tokens-per-call", type=click.IntRange(min=16),
              help="Completion cap of each call (default 1024; reflections and checks ask for less).")
@click.option("--price", nargs=2, type=click.FloatRange(min=0), metavar="INPUT OUTPUT",
              help="USD per million input and output tokens, for a model without a known price.")
@click.option("--max-steps", type=click.IntRange(1, 1000), help="Step budget the model sees (default 20).")
@click.option("--attempts", type=click.IntRange(1, 20), help="Attempts; each failed one leaves a lesson (2).")
@click.option("--kind", type=click.Choice(["auto", "math", "choice", "code", "text"]),
              help="Answer kind (default: guessed from the question).")
@click.option("--seed", type=int, help="Sampling seed, for backends that accept one.")
@click.option("--tools/--no-tools", default=None, help="Let the model run Python in the sandbox.")
@click.option("--sandbox", type=click.Choice(["local", "local-unsafe", "e2b"]), help="Sandbox for --tools.")
@click.option("--verify-by", type=click.Choice(["auto", "judge", "program", "resolve"]),
              help="How an answer is checked: the model's own review (judge), a program we run (program: "
              "math with --tools), N independent re-solves that vote (resolve), or auto (program, else judge).")
@click.option("--tool-protocol", type=click.Choice(["native", "fenced"]),
              help="How --tools reaches the model: its provider's tool calling where it has one (native, the "
                   "default), or ```python fences for every model.")
@click.option("--cache/--no-cache", default=None, help="Serve repeated identical calls from the disk cache.")
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Where to write the trajectory.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (answer, usage, steps).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the answer: no live view on stderr.")
@click.option("--show-thinking/--hide-thinking", "thinking", default=None,
              help="Show each step's whole text, or no steps at all (default: a line or two per step).")
def ask(question: tuple[str, ...], model: str | None, strategy: str | None, strategy_options: tuple,
        options: tuple, key: str | None, as_json: bool, quiet: bool, thinking: bool | None,
        **flags: Any) -> None:
    """Answer QUESTION, reasoning step by step within a budget.

    The answer goes to stdout, the live view of the steps to stderr. `-` as QUESTION (or no QUESTION with
    piped input) reads stdin. Exit codes: 0 answered and verified, 3 answered but unverified (or a check
    failed), 4 stopped on the budget with a best-so-far answer, 1 no answer or an error, 2 bad usage, 130
    interrupted (Ctrl-C or SIGTERM: the best answer so far is printed first; a second one exits at once). With `--json`
    stdout is one JSON object whatever happens (`error` set on a failure; docs/output.md lists its fields).
    """
    text = read_question(question)
    s = settings()
    from pydantic import ValidationError

    from orchestrator.config import ReasonConfig
    from orchestrator.errors import ConfigError
    from orchestrator.ledger import Budget
    from orchestrator.models import DEFAULT_MODEL, get_model, pricing, provider_of
    from orchestrator.models.base import CallOptions
    from orchestrator.reasoner import Reasoner
    from orchestrator.trajectory import default_runs_dir

    model = model or s.model or DEFAULT_MODEL
    strategy, flags["system"] = pick_strategy(strategy, flags["system"])
    strategy = check_strategy(strategy or s.strategy)
    if key and provider_of(model) in LOCAL_PROVIDERS:
        raise click.BadParameter(f"{model} does not use an API key", param_hint="'--key'")
    extra = call_options(parse_pairs(options), flags)
    knobs = strategy_knobs(strategy, strategy_options)
    budget = Budget(**{**budget_of(flags, s), **knobs.budget})
    fields = {name: value for flag, name in (
        ("max_steps", "max_steps"), ("attempts", "max_attempts"), ("kind", "kind"), ("seed", "seed"),
        ("system", "system"), ("prompts_dir", "prompts_dir"), ("verify_by", "verify_by"),
        ("temperature", "temperature"), ("max_tokens_per_call", "max_tokens_per_call"),
    ) if (value := flags[flag] if flags[flag] is not None else getattr(s, flag, None)) is not None}
    try:
        config = ReasonConfig(**{**fields, **knobs.config})
    except ValidationError as e:  # a value that came in through `-o` (the flags check their own)
        first = e.errors()[0]
        raise click.UsageError(f"{first['loc'][0]}: {first['msg']} (got {first['input']!r})") from None
    if flags["tool_protocol"] is not None:
        config.native_tools = flags["tool_protocol"] == "native"
    runs_dir = Path(flags["runs_dir"] or s.runs_dir or default_runs_dir())
    check_inputs(parse_pairs(options), runs_dir, config.prompts_dir)
    with user_errors():
        chat_model = get_model(model, options=CallOptions(extra=extra), **({"api_key": key} if key else {}))
        if price := flags["price"] or s.prices.get(model):
            pricing.register(getattr(chat_model, "pricing_name", chat_model.name), *price)
        try:
            budget.refuse_unenforceable(chat_model)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        reasoner = Reasoner(
            chat_model, strategy, budget, config, runs_dir=runs_dir,
            sandbox=flags["sandbox"] or knobs.config.get("sandbox") or s.sandbox,
            tools=flags["tools"] if flags["tools"] is not None else knobs.config.get("tools", s.tools),
            cache=s.cache if flags["cache"] is None else flags["cache"],
            strategy_options=knobs.options,
            # tokens shown live in the footer as they come, from every call that can stream
            stream_tokens=thinking is not False and not quiet and sys.stderr.isatty(),
        )
    before = set(runs_dir.iterdir()) if runs_dir.is_dir() else set()
    try:
        with interrupts(), user_errors(trajectory=lambda: new_entries(runs_dir, before)):
            if quiet:
                result = interruptible(reasoner.solve, text)
            else:
                from orchestrator.cli.render import LiveView

                mode = {None: "summary", True: "full", False: "hidden"}[thinking]
                with LiveView(chat_model.name, strategy, mode, budget=budget,
                              priced=chat_model.priced) as view:
                    result = interruptible(reasoner.solve, text, on_event=view.on_event)
                view.summary(result)
    finally:
        reasoner.close()
    if as_json:
        from orchestrator.cli.render import result_json

        click.echo(json.dumps({**result_json(result), "exit_code": exit_code(result)}, ensure_ascii=False))
        click.get_current_context().meta["json_printed"] = True
    elif result.answer is not None:
        click.echo(result.answer)
    if result.answer is not None and result.stop_reason == StopReason.FORMAT_ERRORS:
        click.echo("warning: stopped on format_errors: the model's last replies were unreadable, so this answer "
                   "was never reviewed", err=True)
    where = f" (trajectory: {result.trajectory_path})" if result.trajectory_path else ""
    if result.stop_reason == StopReason.INTERRUPTED:
        found = "the best answer so far, unverified, is above" if result.answer is not None else "no answer yet"
        raise ReasonFailure(f"interrupted: {found}{where}", exit_code=130)
    if result.answer is None:
        why = result.stop_reason + (f": {result.error}" if result.error else "")
        raise ReasonFailure(f"no answer ({why}){where}")
    code = exit_code(result)
    if code:  # answered, unverified or stopped on the budget: scripts can tell these from a verified answer
        raise SystemExit(code)
