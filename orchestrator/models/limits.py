"""The limits of the model call being made: a deadline (the run's `--max-seconds`) and a cancel event.

The ledger sets them around every call it admits (`scope`); remote adapters read them, so that no wait
outlasts them: the HTTP call itself (`bounded` waits for it in this thread while a daemon thread makes it, and
gives it up when the deadline passes or the solve is cancelled), the waits between retries (`fit_wait`,
`sleep`) and each new attempt (`checkpoint`). A call given up is never waited for: a hung server, a 1-byte/s
drip or a `Retry-After: 30` costs at most the time the budget has left, and Ctrl-C ends the call at once.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.errors import BudgetExceeded, Cancelled

T = TypeVar("T")
POLL = 0.05  # seconds between looks at the cancel event while a call runs


@dataclass(frozen=True)
class CallLimits:
    """When the call must be over (`time.monotonic()` seconds; None: no deadline) and what cancels it."""

    deadline: float | None = None
    cancel: threading.Event | None = None

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


NONE = CallLimits()
_CURRENT: contextvars.ContextVar[CallLimits] = contextvars.ContextVar("call_limits", default=NONE)


@contextmanager
def scope(deadline: float | None, cancel: threading.Event | None) -> Iterator[CallLimits]:
    """Make `deadline` and `cancel` the limits of the calls made in this block (in this thread)."""
    token = _CURRENT.set(CallLimits(deadline, cancel))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def current() -> CallLimits:
    """The limits of the call being made (none outside a `scope`)."""
    return _CURRENT.get()


def out_of_time(what: str) -> BudgetExceeded:
    return BudgetExceeded("seconds", f"budget: seconds exhausted ({what})")


def checkpoint() -> None:
    """Raise `Cancelled` if the solve was cancelled, `BudgetExceeded` if its deadline has passed."""
    limits = _CURRENT.get()
    if limits.cancel is not None and limits.cancel.is_set():
        raise Cancelled("the solve was cancelled")
    left = limits.time_left()
    if left is not None and left <= 0:
        raise out_of_time("the deadline passed before the call")


def fit_wait(seconds: float, why: str = "a retry") -> float:
    """`seconds` to wait before another attempt, if the deadline leaves room for the wait; else raise
    `BudgetExceeded` now rather than sleep past it."""
    left = _CURRENT.get().time_left()
    if left is not None and seconds >= left:
        raise out_of_time(f"{why} would wait {seconds:.1f}s; {max(0.0, left):.1f}s were left")
    return seconds


def sleep(seconds: float) -> None:
    """Sleep `seconds`, ending early with `Cancelled` if the solve is cancelled meanwhile."""
    cancel = _CURRENT.get().cancel
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise Cancelled("the solve was cancelled")


def bounded(fn: Callable[[], T]) -> T:
    """`fn()`, given up with `BudgetExceeded` at the deadline or `Cancelled` on cancel (or Ctrl-C, which also
    sets the cancel event, so that no further call starts). Without limits, `fn()` runs in this thread."""
    limits = _CURRENT.get()
    if limits.deadline is None and limits.cancel is None:
        return fn()
    checkpoint()
    box: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()  # the worker sees the same limits (its retries obey them too)

    def work() -> None:
        try:
            box["value"] = context.run(fn)
        except BaseException as e:  # noqa: BLE001 - handed back to the waiting thread and raised there
            box["error"] = e
        finally:
            done.set()

    # A daemon thread: a call given up must not keep the process alive until the server answers.
    threading.Thread(target=work, name="model-call", daemon=True).start()
    try:
        while not done.wait(POLL):
            if limits.cancel is not None and limits.cancel.is_set():
                raise Cancelled("the solve was cancelled")
            left = limits.time_left()
            if left is not None and left <= 0:
                raise out_of_time("the call was still running at the deadline")
    except KeyboardInterrupt:
        if limits.cancel is not None:
            limits.cancel.set()  # the call given up must not retry, nor the chain start another
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]
