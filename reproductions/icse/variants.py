"""ICSE's stored models: the names of the variants (``pp_0.65``, ``pq_k16``, ``pp_0.65_pq_k16_fp16``), the files
under ``exp/icse/<config>/models/`` (``<variant>.weights.h5`` beside a ``<variant>.json`` naming its parent, theta,
code-book sizes and pruning report) and the FCN each one loads into (docs/icse.md#model, docs/icse.md#keras1-weights).
"""
from __future__ import annotations

import json
from pathlib import Path

from reproductions.icse.fcn import build_from_config, conv_layers, conv_weight_statistics


def theta_name(theta) -> str:
    return f"{float(theta):.2f}"


def pp_name(theta) -> str:
    return f"pp_{theta_name(theta)}"


def pq_name(clusters, theta=None, fp16=False) -> str:
    base = f"pq_k{int(clusters)}" if theta is None else f"{pp_name(theta)}_pq_k{int(clusters)}"
    return base + ("_fp16" if fp16 else "")


def models_dir(exp_dir) -> Path:
    return Path(exp_dir) / "models"


def tflite_path(exp_dir, variant) -> Path:
    return models_dir(exp_dir) / f"{variant}_int8.tflite"


def metrics_path(results_dir, variant) -> Path:
    from common.evaluation import scores_path

    return scores_path(results_dir, variant)


def robustness_path(results_dir) -> Path:
    return Path(results_dir) / "scores" / "robustness.json"


def build_model(config, settings=None):
    """The FCN of ``config``'s model section, or of ``settings`` (the layer sizes a Keras-1 file's variant records)."""
    if settings is None:
        return build_from_config(config["model"], seed=int(config["training"]["seed"]),
                                 source=config.get("config_path"))
    return build_from_config(settings, seed=int(config["training"]["seed"]))


def output_layer_name(model) -> str:
    return conv_layers(model)[-1].name


def save_variant(model, exp_dir, name, meta) -> Path:
    directory = models_dir(exp_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.weights.h5"
    model.save_weights(str(path))
    meta = dict(meta, name=name, conv=conv_weight_statistics(model))
    meta.setdefault("model", None)
    (directory / f"{name}.json").write_text(json.dumps(meta, indent=1))
    return path


def variant_exists(exp_dir, name) -> bool:
    return (models_dir(exp_dir) / f"{name}.weights.h5").is_file()


def load_variant(config, exp_dir, name):
    """Return ``(model, meta)`` of a stored variant; ValueError naming the missing file and the step that makes it."""
    path = models_dir(exp_dir) / f"{name}.weights.h5"
    if not path.is_file():
        raise ValueError(f"{path} does not exist: run the training step that produces '{name}' first (see run.sh)")
    meta = json.loads((models_dir(exp_dir) / f"{name}.json").read_text())
    # Variants made from a Keras-1 file carry that file's layer sizes; the others are the configuration's model.
    model = build_model(config, meta.get("model"))
    model.load_weights(str(path))
    return model, meta


def stored_variants(exp_dir) -> list:
    return sorted(path.name[: -len(".weights.h5")] for path in models_dir(exp_dir).glob("*.weights.h5"))

def main_pp_pq(config) -> str:
    """The PP+PQ model that is exported and scored for robustness: the first theta at the main code-book size."""
    return pq_name(int(config["quantization"]["clusters_per_sign"]), config["pruning"]["thetas"][0])
