"""The runtimes users would pick instead: tf2onnx/ONNX Runtime export and the PyTorch weight-for-weight port give
the same outputs as the Keras model on tiny models."""
import importlib.util

import numpy as np
import pytest

from benchmarks import onnx_compare, torch_port


def _randomize(model, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    model.set_weights([scale * rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _convtasnet_like():
    """Encoder (strided conv) -> 1x1 conv + PReLU -> dilated depthwise conv -> residual add -> ReLU mask ->
    mask x features -> transposed-conv decoder: the Conv-TasNet pattern with stock tf_keras layers."""
    from common.tfkeras import keras, layers

    waveform = keras.Input((None, 1), batch_size=1, name="waveform")
    features = layers.Conv1D(12, 8, strides=4, use_bias=False, name="encoder")(waveform)
    hidden = layers.Conv1D(6, 1, name="bottleneck")(features)
    branch = layers.Conv1D(10, 1, name="conv_in")(hidden)
    branch = layers.PReLU(shared_axes=[1, 2], name="prelu_in")(branch)
    branch = layers.DepthwiseConv1D(3, dilation_rate=2, padding="same", name="depthwise")(branch)
    branch = layers.PReLU(shared_axes=[1], name="prelu_channel")(branch)
    residual = layers.Conv1D(6, 1, name="residual")(branch)
    hidden = layers.Add(name="residual_add")([hidden, residual])
    mask = layers.Conv1D(12, 1, activation="relu", name="mask")(hidden)
    masked = layers.Multiply(name="apply_mask")([features, mask])
    decoded = layers.Conv1DTranspose(1, 8, strides=4, use_bias=False, name="decoder")(masked)
    causal = layers.Conv1D(1, 5, padding="causal", dilation_rate=2, activation="tanh", name="causal")(decoded)
    return _randomize(keras.Model(waveform, causal, name="convtasnet_like"))


def _keras_output(model, array):
    return model(array, training=False).numpy()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch (optional, torch==2.13.0) not installed")
def test_torch_port_matches_keras_on_a_convtasnet_like_stack():
    model = _convtasnet_like()
    signal = np.random.default_rng(1).standard_normal((1, 403, 1)).astype(np.float32)
    port = torch_port.TorchPort(model)
    expected = _keras_output(model, signal)
    produced = port(signal)
    assert produced.shape == expected.shape == (1, 400, 1)
    np.testing.assert_allclose(produced, expected, atol=2e-5, rtol=1e-4)
    stats = torch_port.time_torch(port, [signal], threads=1, repeats=3)
    assert 0 < stats["min_s"] <= stats["median_s"] <= stats["max_s"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch (optional, torch==2.13.0) not installed")
def test_torch_port_matches_the_fqse_convtasnet_layers():
    convtasnet = pytest.importorskip("reproductions.fqse.convtasnet")
    from reproductions.fqse.fqse import build_waveform_model

    config = {"filters": 16, "kernel_size": 8, "stride": 4, "bottleneck": 8, "hidden": 12, "skip": 8,
              "conv_kernel": 3, "blocks": 2, "repeats": 1}
    core = _randomize(convtasnet.build_convtasnet_core(config), seed=2, scale=0.2)
    model = build_waveform_model(core)
    signal = np.random.default_rng(3).standard_normal((1, 330)).astype(np.float32)
    expected = _keras_output(model, signal)
    produced = torch_port.TorchPort(model)(signal)
    assert produced.shape == expected.shape == (1, 330)
    np.testing.assert_allclose(produced, expected, atol=2e-5, rtol=1e-4)


def test_torch_port_rejects_layers_it_cannot_reproduce():
    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch (optional, torch==2.13.0) not installed")
    from common.tfkeras import keras, layers

    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, layers.LSTM(3, return_sequences=True, name="recurrent")(inputs))
    with pytest.raises(ValueError, match="recurrent.*LSTM"):
        torch_port.TorchPort(model)


def test_onnx_export_matches_keras(tmp_path):
    available, reason = onnx_compare.onnx_available()
    if not available:
        pytest.skip(reason)
    model = _convtasnet_like()
    signal = np.random.default_rng(4).standard_normal((1, 803, 1)).astype(np.float32)
    path = onnx_compare.export_onnx(model, tmp_path / "tiny.onnx", [signal.shape])
    for threads in (1, 2):
        produced = onnx_compare.OnnxModel(path, threads)(signal)
        np.testing.assert_allclose(produced, _keras_output(model, signal), atol=2e-5, rtol=1e-4)
    stats = onnx_compare.time_onnx(path, [signal], threads=1, repeats=3)
    assert 0 < stats["min_s"] <= stats["median_s"] <= stats["max_s"]


def test_onnx_export_of_a_transposed_conv_with_output_padding_matches_keras(tmp_path):
    """CRN's decoder pattern (161 = 2 x 79 + 3 + 1 bins): tf2onnx writes the extra column as a negative pad, which
    ONNX Runtime refuses to load; the export must turn it into output_padding and keep Keras's numbers."""
    available, reason = onnx_compare.onnx_available()
    if not available:
        pytest.skip(reason)
    import onnx

    from common.tfkeras import keras, layers

    magnitude = keras.Input((None, 9, 3), batch_size=1, name="magnitude")
    causal = layers.ZeroPadding2D(((1, 0), (0, 0)))(magnitude)
    encoded = layers.Conv2D(4, (2, 3), strides=(1, 2), name="encoder")(causal)  # 9 -> 4 bins
    decoded = layers.Conv2DTranspose(2, (2, 3), strides=(1, 2), output_padding=(0, 1),
                                     name="decoder_deconv")(encoded)  # 4 -> 2 x 3 + 3 + 1 = 10 bins
    model = _randomize(keras.Model(magnitude, layers.Cropping2D(((1, 0), (0, 0)))(decoded), name="crn_like"))
    frames = np.random.default_rng(5).standard_normal((1, 7, 9, 3)).astype(np.float32)
    path = onnx_compare.export_onnx(model, tmp_path / "crn_like.onnx", [frames.shape])
    transposed = [node for node in onnx.load(str(path)).graph.node if node.op_type == "ConvTranspose"]
    assert len(transposed) == 1
    attributes = {attribute.name: list(attribute.ints) for attribute in transposed[0].attribute}
    assert min(attributes["pads"]) >= 0 and attributes["output_padding"] == [0, 1]
    produced = onnx_compare.OnnxModel(path, 1)(frames)
    expected = _keras_output(model, frames)
    assert produced.shape == expected.shape == (1, 7, 10, 2)
    np.testing.assert_allclose(produced, expected, atol=2e-5, rtol=1e-4)


def test_negative_start_pads_are_a_value_error_naming_the_node():
    """output_padding only extends the end of an axis: a negative start pad cannot be repaired, only reported."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="decoder_deconv", pads=[-1, 0, 0, -1])
    graph = helper.make_graph([node], "g", [], [])
    with pytest.raises(ValueError, match="decoder_deconv.*negative start pads"):
        onnx_compare.move_negative_transpose_pads_to_output_padding(helper.make_model(graph))


def test_onnx_int8_quantisation_is_qdq_and_tracks_the_float_model(tmp_path):
    available, reason = onnx_compare.onnx_available()
    if not available:
        pytest.skip(reason)
    import onnx
    from common.tfkeras import keras, layers

    waveform = keras.Input((None, 1), batch_size=1, name="waveform")
    hidden = layers.Conv1D(16, 9, padding="same", activation="relu", name="conv_in")(waveform)
    hidden = layers.Conv1D(16, 9, padding="same", activation="relu", name="conv_mid")(hidden)
    model = _randomize(keras.Model(waveform, layers.Conv1D(1, 9, padding="same", name="conv_out")(hidden)), scale=0.2)
    rng = np.random.default_rng(5)
    shape = (1, 800, 1)
    calibration = [[(0.5 * rng.standard_normal(shape)).astype(np.float32)] for _ in range(6)]
    float_path = onnx_compare.export_onnx(model, tmp_path / "tiny.onnx", [shape])
    int8_path = onnx_compare.quantize_int8(float_path, tmp_path / "tiny_int8.onnx", calibration)
    operators = {node.op_type for node in onnx.load(str(int8_path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= operators  # the QDQ format
    signal = (0.5 * rng.standard_normal(shape)).astype(np.float32)
    reference = _keras_output(model, signal)
    produced = onnx_compare.OnnxModel(int8_path, 1)(signal)
    error = np.sqrt(np.mean((produced - reference) ** 2)) / np.sqrt(np.mean(reference ** 2))
    assert 1e-4 < error < 0.1  # quantised (not the float graph) and close to it
    with pytest.raises(ValueError, match="tiny.onnx has inputs"):
        onnx_compare.quantize_int8(float_path, tmp_path / "bad.onnx", [[signal, signal]])
    with pytest.raises(ValueError, match="no calibration inputs to quantise tiny.onnx"):
        onnx_compare.quantize_int8(float_path, tmp_path / "bad.onnx", [])


def test_vnni_detection_selects_full_range_int8_weights():
    assert onnx_compare.has_vnni({"avx2", "avx512_vnni"}) and onnx_compare.has_vnni({"amx_int8"})
    assert not onnx_compare.has_vnni({"avx2", "fma"}) and not onnx_compare.has_vnni(set())
