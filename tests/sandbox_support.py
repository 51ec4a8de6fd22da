"""What the sandbox tests need of the machine: a bubblewrap that works, and an unprivileged user.

`needs_bwrap` skips a test, saying why, where the sandbox cannot start (no bubblewrap, or no namespaces
for it, as in an unprivileged container), so that CI runs the sandbox tests wherever they can run.
As root the sandbox drops to a uid of its own; as anyone else it runs as the caller's uid in a user
namespace, so both paths must be tested. From root the second one is reached with `setpriv` (a real
unprivileged uid) when the interpreter is readable by others, else with a user namespace that maps us
to uid 1000 (`unshare --user --map-user=1000 --map-group=1000`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

import pytest

UID = 1000
SMOKE = "from orchestrator.tools.local_sandbox import LocalSandbox as S\nwith S() as s: assert s.run('1').ok"


@functools.cache
def bwrap_problem() -> str | None:
    """Why the bubblewrap sandbox cannot run here, or None if it can."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install bubblewrap; scripts/setup.sh does it as root)"
    done = subprocess.run([sys.executable, "-c", SMOKE], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"the bubblewrap sandbox cannot start here: {last[:300]}"
    return None


needs_bwrap = pytest.mark.skipif(bwrap_problem() is not None, reason=str(bwrap_problem()))


@functools.cache
def unprivileged_prefix() -> tuple[list[str] | None, str]:
    """The argv prefix that runs a command unprivileged (None if that cannot be arranged), and how."""
    if os.geteuid() != 0:
        return [], f"already unprivileged (uid {os.geteuid()})"
    setpriv, unshare = shutil.which("setpriv"), shutil.which("unshare")
    candidates = []
    if setpriv:
        candidates.append(([setpriv, f"--reuid={UID}", f"--regid={UID}", "--clear-groups"], f"setpriv uid {UID}"))
    if unshare:
        mapping = [unshare, "--user", f"--map-user={UID}", f"--map-group={UID}"]
        candidates.append((mapping, f"a user namespace as uid {UID}"))
    for prefix, how in candidates:
        # It must be able to run our Python and start a sandbox (which needs a user namespace of its own).
        started = subprocess.run([*prefix, sys.executable, "-c", SMOKE], check=False, capture_output=True, timeout=60)
        if started.returncode == 0:
            return prefix, how
    return None, (
        "cannot start the sandbox as an unprivileged user here (no setpriv/unshare, the interpreter is not "
        "readable by others, or unprivileged user namespaces are off)"
    )


def mapped_to_host_root() -> bool:
    """Whether we are a non-root uid in a user namespace that maps us to the host's root, which
    RLIMIT_NPROC never binds (the `unshare --map-user` fallback above)."""
    if os.geteuid() == 0:
        return False
    try:
        lines = open("/proc/self/uid_map").read().split("\n")
    except OSError:
        return False
    for line in filter(None, lines):
        inside, outside, count = (int(part) for part in line.split())
        if inside <= os.geteuid() < inside + count:
            return outside + os.geteuid() - inside == 0
    return False
