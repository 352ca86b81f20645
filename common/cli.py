"""The uniform command line of every reproduction.

``python -m reproductions.<name> <command> --config paper|mini|PATH [--set key=value ...]`` with the commands

=========  ============================================================================================
info       build the model, print one JSON line: parameter counts and MACs per second of audio
train      train (resumes from the last checkpoint in the experiment folder)
evaluate   score the trained model on the built-in test set, or on ``--noisy-dir``/``--clean-dir`` pairs
export     write the .tflite files
enhance    ``enhance IN OUT``: enhance a wav file or a folder of them (``--tflite`` runs the .tflite);
           see :mod:`common.enhancement` for the checks and the sample-rate policy
table      print the result table (paper's figures beside ours) and save it with its provenance
=========  ============================================================================================

A reproduction supplies a recipe object with one method per command (``method(config, args)``) and may add
flags through ``add_arguments(command, parser)``; this module does the parsing, the configuration loading,
the experiment and result folders and the error reporting, identically for all five.

The folders are ``exp/<name>/<run>`` and ``results/<name>/<run>``, where ``<run>`` is the config name, with a
tag of the ``--set`` overrides when there are any (``common.config.experiment_name``). ``train`` records the
resolved configuration in ``<exp>/config.yaml`` and refuses a folder whose recorded ``experiment_sections``
(a recipe attribute, ``("model",)`` by default) differ. A recipe's optional ``prepare(config, args)`` adjusts
the configuration and folders from its own flags before that check. A recipe's ``config_sections`` lists the
top-level sections it reads; a configuration with one missing or one more is refused when it is loaded.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.audio import LEVEL_FLOOR_DBFS
from common.config import experiment_name, load_config, record_experiment

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]

COMMAND_HELP = {
    "info": "build the model and print one JSON line with parameter counts and MACs per second of audio",
    "train": "train the model (a rerun resumes from the last checkpoint)",
    "evaluate": "score the trained model on the test set or on --noisy-dir/--clean-dir pairs",
    "export": "export the trained models to .tflite (float32 and int8)",
    "enhance": "enhance a wav file or a folder of wav files",
    "table": "print and save the result table, with the paper's figures beside ours",
}
# The sample-rate policy and the input/output rules of every recipe's enhance, stated once.
ENHANCE_DESCRIPTION = (
    "Enhance a wav file or a folder of wav files (searched recursively, its layout mirrored under OUT). The "
    "model runs at the rate it was trained at (the configuration's data.sample_rate where it sets one, 16 kHz "
    "otherwise): input at another rate is resampled to it, and the output is written at that rate. Every change "
    "made to an input (resampling, down-mix, channel choice, a clipped or truncated file) is printed on one line. "
    f"Input below the level floor ({LEVEL_FLOOR_DBFS:g} dBFS RMS) is refused. OUT may not be IN (or, for folders, "
    "inside it or contain it) unless --overwrite; outputs are checked before the model is loaded and written "
    "through a temporary file. In a folder a bad file is skipped with a line naming it, the others are enhanced, "
    "and the command exits with status 2 and the count of files skipped."
)


def build_parser(recipe) -> argparse.ArgumentParser:
    """Return the argument parser for ``recipe`` (one sub-command per entry of ``COMMAND_HELP``)."""
    description = (recipe.__doc__ or "").strip().splitlines()[0] if recipe.__doc__ else None
    parser = argparse.ArgumentParser(prog=f"python -m reproductions.{recipe.name}", description=description)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, help_text in COMMAND_HELP.items():
        description_text = ENHANCE_DESCRIPTION if command == "enhance" else help_text
        subparser = subparsers.add_parser(command, help=help_text, description=description_text)
        subparser.add_argument(
            "--config", default="mini", help="'paper', 'mini' (default) or the path of a YAML configuration"
        )
        subparser.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE", help="override a configuration entry"
        )
        subparser.add_argument(
            "--exp-dir", type=Path, default=None, help="experiment folder (default: exp/<name>/<config>)"
        )
        subparser.add_argument(
            "--results-dir", type=Path, default=None, help="result folder (default: results/<name>/<config>)"
        )
        if command == "enhance":
            subparser.add_argument("input", type=Path, help="a wav file or a folder of wav files")
            subparser.add_argument("output", type=Path, help="output wav file, or folder for a folder input")
            subparser.add_argument(
                "--channel", type=int, default=None, metavar="N",
                help="use channel N (1 = the first) of multi-channel input; default: the mean of the channels")
            subparser.add_argument(
                "--overwrite", action="store_true",
                help="allow OUT to be IN (or a folder inside IN, or containing it): inputs are replaced")
        if command in ("enhance", "evaluate"):
            subparser.add_argument("--tflite", action="store_true", help="run the exported .tflite model")
            subparser.add_argument(
                "--checkpoint", type=Path, default=None, help="weights file (default: the run's trained model)"
            )
        if command == "evaluate":
            subparser.add_argument("--noisy-dir", type=Path, default=None, help="folder of noisy wav files")
            subparser.add_argument(
                "--clean-dir", type=Path, default=None, help="folder of clean references with the same names"
            )
            subparser.add_argument("--max-files", type=int, default=None, help="score at most this many files")
        if hasattr(recipe, "add_arguments"):
            recipe.add_arguments(command, subparser)
    return parser


def enhancement_jobs(source, destination) -> list[tuple[Path, Path]]:
    """Pair every input wav of ``enhance IN OUT`` with its output path.

    ``IN`` is a wav file (then ``OUT`` is the output file) or a folder, searched recursively, whose layout is
    mirrored under ``OUT``.
    """
    source, destination = Path(source), Path(destination)
    if source.is_dir():
        inputs = sorted(source.rglob("*.wav"))
        if not inputs:
            raise ValueError(f"{source}: no .wav files to enhance")
        return [(path, destination / path.relative_to(source)) for path in inputs]
    if source.is_file():
        return [(source, destination)]
    raise ValueError(f"{source}: no such file or folder")


def main(recipe, argv=None) -> int:
    """Parse ``argv``, load the configuration and run the command on ``recipe``; return the exit status."""
    args = build_parser(recipe).parse_args(argv)
    if args.command == "evaluate" and (args.noisy_dir is None) != (args.clean_dir is None):
        print("error: --noisy-dir and --clean-dir go together", file=sys.stderr)
        return 2
    recipe_dir = Path(sys.modules[type(recipe).__module__].__file__).resolve().parent
    try:
        config = load_config(args.config, recipe_dir, args.set, sections=getattr(recipe, "config_sections", None))
        args.config_name = config["config_name"]
        args.experiment_name = experiment_name(args.config_name, args.set)
        if args.exp_dir is None:
            args.exp_dir = REPOSITORY_ROOT / "exp" / recipe.name / args.experiment_name
        if args.results_dir is None:
            args.results_dir = REPOSITORY_ROOT / "results" / recipe.name / args.experiment_name
        if hasattr(recipe, "prepare"):
            config = recipe.prepare(config, args)
        if args.command == "train":
            record_experiment(args.exp_dir, config, getattr(recipe, "experiment_sections", ("model",)))
        result = getattr(recipe, args.command)(config, args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "info":
        print(json.dumps(result, sort_keys=False))
    return 0
