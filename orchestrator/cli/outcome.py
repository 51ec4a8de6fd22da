"""Why a several-sample solve stopped, and its tally, in words: what the live view and `replay` print last."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.kinds import StopReason, is_budget

RESOURCES = {"tokens": "token", "usd": "dollar", "seconds": "time", "calls": "call"}


def tally_text(votes: Mapping[str, int]) -> str:
    """`425 ×3, 424 ×1`, the most voted first."""
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{answer} ×{n}" for answer, n in ranked)


def why_stopped(strategy: str, stop_reason: str, details: Mapping[str, Any], used: int, allowed: int) -> str:
    """One line on why a vote, best-of-n or beam stopped: `majority stable (beta rule), P = 0.97, 4 of 8
    samples`. "" for a single chain (its stop reason says it all)."""
    if allowed <= 1 and strategy in ("chain", "plain"):
        return ""
    unit = "nodes" if strategy == "beam" else "samples"
    of = f"{used} of {allowed} {unit}"
    confidence = details.get("confidence")
    p = f", P = {confidence:.2f}" if isinstance(confidence, (int, float)) else ""
    if is_budget(stop_reason):
        resource = stop_reason.removeprefix("budget_")
        return f"the {RESOURCES.get(resource, resource)} budget ran out after {of}{p}"
    if stop_reason == StopReason.CONSENSUS:
        rule = details.get("stopped_by")
        return f"majority stable ({rule} rule){p}, {of}" if rule not in (None, "consensus") else \
            f"majority stable{p}, {of}"
    if stop_reason == StopReason.MIN_GAIN:
        return f"one more sample was unlikely to change the majority{p}, {of}"
    if stop_reason == StopReason.VERIFIED:
        return f"an answer passed its check, {of}"
    if stop_reason == StopReason.LIMIT:
        return f"all {used} samples ran, no stable majority sooner{p}" if unit == "samples" else \
            f"{of}, the search ran out"
    return of
