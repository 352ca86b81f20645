"""The CRN author's exact STFT front-end and its inverse (numpy, no TensorFlow); spectrograms are (frames, bins).

Tan & Wang's own code: Hamming 320 (symmetric), hop 160, FFT 320 -> 161 bins, 160 zeros of padding on both sides
(frames = N // 160 + 1); inverse = irfft, overlap-add without synthesis window, divided by the summed analysis
window, output (frames - 1) * 160 samples zero-padded to the input length; noisy-phase resynthesis.

Reference: docs/crn.md#signal.
"""
from __future__ import annotations

import numpy as np

from common.features import as_spectrogram, as_waveform

# CRN-causal configs.py: 20 ms / 10 ms at 16 kHz (docs/crn.md#signal).
CRN_WINDOW_LENGTH = 320
CRN_HOP = 160


def crn_window() -> np.ndarray:
    """Symmetric Hamming window of 320 samples (``scipy.hamming(320)`` in the author's stft.py)."""
    return np.hamming(CRN_WINDOW_LENGTH)


def crn_frame_count(num_samples: int) -> int:
    """``countFrames`` of the CRN code: N // 160 + 1 (padding win - hop = 160 on both sides)."""
    return int(num_samples) // CRN_HOP + 1


def crn_stft(signal, dtype=np.complex64) -> np.ndarray:
    """CRN author's STFT: complex (N // 160 + 1, 161).

    The author computes it as ``conv1d`` with Hamming-windowed DFT kernels, stride 160 and ``padding=160`` zeros on
    both sides, i.e. X_t[k] = sum_n x[t*160 - 160 + n] w[n] exp(-2 pi i k n / 320).
    """
    waveform = as_waveform(signal, "crn_stft", CRN_HOP)
    pad = CRN_WINDOW_LENGTH - CRN_HOP
    padded = np.pad(waveform, (pad, pad))
    frames = np.lib.stride_tricks.sliding_window_view(padded, CRN_WINDOW_LENGTH)[::CRN_HOP]
    return np.fft.rfft(frames * crn_window(), axis=1).astype(dtype)


def _crn_author_window_envelope(n_frames: int) -> np.ndarray:
    # The author's ``STFT.window`` builds seg = w[:160] + w[160:] and then
    # seg.unsqueeze(-1).expand(160, n_frames - 1).view(-1): the flatten repeats each seg value n_frames - 1 times
    # instead of tiling seg, so output sample p is divided by seg[p // (n_frames - 1)] rather than seg[p % 160].
    # For the symmetric Hamming 320 seg lies in [1.0755, 1.0800], so this costs at most 0.42 % of amplitude.
    seg = crn_window()[:CRN_HOP] + crn_window()[CRN_HOP:]
    return np.repeat(seg, n_frames - 1)


def crn_istft(spec, length: int | None = None, author_window_envelope: bool = True) -> np.ndarray:
    """CRN author's inverse STFT: irfft (conj-mirrored 320-point spectrum), overlap-add without a synthesis window,
    the 160-sample padding removed ((frames - 1) * 160 samples), divided by the summed analysis window + float32 eps.

    Args:
        spec: complex (frames >= 2, 161).
        length: zero-pad (``F.pad`` in the author's Resynthesizer) or truncate to this many samples.
        author_window_envelope: True divides by the envelope exactly as the author's code lays it out (see
            ``_crn_author_window_envelope``: up to 0.42 % amplitude ripple); False divides by the correctly tiled
            overlap-add envelope, which inverts :func:`crn_stft` exactly.

    Returns:
        float32 waveform.
    """
    spectrum = as_spectrogram(spec, CRN_WINDOW_LENGTH // 2 + 1, "crn_istft")
    n_frames = spectrum.shape[0]
    if n_frames < 2:
        raise ValueError(f"crn_istft: needs at least 2 frames (the author's code asserts it), got {n_frames}")
    frames = np.fft.irfft(spectrum.astype(np.complex128), n=CRN_WINDOW_LENGTH, axis=1)
    pad = CRN_WINDOW_LENGTH - CRN_HOP
    total = (n_frames - 1) * CRN_HOP + CRN_WINDOW_LENGTH
    signal = np.zeros(total)
    for index in range(n_frames):
        signal[index * CRN_HOP:index * CRN_HOP + CRN_WINDOW_LENGTH] += frames[index]
    signal = signal[pad:total - pad]
    if author_window_envelope:
        envelope = _crn_author_window_envelope(n_frames)
    else:
        seg = crn_window()[:CRN_HOP] + crn_window()[CRN_HOP:]
        envelope = np.tile(seg, n_frames - 1)
    signal = signal / (envelope + np.finfo(np.float32).eps)
    if length is not None:
        signal = signal[:length] if signal.size >= length else np.pad(signal, (0, length - signal.size))
    return signal.astype(np.float32)


def crn_resynthesize(magnitude, mixture, author_window_envelope: bool = True) -> np.ndarray:
    """CRN ``Resynthesizer``: estimated magnitude with the noisy phase ``atan2(imag, real)`` of the mixture's STFT,
    inverse STFT, zero-padded to the mixture length."""
    mixture = as_waveform(mixture, "crn_resynthesize mixture", CRN_HOP)
    mixture_spectrum = crn_stft(mixture, dtype=np.complex128)
    magnitude = np.asarray(magnitude, dtype=np.float64)
    if magnitude.shape != mixture_spectrum.shape:
        raise ValueError(
            f"crn_resynthesize: magnitude shape {magnitude.shape} differs from the mixture's STFT "
            f"{mixture_spectrum.shape}"
        )
    phase = np.arctan2(mixture_spectrum.imag, mixture_spectrum.real)
    estimate = magnitude * np.cos(phase) + 1j * magnitude * np.sin(phase)
    return crn_istft(estimate, length=mixture.size, author_window_envelope=author_window_envelope)
