"""Streaming into an app: show each reasoning step (and the tokens of the thinking) as it happens.

    python examples/streaming_app.py "How many r's are in strawberry?"

`Reasoner.stream` yields ("token", str) while the model writes, ("step", Step) when a step is done, and
finally ("result", Result). It runs the solve in a worker thread, so a UI loop can consume it directly.
"""

from __future__ import annotations

import argparse
import time

from orchestrator import Budget, ReasonConfig, Reasoner

def options() -> argparse.Namespace:
    """The model and how far to let it run (`--max-calls 1` for a quick look)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="local/qwen2.5-coder-1.5b", help="a model name, as for `reason -m`")
    ap.add_argument("question", nargs="*", help="the question (default: a percentage)")
    ap.add_argument("--max-calls", type=int, help="stop after this many model calls")
    ap.add_argument("--max-tokens-per-call", type=int, default=1024)
    ap.add_argument("--strategy", default="crosscheck", help="crosscheck (the default), chain, vote, ...")
    ap.add_argument("--no-tools", action="store_true", help="no interpreter (on by default where bubblewrap works)")
    return ap.parse_args()



def main(args: argparse.Namespace) -> None:
    question = " ".join(args.question) or "What is 15% of 80?"
    reasoner = Reasoner(
        args.model,
        args.strategy,
        budget=Budget(max_seconds=300, max_calls=args.max_calls),
        config=ReasonConfig(max_tokens_per_call=args.max_tokens_per_call),
        tools=False if args.no_tools else None,
        stream_tokens=True,  # also yield the thinking token by token
    )
    start = time.monotonic()
    for kind, payload in reasoner.stream(question):
        if kind == "token":
            print(payload, end="", flush=True)
        elif kind == "step":
            reward = "" if payload.reward is None else f", reward {payload.reward:.2f}"
            elapsed = time.monotonic() - start
            print(f"\n[{elapsed:5.1f}s] step {payload.index}: {payload.kind}{reward}", flush=True)
        elif kind == "result":
            print(f"\nanswer: {payload.answer} ({payload.stop_reason}, {payload.usage.total_tokens} tokens)")
            print(f"trajectory: {payload.trajectory_path}")


if __name__ == "__main__":
    main(options())
