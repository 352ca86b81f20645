"""Tests for common.mixing: each convention against its formula written out independently, plus determinism."""

import numpy as np
import pyloudnorm
import pytest

from common.mixing import (
    LIBRIMIX_MAX_AMPLITUDE,
    Mixture,
    fit_noise_to_length,
    mix_crn,
    mix_energy_gain,
    mix_librimix_loudness,
    mix_sednn,
    mix_tfgridnet,
)

RATE = 16000


def _speech(seconds=1.0, seed=0):
    # a voiced-like harmonic tone with a syllabic envelope: silences make whole-utterance RMS differ from active RMS
    time = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * 150 * k * time) / k for k in range(1, 10))
    envelope = np.clip(np.sin(2 * np.pi * 2 * time), 0, None)
    rng = np.random.default_rng(seed)
    return (0.1 * tone * envelope + 1e-3 * rng.standard_normal(time.size)).astype(np.float32)


def _noise(samples, seed=1, offset=0.0):
    return (0.05 * np.random.default_rng(seed).standard_normal(samples) + offset).astype(np.float32)


def _check_components(result: Mixture):
    assert result.mixture.dtype == result.speech.dtype == result.noise.dtype == np.float32
    assert result.mixture.shape == result.speech.shape == result.noise.shape
    np.testing.assert_allclose(result.mixture, result.speech + result.noise, atol=1e-6)


def test_fit_noise_tiles_short_and_crops_long_noise():
    noise = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fit_noise_to_length(noise, 25), np.tile(noise, 3)[:25])
    np.testing.assert_array_equal(fit_noise_to_length(noise, 10), noise)
    cropped = fit_noise_to_length(noise, 4, np.random.default_rng(3))
    onset = np.random.default_rng(3).integers(0, 10 - 4)  # sednn: rs.randint(0, len_noise - len_speech)
    np.testing.assert_array_equal(cropped, noise[onset:onset + 4])
    np.testing.assert_array_equal(fit_noise_to_length(noise, 4, 3), cropped)  # an integer seed is the same draw


def test_mix_sednn_matches_prepare_data_formulas():
    speech, noise = _speech(), _noise(40000)
    result = mix_sednn(speech, noise, 5.0, np.random.default_rng(7))
    _check_components(result)
    # independent re-computation of prepare_data.py with the same noise crop
    onset = np.random.default_rng(7).integers(0, noise.size - speech.size)
    cut = noise[onset:onset + speech.size].astype(np.float64)
    s = speech.astype(np.float64)
    scaler = 10 ** (5.0 / 20) / (np.sqrt(np.mean(s ** 2)) / np.sqrt(np.mean(cut ** 2)))
    alpha = 1.0 / np.max(np.abs(s * scaler + cut))
    np.testing.assert_allclose(result.speech, s * scaler * alpha, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(result.noise, cut * alpha, rtol=1e-6, atol=1e-7)
    assert result.gain == pytest.approx(alpha)
    assert np.max(np.abs(result.mixture)) == pytest.approx(1.0, abs=1e-6)
    achieved = 20 * np.log10(np.sqrt(np.mean(result.speech.astype(np.float64) ** 2))
                             / np.sqrt(np.mean(result.noise.astype(np.float64) ** 2)))
    assert achieved == pytest.approx(5.0, abs=1e-4)
    again = mix_sednn(speech, noise, 5.0, np.random.default_rng(7))
    np.testing.assert_array_equal(again.mixture, result.mixture)


def test_mix_sednn_tiles_short_noise_without_drawing():
    speech, noise = _speech(), _noise(3000)
    result = mix_sednn(speech, noise, 0.0, None)
    np.testing.assert_allclose(result.noise / result.noise_gain, np.tile(noise, 6)[:speech.size], rtol=1e-5, atol=1e-7)


def test_mix_energy_gain_is_the_fqse_formula():
    speech, noise = _speech(), _noise(RATE)
    result = mix_energy_gain(speech, noise, 12.0)
    _check_components(result)
    es, en = np.mean(speech.astype(np.float64) ** 2), np.mean(noise.astype(np.float64) ** 2)
    assert result.gain == pytest.approx(np.sqrt((es / en) / 10 ** (12.0 / 10)))
    np.testing.assert_array_equal(result.speech, speech)
    assert 10 * np.log10(es / np.mean(result.noise.astype(np.float64) ** 2)) == pytest.approx(12.0, abs=1e-4)
    silent = mix_energy_gain(np.zeros(RATE, dtype=np.float32), noise, 12.0)  # FQSE: gain 1.0 when Es == 0
    assert silent.gain == 1.0
    with pytest.raises(ValueError, match="pass rng to crop"):
        mix_energy_gain(speech, _noise(2 * RATE), 0.0)


def test_mix_tfgridnet_uses_variances_not_powers():
    speech = _speech()
    noise = _noise(RATE, offset=0.2)  # a DC offset separates variance from power
    result = mix_tfgridnet(speech, noise, -3.0)
    _check_components(result)
    scale = np.sqrt(np.var(speech.astype(np.float64)) * 10 ** (3.0 / 10) / np.var(noise.astype(np.float64)))
    assert result.gain == pytest.approx(scale, rel=1e-6)
    assert 10 * np.log10(np.var(result.speech.astype(np.float64)) / np.var(result.noise.astype(np.float64))) \
        == pytest.approx(-3.0, abs=1e-4)
    power_snr = 10 * np.log10(np.mean(result.speech.astype(np.float64) ** 2)
                              / np.mean(result.noise.astype(np.float64) ** 2))
    assert abs(power_snr - (-3.0)) > 1.0
    with pytest.raises(ValueError, match="zero variance"):
        mix_tfgridnet(speech, np.full(RATE, 0.3, dtype=np.float32), 0.0)


def test_mix_crn_normalises_mixture_rms_to_one():
    speech, noise = _speech(), _noise(30000)
    result = mix_crn(speech, noise, -5.0, 11)
    _check_components(result)
    mixture = result.mixture.astype(np.float64)
    assert np.sqrt(np.mean(mixture ** 2)) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(result.speech, speech * result.gain, rtol=1e-5, atol=1e-6)
    energy_snr = 10 * np.log10(np.sum(result.speech.astype(np.float64) ** 2)
                               / np.sum(result.noise.astype(np.float64) ** 2))
    assert energy_snr == pytest.approx(-5.0, abs=1e-4)


def test_mix_librimix_loudness_hits_drawn_targets():
    speech, noise = _speech(2.0), _noise(2 * RATE + 500)
    result = mix_librimix_loudness(speech, noise, np.random.default_rng(4))
    _check_components(result)
    draws = np.random.default_rng(4)
    speech_target, noise_target = draws.uniform(-33, -25), draws.uniform(-38, -30)
    meter = pyloudnorm.Meter(RATE)
    assert result.gain == 1.0  # quiet sources: no clipping renormalisation
    # loudness is linear in the gain (gating is relative), so the targets are met to float precision
    assert meter.integrated_loudness(result.speech.astype(np.float64)) == pytest.approx(speech_target, abs=0.01)
    assert meter.integrated_loudness(result.noise.astype(np.float64)) == pytest.approx(noise_target, abs=0.01)
    np.testing.assert_allclose(result.noise / result.noise_gain, noise[:speech.size], rtol=1e-5, atol=1e-7)
    again = mix_librimix_loudness(speech, noise, np.random.default_rng(4))
    np.testing.assert_array_equal(again.mixture, result.mixture)


def test_mix_librimix_loudness_renormalises_a_clipping_mixture():
    speech, noise = _speech(2.0), _noise(2 * RATE)
    result = mix_librimix_loudness(speech, noise, 0, speech_loudness=(-3.0, -3.0), noise_loudness=(-6.0, -6.0))
    _check_components(result)
    assert result.gain < 1.0
    assert np.max(np.abs(result.mixture)) == pytest.approx(LIBRIMIX_MAX_AMPLITUDE, abs=1e-3)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="all-zero"):
        mix_sednn(_speech(), np.zeros(RATE, dtype=np.float32), 0.0, 0)
    with pytest.raises(ValueError, match="NaN/Inf"):
        mix_crn(np.full(RATE, np.nan), _noise(RATE), 0.0)
    with pytest.raises(ValueError, match="-inf"):
        mix_librimix_loudness(np.zeros(RATE), _noise(RATE), 0)
