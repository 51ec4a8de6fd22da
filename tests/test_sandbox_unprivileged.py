"""The sandbox as users run it: as an ordinary user, with secrets in the environment.

Each test runs a real bubblewrap sandbox in a subprocess, once as we are and once as an unprivileged
user (see `unprivileged.py`); the containment suite itself is rerun unprivileged as well.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox_support import needs_bwrap, unprivileged_prefix

REPO = Path(__file__).resolve().parents[1]
SNOOP = """
import os
seen = {"os.environ": repr(dict(os.environ))}
for pid in ["self", "1", *filter(str.isdigit, os.listdir("/proc"))]:
    try:
        seen[f"/proc/{pid}/environ"] = open(f"/proc/{pid}/environ", "rb").read().decode("latin-1")
    except OSError as exc:
        seen[f"/proc/{pid}/environ"] = "unreadable: " + type(exc).__name__
seen
"""
PROBE = """
import json, sys
from orchestrator.tools.local_sandbox import LocalSandbox
with LocalSandbox() as sandbox:
    print(json.dumps(sandbox.run(sys.stdin.read()).to_dict()))
"""


def run_as(user: str, script: str, stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `script` with our Python, as we are ('self') or unprivileged ('unprivileged'), or skip."""
    prefix: list[str] | None = []
    if user == "unprivileged":
        prefix, how = unprivileged_prefix()
        if prefix is None:
            pytest.skip(how)
    argv = [*prefix, sys.executable, "-c", script]
    return subprocess.run(
        argv, check=False, input=stdin, env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )


@needs_bwrap
@pytest.mark.parametrize("user", ["self", "unprivileged"])
def test_sandboxed_code_cannot_see_the_hosts_environment(user: str) -> None:
    canary = f"sk-canary-{secrets.token_hex(8)}"
    env = {**os.environ, "OPENAI_API_KEY": canary, "REASON_TEST_SECRET": canary}
    done = run_as(user, PROBE, SNOOP, env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["exit_reason"] == "ok", result
    seen = ast.literal_eval(result["result"])
    assert "/proc/1/environ" in seen and "/proc/self/environ" in seen
    leaks = [where for where, text in seen.items() if canary in text or "OPENAI_API_KEY" in text]
    assert not leaks, leaks
    assert "PATH" in seen["os.environ"] and "HOME" in seen["os.environ"]  # what the interpreter needs
    if user == "unprivileged":  # the sandbox runs as our own uid there: pid 1 (bwrap) is readable
        assert not seen["/proc/1/environ"].startswith("unreadable"), seen["/proc/1/environ"]


@needs_bwrap
def test_the_containment_suite_passes_as_an_unprivileged_user() -> None:
    if os.geteuid() != 0:
        pytest.skip("this run is already unprivileged, so it is the unprivileged run")
    prefix, how = unprivileged_prefix()
    if prefix is None:
        pytest.skip(how)
    suite = ["tests/test_sandbox.py", "tests/test_sandbox_hardening.py"]
    argv = [*prefix, sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-m", "not slow", *suite]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"as {how}:\n{done.stdout[-4000:]}"
