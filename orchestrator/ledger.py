"""Token, dollar and time accounting for every model and tool call, and the `Budget` checked before each.

The budget is enforced by our code, before a call is made: `Budget.check(ledger)` projects the next call's
cost from the calls seen so far (those of the same phase when there are any: a short think call is not
priced like a long review) and raises `BudgetExceeded` if it would overrun, so a run never exceeds its
budget by more than one call's worth. Calls other chains have in flight count at their bound, not at the
projection (`Ledger.reserve`: the prompt plus its `max_tokens`, and that priced), so concurrent samples
cannot all pass the same check and together overrun it by several calls. Each admitted call runs within the
run's deadline (`limits.scope`): no HTTP call, retry or wait outlasts `max_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.errors import BudgetExceeded, Cancelled, ConfigError
from orchestrator.models import limits
from orchestrator.models.base import ChatModel, Completion, Message, Usage


@dataclass
class Bound:
    """The most a call admitted by `Ledger.reserve` can cost: its prompt and `max_tokens`, and that priced."""

    tokens: float = 0.0
    usd: float = 0.0


def call_bound(model: ChatModel, messages: list[Message], max_tokens: int, calls: int = 1) -> Bound:
    """The bound of `calls` calls of `messages` capped at `max_tokens` completion tokens each. The prompt is
    counted at 3 characters a token (English averages about 4: this errs high, as a bound must)."""
    prompt = sum(len(str(m.get("content") or "")) for m in messages) // 3 + 4 * len(messages)
    return Bound(calls * (prompt + max_tokens), calls * model.cost(Usage(prompt, max_tokens)))


@dataclass
class Entry:
    """One accounted call: a model completion (`kind="model"`) or a tool run (`kind="tool"`)."""

    kind: str
    phase: str
    model: str
    usage: Usage
    cost_usd: float
    seconds: float
    cached: bool = False
    cost_source: str = ""  # see `Completion.cost_source`; "unknown": cost_usd is 0 only for want of a price


@dataclass
class Totals:
    """Aggregated usage of a set of entries."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    calls: int = 0
    tool_calls: int = 0
    cost_usd: float = 0.0
    model_seconds: float = 0.0
    tool_seconds: float = 0.0
    unpriced_calls: int = 0  # calls of a model without a known price: `cost_usd` leaves them out

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_known(self) -> bool:
        """Whether `cost_usd` is the whole cost (no call was of a model without a known price)."""
        return self.unpriced_calls == 0

    def add(self, e: Entry) -> None:
        if e.kind == "tool":
            self.tool_calls += 1
            self.tool_seconds += e.seconds
            return
        self.calls += 1
        self.prompt_tokens += e.usage.prompt_tokens
        self.completion_tokens += e.usage.completion_tokens
        self.cached_tokens += e.usage.cached_tokens
        self.reasoning_tokens += e.usage.reasoning_tokens
        self.cost_usd += e.cost_usd
        self.model_seconds += e.seconds
        self.unpriced_calls += e.cost_source == "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_tokens": self.total_tokens}


class Ledger:
    """Append-only, thread-safe record of calls. One per run; strategies share it across samples."""

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self.cancel = cancel  # set by the caller to give the solve up: the next call raises `Cancelled`
        self.entries: list[Entry] = []
        self.runs: list[Any] = []  # the chains that spend from it (`Run`s register themselves): a Ctrl-C's best so far
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self.in_flight = 0  # calls checked against the budget and not yet recorded
        self.reserved = Bound()  # what the calls in flight can cost at most
        self._gate = threading.Lock()

    @contextmanager
    def reserve(self, budget: Budget, calls: int = 1, phase: str | None = None,
                bound: Bound | None = None, clip: bool = False) -> Iterator[int]:
        """Check `budget` for `calls` more calls of `phase`, counting the calls other threads have in flight
        at their bounds, and hold places for these until they are recorded (so concurrent chains cannot all
        pass the same last check). `bound`: what these calls can cost at most (`call_bound`; without one they
        are held at the projection). The calls run within the budget's deadline and the ledger's cancel.
        `clip`: admit as many of the `calls` as the budget has room for, each checked as if the ones before it
        were already in flight at their share of `bound` (as that many separate calls would be), and at least
        one (else `BudgetExceeded`). Yields the number admitted: all `calls` unless clipped."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("the solve was cancelled by its caller")
        if bound is None:
            nxt = budget.next_call(self, phase)
            bound = Bound(calls * nxt["tokens"], calls * nxt["usd"])
        held = bound  # what these calls hold of the budget until they are recorded
        with self._gate:
            if clip and calls > 1:
                each = Bound(bound.tokens / calls, bound.usd / calls)
                admitted = 0
                while admitted < calls and budget.exhausted(
                        self, 1, phase, self.in_flight + admitted,
                        Bound(self.reserved.tokens + admitted * each.tokens,
                              self.reserved.usd + admitted * each.usd)) is None:
                    admitted += 1
                calls, held = max(1, admitted), Bound(each.tokens * max(1, admitted), each.usd * max(1, admitted))
            budget.check(self, calls=1 if clip else calls, phase=phase, in_flight=self.in_flight,
                         reserved=self.reserved)
            self.in_flight += calls
            self.reserved = Bound(self.reserved.tokens + held.tokens, self.reserved.usd + held.usd)
        deadline = None if budget.max_seconds is None else self.started + budget.max_seconds
        try:
            with limits.scope(deadline, self.cancel):
                yield calls
        finally:
            with self._gate:
                self.in_flight -= calls
                self.reserved = Bound(self.reserved.tokens - held.tokens, self.reserved.usd - held.usd)

    def record(self, completion: Completion, phase: str = "think") -> Entry:
        usage = Usage() if completion.cached else completion.usage
        cost = 0.0 if completion.cached else completion.cost_usd
        entry = Entry("model", phase, completion.model, usage, cost, completion.seconds, completion.cached,
                      "" if completion.cached else completion.cost_source)
        with self._lock:
            self.entries.append(entry)
        return entry

    def record_tool(self, seconds: float, phase: str = "act", name: str = "python") -> Entry:
        entry = Entry("tool", phase, name, Usage(), 0.0, seconds)
        with self._lock:
            self.entries.append(entry)
        return entry

    def totals(self, phase: str | None = None) -> Totals:
        t = Totals()
        with self._lock:
            for e in self.entries:
                if phase is None or e.phase == phase:
                    t.add(e)
        return t

    def by_phase(self) -> dict[str, Totals]:
        with self._lock:
            phases = sorted({e.phase for e in self.entries})
        return {p: self.totals(p) for p in phases}

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Budget:
    """Limits for one whole run (all its calls together). `None` means unlimited. Checked before every call,
    never after. (A cap on each call's completion is `ReasonConfig.max_tokens_per_call`.)"""

    max_tokens: int | None = None
    max_usd: float | None = None
    max_seconds: float | None = None
    max_calls: int | None = None
    # Projection used before any call has been seen: a typical call of a small reasoning step.
    first_call_tokens: int = field(default=600, repr=False)

    def next_call(self, ledger: Ledger, phase: str | None = None) -> dict[str, float]:
        """What one more call is expected to cost: the mean of the uncached calls of `phase` so far, else
        (none yet, or no phase given) of all uncached calls."""
        with ledger._lock:
            paid = [e for e in ledger.entries if e.kind == "model" and not e.cached]
        same = [e for e in paid if e.phase == phase] if phase is not None else []
        paid = same or paid
        if not paid:
            return {"tokens": float(self.first_call_tokens), "usd": 0.0, "seconds": 0.0}
        n = len(paid)
        return {
            "tokens": sum(e.usage.total_tokens for e in paid) / n,
            "usd": sum(e.cost_usd for e in paid) / n,
            "seconds": sum(e.seconds for e in paid) / n,
        }

    def remaining(self, ledger: Ledger) -> dict[str, float | None]:
        t = ledger.totals()
        return {
            "tokens": None if self.max_tokens is None else self.max_tokens - t.total_tokens,
            "usd": None if self.max_usd is None else self.max_usd - t.cost_usd,
            "seconds": None if self.max_seconds is None else self.max_seconds - ledger.elapsed,
            "calls": None if self.max_calls is None else self.max_calls - t.calls,
        }

    def exhausted(self, ledger: Ledger, calls: int = 1, phase: str | None = None, in_flight: int = 0,
                  reserved: Bound | None = None) -> str | None:
        """The name of the resource that `calls` more calls (of `phase`) would overrun, or None; `in_flight`
        calls already admitted count too, at `reserved` (their bounds)."""
        t = ledger.totals()
        nxt = self.next_call(ledger, phase)
        held = reserved or Bound()
        if self.max_calls is not None and t.calls + in_flight + calls > self.max_calls:
            return "calls"
        if self.max_tokens is not None and t.total_tokens + held.tokens + calls * nxt["tokens"] > self.max_tokens:
            return "tokens"
        if self.max_usd is not None and t.cost_usd + held.usd + calls * nxt["usd"] > self.max_usd:
            return "usd"
        if self.max_seconds is not None and ledger.elapsed + nxt["seconds"] > self.max_seconds:
            return "seconds"
        return None

    def check(self, ledger: Ledger, calls: int = 1, phase: str | None = None, in_flight: int = 0,
              reserved: Bound | None = None) -> None:
        """Raise `BudgetExceeded` if `calls` more calls (of `phase`), with those in flight, would overrun it."""
        reason = self.exhausted(ledger, calls, phase, in_flight, reserved)
        if reason is not None:
            t = ledger.totals()
            if reason == "tokens" and t.calls == 0 and (self.max_tokens or 0) < self.first_call_tokens:
                # it never had room for one: say so, with the numbers
                raise BudgetExceeded(reason, f"budget: {self.max_tokens} tokens is too small for one call "
                                     f"(one is projected at {self.first_call_tokens} tokens before any is made)")
            raise BudgetExceeded(
                reason,
                f"budget: {reason} exhausted after {t.calls} calls, {t.total_tokens} tokens, "
                f"${t.cost_usd:.4f}, {ledger.elapsed:.1f}s",
            )

    def fraction_left(self, ledger: Ledger) -> float:
        """The smallest fraction left of any limited resource (1.0 when unlimited)."""
        t = ledger.totals()
        fractions = [1.0]
        for limit, used in (
            (self.max_tokens, t.total_tokens),
            (self.max_usd, t.cost_usd),
            (self.max_seconds, ledger.elapsed),
            (self.max_calls, t.calls),
        ):
            if limit:
                fractions.append(max(0.0, 1 - used / limit))
        return min(fractions)

    def refuse_unenforceable(self, model: ChatModel) -> None:
        """Raise `ConfigError` if this budget cannot be kept with `model`: a dollar limit on a model without a
        known price (every call would count $0), or a token limit below what one call is projected to take."""
        if self.max_usd is not None and not model.priced:
            raise ConfigError(
                f"a ${self.max_usd:g} budget cannot be enforced: {model.name} has no known price, so every call "
                "would count as $0. Give its price (`reason --price INPUT OUTPUT`, USD per million tokens, or "
                "a [prices] entry in config.toml), or budget tokens, seconds or calls instead"
            )
        if self.max_tokens is not None and self.max_tokens < self.first_call_tokens:
            raise ConfigError(
                f"a budget of {self.max_tokens} tokens is too small for one call: before any call is made, one "
                f"is projected at {self.first_call_tokens} tokens (prompt + completion). Give at least "
                f"{self.first_call_tokens}; to cap each call's reply instead, use --max-tokens-per-call"
            )

    def limits(self) -> dict[str, float]:
        """The limited resources and their limits: tokens, usd, seconds, calls."""
        pairs = (("tokens", self.max_tokens), ("usd", self.max_usd), ("seconds", self.max_seconds),
                 ("calls", self.max_calls))
        return {name: limit for name, limit in pairs if limit is not None}

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "first_call_tokens"}
