"""common/losses.py: negative SI-SNR against the metric (numpy), its gain invariance, and the pre-emphasis filter
against its difference equation."""
import numpy as np
import pytest


def _signals(seed=1):
    rng = np.random.default_rng(seed)
    clean = rng.standard_normal((3, 400)).astype(np.float32)
    return clean, clean + 0.5 * rng.standard_normal((3, 400)).astype(np.float32)


def test_negative_si_snr_matches_the_metric_and_ignores_the_gain():
    from common.losses import negative_si_snr
    from common.metrics import si_snr

    clean, estimate = _signals()
    expected = [-si_snr(clean[index], estimate[index]) for index in range(3)]
    per_example = negative_si_snr(clean, estimate).numpy()
    assert per_example == pytest.approx(expected, abs=1e-3)
    assert negative_si_snr(clean[..., None], estimate[..., None]).numpy() == pytest.approx(expected, abs=1e-3)
    assert negative_si_snr(clean, -7.0 * estimate).numpy() == pytest.approx(expected, abs=1e-3)
    assert float(np.max(negative_si_snr(clean, clean).numpy())) < -60


def test_pre_emphasis_is_the_si_snr_of_the_filtered_signals():
    from scipy.signal import lfilter

    from common.losses import negative_si_snr
    from common.metrics import si_snr

    clean, estimate = _signals(2)
    coefficient = 0.95
    centred = lambda x: x - x.mean(axis=-1, keepdims=True)  # noqa: E731
    filtered_clean = lfilter([1.0, -coefficient], [1.0], centred(clean), axis=-1)
    filtered_estimate = lfilter([1.0, -coefficient], [1.0], centred(estimate), axis=-1)
    expected = [-si_snr(filtered_clean[index], filtered_estimate[index]) for index in range(3)]
    assert negative_si_snr(clean, estimate, pre_emphasis=coefficient).numpy() == pytest.approx(expected, abs=1e-3)


def test_pre_emphasis_weighs_a_high_band_error_more_than_plain_si_snr():
    from common.losses import negative_si_snr

    time = np.arange(16000) / 16000.0
    clean = (np.sin(2 * np.pi * 200 * time) + 0.05 * np.sin(2 * np.pi * 3000 * time)).astype(np.float32)[None]
    high_error = clean + 0.02 * np.sin(2 * np.pi * 3100 * time).astype(np.float32)
    low_error = clean + 0.02 * np.sin(2 * np.pi * 250 * time).astype(np.float32)
    plain_high, plain_low = float(negative_si_snr(clean, high_error)[0]), float(negative_si_snr(clean, low_error)[0])
    assert plain_high == pytest.approx(plain_low, abs=0.1)
    emphasized_high = float(negative_si_snr(clean, high_error, pre_emphasis=0.95)[0])
    emphasized_low = float(negative_si_snr(clean, low_error, pre_emphasis=0.95)[0])
    assert emphasized_high > emphasized_low + 10.0


@pytest.mark.parametrize("coefficient", [-0.1, 1.0])
def test_pre_emphasis_outside_zero_one_is_a_value_error(coefficient):
    from common.losses import negative_si_snr, waveform_loss

    clean, estimate = _signals()
    with pytest.raises(ValueError, match="pre_emphasis must be in"):
        negative_si_snr(clean, estimate, pre_emphasis=coefficient)
    with pytest.raises(ValueError, match="pre_emphasis must be in"):
        waveform_loss(coefficient)


def test_waveform_loss_is_named_after_its_filter():
    from common.losses import waveform_loss

    assert waveform_loss(0.0).__name__ == "negative_si_snr"
    assert waveform_loss(0.95).__name__ == "negative_si_snr_pre_emphasis_0.95"
