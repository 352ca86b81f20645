"""TFLite export modes, int8 I/O, fused LSTM, variable-length resizing, LiteRT runner."""
import numpy as np
import pytest

from common.tfkeras import keras, layers
from common.tflite import TFLiteModel, export_tflite, tensor_base_name


def _conv_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 1))
    x = layers.Conv1D(8, 5, padding="same")(inputs)
    x = layers.PReLU(shared_axes=[1])(x)
    outputs = layers.Conv1D(1, 5, padding="same", activation="tanh")(x)
    return keras.Model(inputs, outputs)


def test_float_dynamic_int8_and_16x8_exports(tmp_path):
    model = _conv_model()
    rng = np.random.default_rng(0)
    calibration = [rng.standard_normal((1, 64, 1)).astype(np.float32) * 0.3 for _ in range(8)]
    probe = calibration[0]
    expected = model(probe).numpy()
    # PReLU has no 16x8 kernel in TF 2.21 ("Quantization to 16x8-bit not yet supported for op: 'PRELU'"): fallback
    paths = {mode: export_tflite(model, tmp_path / f"{mode}.tflite", mode, representative_data=lambda: calibration,
                                 input_shapes=[(1, 64, 1)], allow_float_fallback=mode == "int16x8")
             for mode in ("float32", "dynamic", "int8", "int16x8")}
    float_model = TFLiteModel(paths["float32"])
    np.testing.assert_allclose(float_model(probe), expected, atol=1e-5)
    int8 = TFLiteModel(paths["int8"], num_threads=2)
    assert int8.input_dtypes == [np.int8] and int8.output_dtypes == [np.int8]
    scale = int8.output_details[0]["quantization"][0]
    assert np.abs(int8(probe) - expected).max() < 6 * scale  # a few int8 steps of the output range
    int16 = TFLiteModel(paths["int16x8"])
    assert int16.input_dtypes == [np.int16]
    assert np.abs(int16(probe) - expected).max() < np.abs(int8(probe) - expected).max()
    assert "PRELU" in int8.op_names()
    assert np.abs(TFLiteModel(paths["dynamic"])(probe) - expected).max() < 0.02
    with pytest.raises(ValueError, match="representative_data"):
        export_tflite(model, tmp_path / "x.tflite", "int8")


def test_variable_length_float_model_resizes(tmp_path):
    model = _conv_model()
    runner = TFLiteModel(export_tflite(model, tmp_path / "var.tflite", "float32", input_shapes=[(1, None, 1)]))
    for length in (40, 100):
        signal = np.random.default_rng(length).standard_normal((1, length, 1)).astype(np.float32)
        np.testing.assert_allclose(runner(signal), model(signal).numpy(), atol=1e-5)


def test_static_lstm_becomes_fused_op(tmp_path):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None, 6))
    x = layers.LSTM(8, return_sequences=True)(inputs)
    model = keras.Model(inputs, layers.Dense(6)(x))
    runner = TFLiteModel(export_tflite(model, tmp_path / "lstm.tflite", "float32", input_shapes=[(1, 10, 6)]))
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in runner.op_names()
    assert "WHILE" not in runner.op_names()
    signal = np.random.default_rng(0).standard_normal((1, 10, 6)).astype(np.float32)
    np.testing.assert_allclose(runner(signal), model(signal).numpy(), atol=1e-5)


def test_int8_calibration_of_several_inputs_follows_their_names_not_the_converted_order(tmp_path):
    # Keras order (zeta, alpha, middle) differs from the order the converter gives the inputs; each input has its
    # own range, so feeding a sample to the wrong input would give that input another input's scale.
    ranges = {"zeta": 1.0, "alpha": 100.0, "middle": 10.0}
    inputs = [keras.Input(shape=(4,), name=name) for name in ranges]
    output = layers.Concatenate()([layers.Dense(2, name=f"dense_{tensor.name.split(':')[0]}")(tensor)
                                   for tensor in inputs])
    model = keras.Model(inputs, output)
    rng = np.random.default_rng(0)
    samples = [[rng.uniform(-value, value, (1, 4)).astype(np.float32) for value in ranges.values()]
               for _ in range(32)]
    path = export_tflite(model, tmp_path / "three_inputs.tflite", "int8", representative_data=samples)
    details = TFLiteModel(path).input_details
    scales = {tensor_base_name(detail["name"]): detail["quantization"][0] for detail in details}
    assert set(scales) == set(ranges)
    for name, value in ranges.items():
        # int8 spans 255 steps over the calibrated range [-value, value] (a little less from finite samples).
        assert 0.8 * 2 * value / 255 < scales[name] <= 1.01 * 2 * value / 255, (name, scales)


def test_lstm_state_does_not_leak_between_calls(tmp_path):
    # UNIDIRECTIONAL_SEQUENCE_LSTM keeps hidden and cell state in variable tensors overwritten by each invoke
    keras.utils.set_random_seed(2)
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, layers.LSTM(4, return_sequences=True)(inputs))
    runner = TFLiteModel(export_tflite(model, tmp_path / "lstm.tflite", "float32", input_shapes=[(1, 5, 3)]))
    signals = np.random.default_rng(3).standard_normal((3, 1, 5, 3)).astype(np.float32)
    for signal in signals:
        np.testing.assert_allclose(runner(signal), model(signal).numpy(), atol=1e-5)


def test_free_length_int8_conv_graph_opens_and_runs_at_any_length(tmp_path):
    # A strided conv pair (ConvTasNet's encoder/decoder shape) exported with a free length: XNNPACK cannot prepare it
    # at the placeholder length 1, nor re-prepare it after a first allocation.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 1))
    hidden = layers.Conv1D(8, 32, strides=16, padding="valid")(inputs)
    model = keras.Model(inputs, layers.Conv1DTranspose(1, 32, strides=16)(hidden))
    rng = np.random.default_rng(0)
    representative = [0.1 * rng.standard_normal((1, 1600, 1)).astype(np.float32) for _ in range(4)]
    path = export_tflite(model, tmp_path / "free_length.tflite", "int8", representative_data=representative,
                         input_shapes=[(1, None, 1)])
    runner = TFLiteModel(path)
    for length in (1600, 3200, 800):
        signal = np.resize(representative[0], (1, length, 1))
        expected = model(signal).numpy()
        actual = runner(signal)
        assert actual.shape == expected.shape
        assert np.max(np.abs(actual - expected)) < 0.05 * np.max(np.abs(expected)) + 1e-3


def test_outputs_come_back_in_the_models_order(tmp_path):
    """Three heads offset by 10, 20, 30: the converter numbers their tensors (1, 0, 2); outputs follow Keras."""
    from common.tflite import TFLiteModel, export_tflite

    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    heads = []
    for position in range(3):
        hidden = keras.layers.Dense(8, activation="relu")(hidden)
        heads.append(keras.layers.Lambda(lambda tensor, offset=10.0 * (position + 1): tensor + offset)(
            keras.layers.Dense(4)(hidden)))
    model = keras.Model(inputs, heads)
    runner = TFLiteModel(export_tflite(model, tmp_path / "heads.tflite"))
    sample = np.random.default_rng(0).standard_normal((1, 8)).astype(np.float32)
    for expected, actual in zip(model(sample), runner(sample)):
        np.testing.assert_allclose(actual, expected.numpy(), atol=1e-5)
