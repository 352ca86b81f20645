"""The paper configuration builds with the exact Keras parameter counts (conf/paper.yaml, not trained here)."""
from pathlib import Path

import numpy as np
import pytest

from common.config import load_config
from reproductions.tfgridnet.data import progressive_snrs
from reproductions.tfgridnet.strategies import build_model

RECIPE_DIR = Path(__file__).resolve().parents[3] / "reproductions" / "tfgridnet"


@pytest.fixture(scope="module")
def paper_config():
    return load_config("paper", RECIPE_DIR)


@pytest.fixture(scope="module")
def paper_models(paper_config):
    return build_model(paper_config, progressive=False), build_model(paper_config, progressive=True)


def test_paper_parameter_counts(paper_models):
    # docs/tfgridnet.md#model: 471,533 per block in PyTorch = 469,933 in Keras (one LSTM bias
    # vector of 400 per direction instead of two) -> 32 + 1,184 + 64 + 5 * 469,933 + 578 = 2,351,523.
    direct, progressive = paper_models
    assert direct.count_params() == 2_351_523
    assert progressive.count_params() == 2_353_835
    assert progressive.count_params() - direct.count_params() == 4 * (32 * 2 * 9 + 2)
    lstm_weights = sum(int(np.prod(w.shape)) for layer in direct.layers if "blstm" in layer.name for w in layer.weights)
    assert lstm_weights == 20 * (4 * 100 * (128 + 100) + 4 * 100)
    assert direct.count_params() + 20 * 400 == 2_359_523  # upstream's 2.36 M


def test_paper_progressive_model_has_one_head_per_block(paper_models):
    direct, progressive = paper_models
    assert len(direct.outputs) == 1
    assert len(progressive.outputs) == 5
    assert [tensor.shape.as_list() for tensor in progressive.outputs] == [[None, None]] * 5
    # E = floor(1024 / 255) = 4 query/key channels per head, D / L = 8 value channels, 255 bins after the input conv
    assert direct.get_layer("block1_attn_query0_conv").filters == 4
    assert direct.get_layer("block1_attn_value0_conv").filters == 8
    assert direct.get_layer("input_conv").output.shape[2] == 255



def test_paper_progressive_targets_follow_the_seed(paper_config):
    assert progressive_snrs(paper_config) == (0.0, 5.0, 10.0, 15.0)
    assert tuple(paper_config["data"]["snr_range"]) == (-5, 15)
