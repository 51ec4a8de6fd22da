"""The bubblewrap command line that jails the REPL server, and the environment it starts with.

The jail: new pid, net (loopback only), ipc, uts and mount namespaces; a read-only root holding
read-only /usr, a few /etc files, the Python installation and the current environment's
site-packages; private size-capped tmpfs mounts as /tmp (also HOME and the working directory) and
/dev/shm; nothing of the home directory or the project checkout; no new user namespaces (a seccomp
filter, and bwrap's `--disable-userns` where bwrap made one). As root, bwrap drops to the session's
own unprivileged uid (setpriv), because the kernel ignores RLIMIT_NPROC for uid 0; as anyone else it
runs as the caller's uid inside a user namespace of its own.
References: bubblewrap(1); Flatpak's and Codex CLI's bwrap sandboxes (the same mount layout idea).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import site
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from orchestrator.errors import MissingDependency
from orchestrator.tools.sandbox import SandboxConfig

SERVER = Path(__file__).with_name("repl_server.py")
INSIDE = Path("/opt/reason")  # where the server and extra site-packages appear in the sandbox
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "nsswitch.conf", "hosts",
       "fonts")
NAMESPACES = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
ENV = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "USER": "sandbox", "MPLBACKEND": "Agg",
       "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # one BLAS thread: big pools break RLIMIT_AS


def interpreter() -> Path:
    """The base Python executable (not the venv's link to it), which the jail mounts."""
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def session_env(home: str, extra_path: str = "") -> dict[str, str]:
    """The whole environment of a session: nothing of ours, only what the interpreter needs."""
    return {"HOME": home, "TMPDIR": home, "PATH": f"{extra_path}/usr/local/bin:/usr/bin:/bin", **ENV}


def jail_env() -> dict[str, str]:
    """The environment inside the jail, and of bwrap itself (which stays in it as pid 1)."""
    return session_env("/tmp", extra_path=f"{interpreter().parent}:")


@functools.cache
def bwrap_version(bwrap: str) -> tuple[int, ...]:
    """bwrap's version, e.g. (0, 8, 0); (0,) if it does not say."""
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except OSError:
        return (0,)
    found = re.search(r"(\d+(?:\.\d+)+)", out)
    return tuple(int(part) for part in found.group(1).split(".")) if found else (0,)


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


def mounts(config: SandboxConfig, site_dirs: list[Path], inside_sites: list[Path]) -> list[str]:
    """The filesystem of the jail, ending with the root and /dev made read-only."""
    base, python = Path(sys.base_prefix).resolve(), interpreter()
    plan = MountPlan()
    plan.ro_bind(Path("/usr"))
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            plan.args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            plan.ro_bind(path)
    for name in ETC:
        plan.args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    size = ["--size", str(config.scratch_mb * 2**20)]
    plan.args += ["--proc", "/proc", "--dev", "/dev", *size, "--perms", "1777", "--tmpfs", "/dev/shm"]
    plan.args += [*size, "--perms", "1777", "--tmpfs", "/tmp"]
    plan.dirs |= {Path("/proc"), Path("/dev"), Path("/dev/shm"), Path("/tmp")}
    if not base.is_relative_to("/usr"):
        plan.ro_bind(base)
    if not (python.is_relative_to(base) or python.is_relative_to("/usr")):
        plan.ro_bind(python)
    for outside, inside in zip(site_dirs, inside_sites, strict=True):
        plan.ro_bind(outside, inside)
    plan.ro_bind(SERVER, INSIDE / SERVER.name)
    # The root and /dev are uncapped tmpfs mounts that bwrap made; writable, they would be scratch space
    # without a size limit when the sandbox runs as the caller's uid (it owns them then).
    return [*plan.args, "--remount-ro", "/dev", "--remount-ro", "/"]


def bwrap_command(bwrap: str, config: SandboxConfig, uid: int, seccomp_fd: int | None) -> list[str]:
    """The argv that starts the REPL server in the jail, as `uid` if we are root."""
    base, python = Path(sys.base_prefix).resolve(), interpreter()
    site_dirs = [Path(p).resolve() for p in site.getsitepackages() if Path(p).is_dir()]
    site_dirs = [p for p in site_dirs if not p.is_relative_to(base)]
    inside_sites = [INSIDE / f"site-{i}" for i in range(len(site_dirs))]
    # A venv that hides the base interpreter's site-packages must hide them in here too.
    base_sites = [p for p in sys.path if p.endswith("-packages") and Path(p).resolve().is_relative_to(base)]
    server_config = {
        "limits": asdict(config),
        "site_dirs": [str(p) for p in inside_sites],
        "drop_base_site": not base_sites,
    }
    argv = [bwrap, "--die-with-parent", "--new-session", *NAMESPACES]
    drop: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None or not setpriv.startswith("/usr/"):
            raise MissingDependency("setpriv not found under /usr: apt-get install util-linux")
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        ids = f"--reuid={uid} --regid={uid} --clear-groups"
        drop = [setpriv, *f"{ids} --inh-caps=-all --bounding-set=-all --no-new-privs --".split()]
    else:
        argv += ["--unshare-user"]
        if bwrap_version(bwrap) >= (0, 8):
            argv += ["--disable-userns"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += [*mounts(config, site_dirs, inside_sites), "--chdir", "/tmp", "--clearenv"]
    for key, value in jail_env().items():
        argv += ["--setenv", key, value]
    return [*argv, "--", *drop, str(python), "-I", str(INSIDE / SERVER.name), json.dumps(server_config)]
