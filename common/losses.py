"""Waveform training losses shared by the recipes: negative SI-SNR, optionally on pre-emphasised signals.

SI-SNR weighs every frequency by its share of the signal energy. Speech carries most of its energy below 600 Hz
(on the embedded corpus the 1.2-4 kHz band holds about 2 % of it), so a model trained on plain SI-SNR cleans the
low band and leaves the residual noise and distortion where intelligibility lives: SI-SNR rises while STOI, whose
third-octave bands mostly lie above 600 Hz, falls (docs/robustness.md#band-weighting). A first-order pre-emphasis
filter ``e[n] = x[n] - c x[n - 1]`` applied to target and estimate before the SI-SNR tilts the weighting by about
+6 dB per octave above ``f = -fs ln(c) / (2 pi)`` (130 Hz at c = 0.95, 16 kHz), the speech spectrum's slope.
``c = 0`` is the plain SI-SNR.

References: Luo & Mesgarani 2019 (Conv-TasNet's SI-SNR objective); pre-emphasis as in SEGAN (Pascual et al. 2017).
"""
from __future__ import annotations

from common.tfkeras import tf


def checked_pre_emphasis(value, where: str = "pre_emphasis") -> float:
    """``value`` as a float in ``[0, 1)``, the range of a stable first-order pre-emphasis; ``ValueError`` naming
    ``where`` otherwise."""
    coefficient = float(value)
    if not 0.0 <= coefficient < 1.0:
        raise ValueError(f"{where} must be in [0, 1), got {value!r}")
    return coefficient


def pre_emphasize(signal, coefficient: float):
    """``e[n] = x[n] - c x[n-1]`` along the last axis (the first sample is kept as it is)."""
    if coefficient == 0.0:
        return signal
    return tf.concat([signal[..., :1], signal[..., 1:] - coefficient * signal[..., :-1]], axis=-1)


def negative_si_snr(target, estimate, pre_emphasis: float = 0.0, epsilon: float = 1e-8):
    """Per-example ``-SI-SNR`` in dB, zero-mean, of waveforms shaped ``(batch, T)`` or ``(batch, T, 1)``.

    Args:
        target: the clean waveforms.
        estimate: the model's waveforms, same shape.
        pre_emphasis: ``c`` of the filter applied to both before the ratio (0 = plain SI-SNR).
        epsilon: added to both energies, as asteroid's ``pairwise_neg_sisdr``.

    Returns:
        A ``(batch,)`` tensor.
    """
    pre_emphasis = checked_pre_emphasis(pre_emphasis)
    target, estimate = tf.cast(target, tf.float32), tf.cast(estimate, tf.float32)
    if target.shape.rank == 3:
        target, estimate = target[..., 0], estimate[..., 0]
    target = pre_emphasize(target - tf.reduce_mean(target, axis=-1, keepdims=True), pre_emphasis)
    estimate = pre_emphasize(estimate - tf.reduce_mean(estimate, axis=-1, keepdims=True), pre_emphasis)
    dot = tf.reduce_sum(target * estimate, axis=-1, keepdims=True)
    projection = dot * target / (tf.reduce_sum(tf.square(target), axis=-1, keepdims=True) + epsilon)
    error = estimate - projection
    ratio = tf.reduce_sum(tf.square(projection), axis=-1) / (tf.reduce_sum(tf.square(error), axis=-1) + epsilon)
    return -10.0 * tf.math.log(ratio + epsilon) / tf.math.log(10.0)


def waveform_loss(pre_emphasis: float = 0.0, where: str = "pre_emphasis"):
    """A Keras loss function: :func:`negative_si_snr` with the given pre-emphasis (checked, a bad value named as
    ``where``), named after it."""
    coefficient = checked_pre_emphasis(pre_emphasis, where)

    def loss(target, estimate):
        return negative_si_snr(target, estimate, pre_emphasis=coefficient)

    loss.__name__ = "negative_si_snr" if coefficient == 0.0 else f"negative_si_snr_pre_emphasis_{coefficient:g}"
    return loss
