"""The stopping-replay plot: accuracy against mean samples used, fixed-k beside each family of adaptive rules.

matplotlib through its object API on the Agg canvas, as `orchestrator.bench.plot` does.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from orchestrator.errors import MissingDependency


def plot_stopping(report: dict[str, Any], path: Path) -> Path:
    """Write a PNG of a stopping replay (`stopping_replay.replay`): accuracy against mean samples used, the
    fixed-k majority curve beside each family of adaptive rules, with the target region shaded."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency("the plot needs matplotlib: `pip install 'reasonloop[bench]'`") from None
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
