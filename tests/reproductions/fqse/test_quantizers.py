"""FQSE quantizers against NumPy formulas written here from docs/fqse.md#quantizers."""
import numpy as np
import pytest

from reproductions.fqse import quantizers as fq
from common.tfkeras import keras, tf


def numpy_symmetric(weights, range_min, range_max):
    step = np.maximum(np.abs(range_min), np.abs(range_max)) / 128.0
    return step * np.clip(np.round(weights / step), -128, 127)


def numpy_asymmetric(values, range_min, range_max):
    step = (range_max - range_min) / 255.0
    return step * np.clip(np.round((values - range_min) / step), 0, 255) + range_min


class KernelHolder(keras.layers.Layer):
    """A bare layer owning a kernel and an FQSE weight quantizer (as the Conv-TasNet layers do)."""

    def __init__(self, kernel, trainable_ranges=False, **kwargs):
        super().__init__(**kwargs)
        self.initial_kernel = kernel
        self.trainable_ranges = trainable_ranges

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=self.initial_kernel.shape,
                                      initializer=keras.initializers.Constant(self.initial_kernel))
        self.quantizer = fq.FQSEWeightQuantizer(trainable_ranges=self.trainable_ranges)
        self.quantizer_weights = self.quantizer.build(self.kernel.shape, "kernel", self)
        super().build(input_shape)

    def call(self, inputs, training=None):
        return self.quantizer(self.kernel, training, self.quantizer_weights)

    def weight_quantizer_pairs(self):
        return [(self.quantizer, self.quantizer_weights, self.kernel)]


def test_weight_quantizer_is_per_channel_symmetric_full_range():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((1, 5, 3, 4)).astype(np.float32)
    kernel[0, 0, 0, 0] = -4.0  # channel 0: largest magnitude negative -> level -128
    kernel[0, 1, 1, 1] = 4.0   # channel 1: largest magnitude positive -> clipped to level 127
    layer = KernelHolder(kernel)
    layer.build(None)
    assert fq.initialize_weight_ranges(keras.Sequential([layer])) == 1
    quantized = layer(tf.zeros(1)).numpy()
    range_min = kernel.min(axis=(0, 1, 2), keepdims=True)
    range_max = kernel.max(axis=(0, 1, 2), keepdims=True)
    np.testing.assert_allclose(quantized, numpy_symmetric(kernel, range_min, range_max), rtol=0, atol=1e-7)
    steps = np.maximum(np.abs(range_min), np.abs(range_max))[0, 0, 0] / 128.0
    levels = np.round(quantized / steps)
    assert levels[0, 0, 0, 0] == -128 and levels[0, 1, 1, 1] == 127
    assert len(np.unique(levels[..., 2])) <= 256
    assert not layer.quantizer_weights["range_min"].trainable


def test_weight_quantizer_deployment_op_matches_training_math():
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((1, 3, 2, 6)).astype(np.float32)
    layer = KernelHolder(kernel)
    layer.build(None)
    fq.initialize_weight_ranges(keras.Sequential([layer]))
    training_values = layer(tf.zeros(1)).numpy()
    with fq.deployment_graph():
        deployed = layer(tf.zeros(1)).numpy()
    np.testing.assert_allclose(deployed, training_values, rtol=0, atol=1e-6)


def test_asymmetric_quantizer_matches_numpy_and_has_lsq_gradients():
    values = tf.constant(np.linspace(-1.5, 2.5, 101, dtype=np.float32))
    range_min, range_max = tf.Variable(-1.0), tf.Variable(2.0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(values)
        output = fq.quantize_asymmetric(values, range_min, range_max)
        total = tf.reduce_sum(output * tf.range(101, dtype=tf.float32))
    np.testing.assert_allclose(output.numpy(), numpy_asymmetric(values.numpy(), -1.0, 2.0), atol=1e-6)
    gradient_x = tape.gradient(output, values).numpy()
    inside = (values.numpy() > -1.0) & (values.numpy() < 2.0)
    np.testing.assert_array_equal(gradient_x[inside], 1.0)   # straight-through rounding
    np.testing.assert_array_equal(gradient_x[~inside], 0.0)  # clipping stops the gradient w.r.t. x
    assert tape.gradient(total, range_min).numpy() != 0.0
    assert tape.gradient(total, range_max).numpy() != 0.0


class ActivationHolder(keras.Model):
    def __init__(self, trainable_ranges):
        super().__init__()
        self.quantize = fq.ActivationQuantize(fq.FQSEActivationQuantizer(trainable_ranges=trainable_ranges))

    def call(self, inputs, training=None):
        return self.quantize(inputs, training=training)


@pytest.mark.parametrize("trainable_ranges", [False, True])
def test_activation_ranges_follow_ema_for_50_steps_then_freeze_or_learn(trainable_ranges):
    rng = np.random.default_rng(2)
    model = ActivationHolder(trainable_ranges)
    expected_min = expected_max = 0.0
    for step in range(fq.OBSERVATION_STEPS):
        batch = rng.uniform(-1 - step / 50, 2 + step / 25, size=(4, 30)).astype(np.float32)
        output = model(batch, training=True).numpy()
        np.testing.assert_array_equal(output, batch)  # identity while observing
        expected_min = 0.9 * expected_min + 0.1 * batch.min()
        expected_max = 0.9 * expected_max + 0.1 * batch.max()
    weights = model.quantize.quantizer_weights
    np.testing.assert_allclose([weights["range_min"].numpy(), weights["range_max"].numpy()],
                               [expected_min, expected_max], rtol=1e-5)
    assert weights["range_min"].trainable == trainable_ranges
    batch = rng.uniform(-3, 5, size=(4, 30)).astype(np.float32)
    output = model(batch, training=True).numpy()
    np.testing.assert_allclose(output, numpy_asymmetric(batch, expected_min, expected_max), atol=1e-5)
    # Frozen: a further training call leaves the range where the EMA ended.
    np.testing.assert_allclose(weights["range_max"].numpy(), expected_max, rtol=1e-6)
    assert weights["observed_steps"].numpy() == fq.OBSERVATION_STEPS
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(batch, training=True) ** 2)
    gradients = tape.gradient(loss, model.trainable_variables)
    assert (len(model.trainable_variables) == 2) == trainable_ranges
    assert all(gradient is not None for gradient in gradients)


def test_inference_before_observation_is_identity_and_fixed_grid_is_exact():
    model = ActivationHolder(False)
    batch = np.linspace(-2, 2, 40, dtype=np.float32)[None]
    np.testing.assert_array_equal(model(batch, training=False).numpy(), batch)
    grid = np.arange(-128, 128, dtype=np.float32)[None] / 128.0
    layer = fq.ActivationQuantize(fq.FixedGridQuantizer())
    np.testing.assert_allclose(layer(grid).numpy(), grid, atol=1e-7)
    with fq.deployment_graph():
        np.testing.assert_allclose(layer(grid).numpy(), grid, atol=1e-7)


def test_quantizer_configs_round_trip():
    for quantizer in (fq.FQSEWeightQuantizer(trainable_ranges=True), fq.FQSEActivationQuantizer(),
                      fq.FixedGridQuantizer()):
        rebuilt = fq.quantizer_from_config(fq.quantizer_to_config(quantizer))
        assert type(rebuilt) is type(quantizer) and rebuilt.get_config() == quantizer.get_config()
    with pytest.raises(ValueError):
        fq.FixedGridQuantizer(minimum=0.5, maximum=1.0)
    with pytest.raises(ValueError, match=r"^unknown quantizer class_name 'LSQQuantizer'; known: FQSEWeightQuantizer, "
                                         r"FQSEActivationQuantizer, FixedGridQuantizer$"):
        fq.quantizer_from_config({"class_name": "LSQQuantizer", "config": {}})
