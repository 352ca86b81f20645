"""Shared check of a normalisation layer in full int8: one-layer model, calibrated on low-level inputs."""
import numpy as np

from common.tfkeras import keras
from common.tflite import TFLiteModel, export_tflite

CALIBRATION_LEVELS = (0.02, 0.04, 0.025, 0.035)


def one_layer_model(layer, frames: int, channels: int):
    inputs = keras.Input(shape=(frames, channels))
    return keras.Model(inputs, layer(inputs))


def int8_against_keras(model, path, representative, test_input):
    """Export ``model`` to full int8 calibrated on ``representative``; the Keras and .tflite outputs on
    ``test_input`` and the .tflite runner."""
    export_tflite(model, path, mode="int8", representative_data=representative)
    runner = TFLiteModel(path)
    return model(test_input, training=False).numpy(), runner(test_input), runner


def int8_normalisation_snr(norm, frames: int, path, channels: int = 16):
    """SNR (dB) of the int8 .tflite of ``Input -> norm`` against Keras on a std-0.03 input, and its runner.

    Gamma and beta are drawn near 1 and 0; calibration uses :data:`CALIBRATION_LEVELS` (the test level lies inside).
    """
    rng = np.random.default_rng(0)
    model = one_layer_model(norm, frames, channels)
    norm.set_weights([1 + 0.05 * rng.standard_normal(channels), 0.05 * rng.standard_normal(channels)])
    representative = [(level * rng.standard_normal((1, frames, channels))).astype(np.float32)
                      for level in CALIBRATION_LEVELS]
    test_input = (0.03 * rng.standard_normal((1, frames, channels))).astype(np.float32)
    expected, actual, runner = int8_against_keras(model, path, representative, test_input)
    return 10 * np.log10(np.sum(expected ** 2) / np.sum((actual - expected) ** 2)), runner
