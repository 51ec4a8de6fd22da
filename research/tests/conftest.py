"""The studies' tests reuse the product tests' helpers (the fake OpenAI server, scripted replies), and write
runs and config into their own temporary folders, as `tests/conftest.py` does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "tests"))  # fake_openai_server, test_bench, test_strategies


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("REASON_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("REASON_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
