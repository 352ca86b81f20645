"""Tests for common.audio: file round trips, resampling against an analytic sine, and every bad-input error."""

import logging

import numpy as np
import pytest
import soundfile

from common.audio import (
    peak_normalize,
    read_audio,
    resample,
    rms,
    rms_normalize,
    to_mono,
    validate_signal,
    write_audio,
)


def _sine(frequency, rate, seconds=0.5, amplitude=0.5):
    time = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def test_write_then_read_round_trip_pcm16(tmp_path):
    signal = _sine(440, 16000)
    path = write_audio(tmp_path / "deep" / "folder" / "tone.wav", signal, 16000)
    assert path.is_file()
    assert soundfile.info(str(path)).subtype == "PCM_16"
    read, rate = read_audio(path)
    assert rate == 16000 and read.dtype == np.float32 and read.shape == signal.shape
    # PCM_16 quantisation: at most half a step of 1/32768 per sample, plus rounding of the float conversion
    np.testing.assert_allclose(read, signal, atol=1.0 / 32768)


def test_stereo_file_is_down_mixed_by_channel_mean(tmp_path):
    left, right = _sine(300, 16000), _sine(700, 16000, amplitude=0.25)
    stereo = np.stack([left, right], axis=1)
    path = tmp_path / "stereo.wav"
    soundfile.write(str(path), stereo, 16000, subtype="FLOAT")
    mono, _ = read_audio(path)
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-7)
    both, _ = read_audio(path, mono=False)
    assert both.shape == (left.size, 2)
    np.testing.assert_allclose(to_mono(stereo), (left + right) / 2, atol=1e-7)


def test_resample_matches_the_analytic_sine():
    original = _sine(440, 48000, seconds=1.0)
    converted = resample(original, 48000, 16000)
    assert converted.dtype == np.float32 and converted.size == 16000
    expected = _sine(440, 16000, seconds=1.0)
    # away from the edges (filter transients) a 440 Hz tone is far inside the pass band of the Kaiser filter
    np.testing.assert_allclose(converted[200:-200], expected[200:-200], atol=2e-3)


def test_read_with_resampling_and_rate_mismatch_error(tmp_path):
    path = write_audio(tmp_path / "tone48k.wav", _sine(440, 48000), 48000)
    signal, rate = read_audio(path, sample_rate=16000)
    assert rate == 16000 and signal.size == 8000
    with pytest.raises(ValueError, match=r"tone48k\.wav.*48000 Hz, expected 16000 Hz"):
        read_audio(path, sample_rate=16000, resample=False)


def test_corrupt_missing_and_empty_files_raise_naming_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00garbage that is not a wave file" * 3)
    with pytest.raises(ValueError, match=r"corrupt\.wav.*unreadable or corrupt"):
        read_audio(corrupt)
    with pytest.raises(ValueError, match=r"missing\.wav.*does not exist"):
        read_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match=r"empty\.wav.*empty"):
        read_audio(empty)


def test_silent_and_non_finite_files_raise(tmp_path):
    silent = write_audio(tmp_path / "silent.wav", np.zeros(1600, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match=r"silent\.wav.*all-zero"):
        read_audio(silent)
    broken = tmp_path / "nan.wav"
    data = _sine(440, 16000)
    data[10] = np.nan
    data[20] = np.inf
    soundfile.write(str(broken), data, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"nan\.wav.*2 NaN/Inf"):
        read_audio(broken)


def test_clipping_is_reported(tmp_path, caplog):
    clipped = np.clip(_sine(440, 16000, amplitude=2.0), -1.0, 1.0)
    path = write_audio(tmp_path / "clipped.wav", clipped, 16000)
    with caplog.at_level(logging.WARNING, logger="common.audio"):
        read_audio(path)
    assert any("clipped.wav" in record.message and "clipped" in record.message for record in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="common.audio"):
        read_audio(write_audio(tmp_path / "quiet.wav", _sine(440, 16000), 16000))
    assert not caplog.records


def test_levels():
    signal = np.array([0.5, -1.0, 0.25, 0.0], dtype=np.float32)
    assert rms(signal) == pytest.approx(np.sqrt((0.25 + 1.0 + 0.0625) / 4))
    np.testing.assert_allclose(peak_normalize(signal, 0.5), signal * 0.5, atol=1e-7)
    normalised = rms_normalize(signal, 0.1)
    assert rms(normalised) == pytest.approx(0.1, rel=1e-6)
    np.testing.assert_allclose(normalised, signal * (0.1 / rms(signal)), rtol=1e-6)
    with pytest.raises(ValueError, match="all-zero"):
        peak_normalize(np.zeros(4))


def test_validate_signal_errors():
    assert validate_signal([0.1, 0.2], "ok").shape == (2,)
    with pytest.raises(ValueError, match="x: empty"):
        validate_signal(np.array([]), "x")
    with pytest.raises(ValueError, match="y: signal contains 1 NaN/Inf"):
        validate_signal(np.array([0.1, np.nan]), "y")
    with pytest.raises(ValueError, match="z: all-zero"):
        validate_signal(np.zeros(5), "z")
    with pytest.raises(ValueError, match="NaN/Inf"):
        write_audio("unused.wav", np.array([np.inf]), 16000)
