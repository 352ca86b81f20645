"""One training step of the compiled model, and the SI-SNR it logs (reproductions/tfgridnet/trainer.py)."""
import copy
from pathlib import Path

import numpy as np
import pytest

from common.config import load_config
from reproductions.tfgridnet.data import make_batches
from reproductions.tfgridnet.strategies import build_model
from reproductions.tfgridnet.trainer import compile_model

RECIPE_DIR = Path(__file__).resolve().parents[3] / "reproductions" / "tfgridnet"


def test_one_training_step(mini_corpus, tiny_config):
    # one block (the smallest graph to compile); PL differs only by more heads and targets, checked above
    config = copy.deepcopy(tiny_config)
    config["model"]["num_blocks"] = 1
    noisy, clean = make_batches(config, mini_corpus, "train", False, fresh_every_epoch=True)[0]
    model = compile_model(build_model(config, False), config, 1)
    before = [weight.copy() for weight in model.get_weights()]
    logs = model.train_on_batch(noisy, clean, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert any(not np.array_equal(old, new) for old, new in zip(before, model.get_weights()))
    # the mini configuration's SI-SNR weight reaches the compiled loss (the paper configuration keeps upstream's 1)
    assert model.loss.sisnr_weight == tiny_config["loss"]["sisnr_weight"] == 100
    assert "sisnr_weight" not in load_config("paper", RECIPE_DIR)["loss"]


def test_training_logs_the_si_snr_of_the_clean_estimate(mini_corpus, tiny_config):
    from common.metrics import si_snr as numpy_si_snr

    config = copy.deepcopy(tiny_config)
    config["model"]["num_blocks"] = 1
    noisy, clean = make_batches(config, mini_corpus, "train", False, fresh_every_epoch=True)[0]
    model = compile_model(build_model(config, False), config, 1)
    logs = model.evaluate(noisy, clean, batch_size=2, return_dict=True, verbose=0)
    estimate = model.predict(noisy, verbose=0)
    expected = np.mean([numpy_si_snr(c, e) for c, e in zip(clean, estimate)])
    assert logs["si_snr"] == pytest.approx(expected, abs=0.05)
