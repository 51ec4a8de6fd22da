"""OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama, LM Studio, ...), via the `openai` SDK.

Names: `openai/MODEL` (api.openai.com), `http(s)://HOST/v1#MODEL` (model defaults to `default`;
key from `REASON_HTTP_API_KEY`, OPENAI_API_KEY only for api.openai.com; never `reason serve`'s guard key),
`endpoint/NAME` (a `[endpoints.NAME]` table in config.toml with `base_url`, `model`, `api_key_env`, and
optionally `logprobs = true`: ask for token log-probabilities, for confidence-weighted votes; `n = true`: the
server draws several samples in one request, as vLLM and SGLang do). GPU servers by name: `servers.py`.
`n` (`OpenAIModel.sample`) is on for api.openai.com and the servers known to take it, off elsewhere;
REASON_N=1 or =0 overrides that for every model, the `n=` keyword for one. A server that refuses `n` (400,
llama-server's "Only one completion choice is allowed") or answers fewer choices is asked one request a
sample from then on, for the rest of the process, with one logged notice.
The SDK's own retries are off; `retry.py` does them. `openai` is imported only when a client is built.
A reply that is not a completion (not JSON, cut short, no choices, a usage count that is not a number) is a
`MalformedResponse`: retried, then reported; it never reaches the ledger.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from orchestrator.confidence import TOP, summarise
from orchestrator.errors import ConfigError, MalformedResponse, MissingDependency, MissingKey
from orchestrator.keys import HTTP_KEY_ENV, LEGACY_KEY_ENV, config_dir, get_key, is_guard_key, redact
from orchestrator.models import limits, retry
from orchestrator.models.base import CallOptions, Completion, Message, Usage
from orchestrator.models.remote import RemoteModel, capped

_IMPORT_LOCK = threading.Lock()
log = logging.getLogger("orchestrator.models")

# (base_url, model) of the servers that refused `n` or answered fewer choices: asked one request a sample from
# then on, by every model of this process that talks to them
_NO_N: set[tuple[str | None, str]] = set()
_NO_N_LOCK = threading.Lock()


def _load_openai() -> Any:
    """The openai SDK, imported once under a lock: several samples start their first calls together, and two
    threads importing it at once can see a partly initialised module."""
    with _IMPORT_LOCK:
        try:
            import openai
            import openai.types.chat
        except ImportError:
            raise MissingDependency("this model needs `pip install openai`") from None
        return openai

def read_config() -> dict[str, Any]:
    """The parsed config.toml from the config directory ({} when there is none), read as `reason config`
    reads it (`settings.read_file`)."""
    from orchestrator.settings import config_path, read_file

    return read_file(config_path())


def endpoint(name: str) -> dict[str, Any]:
    """The `[endpoints.NAME]` table of config.toml, checked."""
    table = read_config().get("endpoints", {}).get(name)
    if not isinstance(table, dict) or "base_url" not in table:
        raise ConfigError(
            f"no endpoint {name!r}: add to {config_dir() / 'config.toml'}:\n"
            f'[endpoints.{name}]\nbase_url = "http://127.0.0.1:8000/v1"\nmodel = "MODEL"\n'
            f'api_key_env = "MY_API_KEY"  # optional'
        )
    return table


def _url_key(url: str) -> str:
    """The key for a model named by URL: `REASON_HTTP_API_KEY`, else OPENAI_API_KEY for api.openai.com only.

    The OpenAI key is never sent to another host: a URL is often a local or third-party server, and a key
    sent there is a key given away. A server that needs a key of its own gets `REASON_HTTP_API_KEY` or an
    `[endpoints.NAME]` table with `api_key_env`. The deprecated `REASON_SERVER_API_KEY` is still read, with a
    warning, unless it is the guard key of a `reason serve` in this process: that key is never sent out.
    """
    if key := os.environ.get(HTTP_KEY_ENV):
        return key  # `RemoteModel` refuses it if it is the guard key
    if (key := os.environ.get(LEGACY_KEY_ENV)) and not is_guard_key(key):
        warnings.warn(f"{LEGACY_KEY_ENV} is deprecated as the key for http(s):// models; set {HTTP_KEY_ENV}",
                      DeprecationWarning, stacklevel=2)
        return key
    host = (urlsplit(url).hostname or "").lower()
    if url.startswith("https://") and host == "api.openai.com":
        return os.environ.get("OPENAI_API_KEY") or "none"
    return "none"


def reported_cost(u: Any) -> float | None:
    """The USD cost a provider reports in its usage object (OpenRouter's `usage.cost`), if any."""
    cost = getattr(u, "cost", None)
    return float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None


def _count(value: Any, name: str) -> int:
    """A token count from a reply: a whole number >= 0 (absent: 0), else the reply is malformed."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedResponse(f"the reply's usage.{name} is {str(value)[:40]!r}, not a token count")
    return value


def usage_of(u: Any) -> Usage:
    """Our `Usage` from an OpenAI usage object (or None); `MalformedResponse` for counts that are not counts."""
    if u is None:
        return Usage()
    cached = getattr(getattr(u, "prompt_tokens_details", None), "cached_tokens", None)
    reasoning = getattr(getattr(u, "completion_tokens_details", None), "reasoning_tokens", None)
    return Usage(_count(getattr(u, "prompt_tokens", None), "prompt_tokens"),
                 _count(getattr(u, "completion_tokens", None), "completion_tokens"),
                 _count(cached, "cached_tokens"), _count(reasoning, "reasoning_tokens"))


class OpenAIModel(RemoteModel):
    """Chat completions from OpenAI or an OpenAI-compatible server, with native tool calling."""

    supports_tools = True
    client_classes = ("OpenAI", "AsyncOpenAI")
    supports_n = False  # `sample` asks for all its samples in one request with `n` (see `servers.py`)

    def __init__(
        self,
        name: str,
        options: CallOptions | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        pricing_name: str | None = None,
        headers: dict[str, str] | None = None,
        logprobs: bool | None = None,
        n: bool | None = None,
        **settings: Any,
    ) -> None:
        """`settings`: the rest of `RemoteModel`'s keywords (timeout, max_retries, retry_policy, ...).
        `logprobs`: ask for token log-probabilities (the top `confidence.TOP` at each position) and report
        token statistics (`Completion.confidence`, for `vote:weight=...`); default: the endpoint table's
        `logprobs`, else the environment's REASON_LOGPROBS=1. OpenAI's reasoning models refuse it.
        `n`: draw a `sample` of several in one request with `n`; default: REASON_N=1 or =0 where set, else the
        endpoint table's `n`, else on for api.openai.com only (`servers.py` sets it per server)."""
        if name.startswith(("http://", "https://")):
            url, _, model = name.partition("#")
            try:
                if not urlsplit(url).hostname:
                    raise ValueError("no host")
            except ValueError as e:
                raise ConfigError(f"{name!r} is not a usable URL ({e}); try http://HOST:PORT/v1#MODEL") from None
            base_url, model = base_url or url, model or "default"
            api_key = api_key or _url_key(url)
        elif name.startswith("endpoint/"):
            table = endpoint(name.split("/", 1)[1])
            base_url, model = base_url or table["base_url"], table.get("model", "default")
            var = table.get("api_key_env")
            api_key = api_key or (os.environ.get(var) if var else None) or "none"
            if var and api_key == "none":
                raise MissingKey(f"endpoint {name!r} needs a key: `export {var}=...`")
            if logprobs is None and "logprobs" in table:
                logprobs = bool(table["logprobs"])
            n_default = bool(table.get("n", False))
        else:
            model = name.split("/", 1)[-1]
            api_key = get_key("openai", api_key)
        super().__init__(
            name, options, model=model, api_key=api_key, base_url=base_url, pricing_name=pricing_name, **settings
        )
        self.official = self.base_url is None or "api.openai.com" in self.base_url
        if not name.startswith("endpoint/"):
            n_default = self.official
        self.supports_n = n_option(n, n_default)
        self.headers = headers
        if logprobs is None:
            logprobs = os.environ.get("REASON_LOGPROBS", "") not in ("", "0")
        self.reports_confidence = logprobs

    def _make(self, cls_name: str) -> Any:
        cls = getattr(_load_openai(), cls_name)
        return cls(
            api_key=self.api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=0,
            default_headers=self.headers,
        )

    # --- requests -----------------------------------------------------------------------------
    def _request(self, messages: list[Message], options: CallOptions) -> dict[str, Any]:
        req: dict[str, Any] = {"model": self.model, "messages": messages}
        for key in ("temperature", "top_p", "stop", "seed"):
            if (value := getattr(options, key)) is not None:
                req[key] = value
        if options.max_tokens is not None:  # api.openai.com's reasoning models reject `max_tokens`
            req["max_completion_tokens" if self.official else "max_tokens"] = options.max_tokens
        if options.tools:
            req["tools"] = options.tools
        if self.reports_confidence:
            req["logprobs"], req["top_logprobs"] = True, TOP
        return {**req, **options.extra}

    def _completion(self, response: Any) -> Completion:
        """The completion in a reply; the SDK does not validate replies, so every field we read is checked."""
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise MalformedResponse(f"{self.name}: the response has no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        if message is None or not isinstance(getattr(message, "content", None), (str, type(None))):
            raise MalformedResponse(f"{self.name}: the response's first choice has no message text")
        reported = reported_cost(response.usage)
        return Completion(
            text=choice.message.content or "",
            model=self.name,
            finish_reason=choice.finish_reason or "stop",
            usage=usage_of(response.usage),
            cost_usd=reported or 0.0,
            cost_source="provider" if reported is not None else "",
            tool_calls=[call.model_dump() for call in choice.message.tool_calls or []],
            confidence=_confidence(choice.logprobs.content if choice.logprobs else None),
            raw=response.model_dump(),
        )

    # The request body goes to the SDK's `post` as is: `chat.completions.create` would first walk it through
    # the SDK's parameter transform (about 1.2 ms of CPU a call, most of the client's cost at high
    # concurrency) and refuse the options a server has beyond OpenAI's (`-o top_k 20` for vLLM or llama.cpp).
    def _complete(self, messages: list[Message], options: CallOptions) -> Completion:
        _load_openai()
        from openai.types.chat import ChatCompletion

        req = self._request(messages, options)

        def attempt() -> Completion:  # the reply is read inside the attempt: a malformed one is retried
            with _malformed(self.name):
                response = self._client().post("/chat/completions", body=req, cast_to=ChatCompletion,
                                               options=self._request_options())
            return self._completion(response)

        return retry.call(attempt, self.retry, [self.api_key])

    async def _acomplete(self, messages: list[Message], options: CallOptions) -> Completion:
        _load_openai()
        from openai.types.chat import ChatCompletion

        req = self._request(messages, options)

        async def attempt() -> Completion:
            with _malformed(self.name):
                response = await self._aclient().post("/chat/completions", body=req, cast_to=ChatCompletion,
                                                      options=self._request_options())
            return self._completion(response)

        return await retry.acall(attempt, self.retry, [self.api_key])

    def sample(self, messages: list[Message], seeds: list[int], **options: Any) -> list[Completion]:
        """With `supports_n`, one request with `n` for all the samples, seeded with the first seed (the server
        draws each choice from its own stream): the server evaluates the prompt once and decodes the choices
        together. The server's counts are kept, not multiplied: the first sample carries the prompt (and its
        cached part), as the server reported it once; each sample its own generated tokens (the length of its
        logprobs, else its share of the server's total by text length: `Completion.raw['tokens']` says which).
        A server that refuses `n` (`refuses_n`) is asked one request a sample instead; one that answers fewer
        choices gets the rest one request each. Either way no model of this process sends it `n` again."""
        if not self.supports_n or len(seeds) < 2 or (self.base_url, self.model) in _NO_N:
            return super().sample(messages, seeds, **options)
        _load_openai()
        from openai.types.chat import ChatCompletion

        req = {**self._request(messages, self.options.merged(**{**options, "seed": seeds[0]})), "n": len(seeds)}
        start = time.perf_counter()

        def attempt() -> Any:  # the reply is checked inside the attempt: one without choices is retried
            try:
                with _malformed(self.name):
                    response = self._client().post("/chat/completions", body=req, cast_to=ChatCompletion,
                                                   options=self._request_options())
            except Exception as exc:
                if refuses_n(exc):
                    raise NRefused(str(exc)) from None  # not retried: the same request is refused again
                raise
            if not isinstance(getattr(response, "choices", None), list) or not response.choices:
                raise MalformedResponse(f"{self.name}: the response has no choices")
            return response

        try:
            response = limits.bounded(lambda: retry.call(attempt, self.retry, [self.api_key]))
        except NRefused as e:
            self._no_n(f"it refused n={len(seeds)} ({redact(str(e), [self.api_key])[:200]})")
            return super().sample(messages, seeds, **options)
        drawn = [capped(c, options.get("max_tokens") or self.options.max_tokens)
                 for c in self._choices(response, len(seeds), start)]
        if len(drawn) < len(seeds):
            self._no_n(f"it answered {len(drawn)} of n={len(seeds)} choices")
            drawn += super().sample(messages, seeds[len(drawn):], **options)
        return drawn

    def _choices(self, response: Any, n: int, start: float) -> list[Completion]:
        """The completions of a reply to an `n` request, with the server's counts split between them."""
        choices = sorted(response.choices, key=lambda c: c.index)[:n]
        usage = usage_of(response.usage)
        lengths = [len(c.logprobs.content) if c.logprobs and c.logprobs.content else None for c in choices]
        by_logprobs = None not in lengths
        generated = lengths if by_logprobs else shares(
            usage.completion_tokens, [len(c.message.content or "") for c in choices])
        reported = reported_cost(response.usage)
        paid = [int(t or 0) + (usage.prompt_tokens if i == 0 else 0) for i, t in enumerate(generated)]
        costs = [reported * p / (sum(paid) or 1) for p in paid] if reported is not None else [0.0] * len(paid)
        share = (time.perf_counter() - start) / len(choices)
        drawn = []
        for i, (choice, tokens) in enumerate(zip(choices, generated, strict=True)):
            first = i == 0
            drawn.append(self._finish(Completion(
                text=choice.message.content or "", model=self.name, finish_reason=choice.finish_reason or "stop",
                usage=Usage(usage.prompt_tokens if first else 0, int(tokens or 0), usage.cached_tokens if first
                            else 0, usage.reasoning_tokens if first else 0),
                cost_usd=costs[i], cost_source="provider" if reported is not None else "", seconds=share,
                confidence=_confidence(choice.logprobs.content if choice.logprobs else None),
                raw={"choice": choice.index, "of": getattr(response, "id", None), "n": n,
                     "tokens": "logprobs" if by_logprobs else "split by text length",
                     **({"response": response.model_dump()} if first else {})},
            ), start))
        return drawn

    def _no_n(self, why: str) -> None:
        """Ask this server one request a sample from now on (every model of the process), saying so once."""
        self.supports_n = False
        with _NO_N_LOCK:
            if (self.base_url, self.model) in _NO_N:
                return
            _NO_N.add((self.base_url, self.model))
        log.warning("%s: %s; its samples go out one request each from now on", self.name, why)

    def _stream(
        self, messages: list[Message], options: CallOptions, on_token: Callable[[str], None]
    ) -> Completion:
        """Stream deltas to `on_token`. A stream cut midway is retried from the start."""
        _load_openai()
        from openai import Stream
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        req = {**self._request(messages, options), "stream": True, "stream_options": {"include_usage": True}}

        def run() -> Completion:
            text: list[str] = []
            tokens: list[Any] = []
            calls: dict[int, dict[str, Any]] = {}
            usage, finish, raw, reported = Usage(), "stop", [], None
            with _malformed(self.name), self._client().post(
                    "/chat/completions", body=req, cast_to=ChatCompletion, stream=True,
                    stream_cls=Stream[ChatCompletionChunk], options=self._request_options()) as stream:
                for chunk in stream:
                    raw.append(chunk.model_dump())
                    if chunk.usage:
                        usage, reported = usage_of(chunk.usage), reported_cost(chunk.usage)
                    for choice in chunk.choices[:1]:
                        if choice.delta.content:
                            text.append(choice.delta.content)
                            on_token(choice.delta.content)
                        if choice.logprobs and choice.logprobs.content:
                            tokens += choice.logprobs.content
                        for delta in choice.delta.tool_calls or []:
                            _merge_tool_delta(calls, delta)
                        finish = choice.finish_reason or finish
            return Completion(
                "".join(text),
                self.name,
                finish,
                usage,
                cost_usd=reported or 0.0,
                cost_source="provider" if reported is not None else "",
                tool_calls=[calls[i] for i in sorted(calls)],
                confidence=_confidence(tokens or None),
                raw={"chunks": raw},
            )

        return retry.call(run, self.retry, [self.api_key])


@contextmanager
def _malformed(name: str) -> Iterator[None]:
    """A reply the SDK could not decode (not JSON, cut short) as a `MalformedResponse`."""
    try:
        yield
    except json.JSONDecodeError as exc:
        raise MalformedResponse(f"{name}: the reply is not valid JSON ({exc})") from None


def _confidence(tokens: list[Any] | None) -> dict[str, float] | None:
    """Token statistics (`confidence.summarise`) from OpenAI's per-token logprobs: each chosen token's
    log-probability, and minus the mean of the alternatives' (DeepConf's confidence over the top k the
    server returned). None when the response has none."""
    if not tokens:
        return None
    logprobs = [float(t.logprob) for t in tokens]
    confs = [-sum(float(a.logprob) for a in t.top_logprobs) / len(t.top_logprobs) if t.top_logprobs
             else -float(t.logprob) for t in tokens]
    return summarise(logprobs, confs)


def shares(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights` (evenly when they are all 0), in whole numbers that add up to
    `total` (the largest remainders get the odd units)."""
    weights = weights if any(weights) else [1] * len(weights)
    exact = [total * w / sum(weights) for w in weights]
    parts = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: parts[i] - exact[i])[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _merge_tool_delta(calls: dict[int, dict[str, Any]], delta: Any) -> None:
    call = calls.setdefault(
        delta.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
    )
    call["id"] = delta.id or call["id"]
    if delta.function is not None:
        call["function"]["name"] += delta.function.name or ""
        call["function"]["arguments"] += delta.function.arguments or ""


class NRefused(Exception):
    """A server refused a request for its `n` > 1 (handled by falling back to one request a sample)."""


def refuses_n(exc: BaseException) -> bool:
    """Whether a failed `n` request was refused for its `n`: a bad request (400/422) that is not about the
    context length or the key, or an error that says so whatever its status (llama-server answers "Only one
    completion choice is allowed", with a 500 in older versions)."""
    if retry.is_context_length(exc) or retry.is_auth(exc):
        return False
    text = str(exc).lower()
    return retry.status_of(exc) in (400, 422) or "completion choice" in text or "'n'" in text or '"n"' in text


def n_option(given: bool | None, default: bool) -> bool:
    """Whether a model sends `n`: `given` (the `n=` keyword), else REASON_N=1 or =0, else `default`."""
    if given is not None:
        return given
    env = os.environ.get("REASON_N", "").strip()
    if env in ("0", "1"):
        return env == "1"
    if env:
        raise ConfigError(f"REASON_N must be 1 (ask for several samples in one request) or 0, not {env!r}")
    return default
