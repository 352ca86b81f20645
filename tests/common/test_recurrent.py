"""The fused LSTM (common/recurrent.py) against keras.layers.LSTM with the same weights: outputs, gradients,
checkpoints."""
import numpy as np
import pytest

from common.recurrent import BLOCK_KERNEL_MAX_UNITS, fused_lstm_setting
from common.recurrent import LSTM as FusedLSTM
from common.tfkeras import keras, tf

BATCH, STEPS, FEATURES = 3, 7, 5
# one width per kernel: BlockLSTM below BLOCK_KERNEL_MAX_UNITS, the projection kernel from it on
WIDTHS = (6, BLOCK_KERNEL_MAX_UNITS)


def random_weights(layer, seed):
    """Random weights (matrices scaled by their fan-in), biased so that the cell state accumulates past 3, where
    BlockLSTM's default clip would cut it."""
    rng = np.random.default_rng(seed)
    weights = [(3.0 / np.sqrt(w.shape[0]) if w.ndim == 2 else 1.0) * rng.standard_normal(w.shape).astype(np.float32)
               for w in layer.get_weights()]
    for index, weight in enumerate(weights):
        if weight.ndim == 1:  # bias i, f, c, o: input and forget gates open, candidate near +1
            units = weight.size // 4
            weights[index] = weight + np.repeat([4.0, 4.0, 4.0, 0.0], units).astype(np.float32)
    layer.set_weights(weights)


def pair(units, seed=0, **kwargs):
    """A Keras LSTM and a fused LSTM, built, with the same random weights."""
    keras_layer = keras.layers.LSTM(units, name="lstm", **kwargs)
    fused_layer = FusedLSTM(units, name="lstm", **kwargs)
    for layer in (keras_layer, fused_layer):
        layer.build((None, None, FEATURES))
    random_weights(keras_layer, seed)
    fused_layer.set_weights(keras_layer.get_weights())
    return keras_layer, fused_layer


def outputs_and_gradients(layer, inputs, initial_state=None):
    """Outputs (sequence, h, c) and gradients of a random projection of them w.r.t. inputs, weights and state."""
    rng = np.random.default_rng(7)
    watched = [inputs] + ([] if initial_state is None else list(initial_state))
    with tf.GradientTape() as tape:
        tape.watch(watched)
        outputs = layer(inputs, initial_state=initial_state)
        loss = sum(tf.reduce_sum(output * rng.standard_normal(output.shape).astype(np.float32)) for output in outputs)
    gradients = tape.gradient(loss, watched + layer.trainable_weights)
    return [t.numpy() for t in outputs], [g.numpy() for g in gradients]


def keras_call_forbidden(*args, **kwargs):
    raise AssertionError("the fused layer fell back to keras.layers.LSTM.call")


@pytest.mark.parametrize("units", WIDTHS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_outputs_and_gradients_equal_keras(units, go_backwards, with_initial_state, monkeypatch):
    keras_layer, fused_layer = pair(units, return_sequences=True, return_state=True, go_backwards=go_backwards)
    rng = np.random.default_rng(1)
    inputs = tf.constant(2.0 * rng.standard_normal((BATCH, STEPS, FEATURES)), tf.float32)
    initial_state = None
    if with_initial_state:
        initial_state = [tf.constant(rng.standard_normal((BATCH, units)), tf.float32) for _ in range(2)]
    expected_outputs, expected_gradients = outputs_and_gradients(keras_layer, inputs, initial_state)
    monkeypatch.setattr(keras.layers.LSTM, "call", keras_call_forbidden)
    outputs, gradients = outputs_and_gradients(fused_layer, inputs, initial_state)
    assert np.abs(expected_outputs[2]).max() > 3.0  # the cell state is not clipped
    for expected, actual in zip(expected_outputs, outputs):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    assert len(gradients) == len(expected_gradients)
    for expected, actual in zip(expected_gradients, gradients):
        scale = np.abs(expected).max()
        assert scale > 0
        np.testing.assert_allclose(actual / scale, expected / scale, atol=1e-5)


@pytest.mark.parametrize("units", WIDTHS)
def test_last_output_only(units):
    keras_layer, fused_layer = pair(units)
    inputs = np.random.default_rng(2).standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    np.testing.assert_allclose(fused_layer(inputs).numpy(), keras_layer(inputs).numpy(), rtol=1e-5, atol=1e-6)
    assert fused_layer(inputs).shape == (BATCH, units)


def test_inside_bidirectional_same_names_outputs_and_gradients():
    rng = np.random.default_rng(3)
    inputs = tf.constant(rng.standard_normal((BATCH, STEPS, FEATURES)), tf.float32)
    wrappers = [keras.layers.Bidirectional(layer_class(4, return_sequences=True, name="lstm"), name="blstm")
                for layer_class in (keras.layers.LSTM, FusedLSTM)]
    for wrapper in wrappers:
        wrapper.build((None, None, FEATURES))
    random_weights(wrappers[0], seed=4)
    wrappers[1].set_weights(wrappers[0].get_weights())
    assert isinstance(wrappers[1].backward_layer, FusedLSTM) and wrappers[1].backward_layer.go_backwards
    assert [w.name for w in wrappers[0].weights] == [w.name for w in wrappers[1].weights]
    results = []
    for wrapper in wrappers:
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            output = wrapper(inputs)
            loss = tf.reduce_sum(tf.sin(output))
        gradients = tape.gradient(loss, [inputs] + wrapper.trainable_weights)
        results.append([output.numpy()] + [g.numpy() for g in gradients])
    for expected, actual in zip(*results):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def lstm_model(layer_class, units):
    inputs = keras.Input((None, FEATURES))
    outputs = layer_class(units, return_sequences=True, name="lstm")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="dense")(outputs))


@pytest.mark.parametrize("units", WIDTHS)
def test_checkpoint_saved_from_one_loads_into_the_other(tmp_path, units):
    inputs = np.random.default_rng(5).standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    for source_class, target_class in ((keras.layers.LSTM, FusedLSTM), (FusedLSTM, keras.layers.LSTM)):
        source = lstm_model(source_class, units)
        random_weights(source.get_layer("lstm"), seed=6)
        path = tmp_path / f"{source_class.__name__}.weights.h5"
        source.save_weights(str(path))
        target = lstm_model(target_class, units)
        target.load_weights(str(path))
        assert [w.name for w in target.weights] == [w.name for w in source.weights]
        np.testing.assert_allclose(target(inputs).numpy(), source(inputs).numpy(), rtol=1e-5, atol=1e-5)


def test_masked_input_takes_the_keras_path():
    keras_layer, fused_layer = pair(4, return_sequences=True)
    inputs = np.random.default_rng(8).standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    mask = np.ones((BATCH, STEPS), bool)
    mask[0, 4:] = False
    np.testing.assert_allclose(fused_layer(inputs, mask=tf.constant(mask)).numpy(),
                               keras_layer(inputs, mask=tf.constant(mask)).numpy(), rtol=1e-5, atol=1e-6)


def test_trains_in_a_compiled_model():
    """model.fit through the fused path lowers the loss exactly as the Keras layer does."""
    rng = np.random.default_rng(9)
    inputs = rng.standard_normal((8, STEPS, FEATURES)).astype(np.float32)
    targets = rng.standard_normal((8, STEPS, 2)).astype(np.float32)
    histories = []
    for layer_class in (keras.layers.LSTM, FusedLSTM):
        keras.utils.set_random_seed(0)
        model = lstm_model(layer_class, 6)
        model.compile(keras.optimizers.SGD(0.1), loss="mse")
        histories.append(model.fit(inputs, targets, batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"])
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-4)
    assert histories[1][-1] < histories[1][0]


def test_fused_lstm_setting():
    assert fused_lstm_setting({"training": {"fused_lstm": True}}) is True
    assert fused_lstm_setting({"training": {}}) is False
    with pytest.raises(ValueError, match="mini.yaml: training.fused_lstm must be true or false"):
        fused_lstm_setting({"config_path": "conf/mini.yaml", "training": {"fused_lstm": "yes"}})


@pytest.mark.parametrize("units", WIDTHS)
def test_mixed_bfloat16_policy(units):
    """Under mixed_bfloat16 the fused layer returns bfloat16 like Keras, within bfloat16 rounding of it."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras_layer, fused_layer = pair(units, return_sequences=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    inputs = np.random.default_rng(10).standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    results = []
    for layer in (keras_layer, fused_layer):
        with tf.GradientTape() as tape:
            output = layer(inputs)
            loss = tf.reduce_sum(tf.square(tf.cast(output, tf.float32)))
        assert output.dtype == tf.bfloat16
        results.append([tf.cast(output, tf.float32).numpy()] + [g.numpy() for g in tape.gradient(loss, layer.weights)])
    for expected, actual in zip(*results):
        assert actual.dtype == np.float32  # variables and their gradients stay float32
        np.testing.assert_allclose(actual, expected, atol=0.05 * np.abs(expected).max())
