"""A cgroup for each sandbox session, so that its memory and process limits cover the whole session.

Where cgroup v2 and systemd can give one (the system manager for root, the user's manager otherwise,
with the memory and pids controllers delegated), a session runs in a transient scope
(`systemd-run --scope`) with MemoryMax = memory_mb, no swap, and TasksMax = max_processes. The kernel
then counts every process of the session, its tmpfs files (/tmp, /dev/shm) and its memfds together, and
kills the session when the sum passes the limit. Where none can be had, only the rlimits hold:
`memory_mb` bounds each process's address space, not their sum, and not memfds or tmpfs files (those are
capped by `scratch_mb` per mount instead).
References: systemd.resource-control(5), systemd-run(1), the kernel's cgroup-v2.rst.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from orchestrator.tools.sandbox import SandboxConfig

ROOT = Path("/sys/fs/cgroup")
PROBE_MB = 64
# Prints the memory.max of the cgroup it runs in: the probe's proof that the limit is really applied.
PROBE = "cat /sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/memory.max"


def systemd_run_base(user: bool) -> list[str] | None:
    """`systemd-run --scope` (with `--user` unless root), or None without systemd and cgroup v2."""
    systemd_run = shutil.which("systemd-run")
    if systemd_run is None or not (ROOT / "cgroup.controllers").exists():
        return None
    if not Path("/run/systemd/system").is_dir():  # systemd is not the init system here
        return None
    return [systemd_run, *(["--user"] if user else []), "--scope", "--quiet", "--collect"]


@functools.cache
def scopes_work(user: bool) -> bool:
    """Whether a transient scope with a memory limit can be made here (tried once per process)."""
    base = systemd_run_base(user)
    if base is None:
        return False
    argv = [*base, "-p", f"MemoryMax={PROBE_MB}M", "-p", "TasksMax=16", "--", "sh", "-c", PROBE]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == str(PROBE_MB * 2**20)


def in_scope(argv: list[str], config: SandboxConfig, env: dict[str, str]) -> list[str] | None:
    """`argv` run in a scope of its own with the session's limits, or None where scopes do not work."""
    user = os.geteuid() != 0
    base = systemd_run_base(user)
    if base is None or not scopes_work(user):
        return None
    limits = [f"MemoryMax={config.memory_mb}M", "MemorySwapMax=0", f"TasksMax={config.max_processes}"]
    # systemd-run needs the user's bus address from our environment; `env -i` then hands the jail (whose
    # pid 1 is bwrap) only `env`, so that nothing of ours can be read from its /proc/1/environ.
    pairs = [f"{key}={value}" for key, value in env.items()]
    return [*base, *(arg for limit in limits for arg in ("-p", limit)), "--", "/usr/bin/env", "-i", *pairs, *argv]


def scope_env() -> dict[str, str]:
    """What `systemd-run` needs of our environment to reach the service manager."""
    keep = ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")
    return {key: os.environ[key] for key in keep if key in os.environ}


def cgroup_of(pid: int) -> Path | None:
    """The cgroup v2 folder that process `pid` is in, if it can be read."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return ROOT / line[3:].lstrip("/")
    return None


def oom_killed(cgroup: Path | None) -> bool:
    """Whether the kernel killed a process of `cgroup` for passing its memory limit."""
    if cgroup is None:
        return False
    try:
        events = (cgroup / "memory.events").read_text().split()
    except OSError:
        return False
    counts = dict(zip(events[::2], events[1::2], strict=False))
    return counts.get("oom_kill", "0") != "0"
