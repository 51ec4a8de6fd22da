"""The sandbox's limits that a red-team pass got around, against the real bubblewrap sandbox.

Scratch space is capped and the rest of the filesystem read-only, nested user namespaces are refused,
each session has a process limit of its own, and a reply frame forged by the code inside becomes an
error observation and a fresh session. This file also runs as an unprivileged user
(`test_sandbox_unprivileged.py`).
"""

from __future__ import annotations

import ast
import errno
from collections.abc import Iterator

import pytest

from orchestrator.tools import SandboxConfig
from orchestrator.tools.local_sandbox import LocalSandbox
from sandbox_support import mapped_to_host_root, needs_bwrap

LIMITS = SandboxConfig(wall_timeout=10, cpu_seconds=5, scratch_mb=24, max_processes=24)
FILL = """
def fill(folder):
    written = 0
    try:
        for n in range(1000):
            with open(f"{folder}/fill{n}", "wb") as f:
                f.write(bytes(2**20))
            written += 1
    except OSError as exc:
        return written, exc.errno
    return written, 0
"""
WRITES = """
import os
outcome = {}
for path in ["/x", "/etc/x", "/dev/x", "/opt/reason/x", "/usr/x"]:
    try:
        open(path, "w").close()
        outcome[path] = "written"
    except OSError as exc:
        outcome[path] = type(exc).__name__
outcome
"""
NESTED = """
import ctypes, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
direct = libc.unshare(0x10000000), ctypes.get_errno()  # CLONE_NEWUSER
mount = "mount -t tmpfs -o size=1g none /tmp && head -c 50000000 /dev/zero > /tmp/big && echo wrote"
tool = subprocess.run(["unshare", "-rm", "sh", "-c", mount], capture_output=True, text=True)
worker = threading.Thread(target=lambda: None)
worker.start()
worker.join()
direct, tool.returncode, tool.stdout, subprocess.run(["true"]).returncode
"""
HOLD = """
import subprocess
held, reason = [], None
try:
    while len(held) < 200:
        held.append(subprocess.Popen(["sleep", "60"]))
except OSError as exc:
    reason = exc.errno
len(held), reason
"""
GOOD = {"stdout": "", "stderr": "", "result": "'forged'", "error": None, "duration": 0.0, "truncated": False,
        "exit_reason": "ok"}
FORGER = f"""
import json, struct, sys, os
frame = sys._getframe()
while "replies" not in frame.f_locals:  # up to the server's main(), which holds the reply pipe
    frame = frame.f_back
replies, request = frame.f_locals["replies"], frame.f_locals["request"]
def reply(drop=(), **changes):
    message = {{**{GOOD!r}, "id": request["id"], **changes}}
    return json.dumps({{k: v for k, v in message.items() if k not in drop}}).encode()
def forge(body):
    os.write(replies, struct.pack(">I", len(body)) + body)
"""
FORGERIES = {
    "no stderr": "forge(reply(drop=['stderr']))",
    "stdout not text": "forge(reply(stdout={'a': 1}))",
    "duration not a number": "forge(reply(duration='long'))",
    "an unknown exit reason": "forge(reply(exit_reason=['ok']))",
    "an error with exit reason ok": "forge(reply(error='x'))",
    "another request's id": "forge(reply(id=request['id'] + 7))",
    "not JSON": "forge(b'\\xff garbage')",
    "a JSON list": "forge(b'[1, 2]')",
    "nesting too deep": "forge(b'[' * 200000)",
    "a huge length": "os.write(replies, struct.pack('>I', 2**32 - 1))",
    "a truncated frame": "os.write(replies, struct.pack('>I', 40) + b'{\"stdout\": ')",
}


@pytest.fixture
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(LIMITS) as sb:
        yield sb


@needs_bwrap
def test_scratch_space_is_capped_and_the_rest_is_read_only(sandbox: LocalSandbox) -> None:
    assert sandbox.run(FILL).ok
    for folder in ("/tmp", "/dev/shm"):
        written, code = ast.literal_eval(sandbox.run(f"fill({folder!r})").result or "")
        assert code == errno.ENOSPC and written <= LIMITS.scratch_mb, (folder, written, code)
    writes = ast.literal_eval(sandbox.run(WRITES).result or "{}")
    assert "written" not in writes.values(), writes  # the root and /dev are bwrap's uncapped tmpfs mounts


@needs_bwrap
def test_nested_user_namespaces_are_refused(sandbox: LocalSandbox) -> None:
    result = sandbox.run(NESTED)
    assert result.ok, result.to_observation()
    (code, err), tool_code, tool_out, plain = ast.literal_eval(result.result or "")
    assert code == -1 and err == errno.EPERM
    assert tool_code != 0 and "wrote" not in tool_out  # no uncapped tmpfs of its own
    assert plain == 0  # threads and subprocesses still work (clone3 falls back to clone)


@needs_bwrap
@pytest.mark.skipif(mapped_to_host_root(), reason="RLIMIT_NPROC does not bind the host's root, which we map to")
def test_each_session_has_its_own_process_limit() -> None:
    with LocalSandbox(LIMITS) as greedy, LocalSandbox(LIMITS) as other:
        held, reason = ast.literal_eval(greedy.run(HOLD).result or "")
        assert reason == errno.EAGAIN and held < LIMITS.max_processes
        forked = other.run("import subprocess\nsubprocess.run(['true']).returncode")
        assert forked.result == "0", forked.to_observation()


@needs_bwrap
@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_reply_frame_is_an_error_and_a_fresh_session(sandbox: LocalSandbox, forgery: str) -> None:
    sandbox.run("kept = 1")
    result = sandbox.run(FORGER + FORGERIES[forgery])
    assert result.exit_reason == "crashed", result
    assert result.error is not None and result.error.startswith("Crash: the interpreter sent")
    after = sandbox.run("'kept' in globals()")
    assert after.session_restarted and after.result == "False"
    assert sandbox.run("6 * 7").result == "42"


@needs_bwrap
def test_a_perfect_forgery_fools_only_its_own_call(sandbox: LocalSandbox) -> None:
    forged = sandbox.run(FORGER + "forge(reply())")
    assert forged.result == "'forged'"  # what the code says about itself: no more than print() could
    stale = sandbox.run("1 + 1")  # the true reply to the forged call arrives instead: caught by its id
    assert stale.exit_reason == "crashed" and "another request" in (stale.error or "")
    assert sandbox.run("1 + 1").result == "2"
