"""The benchmark's PNG: quality against size and quality against speed, Pareto frontier marked.

One colour per model, one marker per variant kind; the frontier over all models (what a user choosing any model
and any variant should pick from) is drawn as a step line through the circled non-dominated points. Both cost
axes are logarithmic because sizes span three orders of magnitude (a few kB for a pruned int8 FCN to 50 MB for
the float sednn DNN).
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.pareto import pareto_frontier
from common.figures import pyplot, save_figure

MARKERS = {"float": "o", "tflite": "s", "pruned": "v", "clustered": "^", "pruned_clustered": "D",
           "ptq_int8": "P", "qat_int8": "X", "fqse": "*", "icse": "h", "dynamic": "p"}


def _cost_size(row):
    return row.get("tflite_gzip_bytes") or row.get("gzip_bytes_estimate")


def frontier_panels(rows, quality_key: str = "pesq_wb"):
    """For each panel (size, speed): x key, label, points, frontier indices. Used by the plot and the tests."""
    panels = []
    for key, label, cost in (("size", "size: gzip bytes of the deployed file (log)", _cost_size),
                             ("speed", "real-time factor, 1 thread (log; lower is faster)", lambda r: r.get("rtf_1"))):
        points = [(cost(row), row.get(quality_key)) for row in rows]
        panels.append({"key": key, "label": label, "points": points, "frontier": pareto_frontier(points)})
    return panels


def plot_frontiers(rows, path, quality_key: str = "pesq_wb", quality_label: str = "PESQ (WB, P.862.2)",
                   title: str = "Size-quality-speed frontier") -> Path | None:
    """Write the two-panel PNG to ``path``; returns the path, or None when no row has both coordinates."""
    plt = pyplot()

    panels = frontier_panels(rows, quality_key)
    if not any(panel["frontier"] for panel in panels):
        return None
    models = sorted({row["model"] for row in rows})
    colours = {model: plt.get_cmap("tab10")(index % 10) for index, model in enumerate(models)}
    figure, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for axis, panel in zip(axes, panels):
        for row, (x, y) in zip(rows, panel["points"]):
            if x is None or y is None:
                continue
            axis.scatter(x, y, color=colours[row["model"]], marker=MARKERS.get(row.get("kind"), "o"), s=46,
                         label=f"{row['model']}", zorder=3)
            axis.annotate(row["variant"], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        frontier = [panel["points"][index] for index in panel["frontier"]]
        if frontier:
            xs = [point[0] for point in frontier]
            ys = [point[1] for point in frontier]
            axis.step(xs, ys, where="post", color="black", linewidth=1, zorder=2, label="Pareto frontier")
            axis.scatter(xs, ys, s=160, facecolors="none", edgecolors="black", zorder=4)
        axis.set_xscale("log")
        axis.set_xlabel(panel["label"])
        axis.set_ylabel(quality_label)
        axis.grid(True, which="both", alpha=0.3)
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        axis.legend(unique.values(), unique.keys(), fontsize=7, loc="lower right")
    figure.suptitle(title)
    return save_figure(figure, path, dpi=120)
