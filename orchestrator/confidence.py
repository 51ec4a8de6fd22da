"""How sure the model was of the tokens it wrote: per-token statistics and a trace's summary.

DeepConf (Fu et al. 2025, "Deep Think with Confidence") weighs or filters the votes of sampled traces by the
model's own token distribution: a token's confidence is minus the mean log-probability of the `TOP` most
likely tokens at that position (high when the distribution is peaked), and a trace is summarised by the mean
over its tokens, by its weakest stretch (the lowest mean over a sliding window of `WINDOW` tokens: one
confused passage marks the trace) or by its last `WINDOW` tokens (where the answer is written). The log
probability of each chosen token is kept too (its mean is the trace's average log-likelihood).

All statistics are of the model's own distribution (the raw logits, temperature 1), whatever the sampling
temperature was. Backends that report them (`ChatModel.reports_confidence`): the in-process local model
when its batch decoders run the call (computed from the logits as it decodes, `local_batch`), and OpenAI
or OpenAI-compatible servers asked for log-probabilities (from the top `TOP` the server returns,
`openai_compat`); others report none (`Completion.confidence` is None). `vote:weight=SCORE` weighs votes
by one of `SCORES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy comes with the local model's extra; the summaries are plain Python
    import numpy as np

TOP = 20  # tokens whose log-probabilities make a token's confidence (DeepConf's k; OpenAI's top_logprobs max)
WINDOW = 32  # tokens in a window for the weakest-stretch and tail summaries

SUMMARY_KEYS = ("mean_logprob", "mean_conf", "min_window_conf", "tail_conf", "tokens")

# What a summary is reduced to for weighing a vote: higher means surer.
SCORES: dict[str, Callable[[dict[str, float]], float]] = {
    "mean_conf": lambda s: s["mean_conf"],
    "min_window_conf": lambda s: s["min_window_conf"],
    "tail_conf": lambda s: s["tail_conf"],
    "mean_prob": lambda s: math.exp(s["mean_logprob"]),  # the geometric-mean probability of the chosen tokens
}


def token_stats(logits: np.ndarray, token: int) -> tuple[float, float]:
    """The chosen `token`'s log-probability and the position's confidence (minus the mean log-probability
    of the `TOP` most likely tokens), from one position's raw logits (float32 arithmetic, float64 sums:
    about 0.2 ms for a 152k vocabulary: `benchmarks/local_model.py stats`)."""
    import numpy as np

    peak = logits.max()
    log_total = float(peak) + float(np.log(np.exp(logits - peak).sum(dtype=np.float64)))
    top = np.partition(logits, -TOP)[-TOP:]
    return float(logits[token]) - log_total, log_total - float(top.mean(dtype=np.float64))


def summarise(logprobs: Sequence[float], confs: Sequence[float], window: int = WINDOW) -> dict[str, float] | None:
    """A trace's summary (`SUMMARY_KEYS`) from its per-token log-probabilities and confidences; None for an
    empty trace. A trace shorter than `window` is one window."""
    n = len(confs)
    if n == 0 or len(logprobs) != n:
        return None
    w = min(window, n)
    cum = [0.0, *accumulate(float(c) for c in confs)]
    weakest = min(cum[i + w] - cum[i] for i in range(n - w + 1)) / w  # the lowest mean of w tokens in a row
    return {
        "mean_logprob": round(sum(logprobs) / n, 5),
        "mean_conf": round(cum[-1] / n, 5),
        "min_window_conf": round(weakest, 5),
        "tail_conf": round((cum[-1] - cum[n - w]) / w, 5),
        "tokens": n,
    }


def combine(summaries: Sequence[dict[str, float] | None]) -> dict[str, float] | None:
    """One summary of several calls' (a chain's steps, in order): means weighted by tokens, the weakest
    window of any, the last call's tail. None if any call has none (a backend without statistics, a
    cache entry from before they were kept), or there are no calls."""
    if not summaries or any(s is None or not s.get("tokens") for s in summaries):
        return None
    parts = [s for s in summaries if s is not None]
    n = sum(s["tokens"] for s in parts)
    return {
        "mean_logprob": round(sum(s["mean_logprob"] * s["tokens"] for s in parts) / n, 5),
        "mean_conf": round(sum(s["mean_conf"] * s["tokens"] for s in parts) / n, 5),
        "min_window_conf": min(s["min_window_conf"] for s in parts),
        "tail_conf": parts[-1]["tail_conf"],
        "tokens": n,
    }
