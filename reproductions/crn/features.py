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
# Frames per FFT block (41 s of audio): a long file's float64 temporaries stay a few tens of MB instead of growing
# with its length (whole-file spectra of a 10-minute file take about 1 GB).
BLOCK_FRAMES = 4096


def crn_window() -> np.ndarray:
    """Symmetric Hamming window of 320 samples (``scipy.hamming(320)`` in the author's stft.py)."""
    return np.hamming(CRN_WINDOW_LENGTH)


def crn_frame_count(num_samples: int) -> int:
    """``countFrames`` of the CRN code: N // 160 + 1 (padding win - hop = 160 on both sides)."""
    return int(num_samples) // CRN_HOP + 1


def _analysis_frames(waveform: np.ndarray) -> np.ndarray:
    """The STFT's frames (N // 160 + 1, 320) as a strided view of the zero-padded waveform (no copy)."""
    pad = CRN_WINDOW_LENGTH - CRN_HOP
    padded = np.pad(waveform, (pad, pad))
    return np.lib.stride_tricks.sliding_window_view(padded, CRN_WINDOW_LENGTH)[::CRN_HOP]


def _spectrum_blocks(frames: np.ndarray):
    """``(first frame, complex128 spectrum)`` of consecutive blocks of :data:`BLOCK_FRAMES` analysis frames."""
    window = crn_window()
    for start in range(0, len(frames), BLOCK_FRAMES):
        yield start, np.fft.rfft(frames[start:start + BLOCK_FRAMES] * window, axis=1)


def crn_stft(signal, dtype=np.complex64) -> np.ndarray:
    """CRN author's STFT: complex (N // 160 + 1, 161).

    The author computes it as ``conv1d`` with Hamming-windowed DFT kernels, stride 160 and ``padding=160`` zeros on
    both sides, i.e. X_t[k] = sum_n x[t*160 - 160 + n] w[n] exp(-2 pi i k n / 320).
    """
    frames = _analysis_frames(as_waveform(signal, "crn_stft", CRN_HOP))
    spectrum = np.empty((len(frames), CRN_WINDOW_LENGTH // 2 + 1), dtype)
    for start, block in _spectrum_blocks(frames):
        spectrum[start:start + len(block)] = block
    return spectrum


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
    blocks = ((start, spectrum[start:start + BLOCK_FRAMES].astype(np.complex128))
              for start in range(0, n_frames, BLOCK_FRAMES))
    return _overlap_add(blocks, n_frames, length, author_window_envelope)


def _overlap_add(blocks, n_frames: int, length: int | None, author_window_envelope: bool) -> np.ndarray:
    """:func:`crn_istft` from ``(first frame, complex128 spectrum)`` blocks in frame order."""
    if n_frames < 2:
        raise ValueError(f"crn_istft: needs at least 2 frames (the author's code asserts it), got {n_frames}")
    pad = CRN_WINDOW_LENGTH - CRN_HOP
    total = (n_frames - 1) * CRN_HOP + CRN_WINDOW_LENGTH
    signal = np.zeros(total)
    for start, block in blocks:
        frames = np.fft.irfft(block, n=CRN_WINDOW_LENGTH, axis=1)
        for index, frame in enumerate(frames, start=start):
            signal[index * CRN_HOP:index * CRN_HOP + CRN_WINDOW_LENGTH] += frame
    signal = signal[pad:total - pad]
    if author_window_envelope:
        envelope = _crn_author_window_envelope(n_frames)
    else:
        seg = crn_window()[:CRN_HOP] + crn_window()[CRN_HOP:]
        envelope = np.tile(seg, n_frames - 1)
    envelope += np.finfo(np.float32).eps
    signal /= envelope  # in place: a long file's float64 copies are what bound its memory
    del envelope
    size = signal.size if length is None else int(length)
    output = np.zeros(size, np.float32)
    output[:min(size, signal.size)] = signal[:size]
    return output


def crn_resynthesize(magnitude, mixture, author_window_envelope: bool = True) -> np.ndarray:
    """CRN ``Resynthesizer``: estimated magnitude with the noisy phase ``atan2(imag, real)`` of the mixture's STFT,
    inverse STFT, zero-padded to the mixture length."""
    mixture = as_waveform(mixture, "crn_resynthesize mixture", CRN_HOP)
    frames = _analysis_frames(mixture)
    expected = (len(frames), CRN_WINDOW_LENGTH // 2 + 1)
    magnitude = np.asarray(magnitude)
    if magnitude.shape != expected:
        raise ValueError(
            f"crn_resynthesize: magnitude shape {magnitude.shape} differs from the mixture's STFT {expected}"
        )

    def estimate_blocks():
        for start, spectrum in _spectrum_blocks(frames):
            phase = np.arctan2(spectrum.imag, spectrum.real)
            block = magnitude[start:start + len(spectrum)].astype(np.float64)
            yield start, block * np.cos(phase) + 1j * block * np.sin(phase)

    return _overlap_add(estimate_blocks(), len(frames), mixture.size, author_window_envelope)
