"""The networks TF-GridNet trains (docs/tfgridnet.md#model): direct learning (DL), SNR-progressive learning (PL) and
our ablation (DL with the complex spectrum as input), their MACs per second of audio, and the trained weights each
strategy loads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from reproductions.tfgridnet.data import SAMPLE_RATE

STRATEGIES = ("direct", "progressive")
# Our ablation, not upstream's: DL with the complex (real, imaginary) spectrum instead of the phase encoder's input.
ABLATION = "complex"
STRATEGY_LABELS = {"direct": "TF-GridNet-DL", "progressive": "TF-GridNet-PL",
                   ABLATION: "ours: DL, complex input"}


def build_model(config: dict, progressive: bool, complex_input=None, fused_lstm: bool = False):
    from reproductions.tfgridnet.tfgridnet import build_from_config

    return build_from_config(config["model"], progressive=progressive, complex_input=complex_input,
                             fused_lstm=fused_lstm, source=config.get("config_path"))


def build_strategy_model(config: dict, strategy: str, fused_lstm: bool = False):
    """The network a strategy trains: DL, PL, or the ablation (DL with the complex spectrum as input)."""
    if strategy == ABLATION:
        return build_model(config, False, complex_input=True, fused_lstm=fused_lstm)
    return build_model(config, strategy == "progressive", fused_lstm=fused_lstm)


def macs_breakdown(model, seconds: float = 1.0) -> list:
    """Per-layer MACs for ``seconds`` of audio, counting every sequence of a folded batch.

    The BLSTMs and their ConvTranspose1D run on ``(batch * frames, ...)`` or ``(batch * freq, ...)`` sequences, so
    at batch 1 their first dimension is the number of sequences; ``common.accounting`` counts one example per
    layer, hence each layer's count is multiplied by its input's first dimension (1 for every unfolded layer).
    """
    from common.accounting import macs_breakdown as layer_rows

    rows = layer_rows(model, np.zeros((1, int(round(seconds * SAMPLE_RATE))), np.float32))
    for row in rows:
        row["sequences"] = int(row["input_shape"][0][0]) if row["input_shape"] else 1
        row["macs_total"] = None if row["macs"] is None else int(row["macs"]) * row["sequences"]
    return rows


def macs_per_second(model) -> int:
    rows = macs_breakdown(model, 1.0)
    unknown = [row["layer"] for row in rows if row["macs"] is None]
    if unknown:
        raise ValueError(f"no MAC formula for layers {unknown}")
    return int(sum(row["macs_total"] for row in rows))

def trained_weights(args, strategy: str) -> Path:
    return Path(args.exp_dir) / strategy / "best.weights.h5"


def load_trained(config: dict, args, strategy: str):
    from common import training

    return training.load_trained(lambda: build_strategy_model(config, strategy),
                                 getattr(args, "checkpoint", None) or trained_weights(args, strategy),
                                 f"run 'train --strategy {strategy}' first")
