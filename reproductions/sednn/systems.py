"""The sednn systems that evaluation scores (docs/sednn.md#inference, docs/sednn.md#level): the float DNN, its
pruned and clustered copies and their .tflite exports, where each lives under the experiment folder, and each as a
``noisy -> enhanced`` function at the configuration's inference level.
"""
from __future__ import annotations

from pathlib import Path

SEDNN_VARIANTS = ("float", "pruned", "clustered")
TFLITE_MODES = ("float32", "int8")
# The runs scored on the robustness sets: the float DNN and its int8 .tflite.
ROBUSTNESS_RUNS = ("float", "float_int8_tflite")


def runs() -> list:
    """Every run ``evaluate`` can score on the test set: the models, then their .tflite files."""
    return list(SEDNN_VARIANTS) + [f"{variant}_{mode}_tflite" for variant in SEDNN_VARIANTS for mode in TFLITE_MODES]


def float_checkpoint(config, args) -> Path:
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint is not None:
        return Path(checkpoint)
    from reproductions.sednn.trainer import checkpoint_path

    return checkpoint_path(args.exp_dir, config["inference"]["iteration"])


def compressed_path(exp_dir, variant) -> Path:
    return Path(exp_dir) / "compressed" / f"{variant}.h5"


def tflite_path(exp_dir, variant, mode) -> Path:
    return Path(exp_dir) / "tflite" / f"{variant}_{mode}.tflite"


def predictor(config, args):
    """``(predict, scaler, run_name)`` for the model that ``args`` selects."""
    from reproductions.sednn.pipeline import keras_predictor, tflite_predictor
    from reproductions.sednn.scaler import Scaler
    from reproductions.sednn.trainer import load_checkpoint

    variant = args.variant
    if args.tflite:
        from common.tflite import TFLiteModel

        exported = tflite_path(args.exp_dir, variant, args.tflite_mode)
        if not exported.is_file():
            raise FileNotFoundError(f"{exported}: not exported; run the export stage of run.sh first")
        scaler = Scaler.load_npz(exported.with_suffix(".scaler.npz"))
        return tflite_predictor(TFLiteModel(exported)), scaler, f"{variant}_{args.tflite_mode}_tflite"
    path = float_checkpoint(config, args) if variant == "float" else compressed_path(args.exp_dir, variant)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {variant} model; run the training stage of run.sh first")
    model, scaler = load_checkpoint(path)
    return keras_predictor(model), scaler, variant


def enhancer(config, predict, scaler):
    """``noisy -> enhanced`` of one model, at the configuration's inference level (``inference.level_dbfs``)."""
    from common.enhancement import level_normalized
    from reproductions.sednn.pipeline import enhance_waveform

    n_concat = config["features"]["n_concat"]
    return level_normalized(lambda noisy: enhance_waveform(noisy, predict, scaler, n_concat)[0],
                            config["inference"].get("level_dbfs"))
