"""Exact STFT front-ends of the seeds, with their inverses (numpy/scipy, no TensorFlow).

Spectrograms are (frames, bins), complex unless named otherwise.

* sednn (Kong's Xu et al. code): ``scipy.signal.spectrogram`` with symmetric ``np.hamming(512)``, hop 256, default
  ``fs=1`` and ``scaling='density'`` (so X = rfft(frame * w) / sqrt(sum w^2)), no padding; log-magnitude
  ``log(|X| + 1e-8)``; 7-frame context with border-frame padding; inverse = mixture phase, conjugate mirror,
  ``real(ifft)``, overlap-add divided by the summed analysis windows (+1e-15 per frame), then times sqrt(sum w^2).
* CRN (Tan & Wang's own code): Hamming 320 (symmetric), hop 160, FFT 320 -> 161 bins, 160 zeros of padding on
  both sides (frames = N // 160 + 1); inverse = irfft, overlap-add without synthesis window, divided by the
  summed analysis window, output (frames - 1) * 160 samples zero-padded to the input length; noisy-phase
  resynthesis.
* TF-GridNet upstream: ``torch.stft(n_fft=512, hop_length=256, window=hann_window(512)**0.5, center=True,
  pad_mode='reflect')`` (periodic Hann, not normalised, one-sided) and ``torch.istft`` with the same window
  (overlap-add of windowed irfft frames divided by the summed squared window, centre padding removed).

References: docs/sednn.md#features, docs/sednn.md#inference, docs/sednn.md#porting (sednn), docs/crn.md#signal (CRN),
docs/tfgridnet.md#model (TF-GridNet).
"""

from __future__ import annotations

import numpy as np
import scipy.signal

__all__ = [
    "SEDNN_WINDOW_LENGTH",
    "SEDNN_HOP",
    "SEDNN_LOG_EPSILON",
    "sednn_window",
    "sednn_stft",
    "sednn_log_magnitude",
    "sednn_pad_with_border",
    "sednn_context",
    "sednn_istft",
    "CRN_WINDOW_LENGTH",
    "CRN_HOP",
    "crn_window",
    "crn_stft",
    "crn_istft",
    "crn_resynthesize",
    "crn_frame_count",
    "TFGRIDNET_FFT_LENGTH",
    "TFGRIDNET_HOP",
    "tfgridnet_window",
    "tfgridnet_stft",
    "tfgridnet_istft",
    "tfgridnet_frame_count",
]

# sednn config.py: n_window = 512, n_overlap = 256 (docs/sednn.md#repository).
SEDNN_WINDOW_LENGTH = 512
SEDNN_HOP = 256
# prepare_data.py log_sp: np.log(x + 1e-08) (docs/sednn.md#features).
SEDNN_LOG_EPSILON = 1e-8
# CRN-causal configs.py: 20 ms / 10 ms at 16 kHz (docs/crn.md#signal).
CRN_WINDOW_LENGTH = 320
CRN_HOP = 160
# TF-GridNet upstream (Acceleration123/Speech-Enhancement) configure.toml [FFT]: 512 / 512 / 256
# (docs/tfgridnet.md#model).
TFGRIDNET_FFT_LENGTH = 512
TFGRIDNET_HOP = 256


def _as_waveform(signal, name: str, minimum: int) -> np.ndarray:
    array = np.asarray(signal, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D waveform, got shape {array.shape}")
    if array.size < minimum:
        raise ValueError(f"{name}: needs at least {minimum} samples, got {array.size}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: waveform contains NaN/Inf")
    return array


def _as_spectrogram(spec, bins: int, name: str) -> np.ndarray:
    array = np.asarray(spec)
    if array.ndim != 2 or array.shape[1] != bins:
        raise ValueError(f"{name}: expected a (frames, {bins}) spectrogram, got shape {array.shape}")
    return array


# ----------------------------------------------------------------------------------------------------- sednn
def sednn_window() -> np.ndarray:
    """Symmetric Hamming window of 512 samples (``np.hamming(512)``, as sednn's ``calc_sp``)."""
    return np.hamming(SEDNN_WINDOW_LENGTH)


def sednn_stft(signal, dtype=np.complex64) -> np.ndarray:
    """sednn ``calc_sp(audio, 'complex')``: complex (frames, 257), frames = (N - 512) // 256 + 1.

    Calls ``scipy.signal.spectrogram`` with sednn's arguments (the deprecated ``scipy.signal.spectral`` path is
    the same function). complex64 as sednn stores the mixture spectrum.
    """
    waveform = _as_waveform(signal, "sednn_stft", SEDNN_WINDOW_LENGTH)
    _, _, spectrum = scipy.signal.spectrogram(
        waveform,
        window=sednn_window(),
        nperseg=SEDNN_WINDOW_LENGTH,
        noverlap=SEDNN_WINDOW_LENGTH - SEDNN_HOP,
        detrend=False,
        return_onesided=True,
        mode="complex",
    )
    return spectrum.T.astype(dtype)


def sednn_log_magnitude(signal_or_spectrum) -> np.ndarray:
    """sednn ``log_sp``: ``log(|X| + 1e-8)`` as float32 (natural log of the magnitude, not the power).

    A 1-D input is a waveform (its :func:`sednn_stft` is taken); a 2-D input is a complex or magnitude spectrogram.
    """
    array = np.asarray(signal_or_spectrum)
    if array.ndim == 1:
        array = sednn_stft(array)
    elif array.ndim != 2:
        raise ValueError(f"sednn_log_magnitude: expected a waveform or a (frames, bins) array, got {array.shape}")
    return np.log(np.abs(array) + SEDNN_LOG_EPSILON).astype(np.float32)


def sednn_pad_with_border(frames, n_pad: int) -> np.ndarray:
    """sednn ``pad_with_border``: repeat the first and the last frame ``n_pad`` times."""
    frames = np.asarray(frames)
    return np.concatenate([frames[0:1]] * n_pad + [frames] + [frames[-1:]] * n_pad, axis=0)


def sednn_context(frames, n_concat: int = 7, hop: int = 1) -> np.ndarray:
    """sednn context windows: border padding by (n_concat-1)//2 frames, then ``mat_2d_to_3d(agg_num, hop)``.

    Returns (segments, n_concat, bins); segment i is centred on input frame ``i * hop``. hop=1 at inference (one
    output per frame), hop=3 when packing training data (runme.sh N_HOP=3). As ``mat_2d_to_3d``, fewer than
    ``n_concat`` frames after padding are zero-padded to one block.
    """
    frames = np.asarray(frames)
    if frames.ndim != 2 or frames.shape[0] == 0:
        raise ValueError(f"sednn_context: expected a non-empty (frames, bins) array, got {frames.shape}")
    if n_concat < 1 or hop < 1:
        raise ValueError(f"sednn_context: n_concat and hop must be >= 1, got {n_concat}, {hop}")
    padded = sednn_pad_with_border(frames, (n_concat - 1) // 2)
    if padded.shape[0] < n_concat:
        padded = np.concatenate([padded, np.zeros((n_concat - padded.shape[0], padded.shape[1]), padded.dtype)])
    starts = np.arange(0, padded.shape[0] - n_concat + 1, hop)
    return np.stack([padded[start:start + n_concat] for start in starts])


def sednn_istft(magnitude_or_complex, phase=None, length: int | None = None) -> np.ndarray:
    """sednn ``recover_wav`` followed by ``s *= sqrt(sum(hamming(512)^2))`` (main_dnn.py L255-257).

    Args:
        magnitude_or_complex: (frames, 257) magnitude (e.g. ``exp`` of the predicted log-magnitude) or complex
            spectrogram.
        phase: angles in radians, or a complex spectrogram whose angle is used (sednn uses the mixture's).
            Required with a real magnitude; with a complex input and no phase its own phase is kept.
        length: pad with zeros or truncate to this many samples (``pad_or_trunc``); default (frames-1)*256+512.

    Returns:
        float32 waveform.
    """
    spectrum = _as_spectrogram(magnitude_or_complex, SEDNN_WINDOW_LENGTH // 2 + 1, "sednn_istft")
    if phase is None:
        if not np.iscomplexobj(spectrum):
            raise ValueError("sednn_istft: a real magnitude needs a phase (angles or a complex spectrogram)")
        complex_spectrum = spectrum.astype(np.complex128)
    else:
        phase = np.asarray(phase)
        if phase.shape != spectrum.shape:
            raise ValueError(f"sednn_istft: phase shape {phase.shape} differs from magnitude shape {spectrum.shape}")
        theta = np.angle(phase) if np.iscomplexobj(phase) else phase
        complex_spectrum = np.abs(spectrum) * np.exp(1j * theta)
    whole = np.concatenate((complex_spectrum, np.fliplr(np.conj(complex_spectrum[:, 1:-1]))), axis=1)
    frames = np.real(np.fft.ifft(whole))
    n_frames = frames.shape[0]
    window = sednn_window()
    total = (n_frames - 1) * SEDNN_HOP + SEDNN_WINDOW_LENGTH
    signal = np.zeros(total)
    window_correction = np.zeros(total)
    for index in range(n_frames):
        start = index * SEDNN_HOP
        # + 1e-15 per frame exactly as python_speech_features' deframesig in sednn ("so it is never zero")
        window_correction[start:start + SEDNN_WINDOW_LENGTH] += window + 1e-15
        signal[start:start + SEDNN_WINDOW_LENGTH] += frames[index]
    signal = signal / window_correction
    signal *= np.sqrt(np.sum(window ** 2))
    if length is not None:
        signal = signal[:length] if signal.size >= length else np.concatenate([signal, np.zeros(length - signal.size)])
    return signal.astype(np.float32)


# ------------------------------------------------------------------------------------------------------- CRN
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
    waveform = _as_waveform(signal, "crn_stft", CRN_HOP)
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
    spectrum = _as_spectrogram(spec, CRN_WINDOW_LENGTH // 2 + 1, "crn_istft")
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
    mixture = _as_waveform(mixture, "crn_resynthesize mixture", CRN_HOP)
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


# ------------------------------------------------------------------------------------------------ TF-GridNet
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
    waveform = _as_waveform(signal, "tfgridnet_stft", TFGRIDNET_FFT_LENGTH // 2 + 1)
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
    spectrum = _as_spectrogram(spec, TFGRIDNET_FFT_LENGTH // 2 + 1, "tfgridnet_istft")
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
