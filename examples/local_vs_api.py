"""The embedded local model against an API model on the same questions, asked concurrently with `asolve`.

    python examples/local_vs_api.py                                 # API model: openai/gpt-4o-mini
    python examples/local_vs_api.py --api-model anthropic/claude-haiku-4-5

Without a key for the API model (`reason keys set openai` or OPENAI_API_KEY) the API side is skipped with a
message, and the local side still runs, offline.
"""

from __future__ import annotations

import argparse
import asyncio

from orchestrator import Budget, ReasonConfig, Reasoner, Result
from orchestrator.keys import get_key

QUESTIONS = [
    "What is 9.11 - 9.8?",
    "A bat and a ball cost $1.10 in total. The bat costs $1.00 more than the ball. "
    "How much is the ball, in cents?",
]


def options() -> argparse.Namespace:
    """The model and how far to let it run (`--max-calls 1` for a quick look)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="local/qwen2.5-coder-1.5b", help="a model name, as for `reason -m`")
    ap.add_argument("--api-model", default="openai/gpt-4o-mini", help="the API model to compare")
    ap.add_argument("--max-calls", type=int, help="stop after this many model calls")
    ap.add_argument("--max-tokens-per-call", type=int, default=1024)
    return ap.parse_args()


async def ask_all(model: str, args: argparse.Namespace) -> list[Result]:
    """Every question at once: `asolve` runs each solve in a worker thread (local calls still take turns)."""
    reasoner = Reasoner(model, budget=Budget(max_usd=0.05, max_seconds=300, max_calls=args.max_calls),
                        config=ReasonConfig(max_tokens_per_call=args.max_tokens_per_call))
    try:
        return list(await asyncio.gather(*(reasoner.asolve(q) for q in QUESTIONS)))
    finally:
        reasoner.close()


def report(model: str, results: list[Result]) -> None:
    print(f"\n{model}")
    for r in results:
        u = r.usage
        print(f"  {r.question[:50]:<50}  answer={r.answer!s:<8} {r.stop_reason:<14} "
              f"{u.total_tokens:>6} tok  ${u.cost_usd:.4f}  {r.seconds:5.1f}s")


async def main(args: argparse.Namespace) -> None:
    report(args.model, await ask_all(args.model, args))
    provider = args.api_model.split("/", 1)[0]
    if get_key(provider, required=False) is None:
        print(f"\nskipping {args.api_model}: no API key for {provider} "
              f"(run `reason keys set {provider}` or set the environment variable)")
        return
    report(args.api_model, await ask_all(args.api_model, args))


if __name__ == "__main__":
    asyncio.run(main(options()))
