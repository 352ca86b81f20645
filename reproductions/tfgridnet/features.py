"""TF-GridNet upstream's exact STFT and its inverse (numpy, no TensorFlow); spectrograms are (frames, bins).

``torch.stft(n_fft=512, hop_length=256, window=hann_window(512)**0.5, center=True, pad_mode='reflect')`` (periodic
Hann, not normalised, one-sided) and ``torch.istft`` with the same window (overlap-add of windowed irfft frames
divided by the summed squared window, centre padding removed).

Reference: docs/tfgridnet.md#model.
"""
from __future__ import annotations

import numpy as np

from common.features import as_spectrogram, as_waveform

# TF-GridNet upstream (Acceleration123/Speech-Enhancement) configure.toml [FFT]: 512 / 512 / 256
# (docs/tfgridnet.md#model).
TFGRIDNET_FFT_LENGTH = 512
TFGRIDNET_HOP = 256


def tfgridnet_window() -> np.ndarray:
    """``torch.hann_window(512) ** 0.5``: square root of the periodic Hann window."""
    n = np.arange(TFGRIDNET_FFT_LENGTH)
    return np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * n / TFGRIDNET_FFT_LENGTH))


def tfgridnet_frame_count(num_samples: int) -> int:
    """``torch.stft(center=True)`` frame count: 1 + N // 256."""
    return 1 + int(num_samples) // TFGRIDNET_HOP


def tfgridnet_stft(signal, dtype=np.complex64) -> np.ndarray:
    """TF-GridNet upstream's STFT, ``torch.stft(x, 512, 256, 512, sqrt-Hann, center=True, pad_mode='reflect')``,
    returned as complex (1 + N // 256, 257) (torch gives (257, frames)). Reflect padding needs N > 256."""
    waveform = as_waveform(signal, "tfgridnet_stft", TFGRIDNET_FFT_LENGTH // 2 + 1)
    half = TFGRIDNET_FFT_LENGTH // 2
    # numpy "reflect" mirrors without repeating the edge sample, as torch's reflect padding
    padded = np.pad(waveform, (half, half), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, TFGRIDNET_FFT_LENGTH)[::TFGRIDNET_HOP]
    return np.fft.rfft(frames * tfgridnet_window(), axis=1).astype(dtype)


def tfgridnet_istft(spec, length: int | None = None) -> np.ndarray:
    """``torch.istft(spec, 512, 256, 512, sqrt-Hann, center=True, length=length)`` for a (frames, 257) spectrum.

    Windowed irfft frames are overlap-added and divided by the overlap-added squared window; the first 256
    samples (centre padding) are dropped; without ``length`` the last 256 are dropped too, with ``length`` the
    output is cut or zero-padded to it, as torch does.
    """
    spectrum = as_spectrogram(spec, TFGRIDNET_FFT_LENGTH // 2 + 1, "tfgridnet_istft")
    n_frames = spectrum.shape[0]
    if n_frames < 1:
        raise ValueError("tfgridnet_istft: empty spectrogram")
    window = tfgridnet_window()
    frames = np.fft.irfft(spectrum.astype(np.complex128), n=TFGRIDNET_FFT_LENGTH, axis=1) * window
    total = TFGRIDNET_FFT_LENGTH + TFGRIDNET_HOP * (n_frames - 1)
    signal = np.zeros(total)
    envelope = np.zeros(total)
    for index in range(n_frames):
        start = index * TFGRIDNET_HOP
        signal[start:start + TFGRIDNET_FFT_LENGTH] += frames[index]
        envelope[start:start + TFGRIDNET_FFT_LENGTH] += window ** 2
    start = TFGRIDNET_FFT_LENGTH // 2
    end = total - TFGRIDNET_FFT_LENGTH // 2 if length is None else min(start + int(length), total)
    envelope = envelope[start:end]
    if np.any(envelope < 1e-11):  # torch.istft raises on a window that violates NOLA in the kept region
        raise ValueError("tfgridnet_istft: window overlap-add is zero in the output region (NOLA violated)")
    signal = signal[start:end] / envelope
    if length is not None and signal.size < length:
        signal = np.pad(signal, (0, int(length) - signal.size))
    return signal.astype(np.float32)
