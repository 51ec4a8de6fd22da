"""The one retry wrapper around provider calls (tenacity), used by every remote adapter.

Retried: HTTP 408/409/429 (honouring Retry-After), 5xx, timeouts, connection errors and resets, and
malformed replies (`MalformedResponse`: not JSON, cut short, fields of the wrong type). No wait outlasts the
call's limits (`limits`): a wait longer than the time the budget has left ends the call with
`BudgetExceeded('seconds')` at once, a cancel ends the wait, and no attempt starts once either has passed.
Never retried: missing or rejected credentials, whatever status the library gives them (litellm reports a
missing key as a 500), bad requests (400/404/422) and context-length errors; those become
`ProviderError` / `ContextLengthExceeded` with every API key scrubbed from the message. A connection error
names its URL.
Reference: mini-swe-agent `models/utils/retry.py`.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from orchestrator.errors import ContextLengthExceeded, MalformedResponse, ProviderError
from orchestrator.keys import redact
from orchestrator.models import limits

T = TypeVar("T")
log = logging.getLogger("orchestrator.models")

RETRY_STATUS = {408, 409, 429}
CONTEXT_PHRASES = (
    "context_length_exceeded",
    "maximum context length",
    "prompt is too long",
    "context window",
    "input is too long",
    "contextwindowexceeded",
)
# How providers and litellm word a missing or rejected key (litellm wraps some in a 500).
AUTH_PHRASES = (
    "api_key", "api key", "apikey", "credentials", "unauthorized", "authentication", "permission denied",
    "x-api-key", "access denied",
)
AUTH_CLASSES = {"AuthenticationError", "PermissionDeniedError"}
# SDK classes recognised by name so this module never imports openai, anthropic, httpx or litellm.
NETWORK_CLASSES = {"APIConnectionError", "APITimeoutError", "TimeoutException", "TransportError"}
PROVIDER_CLASSES = NETWORK_CLASSES | {"OpenAIError", "AnthropicError", "APIError"}


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a provider error, if it has one."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def is_context_length(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {getattr(exc, 'code', '') or ''} {exc}".lower()
    return any(p in text for p in CONTEXT_PHRASES)


def is_auth(exc: BaseException) -> bool:
    """Whether the provider refused (or could not find) the credentials: retrying cannot help."""
    if status_of(exc) in (401, 403) or _names(exc) & AUTH_CLASSES:
        return True
    if _names(exc) & NETWORK_CLASSES:
        return False
    text = f"{type(exc).__name__} {exc}".lower()
    return any(p in text for p in AUTH_PHRASES)


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt may succeed: rate limits, server errors and network failures."""
    if isinstance(exc, MalformedResponse):
        return True
    if is_context_length(exc) or is_auth(exc):
        return False
    if _names(exc) & NETWORK_CLASSES or isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    status = status_of(exc)
    return status is not None and (status in RETRY_STATUS or status >= 500)


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds asked for by a `Retry-After` (or `retry-after-ms`) header: a number or an HTTP date."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or getattr(exc, "headers", None)
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@dataclass
class RetryPolicy:
    """How hard to retry: attempts in all (first try included) and the waits between them."""

    attempts: int = 5
    base_wait: float = 1.0  # exponential backoff with full jitter: random(0, base * 2**n)
    max_wait: float = 30.0
    max_retry_after: float = 60.0  # cap on a server-requested Retry-After

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after(exc)
        if asked is not None:
            return limits.fit_wait(min(asked, self.max_retry_after), "the server's Retry-After")
        return limits.fit_wait(wait_random_exponential(multiplier=self.base_wait, max=self.max_wait)(state))

    def _kwargs(self, secrets: list[str | None]) -> dict[str, Any]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info("retrying after %s", provider_error(exc, secrets) if exc else "?")

        return {
            "stop": stop_after_attempt(max(1, self.attempts)),
            "wait": self.wait,
            "reraise": True,
            "retry": retry_if_exception(is_retryable),
            "before": lambda state: limits.checkpoint(),  # no attempt after a cancel or past the deadline
            "before_sleep": before_sleep,
        }


def provider_error(exc: BaseException, secrets: Iterable[str | None] = ()) -> ProviderError | None:
    """The `ProviderError` a provider exception maps to; None for anything else (a bug: re-raise it)."""
    if isinstance(exc, ProviderError):  # raised by an adapter (a malformed reply): already ours
        return type(exc)(redact(str(exc), [s for s in secrets if s]))
    status = status_of(exc)
    if (
        status is None
        and not _names(exc) & PROVIDER_CLASSES
        and not isinstance(exc, (TimeoutError, ConnectionError))
    ):
        return None
    prefix = f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")
    text = f"{prefix}: {exc}"
    if is_auth(exc):
        text += " (the credentials are missing or were refused: `reason keys set PROVIDER`, or --key)"
    elif (url := url_of(exc)) is not None:
        text += f" ({url})"
    message = redact(text, [s for s in secrets if s])
    return ContextLengthExceeded(message) if is_context_length(exc) else ProviderError(message)


def url_of(exc: BaseException) -> str | None:
    """`METHOD URL` of the request a network error failed on (httpx and the SDKs keep it), without a query."""
    if not (_names(exc) & NETWORK_CLASSES or isinstance(exc, (TimeoutError, ConnectionError))):
        return None
    try:
        request = getattr(exc, "request", None)
    except RuntimeError:  # httpx raises when an error has no request
        return None
    url = getattr(request, "url", None)
    if url is None:
        return None
    return f"{getattr(request, 'method', 'POST')} {str(url).split('?', 1)[0]}"


def _give_up(exc: Exception, policy: RetryPolicy, secrets: list[str | None]) -> ProviderError | None:
    mapped = provider_error(exc, secrets)
    if mapped is not None and is_retryable(exc):
        mapped = type(mapped)(f"{mapped} (gave up after {policy.attempts} attempts)")
    return mapped


def call(fn: Callable[[], T], policy: RetryPolicy | None = None, secrets: Iterable[str | None] = ()) -> T:
    """Call `fn()` with retries; provider failures that remain are raised as `ProviderError`."""
    policy, secrets = policy or RetryPolicy(), list(secrets)
    try:
        for attempt in Retrying(sleep=limits.sleep, **policy._kwargs(secrets)):
            with attempt:
                return fn()
    except Exception as exc:
        if (mapped := _give_up(exc, policy, secrets)) is None:
            raise  # not a provider failure: a bug
        raise mapped from None  # the original may quote the key
    raise AssertionError("unreachable")


async def acall(
    fn: Callable[[], Awaitable[T]], policy: RetryPolicy | None = None, secrets: Iterable[str | None] = ()
) -> T:
    """`call` for coroutines: `fn()` is awaited afresh on every attempt."""
    policy, secrets = policy or RetryPolicy(), list(secrets)
    try:
        async for attempt in AsyncRetrying(**policy._kwargs(secrets)):
            with attempt:
                return await fn()
    except Exception as exc:
        if (mapped := _give_up(exc, policy, secrets)) is None:
            raise
        raise mapped from None
    raise AssertionError("unreachable")
