"""Tests for common.audio: file round trips, resampling against an analytic sine, and every bad-input error."""

import logging
import math
import os

import numpy as np
import pytest
import soundfile

from common.audio import (
    LEVEL_FLOOR_DBFS,
    announced_frames,
    check_writable,
    level_dbfs,
    peak_normalize,
    read_audio,
    read_input,
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


def _expected_dbfs(samples):
    return 20 * math.log10(math.sqrt(float(np.mean(np.asarray(samples, np.float64) ** 2))))


def test_near_silent_inputs_are_refused_with_their_measured_level(tmp_path):
    rng = np.random.default_rng(0)
    # 1-bit dither: one PCM_16 step (1/32768) of random sign in every fourth sample, zero elsewhere.
    dither = np.zeros(48000, np.float32)
    dither[::4] = rng.choice([-1.0, 1.0], dither[::4].size) / 32768
    path = write_audio(tmp_path / "dither.wav", dither, 16000)
    stored, _ = soundfile.read(str(path), dtype="float64")
    level = _expected_dbfs(stored)
    assert level < -90
    with pytest.raises(ValueError, match=rf"dither\.wav: level {level:.1f} dBFS RMS is below the -70 dBFS floor"):
        read_input(path, 16000)
    with pytest.raises(ValueError, match=r"zeros\.wav: silent \(all zeros\)"):
        read_input(write_audio(tmp_path / "zeros.wav", np.zeros(1600, np.float32), 16000), 16000)
    # Left = -right: the channel mean cancels; one channel alone is a normal input.
    tone = _sine(440, 16000)
    opposite = write_audio(tmp_path / "opposite.wav", np.stack([tone, -tone], axis=1), 16000)
    # PCM_16 rounds -x and x to different steps, so the mean is the rounding residue, not exact zeros.
    residue = _expected_dbfs(soundfile.read(str(opposite), dtype="float64")[0].mean(axis=1))
    with pytest.raises(ValueError, match=rf"opposite\.wav: level {residue:.1f} dBFS RMS \(mean of 2 channels\) is "
                                         "below the -70 dBFS floor"):
        read_input(opposite, 16000)
    signal, notices = read_input(opposite, 16000, channel=2)
    np.testing.assert_allclose(signal, -tone, atol=1 / 32768)
    assert notices == ["used channel 2 of 2"]
    with pytest.raises(ValueError, match=r"opposite\.wav: --channel 3 asked, the file has 2 channel\(s\)"):
        read_input(opposite, 16000, channel=3)
    # A quiet but real signal just above the floor passes.
    quiet = _sine(440, 16000, amplitude=10 ** ((LEVEL_FLOOR_DBFS + 3) / 20) * math.sqrt(2))
    signal, notices = read_input(write_audio(tmp_path / "quiet.wav", quiet, 16000, subtype="FLOAT"), 16000)
    assert notices == [] and _expected_dbfs(signal) == pytest.approx(LEVEL_FLOOR_DBFS + 3, abs=0.1)


def test_read_input_reports_resampling_down_mix_and_clipping(tmp_path):
    left = _sine(440, 8000, seconds=1.0, amplitude=2.0)
    stereo = np.stack([np.clip(left, -1, 1), _sine(300, 8000, seconds=1.0)], axis=1)
    path = write_audio(tmp_path / "stereo8k.wav", stereo, 8000)
    signal, notices = read_input(path, 16000)
    assert signal.shape == (16000,)
    mean = soundfile.read(str(path), dtype="float32")[0].mean(axis=1)
    clipped = int(np.count_nonzero(np.abs(mean) >= 0.999))
    assert notices[0] == "down-mixed 2 channels to their mean (--channel N picks one)"
    assert notices[-1] == "resampled from 8000 Hz to 16000 Hz (the model's rate)"
    assert len(notices) == 2 + (clipped >= 10)
    signal, notices = read_input(path, 16000, channel=1)
    assert notices[0] == "used channel 1 of 2" and "the input is probably clipped" in notices[1]


def test_truncated_wav_is_reported(tmp_path):
    full = write_audio(tmp_path / "full.wav", _sine(440, 16000, seconds=61824 / 16000), 16000)
    assert announced_frames(full) == 61824 == soundfile.info(str(full)).frames
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(full.read_bytes()[: 44 + 2 * 500])
    signal, notices = read_input(truncated, 16000)
    assert signal.shape == (500,)
    assert notices == ["truncated file: its header announces 61824 frames, it holds 500 (0.03 s enhanced)"]


def test_write_goes_through_a_temporary_file_that_a_failure_removes(tmp_path, monkeypatch):
    target = write_audio(tmp_path / "out.wav", _sine(440, 16000), 16000)
    before = target.read_bytes()

    def failing_write(file, data, samplerate, subtype=None, format=None):
        with open(file, "wb") as handle:
            handle.write(b"RIFF half a header")
        raise RuntimeError("disk full")

    monkeypatch.setattr(soundfile, "write", failing_write)
    with pytest.raises(ValueError, match=r"out\.wav: cannot write \(disk full\)"):
        write_audio(target, _sine(880, 16000), 16000)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]


def test_unwritable_outputs_raise_naming_the_path(tmp_path):
    with pytest.raises(ValueError, match=r"out\.txt: cannot write audio with the extension '\.txt'"):
        write_audio(tmp_path / "out.txt", _sine(440, 16000), 16000)
    with pytest.raises(ValueError, match=r"out\.txt: cannot write audio"):
        check_writable(tmp_path / "out.txt")
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(ValueError, match=r"folder\.wav: is a folder"):
        check_writable(tmp_path / "folder.wav")
    with pytest.raises(ValueError, match=r"folder\.wav: is a folder"):
        write_audio(tmp_path / "folder.wav", _sine(440, 16000), 16000)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"file/sub/out\.wav: cannot be written, .*file is a file, not a folder"):
        check_writable(tmp_path / "file" / "sub" / "out.wav")
    with pytest.raises(ValueError, match=r"/proc/out\.wav: cannot be written, no file can be created in /proc"):
        check_writable("/proc/out.wav")
    assert sorted(os.listdir(tmp_path)) == ["file", "folder.wav"]
    check_writable(tmp_path / "new" / "out.flac")
    assert not (tmp_path / "new").exists()
    assert soundfile.info(str(write_audio(tmp_path / "out.flac", _sine(440, 16000), 16000))).format == "FLAC"


def _read_only_folder(root):
    """A folder with mode 0555; skips the test where this process may write there anyway (root)."""
    folder = root / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    (folder / "probe").unlink()
    folder.chmod(0o755)
    pytest.skip("this process writes into read-only folders (root with CAP_DAC_OVERRIDE; the /proc case covers it)")


def test_read_only_folder_is_refused(tmp_path):
    folder = _read_only_folder(tmp_path)
    try:
        with pytest.raises(ValueError, match=r"read_only/out\.wav: cannot be written, no file can be created"):
            check_writable(folder / "out.wav")
    finally:
        folder.chmod(0o755)


def test_level_dbfs_over_several_blocks_matches_the_formula():
    rng = np.random.default_rng(7)
    signal = (0.01 * rng.standard_normal(3 * (1 << 20) + 17)).astype(np.float32)
    assert level_dbfs(signal) == pytest.approx(_expected_dbfs(signal), abs=1e-9)
    assert level_dbfs(np.zeros(5, np.float32)) == -math.inf
    assert level_dbfs(np.full(4, 0.5, np.float32)) == pytest.approx(20 * math.log10(0.5))
