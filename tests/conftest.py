"""Shared test settings: every test writes runs and config into its own temporary folders."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--live", action="store_true", help="run tests that call real provider APIs (needs keys)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="live API test: pass --live (and set the provider's key)")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("REASON_RUNS_DIR", str(tmp_path / "runs"))
    # The CLI tests drive scripted servers written for one chain without the interpreter: pin that in the
    # test's own config file (beside tmp_path, not in it), which the CLI reads in-process and in subprocesses.
    # Tests of the defaults (crosscheck, tools on where the sandbox works) name them.
    config = tmp_path.parent / f"{tmp_path.name}-config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text('strategy = "chain"\ntools = false\n')
    monkeypatch.setenv("REASON_CONFIG_DIR", str(config))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    yield


@pytest.fixture(autouse=True)
def _tools_off_unless_asked(monkeypatch):
    """Tests that name no `tools` run without the interpreter, as if the sandbox were unavailable, so that a
    test does not depend on whether this machine has bubblewrap. Tests of the default (on where the sandbox
    works) clear this with `monkeypatch.setattr(reasoner, "_SANDBOX_PROBES", {})`."""
    from orchestrator import reasoner

    monkeypatch.setattr(reasoner, "_SANDBOX_PROBES", dict.fromkeys(("local", "local-unsafe", "e2b"),
                                                                   "turned off in tests that do not ask for it"))
