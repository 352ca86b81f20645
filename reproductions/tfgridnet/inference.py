"""TF-GridNet enhancers (docs/tfgridnet.md#model, docs/toolchain.md#tflite-conversion): the traced Keras model in
windows beyond 12 s, the fixed-length .tflite in overlapping windows, and the input scale the model divides by.
"""
from __future__ import annotations

import numpy as np

from reproductions.tfgridnet.data import SAMPLE_RATE, fit_length


def input_deviation(config: dict, signal: np.ndarray) -> float:
    """The scale the model divides its input by: the waveform's standard deviation with ``model.normalize_input``
    (``WaveformDeviation``: unbiased, floored at 1e-8), else 1."""
    if not config["model"]["normalize_input"]:
        return 1.0
    return max(float(np.std(np.asarray(signal, np.float64), ddof=1)), 1e-8)


def enhancer(model):
    """A traced ``waveform (samples,) -> enhanced (samples,)`` function (PL: the last block's estimate), run in
    windows beyond 12 s: the full-band self-attention's memory grows with the square of the length."""
    from common.enhancement import chunked
    from common.tfkeras import tf

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.float32)], reduce_retracing=True)
    def run(waveform):
        outputs = model(waveform, training=False)
        return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs

    return chunked(lambda signal: run(np.asarray(signal, np.float32)[None])[0].numpy(), SAMPLE_RATE)


def tflite_enhancer(path):
    """``waveform -> enhanced`` through a waveform .tflite. Its BLSTMs fix the input length at export: a longer
    input runs in windows of exactly that length (half a second of context discarded on each side, less for a
    short export), a shorter one is zero-padded and the output cut."""
    from common.enhancement import CONTEXT_SECONDS, overlap_discard
    from common.tflite import TFLiteModel

    model = TFLiteModel(path, num_threads=2)
    samples = int(model.input_details[0]["shape"][-1])
    context = min(int(CONTEXT_SECONDS * SAMPLE_RATE), samples // 4)

    def window(signal):
        outputs = model(fit_length(np.asarray(signal, np.float32), samples)[None])
        return np.asarray(outputs[-1] if isinstance(outputs, list) else outputs)[0, : signal.shape[0]]

    return lambda signal: overlap_discard(window, np.asarray(signal, np.float32), samples - 2 * context, context,
                                          window_length=samples)
