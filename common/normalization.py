"""Normalisation over statistics of the input itself, written the way the int8 TFLite converter quantises well.

``gamma * (x - mean) / sqrt(var + eps) + beta`` is computed as ``x * scale + shift`` with
``scale = gamma / sqrt(var + eps)`` and ``shift = beta - mean * scale``: the same function, but the converter then
never materialises the centred input ``x - mean`` as a tensor. It gives that tensor the scale of the normalised
output (about ``1/sqrt(var)`` times too coarse): on FQSE's vanilla-QAT bottleneck gLN (raw-level input,
``1/sqrt(var)`` ~ 25) that left ~7 int8 levels per side and cut the layer's Keras-vs-.tflite SNR to ~5 dB; on a unit
test with input std 0.03 the old form gives ~10 dB, this one > 25 dB.

The variance is ``mean(d * d)`` of ``d = x - mean``, not ``tf.math.squared_difference``: XNNPACK has no int8
SQUARED_DIFFERENCE, so LiteRT ran it on its reference kernel over the full tensor, which made the whole int8 FCN
(7 instance norms, 1 x 64000 x 16) 0.65x the speed of float; with MUL it is 2.3x (measured on 1 thread, 4-s input).
``d`` only feeds the variance, so it is calibrated on its own range and the accuracy above is unchanged.

When the statistics include the channel (last) axis, as in the gLN, the variance is a mean of per-frame energies
``d_t . d_t``, one int8 BATCH_MATMUL per frame that accumulates the products in int32, instead of a mean of the
int8 tensor ``d * d``. Squares of speech activations span a wide range: on an int8 grid set by the largest one,
most round to zero, and the int8 variance came out low by 16 of its quantization steps (RMS error 20 steps) on
FQSE's mini vanilla-QAT model; per-frame energies span far less. Measured on the trained mini FQSE models
(calibration and test sets of the recipe), int8 .tflite SI-SNR went from 9.32 to 9.43 dB (vanilla QAT) and
9.51 to 9.73 dB (FQSE). ``1/C`` of the mean is folded into ``gamma`` and ``epsilon`` so that no further int8
scalar is rounded on the way to the reciprocal square root.

Every mean reduces a single axis (:func:`mean_over_axes`): XNNPACK, which LiteRT applies by default, computes an
int8 MEAN over the time and channel axes together wrongly when the converter gives the mean its input's
quantization, as it does in the gLN, and the reduction is long (right over 100 x 64 elements, about ten times too
large from 200 x 64). On FQSE's mini vanilla-QAT model the gLN mean after the first PReLU came out 4.64 instead of
0.21, and the .tflite lost 4 dB SI-SNR at +18 dB input SNR against the same file on LiteRT's reference kernels;
reduced axis by axis, XNNPACK agrees with the reference kernels.
"""
from __future__ import annotations

import numpy as np

from common.tfkeras import tf


def mean_over_axes(inputs, axes):
    """``reduce_mean`` over ``axes`` (kept as size 1), one axis at a time from the last: equal to the joint mean,
    since every partial mean averages groups of one size. Axes of static size 1 are left alone (no extra op)."""
    rank = len(inputs.shape)
    mean = inputs
    for axis in sorted((int(axis) % rank for axis in np.atleast_1d(axes)), reverse=True):
        if inputs.shape[axis] != 1:
            mean = tf.reduce_mean(mean, axis=axis, keepdims=True)
    return mean


def normalise_by_own_statistics(inputs, axes, gamma, beta, epsilon: float):
    """``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with mean and biased variance over ``axes``."""
    rank = len(inputs.shape)
    axes = sorted(int(axis) % rank for axis in np.atleast_1d(axes))
    mean = mean_over_axes(inputs, axes)
    centred = inputs - mean
    if axes[-1] == rank - 1:
        channels = int(inputs.shape[-1])
        frames = tf.expand_dims(centred, -2)
        energy = tf.squeeze(tf.matmul(frames, frames, transpose_b=True), -1)
        mean_energy = mean_over_axes(energy, axes)
        scale = tf.math.rsqrt(mean_energy + channels * epsilon) * (gamma * np.float32(np.sqrt(channels)))
    else:
        variance = mean_over_axes(centred * centred, axes)
        scale = tf.math.rsqrt(variance + epsilon) * gamma
    return inputs * scale + (beta - mean * scale)
