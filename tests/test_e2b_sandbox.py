"""E2BSandbox against a fake client with the e2b-code-interpreter surface; one opt-in live test."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from orchestrator.errors import MissingDependency, MissingKey
from orchestrator.tools import SandboxConfig, get_sandbox
from orchestrator.tools.e2b_sandbox import E2BSandbox


class FakeTimeout(Exception):
    """Stands in for e2b.TimeoutException."""


@dataclass
class Logs:
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


@dataclass
class Result:
    text: str | None = None
    is_main_result: bool = False
    kinds: tuple[str, ...] = ("text/plain",)

    def formats(self) -> list[str]:
        return list(self.kinds)


@dataclass
class Error:
    name: str
    value: str
    traceback: str


@dataclass
class Execution:
    logs: Logs = field(default_factory=Logs)
    results: list[Result] = field(default_factory=list)
    error: Error | None = None


class FakeE2B:
    """Answers a few snippets the way a remote Jupyter kernel would; records its lifecycle."""

    created: ClassVar[list[FakeE2B]] = []

    def __init__(self, api_key: str, timeout: int) -> None:
        self.api_key, self.timeout, self.killed, self.codes = api_key, timeout, False, []
        FakeE2B.created.append(self)

    @classmethod
    def create(cls, api_key: str, timeout: int) -> FakeE2B:
        return cls(api_key, timeout)

    def run_code(self, code: str, timeout: float | None = None) -> Execution:
        self.codes.append(code)
        if code == "x + 1":
            return Execution(Logs(["hi\n"]), [Result("42", is_main_result=True)])
        if code == "plot()":
            return Execution(results=[Result(None, kinds=("image/png",)), Result("<Figure>")])
        if code == "y":
            tb = "Traceback (most recent call last):\n  Cell In[1], line 1\n"
            return Execution(Logs([], ["warn\n"]), error=Error("NameError", "name 'y' is not defined", tb))
        if code == "spam()":
            return Execution(Logs(["x" * 50_000]))
        if code == "while True: pass":
            raise FakeTimeout("execution timed out")
        return Execution()

    def kill(self) -> None:
        self.killed = True


@pytest.fixture
def fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2B_API_KEY", "e2b_test_key_0123456789abcdef")
    FakeE2B.created.clear()


def make(config: SandboxConfig | None = None) -> E2BSandbox:
    return E2BSandbox(config, client_cls=FakeE2B, timeout_error=FakeTimeout)


def test_outputs_results_and_errors_are_mapped(fake_key: None) -> None:
    with make() as sandbox:
        ok = sandbox.run("x + 1")
        assert (ok.stdout, ok.result, ok.error, ok.exit_reason) == ("hi\n", "42", None, "ok")
        rich = sandbox.run("plot()")
        assert rich.stdout == "[display output: image/png]\n<Figure>\n" and rich.result is None
        failed = sandbox.run("y")
        assert failed.error == "NameError: name 'y' is not defined" and failed.exit_reason == "error"
        assert failed.stderr.startswith("warn\nTraceback") and "[error] NameError" in failed.to_observation()
    client = FakeE2B.created[0]
    assert client.api_key == "e2b_test_key_0123456789abcdef" and client.killed
    assert client.codes == ["x + 1", "plot()", "y"]


def test_long_output_is_truncated(fake_key: None) -> None:
    with make(SandboxConfig(max_output_chars=1000)) as sandbox:
        result = sandbox.run("spam()")
    assert result.truncated and len(result.stdout) < 1100 and "characters cut" in result.stdout


def test_timeout_resets_the_session(fake_key: None) -> None:
    sandbox = make()
    result = sandbox.run("while True: pass", timeout=2)
    assert result.exit_reason == "timeout" and result.error is not None and "after 2 s" in result.error
    assert FakeE2B.created[0].killed
    after = sandbox.run("x + 1")
    assert after.session_restarted and len(FakeE2B.created) == 2
    assert "fresh interpreter" in after.to_observation()
    sandbox.close()


def test_missing_key_says_how_to_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    with pytest.raises(MissingKey, match="E2B_API_KEY"):
        make().start()


@pytest.mark.skipif(importlib.util.find_spec("e2b_code_interpreter") is not None, reason="e2b is installed")
def test_missing_package_names_the_extra(fake_key: None) -> None:
    with pytest.raises(MissingDependency, match=r"pip install 'reasonloop\[e2b\]'"):
        get_sandbox("e2b").start()


@pytest.mark.live
@pytest.mark.skipif(
    os.environ.get("REASON_LIVE_TESTS") != "1" or not os.environ.get("E2B_API_KEY"),
    reason="live E2B test: set REASON_LIVE_TESTS=1 and E2B_API_KEY",
)
def test_live_e2b_session_keeps_state() -> None:
    with get_sandbox("e2b", wall_timeout=60) as sandbox:
        assert sandbox.run("x = 41").ok
        result = sandbox.run("print('hi')\nx + 1")
        assert (result.stdout, result.result) == ("hi\n", "42")
        assert sandbox.run("1/0").error == "ZeroDivisionError: division by zero"
