"""E2BSandbox: the same interface over an E2B cloud code interpreter (one remote Jupyter kernel).

`e2b-code-interpreter` is imported inside `start()`, so `reason` works without it. The client class
can be passed in, which is how the tests drive it with a fake of the same surface.
Reference: smolagents `remote_executors.py` (E2BExecutor), the e2b-code-interpreter README.
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator.errors import MissingDependency
from orchestrator.keys import get_key
from orchestrator.tools.sandbox import STATE_LOST, ExecResult, Sandbox, SandboxConfig, clip, wall_seconds

SESSION_SECONDS = 1800  # how long E2B keeps an idle sandbox alive


class E2BSandbox(Sandbox):
    """A persistent Python session in an E2B cloud sandbox."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        api_key: str | None = None,
        client_cls: Any = None,
        timeout_error: type[BaseException] | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.api_key = api_key
        self.client_cls = client_cls
        self.timeout_error = timeout_error
        self.start_seconds = 0.0
        self._sandbox: Any = None
        self._lost = False

    def start(self) -> None:
        """Create the remote sandbox; raises MissingDependency or MissingKey if it cannot."""
        if self._sandbox is not None:
            return
        if self.client_cls is None:
            try:
                from e2b import TimeoutException
                from e2b_code_interpreter import Sandbox as E2BClient
            except ImportError:
                raise MissingDependency(
                    "the e2b sandbox needs e2b-code-interpreter: pip install 'reasonloop[e2b]'"
                ) from None
            self.client_cls, self.timeout_error = E2BClient, self.timeout_error or TimeoutException
        key = get_key("e2b", explicit=self.api_key)
        started = time.perf_counter()
        self._sandbox = self.client_cls.create(api_key=key, timeout=SESSION_SECONDS)
        self.start_seconds = time.perf_counter() - started

    def run(self, code: str, timeout: float | None = None) -> ExecResult:
        """Run `code` in the remote kernel; a timeout resets the session."""
        restarted, self._lost = self._lost, False
        self.start()
        wall = wall_seconds(self.config, timeout)
        started = time.perf_counter()
        timeout_error = self.timeout_error or TimeoutError
        try:
            execution = self._sandbox.run_code(code, timeout=wall)
        except timeout_error:
            self.close()
            self._lost = True
            return ExecResult(
                error=f"Timeout: killed after {wall:g} s (wall-clock limit); {STATE_LOST}",
                duration=time.perf_counter() - started,
                exit_reason="timeout",
                session_restarted=restarted,
            )
        result = to_exec_result(execution, self.config.max_output_chars)
        result.duration = time.perf_counter() - started
        result.session_restarted = restarted
        return result

    def close(self) -> None:
        """Kill the remote sandbox."""
        sandbox, self._sandbox = self._sandbox, None
        self._lost = False
        if sandbox is not None:
            sandbox.kill()


def to_exec_result(execution: Any, max_chars: int) -> ExecResult:
    """Map an e2b `Execution` (logs, results, error) to an `ExecResult`."""
    stdout = "".join(execution.logs.stdout)
    stderr = "".join(execution.logs.stderr)
    result = None
    for item in execution.results:
        if getattr(item, "is_main_result", False) and item.text is not None:
            result = item.text
        elif item.text is not None:
            stdout += item.text + "\n"
        else:
            stdout += f"[display output: {', '.join(item.formats())}]\n"
    error = execution.error
    if error is not None:
        stderr += error.traceback
    texts = (
        clip(stdout, max_chars),
        clip(stderr, max_chars),
        None if result is None else clip(result, max_chars),
    )
    truncated = (texts[0], texts[1], texts[2]) != (stdout, stderr, result)
    reason = "ok" if error is None else "memory_limit" if error.name == "MemoryError" else "error"
    return ExecResult(
        stdout=texts[0],
        stderr=texts[1],
        result=texts[2],
        error=None if error is None else f"{error.name}: {error.value}" if error.value else error.name,
        truncated=truncated,
        exit_reason=reason,
    )
