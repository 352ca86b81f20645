"""Channel surgery: the shrunk model is smaller and computes what the masked model computes."""
import numpy as np

from common.compression.surgery import plan_shrink, shrink_model
from common.tfkeras import keras, layers, tf


class _InstanceNorm(layers.Layer):
    """Per-channel normalisation over time with learnable gamma/beta (like Fu's BN mode 2)."""

    channelwise = True

    def build(self, input_shape):
        self.gamma = self.add_weight(name="gamma", shape=(input_shape[-1],), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs):
        mean, variance = tf.nn.moments(inputs, axes=[1], keepdims=True)
        return self.gamma * (inputs - mean) / tf.sqrt(variance + 1e-5) + self.beta


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = [rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if "variance" in v.name or "gamma" in v.name
                   else rng.standard_normal(w.shape).astype(np.float32) * 0.5
                   for w, v in zip(layer.get_weights(), layer.weights)]
        layer.set_weights(weights)


def _masked_copy(model, masks):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name, mask in masks.items():
        kernel = copy.get_layer(name).kernel
        kernel.assign(kernel * mask)
    return copy


def _ones(layer):
    return np.ones(layer.kernel.shape, np.float32)


def test_same_padding_chain_removes_unread_and_zero_channels_exactly():
    inputs = keras.Input((32, 2))
    x = layers.Conv1D(6, 3, padding="same", name="c1")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.LeakyReLU(0.3)(x)
    x = layers.Conv1D(5, 3, padding="same", name="c2")(x)
    x = _InstanceNorm(name="inorm")(x)
    x = layers.PReLU(shared_axes=[1], name="prelu")(x)
    x = layers.Conv1D(1, 3, padding="same", name="c3")(x)
    model = keras.Model(inputs, x)
    _randomize(model, 0)
    m1, m2, m3 = _ones(model.get_layer("c1")), _ones(model.get_layer("c2")), _ones(model.get_layer("c3"))
    m1[..., 0] = 0          # c1 output 0 dead, but c2 reads it: constant != 0 with 'same' padding -> kept
    m2[:, [1, 4], :] = 0    # c2 never reads c1 outputs 1 and 4 -> removed with their BN parameters
    m2[..., 2] = 0          # c2 output 2 dead and ...
    m3[:, 2, :] = 0         # ... unread by c3 -> removed
    m2[..., 3] = 0          # c2 output 3 dead, instance norm gives beta_3 != 0, c3 reads it -> kept
    m2[0, 0, 0] = 0         # a partially pruned kernel is no channel removal
    masks = {"c1": m1, "c2": m2, "c3": m3}
    plan = plan_shrink(model, masks)
    np.testing.assert_array_equal(plan.keep["c1"], [0, 2, 3, 5])
    np.testing.assert_array_equal(plan.keep["c2"], [0, 1, 3, 4])
    shrunk = shrink_model(model, masks)
    assert shrunk.get_layer("c1").kernel.shape == (3, 2, 4)
    assert shrunk.get_layer("c2").kernel.shape == (3, 4, 4)
    assert shrunk.get_layer("c3").kernel.shape == (3, 4, 1)
    assert shrunk.get_layer("bn").get_weights()[0].shape == (4,)
    assert shrunk.count_params() < model.count_params()
    data = np.random.default_rng(1).standard_normal((3, 32, 2)).astype(np.float32)
    expected = _masked_copy(model, masks)(data).numpy()
    np.testing.assert_allclose(shrunk(data).numpy(), expected, atol=1e-5)


def test_valid_padding_folds_dead_channel_constants_into_next_bias():
    inputs = keras.Input((20, 2))
    x = layers.Conv1D(4, 3, padding="valid", name="c1")(inputs)
    x = layers.LeakyReLU(0.3)(x)
    x = layers.Conv1D(3, 3, padding="valid", name="c2")(x)
    x = layers.Activation("tanh")(x)
    x = layers.Dense(2, name="dense")(x)
    model = keras.Model(inputs, x)
    _randomize(model, 3)
    m1, m2 = _ones(model.get_layer("c1")), _ones(model.get_layer("c2"))
    m1[..., 1] = 0  # dead: leaky(bias) is a constant folded into c2's bias
    m2[..., 0] = 0  # dead: tanh(bias) folded into the Dense bias
    masks = {"c1": m1, "c2": m2}
    plan = plan_shrink(model, masks)
    assert [row["folded"] for row in plan.report] == [1, 1, 0]
    shrunk = shrink_model(model, masks)
    assert shrunk.get_layer("c1").kernel.shape == (3, 2, 3)
    assert shrunk.get_layer("dense").kernel.shape == (2, 2)
    data = np.random.default_rng(4).standard_normal((2, 20, 2)).astype(np.float32)
    np.testing.assert_allclose(shrunk(data).numpy(), _masked_copy(model, masks)(data).numpy(), atol=1e-5)


def test_conv2d_1k_chain():
    inputs = keras.Input((1, 16, 3))
    x = layers.Conv2D(4, (1, 3), padding="same", name="c1")(inputs)
    x = layers.ReLU()(x)
    x = layers.Conv2D(2, (1, 3), padding="same", name="c2")(x)
    model = keras.Model(inputs, x)
    _randomize(model, 5)
    m2 = _ones(model.get_layer("c2"))
    m2[:, :, 2, :] = 0
    shrunk = shrink_model(model, {"c2": m2})
    assert shrunk.get_layer("c1").kernel.shape == (1, 3, 3, 3)
    data = np.random.default_rng(6).standard_normal((2, 1, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(shrunk(data).numpy(), _masked_copy(model, {"c2": m2})(data).numpy(), atol=1e-5)
