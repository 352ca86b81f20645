"""Checks shared by the reproductions' exact STFT front-ends, each in the reproduction it belongs to
(``reproductions.sednn.features``, ``reproductions.crn.features``, ``reproductions.tfgridnet.features``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_waveform", "as_spectrogram"]


def as_waveform(signal, name: str, minimum: int) -> np.ndarray:
    """``signal`` as a float64 1-D waveform of at least ``minimum`` finite samples; ValueError naming ``name``."""
    array = np.asarray(signal, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D waveform, got shape {array.shape}")
    if array.size < minimum:
        raise ValueError(f"{name}: needs at least {minimum} samples, got {array.size}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: waveform contains NaN/Inf")
    return array


def as_spectrogram(spec, bins: int, name: str) -> np.ndarray:
    """``spec`` as a (frames, ``bins``) array; ValueError naming ``name`` otherwise."""
    array = np.asarray(spec)
    if array.ndim != 2 or array.shape[1] != bins:
        raise ValueError(f"{name}: expected a (frames, {bins}) spectrogram, got shape {array.shape}")
    return array
