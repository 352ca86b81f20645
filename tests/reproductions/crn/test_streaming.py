"""Streaming CRN (reproductions/crn/streaming.py): hop-by-hop output equals the offline model, in Keras and as
.tflite with explicit state I/O and a fused LSTM; full-int8 output stays close to float."""
import numpy as np
import pytest

from tests.reproductions.crn.helpers import noisy_magnitude, tiny_crn

FRAMES = 24


@pytest.fixture(scope="module")
def tiny():
    model = tiny_crn(seed=5)
    # Push the output layer's pre-activation across 88, where exp() overflows float32: TFLite lowers a plain
    # softplus to LOG(1 + EXP(x)) and returned inf there (trained magnitudes reach ~10^2).
    output_norm = model.get_layer("decoder1_batch_norm")
    gamma, _, mean, variance = output_norm.get_weights()
    output_norm.set_weights([gamma, np.full_like(gamma, 90.0), mean, variance])
    magnitude = noisy_magnitude(FRAMES, seed=6)
    offline = model(magnitude[None], training=False).numpy()[0]
    return model, magnitude, offline


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    from reproductions.crn import streaming

    model, magnitude, _ = tiny
    folder = tmp_path_factory.mktemp("crn_tflite")
    calibration = streaming.calibration_inputs(model, [noisy_magnitude(40, seed=7)], max_hops=40)
    float32 = streaming.export_streaming_tflite(model, folder / "float32.tflite", "float32")
    int8 = streaming.export_streaming_tflite(model, folder / "int8.tflite", "int8", calibration)
    return {"float32": float32, "int8": int8}


def test_keras_streaming_equals_offline_on_every_frame(tiny):
    from reproductions.crn.streaming import StreamingCRN

    model, magnitude, offline = tiny
    stream = StreamingCRN(model)
    streamed = stream.process(magnitude)
    # Every frame, frame 0 included, thanks to the 'started' state (the author's decoder zeroes frame 0).
    assert np.abs(streamed - offline).max() <= 1e-4
    # Without that flag, frame 0 differs (w0 x[0] + b instead of 0 before batch norm), and the difference spreads
    # one frame per decoder layer, then the streams agree again.
    stream.reset()
    stream.state["started"][:] = 1.0
    unflagged = np.stack([stream.step(frame) for frame in magnitude])
    assert np.abs(unflagged[0] - offline[0]).max() > 1e-3
    assert np.abs(unflagged[5:] - offline[5:]).max() <= 1e-4


def test_float_tflite_streaming_equals_offline_with_fused_lstm(tiny, exported):
    from common.tflite import TFLiteModel
    from reproductions.crn.streaming import FUSED_LSTM_OP, StreamingTFLite, lstm_cell_clips

    _, magnitude, offline = tiny
    ops = TFLiteModel(exported["float32"]).op_names()
    assert ops.count(FUSED_LSTM_OP) == 2 and "WHILE" not in ops
    assert lstm_cell_clips(exported["float32"]) == [0.0, 0.0]  # the converter writes 10; Keras LSTMs do not clip
    runner = StreamingTFLite(exported["float32"])
    assert {"lstm1_h", "lstm1_c", "lstm2_h", "lstm2_c", "started"} <= set(runner.input_names)
    assert np.abs(runner.process(magnitude) - offline).max() <= 1e-4


def test_int8_tflite_is_integer_fused_and_close_to_float(tiny, exported):
    from common.tflite import TFLiteModel
    from reproductions.crn.streaming import FUSED_LSTM_OP, StreamingTFLite

    _, magnitude, offline = tiny
    int8 = TFLiteModel(exported["int8"])
    assert int8.op_names().count(FUSED_LSTM_OP) == 2
    details = int8.interpreter.get_tensor_details()
    lstm_weights = [d for d in details if d["dtype"] == np.int8 and "lstm" in d["name"].lower()]
    assert lstm_weights, "the int8 graph has no int8 LSTM tensors"
    assert {np.dtype(d["dtype"]) for d in int8.output_details} >= {np.dtype(np.int16)}  # the LSTM cell states
    runner = StreamingTFLite(exported["int8"])
    difference = np.abs(runner.process(magnitude) - offline)
    assert difference.mean() <= 0.02 * np.abs(offline).mean() + 1e-3
    assert difference.max() <= 0.1 * np.abs(offline).max()


def test_expose_lstm_states_refuses_a_graph_without_lstm(tmp_path):
    from common.tfkeras import keras, layers
    from common.tflite import export_tflite
    from reproductions.crn.streaming import expose_lstm_states

    inputs = keras.Input((1, 4), batch_size=1)
    path = export_tflite(keras.Model(inputs, layers.Dense(2)(inputs)), tmp_path / "dense.tflite")
    with pytest.raises(ValueError, match="UNIDIRECTIONAL_SEQUENCE_LSTM"):
        expose_lstm_states(path.read_bytes(), ["output"])


def test_benchmark_reports_hop_latency_and_algorithmic_latency(exported):
    from reproductions.crn.streaming import benchmark_streaming, format_benchmark

    result = benchmark_streaming(exported["float32"], threads=1, hops=10, warmup=2)
    assert result["budget_ms"] == 10.0 and result["algorithmic_latency_ms"] == 20.0
    assert 0 < result["invoke_ms_median"] <= result["hop_ms_median"] * 10
    assert "per 10 ms hop" in format_benchmark(result)


def test_fused_lstm_crn_streams_and_exports_the_keras_lstm(tiny, tmp_path):
    """A CRN trained with fused LSTMs gives the same streaming model and a .tflite with the fused TFLite LSTM."""
    from common.tflite import TFLiteModel
    from reproductions.crn import streaming
    from reproductions.crn.crn import build_crn
    from tests.reproductions.crn.helpers import TINY_CHANNELS

    model, magnitude, offline = tiny
    fused = build_crn(channels=TINY_CHANNELS, name="crn", fused_lstm=True)
    fused.set_weights(model.get_weights())
    assert np.abs(streaming.StreamingCRN(fused).process(magnitude) - offline).max() <= 1e-4
    path = streaming.export_streaming_tflite(fused, tmp_path / "float32.tflite", "float32")
    ops = TFLiteModel(path).op_names()
    assert ops.count(streaming.FUSED_LSTM_OP) == 2 and "WHILE" not in ops
