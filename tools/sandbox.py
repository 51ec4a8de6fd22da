"""The code interpreter's one narrow interface: `Sandbox.run(code) -> ExecResult`.

A sandbox is one persistent interpreter session (variables and imports survive between calls, like a
notebook). Failures of the code, limits hit included, come back as an `ExecResult` that the model
reads as an observation; only a sandbox that cannot start at all raises.
References: smolagents `local_python_executor.py` / `remote_executors.py` (executor interface),
IPython `run_cell` (the last expression's value is the cell's result).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from types import TracebackType
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ConfigError, ReasonError

if TYPE_CHECKING:
    from typing import Self

KINDS = ("local", "local-unsafe", "e2b")
STATE_LOST = "the interpreter was restarted, so variables and imports from earlier calls are lost"


class SandboxError(ReasonError):
    """The sandbox could not be started (not a failure of the user's code)."""


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of one sandbox session; the CPU and wall-clock limits apply to each call."""

    cpu_seconds: float = 10.0
    """CPU time one call may use before it is interrupted."""
    memory_mb: int = 512
    """Memory of the whole session where it gets a cgroup (`cgroup.py`); always also the address-space
    limit of the interpreter and of each process it starts on its own (RLIMIT_AS)."""
    max_processes: int = 64
    """Processes and threads the session may have at once (its cgroup's pids.max where it has one, and
    RLIMIT_NPROC, counted per session: a uid of its own as root, a user namespace of its own otherwise)."""
    max_file_mb: int = 16
    """Largest file the code may write (RLIMIT_FSIZE)."""
    wall_timeout: float = 15.0
    """Wall-clock seconds one call may take before it is interrupted and the session reset."""
    max_output_chars: int = 20_000
    """Characters kept of each of stdout and stderr per call (head and tail)."""
    max_open_files: int = 256
    """Open file descriptors per process (RLIMIT_NOFILE)."""
    scratch_mb: int = 64
    """Size of each of the private writable /tmp (also HOME and the working directory) and /dev/shm."""

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ConfigError(f"sandbox limit {f.name} must be positive, got {getattr(self, f.name)!r}")


@dataclass
class ExecResult:
    """What one `run` produced: output, the last expression's repr, the error, time, limits hit."""

    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: str | None = None
    duration: float = 0.0
    truncated: bool = False
    exit_reason: str = "ok"
    """ok | error | timeout | cpu_limit | memory_limit | crashed"""
    session_restarted: bool = False
    """This call ran in a fresh interpreter because the previous one was killed or died."""

    @property
    def ok(self) -> bool:
        """Whether the code ran to the end without an error."""
        return self.error is None

    def to_observation(self, max_chars: int = 20_000) -> str:
        """The text shown back to the model, at most `max_chars` long."""
        parts = []
        if self.session_restarted:
            parts.append(f"[note: this ran in a fresh interpreter; {STATE_LOST}]")
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        if self.result is not None:
            parts.append(f"[result] {self.result}")
        if self.error is not None:
            parts.append(f"[error] {self.error}")
        if self.truncated:
            parts.append("[note: the output was too long and was cut]")
        return clip("\n".join(parts) or "[no output]", max_chars)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


def wall_seconds(config: SandboxConfig, timeout: float | None) -> float:
    """The wall-clock limit of one call: `timeout` if given (it must be positive), else the config's."""
    if timeout is None:
        return config.wall_timeout
    if timeout <= 0:
        raise ConfigError(f"timeout must be positive, got {timeout!r}")
    return timeout


def clip(text: str, max_chars: int) -> str:
    """`text` cut in the middle to at most about `max_chars` characters, saying how much was cut."""
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return f"{text[:half]}\n... [{len(text) - 2 * half:,} characters cut] ...\n{text[len(text) - half :]}"


class Sandbox(ABC):
    """One persistent interpreter session; use as a context manager or call `close()`."""

    config: SandboxConfig

    @abstractmethod
    def start(self) -> None:
        """Start the session (called by `run` if needed); raises `SandboxError` if it cannot."""

    @abstractmethod
    def run(self, code: str, timeout: float | None = None) -> ExecResult:
        """Run `code` in the session; `timeout` overrides the wall-clock limit for this call."""

    @abstractmethod
    def close(self) -> None:
        """End the session and everything it started. Safe to call twice."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def get_sandbox(kind: str = "local", *, allow_unsandboxed: bool = False, **limits: Any) -> Sandbox:
    """A sandbox of `kind` ('local', 'local-unsafe' or 'e2b') with `limits` (SandboxConfig fields)."""
    names = {f.name for f in fields(SandboxConfig)}
    if unknown := sorted(set(limits) - names):
        raise ConfigError(f"unknown sandbox limit(s) {unknown}; known: {sorted(names)}")
    config = SandboxConfig(**limits)
    if kind in ("local", "local-unsafe"):
        from orchestrator.tools.local_sandbox import LocalSandbox

        return LocalSandbox(config, allow_unsandboxed=allow_unsandboxed or kind == "local-unsafe")
    if kind == "e2b":
        from orchestrator.tools.e2b_sandbox import E2BSandbox

        return E2BSandbox(config)
    raise ConfigError(f"unknown sandbox kind {kind!r}; choose one of {', '.join(KINDS)}")
