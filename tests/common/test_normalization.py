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
