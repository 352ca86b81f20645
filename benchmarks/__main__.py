"""``python -m benchmarks``: the compression and deployment benchmark across the five reproductions."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.variant import REPOSITORY_ROOT

MODEL_NAMES = ("icse", "fqse", "sednn", "crn", "tfgridnet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Size-quality-speed benchmark of every model variant the reproductions left in exp/.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (("run", "measure every variant, print the table and targets, write results and the plot"),
                       ("status", "list the variants and which artefacts exist (loads no model)"),
                       ("table", "print the saved table and targets"),
                       ("plot", "redraw the PNG from the saved results.json")):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--config", default="mini",
                         help="mini (default) or paper: which trained models to read (exp/<name>/<config>) and the "
                              "benchmark settings in benchmarks/conf/<config>.yaml; or a YAML path")
        sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override a benchmark setting (e.g. --set repeats=20)")
        sub.add_argument("--results-dir", type=Path, default=None,
                         help="default: results/benchmark/<config>")
        if name in ("run", "status"):
            sub.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=None,
                             help="models to include (default: the config's list, all five)")
        if name == "run":
            sub.add_argument("--max-items", type=int, default=None, help="test clips for quality (config: 8)")
            sub.add_argument("--seconds", type=float, default=None, help="length of the fixed timing input (s)")
            sub.add_argument("--repeats", type=int, default=None, help="timed repetitions per figure (median)")
            sub.add_argument("--processes", type=int, default=None, help="processes for the quality metrics")
            sub.add_argument("--seed", type=int, default=None, help="test-set seed")
            sub.add_argument("--no-quality", action="store_true", help="skip the quality metrics")
            sub.add_argument("--no-compare", action="store_true", help="skip ONNX Runtime / PyTorch comparisons")
            sub.add_argument("--no-memory", action="store_true",
                             help="skip the peak-memory column (one fresh child process per variant after the "
                                  "timings, several seconds each: TensorFlow is imported in each)")
            sub.add_argument("--memory-seconds", type=float, default=None,
                             help="length of the peak-memory input (config: 600 s, a 10-minute file)")
            sub.add_argument("--work-dir", type=Path, default=None,
                             help="where exported ONNX files go (default: exp/benchmark/<config>)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from common.config import load_config

        settings = load_config(args.config, Path(__file__).resolve().parent, args.set)
        config_name = settings["config_name"]
        results_dir = args.results_dir or REPOSITORY_ROOT / "results" / "benchmark" / config_name
        for key in ("max_items", "seconds", "repeats", "processes", "seed", "models", "memory_seconds"):
            if getattr(args, key, None) is not None:
                settings[key] = getattr(args, key)
        unknown = sorted(set(settings.get("models", [])) - set(MODEL_NAMES))
        if unknown:
            raise ValueError(f"{settings['config_path']}: unknown models {unknown}; known: {list(MODEL_NAMES)}")
        if args.command in ("run", "status"):
            from benchmarks.models import adapters_for

            adapters = adapters_for(settings["models"])
        if args.command == "status":
            for adapter in adapters:
                for variant in adapter.variants(config_name):
                    state = variant.missing or f"ready ({variant.file_label})"
                    print(f"{variant.label:45s} {state}")
            return 0
        if args.command == "run":
            from benchmarks.benchmark import run_benchmark

            if int(settings["max_items"]) < 1 or int(settings["repeats"]) < 1 or float(settings["seconds"]) <= 0 \
                    or float(settings.get("memory_seconds", 600.0)) <= 0:
                raise ValueError(f"{settings['config_path']}: max_items and repeats must be >= 1, seconds and "
                                 "memory_seconds positive")
            run_benchmark(adapters, config_name, results_dir,
                          args.work_dir or REPOSITORY_ROOT / "exp" / "benchmark" / config_name,
                          max_items=int(settings["max_items"]), seconds=float(settings["seconds"]),
                          repeats=int(settings["repeats"]), quality=not args.no_quality, compare=not args.no_compare,
                          processes=int(settings["processes"]), seed=int(settings["seed"]),
                          memory=not args.no_memory,
                          memory_seconds=float(settings.get("memory_seconds", 600.0)))
            return 0
        from common.tables import load_table

        path = results_dir / "results.json"
        if not path.is_file():
            raise ValueError(f"{path} does not exist: run 'bash benchmarks/run.sh' (or python -m benchmarks run) first")
        table, _ = load_table(path)
        document = json.loads(path.read_text())
        extra = document.get("extra", {})
        if args.command == "table":
            from benchmarks.benchmark import format_targets

            print(table.render())
            print("\nTargets:")
            print(format_targets(extra.get("targets", [])))
            return 0
        from benchmarks.plot import plot_frontiers

        rows = [row for row in extra.get("rows", []) if str(row.get("status", "")).startswith("measured")
                and row.get("kind") != "noisy"]
        written = plot_frontiers(rows, results_dir / "frontier.png",
                                 title=f"Size-quality-speed frontier ({config_name} configs, mini test set)")
        print(f"wrote {written}" if written else "no row has quality and size/speed figures: nothing to plot")
        return 0
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
