"""ICSE training: the checks of the ``training`` settings (reproductions/icse/trainer.py)."""
import numpy as np
import pytest


@pytest.mark.parametrize("training, message", [
    ({"loss": "l1"}, "training.loss"),
    ({"batch_size": 4}, "training.batch_size 4 needs training.segment_seconds"),
    ({"batch_size": 0, "segment_seconds": 1.0}, "training.batch_size"),
    ({"segment_seconds": -1.0}, "training.segment_seconds"),
    ({"loss": "negative_si_snr", "pre_emphasis": 1.0}, "training.pre_emphasis must be in"),
    ({"loss": "mse", "pre_emphasis": 0.95}, "pre_emphasis applies to the negative_si_snr loss"),
])
def test_bad_training_settings_are_value_errors(training, message):
    from reproductions.icse.trainer import training_settings

    with pytest.raises(ValueError, match=message):
        training_settings({"config_path": "mini.yaml", "training": training})
