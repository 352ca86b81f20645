"""Result tables: the paper's figure beside ours, saved with provenance.

Every reproduction ends with a :class:`ResultTable`. Column headers name the metric variant (for example
``"PESQ (raw NB, P.862)"``) because the five papers use different ones. ``render()`` prints our value and,
for every column where the paper gives one, the paper's value beside it; ``save()`` writes the same rows to
``results.json`` and ``results.csv`` together with the git commit, the configuration, the package versions
and the date, so any number can be traced to the run that produced it.

``python -m common.tables [RESULTS_DIR]`` prints every saved table under ``results/``.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import platform
import subprocess
from importlib import metadata
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
TRACKED_PACKAGES = (
    "tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy", "scipy",
    "librosa", "soundfile", "pesq", "pystoi", "speechmos", "onnxruntime",
)


def git_commit() -> dict:
    """The repository's commit and whether the working tree has uncommitted changes."""
    def run(*arguments):
        try:
            return subprocess.run(
                ["git", *arguments], cwd=REPOSITORY_ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions(names=TRACKED_PACKAGES) -> dict:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(config: dict | None = None, run: str | None = None) -> dict:
    """Where a result comes from: commit, configuration, run name, package versions, date, machine."""
    return {
        "run": run,
        "git": git_commit(),
        "config": config,
        "packages": package_versions(),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def format_value(value, precision: int = 2) -> str:
    """Format a table cell: floats with ``precision`` decimals, ``(mean, std)`` as ``mean ± std``."""
    if value is None:
        return "-"
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return f"{format_value(value[0], precision)} ± {format_value(value[1], precision)}"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{precision}f}"
    return str(value)


class ResultTable:
    """A result table with the paper's figures beside ours.

    Args:
        title: printed above the table (name the data set and the condition).
        columns: ``[(key, header), ...]`` or ``[(key, header, precision), ...]``; headers name the metric variant.
        notes: lines printed under the table (what differs from the paper, what a figure means).

    Example::

        table = ResultTable("ICSE on the mini corpus", [("pesq_wb", "PESQ (WB, P.862.2)"), ("stoi", "STOI", 3)])
        table.add_row("Original FCN", {"pesq_wb": 2.31, "stoi": 0.81}, paper={"pesq_wb": 2.55, "stoi": 0.85})
        print(table.render())
    """

    def __init__(self, title: str, columns, notes=()):
        self.title = title
        self.columns = [(column[0], column[1], column[2] if len(column) > 2 else 2) for column in columns]
        self.notes = list(notes)
        self.rows = []

    def add_row(self, label: str, values: dict, paper: dict | None = None) -> None:
        keys = {key for key, _, _ in self.columns}
        unknown = (set(values) | set(paper or {})) - keys
        if unknown:
            raise ValueError(f"table {self.title!r} has no column {sorted(unknown)}; columns: {sorted(keys)}")
        self.rows.append({"label": label, "ours": dict(values), "paper": dict(paper or {})})

    def _layout(self):
        headers, cells = ["", ], [[row["label"]] for row in self.rows]
        for key, header, precision in self.columns:
            headers.append(header)
            for row, line in zip(self.rows, cells):
                line.append(format_value(row["ours"].get(key), precision))
            if any(key in row["paper"] for row in self.rows):
                headers.append("paper")
                for row, line in zip(self.rows, cells):
                    line.append(format_value(row["paper"].get(key), precision))
        return headers, cells

    def render(self) -> str:
        headers, cells = self._layout()
        widths = [max(len(line[index]) for line in [headers, *cells]) for index in range(len(headers))]

        def line(values):
            return "  ".join(value.ljust(width) if index == 0 else value.rjust(width)
                             for index, (value, width) in enumerate(zip(values, widths))).rstrip()

        rule = "-" * sum(widths + [2 * (len(widths) - 1)])
        text = [self.title, rule, line(headers), rule, *(line(values) for values in cells), rule]
        text += [f"  {note}" for note in self.notes]
        return "\n".join(text)

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "columns": [{"key": key, "header": header, "precision": precision}
                        for key, header, precision in self.columns],
            "rows": self.rows,
            "notes": self.notes,
        }

    def save(self, results_dir, config: dict | None = None, extra: dict | None = None, run: str | None = None):
        """Write ``results.json`` (table, provenance, ``extra``) and ``results.csv`` into ``results_dir``."""
        results_dir = Path(results_dir)
        results_dir.mkdir(parents=True, exist_ok=True)
        document = {"table": self.to_dict(), "provenance": provenance(config, run or results_dir.name)}
        if extra:
            document["extra"] = extra
        (results_dir / "results.json").write_text(json.dumps(document, indent=1, default=_json_default))
        headers, cells = self._layout()
        with open(results_dir / "results.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row"] + headers[1:])
            writer.writerows(cells)
        return results_dir / "results.json"

    @classmethod
    def from_dict(cls, document: dict) -> "ResultTable":
        table = cls(document["title"], [(column["key"], column["header"], column["precision"])
                                        for column in document["columns"]], document.get("notes", ()))
        for row in document["rows"]:
            table.rows.append({"label": row["label"], "ours": row["ours"], "paper": row.get("paper", {})})
        return table


def _json_default(value):
    try:
        import numpy

        if isinstance(value, numpy.generic):
            return value.item()
        if isinstance(value, numpy.ndarray):
            return value.tolist()
    except ImportError:
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in results.json")


def load_table(path) -> tuple[ResultTable, dict]:
    """Read a ``results.json``; returns the table and its provenance."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
        return ResultTable.from_dict(document["table"]), document.get("provenance", {})
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path} is not a results file written by common.tables: {error}") from error


def summary(*results_roots) -> str:
    """Every saved table under ``results_roots``, each followed by the run, config and commit it came from."""
    paths = sorted(path for root in results_roots for path in Path(root).glob("**/results.json"))
    if not paths:
        return f"no results under {', '.join(map(str, results_roots))}"
    blocks = []
    for path in paths:
        table, origin = load_table(path)
        git = origin.get("git") or {}
        config = origin.get("config") or {}
        commit = (git.get("commit") or "unknown")[:10] + (" (uncommitted changes)" if git.get("dirty") else "")
        blocks.append(f"{table.render()}\n  [{path.parent}: config {config.get('config_name', '?')}, "
                      f"commit {commit}, {origin.get('date', '?')}]")
    return "\n\n".join(blocks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.tables",
                                     description="Print every saved result table with its provenance.")
    parser.add_argument("results_dirs", nargs="*", default=[str(REPOSITORY_ROOT / "results")],
                        help="folders to search for results.json (default: results/)")
    print(summary(*parser.parse_args(argv).results_dirs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
