"""The evaluated CRN systems (reproductions/crn/systems.py): the model enhancers at the inference level."""
from types import SimpleNamespace

import numpy as np
import pytest

from tests.reproductions.crn.helpers import MINI


@pytest.mark.parametrize("level_dbfs", [-25.0, None])
def test_model_enhancers_run_at_the_inference_level(tmp_path, level_dbfs):
    from reproductions.crn.networks import build_model
    from reproductions.crn.systems import enhancers

    config = {**MINI, "inference": {"level_dbfs": level_dbfs}}
    model = build_model(config, "crn")
    (tmp_path / "crn").mkdir()
    model.save_weights(str(tmp_path / "crn" / "best.weights.h5"))
    enhance = enhancers(config, SimpleNamespace(exp_dir=tmp_path), ["crn"])["crn"]
    noisy = (0.05 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    quiet, loud = enhance(noisy), enhance(8.0 * noisy)
    # the network is not scale invariant: only an input played at one level gives outputs in proportion
    assert np.allclose(loud, 8.0 * quiet, rtol=1e-3, atol=1e-5) == (level_dbfs is not None)
