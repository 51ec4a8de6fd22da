"""Run mypy over the package as the wheel lays it out: `tools/` is `orchestrator.tools`, `prompts/` is
`orchestrator.prompts`.

mypy names a file after its folders, so a plain `mypy tools` checks a `tools.sandbox` that no code imports and
cannot resolve `orchestrator.tools` at all. This reads `[tool.setuptools] package-dir` from pyproject.toml, gives
mypy each file under the module name the wheel gives it (errors still point at the file in the repository), and
otherwise runs as the `mypy` command does: same options, [tool.mypy] config, output and exit status.
(mypy is compiled, so this calls its steps rather than patching them; hence the exact pin in pyproject.toml.)

    .venv/bin/python scripts/typecheck.py            # what .ci/run does
    .venv/bin/python scripts/typecheck.py tools      # one folder; any mypy option works
"""

from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path

from mypy import util
from mypy.fscache import FileSystemCache
from mypy.main import process_options, run_build
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parent.parent


def renames() -> dict[str, str]:
    """Folder-derived module prefix -> the wheel's package name, for each package-dir entry that moves a folder."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    return {folder.replace("/", "."): pkg for pkg, folder in setuptools["package-dir"].items() if folder != pkg}


def wheel_name(source: BuildSource, moves: dict[str, str]) -> BuildSource:
    """`source` under its module name in the wheel (unchanged where its folder is not moved)."""
    for folder, pkg in moves.items():
        if source.module == folder or source.module.startswith(folder + "."):
            module = pkg + source.module[len(folder) :]
            return BuildSource(source.path, module, source.text, source.base_dir, source.followed)
    return source


def main() -> int:
    """mypy's own steps (find the sources, build, summarise), with each source renamed in between."""
    t0 = time.time()
    fscache = FileSystemCache()
    sources, options = process_options(sys.argv[1:], fscache=fscache)
    moves = renames()
    sources = [wheel_name(s, moves) for s in sources]
    _, messages, blockers = run_build(sources, options, fscache, t0, sys.stdout, sys.stderr)
    n_errors, n_notes, n_files = util.count_stats(messages)
    formatter = util.FancyFormatter(sys.stdout, sys.stderr, options.hide_error_codes)
    if n_errors:
        print(formatter.format_error(n_errors, n_files, len(sources), blockers=blockers))
    else:
        print(formatter.format_success(len(sources)))
    return (2 if blockers else 1) if messages and n_notes < len(messages) else 0


if __name__ == "__main__":
    sys.exit(main())
