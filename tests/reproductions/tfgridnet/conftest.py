"""The tiny TF-GridNet configuration the data and training tests share."""
import copy
from pathlib import Path

import pytest

from common.config import load_config

RECIPE_DIR = Path(__file__).resolve().parents[3] / "reproductions" / "tfgridnet"


@pytest.fixture(scope="module")
def tiny_config():
    config = load_config("mini", RECIPE_DIR)
    config = copy.deepcopy(config)
    config["model"].update(embedding_dim=4, hidden_units=4, num_blocks=2, unfold_stride=4)
    config["data"]["segment_seconds"] = 0.25
    config["training"].update(batch_size=2, examples_per_epoch=4, validation_examples=2)
    return config

