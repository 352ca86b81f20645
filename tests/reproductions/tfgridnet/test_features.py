"""reproductions/tfgridnet/features.py: the STFT against a direct DFT of one frame, and inverse(forward(x)) == x."""
import numpy as np
import pytest
import scipy.signal

from reproductions.tfgridnet.features import tfgridnet_frame_count, tfgridnet_istft, tfgridnet_stft, tfgridnet_window
from tests.stft_helpers import ROUND_TRIP_ATOL, direct_dft, waveform


def test_tfgridnet_window_and_stft_match_torch_definition():
    np.testing.assert_allclose(tfgridnet_window() ** 2, scipy.signal.get_window("hann", 512, fftbins=True),
                               atol=1e-12)  # torch.hann_window is periodic
    x = waveform(3000)
    spectrum = tfgridnet_stft(x)
    assert spectrum.shape == (tfgridnet_frame_count(3000), 257) == (1 + 3000 // 256, 257)
    # centre=True reflect padding written out by hand: x[256], ..., x[1] | x | x[-2], ..., x[-257]
    signal = x.astype(np.float64)
    padded = np.concatenate([signal[1:257][::-1], signal, signal[-257:-1][::-1]])
    assert padded.size == 3000 + 512
    for index in (0, 5, spectrum.shape[0] - 1):
        expected = direct_dft(padded[index * 256:index * 256 + 512] * tfgridnet_window())
        np.testing.assert_allclose(spectrum[index], expected, atol=1e-4)


def test_tfgridnet_round_trip_like_torch_istft():
    x = waveform(3001)
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
    with pytest.raises(ValueError, match="tfgridnet_stft: needs at least 257"):
        tfgridnet_stft(np.ones(200))
    with pytest.raises(ValueError, match=r"expected a \(frames, 257\)"):
        tfgridnet_istft(np.zeros((4, 161), dtype=np.complex64))
