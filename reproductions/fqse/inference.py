"""FQSE enhancers (docs/fqse.md#model, docs/fqse.md#splitter): the Keras waveform model, the int8 .tflite core with
the splitter and combiner in float around it, the input level, and the SNR floor of the int8 input grid.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.enhancement import inference_level
from reproductions.fqse.data import SAMPLE_RATE


def enhance_keras(model, noisy) -> np.ndarray:
    """The Keras model over ``noisy`` whole up to 12 s (the test utterances), in windows beyond."""
    from common.enhancement import chunked

    run = chunked(lambda signal: np.asarray(model(signal[None], training=False))[0], SAMPLE_RATE)
    return run(np.asarray(noisy, np.float32))


def enhance_tflite(runner, noisy, variant: str, config: dict) -> np.ndarray:
    """Splitter (float, outside) -> int8 .tflite core -> combiner (float, outside) -> pad to the input length; in
    windows beyond 12 s, so that the interpreter is never resized to a whole long file."""
    from common.enhancement import chunked
    from reproductions.fqse.fqse import combine_outputs_numpy, split_input_numpy

    def run(signal):
        if variant == "fqse":
            core_input = split_input_numpy(signal[None], stages=int(config["fqse"]["splitter_stages"]))[0]
            enhanced = combine_outputs_numpy(runner(core_input))
        else:
            enhanced = runner(signal[:, None])[0]
        output = np.zeros(signal.shape[0], np.float32)
        output[: enhanced.shape[0]] = enhanced[: signal.shape[0]]
        return output

    return chunked(run, SAMPLE_RATE)(np.asarray(noisy, np.float32))


def int8_input_floor(speech, mixture, quantization, level_dbfs=None) -> float:
    """SI-SNR (dB) of ``speech`` plus the rounding (and clipping) error of ``mixture`` on an int8 input grid.

    ``quantization``: the .tflite input's ``(scale, zero_point)``; ``level_dbfs``: the inference level the mixture
    is scaled to before it meets the grid (``inference.level_dbfs``, None = as it is). The paper's argument for the splitter is that this
    error, not the network, limits vanilla QAT at high input SNR (its figure: -1.8 dB at 18 dB, where the float model
    reaches 23.5 dB); a model whose output stays well below this floor cannot show that loss.
    """
    from common.enhancement import level_normalized
    from common.metrics import si_snr

    scale, zero_point = (float(value) for value in quantization)

    def on_grid(signal):
        levels = np.clip(np.round(np.asarray(signal, np.float64) / scale + zero_point), -128, 127)
        return (levels - zero_point) * scale

    error = np.asarray(level_normalized(on_grid, level_dbfs)(mixture), np.float64) - mixture
    return si_snr(speech, np.asarray(speech, np.float64) + error)


def at_inference_level(signal, config: dict) -> np.ndarray:
    """``signal`` scaled as :func:`common.enhancement.level_normalized` scales a model's input."""
    from common.enhancement import inference_level, level_gain

    signal = np.asarray(signal, dtype=np.float32)
    return (signal * level_gain(signal, inference_level(config))).astype(np.float32)


def tflite_path(exp_dir: Path, variant: str) -> Path:
    return Path(exp_dir) / "tflite" / f"{variant}_int8.tflite"
