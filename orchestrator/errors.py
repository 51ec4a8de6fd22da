"""Exceptions, named by outcome. Model mistakes are not exceptions: they become steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.ledger import Totals
    from orchestrator.reasoner import Result


class ReasonError(Exception):
    """Base class for errors `reason` reports to the user with a one-line message."""


class ConfigError(ReasonError):
    """Bad user input: unknown model, bad option value, empty question."""


class MissingKey(ReasonError):
    """No API key for a provider; the message says how to set one."""


class MissingDependency(ReasonError):
    """An optional package is not installed; the message names the extra to install."""


class ModelUnavailable(ReasonError):
    """Weights could not be found, fetched or verified."""


class ProviderError(ReasonError):
    """The provider refused the call and retrying will not help (auth, bad request)."""


class MalformedResponse(ProviderError):
    """The server answered with something that is not a completion (not JSON, cut short, a field of the wrong
    type, no choices). Retried like a server error, then reported."""


class ContextLengthExceeded(ProviderError):
    """The prompt does not fit the model's context window."""


class Cancelled(KeyboardInterrupt):
    """The caller gave the solve up (a client disconnected). Raised before the next model call, never during
    one. A KeyboardInterrupt, as Ctrl-C is, so no `except Exception` swallows it and the trajectory closes
    with the stop reason `interrupted`."""


class Interrupted(Cancelled):
    """A solve given up (Ctrl-C, SIGTERM, a cancel) with what it had found by then: `result`, a `Result`
    whose stop reason is `interrupted` and whose answer is the best so far (None if it had none)."""

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result

    @property
    def usage(self) -> Totals:
        """What the solve had spent when it was given up."""
        return self.result.usage

    @property
    def trajectory_path(self) -> str | None:
        """Where its trajectory is (a file, or a folder of samples); None when none was saved."""
        return self.result.trajectory_path


class SolveFailed(Exception):
    """A solve that raised `error`, with what it had spent (`usage`) and where its trajectory is
    (`trajectory_path`). Raised by `Reasoner.attempt`, for callers that account for failed solves (a bench row);
    `Reasoner.solve` raises the error itself."""

    def __init__(self, error: Exception, usage: Totals, trajectory_path: str | None) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error, self.usage, self.trajectory_path = error, usage, trajectory_path


class BudgetExceeded(ReasonError):
    """The next call would overrun the budget. `reason` names the exhausted resource."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
