"""The enhancer of a sednn system at the inference level (reproductions/sednn/systems.py)."""
import numpy as np
import pytest

from reproductions.sednn.systems import enhancer


@pytest.mark.parametrize("level_dbfs", [-25, None])
def test_enhancer_gives_the_same_result_at_any_input_level_with_an_inference_level(level_dbfs):
    from reproductions.sednn.scaler import Scaler

    scaler = Scaler(mean=np.zeros(257, np.float32), scale=np.ones(257, np.float32))

    def predict(windows):
        # A floor on the log magnitude: the output depends on the input level, as a trained DNN's does.
        return np.maximum(windows[:, 3, :], -4.0)

    enhance = enhancer({"features": {"n_concat": 7}, "inference": {"level_dbfs": level_dbfs}}, predict, scaler)
    noisy = (0.05 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    loud, quiet = enhance(noisy), enhance(noisy * 0.01)
    assert loud.shape == quiet.shape == noisy.shape
    matches = np.allclose(quiet / 0.01, loud, rtol=1e-3, atol=1e-6 * np.max(np.abs(loud)))
    assert matches == (level_dbfs is not None)
