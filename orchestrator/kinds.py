"""What a step is (`StepKind`) and why a chain or a solve stopped (`StopReason`).

Both are `StrEnum`s: a member equals, hashes like and serializes (`json.dumps`, f-strings) as its plain value,
so trajectories, `--json` output and old run folders hold the same strings as before, and a string read back
from disk or given by a user compares equal to its member. docs/output.md explains each stop reason.
"""

from __future__ import annotations

from enum import StrEnum


class StepKind(StrEnum):
    """The state, or the strategy's phase, that produced a step."""

    PLAN = "plan"
    """The plan written before the first think step."""
    THINK = "think"
    """One reasoning step, which may propose an answer or code."""
    ACT = "act"
    """Code run in the sandbox; its output is the observation."""
    REFLECT = "reflect"
    """The model's critique of the chain, with a reward in [0, 1]."""
    BACKTRACK = "backtrack"
    """Steps abandoned after a low reward."""
    VERIFY = "verify"
    """A check of a proposed answer (a program, a re-solve or a judge)."""
    LESSON = "lesson"
    """What a failed attempt learned, for the next attempt."""
    ANSWER = "answer"
    """The final answer."""
    FORMAT_ERROR = "format_error"
    """A reply that could not be read; shown back to the model."""
    PROGRAM = "program"
    """A crosscheck sample solved as a program."""
    JUDGE = "judge"
    """A scorer's judgement of a candidate answer."""
    CHECK = "check"
    """A scorer's independent check of a candidate answer."""


class StopReason(StrEnum):
    """Why a chain, or a whole solve, stopped."""

    ANSWERED = "answered"
    """The chain settled on an answer."""
    VERIFIED = "verified"
    """An answer passed an independent check."""
    CONSENSUS = "consensus"
    """The samples' majority is stable (vote), or one answer leads a round (crosscheck)."""
    MIN_GAIN = "min_gain"
    """Another sample could not change the outcome enough to pay for itself."""
    LIMIT = "limit"
    """Every allowed sample or node ran."""
    BUDGET_TOKENS = "budget_tokens"
    """The next call would have overrun the token budget."""
    BUDGET_USD = "budget_usd"
    """The next call would have overrun the dollar budget."""
    BUDGET_SECONDS = "budget_seconds"
    """The deadline came."""
    BUDGET_CALLS = "budget_calls"
    """The next call would have overrun the call budget."""
    STEP_LIMIT = "step_limit"
    """The step budget the model sees ran out."""
    FORMAT_ERRORS = "format_errors"
    """The model's replies stayed unreadable."""
    CONTEXT_LENGTH = "context_length"
    """The chain outgrew the model's context window."""
    NO_ANSWER = "no_answer"
    """The reply held no answer."""
    INTERRUPTED = "interrupted"
    """Ctrl-C, SIGTERM or a cancel."""
    ERROR = "error"
    """The provider failed (after its retries), or a bug."""
    SCORED = "scored"
    """A scorer's record of its judgements closed."""


BUDGET_STOPS = frozenset({StopReason.BUDGET_TOKENS, StopReason.BUDGET_USD, StopReason.BUDGET_SECONDS,
                          StopReason.BUDGET_CALLS})


def is_budget(reason: str | None) -> bool:
    """Whether `reason` (a member, or a string read back from disk) is a budget stop."""
    return reason in BUDGET_STOPS


def budget_stop(resource: str) -> StopReason:
    """The stop reason for the budget on `resource` (tokens, usd, seconds, calls) running out."""
    return StopReason(f"budget_{resource}")
