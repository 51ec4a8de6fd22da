"""Exceptions, named by outcome. Model mistakes are not exceptions: they become steps."""

from __future__ import annotations


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

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


class BudgetExceeded(ReasonError):
    """The next call would overrun the budget. `reason` names the exhausted resource."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
