"""USD prices and context windows from the price map that ships inside litellm, read offline.

The JSON file is read directly (found without importing litellm, whose import takes seconds); only if it
is missing do we import litellm, with `LITELLM_LOCAL_MODEL_COST_MAP` set so it never fetches the map.
A price the user gives (`reason --price`, a `[prices]` table in config.toml) is registered with `register` and
wins over the map. A model with neither has no known price: `price()` returns None and `source()` says
"unknown", so a dollar figure is shown as unknown and a dollar budget is refused rather than never enforced.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from orchestrator.models.base import Usage

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
PRICE_FILE = "model_prices_and_context_window_backup.json"

Price = tuple[float, float, float]  # USD per input token, per output token, per cached input token
GIVEN: dict[str, Price] = {}  # prices the user gave, by model name (see `register`)


def register(model: str, input_per_million: float, output_per_million: float,
             cached_per_million: float | None = None) -> None:
    """Price `model` at these USD per million tokens (input, output, cached input: default the input price)."""
    cached = input_per_million if cached_per_million is None else cached_per_million
    GIVEN[model] = (input_per_million / 1e6, output_per_million / 1e6, cached / 1e6)


@functools.cache
def table() -> dict[str, dict[str, Any]]:
    """The whole price map: model name -> litellm's entry (prices, context window, capabilities)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None:
        return {}
    for folder in spec.submodule_search_locations or []:
        path = Path(folder) / PRICE_FILE
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    import litellm  # the file moved: fall back to the loaded map

    return dict(litellm.model_cost)


def entry(model: str) -> dict[str, Any] | None:
    """litellm's entry for a model name, trying `provider/model`, then without the provider prefix."""
    prices = table()
    candidates = [model, model.lower()]
    if "/" in model:
        candidates += [model.split("/", 1)[1], model.rsplit("/", 1)[1]]
    for name in candidates:
        found = prices.get(name)
        if found and name != "sample_spec" and isinstance(found.get("input_cost_per_token"), (int, float)):
            return found
    return None


def price(model: str) -> Price | None:
    """(input, output, cached input) USD per token: the price given for `model`, else the map's, else None."""
    if model in GIVEN:
        return GIVEN[model]
    found = entry(model)
    if found is None:
        return None
    inp = float(found.get("input_cost_per_token") or 0.0)
    out = float(found.get("output_cost_per_token") or 0.0)
    cached = found.get("cache_read_input_token_cost")
    return inp, out, inp if cached is None else float(cached)


def source(model: str) -> str:
    """Where `model`'s price comes from: "given" (by the user), "table" (litellm's map) or "unknown"."""
    if model in GIVEN:
        return "given"
    return "table" if entry(model) is not None else "unknown"


def cost(model: str, usage: Usage) -> float:
    """USD cost of one call; 0 for a model without a known price (`source()` tells the two apart)."""
    p = price(model)
    if p is None:
        return 0.0
    inp, out, cached = p
    fresh = max(0, usage.prompt_tokens - usage.cached_tokens)
    return fresh * inp + usage.cached_tokens * cached + usage.completion_tokens * out


def context_window(model: str) -> int | None:
    """The model's input context window in tokens, if known."""
    found = entry(model)
    if found is None:
        return None
    size = found.get("max_input_tokens") or found.get("max_tokens")
    return size if isinstance(size, int) else None
