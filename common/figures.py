"""Figures the recipes and the benchmark write as PNG files, drawn without a display.

``pyplot()`` selects matplotlib's file-only Agg backend before pyplot is imported (a training machine has no
display), and ``save_figure`` writes a finished figure and frees it, so a long run that draws many figures does not
hold them all in memory.
"""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path, dpi: int = 100) -> Path:
    """Lay out ``figure``, write it to ``path`` (parent folders created), close it and return the path."""
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    pyplot().close(figure)
    return path
