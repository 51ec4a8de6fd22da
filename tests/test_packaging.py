"""The wheel as users get it: built, installed into a fresh virtualenv, used from there."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp.glob("reasonloop-*.whl")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)  # a wheel is a zip laid out for site-packages; pip would do the same here
    # Dependencies come from the test environment's site-packages, added as a plain path: the editable
    # install of the checkout there is a .pth hook, which a path line does not run.
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    scripts = env_dir / "bin" / "reason"
    scripts.write_text(f"#!{python}\nfrom orchestrator.cli import main\nmain()\n")
    scripts.chmod(0o755)
    return wheel, python, scripts, env_dir


def test_wheel_files_live_under_orchestrator_only(installed):
    wheel, *_ = installed
    with zipfile.ZipFile(wheel) as z:
        tops = {name.split("/")[0] for name in z.namelist()}
        names = z.namelist()
    assert {t for t in tops if not t.endswith(".dist-info")} == {"orchestrator"}
    assert "orchestrator/prompts/think.j2" in names
    assert "orchestrator/tools/repl_server.py" in names
    assert {"orchestrator/view_assets/view.css", "orchestrator/view_assets/view.js"} <= set(names)  # reason view
    studies = [n for n in names if n.endswith(("stopping_replay.py", "confidence_replay.py"))]
    assert studies == []  # the studies live in research/, outside the wheel
    assert next(n for n in names if n.endswith(".dist-info/METADATA")).startswith("reasonloop-")


def test_installed_copy_runs_help_and_renders_a_template(installed):
    _, python, reason, env_dir = installed
    # Run from the venv's folder: from the checkout, `python -c` would import the source tree instead.
    out = subprocess.run([str(reason), "--help"], capture_output=True, text=True, check=True, cwd=env_dir).stdout
    assert "Usage" in out
    code = (
        "import orchestrator, orchestrator.prompting as p;"
        "print(orchestrator.__file__);"
        "print(p.render('think', first=True, steps_left=7, advice=None, backtrack=False, answer_hint='<n>'))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, cwd=env_dir).stdout
    assert out.splitlines()[0].startswith(str(env_dir))  # the installed copy, not the checkout
    assert "You have 7 steps left" in out
    for generic in ("tools", "prompts"):
        probe = subprocess.run(
            [str(python), "-c", f"import {generic}"], capture_output=True, text=True, cwd=env_dir, check=False
        )
        assert probe.returncode != 0, f"the wheel must not claim the top-level name {generic!r}"
