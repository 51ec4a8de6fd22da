"""LocalSandbox: the REPL server (`repl_server.py`) jailed by bubblewrap, under resource limits.

The jail itself is built in `jail.py`. The server sets the rlimits itself before it runs any code; the
parent enforces the wall-clock limit and kills the whole sandbox when it is passed. Every frame the
server sends is untrusted input: the code in the jail can write to the same pipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from orchestrator.errors import MissingDependency
from orchestrator.tools.cgroup import cgroup_of, in_scope, oom_killed, scope_env
from orchestrator.tools.frames import HEADER, ProtocolError, check_ready, decode, encode, parse_reply
from orchestrator.tools.jail import SERVER, bwrap_command, jail_env, session_env
from orchestrator.tools.sandbox import STATE_LOST, ExecResult, Sandbox, SandboxConfig, SandboxError
from orchestrator.tools.sandbox import wall_seconds
from orchestrator.tools.seccomp import no_new_userns_filter

# As root, each session runs as a uid of its own, so that RLIMIT_NPROC (counted per uid) is its own: one
# session's fork bomb cannot use up another's processes. The range is above the ones that systemd
# (containers, up to 1878982656) and sssd (up to 2000200000) hand out, and below 2**31.
SANDBOX_UIDS = range(2_100_000_000, 2_100_000_000 + 2**24)
SHARED_UID = 65534  # nobody
START_TIMEOUT = 10.0
KILL_GRACE = 2.0  # seconds past the wall-clock limit before the server is killed unanswered
NO_BWRAP = (
    "bubblewrap not found: apt-get install bubblewrap, or pass allow_unsandboxed=True / "
    "--sandbox local-unsafe to run with resource limits only"
)
AUTO = "auto"
MARKER = "REASON_SANDBOX_SESSION"


class LocalSandbox(Sandbox):
    """A persistent Python session on this machine, in a bubblewrap jail unless unsandboxed."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        allow_unsandboxed: bool = False,
        bwrap: str | None = AUTO,
        uid: int | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.allow_unsandboxed = allow_unsandboxed
        self.bwrap = shutil.which("bwrap") if bwrap == AUTO else bwrap
        self.fixed_uid = uid
        self.uid = uid  # as root: the uid the session runs as (by default a fresh one each session); else None
        self.start_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._filter: IO[bytes] | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._lost = False  # the previous session was killed or died; the next call says so
        self._requests = 0  # requests sent, so each reply can be matched to its request
        self.scoped = False  # whether the session runs in a cgroup of its own (see cgroup.py)
        self._scopes_failed = False  # a session failed to start in a scope: start them without one
        self._cgroup: Path | None = None
        self._marker = ""  # unsandboxed: an environment variable value that tags the session's processes

    @property
    def isolated(self) -> bool:
        """Whether sessions run inside bubblewrap (False: resource limits only)."""
        return self.bwrap is not None

    def start(self) -> None:
        """Start the interpreter if it is not running; raises if it cannot start."""
        if self._proc is not None:
            return
        if self.bwrap is None and not self.allow_unsandboxed:
            raise MissingDependency(NO_BWRAP)
        started = time.perf_counter()
        argv, cwd = self._jailed_command() if self.isolated else self._unsandboxed_command()
        self._stderr = tempfile.TemporaryFile()
        # bwrap itself gets the sandbox's environment too, not ours: it stays in the jail as pid 1, whose
        # /proc/1/environ the code can read when the sandbox runs as the caller's own uid.
        env = jail_env() if self.isolated else {**session_env(cwd), MARKER: self._marker}
        if self.scoped:
            env |= scope_env()  # for systemd-run only: it hands the jail `jail_env()` alone
        pipe = subprocess.PIPE
        passed = () if self._filter is None else (self._filter.fileno(),)
        self._proc = subprocess.Popen(
            argv, stdin=pipe, stdout=pipe, stderr=self._stderr, cwd=cwd, env=env, start_new_session=True,
            pass_fds=passed,
        )
        try:
            check_ready(self._receive(time.monotonic() + START_TIMEOUT))
        except (TimeoutError, EOFError, ProtocolError) as exc:
            detail = self._stderr_text()
            self._kill()
            if self.scoped:  # the service manager let us make a scope but not run in it: do without
                self._scopes_failed = True
                self._close_filter()
                return self.start()
            raise SandboxError(f"the sandbox did not start ({type(exc).__name__}): {detail}") from None
        finally:
            self._close_filter()
        self._cgroup = cgroup_of(self._proc.pid) if self.scoped else None
        self.start_seconds = time.perf_counter() - started

    def run(self, code: str, timeout: float | None = None) -> ExecResult:
        """Run `code`; limits hit and crashes come back as the result's `error`."""
        restarted, self._lost = self._lost, False
        self.start()
        wall = wall_seconds(self.config, timeout)
        started = time.perf_counter()
        self._requests += 1
        try:
            self._send({"id": self._requests, "code": code, "wall": wall, "cpu": self.config.cpu_seconds})
            reply = parse_reply(self._receive(time.monotonic() + wall + KILL_GRACE), self._requests)
        except (TimeoutError, EOFError, BrokenPipeError, ProtocolError) as exc:  # no (true) answer: kill it
            out_of_memory = oom_killed(self._cgroup)  # read before the scope goes with the session
            status, timed_out = self._reset(), isinstance(exc, TimeoutError)
            what, reason = f"Timeout: killed after {wall:g} s (wall-clock limit)", "timeout"
            if isinstance(exc, ProtocolError):  # the code wrote to the server's reply pipe, say
                what, reason = f"Crash: the interpreter sent {exc}", "crashed"
            elif out_of_memory:
                what, reason = f"Memory limit: the session used more than {self.config.memory_mb} MB", "memory_limit"
            elif not timed_out:
                what, reason = f"Crash: the interpreter process died ({status})", "crashed"
            return ExecResult(
                error=f"{what}; {STATE_LOST}",
                duration=time.perf_counter() - started,
                exit_reason=reason,
                session_restarted=restarted,
            )
        result = ExecResult(**reply, session_restarted=restarted)
        if result.exit_reason in ("timeout", "cpu_limit"):
            # Processes it started may still be running (a fork bomb's are): start clean next time.
            self._reset()
            what = f"Timeout: interrupted after {wall:g} s (wall-clock limit)"
            if result.exit_reason == "cpu_limit":
                what = f"CPU limit: used more than {self.config.cpu_seconds:g} s of CPU time"
            result.error = f"{what}; {STATE_LOST}"
        return result

    def close(self) -> None:
        """Kill the session and everything in it."""
        self._kill()
        self._lost = False

    def _jailed_command(self) -> tuple[list[str], str]:
        assert self.bwrap is not None
        self.uid = None
        if os.geteuid() == 0:
            self.uid = self.fixed_uid if self.fixed_uid is not None else free_uid()
        program = no_new_userns_filter()
        if program is not None:
            self._filter = tempfile.TemporaryFile()
            self._filter.write(program)
            self._filter.seek(0)
        fd = None if self._filter is None else self._filter.fileno()
        argv = bwrap_command(self.bwrap, self.config, self.uid or 0, fd)
        scoped = None if self._scopes_failed else in_scope(argv, self.config, jail_env())
        self.scoped = scoped is not None
        return scoped or argv, "/"

    def _close_filter(self) -> None:
        if self._filter is not None:
            self._filter.close()
            self._filter = None

    def _unsandboxed_command(self) -> tuple[list[str], str]:
        self._scratch = tempfile.TemporaryDirectory(prefix="reason-sandbox-")
        self._marker = secrets.token_hex(8)
        server_config = {"limits": asdict(self.config), "site_dirs": []}
        return [sys.executable, "-I", str(SERVER), json.dumps(server_config)], self._scratch.name

    def _send(self, message: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(encode(message))
        self._proc.stdin.flush()

    def _receive(self, deadline: float) -> dict[str, Any]:
        (size,) = HEADER.unpack(self._read_exact(HEADER.size, deadline))
        if size > 16 * 2**20 + 16 * self.config.max_output_chars:
            raise ProtocolError(f"a frame of {size:,} bytes, larger than any the server sends")
        return decode(self._read_exact(size, deadline))

    def _read_exact(self, n: int, deadline: float) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd, buf = self._proc.stdout.fileno(), bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read(4000).decode("utf-8", "replace").strip() or "no message"

    def _reset(self) -> str:
        self._lost = True
        return self._kill()

    def _kill(self) -> str:
        """Kill the session's whole process group; describe how the interpreter had ended."""
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        try:
            code: int | None = proc.wait(timeout=0.2)  # it may have died on its own: keep its status
        except subprocess.TimeoutExpired:
            code = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if not self.isolated:
            kill_marked(self._marker)
        for stream in (proc.stdin, proc.stdout, self._stderr):
            if stream is not None:
                stream.close()
        self._stderr = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        return describe_exit(code)


def free_uid() -> int:
    """A uid from SANDBOX_UIDS that no process on this machine runs as (or `nobody`, see below)."""
    if not (mapped(SANDBOX_UIDS, "uid_map") and mapped(SANDBOX_UIDS, "gid_map")):
        # Root in a container whose user namespace maps only some ids (rootless podman maps 65536):
        # `nobody` is mapped there, but shared by every session, RLIMIT_NPROC included.
        return SHARED_UID
    for _ in range(100):
        uid = SANDBOX_UIDS[secrets.randbelow(len(SANDBOX_UIDS))]
        if not uid_in_use(uid):
            return uid
    raise SandboxError("no free sandbox uid found")  # 100 misses in 16 million: something is wrong


def mapped(ids: range, table: str) -> bool:
    """Whether every id in `ids` is mapped in this process's user namespace (/proc/self/uid_map)."""
    try:
        rows = [line.split() for line in Path(f"/proc/self/{table}").read_text().splitlines()]
    except OSError:
        return True  # no user namespaces: every id exists
    return any(int(inside) <= ids.start and ids.stop <= int(inside) + int(count) for inside, _, count in rows)


def uid_in_use(uid: int) -> bool:
    """Whether any process on this machine has `uid` as its real uid."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if any(line.split()[1:2] == [str(uid)] for line in status.splitlines() if line.startswith("Uid:")):
            return True
    return False


def kill_marked(marker: str) -> None:
    """SIGKILL every process whose environment carries `marker` (daemons that left the process group)."""
    needle = f"{MARKER}={marker}".encode()
    for _ in range(5):  # again, in case one forked while we looked
        found = False
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    os.kill(int(pid), signal.SIGKILL)
                    found = True
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
        if not found:
            return


def describe_exit(code: int | None) -> str:
    """'killed by SIGKILL', 'exit status 1', or 'still running' for a `Popen` return code."""
    if code is None:
        return "still running, killed"
    number = -code if code < 0 else code - 128  # bwrap reports a child killed by signal N as 128 + N
    names = {sig.value: sig.name for sig in signal.Signals}
    killed = number in names and (code < 0 or code > 128)
    return f"killed by {names[number]}" if killed else f"exit status {code}"
