"""QAT with configs for Conv1D / Conv1DTranspose / PReLU / norms, and prune/cluster-preserving schemes."""
import numpy as np
import pytest

from common.compression import qat
from reproductions.icse import compression as icse
from common.tfkeras import keras, layers


def _conv1d_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 1))
    x = layers.Conv1D(8, 5, padding="same", name="conv1")(inputs)
    x = layers.PReLU(shared_axes=[1], name="prelu")(x)
    x = layers.Conv1D(8, 5, padding="same", name="conv2")(x)
    x = layers.Dense(8, name="dense")(x)
    # not ReLU: TFMOT's Dense+ReLU transform gives the Dense a NoOp config (its kernel is not fake-quantised)
    x = layers.LeakyReLU(0.2)(x)
    outputs = layers.Conv1D(1, 5, padding="same", name="conv_out")(x)
    return keras.Model(inputs, outputs)


def test_annotation_plan_covers_layers_tfmot_leaves_out():
    inputs = keras.Input((16, 4))
    x = layers.Conv1D(4, 3, padding="same", name="conv1d")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.PReLU(shared_axes=[1], name="prelu")(x)
    x = layers.LayerNormalization(name="layer_norm")(x)
    x = layers.Conv1DTranspose(4, 4, strides=2, padding="same", name="deconv")(x)
    x = layers.LSTM(4, return_sequences=True, name="lstm")(x)
    outputs = layers.Dense(2, name="dense")(x)
    plan = qat.annotation_plan(keras.Model(inputs, outputs), scheme="prune")
    kinds = {name: kind for name, (kind, _) in plan.items()}
    assert kinds == {"conv1d": "kernel", "bn": "output", "prelu": "output", "layer_norm": "output",
                     "deconv": "kernel", "lstm": "float", "dense": "registry"}
    assert plan["conv1d"][1].preserve == "sparsity" and plan["deconv"][1].per_axis is False
    with pytest.raises(ValueError, match="unknown scheme"):
        qat.annotation_plan(keras.Model(inputs, outputs), scheme="int4")


def _effective_kernels(model):
    """Kernels as the forward pass sees them (after the weight quantizers, inference mode)."""
    result = {}
    for layer in model.layers:
        for weight, quantizer, variables in getattr(layer, "_weight_vars", []):
            result[layer.layer.name] = quantizer(weight, False, variables).numpy()
    return result


@pytest.mark.parametrize("scheme", ["prune", "prune_cluster"])
def test_collaborative_qat_keeps_zeros_and_clusters(scheme):
    model = _conv1d_model()
    pruned = icse.icse_channel_prune(model, theta=0.55, exclude_layers=("conv_out",))
    zeros = {name: mask == 0 for name, mask in pruned.masks.items()}
    if scheme == "prune_cluster":
        icse.icse_kmeans(model, default=4)
    quantized = qat.quantize_model(model, scheme=scheme)
    quantized.compile(keras.optimizers.Adam(1e-2), "mse")
    data = np.random.default_rng(0).standard_normal((8, 32, 1)).astype(np.float32)
    quantized.fit(data, data, epochs=1, batch_size=4, verbose=0)
    kernels = _effective_kernels(quantized)
    for name in ("conv1", "conv2", "dense"):  # Conv1D: custom config path; Dense: TFMOT registry path
        assert zeros[name].any()
        assert np.all(kernels[name][zeros[name]] == 0), name
    if scheme == "prune_cluster":
        raw = quantized.get_layer("quant_conv2")._weight_vars[0][0].numpy()  # the float kernel variable
        assert np.unique(raw[raw != 0]).size <= 8  # 4 + 4 centroids survive QAT
        assert np.all(raw[zeros["conv2"]] == 0)


def test_qat_int8_tflite_with_prelu_matches_keras():
    from common.tflite import TFLiteModel, export_tflite

    model = _conv1d_model(seed=2)
    quantized = qat.quantize_model(model)
    quantized.compile(keras.optimizers.Adam(1e-3), "mse")
    data = np.random.default_rng(1).standard_normal((16, 32, 1)).astype(np.float32) * 0.3
    quantized.fit(data, data, epochs=2, batch_size=4, verbose=0)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = export_tflite(quantized, Path(folder) / "qat.tflite", "int8",
                             representative_data=[data[i:i + 1] for i in range(4)])
        runner = TFLiteModel(path)
        assert "PRELU" in runner.op_names()
        assert runner.input_dtypes == [np.int8] and runner.output_dtypes == [np.int8]
        scale = runner.output_details[0]["quantization"][0]
        difference = max(np.abs(runner(data[i:i + 1]) - quantized(data[i:i + 1]).numpy()).max() for i in range(2))
    assert difference <= 2 * scale + 1e-6  # int8 graph reproduces the fake-quantised Keras model
