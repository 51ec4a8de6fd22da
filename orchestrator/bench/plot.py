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
        raise MissingDependency("the plot needs matplotlib: `pip install 'reason[bench]'`") from None
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


def plot_stopping(report: dict[str, Any], path: Path) -> Path:
    """Write a PNG of a stopping replay (`stopping_replay.replay`): accuracy against mean samples used, the
    fixed-k majority curve beside each family of adaptive rules, with the target region shaded."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency("the plot needs matplotlib: `pip install 'reason[bench]'`") from None
    n = report["samples"]
    full = 100 * report["fixed_k"][-1]["accuracy"]
    fig = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    target = 100 * report["tolerance"]
    ax.axvspan(0, n / 2, ymin=0, ymax=1, color="tab:green", alpha=0.06)
    ax.axhline(full - target, color="tab:green", linewidth=0.8, linestyle=":")
    ax.text(0.6, full - target + 0.4, f"target: >= {full - target:.1f}% with <= {n / 2:g} samples", fontsize=8,
            color="tab:green")
    ks = report["fixed_k"]
    ax.plot([r["k"] for r in ks], [100 * r["accuracy"] for r in ks], marker="o", color="black",
            label="majority of the first k (fixed k)")
    families: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in report["adaptive"]:
        families[row["rule"].split("-")[0]].append(row)
    for place, (family, rows) in enumerate(families.items()):
        rows = sorted(rows, key=lambda r: r["samples"])
        ax.plot([r["samples"] for r in rows], [100 * r["accuracy"] for r in rows], marker="s", linestyle="--",
                label=f"adaptive: {family}")
        for r in rows:
            ax.annotate(r["rule"].split("-", 1)[1], (r["samples"], 100 * r["accuracy"]),
                        textcoords="offset points", xytext=(2, (-10, 6, 14)[place % 3]), fontsize=7)
    ax.set_xlim(0.5, n + 0.5)
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.08 * (high - low))  # room for the labels above the top points
    ax.set_xlabel(f"mean samples used (of {n})")
    ax.set_ylabel("accuracy, %")
    ax.set_title(f"Stopping rules replayed: {report['problems']} problems x {n} samples, "
                 f"{report['orderings']} orderings (seed {report['seed']})", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=120)
    return path
