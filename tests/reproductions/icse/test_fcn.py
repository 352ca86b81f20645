"""Fu et al.'s FCN: parameter count, instance normalisation, Keras-1 weight loading (reproductions/icse/fcn.py)."""
from pathlib import Path

import numpy as np
import pytest

from common.tfkeras import keras
from reproductions.icse.fcn import (
    InstanceNormalization,
    build_fcn,
    build_from_config,
    conv_layers,
    conv_weight_statistics,
    load_keras1_weights,
    norm_layers,
    read_keras1_weights,
)

ANCHORS = Path(__file__).resolve().parents[3] / ".." / "shared" / "anchors" / "icse"
UNPRUNED = ANCHORS / "FCNN_0509.hdf5"
RELEASED_PP_PQ = ANCHORS / "Kmeans_16C_ReTrain_st7_sp0.65_FCNN_0425.hdf5"


def require(path):
    if not path.is_file():
        pytest.skip(f"missing ../shared/anchors/icse/{path.name}")
    return path


@pytest.fixture(scope="module")
def paper_fcn():
    return build_fcn(seed=0)


def test_parameter_count_matches_the_released_files(paper_fcn):
    # 300,931 trainable and 300,300 conv weights: docs/icse.md#model, measured from the h5 files.
    assert paper_fcn.count_params() == 300_931
    assert sum(int(np.prod(variable.shape)) for variable in paper_fcn.trainable_weights) == 300_931
    assert sum(layer.kernel.numpy().size for layer in conv_layers(paper_fcn)) == 300_300
    assert [layer.name for layer in conv_layers(paper_fcn)] == [f"conv{index}" for index in range(1, 9)]


def test_any_length_and_output_range(paper_fcn):
    for length in (55, 1001):
        waveform = np.random.default_rng(length).standard_normal((1, length, 1)).astype(np.float32)
        enhanced = paper_fcn(waveform).numpy()
        assert enhanced.shape == (1, length, 1)
        assert np.all(np.abs(enhanced) < 1.0)


def test_keras1_uniform_initialisation(paper_fcn):
    kernels = np.concatenate([layer.kernel.numpy().ravel() for layer in conv_layers(paper_fcn)])
    assert kernels.min() >= -0.05 and kernels.max() <= 0.05
    # U(-0.05, 0.05) has standard deviation 0.1 / sqrt(12).
    assert abs(kernels.std() - 0.1 / np.sqrt(12)) < 5e-4
    assert all(np.all(layer.bias.numpy() == 0) for layer in conv_layers(paper_fcn))


def test_instance_norm_against_numpy_formula():
    rng = np.random.default_rng(3)
    inputs = (rng.standard_normal((2, 37, 5)) * 3 + 2).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 5).astype(np.float32)
    beta = rng.standard_normal(5).astype(np.float32)
    layer = InstanceNormalization(epsilon=1e-5)
    layer.build(inputs.shape)
    layer.set_weights([gamma, beta])
    mean = inputs.mean(axis=1, keepdims=True)
    variance = inputs.var(axis=1, keepdims=True)
    expected = gamma * (inputs - mean) / np.sqrt(variance + 1e-5) + beta
    # Training and inference use the statistics of the current utterance (Keras-1 BatchNormalization mode 2).
    np.testing.assert_allclose(layer(inputs, training=False).numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer(inputs, training=True).numpy(), expected, rtol=1e-4, atol=1e-5)
    # Each utterance of a batch is normalised by its own statistics.
    np.testing.assert_allclose(layer(inputs[1:]).numpy(), expected[1:], rtol=1e-4, atol=1e-5)
    assert layer.compute_macs((1, 37, 5), (1, 37, 5)) == 2 * 37 * 5


def test_serialisation_round_trip(paper_fcn, tmp_path):
    path = tmp_path / "fcn.keras"
    paper_fcn.save(path)
    restored = keras.models.load_model(path)
    waveform = np.random.default_rng(1).standard_normal((1, 300, 1)).astype(np.float32)
    np.testing.assert_allclose(restored(waveform).numpy(), paper_fcn(waveform).numpy(), atol=1e-6)
    assert norm_layers(restored)[0].get_config()["epsilon"] == 1e-5


def test_bad_weight_file_is_a_value_error(tmp_path):
    missing = tmp_path / "missing.hdf5"
    with pytest.raises(ValueError, match="missing.hdf5"):
        read_keras1_weights(missing)
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.hdf5"):
        read_keras1_weights(junk)


def test_keras1_weights_equal_after_loading():
    import h5py

    path = require(UNPRUNED)
    model = load_keras1_weights(build_fcn(), path)
    with h5py.File(path, "r") as handle:
        for index, layer in enumerate(conv_layers(model), start=1):
            group = handle[f"convolution1d_{index}"]
            np.testing.assert_array_equal(layer.kernel.numpy(), group[f"convolution1d_{index}_W:0"][:, 0, :, :])
            np.testing.assert_array_equal(layer.bias.numpy(), group[f"convolution1d_{index}_b:0"][:])
        for index, layer in enumerate(norm_layers(model), start=1):
            group = handle[f"batchnormalization_{index}"]
            np.testing.assert_array_equal(layer.gamma.numpy(), group[f"batchnormalization_{index}_gamma:0"][:])
            np.testing.assert_array_equal(layer.beta.numpy(), group[f"batchnormalization_{index}_beta:0"][:])


def test_released_pp_pq_model_code_book():
    # docs/icse.md#pruning, docs/icse.md#quantization: 234,850 of 300,300 conv weights kept (78.2 %), 16 + 16 levels in
    # conv1-7, 4 + 4 in conv8.
    model = load_keras1_weights(build_fcn(), require(RELEASED_PP_PQ))
    statistics = conv_weight_statistics(model)
    assert sum(row["nonzero"] for row in statistics) == 234_850
    assert [row["nonzero"] for row in statistics] == [1485, 40810, 41635, 39985, 37620, 36520, 35145, 1650]
    assert [row["distinct_nonzero"] for row in statistics] == [32] * 7 + [8]


def test_instance_norm_keeps_its_accuracy_in_full_int8_tflite(tmp_path):
    """Instance norm of a low-level input (std 0.03) exported to full int8 stays close to Keras.

    Written as ``(x - mean) * rsqrt(var) * gamma + beta``, the converter gives the centred ``x - mean`` the
    normalised output's scale (~1/std times too coarse); the ``x * scale + shift`` form avoids that tensor.
    """
    from tests.int8_layer import int8_normalisation_snr

    snr, _ = int8_normalisation_snr(InstanceNormalization(), 400, tmp_path / "instance_norm.tflite")
    assert snr > 25.0, f"int8 instance norm vs Keras: {snr:.1f} dB"


def test_paper_yaml_builds_the_released_count():
    from common.config import load_config
    from reproductions.icse.recipe import RECIPE_DIR, Recipe

    config = load_config("paper", RECIPE_DIR, sections=Recipe.config_sections)
    model = build_from_config(config["model"], seed=config["training"]["seed"], source=config["config_path"])
    assert model.count_params() == 300_931
    assert [layer.kernel.shape[0] for layer in conv_layers(model)] == [55] * 8


def test_model_section_errors_name_the_key_and_the_accepted_ones():
    section = dict(filters=4, kernel_size=5, hidden_layers=2, leaky_slope=0.3, epsilon=1e-5)
    with pytest.raises(ValueError) as error:
        build_from_config(dict(section, kernel=5), source="conf/mini.yaml")
    assert str(error.value) == ("conf/mini.yaml: unknown key model.kernel; model accepts: filters, kernel_size, "
                                "hidden_layers, leaky_slope, epsilon")
    del section["epsilon"]
    with pytest.raises(ValueError, match=r"^missing key model.epsilon; model requires: filters, kernel_size, "):
        build_from_config(section)
    with pytest.raises(ValueError, match=r"^filters, kernel_size and hidden_layers must be positive, got 0, 5, 2$"):
        build_fcn(filters=0, kernel_size=5, hidden_layers=2)
