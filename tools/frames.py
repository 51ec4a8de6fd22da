"""The host's side of the REPL protocol: frames from the sandbox, checked as untrusted input.

Code in the sandbox runs in the server's own process and can write to the server's reply pipe, so a
frame may be forged, truncated or nonsense. Anything that is not exactly what `repl_server.py` sends
raises `ProtocolError`, which the sandbox turns into an error observation and a fresh session.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

HEADER = struct.Struct(">I")  # each frame: a 4-byte big-endian length, then UTF-8 JSON
EXIT_REASONS = {"ok", "error", "timeout", "cpu_limit", "memory_limit"}
TEXT_FIELDS = ("stdout", "stderr")
OPTIONAL_TEXT_FIELDS = ("result", "error")


class ProtocolError(Exception):
    """A frame from the sandbox that the server would not have sent."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame: header and JSON body."""
    data = json.dumps(message).encode("utf-8")
    return HEADER.pack(len(data)) + data


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object in a frame's body."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"a frame that is not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a frame holding a JSON {type(message).__name__}, not an object")
    return message


def check_ready(message: dict[str, Any]) -> None:
    """Check the server's first frame, which says it is ready."""
    if message.get("ready") is not True:
        raise ProtocolError("the first frame is not the server's ready message")


def parse_reply(message: dict[str, Any], request_id: int) -> dict[str, Any]:
    """The `ExecResult` fields of the reply to request `request_id`."""
    expected = {"id", "duration", "truncated", "exit_reason", *TEXT_FIELDS, *OPTIONAL_TEXT_FIELDS}
    if set(message) != expected:
        missing, extra = sorted(expected - set(message)), sorted(set(message) - expected)
        raise ProtocolError(f"a reply with missing fields {missing} or unknown ones {extra}")
    if message["id"] != request_id or type(message["id"]) is not int:
        raise ProtocolError(f"a reply to another request ({message['id']!r}, not {request_id})")
    for name in TEXT_FIELDS:
        if not isinstance(message[name], str):
            raise ProtocolError(f"a reply whose {name} is a {type(message[name]).__name__}, not text")
    for name in OPTIONAL_TEXT_FIELDS:
        if message[name] is not None and not isinstance(message[name], str):
            raise ProtocolError(f"a reply whose {name} is a {type(message[name]).__name__}, not text or null")
    duration = message["duration"]
    if type(duration) not in (int, float) or not math.isfinite(duration) or duration < 0:
        raise ProtocolError(f"a reply whose duration is {duration!r}")
    if type(message["truncated"]) is not bool:
        raise ProtocolError("a reply whose truncated flag is not true or false")
    reason = message["exit_reason"]
    if not isinstance(reason, str) or reason not in EXIT_REASONS:
        raise ProtocolError(f"a reply with an unknown exit reason {str(reason)[:40]!r}")
    if (message["error"] is None) != (message["exit_reason"] == "ok"):
        raise ProtocolError("a reply whose error and exit reason disagree")
    return {k: v for k, v in message.items() if k != "id"}
