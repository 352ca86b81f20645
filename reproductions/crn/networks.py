"""The two networks of the CRN reproduction (docs/crn.md#model, docs/crn.md#baselines): the causal CRN and the
LSTM-2 baseline built from the configuration, their trained weights, and their parameter counts in PyTorch's
convention.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from reproductions.crn.data import config_file

MODEL_NAMES = ("crn", "lstm2")


def build_model(config, which, fused_lstm=False):
    """The CRN or the LSTM-2 baseline of ``config``; ``fused_lstm`` builds its LSTMs from ``common.recurrent``."""
    if which == "crn":
        from reproductions.crn.crn import build_from_config

        return build_from_config(config["model"], fused_lstm=fused_lstm, source=config_file(config))
    if which == "lstm2":
        from reproductions.crn.lstm_baseline import build_from_config

        return build_from_config(config["baseline"], config["model"]["frequency_bins"], fused_lstm=fused_lstm,
                                 source=config_file(config))
    raise ValueError(f"unknown model {which!r}; expected one of {MODEL_NAMES}")


def weights_path(args, which) -> Path:
    return Path(args.exp_dir) / which / "best.weights.h5"


def load_trained(config, args, which, checkpoint=None):
    from common import training

    return training.load_trained(lambda: build_model(config, which), checkpoint or weights_path(args, which),
                                 f"run 'train --model {which}' first")


def pytorch_parameter_count(model) -> int:
    """Trainable parameters as PyTorch counts them: nn.LSTM has a second bias vector (4 x units) per layer."""
    from common.tfkeras import keras

    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    extra = sum(4 * layer.units for layer in model.layers if isinstance(layer, keras.layers.LSTM))
    return trainable + extra
