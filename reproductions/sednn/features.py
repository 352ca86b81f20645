"""sednn's exact STFT front-end and its inverse (numpy/scipy, no TensorFlow); spectrograms are (frames, bins).

Kong's Xu et al. code: ``scipy.signal.spectrogram`` with symmetric ``np.hamming(512)``, hop 256, default ``fs=1`` and
``scaling='density'`` (so X = rfft(frame * w) / sqrt(sum w^2)), no padding; log-magnitude ``log(|X| + 1e-8)``;
7-frame context with border-frame padding; inverse = mixture phase, conjugate mirror, ``real(ifft)``, overlap-add
divided by the summed analysis windows (+1e-15 per frame), then times sqrt(sum w^2).

References: docs/sednn.md#features, docs/sednn.md#inference, docs/sednn.md#porting.
"""
from __future__ import annotations

import numpy as np
import scipy.signal

from common.features import as_spectrogram, as_waveform

# sednn config.py: n_window = 512, n_overlap = 256 (docs/sednn.md#repository).
SEDNN_WINDOW_LENGTH = 512
SEDNN_HOP = 256
# prepare_data.py log_sp: np.log(x + 1e-08) (docs/sednn.md#features).
SEDNN_LOG_EPSILON = 1e-8


def sednn_window() -> np.ndarray:
    """Symmetric Hamming window of 512 samples (``np.hamming(512)``, as sednn's ``calc_sp``)."""
    return np.hamming(SEDNN_WINDOW_LENGTH)


def sednn_stft(signal, dtype=np.complex64) -> np.ndarray:
    """sednn ``calc_sp(audio, 'complex')``: complex (frames, 257), frames = (N - 512) // 256 + 1.

    Calls ``scipy.signal.spectrogram`` with sednn's arguments (the deprecated ``scipy.signal.spectral`` path is
    the same function). complex64 as sednn stores the mixture spectrum.
    """
    waveform = as_waveform(signal, "sednn_stft", SEDNN_WINDOW_LENGTH)
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
    spectrum = as_spectrogram(magnitude_or_complex, SEDNN_WINDOW_LENGTH // 2 + 1, "sednn_istft")
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
