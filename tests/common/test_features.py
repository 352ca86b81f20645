"""common/features.py: the waveform and spectrogram checks every reproduction's STFT runs first."""
import numpy as np
import pytest

from common.features import as_spectrogram, as_waveform


def test_waveform_checks_name_the_caller():
    assert as_waveform([0.0, 1.0, 2.0], "stft", 3).dtype == np.float64
    with pytest.raises(ValueError, match="stft: expected a 1-D waveform"):
        as_waveform(np.zeros((2, 3)), "stft", 1)
    with pytest.raises(ValueError, match="stft: needs at least 4 samples, got 3"):
        as_waveform(np.zeros(3), "stft", 4)
    with pytest.raises(ValueError, match="stft: waveform contains NaN/Inf"):
        as_waveform(np.array([0.0, np.nan]), "stft", 1)


def test_spectrogram_checks_the_bins():
    assert as_spectrogram(np.zeros((4, 161)), 161, "istft").shape == (4, 161)
    with pytest.raises(ValueError, match=r"istft: expected a \(frames, 257\) spectrogram, got shape \(4, 161\)"):
        as_spectrogram(np.zeros((4, 161)), 257, "istft")
