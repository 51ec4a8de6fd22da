"""Quickstart: answer one question with the embedded local model, within a budget, offline.

    python examples/quickstart.py
    python examples/quickstart.py --model local/smollm2-135m   # the tiny, fast model
"""

from __future__ import annotations

import argparse

from orchestrator import Budget, ReasonConfig, Reasoner

QUESTION = "A farmer has 17 sheep; all but 9 run away. How many are left?"


def options() -> argparse.Namespace:
    """The model and how far to let it run (`--max-calls 1` for a quick look)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="local/qwen2.5-coder-1.5b", help="a model name, as for `reason -m`")
    ap.add_argument("--max-calls", type=int, help="stop after this many model calls")
    ap.add_argument("--max-tokens-per-call", type=int, default=1024)
    return ap.parse_args()


def main(args: argparse.Namespace) -> None:
    reasoner = Reasoner(
        args.model,
        strategy="chain",
        budget=Budget(max_tokens=20_000, max_seconds=300, max_calls=args.max_calls),
        config=ReasonConfig(max_tokens_per_call=args.max_tokens_per_call),
    )
    result = reasoner.solve(QUESTION)
    print(f"question: {result.question}")
    print(f"answer: {result.answer}")
    print(f"stop reason: {result.stop_reason}")
    for step in result.steps:
        reward = "" if step.reward is None else f" reward={step.reward:.2f}"
        print(f"  step {step.index}: {step.kind}{reward} ({step.tokens} tokens)")
    u = result.usage
    print(f"usage: {u.calls} calls, {u.total_tokens} tokens, ${u.cost_usd:.4f}, {result.seconds:.1f}s")
    print(f"trajectory: {result.trajectory_path}")


if __name__ == "__main__":
    main(options())
