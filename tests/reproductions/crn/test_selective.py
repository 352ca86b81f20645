"""Selective int8 streaming CRN: the dense LSTM step form equals the offline model, and on a briefly trained tiny
CRN the selective model (int8 convolutions, dynamic-range LSTM steps, float output layer, chosen from TFLite's
quantization debugger table) tracks the float model much more closely than the full-int8 one."""
import numpy as np
import pytest

from tests.reproductions.crn.helpers import tiny_crn

TILT = np.linspace(3.0, 0.2, 161, dtype=np.float32)  # speech-like: more energy at low frequencies


def _magnitudes(count, frames, seed):
    rng = np.random.default_rng(seed)
    return (np.abs(rng.standard_normal((count, frames, 161))) * TILT).astype(np.float32)


@pytest.fixture(scope="module")
def trained():
    """A tiny CRN trained briefly to smooth magnitudes over time (its LSTMs then carry state from hop to hop)."""
    from common.tfkeras import keras

    model = tiny_crn(seed=5)
    noisy = _magnitudes(16, 60, seed=0)
    target = 0.5 * noisy + 0.5 * np.roll(noisy, 1, axis=1)
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.fit(noisy, target, batch_size=4, epochs=20, verbose=0)
    return model, noisy


def test_dense_lstm_step_float_tflite_equals_offline(trained, tmp_path):
    from reproductions.crn import streaming

    model, _ = trained
    magnitude = _magnitudes(1, 30, seed=3)[0]
    offline = model(magnitude[None], training=False).numpy()[0]
    path = streaming.export_streaming_tflite(model, tmp_path / "dense.tflite", "float32", lstm_form="dense")
    runner = streaming.StreamingTFLite(path)
    assert streaming.FUSED_LSTM_OP not in runner.model.op_names()
    assert runner.model.op_names().count("FULLY_CONNECTED") == 2
    np.testing.assert_allclose(runner.process(magnitude), offline, atol=1e-4 * max(1.0, np.abs(offline).max()))
    with pytest.raises(ValueError, match="lstm_form must be one of"):
        streaming.build_streaming_crn(model, lstm_form="unrolled")


def test_selective_int8_tracks_float_much_closer_than_full_int8(trained, tmp_path):
    from common.tflite import TFLiteModel
    from reproductions.crn import streaming

    model, noisy = trained
    calibration = streaming.calibration_inputs(model, list(noisy[:4]), max_hops=120)
    full = streaming.export_streaming_tflite(model, tmp_path / "int8.tflite", "int8", calibration)
    selective, table = streaming.export_selective_tflite(model, tmp_path / "selective.tflite", calibration)

    # The debugger's table: every quantized op with its error in quantization steps, LSTM-step ops among them.
    assert table and all(row["rmse_over_scale"] >= 0 for row in table)
    assert any(row["lstm"] for row in table) and any(row["output_layer"] for row in table)
    assert [row["rmse_over_scale"] for row in table] == sorted((row["rmse_over_scale"] for row in table),
                                                               reverse=True)
    # Convolutions int8; LSTM gate matrices int8 weights on float activations (dynamic range).
    graph = TFLiteModel(selective)
    tensors = {d["index"]: d for d in graph.interpreter.get_tensor_details()}
    convolutions = [op for op in graph.interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
    assert convolutions and all(tensors[op["inputs"][0]]["dtype"] == np.int8 for op in convolutions)
    gates = [op for op in graph.interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    assert len(gates) == 2
    for op in gates:
        assert tensors[op["inputs"][0]]["dtype"] == np.float32 and tensors[op["inputs"][1]]["dtype"] == np.int8

    magnitude = _magnitudes(1, 80, seed=11)[0]
    reference = streaming.StreamingCRN(model).process(magnitude)
    errors = {}
    for name, path in (("full", full), ("selective", selective)):
        output = streaming.StreamingTFLite(path).process(magnitude)
        errors[name] = float(np.abs(output - reference).mean() / np.abs(reference).mean())
    assert errors["selective"] < 0.5 * errors["full"], errors
    assert errors["selective"] < 0.03, errors


def test_configured_lstm_form_reads_the_export_section_and_names_the_file_on_error():
    from reproductions.crn.streaming import configured_lstm_form

    assert configured_lstm_form({"export": {"modes": ["float32"]}}) == "fused"
    assert configured_lstm_form({"export": {"lstm_form": "dense"}}) == "dense"
    with pytest.raises(ValueError, match=r"conf/mini\.yaml: export\.lstm_form must be one of"):
        configured_lstm_form({"config_path": "conf/mini.yaml", "export": {"lstm_form": "unrolled"}})


def test_dense_dynamic_range_export_keeps_int8_gate_weights_and_tracks_float(trained, tmp_path):
    from common.tflite import TFLiteModel
    from reproductions.crn import streaming

    model, noisy = trained
    path = streaming.export_streaming_tflite(model, tmp_path / "dynamic.tflite", "dynamic", lstm_form="dense")
    graph = TFLiteModel(path)
    tensors = {d["index"]: d for d in graph.interpreter.get_tensor_details()}
    gates = [op for op in graph.interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    assert len(gates) == 2 and all(tensors[op["inputs"][1]]["dtype"] == np.int8 for op in gates)
    assert streaming.FUSED_LSTM_OP not in graph.op_names()

    magnitude = _magnitudes(1, 80, seed=11)[0]
    reference = streaming.StreamingCRN(model).process(magnitude)
    output = streaming.StreamingTFLite(path).process(magnitude)
    assert np.abs(output - reference).mean() / np.abs(reference).mean() < 0.03
