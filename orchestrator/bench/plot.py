"""The o1-style scaling plot: accuracy against mean tokens per problem (log x), one line per model.

matplotlib is imported here only, through its object API on the Agg canvas (no pyplot, so no global figure
state and no display needed).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from orchestrator.errors import MissingDependency


def plot_scaling(summary: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Write a PNG of accuracy (95% Wilson CI error bars) vs mean prompt+completion tokens per problem."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency("the plot needs matplotlib: `pip install 'reasonloop[bench]'`") from None
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in summary:
        by_model[s["model"]].append(s)
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    skipped = []
    placed: Counter[tuple[float, float]] = Counter()
    for model, points in by_model.items():
        points = sorted(points, key=lambda s: s["mean_total_tokens"])
        shown = [s for s in points if s["mean_total_tokens"] > 0]  # a log axis has no 0
        skipped += [s["arm"] for s in points if s["mean_total_tokens"] <= 0]
        if not shown:
            continue
        x = [s["mean_total_tokens"] for s in shown]
        y = [100 * s["accuracy"] for s in shown]
        err = [[max(0.0, 100 * (s["accuracy"] - s["ci95"][0])) for s in shown],  # float noise at 0% and 100%
               [max(0.0, 100 * (s["ci95"][1] - s["accuracy"])) for s in shown]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=4, linewidth=1.5, label=model)
        most = max(s["n"] for s in summary)
        for s, xi, yi in zip(shown, x, y, strict=True):
            text = s["strategy"] + (f" {s['label']}" if s["label"] else "")
            text += f" (n={s['n']})" if s["n"] < most else ""  # an arm stopped early: say how few it has
            stacked = placed[(round(xi, 1), round(yi, 1))]  # equal points: labels one under another
            placed[(round(xi, 1), round(yi, 1))] += 1
            ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(6, 6 - 11 * stacked), fontsize=8)
    ax.set_xscale("log")
    ax.margins(x=0.15)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("mean tokens per problem (prompt + completion, log scale)")
    ax.set_ylabel("accuracy, % (95% Wilson CI)")
    ax.set_title(title + (f"\n(not shown, no tokens: {', '.join(skipped)})" if skipped else ""), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if by_model:
        ax.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=120)
    return path

