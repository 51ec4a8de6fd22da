"""Tests of the studies; run with `python -m pytest research/tests` (the default run covers `tests/` only)."""
