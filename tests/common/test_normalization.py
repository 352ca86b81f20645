"""common.normalization: the value against the numpy formula, and an int8 graph that XNNPACK can run."""
import numpy as np

from common.normalization import normalise_by_own_statistics
from common.tfkeras import keras, tf


class _Normalise(keras.layers.Layer):
    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, inputs):
        return normalise_by_own_statistics(inputs, [1, 2], self.gamma, self.beta, 1e-8)


def test_matches_the_numpy_formula():
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((2, 50, 6)) + 0.3).astype(np.float32)
    gamma, beta = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    actual = normalise_by_own_statistics(tf.constant(x), [1, 2], gamma, beta, 1e-8).numpy()
    mean = x.mean(axis=(1, 2), keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    expected = gamma * (x - mean) / np.sqrt(variance + 1e-8) + beta
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_int8_graph_has_no_squared_difference_and_stays_accurate(tmp_path):
    """XNNPACK has no int8 SQUARED_DIFFERENCE: that op fell back to the reference kernel and made int8 FCN and
    ConvTasNet slower than float; the variance as ``mean(d * d)`` converts to MUL, which XNNPACK runs."""
    from tests.int8_layer import int8_normalisation_snr

    snr, runner = int8_normalisation_snr(_Normalise(), 400, tmp_path / "norm.tflite")
    assert "SQUARED_DIFFERENCE" not in runner.op_names()
    assert "MUL" in runner.op_names()
    assert snr > 25.0, f"int8 normalisation vs Keras: {snr:.1f} dB"


def test_int8_variance_of_heavy_tailed_activations_is_not_biased(tmp_path):
    """Speech-like activations (a frame envelope over 25 dB, Student-t detail): the variance as a mean of the int8
    tensor ``d * d`` rounded most squares to zero and came out low (output gain 1.33, 7 dB SNR at 64 channels);
    per-frame int8 energies keep the gain within a few percent."""
    from tests.int8_layer import int8_against_keras, one_layer_model

    frames, channels = 1000, 64
    rng = np.random.default_rng(0)

    def activations(level):
        envelope = 10 ** rng.uniform(-2.5, 0.0, (1, frames, 1))
        return (level * envelope * rng.standard_t(3, size=(1, frames, channels))).astype(np.float32)

    representative = [activations(level) for level in (0.5, 1.0, 0.7, 0.8, 0.6)]
    expected, actual, _ = int8_against_keras(one_layer_model(_Normalise(), frames, channels),
                                             tmp_path / "heavy_tailed.tflite", representative, activations(0.75))
    gain = np.sum(actual * expected) / np.sum(expected * expected)
    snr = 10 * np.log10(np.sum(expected ** 2) / np.sum((actual - expected) ** 2))
    assert abs(gain - 1.0) < 0.05, f"int8 output gain {gain:.3f}: the int8 variance is biased"
    assert snr > 12.0, f"int8 normalisation vs Keras: {snr:.1f} dB"


def test_int8_mean_over_time_and_channels_runs_right_on_xnnpack(tmp_path):
    """The gLN's mean, with the quantization the converter gives it there (its input's), over 1000 frames x 64
    channels on LiteRT's default (XNNPACK) interpreter: one MEAN over both axes came out about ten times too large
    (1.88 for 0.18); reduced axis by axis it stays within two int8 steps of the float mean."""
    from common.normalization import mean_over_axes
    from common.tflite import TFLiteModel

    low, high = -0.72, 8.45  # a PReLU output range of FQSE's trained mini model: zero point -108
    rng = np.random.default_rng(0)

    def activations(frames):
        return np.clip(rng.exponential(0.2, (1, frames, 64)) - 0.03, low, high).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, None, 64], tf.float32)])
    def centre(inputs):
        quantized = tf.quantization.fake_quant_with_min_max_vars(inputs, low, high)
        mean = tf.quantization.fake_quant_with_min_max_vars(mean_over_axes(quantized, [1, 2]), low, high)
        return tf.quantization.fake_quant_with_min_max_vars(quantized - mean, low - 1.0, high)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([centre.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([activations(1000)] for _ in range(4))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = tmp_path / "centre.tflite"
    path.write_bytes(converter.convert())
    step = (high - low) / 255
    for frames in (100, 1000, 4000):
        test_input = activations(frames)
        implied_mean = float(np.mean(test_input - TFLiteModel(path)(test_input)))
        assert abs(implied_mean - float(test_input.mean())) < 2 * step, \
            f"{frames} frames: int8 mean {implied_mean:.3f}, float {test_input.mean():.3f}"
