"""A custom prompt folder: override one template (think.j2) and keep the built-in others.

    python examples/custom_prompts.py

`ReasonConfig(prompts_dir=...)` (or `reason --prompts DIR`) searches DIR first, file by file, so a folder
holding only think.j2 changes how the model is asked to think and nothing else. Templates are Jinja2 with
StrictUndefined: a misspelt variable is an error, not an empty string.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator import Budget, ReasonConfig, Reasoner

PROMPTS = Path(__file__).parent / "prompts"


def options() -> argparse.Namespace:
    """The model and how far to let it run (`--max-calls 1` for a quick look)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="local/qwen2.5-coder-1.5b", help="a model name, as for `reason -m`")
    ap.add_argument("--max-calls", type=int, help="stop after this many model calls")
    ap.add_argument("--max-tokens-per-call", type=int, default=1024)
    return ap.parse_args()


def main(args: argparse.Namespace) -> None:
    config = ReasonConfig(prompts_dir=str(PROMPTS), max_tokens_per_call=args.max_tokens_per_call)
    reasoner = Reasoner(args.model, "chain", config=config,  # the chain is what think.j2 prompts
                        budget=Budget(max_seconds=300, max_calls=args.max_calls))
    result = reasoner.solve("Tom has 3 boxes of 12 pencils and gives away 10 pencils. How many are left?")
    first_think = next(s for s in result.steps if s.kind == "think")
    print("the model was asked:")
    print(first_think.instruction)
    print(f"\nanswer: {result.answer} ({result.stop_reason})")
    print(f"trajectory: {result.trajectory_path}")


if __name__ == "__main__":
    main(options())
