"""ICSE training: the negative SI-SNR loss against the metric, and the checks of the ``training`` settings
(reproductions/icse/trainer.py)."""
import numpy as np
import pytest


def test_negative_si_snr_loss_matches_the_metric_and_ignores_the_gain():
    from common.metrics import si_snr
    from reproductions.icse.trainer import negative_si_snr

    rng = np.random.default_rng(1)
    clean = rng.standard_normal((3, 400)).astype(np.float32)
    estimate = clean + 0.5 * rng.standard_normal((3, 400)).astype(np.float32)
    expected = -np.mean([si_snr(clean[index], estimate[index]) for index in range(3)])
    loss = float(negative_si_snr(clean[..., None], estimate[..., None]))
    assert loss == pytest.approx(expected, abs=1e-3)
    assert float(negative_si_snr(clean[..., None], 7.0 * estimate[..., None])) == pytest.approx(loss, abs=1e-3)
    assert float(negative_si_snr(clean[..., None], clean[..., None])) < -60


@pytest.mark.parametrize("training, message", [
    ({"loss": "l1"}, "training.loss"),
    ({"batch_size": 4}, "training.batch_size 4 needs training.segment_seconds"),
    ({"batch_size": 0, "segment_seconds": 1.0}, "training.batch_size"),
    ({"segment_seconds": -1.0}, "training.segment_seconds"),
])
def test_bad_training_settings_are_value_errors(training, message):
    from reproductions.icse.trainer import training_settings

    with pytest.raises(ValueError, match=message):
        training_settings({"config_path": "mini.yaml", "training": training})
