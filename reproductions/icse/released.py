"""The authors' released weight files (docs/icse.md#released-files): where they are found (``--released-dir`` or
``ICSE_RELEASED_DIR``), and the ``released`` training step that runs their unpruned FCNN_0509 through our PP+PQ and
stores their own PP+PQ file beside it.
"""
from __future__ import annotations

from pathlib import Path

from reproductions.icse.compression import prune_and_retrain, quantize_and_retrain
from reproductions.icse.data import load_corpus
from reproductions.icse.fcn import fcn_from_keras1
from reproductions.icse.size_rule import float_levels, inferred_levels
from reproductions.icse.variants import save_variant, theta_name

# The folder of the authors' released weight files when --released-dir is not given.
RELEASED_DIR_VARIABLE = "ICSE_RELEASED_DIR"


def released_dir(args) -> Path:
    """The folder of the authors' files: ``--released-dir``, else the ``ICSE_RELEASED_DIR`` environment variable."""
    import os

    folder = getattr(args, "released_dir", None) or os.environ.get(RELEASED_DIR_VARIABLE)
    if not folder:
        raise ValueError(f"the authors' files (WilliamYu1993/ICSE) are not redistributed: pass --released-dir DIR or "
                         f"set {RELEASED_DIR_VARIABLE} to the folder that holds them")
    return Path(folder)


def keras1_path(config, key, folder) -> Path:
    path = Path(folder) / config["released"][key]
    if not path.is_file():
        raise ValueError(f"{path}: the authors' file is missing (released.{key} in {config.get('config_path')} "
                         f"names it in --released-dir / {RELEASED_DIR_VARIABLE})")
    return path



def train_released(config, exp_dir, folder):
    """The authors' FCNN_0509 (unpruned) compressed by our PP + PQ with a short retraining on our corpus, and
    the authors' own PP+PQ file (built from another base model, FCNN_0425), stored as variants."""
    released = config["released"]
    quantization = config["quantization"]
    corpus = load_corpus(config)
    runs = Path(exp_dir) / "runs"
    unpruned, authors = keras1_path(config, "unpruned", folder), keras1_path(config, "pp_pq", folder)
    model, sizes = fcn_from_keras1(unpruned)
    released_config = dict(config, model=sizes)
    save_variant(model, exp_dir, "released_fcn", {"parent": None, "keras1_file": str(unpruned), "model": sizes,
                                                  "levels": float_levels(model)})
    theta = float(released["theta"])
    result = prune_and_retrain(model, corpus, released_config, runs / "released_ours_pp", theta,
                               released["pruning_retrain"])
    print(f"released FCNN_0509, PP theta={theta_name(theta)}:\n{result.format()}")
    levels, output_clusters = quantize_and_retrain(model, corpus, released_config, runs / "released_ours_pp_pq",
                                                   int(quantization["clusters_per_sign"]),
                                                   released["quantization_retrain"])
    save_variant(model, exp_dir, "released_ours_pp_pq", {
        "parent": "released_fcn", "theta": theta, "clusters_per_sign": int(quantization["clusters_per_sign"]),
        "output_clusters_per_sign": output_clusters, "levels": levels, "pruning_report": result.report,
        "model": sizes})

    authors_model, authors_sizes = fcn_from_keras1(authors)
    save_variant(authors_model, exp_dir, "released_authors_pp_pq", {
        "parent": None, "keras1_file": str(authors), "model": authors_sizes,
        "levels": inferred_levels(authors_model)})
    return None

