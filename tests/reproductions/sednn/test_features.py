"""reproductions/sednn/features.py: the STFT against a direct DFT of one frame, and inverse(forward(x)) == x."""
import numpy as np
import pytest

from reproductions.sednn.features import sednn_context, sednn_istft, sednn_log_magnitude, sednn_stft
from tests.stft_helpers import ROUND_TRIP_ATOL, direct_dft, waveform


def test_sednn_stft_is_density_scaled_hamming_dft():
    x = waveform(5000)
    spectrum = sednn_stft(x)
    assert spectrum.shape == ((5000 - 512) // 256 + 1, 257) and spectrum.dtype == np.complex64
    window = np.hamming(512)
    for index in (0, 7, spectrum.shape[0] - 1):
        frame = x[index * 256:index * 256 + 512].astype(np.float64) * window
        expected = direct_dft(frame) / np.sqrt(np.sum(window ** 2))  # scaling='density', fs=1 -> 1/sqrt(sum w^2)
        np.testing.assert_allclose(spectrum[index], expected, atol=1e-5)
    assert 1 / np.sqrt(np.sum(window ** 2)) == pytest.approx(0.0701728, abs=1e-7)  # ratio noted in the reference


def test_sednn_log_magnitude_and_round_trip():
    x = waveform(4000)
    spectrum = sednn_stft(x)
    np.testing.assert_allclose(sednn_log_magnitude(x), np.log(np.abs(spectrum) + 1e-8), rtol=1e-6)
    np.testing.assert_allclose(sednn_log_magnitude(np.abs(spectrum)), sednn_log_magnitude(spectrum))
    covered = (spectrum.shape[0] - 1) * 256 + 512  # scipy drops the samples after the last full frame
    recovered = sednn_istft(spectrum)
    assert recovered.size == covered
    np.testing.assert_allclose(recovered, x[:covered], atol=ROUND_TRIP_ATOL)
    np.testing.assert_allclose(sednn_istft(np.abs(spectrum), phase=np.angle(spectrum)), recovered, atol=1e-6)
    # inference path: exp(log-magnitude) with the mixture's phase, padded to the input length
    from_log = sednn_istft(np.exp(sednn_log_magnitude(spectrum)) - 1e-8, phase=spectrum, length=x.size)
    assert from_log.size == x.size
    np.testing.assert_allclose(from_log[:covered], x[:covered], atol=1e-4)
    np.testing.assert_array_equal(from_log[covered:], 0)


def test_sednn_context_pads_with_border_frames():
    frames = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    context = sednn_context(frames, n_concat=7, hop=1)
    assert context.shape == (5, 7, 3)
    np.testing.assert_array_equal(context[:, 3], frames)  # segment i is centred on frame i
    np.testing.assert_array_equal(context[0], frames[[0, 0, 0, 0, 1, 2, 3]])
    np.testing.assert_array_equal(context[-1], frames[[1, 2, 3, 4, 4, 4, 4]])
    packed = sednn_context(frames, n_concat=7, hop=3)
    np.testing.assert_array_equal(packed[:, 3], frames[[0, 3]])  # mat_2d_to_3d starts at 0, 3 (11 padded frames)


def test_a_too_short_input_raises():
    with pytest.raises(ValueError, match="sednn_stft: needs at least 512"):
        sednn_stft(np.ones(100))
