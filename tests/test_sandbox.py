"""Containment tests against the real local sandbox (bubblewrap + rlimits), no mocks.

Each test runs hostile or careless code and checks two things: the model gets a clear observation,
and the host is unharmed (files, network, processes, memory).
"""

from __future__ import annotations

import ast
import json
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, MissingDependency
from orchestrator.tools import PYTHON_TOOL, ExecResult, SandboxConfig, extract_code_blocks, get_sandbox
from orchestrator.tools.local_sandbox import KILL_GRACE, SANDBOX_UIDS, SHARED_UID, LocalSandbox
from sandbox_support import mapped_to_host_root, needs_bwrap

REPO = Path(__file__).resolve().parents[1]
LIMITS = SandboxConfig(wall_timeout=4, cpu_seconds=2)


@pytest.fixture
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(LIMITS) as sb:
        yield sb


def processes_with(token: str) -> list[int]:
    """Host pids whose command line contains `token`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def processes_of_uid(uid: int) -> int:
    """How many host processes run with real uid `uid`."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        count += any(
            line.split()[1:2] == [str(uid)] for line in status.splitlines() if line.startswith("Uid:")
        )
    return count


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll `condition` until it holds or `seconds` pass (the kernel tears a pid namespace down async)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def sleep_token() -> str:
    """A `sleep` duration no other process on the host uses, to find ours."""
    return f"{10_000 + secrets.randbelow(80_000)}.{secrets.randbelow(1000):03d}"


@needs_bwrap
def test_state_persists_between_calls(sandbox: LocalSandbox) -> None:
    assert sandbox.run("x = 41\nimport math").ok
    result = sandbox.run("x + 1")
    assert result.result == "42" and result.to_observation() == "[result] 42"
    assert sandbox.run("print(math.sqrt(16))").stdout == "4.0\n"


@needs_bwrap
def test_errors_and_subprocess_output_are_observations(sandbox: LocalSandbox) -> None:
    result = sandbox.run("y + 1")
    assert result.error == "NameError: name 'y' is not defined" and result.exit_reason == "error"
    assert "<cell" in result.stderr and "[error] NameError" in result.to_observation()
    shell = sandbox.run("import subprocess\nsubprocess.run(['echo', 'from a child'])\nprint('from python')")
    assert "from a child\n" in shell.stdout and "from python\n" in shell.stdout


@needs_bwrap
def test_network_is_blocked(sandbox: LocalSandbox) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    port = server.getsockname()[1]
    code = f"""
import socket
outcome = {{}}
for host, port in [("1.1.1.1", 53), ("127.0.0.1", {port})]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        outcome[host] = "connected"
    except OSError as exc:
        outcome[host] = type(exc).__name__ + ": " + str(exc)
outcome"""
    result = sandbox.run(code)
    outcome = ast.literal_eval(result.result or "{}")
    assert "Network is unreachable" in outcome["1.1.1.1"]
    assert outcome["127.0.0.1"].startswith("ConnectionRefusedError")  # the host's loopback is not ours
    with pytest.raises(TimeoutError):
        server.accept()
    server.close()


@needs_bwrap
def test_writes_stay_in_the_private_scratch_dir(sandbox: LocalSandbox) -> None:
    name = f"reason-canary-{secrets.token_hex(4)}"
    result = sandbox.run(f"open('/tmp/{name}', 'w').write('x'); import os; os.getcwd(), os.environ['HOME']")
    assert result.result == "('/tmp', '/tmp')"
    assert not Path("/tmp", name).exists()
    for path in ("/usr/lib/evil", "/etc/evil", "/evil"):
        denied = sandbox.run(f"open({path!r}, 'w')")
        assert denied.error is not None and denied.error.split(":")[0] in ("OSError", "PermissionError")
        assert not Path(path).exists()


@needs_bwrap
def test_host_files_secrets_and_privileges_are_out_of_reach(sandbox: LocalSandbox) -> None:
    os.environ["REASON_TEST_CANARY"] = "secret-canary"
    try:
        home = Path.home()
        probe = [
            str(p) for p in [REPO, REPO / "pyproject.toml", home / ".bashrc", *list(home.iterdir())[:20]]
        ]
        probe += ["/etc/shadow", "/var", "/work", "/srv"]
        code = f"import os\n{{p: os.path.exists(p) for p in {probe!r}}}"
        seen = ast.literal_eval(sandbox.run(code).result or "{}")
        base = Path(sys.base_prefix).resolve()
        python_dirs = {str(p) for p in [base, *base.parents]}  # the interpreter itself may live under home
        assert not any(found for path, found in seen.items() if path not in python_dirs), seen
        env = sandbox.run("import os; dict(os.environ)").result or ""
        assert "secret-canary" not in env and "REASON_TEST_CANARY" not in env
        if os.geteuid() == 0:
            assert sandbox.uid in SANDBOX_UIDS or sandbox.uid == SHARED_UID  # the latter where few ids are mapped
            assert sandbox.run("import os; os.getuid(), os.getgid()").result == f"({sandbox.uid}, {sandbox.uid})"
    finally:
        del os.environ["REASON_TEST_CANARY"]


@needs_bwrap
@pytest.mark.skipif(mapped_to_host_root(), reason="RLIMIT_NPROC does not bind the host's root, which we map to: "
                    "the bomb would fill the host's process table")
def test_fork_bomb_is_contained() -> None:
    with LocalSandbox(SandboxConfig(wall_timeout=3, cpu_seconds=2)) as sandbox:
        bomb_uid = sandbox.uid
        started = time.monotonic()
        result = sandbox.run(
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
        )
        assert time.monotonic() - started < 3 + KILL_GRACE + 1
        assert result.exit_reason == "timeout" and result.error is not None and "Timeout" in result.error
        assert "lost" in result.to_observation()
        began = time.monotonic()
        subprocess.run(["true"], check=True)
        assert time.monotonic() - began < 1.0  # the host still answers
        if bomb_uid is not None:  # as root: the session's uid is its own
            assert wait_until(lambda: processes_of_uid(bomb_uid) == 0)  # every fork is gone
        assert sandbox.run("1 + 1").result == "2"  # and a fresh session works


@needs_bwrap
def test_memory_bomb_is_a_memory_error() -> None:
    # Growing to the memory limit takes ~0.4 s of CPU time here when idle, several times that under a loaded
    # machine's page faults: a generous CPU limit keeps this a test of the memory limit, not a race with it.
    with LocalSandbox(SandboxConfig(wall_timeout=60, cpu_seconds=30)) as sandbox:
        _memory_bomb(sandbox)


def _memory_bomb(sandbox: LocalSandbox) -> None:
    sandbox.run("kept = 'still here'")
    result = sandbox.run("block = bytearray(4 * 1024**3)")
    assert result.exit_reason == "memory_limit" and result.error == "MemoryError"
    grow = sandbox.run("chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024**2))")
    assert grow.exit_reason == "memory_limit"
    assert sandbox.run("del chunks\nkept").result == "'still here'"  # the session survived


@needs_bwrap
def test_infinite_loops_are_stopped(sandbox: LocalSandbox) -> None:
    busy = sandbox.run("while True:\n    pass")
    assert busy.exit_reason == "cpu_limit" and busy.duration < LIMITS.wall_timeout
    assert busy.error is not None and busy.error.startswith("CPU limit")
    idle = sandbox.run("import time\nprint('started')\ntime.sleep(1000)", timeout=1)
    assert idle.exit_reason == "timeout" and idle.stdout == "started\n" and idle.session_restarted
    stubborn = sandbox.run(
        "import time\nwhile True:\n    try:\n        time.sleep(1000)\n    except BaseException:\n"
        "        pass",
        timeout=1,
    )
    assert stubborn.exit_reason == "timeout" and stubborn.duration < 1 + KILL_GRACE + 1


@needs_bwrap
def test_huge_output_is_truncated_and_host_memory_stays_bounded(sandbox: LocalSandbox) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = sandbox.run("for _ in range(100_000):\n    print('x' * 1000)")  # 100 MB
    assert result.truncated and result.exit_reason == "ok"
    assert len(result.stdout) < LIMITS.max_output_chars + 200 and "characters cut" in result.stdout
    shell = sandbox.run("import subprocess\nsubprocess.run('yes | head -c 100000000', shell=True).returncode")
    assert shell.truncated and len(shell.stdout) < LIMITS.max_output_chars + 200
    assert len(result.to_observation(2000)) < 2200
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 50_000  # KiB


@needs_bwrap
def test_leftover_processes_die_with_the_session() -> None:
    token, daemon_token = sleep_token(), sleep_token()
    code = f"""
import os, subprocess
subprocess.Popen(["sleep", "{token}"])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "{daemon_token}"])
    os._exit(0)
"""
    try:
        with LocalSandbox(LIMITS) as sandbox:
            assert sandbox.run(code).ok
            assert wait_until(lambda: bool(processes_with(token) and processes_with(daemon_token)))
        assert wait_until(lambda: not processes_with(token) and not processes_with(daemon_token))
        with LocalSandbox(LIMITS) as sandbox:
            result = sandbox.run(
                f"import subprocess, time\nsubprocess.Popen(['sleep', '{token}'])\ntime.sleep(100)", timeout=1
            )
            assert result.exit_reason == "timeout"
            assert wait_until(lambda: not processes_with(token))
    finally:
        for pid in processes_with(token) + processes_with(daemon_token):
            os.kill(pid, signal.SIGKILL)


@needs_bwrap
def test_a_crashed_session_restarts_and_says_state_was_lost(sandbox: LocalSandbox) -> None:
    sandbox.run("x = 1")
    crash = sandbox.run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert crash.exit_reason == "crashed" and crash.error is not None and "SIGKILL" in crash.error
    after = sandbox.run("x")
    assert after.session_restarted and after.error == "NameError: name 'x' is not defined"
    assert "fresh interpreter" in after.to_observation()
    assert not sandbox.run("1").session_restarted


def test_unsandboxed_mode_needs_an_explicit_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without bubblewrap
    with pytest.raises(MissingDependency, match=r"bubblewrap not found.*allow_unsandboxed=True"):
        get_sandbox("local").start()
    unsafe = get_sandbox("local-unsafe")
    assert isinstance(unsafe, LocalSandbox) and unsafe.allow_unsandboxed and not unsafe.isolated
    with unsafe:
        assert unsafe.run("6 * 7").result == "42"
    monkeypatch.undo()
    with LocalSandbox(LIMITS, bwrap=None, allow_unsandboxed=True) as sandbox:
        assert (
            not sandbox.isolated
            and sandbox.run("import os; os.getcwd() != " + repr(os.getcwd())).result == "True"
        )


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="unknown sandbox kind"):
        get_sandbox("docker")
    with pytest.raises(ConfigError, match="unknown sandbox limit"):
        get_sandbox("local", cpu=3)
    with pytest.raises(ConfigError, match="must be positive"):
        SandboxConfig(memory_mb=0)


def test_observation_is_clipped_and_serialisable() -> None:
    result = ExecResult(stdout="a" * 50_000, error="ValueError: bad", duration=0.5)
    text = result.to_observation(1000)
    assert len(text) < 1100 and "characters cut" in text and text.endswith("[error] ValueError: bad")
    assert json.loads(json.dumps(result.to_dict()))["error"] == "ValueError: bad"
    assert ExecResult().to_observation() == "[no output]"


def test_python_tool_schema_and_code_blocks() -> None:
    assert PYTHON_TOOL["function"]["name"] == "python"
    assert PYTHON_TOOL["function"]["parameters"]["required"] == ["code"]
    text = (
        "First:\n```python\nx = 2\nprint(x)\n```\nOutput:\n```\n2\n```\nThen\n```py\ny = 3\n```\n"
        "```\nimport math\nmath.sqrt(2)\n```\n```text\na = 1\n```\n```python\nunfinished = 1"
    )
    assert extract_code_blocks(text) == [
        "x = 2\nprint(x)",
        "y = 3",
        "import math\nmath.sqrt(2)",
        "unfinished = 1",
    ]
    assert extract_code_blocks("no code here") == []
