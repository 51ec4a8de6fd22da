"""Mutation check of the limits: flip each boundary comparison and see whether the tests notice.

Each mutant is one exact text substitution in one source file (`<` for `<=`, a bound off by one, ...) at a
limit of the state machine, crosscheck or the budget. For each, this copies the package into a temporary
folder laid out as the wheel lays it out (tools/ and prompts/ under orchestrator/), applies the mutant there,
runs the tests against that copy (PYTHONPATH, from inside the copy; the checkout is never modified), and
reports the mutant `killed` (some test failed) or `survived`. The unmutated copy must pass first. A mutant
marked equivalent cannot change behaviour, so it is expected to survive. Not covered: the seconds budget
(wall-clock time cannot be hit exactly) and `Run.max_transitions` (a safety cap no scripted run reaches).

    .venv/bin/python tests/tools/mutants.py                            # against tests/test_limits.py
    .venv/bin/python tests/tools/mutants.py tests/test_machine.py ...  # against other tests
    .venv/bin/python tests/tools/mutants.py -k backtracks              # only the mutants whose name matches

Exit status: 0 when every mutant not marked equivalent is killed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutant:
    """`old` replaced by `new` in `path` (repository-relative); `old` must occur there exactly once."""

    name: str
    path: str
    old: str
    new: str
    equivalent: str = ""  # why it cannot change behaviour, for one that is expected to survive


MACHINE, STATES = "orchestrator/machine.py", "orchestrator/states.py"
CROSSCHECK, SAMPLING = "orchestrator/strategies/crosscheck.py", "orchestrator/strategies/sampling.py"
LEDGER = "orchestrator/ledger.py"
GRANT = "grant = min(wanted, run.config.max_extra_steps - run.extra_steps_granted)"
MUTANTS = [
    Mutant("max_backtracks <", MACHINE, "run.backtracks < cfg.max_backtracks", "run.backtracks <= cfg.max_backtracks"),
    Mutant("max_adjusts <=", MACHINE, "run.adjusts <= cfg.max_adjusts", "run.adjusts < cfg.max_adjusts"),
    Mutant("max_attempts <", MACHINE, "run.attempt + 1 < run.config.max_attempts",
           "run.attempt + 1 <= run.config.max_attempts"),
    Mutant("max_attempts < (lesson)", STATES, "run.retrying = run.attempt + 1 < run.config.max_attempts",
           "run.retrying = run.attempt + 1 <= run.config.max_attempts",
           equivalent="a lesson is only written when `_failed` found another attempt left"),
    Mutant("max_steps <=", MACHINE, "run.steps_left <= 0", "run.steps_left < 0"),
    Mutant("max_extra_steps: total cap", STATES, GRANT, "grant = min(wanted, run.config.max_extra_steps)"),
    Mutant("max_extra_steps: +1", STATES, GRANT, GRANT.replace(")", " + 1)")),
    Mutant("reflect_every >=", MACHINE, "run.thinks_since_reflect >= run.config.reflect_every",
           "run.thinks_since_reflect > run.config.reflect_every"),
    Mutant("max_format_errors >=", MACHINE, "run.format_errors >= run.config.max_format_errors",
           "run.format_errors > run.config.max_format_errors"),
    Mutant("reward_high >= (final)", MACHINE, "if reward >= cfg.reward_high:", "if reward > cfg.reward_high:"),
    Mutant("reward_low >= (final)", MACHINE, "if reward >= cfg.reward_low and", "if reward > cfg.reward_low and"),
    Mutant("reward_low >= (mid-chain)", MACHINE, "    if reward >= cfg.reward_low:\n        return State.THINK\n",
           "    if reward > cfg.reward_low:\n        return State.THINK\n"),
    Mutant("reward_low <= (adjust count)", STATES,
           "        if run.config.reward_low <= reward < run.config.reward_high:\n            run.adjusts += 1",
           "        if run.config.reward_low < reward < run.config.reward_high:\n            run.adjusts += 1"),
    Mutant("resolve: verified >", STATES, "rival is None or mine > rival[1]", "rival is None or mine >= rival[1]"),
    Mutant("resolve: refuted >", STATES, "False if rival[1] > mine else None", "False if rival[1] >= mine else None"),
    Mutant("crosscheck margin >=", CROSSCHECK, "counts[0][1] - runner_up >= margin",
           "counts[0][1] - runner_up > margin"),
    Mutant("crosscheck two votes", CROSSCHECK, "counts[0][1] < 2:", "counts[0][1] < 3:"),
    Mutant("crosscheck rounds (prose)", CROSSCHECK, "plan[: o.rounds + 1]", "plan[: o.rounds]"),
    Mutant("crosscheck rounds (programs)", CROSSCHECK, "range(o.rounds * 2)]", "range(o.rounds * 2 + 2)]"),
    Mutant("budget calls >", LEDGER, "in_flight + calls > self.max_calls", "in_flight + calls >= self.max_calls"),
    Mutant("budget tokens >", LEDGER, 'calls * nxt["tokens"] > self.max_tokens',
           'calls * nxt["tokens"] >= self.max_tokens'),
    Mutant("budget usd >", LEDGER, 'calls * nxt["usd"] > self.max_usd', 'calls * nxt["usd"] >= self.max_usd'),
    Mutant("budget too small <", LEDGER, "self.max_tokens < self.first_call_tokens:",
           "self.max_tokens <= self.first_call_tokens:"),
    Mutant("sampling calls >", SAMPLING, 'math.ceil(k * cost["calls"]) > b.max_calls',
           'math.ceil(k * cost["calls"]) >= b.max_calls'),
    Mutant("sampling tokens >", SAMPLING, 'k * cost["tokens"] > b.max_tokens', 'k * cost["tokens"] >= b.max_tokens'),
    Mutant("sampling usd >", SAMPLING, 'k * cost["usd"] > b.max_usd', 'k * cost["usd"] >= b.max_usd'),
]


def wheel_copy(dest: Path) -> dict[str, Path]:
    """Copy the package into `dest` as the wheel lays it out; map each repository folder to its copy."""
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-dir"]
    folders = {}
    for package, folder in sorted(package_dir.items()):  # the parent package before the folders inside it
        target = dest.joinpath(*package.split("."))
        shutil.copytree(ROOT / folder, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        folders[folder] = target
    return folders


def in_copy(path: str, folders: dict[str, Path]) -> Path:
    """Where the repository file `path` lies in the copy."""
    folder, rest = path.split("/", 1)
    return folders[folder] / rest


def passes(copy: Path, tests: list[str]) -> bool:
    """Whether `tests` pass against the package in `copy` (run from inside it, so that it is what imports)."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    done = subprocess.run(argv, cwd=copy, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return done.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("tests", nargs="*", default=["tests/test_limits.py"], help="test files or node ids")
    parser.add_argument("-k", dest="match", default="", help="only the mutants whose name contains this")
    args = parser.parse_args()
    tests = [str(ROOT / t) for t in args.tests]
    chosen = [m for m in MUTANTS if args.match in m.name]
    with tempfile.TemporaryDirectory(prefix="reason-mutants-") as tmp:
        copy = Path(tmp)
        folders = wheel_copy(copy)
        where = subprocess.run([sys.executable, "-c", "import orchestrator.tools as t; print(t.__file__)"],
                               cwd=copy, env={**os.environ, "PYTHONPATH": str(copy)}, capture_output=True, text=True,
                               check=False)
        if not where.stdout.startswith(str(copy)):
            print(f"the copy is not what imports: {where.stdout or where.stderr}", file=sys.stderr)
            return 2
        if not passes(copy, tests):
            print("the tests fail without any mutant: fix them first", file=sys.stderr)
            return 2
        failures = 0
        for m in chosen:
            path = in_copy(m.path, folders)
            original = path.read_text(encoding="utf-8")
            if original.count(m.old) != 1:
                print(f"{m.name}: {m.old!r} occurs {original.count(m.old)} times in {m.path}", file=sys.stderr)
                return 2
            path.write_text(original.replace(m.old, m.new), encoding="utf-8")
            try:
                killed = not passes(copy, tests)
            finally:
                path.write_text(original, encoding="utf-8")
            verdict = "killed" if killed else "survived (equivalent)" if m.equivalent else "SURVIVED"
            failures += not killed and not m.equivalent
            print(f"{verdict:<22} {m.name:<30} {m.path}: {m.old.strip().splitlines()[0]!r} -> "
                  f"{m.new.strip().splitlines()[0]!r}", flush=True)
        print(f"{len(chosen)} mutants, {failures} survived that should not have")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
