"""`reason exec`: run Python in the same sandbox the agent uses and print what the model would see."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.common import read_stdin, settings, user_errors


@click.command(name="exec")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--sandbox", type=click.Choice(["local", "local-unsafe", "e2b"]),
              help="Sandbox backend (default: from config, else local = bubblewrap).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Wall-clock limit in seconds.")
def exec_code(file: str, sandbox: str | None, timeout: float | None) -> None:
    """Run the Python in FILE (`-` for stdin) in the sandbox and print the observation.

    Exits 1 when the code raised or hit a limit, so it can gate scripts.

    \b
    What the memory limit (memory_mb, 512 MB by default) covers with --sandbox local:
    - with cgroup v2 and systemd (a user manager, or root): the whole session, every process,
      tmpfs file and memfd together;
    - otherwise: each process's address space on its own, so N processes may hold N times the
      limit; /tmp and /dev/shm are capped at scratch_mb each, and memfds only by max_file_mb per
      memfd times max_open_files. See docs/security.md.
    """
    if file == "-":
        code = read_stdin()
    else:
        try:
            code = Path(file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise click.BadParameter(f"no such file: {file}", param_hint="FILE") from None
        except UnicodeDecodeError:
            raise click.BadParameter(f"{file} is not UTF-8 text", param_hint="FILE") from None
    from orchestrator.tools import get_sandbox

    with user_errors(), get_sandbox(sandbox or settings().sandbox) as box:
        result = box.run(code, timeout=timeout)
    click.echo(result.to_observation())
    if not result.ok:
        raise SystemExit(1)
