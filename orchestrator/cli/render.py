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
    if step.answer is not None and step.kind in ("think", "answer"):
        head.append(" answer: ", style="dim")
        head.append(step.answer, style="bold")
    if step.tokens:
        head.append(f"  {step.tokens:,} tok", style="dim")
    if step.abandoned:
        head.append("  (abandoned)", style="red dim")
    parts: list[Any] = [head]
    if step.kind == "act":
        code = Syntax(step.code or "", "python", theme="ansi_dark", word_wrap=True)
        parts.append(Padding(code, (0, 0, 0, 2), expand=False))
        style = "red" if step.error else "dim"
        parts.append(_indented(_clip(step.observation or "", 200 if full else 8), style))
    elif step.text and step.kind != "answer":
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
        return Text.assemble(
            self.spinner.render(time.monotonic()), (f" {self.last} · ", "cyan"), (self.totals(), "bold"),
            (f"  {self.model} · {self.strategy}", "dim"), no_wrap=True, overflow="ellipsis",
        )


class LiveView:
    """Renders a run's events on stderr: each step as it happens and, on a terminal, a live counter.

    `mode`: `summary` (a line or two per step), `full` (whole texts) or `hidden` (only the counter).
    Use as a context manager; `on_event` is the `Reasoner` event handler (called from worker threads too).
    Streamed tokens (`stream_tokens=True`) show as the last lines of the step being written.
    """

    def __init__(self, model: str, strategy: str, mode: str = "summary", console: Console | None = None,
                 budget: Budget | None = None, priced: bool = True) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.mode = mode
        self.budget = budget
        self.counter = Counter(model, strategy, budget.limits() if budget else None, priced)
        self.live: Live | None = None
        self.partial = ""
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

    def footer(self) -> Any:
        """The live part under the printed steps: the text being written, then the counter."""
        tail = self.partial.strip().splitlines()[-3:]
        if not tail:
            return self.counter.line()
        return Group(Text("\n".join(tail), style="dim italic", no_wrap=True, overflow="ellipsis"),
                     self.counter.line())

    def on_event(self, kind: str, payload: Any) -> None:
        if kind == "token":
            self.partial += payload
            return
        if kind != "step":
            return
        with self._lock:
            self.partial = ""
            self.counter.add(payload)
            if self.mode != "hidden":
                self.console.print(step_renderable(payload, full=self.mode == "full"))
            if self.live is not None:
                self.live.refresh()

    def summary(self, result: Result) -> None:
        """The closing line: stop reason, usage, time, and where the trajectory is."""
        u = result.usage
        style = "green" if result.answer is not None else "red"
        # The check is whatever verify_by ran: the model's own review (weak on small models), a program, re-solves.
        checked = {True: (" · passed its check", "green"), False: (" · failed its check", "yellow")}
        self.console.print(Text.assemble(
            (result.stop_reason, style),
            checked.get(result.verified, ("", "")),
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
