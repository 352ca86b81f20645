"""Tiny CRN with non-trivial batch-norm statistics, shared by the CRN tests."""
import numpy as np

TINY_CHANNELS = (2, 3, 4, 4, 4)  # frequency 161 -> 80 -> 39 -> 19 -> 9 -> 4, LSTM width 16
# A configuration of the tiny CRN and LSTM-2 on the mini corpus, for the tests that need no YAML file.
MINI = {
    "model": {"frequency_bins": 161, "channels": [2, 3, 4, 4, 4], "lstm_layers": 2},
    "baseline": {"units": 8, "lstm_layers": 4},
    "data": {"corpus": "mini", "per_utterance": 1, "train_items": 5, "valid_items": 2, "max_train_seconds": None,
             "seed": 0},
    "evaluation": {"snrs": [-5, 0, 5], "noise_types": None, "utterances": 2, "seed": 0},
    "config_name": "tiny",
}


def randomize_batch_norm(model, seed=0):
    """Random gamma, beta and moving statistics, so that inference-mode batch norm is not the identity."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if "batch_norm" in layer.name:
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([
                1.0 + 0.3 * rng.standard_normal(gamma.shape),
                0.2 * rng.standard_normal(beta.shape),
                0.2 * rng.standard_normal(mean.shape),
                0.5 + rng.random(variance.shape),
            ])
    return model


def tiny_crn(seed=0):
    from common.tfkeras import keras
    from reproductions.crn.crn import build_crn

    keras.utils.set_random_seed(seed)
    return randomize_batch_norm(build_crn(channels=TINY_CHANNELS, name="crn"), seed)


def noisy_magnitude(frames, seed=0, bins=161):
    return np.abs(np.random.default_rng(seed).standard_normal((frames, bins))).astype(np.float32)
