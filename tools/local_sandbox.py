"""LocalSandbox: the REPL server (`repl_server.py`) jailed by bubblewrap, under resource limits.

The jail: new pid, net (loopback only), ipc, uts and mount namespaces; read-only /usr, a few /etc
files, the Python installation and the current environment's site-packages; a private size-capped
tmpfs as /tmp, HOME and working directory; nothing of the home directory or the project checkout.
Run as root, bwrap drops to an unprivileged uid (setpriv) because the kernel ignores RLIMIT_NPROC for
uid 0, even inside a user namespace. The server sets the rlimits itself before it runs any code;
the parent enforces the wall-clock limit and kills the whole sandbox when it is passed.
References: bubblewrap(1); Flatpak's and Codex CLI's bwrap sandboxes (the same mount layout idea).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import site
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from orchestrator.errors import MissingDependency
from orchestrator.tools.sandbox import STATE_LOST, ExecResult, Sandbox, SandboxConfig, SandboxError
from orchestrator.tools.sandbox import wall_seconds

SERVER = Path(__file__).with_name("repl_server.py")
INSIDE = Path("/opt/reason")  # where the server and extra site-packages appear in the sandbox
SANDBOX_UID = 65534  # nobody
START_TIMEOUT = 10.0
KILL_GRACE = 2.0  # seconds past the wall-clock limit before the server is killed unanswered
HEADER = struct.Struct(">I")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "nsswitch.conf", "hosts",
       "fonts")
NAMESPACES = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
REPLY_FIELDS = ("stdout", "stderr", "result", "error", "duration", "truncated", "exit_reason")
NO_BWRAP = (
    "bubblewrap not found: apt-get install bubblewrap, or pass allow_unsandboxed=True / "
    "--sandbox local-unsafe to run with resource limits only"
)
AUTO = "auto"
MARKER = "REASON_SANDBOX_SESSION"
ENV = {"LANG": "C.UTF-8", "USER": "sandbox", "MPLBACKEND": "Agg",
       "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # one BLAS thread: big pools break RLIMIT_AS


class LocalSandbox(Sandbox):
    """A persistent Python session on this machine, in a bubblewrap jail unless unsandboxed."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        allow_unsandboxed: bool = False,
        bwrap: str | None = AUTO,
        uid: int = SANDBOX_UID,
    ) -> None:
        self.config = config or SandboxConfig()
        self.allow_unsandboxed = allow_unsandboxed
        self.bwrap = shutil.which("bwrap") if bwrap == AUTO else bwrap
        self.uid = uid
        self.start_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._lost = False  # the previous session was killed or died; the next call says so
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
        env = self._jail_env() if self.isolated else {**self._env(cwd), MARKER: self._marker}
        pipe = subprocess.PIPE
        self._proc = subprocess.Popen(
            argv, stdin=pipe, stdout=pipe, stderr=self._stderr, cwd=cwd, env=env, start_new_session=True
        )
        try:
            self._receive(time.monotonic() + START_TIMEOUT)
        except (TimeoutError, EOFError, ValueError) as exc:
            detail = self._stderr_text()
            self._kill()
            raise SandboxError(f"the sandbox did not start ({type(exc).__name__}): {detail}") from None
        self.start_seconds = time.perf_counter() - started

    def run(self, code: str, timeout: float | None = None) -> ExecResult:
        """Run `code`; limits hit and crashes come back as the result's `error`."""
        restarted, self._lost = self._lost, False
        self.start()
        wall = wall_seconds(self.config, timeout)
        started = time.perf_counter()
        try:
            self._send({"code": code, "wall": wall, "cpu": self.config.cpu_seconds})
            reply = self._receive(time.monotonic() + wall + KILL_GRACE)
        except (TimeoutError, EOFError, BrokenPipeError, ValueError) as exc:  # no answer: kill it
            status, timed_out = self._reset(), isinstance(exc, TimeoutError)
            what = f"Timeout: killed after {wall:g} s (wall-clock limit)"
            what = what if timed_out else f"Crash: the interpreter process died ({status})"
            return ExecResult(
                error=f"{what}; {STATE_LOST}",
                duration=time.perf_counter() - started,
                exit_reason="timeout" if timed_out else "crashed",
                session_restarted=restarted,
            )
        result = ExecResult(**{k: reply[k] for k in REPLY_FIELDS}, session_restarted=restarted)
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
        base = Path(sys.base_prefix).resolve()
        python = interpreter()
        site_dirs = [Path(p).resolve() for p in site.getsitepackages() if Path(p).is_dir()]
        site_dirs = [p for p in site_dirs if not p.is_relative_to(base)]
        mounts = MountPlan()
        mounts.ro_bind(Path("/usr"))
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/", name)
            if path.is_symlink():
                mounts.args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                mounts.ro_bind(path)
        for name in ETC:
            mounts.args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        mounts.args += ["--proc", "/proc", "--dev", "/dev", "--size", str(self.config.scratch_mb * 2**20)]
        mounts.args += ["--perms", "1777", "--tmpfs", "/tmp"]
        mounts.dirs |= {Path("/proc"), Path("/dev"), Path("/tmp")}
        if not base.is_relative_to("/usr"):
            mounts.ro_bind(base)
        if not (python.is_relative_to(base) or python.is_relative_to("/usr")):
            mounts.ro_bind(python)
        inside_sites = [INSIDE / f"site-{i}" for i in range(len(site_dirs))]
        for outside, inside in zip(site_dirs, inside_sites, strict=True):
            mounts.ro_bind(outside, inside)
        mounts.ro_bind(SERVER, INSIDE / SERVER.name)
        # A venv that hides the base interpreter's site-packages must hide them in here too.
        base_sites = [
            p for p in sys.path if p.endswith("-packages") and Path(p).resolve().is_relative_to(base)
        ]
        server_config = {
            "limits": asdict(self.config),
            "site_dirs": [str(p) for p in inside_sites],
            "drop_base_site": not base_sites,
        }
        argv = [self.bwrap, "--die-with-parent", "--new-session", *NAMESPACES]
        drop: list[str] = []
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None or not setpriv.startswith("/usr/"):
                raise MissingDependency("setpriv not found under /usr: apt-get install util-linux")
            argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            ids = f"--reuid={self.uid} --regid={self.uid} --clear-groups"
            drop = [setpriv, *f"{ids} --inh-caps=-all --bounding-set=-all --no-new-privs --".split()]
        else:
            argv += ["--unshare-user", "--disable-userns"]
        argv += [*mounts.args, "--chdir", "/tmp", "--clearenv"]
        for key, value in self._jail_env().items():
            argv += ["--setenv", key, value]
        argv += ["--", *drop, str(python), "-I", str(INSIDE / SERVER.name), json.dumps(server_config)]
        return argv, "/"

    def _unsandboxed_command(self) -> tuple[list[str], str]:
        self._scratch = tempfile.TemporaryDirectory(prefix="reason-sandbox-")
        self._marker = secrets.token_hex(8)
        server_config = {"limits": asdict(self.config), "site_dirs": []}
        return [sys.executable, "-I", str(SERVER), json.dumps(server_config)], self._scratch.name

    @staticmethod
    def _env(home: str, extra_path: str = "") -> dict[str, str]:
        return {"HOME": home, "TMPDIR": home, "PATH": f"{extra_path}/usr/local/bin:/usr/bin:/bin", **ENV}

    @classmethod
    def _jail_env(cls) -> dict[str, str]:
        return cls._env("/tmp", extra_path=f"{interpreter().parent}:")

    def _send(self, message: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        data = json.dumps(message).encode("utf-8")
        self._proc.stdin.write(HEADER.pack(len(data)) + data)
        self._proc.stdin.flush()

    def _receive(self, deadline: float) -> dict[str, Any]:
        header = self._read_exact(HEADER.size, deadline)
        (size,) = HEADER.unpack(header)
        if size > 16 * 2**20 + 16 * self.config.max_output_chars:
            raise ValueError(f"reply of {size} bytes is larger than any the server sends")
        return json.loads(self._read_exact(size, deadline))

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


class MountPlan:
    """bwrap mount arguments; creates each new mount point's parents as traversable (0755) dirs."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.dirs: set[Path] = {Path("/")}

    def ro_bind(self, source: Path, dest: Path | None = None) -> None:
        """Bind `source` read-only at `dest` (default: the same path)."""
        dest = dest or source
        for parent in reversed(dest.parents):
            if parent not in self.dirs:
                self.args += ["--perms", "0755", "--dir", str(parent)]
                self.dirs.add(parent)
        self.dirs.add(dest)
        self.args += ["--ro-bind", str(source), str(dest)]


def interpreter() -> Path:
    """The base Python executable (not the venv's link to it), which the jail mounts."""
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


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
