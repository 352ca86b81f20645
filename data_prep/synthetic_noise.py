"""Generated noises of the mini corpus: white, pink, brown, speech-shaped noise and babble (numpy only).

- white/pink/brown: Gaussian noise whose power spectral density falls as f^0, f^-1, f^-2 (NOISEX-92 has white and
  pink; sednn's test set lists both, docs/sednn.md#metric).
- speech-shaped noise: Gaussian noise filtered to the long-term average spectrum (LTAS) of the training speech.
- babble: the sum of several talkers, each a chain of utterances at equal RMS (CRN tests on babble,
  docs/crn.md#data).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

LTAS_FFT = 512

__all__ = ["colored_noise", "speech_power_spectrum", "speech_shaped_noise", "babble", "LTAS_FFT"]

_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def colored_noise(kind: str, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with PSD proportional to f^-beta (white 0, pink 1, brown 2), zero mean, peak 0.9."""
    if kind not in _EXPONENTS:
        raise ValueError(f"colored_noise: unknown kind {kind!r}; expected one of {sorted(_EXPONENTS)}")
    spectrum = rng.standard_normal(samples // 2 + 1) + 1j * rng.standard_normal(samples // 2 + 1)
    frequency = np.arange(samples // 2 + 1, dtype=np.float64)
    frequency[0] = 1.0
    spectrum *= frequency ** (-_EXPONENTS[kind] / 2.0)
    spectrum[0] = 0.0
    signal = np.fft.irfft(spectrum, n=samples)
    return (0.9 * signal / np.max(np.abs(signal))).astype(np.float32)


def speech_power_spectrum(signal, active_db: float = 40.0) -> tuple[np.ndarray, int]:
    """Sum of the power spectra of the active frames (within ``active_db`` of the loudest) and the frame count.

    Hann window, LTAS_FFT points, hop LTAS_FFT/2; pause frames are left out so that silences do not flatten the
    long-term spectrum.
    """
    signal = np.asarray(signal, dtype=np.float64)
    hop = LTAS_FFT // 2
    if signal.shape[0] < LTAS_FFT:
        return np.zeros(LTAS_FFT // 2 + 1), 0
    count = 1 + (signal.shape[0] - LTAS_FFT) // hop
    index = np.arange(LTAS_FFT)[None, :] + hop * np.arange(count)[:, None]
    frames = signal[index] * np.hanning(LTAS_FFT)[None, :]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(axis=1)
    active = energy >= energy.max() * 10.0 ** (-active_db / 10.0)
    return power[active].sum(axis=0), int(active.sum())


def speech_shaped_noise(ltas: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise filtered by a linear-phase FIR whose magnitude is sqrt(LTAS) (LTAS_FFT taps); peak 0.9."""
    ltas = np.asarray(ltas, dtype=np.float64)
    if ltas.shape != (LTAS_FFT // 2 + 1,) or not np.all(np.isfinite(ltas)) or ltas.max() <= 0:
        raise ValueError(f"speech_shaped_noise: expected a positive LTAS of {LTAS_FFT // 2 + 1} bins")
    impulse = np.fft.irfft(np.sqrt(ltas), n=LTAS_FFT)
    impulse = np.roll(impulse, LTAS_FFT // 2) * np.hanning(LTAS_FFT)
    white = rng.standard_normal(samples + LTAS_FFT)
    signal = fftconvolve(white, impulse, mode="full")[LTAS_FFT:LTAS_FFT + samples]
    return (0.9 * signal / np.max(np.abs(signal))).astype(np.float32)


def babble(utterances, samples: int, talkers: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of ``talkers`` streams; each stream chains randomly chosen utterances (RMS-normalised) from a random
    offset. Utterances are float arrays; peak 0.9."""
    if len(utterances) < 2:
        raise ValueError("babble: needs at least 2 utterances")
    normalised = [u / np.sqrt(np.mean(np.square(u, dtype=np.float64))) for u in utterances if np.any(u)]
    total = np.zeros(samples, dtype=np.float64)
    for _ in range(talkers):
        pieces, length = [], 0
        while length < samples + 16000:
            piece = normalised[int(rng.integers(len(normalised)))]
            pieces.append(piece)
            length += piece.shape[0]
        stream = np.concatenate(pieces)
        start = int(rng.integers(0, stream.shape[0] - samples))
        total += stream[start:start + samples]
    return (0.9 * total / np.max(np.abs(total))).astype(np.float32)
