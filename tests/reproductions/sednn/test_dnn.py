"""sednn DNN: the exact architecture and parameter count of Kong's main_dnn.py (reproductions/sednn/dnn.py)."""
import numpy as np
import pytest

from common.tfkeras import layers
from pathlib import Path

from common.config import load_config
from reproductions.sednn.dnn import PAPER_PARAMETERS, build_from_config, build_sednn_dnn
from reproductions.sednn.recipe import Recipe

RECIPE_DIR = Path(__file__).resolve().parents[3] / "reproductions" / "sednn"


def test_parameter_count_is_sednns():
    model = build_sednn_dnn()
    # 1799*2048+2048 + 2*(2048^2+2048) + 2048*257+257, computed independently of the model code.
    expected = (7 * 257) * 2048 + 2048 + 2 * (2048 * 2048 + 2048) + 2048 * 257 + 257
    assert expected == 12_605_697 == PAPER_PARAMETERS
    assert model.count_params() == expected
    assert model.input_shape == (None, 7, 257)
    assert model.output_shape == (None, 257)


def test_layer_sequence_and_activations():
    model = build_sednn_dnn()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Flatten"] + ["Dense", "Dropout"] * 3 + ["Dense"]
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    assert [layer.units for layer in dense] == [2048, 2048, 2048, 257]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "relu", "linear"]
    assert all(layer.rate == 0.2 for layer in model.layers if isinstance(layer, layers.Dropout))


def test_forward_pass_is_the_numpy_mlp():
    model = build_sednn_dnn(hidden_units=8, dropout=0.2)
    inputs = np.random.default_rng(0).normal(size=(5, 7, 257)).astype(np.float32)
    hidden = inputs.reshape(5, -1)
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    for index, layer in enumerate(dense):
        kernel, bias = layer.get_weights()
        hidden = hidden @ kernel + bias
        if index < 3:
            hidden = np.maximum(hidden, 0.0)
    # Inference: dropout is inactive.
    np.testing.assert_allclose(model(inputs, training=False).numpy(), hidden, rtol=1e-5, atol=1e-5)


def test_paper_yaml_builds_sednns_count():
    config = load_config("paper", RECIPE_DIR, sections=Recipe.config_sections)
    assert build_from_config(config["model"], source=config["config_path"]).count_params() == 12_605_697


def test_config_errors_name_the_file_and_the_key():
    section = dict(n_concat=7, n_freq=9, hidden_units=8, hidden_layers=1, dropout=0.0)
    with pytest.raises(ValueError) as error:
        build_from_config(dict(section, width=3), source="conf/mini.yaml")
    assert str(error.value) == ("conf/mini.yaml: unknown key model.width; model accepts: n_concat, n_freq, "
                                "hidden_units, hidden_layers, dropout")
    # No default stands in for a key the YAML lacks.
    del section["dropout"]
    with pytest.raises(ValueError, match=r"^conf/mini.yaml: missing key model.dropout; model requires: n_concat, "):
        build_from_config(section, source="conf/mini.yaml")
    # A builder argument is named by its key.
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
        build_sednn_dnn(dropout=1.5)
