"""What `reason serve` accepts from a client: the body (size, JSON, Unicode), the model (the operator's
allow-list), the messages, and the fields that become the budget and config. Everything else is a 4xx.

Model names: only the models the operator configured (`-m`, exactly) and names matching `--allow-model`
patterns are served. A name that points somewhere (`http(s)://`, `router/`, `replay/`, `fake/`, a `local/` path)
is refused unless the operator listed it with `-m`: a client must not choose the server's upstream or name its
files. Fields: `FIELDS` (OpenAI's, and `strategy_options`) are read, `IGNORED` are accepted and ignored
(documented), `UNSUPPORTED` are refused unless they hold their default, and every other field is a setting:
an option of the strategy, a `ReasonConfig` field (but `REFUSED`) or a budget (`BUDGET_KEYS`), sorted by
`strategies.knobs.split_settings`; any other key is refused as unknown, naming the valid ones.
`reasoning_effort` picks a strategy (where the model name names none) and a whole-run token budget (where
`max_tokens_budget` is not given): `EFFORT`. References: the OpenAI chat completions API.
"""

from __future__ import annotations

import json
import math
from fnmatch import fnmatchcase
from typing import Any

from starlette.requests import Request

BUDGET_KEYS = {"max_tokens_budget": "max_tokens", "max_usd": "max_usd", "max_seconds": "max_seconds",
               "max_calls": "max_calls"}
FIELDS = {"model", "messages", "stream", "stream_options", "n", "max_tokens", "max_completion_tokens",
          "reasoning_effort", "strategy_options", "reasoning", "include_reasoning", "temperature", "seed"}
# config fields a client may not set: the operator's (files, the sandbox) or the request's own (messages)
REFUSED = {"system": "system instructions come from the system messages",
           "prompts_dir": "the prompts are the server operator's", "sandbox": "the sandbox is the server operator's",
           "tools": "the server operator turns the interpreter on or off (reason serve --tools/--no-tools)"}
IGNORED = {"user", "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier"}
UNSUPPORTED = {"tools": [], "tool_choice": "none", "functions": [], "function_call": "none",
               "response_format": {"type": "text"}, "logprobs": False, "top_logprobs": 0, "logit_bias": {},
               "stop": [], "presence_penalty": 0, "frequency_penalty": 0, "top_p": 1, "audio": {},
               "modalities": ["text"], "prediction": {}, "parallel_tool_calls": True, "web_search_options": {}}
# reasoning_effort -> (strategy where the model name names none, whole-run token budget)
EFFORT = {"minimal": ("plain", 2_048), "low": ("chain", 8_192), "medium": ("chain", 32_768),
          "high": ("vote", 131_072)}
LOCATIONS = ("http://", "https://", "router/", "replay/", "fake/")
MAX_TEMPERATURE = 2.0  # OpenAI's range
UNKNOWN_WINDOW = 131_072  # tokens assumed for a model whose context window is not known
CHARS_PER_TOKEN = 4  # English averages ~4 characters a token (as `Reasoner` estimates)


class APIError(Exception):
    """A request the server refuses, with the HTTP status and OpenAI error fields to report."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.param = status, code, param

    def body(self) -> dict[str, Any]:
        kind = ("authentication_error" if self.status == 401 else "invalid_request_error" if self.status < 500
                else "server_error")
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.code}}


def short(value: Any, limit: int = 80) -> str:
    """A client's value for an error message: repr'd, and cut (a 20 MB name is not echoed back)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


async def read_body(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object of a request: at most `limit` bytes (413), valid JSON (400), valid Unicode (400)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"the request body is {declared} bytes; this server takes at most {limit}",
                       "request_too_large")
    data, size = [], 0
    async for chunk in request.stream():  # counted as it arrives: a body without Content-Length is capped too
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"the request body is over {limit} bytes; this server takes at most {limit}",
                           "request_too_large")
        data.append(chunk)

    def no_constant(name: str) -> None:
        raise ValueError(name)

    try:
        body = json.loads(b"".join(data), parse_constant=no_constant)  # NaN and Infinity are not JSON
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    check_unicode(body, "")
    return body


def check_unicode(value: Any, where: str) -> None:
    """Refuse a string that is not valid Unicode (a lone surrogate such as \\ud800): it cannot be written."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise APIError(400, f"`{where or 'body'}` holds a lone surrogate; send valid Unicode text",
                           "invalid_unicode", where.split(".")[0] or None) from None
    elif isinstance(value, dict):
        for k, v in value.items():
            check_unicode(k, where)
            check_unicode(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_unicode(v, f"{where}[{i}]")


def settings_of(body: dict[str, Any]) -> dict[str, Any]:
    """The request's settings (see the module); refuses the fields the server does not implement unless
    they hold their default."""
    settings = {}
    for key, value in body.items():
        if key in FIELDS or key in IGNORED or value is None:
            continue
        if key in UNSUPPORTED:
            if value in (UNSUPPORTED[key], False, [], {}):
                continue
            raise APIError(400, f"`{key}` is not supported by reason serve: the strategy decides how the model "
                                "is called", "unsupported_parameter", key)
        settings[key] = value
    return settings


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of text parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise APIError(400, "only text content is supported", "unsupported_content", "messages")


def conversation(messages: Any) -> tuple[str, str | None]:
    """(question, system) from OpenAI messages: the last user turn, with earlier turns as context."""
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise APIError(400, "`messages` must be a non-empty list of message objects", param="messages")
    instructions = [m for m in messages if m.get("role") in ("system", "developer")]
    system = "\n\n".join(text_of(m.get("content")) for m in instructions)
    turns = [(m.get("role"), text_of(m.get("content"))) for m in messages if m not in instructions]
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise APIError(400, "the last message must be a non-empty user message", param="messages")
    question = turns[-1][1].strip()
    if len(turns) > 1:
        earlier = "\n\n".join(f"{str(role).capitalize()}: {text.strip()}" for role, text in turns[:-1])
        question = f"Earlier in this conversation:\n\n{earlier}\n\nThe question to answer now:\n\n{question}"
    return question, system or None


def check_length(question: str, system: str | None, model: str, window: int | None) -> None:
    """Refuse a conversation that cannot fit the model's context (with room left to reason) before any call."""
    estimate = (len(question) + len(system or "")) // CHARS_PER_TOKEN
    limit = (window or UNKNOWN_WINDOW) * 3 // 4
    if estimate > limit:
        known = f"a {window}-token context" if window else f"no known context window (assumed {UNKNOWN_WINDOW})"
        raise APIError(400, f"the conversation is about {estimate} tokens; {model} has {known} and needs room "
                            f"to reason (at most {limit} tokens of input)", "context_length_exceeded", "messages")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def budget_of(budget: dict[str, Any], effort: str | None) -> dict[str, Any]:
    """The `Budget` fields of a request (`budget`: those its settings gave); `reasoning_effort` supplies the
    token budget when none is given."""
    if effort and budget.get("max_tokens") is None:
        return {**budget, "max_tokens": EFFORT[effort][1]}
    return budget


def knobs_of(body: dict[str, Any]) -> dict[str, Any]:
    """The `ReasonConfig` fields of a request's OpenAI fields: `temperature`, `seed`; `max_tokens` /
    `max_completion_tokens` cap each call."""
    knobs = {k: body[k] for k in ("temperature", "seed") if body.get(k) is not None}
    caps = {body[k] for k in ("max_tokens", "max_completion_tokens") if body.get(k) is not None}
    if len(caps) > 1:
        raise APIError(400, "`max_tokens` and `max_completion_tokens` differ; send one", param="max_tokens")
    if caps:
        cap = caps.pop()
        if not (isinstance(cap, int) and not isinstance(cap, bool) and cap >= 16):
            raise APIError(400, "`max_tokens` caps each model call: an integer of at least 16", param="max_tokens")
        knobs.setdefault("max_tokens_per_call", cap)
    temperature = knobs.get("temperature")
    if temperature is not None and not (is_number(temperature) and 0 <= temperature <= MAX_TEMPERATURE):
        raise APIError(400, f"`temperature` must be a number from 0 to {MAX_TEMPERATURE:g}", param="temperature")
    return knobs


def effort_of(body: dict[str, Any]) -> str | None:
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in EFFORT:
        raise APIError(400, f"`reasoning_effort` must be one of {', '.join(EFFORT)}", param="reasoning_effort")
    return effort


def names_a_location(name: str) -> bool:
    """Whether a model name points at a server, a file or a URL (rather than naming a model)."""
    if name.startswith(LOCATIONS):
        return True
    if name.startswith("local/"):
        from orchestrator.models.weights import WEIGHTS

        return name.removeprefix("local/") not in WEIGHTS
    return False


class ModelPolicy:
    """Which models a server serves: the operator's `models` exactly, and names matching `allow` patterns
    that do not point anywhere."""

    def __init__(self, models: list[str], allow: list[str] | tuple[str, ...] = ()) -> None:
        self.models, self.allow = list(dict.fromkeys(models)), list(allow)

    def check(self, name: str) -> None:
        if name in self.models:
            return
        served = ", ".join(self.models)
        if names_a_location(name):
            raise APIError(400, f"model {short(name)} names a server, URL or file; this server calls only the "
                                f"models its operator configured ({served})", "model_not_allowed", "model")
        if not any(fnmatchcase(name, pattern) for pattern in self.allow):
            raise APIError(404, f"model {short(name)} is not served here; served: {served}", "model_not_found",
                           "model")
