"""A persistent Python REPL served over pipes: the process that runs inside the local sandbox.

Run as `python -I repl_server.py CONFIG_JSON`. Requests come on stdin and replies go out on the
original stdout, each framed as a 4-byte big-endian length and UTF-8 JSON. The user's output is
captured and truncated: `sys.stdout`/`sys.stderr` in memory, fds 1 and 2 (subprocesses, C code)
in an unlinked temporary file. Standard library only: `orchestrator` is not importable in here.
The last statement's value is shown, notebook style (as in IPython's `run_cell`).
"""

from __future__ import annotations

import ast
import fcntl
import io
import json
import linecache
import math
import os
import resource
import signal
import site
import struct
import sys
import tempfile
import time
import traceback
from typing import Any

HEADER = struct.Struct(">I")
SERVER_PID = os.getpid()


class WallTimeExceeded(BaseException):
    """Raised in the user's code when the call's wall-clock limit passes (not an `Exception`)."""


class CPUTimeExceeded(BaseException):
    """Raised in the user's code when the call's CPU-time limit passes (not an `Exception`)."""


class BoundedWriter(io.TextIOBase):
    """A text stream that keeps the first and last `limit // 2` characters and counts the rest."""

    def __init__(self, limit: int, fd: int) -> None:
        self.head_cap, self.tail_cap, self.fd = limit // 2, limit - limit // 2, fd
        self.head: list[str] = []
        self.tail: list[str] = []
        self.head_len = self.tail_len = self.total = 0

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        n = len(s)
        self.total += n
        room = self.head_cap - self.head_len
        if room > 0:
            self.head.append(s[:room])
            self.head_len += len(s[:room])
            s = s[room:]
        if s:
            self.tail.append(s)
            self.tail_len += len(s)
            if self.tail_len > 2 * self.tail_cap:
                self.tail = ["".join(self.tail)[-self.tail_cap :]]
                self.tail_len = len(self.tail[0])
        return n

    def text(self) -> tuple[str, bool]:
        """The kept text, with a marker where characters were dropped; and whether any were."""
        tail = "".join(self.tail)[-self.tail_cap :]
        dropped = self.total - self.head_len - len(tail)
        cut = f"\n... [{dropped:,} characters cut] ...\n" if dropped > 0 else ""
        return "".join(self.head) + cut + tail, dropped > 0

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


def read_capture(fd: int, limit: int) -> tuple[str, bool]:
    """What subprocesses and C code wrote to `fd` since the last call (head and tail); then empty it."""
    size = os.fstat(fd).st_size
    if size <= limit:
        text, cut = os.pread(fd, size, 0).decode("utf-8", "replace"), False
    else:
        head = os.pread(fd, limit // 2, 0).decode("utf-8", "replace")
        tail = os.pread(fd, limit // 2, size - limit // 2).decode("utf-8", "replace")
        text, cut = f"{head}\n... [{size - limit:,} bytes cut] ...\n{tail}", True
    os.ftruncate(fd, 0)
    return text, cut


def clean(text: str) -> str:
    """`text` safe to encode as UTF-8 (lone surrogates escaped)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def format_error(exc: BaseException) -> str:
    """One line naming the error, e.g. "NameError: name 'x' is not defined"."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def user_traceback(exc: BaseException) -> str:
    """The traceback without this server's own frames, as a notebook shows it."""
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc))
    summary = traceback.TracebackException.from_exception(exc)
    summary.stack = traceback.StackSummary.from_list([f for f in summary.stack if f.filename != __file__])
    return "".join(summary.format())


class Session:
    """One interpreter: a namespace that lives across calls, plus the capture of its output."""

    def __init__(self, limits: dict[str, Any]) -> None:
        self.limits = limits
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        self.count = 0
        self.in_cell = False
        self.wall = self.cpu = 0.0
        self.capture = {1: self._capture_file(), 2: self._capture_file()}
        for fd, file_fd in self.capture.items():
            os.dup2(file_fd, fd)

    @staticmethod
    def _capture_file() -> int:
        with tempfile.TemporaryFile(buffering=0) as file:
            fd = os.dup(file.fileno())
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        return fd

    def _on_signal(self, signum: int, frame: object) -> None:
        if not self.in_cell:
            return
        if signum == signal.SIGALRM:
            raise WallTimeExceeded(f"interrupted after {self.wall:g} s (wall-clock limit)")
        raise CPUTimeExceeded(f"used more than {self.cpu:g} s of CPU time")

    def run(self, code: str, wall: float, cpu: float) -> dict[str, Any]:
        """Execute one cell and describe what happened."""
        self.count += 1
        self.wall, self.cpu = wall, cpu
        filename = f"<cell {self.count}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        limit = int(self.limits["max_output_chars"])
        out, err = BoundedWriter(limit, 1), BoundedWriter(limit, 2)
        sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO()
        result = error = None
        reason = "ok"
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
        start = time.perf_counter()
        try:
            for signum in (signal.SIGALRM, signal.SIGPROF, signal.SIGXCPU):  # the code may have replaced them
                signal.signal(signum, self._on_signal)
            signal.setitimer(signal.ITIMER_REAL, wall)
            signal.setitimer(signal.ITIMER_PROF, cpu)
            # The rlimit bounds the processes the code starts; the timer above bounds this one exactly.
            soft = math.ceil(used + cpu) + 1
            resource.setrlimit(
                resource.RLIMIT_CPU, (min(soft, cpu_hard) if cpu_hard >= 0 else soft, cpu_hard)
            )
            self.in_cell = True
            tree = ast.parse(code, filename)
            last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            if last is not None:
                tree.body.pop()
            exec(compile(tree, filename, "exec"), self.namespace)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), filename, "eval"), self.namespace)
                if value is not None:
                    self.namespace["_"] = value
                    result = repr(value)
        except BaseException as exc:  # noqa: BLE001 - the sandbox boundary: what the code raised is the answer
            self.in_cell = False
            error = format_error(exc)
            reason = {WallTimeExceeded: "timeout", CPUTimeExceeded: "cpu_limit"}.get(type(exc), "error")
            if isinstance(exc, MemoryError):
                reason = "memory_limit"
            err.write(user_traceback(exc))
        finally:
            self.in_cell = False
            if os.getpid() != SERVER_PID:  # a fork of the server made by the user's code: never reply
                os.write(1, (out.text()[0] + err.text()[0]).encode("utf-8", "backslashreplace"))
                os._exit(0)
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.setitimer(signal.ITIMER_PROF, 0)
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        duration = time.perf_counter() - start
        texts = [
            out.text(),
            read_capture(self.capture[1], limit),
            err.text(),
            read_capture(self.capture[2], limit),
        ]
        if result is not None and len(result) > limit:
            cut = len(result) - limit
            result = f"{result[: limit // 2]} ... [{cut:,} characters cut] ... {result[-limit // 2 :]}"
            texts.append(("", True))
        return {
            "stdout": clean(texts[0][0] + texts[1][0]),
            "stderr": clean(texts[2][0] + texts[3][0]),
            "result": None if result is None else clean(result),
            "error": None if error is None else clean(error),
            "duration": duration,
            "truncated": any(cut for _, cut in texts),
            "exit_reason": reason,
        }


def set_limits(limits: dict[str, Any]) -> None:
    """Apply the session-wide resource limits to this process and everything it starts."""
    mb = 1024 * 1024
    for name, value in [
        ("RLIMIT_AS", int(limits["memory_mb"]) * mb),
        ("RLIMIT_NPROC", int(limits["max_processes"])),
        ("RLIMIT_FSIZE", int(limits["max_file_mb"]) * mb),
        ("RLIMIT_NOFILE", int(limits["max_open_files"])),
        ("RLIMIT_CORE", 0),
    ]:
        resource.setrlimit(getattr(resource, name), (value, value))


def read_exact(fd: int, n: int) -> bytes | None:
    """Exactly `n` bytes from `fd`, or None at end of input."""
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def send(fd: int, message: dict[str, Any]) -> None:
    """Write one framed JSON message."""
    data = json.dumps(message).encode("utf-8")
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def main() -> None:
    """Serve requests until stdin closes."""
    config = json.loads(sys.argv[1])
    requests, replies = os.dup(0), os.dup(1)  # private copies: fds 0-2 now belong to the user's code
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    if config.get("drop_base_site"):
        hidden = set(site.getsitepackages())
        sys.path[:] = [p for p in sys.path if p not in hidden]
    for path in config.get("site_dirs", []):
        site.addsitedir(path)
    session = Session(config["limits"])
    set_limits(config["limits"])
    send(replies, {"ready": True, "python": sys.version.split()[0], "pid": os.getpid()})
    while (header := read_exact(requests, HEADER.size)) is not None:
        body = read_exact(requests, HEADER.unpack(header)[0])
        if body is None:
            break
        request = json.loads(body)
        reply = session.run(request["code"], float(request["wall"]), float(request["cpu"]))
        send(replies, {"id": request["id"], **reply})  # the host matches replies to requests by id


if __name__ == "__main__":
    main()
