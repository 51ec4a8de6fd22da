"""What the sandbox's memory limit covers: the whole session with a cgroup, each process without one.

Which case holds depends on the machine (cgroup v2 and systemd, see `cgroup.py`); each test states the
case it is for and is skipped, saying why, in the other.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.tools import SandboxConfig
from orchestrator.tools.local_sandbox import LocalSandbox
from sandbox_support import needs_bwrap

LIMITS = SandboxConfig(memory_mb=256, wall_timeout=20, cpu_seconds=10, scratch_mb=16)
CHILDREN = """
import subprocess, sys
hold = "import time; block = bytearray(180 * 2**20); print('held', flush=True); time.sleep(30)"
children = [subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True) for _ in range(3)]
[child.stdout.readline().strip() for child in children]
"""
MEMFDS = """
import os
fds = []
for n in range(24):
    fd = os.memfd_create(f"m{n}")
    os.write(fd, bytes(15 * 2**20))
    fds.append(fd)
len(fds)
"""


def scoped() -> bool:
    with LocalSandbox(LIMITS) as sandbox:
        return sandbox.scoped


@needs_bwrap
def test_with_a_cgroup_the_limit_covers_the_whole_session() -> None:
    if not scoped():
        pytest.skip("no cgroup v2 scope here (systemd-run --scope with MemoryMax did not work): per process")
    with LocalSandbox(LIMITS) as sandbox:
        spread = sandbox.run(CHILDREN)
        assert spread.exit_reason == "memory_limit" and "used more than 256 MB" in (spread.error or "")
        assert sandbox.run("1").session_restarted
        memfds = sandbox.run(MEMFDS)  # 360 MB in memfds, which no rlimit sees
        assert memfds.exit_reason == "memory_limit", memfds.to_observation()


@needs_bwrap
def test_without_a_cgroup_the_limit_is_per_process_as_documented() -> None:
    if scoped():
        pytest.skip("this machine gives sessions a cgroup: the whole-session test applies")
    with LocalSandbox(LIMITS) as sandbox:
        spread = sandbox.run(CHILDREN)  # 3 x 180 MB under a 256 MB limit: each process is within it
        assert spread.ok and spread.result == "['held', 'held', 'held']", spread.to_observation()
        sandbox.close()
        alone = sandbox.run("block = bytearray(300 * 2**20)")
        assert alone.exit_reason == "memory_limit"


def test_exec_help_says_what_the_memory_limit_covers() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "reason"), "exec", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "the whole session" in text and "each process's address space on its own" in text
