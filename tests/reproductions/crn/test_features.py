"""reproductions/crn/features.py: the STFT against a direct DFT of one frame, and inverse(forward(x)) == x."""
import numpy as np
import pytest

from reproductions.crn.features import crn_frame_count, crn_istft, crn_resynthesize, crn_stft, crn_window
from tests.stft_helpers import ROUND_TRIP_ATOL, direct_dft, waveform


def test_crn_stft_is_zero_padded_hamming_dft():
    x = waveform(1000)
    spectrum = crn_stft(x)
    assert spectrum.shape == (crn_frame_count(1000), 161) == (1000 // 160 + 1, 161)
    padded = np.concatenate([np.zeros(160), x.astype(np.float64), np.zeros(160)])
    for index in (0, 3, spectrum.shape[0] - 1):
        expected = direct_dft(padded[index * 160:index * 160 + 320] * np.hamming(320))
        np.testing.assert_allclose(spectrum[index], expected, atol=1e-4)


def test_crn_round_trip_exact_and_with_author_envelope():
    x = waveform(1000)
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
    mixture = waveform(1600, seed=3)
    magnitude = np.abs(crn_stft(mixture))
    resynthesised = crn_resynthesize(magnitude, mixture, author_window_envelope=False)
    assert resynthesised.size == mixture.size
    np.testing.assert_allclose(resynthesised[:1600], mixture, atol=ROUND_TRIP_ATOL)  # 1600 = 10 hops: all kept
    with pytest.raises(ValueError, match="at least 2 frames"):
        crn_istft(np.zeros((1, 161), dtype=np.complex64))


def test_long_inputs_in_frame_blocks_equal_the_whole_file_formulas(monkeypatch):
    """Blocks of 7 frames (a stand-in for the 4096 of a long file) give the whole-file STFT, iSTFT and noisy-phase
    resynthesis: the DFT and the overlap-add see the same frames in the same order."""
    from reproductions.crn import features

    mixture = waveform(16000, seed=5)
    magnitude = (np.abs(crn_stft(mixture)) * np.linspace(0.5, 1.5, 161)).astype(np.float32)
    padded = np.pad(mixture, (160, 160))
    frames = np.lib.stride_tricks.sliding_window_view(padded, 320)[::160]
    whole_spectrum = np.fft.rfft(frames * np.hamming(320), axis=1)
    phase = np.angle(whole_spectrum)
    whole_estimate = magnitude.astype(np.float64) * np.exp(1j * phase)
    whole = {"istft": crn_istft(whole_spectrum, length=mixture.size),
             "resynthesis": crn_istft(whole_estimate, length=mixture.size)}
    monkeypatch.setattr(features, "BLOCK_FRAMES", 7)
    assert features.crn_stft(mixture).shape[0] > 7 * 10
    np.testing.assert_allclose(features.crn_stft(mixture, np.complex128), whole_spectrum, rtol=0, atol=1e-12)
    np.testing.assert_allclose(features.crn_istft(whole_spectrum, length=mixture.size), whole["istft"], atol=1e-7)
    np.testing.assert_allclose(features.crn_resynthesize(magnitude, mixture), whole["resynthesis"], atol=1e-6)
    with pytest.raises(ValueError, match="magnitude shape"):
        features.crn_resynthesize(magnitude[:-1], mixture)
