"""Tests for common.mixing: each convention against its formula written out independently, plus determinism."""

import numpy as np
import pyloudnorm
import pytest

from common.mixing import (
    LIBRIMIX_MAX_AMPLITUDE,
    MIXTURE_LEVEL_DBFS,
    achieved_snr_db,
    SPEED_FACTORS,
    Mixture,
    augment_speaker,
    estimate_f0,
    pitch_shift,
    scale_to_random_level,
    speed_perturb,
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


def _harmonic_tone(f0, seconds=1.0, harmonics=10):
    time = np.arange(int(seconds * RATE)) / RATE
    return sum(np.sin(2 * np.pi * f0 * k * time + k) / k for k in range(1, harmonics + 1)) * 0.1


@pytest.mark.parametrize("f0", [85.0, 120.0, 210.0, 330.0])
def test_estimate_f0_finds_the_fundamental_of_a_harmonic_tone(f0):
    frames = estimate_f0(_harmonic_tone(f0))
    assert frames.size > 90  # 1 s at a 10-ms hop, all voiced
    assert np.median(frames) == pytest.approx(f0, rel=0.01)


def test_estimate_f0_finds_no_voicing_in_white_noise():
    frames = estimate_f0(np.random.default_rng(0).standard_normal(RATE))
    assert frames.size < 5


@pytest.mark.parametrize("factor", SPEED_FACTORS)
def test_speed_perturbation_scales_pitch_by_the_factor_and_duration_by_its_inverse(factor):
    tone = _harmonic_tone(150.0, seconds=2.0)
    perturbed = speed_perturb(tone, factor)
    assert perturbed.dtype == np.float32
    assert perturbed.size == pytest.approx(tone.size / factor, abs=2)
    assert np.median(estimate_f0(perturbed)) == pytest.approx(150.0 * factor, rel=0.01)


def test_speed_perturbation_of_one_is_the_identity_and_bad_factors_raise():
    tone = _harmonic_tone(150.0).astype(np.float32)
    np.testing.assert_array_equal(speed_perturb(tone, 1.0), tone)
    with pytest.raises(ValueError, match="factor"):
        speed_perturb(tone, 3.0)


@pytest.mark.parametrize("semitones", [-7.0, -4.0, 2.0])
def test_pitch_shift_moves_f0_by_the_semitone_ratio_at_the_same_duration(semitones):
    tone = _harmonic_tone(200.0, seconds=1.5)
    shifted = pitch_shift(tone, semitones)
    assert shifted.size == tone.size
    assert np.median(estimate_f0(shifted)) == pytest.approx(200.0 * 2.0 ** (semitones / 12.0), rel=0.02)
    with pytest.raises(ValueError, match="12 semitones"):
        pitch_shift(tone, 13.0)


def test_augment_speaker_reaches_male_pitch_and_is_reproducible():
    tone = _harmonic_tone(200.0, seconds=1.0)
    draws = [augment_speaker(tone, np.random.default_rng(seed)) for seed in range(12)]
    for signal, speed, semitones in draws:
        expected = 200.0 * speed * 2.0 ** (semitones / 12.0)
        assert speed in SPEED_FACTORS and -7.0 <= semitones <= 2.0
        assert np.median(estimate_f0(signal)) == pytest.approx(expected, rel=0.03)
    again, _, _ = augment_speaker(tone, 5)
    np.testing.assert_array_equal(again, draws[5][0])
    # the lowest draw of the default ranges takes a 200-Hz female voice to 120 Hz, a typical male F0
    lowest, _, _ = augment_speaker(tone, 0, speed_factors=(min(SPEED_FACTORS),), semitone_range=(-7.0, -7.0))
    assert np.median(estimate_f0(lowest)) == pytest.approx(200.0 * 0.9 * 2.0 ** (-7.0 / 12.0), rel=0.02)
    assert np.median(estimate_f0(lowest)) < 125.0


def test_scale_to_random_level_draws_the_level_and_keeps_the_components():
    base = mix_energy_gain(_speech(), _noise(RATE), 5.0)
    levels = []
    for seed in range(20):
        scaled = scale_to_random_level(base, np.random.default_rng(seed))
        _check_components(scaled)
        rms_db = 20 * np.log10(np.sqrt(np.mean(scaled.mixture.astype(np.float64) ** 2)))
        drawn = np.random.default_rng(seed).uniform(*MIXTURE_LEVEL_DBFS)
        mixture = base.mixture.astype(np.float64)
        highest_unclipped = 20 * np.log10(0.999 * np.sqrt(np.mean(mixture ** 2)) / np.max(np.abs(mixture)))
        assert rms_db == pytest.approx(min(drawn, highest_unclipped), abs=1e-3)
        gain = scaled.speech_gain / base.speech_gain
        np.testing.assert_allclose(scaled.speech, base.speech.astype(np.float64) * gain, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(scaled.noise, base.noise.astype(np.float64) * gain, rtol=1e-5, atol=1e-9)
        assert scaled.noise_gain / base.noise_gain == pytest.approx(gain)
        assert achieved_snr_db(scaled.speech, scaled.noise) == pytest.approx(5.0, abs=1e-3)
        levels.append(rms_db)
    assert min(levels) < -35 and max(levels) > -20  # spread over the range, not one level


def test_scale_to_random_level_never_clips_and_refuses_bad_input():
    base = mix_energy_gain(_speech(), _noise(RATE), 0.0)
    peak_to_rms_db = 20 * np.log10(np.max(np.abs(base.mixture)) / np.sqrt(np.mean(base.mixture.astype(np.float64) ** 2)))
    loud = scale_to_random_level(base, 0, level_range=(-1.0, -1.0))
    assert peak_to_rms_db > 1.0 and np.max(np.abs(loud.mixture)) < 1.0
    with pytest.raises(ValueError, match="level_range"):
        scale_to_random_level(base, 0, level_range=(-10.0, -45.0))
    silent = Mixture(np.zeros(10, np.float32), np.zeros(10, np.float32), np.zeros(10, np.float32), 0.0, 1.0)
    with pytest.raises(ValueError, match="all-zero"):
        scale_to_random_level(silent, 0)


def test_augmentation_config_and_draws():
    from common.mixing import Augmentation, scale_to_level

    assert Augmentation.from_config(None) is None and Augmentation.from_config({}) is None
    with pytest.raises(ValueError, match="unknown key.*speeds"):
        Augmentation.from_config({"speeds": [0.9]})
    with pytest.raises(ValueError, match="level_dbfs"):
        Augmentation.from_config({"level_dbfs": [-10, -45]})
    augmentation = Augmentation.from_config({"speed_factors": [0.9, 1.1], "pitch_semitones": [-7, -7],
                                             "pitch_probability": 1.0, "level_dbfs": [-30, -30]})
    rate = 16000
    tone = (0.1 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate)).astype(np.float32)
    shifted = augmentation.speech(tone, np.random.default_rng(0))
    assert round(rate / shifted.shape[0], 2) in (0.9, 1.1)
    f0 = np.median(estimate_f0(shifted)[estimate_f0(shifted) > 0])
    expected = 200 * (rate / shifted.shape[0]) * 2 ** (-7 / 12)
    assert abs(f0 - expected) / expected < 0.03
    noise = np.random.default_rng(1).standard_normal(rate).astype(np.float32) * 0.01
    noisy, clean, scaled_noise = augmentation.level(tone + noise, tone, noise, np.random.default_rng(0))
    assert abs(20 * np.log10(np.sqrt(np.mean(noisy.astype(np.float64) ** 2))) + 30) < 1e-3
    np.testing.assert_allclose(noisy, clean + scaled_noise, atol=1e-6)
    (loud,), gain = scale_to_level((tone,), 0.0)
    assert np.max(np.abs(loud)) <= 0.999 + 1e-6 and gain == pytest.approx(0.999 / np.max(np.abs(tone)), rel=1e-5)
