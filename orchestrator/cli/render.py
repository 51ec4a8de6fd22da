"""What the CLI shows: steps as they happen (rich, on stderr), a running counter, the `--json` object.

Stdout carries only the answer (or the JSON object), so `reason "q" > answer.txt` and pipes stay clean.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.padding import Padding
from rich.spinner import Spinner
from rich.syntax import Syntax
from rich.text import Text

from orchestrator.cli.outcome import tally_text, why_stopped
from orchestrator.kinds import StepKind

if TYPE_CHECKING:
    from orchestrator.ledger import Budget, Totals
    from orchestrator.reasoner import Result
    from orchestrator.trajectory import Step

COLORS = {
    "plan": "blue", "think": "cyan", "act": "magenta", "reflect": "yellow", "verify": "green",
    "answer": "bold green", "lesson": "bright_blue", "backtrack": "red", "format_error": "red",
}
MODES = ("summary", "full", "hidden")


def reward_style(reward: float) -> str:
    return "green" if reward >= 0.8 else "yellow" if reward >= 0.5 else "red"


def _clip(text: str, lines: int, width: int = 400) -> str:
    rows = text.strip().splitlines() or [""]
    kept = [r if len(r) <= width else r[:width] + "…" for r in rows[:lines]]
    if len(rows) > lines:
        kept.append(f"… ({len(rows) - lines} more lines)")
    return "\n".join(kept)


def _indented(text: str, style: str) -> Text:
    return Text("\n".join("  " + line for line in text.splitlines()), style=style)


def step_renderable(step: Step, full: bool = False, sample: int | None = None) -> Any:
    """One step: a header line (kind, reward or verdict, tokens) and its text, code and output."""
    head = Text()
    if sample is not None:
        head.append(f"[{sample}] ", style="dim")
    style = COLORS.get(step.kind, "white") + (" strike" if step.abandoned else "")
    head.append(f"{step.kind:<12}", style=style)
    if step.reward is not None:
        head.append(f" reward {step.reward:.2f}", style=reward_style(step.reward))
    if step.verdict is not None:
        ok = step.verdict
        head.append(" ✓ correct" if ok else " ✗ incorrect", style="green" if ok else "red")
    if step.answer is not None and step.kind in (StepKind.THINK, StepKind.ANSWER):
        head.append(" answer: ", style="dim")
        head.append(step.answer, style="bold")
    if step.tokens:
        head.append(f"  {step.tokens:,} tok", style="dim")
    if step.abandoned:
        head.append("  (abandoned)", style="red dim")
    parts: list[Any] = [head]
    if step.kind == StepKind.ACT:
        code = Syntax(step.code or "", "python", theme="ansi_dark", word_wrap=True)
        parts.append(Padding(code, (0, 0, 0, 2), expand=False))
        style = "red" if step.error else "dim"
        parts.append(_indented(_clip(step.observation or "", 200 if full else 8), style))
    elif step.text and step.kind != StepKind.ANSWER:
        body = step.text.strip() if full else _clip(step.text, 2, 160)
        parts.append(_indented(body, "" if full else "dim"))
    return Group(*parts)


def usd(amount: float, known: bool = True) -> str:
    """A dollar figure, or `$?` when some call had no known price (never a made-up $0)."""
    return f"${amount:.4f}" if known else (f"${amount:.4f}+?" if amount else "$?")


def used(value: float, limit: float | None, fmt: str) -> str:
    """`value` in `fmt`, with `/limit` when the budget limits it: `1,234/20,000`."""
    return format(value, fmt) + ("" if limit is None else "/" + format(limit, fmt))


class Counter:
    """The running totals under the live steps: steps, calls, tokens, dollars, seconds, each against its
    budget where the run has one (`1,234/20,000 tokens`)."""

    def __init__(self, model: str, strategy: str, limits: dict[str, float] | None = None,
                 priced: bool = True) -> None:
        self.model, self.strategy = model, strategy
        self.limits = limits or {}
        self.started = time.monotonic()
        self.steps = self.tokens = self.calls = 0
        self.usd = 0.0
        self.priced = priced
        self.last = "starting"
        self.spinner = Spinner("dots", style="cyan")

    def add(self, step: Step) -> None:
        self.steps += 1
        self.tokens += step.tokens
        self.calls += len(step.calls)
        self.usd += step.cost_usd
        self.priced = self.priced and all(c.cost_source != "unknown" for c in step.calls)
        self.last = step.kind

    def totals(self) -> str:
        """`2 steps · 3/10 calls · 1,234/20,000 tokens · $0.0012/$0.05 · 4.2/60s`."""
        lim = self.limits
        money = usd(self.usd, self.priced) + ("" if "usd" not in lim else f"/${lim['usd']:g}")
        return (f"{self.steps} steps · {used(self.calls, lim.get('calls'), ',')} calls · "
                f"{used(self.tokens, lim.get('tokens'), ',')} tokens · {money} · "
                f"{used(time.monotonic() - self.started, lim.get('seconds'), '.1f')}s")

    def line(self) -> Text:
        frame = self.spinner.render(time.monotonic())
        assert isinstance(frame, Text)  # a spinner without a text of its own renders its frame as a Text
        return Text.assemble(
            frame, (f" {self.last} · ", "cyan"), (self.totals(), "bold"),
            (f"  {self.model} · {self.strategy}", "dim"), no_wrap=True, overflow="ellipsis",
        )


class LiveView:
    """Renders a run's events on stderr: each step as it happens and, on a terminal, a live footer.

    `mode`: `summary` (a line or two per step), `full` (whole texts) or `hidden` (only the footer).
    Use as a context manager; `on_event` is the `Reasoner` event handler (called from worker threads too).
    Steps of a several-sample strategy are labelled `[sample]`, and each finished sample prints the running
    tally. The footer names the calls in flight and shows the last lines each one is streaming.
    """

    def __init__(self, model: str, strategy: str, mode: str = "summary", console: Console | None = None,
                 budget: Budget | None = None, priced: bool = True) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.mode = mode
        self.strategy = strategy
        self.several = strategy not in ("chain", "plain")
        self.counter = Counter(model, strategy, budget.limits() if budget else None, priced)
        self.live: Live | None = None
        self.partial: dict[int, str] = {}  # sample -> the text its call in flight has streamed so far
        self.in_flight: dict[int, str] = {}  # sample -> the phase of its call in flight
        self.tally: dict[str, int] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=8, transient=True,
                             redirect_stdout=False, redirect_stderr=False, get_renderable=self.footer)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def calls_text(self) -> str:
        """The calls in flight: `think` for one chain, `[2] reflect, [3] think` for several."""
        with self._lock:
            flying = sorted(self.in_flight.items())
        if not flying:
            return "waiting"
        return ", ".join(f"[{s}] {phase}" if self.several else phase for s, phase in flying)

    def footer(self) -> Any:
        """The live part under the printed steps: what the calls in flight are writing, then the counter."""
        self.counter.last = self.calls_text()
        with self._lock:
            streams = sorted(self.partial.items())
        lines = []
        for sample, text in streams[-4:]:
            tail = text.strip().splitlines()[-(3 if len(streams) == 1 else 1):]
            lines += [f"[{sample}] {line}" if self.several else line for line in tail]
        if not lines:
            return self.counter.line()
        return Group(Text("\n".join(lines), style="dim italic", no_wrap=True, overflow="ellipsis"),
                     self.counter.line())

    def on_event(self, kind: str, payload: Any) -> None:
        sample = getattr(payload, "sample", 0)
        with self._lock:
            if kind == "token":
                self.partial[sample] = self.partial.get(sample, "") + payload
            elif kind == "call":
                self.in_flight[sample] = str(payload)
                self.partial.pop(sample, None)
            elif kind == "called":
                self.in_flight.pop(sample, None)
        if kind == "step":
            self._step(payload)
        elif kind == "stop" and self.several and self.strategy != "beam":
            self._finished_sample(payload)

    # Our lock guards our own state only and is never held while calling into rich: the footer takes it from
    # Live's refresh thread while holding Live's lock, and printing takes Live's lock.
    def _step(self, step: Step) -> None:
        with self._lock:
            self.partial.pop(step.sample, None)
            self.counter.add(step)
        if self.mode != "hidden":
            self.console.print(step_renderable(step, full=self.mode == "full",
                                               sample=step.sample if self.several else None))
        if self.live is not None:
            self.live.refresh()

    def _finished_sample(self, run: Any) -> None:
        if run.trajectory.header.get("role"):  # a scorer's record (judge, check), not a sample
            return
        final = getattr(run, "final", None)
        label = "no answer" if final is None else final.normalized or final.answer
        with self._lock:
            self.tally[label] = self.tally.get(label, 0) + 1
            tally = tally_text(self.tally)
        if self.mode != "hidden":
            self.console.print(Text.assemble((f"[{run.sample}] ", "dim"), ("done", "bold"), (f" · tally: {tally}", "")))

    def summary(self, result: Result) -> None:
        """The closing lines: stop reason (and, for several samples, why and the tally), usage, trajectory."""
        u = result.usage
        style = "green" if result.answer is not None else "red"
        # Verified only by independent evidence (a program we ran, agreeing samples), never the model's review.
        if result.answer is None:
            checked = ("", "")
        elif result.verified is True:
            checked = (f" · verified: {result.evidence}", "green")
        elif result.verified is False:
            checked = (f" · check failed: {result.evidence}", "yellow")
        else:
            checked = (f" · unverified: {result.evidence or 'no check supports it'}", "yellow")
        why = why_stopped(result.strategy, result.stop_reason, result.details, result.samples_used,
                          result.samples_allowed)
        votes = result.details.get("votes") if self.several else None
        self.console.print(Text.assemble(
            (result.stop_reason, style),
            (f": {why}" if why else "", style),
            checked,
            (f" · votes {tally_text(votes)}" if votes else "", ""),
            (f" · {len(result.steps)} steps · {self._used(u.calls, 'calls', ',')} calls · "
             f"{self._used(u.total_tokens, 'tokens', ',')} tokens · {self._money(u)} · "
             f"{self._used(result.seconds, 'seconds', '.1f')}s", "dim"),
        ))
        if result.trajectory_path:
            self.console.print(f"[dim]trajectory: {escape(result.trajectory_path)}[/dim]")

    def _used(self, value: float, resource: str, fmt: str) -> str:
        return used(value, self.counter.limits.get(resource), fmt)

    def _money(self, u: Totals) -> str:
        limit = self.counter.limits.get("usd")
        return usd(u.cost_usd, u.cost_known and self.counter.priced) + ("" if limit is None else f"/${limit:g}")


def result_json(result: Result) -> dict[str, Any]:
    """The `--json` object: the answer, the usage, and the steps (without prompts and raw outputs)."""
    data = result.to_dict()
    keep = ("kind", "text", "reward", "tokens", "cost_usd", "attempt", "answer", "verdict", "code",
            "observation", "error", "abandoned")
    data["steps"] = [
        {k: v for k, v in step.items() if k in keep and (v is not None or k in ("reward",))}
        for step in data["steps"]
    ]
    return data
