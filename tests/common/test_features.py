"""Tests for common.features: each STFT variant against a direct DFT of one frame, and inverse(forward(x)) == x."""

import numpy as np
import pytest
import scipy.signal

from common.features import (
    crn_frame_count,
    crn_istft,
    crn_resynthesize,
    crn_stft,
    crn_window,
    sednn_context,
    sednn_istft,
    sednn_log_magnitude,
    sednn_stft,
    tfgridnet_frame_count,
    tfgridnet_istft,
    tfgridnet_stft,
    tfgridnet_window,
)

# Round trips go through complex64 spectra (as the upstream repositories store/compute them in float32): 24-bit
# mantissas give ~6e-8 relative error per coefficient, and a 512-point inverse DFT accumulates it to ~1e-6 of the
# signal peak, so 1e-5 absolute on signals with |x| <= 1 is a bound with margin that still catches any misplaced sample.
ROUND_TRIP_ATOL = 1e-5


def _signal(samples, seed=0):
    rng = np.random.default_rng(seed)
    time = np.arange(samples) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * time) + 0.1 * rng.standard_normal(samples)).astype(np.float32)


def _dft(frame):
    n = np.arange(frame.size)
    k = np.arange(frame.size // 2 + 1)[:, None]
    return (frame[None, :] * np.exp(-2j * np.pi * k * n / frame.size)).sum(axis=1)


# --------------------------------------------------------------------------------------------------- sednn
def test_sednn_stft_is_density_scaled_hamming_dft():
    x = _signal(5000)
    spectrum = sednn_stft(x)
    assert spectrum.shape == ((5000 - 512) // 256 + 1, 257) and spectrum.dtype == np.complex64
    window = np.hamming(512)
    for index in (0, 7, spectrum.shape[0] - 1):
        frame = x[index * 256:index * 256 + 512].astype(np.float64) * window
        expected = _dft(frame) / np.sqrt(np.sum(window ** 2))  # scaling='density', fs=1 -> 1/sqrt(sum w^2)
        np.testing.assert_allclose(spectrum[index], expected, atol=1e-5)
    assert 1 / np.sqrt(np.sum(window ** 2)) == pytest.approx(0.0701728, abs=1e-7)  # ratio noted in the reference


def test_sednn_log_magnitude_and_round_trip():
    x = _signal(4000)
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


# ----------------------------------------------------------------------------------------------------- CRN
def test_crn_stft_is_zero_padded_hamming_dft():
    x = _signal(1000)
    spectrum = crn_stft(x)
    assert spectrum.shape == (crn_frame_count(1000), 161) == (1000 // 160 + 1, 161)
    padded = np.concatenate([np.zeros(160), x.astype(np.float64), np.zeros(160)])
    for index in (0, 3, spectrum.shape[0] - 1):
        expected = _dft(padded[index * 160:index * 160 + 320] * np.hamming(320))
        np.testing.assert_allclose(spectrum[index], expected, atol=1e-4)


def test_crn_round_trip_exact_and_with_author_envelope():
    x = _signal(1000)
    spectrum = crn_stft(x)
    kept = (spectrum.shape[0] - 1) * 160  # the author's iSTFT returns (frames-1)*160 samples, then zero-pads
    exact = crn_istft(spectrum, length=x.size, author_window_envelope=False)
    assert exact.size == x.size
    np.testing.assert_allclose(exact[:kept], x[:kept], atol=ROUND_TRIP_ATOL)
    np.testing.assert_array_equal(exact[kept:], 0)
    # The author's code divides sample p by seg[p // (frames-1)] instead of seg[p % 160] (expand+view layout);
    # the output is therefore x scaled by the ratio of the two envelopes, at most 0.42 % away from x.
    window = crn_window()
    seg = window[:160] + window[160:]
    frames = spectrum.shape[0]
    eps = np.finfo(np.float32).eps
    ratio = (np.tile(seg, frames - 1) + eps) / (np.repeat(seg, frames - 1) + eps)
    author = crn_istft(spectrum, length=x.size)
    np.testing.assert_allclose(author[:kept], x[:kept] * ratio, atol=ROUND_TRIP_ATOL)
    assert np.max(np.abs(ratio - 1)) < 0.0042


def test_crn_noisy_phase_resynthesis_of_the_mixture_magnitude_returns_the_mixture():
    mixture = _signal(1600, seed=3)
    magnitude = np.abs(crn_stft(mixture))
    resynthesised = crn_resynthesize(magnitude, mixture, author_window_envelope=False)
    assert resynthesised.size == mixture.size
    np.testing.assert_allclose(resynthesised[:1600], mixture, atol=ROUND_TRIP_ATOL)  # 1600 = 10 hops: all kept
    with pytest.raises(ValueError, match="at least 2 frames"):
        crn_istft(np.zeros((1, 161), dtype=np.complex64))


# ---------------------------------------------------------------------------------------------- TF-GridNet
def test_tfgridnet_window_and_stft_match_torch_definition():
    np.testing.assert_allclose(tfgridnet_window() ** 2, scipy.signal.get_window("hann", 512, fftbins=True),
                               atol=1e-12)  # torch.hann_window is periodic
    x = _signal(3000)
    spectrum = tfgridnet_stft(x)
    assert spectrum.shape == (tfgridnet_frame_count(3000), 257) == (1 + 3000 // 256, 257)
    # centre=True reflect padding written out by hand: x[256], ..., x[1] | x | x[-2], ..., x[-257]
    signal = x.astype(np.float64)
    padded = np.concatenate([signal[1:257][::-1], signal, signal[-257:-1][::-1]])
    assert padded.size == 3000 + 512
    for index in (0, 5, spectrum.shape[0] - 1):
        expected = _dft(padded[index * 256:index * 256 + 512] * tfgridnet_window())
        np.testing.assert_allclose(spectrum[index], expected, atol=1e-4)


def test_tfgridnet_round_trip_like_torch_istft():
    x = _signal(3001)
    spectrum = tfgridnet_stft(x)
    recovered = tfgridnet_istft(spectrum, length=x.size)
    assert recovered.size == x.size
    np.testing.assert_allclose(recovered, x, atol=ROUND_TRIP_ATOL)
    without_length = tfgridnet_istft(spectrum)
    assert without_length.size == 256 * (spectrum.shape[0] - 1)  # torch drops n_fft//2 at both ends
    np.testing.assert_allclose(without_length, x[:without_length.size], atol=ROUND_TRIP_ATOL)
    # a length past the overlap-added region: torch keeps all of it (3072 samples here) and zero-pads the rest
    padded = tfgridnet_istft(spectrum, length=x.size + 400)
    assert padded.size == x.size + 400
    np.testing.assert_allclose(padded[:x.size], x, atol=ROUND_TRIP_ATOL)
    np.testing.assert_array_equal(padded[256 * (spectrum.shape[0] - 1) + 256:], 0)


def test_too_short_inputs_raise():
    with pytest.raises(ValueError, match="sednn_stft: needs at least 512"):
        sednn_stft(np.ones(100))
    with pytest.raises(ValueError, match="tfgridnet_stft: needs at least 257"):
        tfgridnet_stft(np.ones(200))
    with pytest.raises(ValueError, match=r"expected a \(frames, 257\)"):
        tfgridnet_istft(np.zeros((4, 161), dtype=np.complex64))
