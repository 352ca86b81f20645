"""Generated noises of the mini corpus: white, pink, brown, speech-shaped noise and babble (numpy only).

- white/pink/brown: Gaussian noise whose power spectral density falls as f^0, f^-1, f^-2 (NOISEX-92 has white and
  pink; sednn's test set lists both, docs/sednn.md#metric).
- speech-shaped noise: Gaussian noise filtered to the long-term average spectrum (LTAS) of the training speech.
- babble: the sum of several talkers, each a chain of utterances at equal RMS (CRN tests on babble,
  docs/crn.md#data).
- non-stationary noises (real backgrounds change over time; a stationary noise teaches a model to subtract a
  fixed floor): amplitude-modulated pink noise, bursts of noise, a mains hum with harmonics over a noise floor,
  and keyboard-like clicks (short decaying resonant impulses at random intervals).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

LTAS_FFT = 512

__all__ = [
    "colored_noise",
    "speech_power_spectrum",
    "speech_shaped_noise",
    "babble",
    "modulated_noise",
    "noise_bursts",
    "mains_hum",
    "keyboard_clicks",
    "NONSTATIONARY_NOISES",
    "LTAS_FFT",
]

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


def _peak_normalised(signal: np.ndarray) -> np.ndarray:
    return (0.9 * signal / np.max(np.abs(signal))).astype(np.float32)


def _check_length(samples: int, name: str) -> int:
    samples = int(samples)
    if samples < 1600:
        raise ValueError(f"{name}: needs at least 1600 samples (0.1 s), got {samples}")
    return samples


def modulated_noise(samples: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Pink noise times a slow random envelope: a sinusoid of 0.3-4 Hz (drawn) with a depth of 0.5-0.95."""
    samples = _check_length(samples, "modulated_noise")
    rate = rng.uniform(0.3, 4.0)
    depth = rng.uniform(0.5, 0.95)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    time = np.arange(samples) / sample_rate
    envelope = 1.0 + depth * np.sin(2.0 * np.pi * rate * time + phase)
    return _peak_normalised(colored_noise("pink", samples, rng).astype(np.float64) * envelope)


def noise_bursts(samples: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """White-noise bursts of 50-400 ms with 20-ms raised-cosine edges, 0.5-3 per second, over a floor 30 dB down."""
    samples = _check_length(samples, "noise_bursts")
    signal = 10.0 ** (-30.0 / 20.0) * rng.standard_normal(samples)
    count = max(1, int(round(rng.uniform(0.5, 3.0) * samples / sample_rate)))
    edge = int(0.02 * sample_rate)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
    for _ in range(count):
        length = min(samples, int(rng.uniform(0.05, 0.4) * sample_rate))
        start = int(rng.integers(0, samples - length + 1))
        shape = np.ones(length)
        ramp_length = min(edge, length // 2)
        shape[:ramp_length] = ramp[:ramp_length]
        shape[length - ramp_length:] = ramp[:ramp_length][::-1]
        signal[start:start + length] += rng.uniform(0.3, 1.0) * shape * rng.standard_normal(length)
    return _peak_normalised(signal)


def mains_hum(samples: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """A 50- or 60-Hz hum with harmonics up to 1 kHz (amplitudes falling as 1/k with random phases, a slow 10 %
    amplitude wobble) over brown noise 25 dB below it."""
    samples = _check_length(samples, "mains_hum")
    base = 50.0 if rng.random() < 0.5 else 60.0
    time = np.arange(samples) / sample_rate
    hum = np.zeros(samples)
    for harmonic in range(1, int(1000 // base) + 1):
        hum += np.sin(2.0 * np.pi * base * harmonic * time + rng.uniform(0, 2 * np.pi)) / harmonic
    hum *= 1.0 + 0.1 * np.sin(2.0 * np.pi * rng.uniform(0.1, 0.5) * time)
    floor = colored_noise("brown", samples, rng).astype(np.float64)
    floor *= np.sqrt(np.mean(hum ** 2) / np.mean(floor ** 2)) * 10.0 ** (-25.0 / 20.0)
    return _peak_normalised(hum + floor)


def keyboard_clicks(samples: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Typing: clicks at 3-10 per second (exponential gaps), each a 2-5 kHz resonance decaying in 5-20 ms with a
    noise onset, over a floor 40 dB down."""
    samples = _check_length(samples, "keyboard_clicks")
    signal = 10.0 ** (-40.0 / 20.0) * rng.standard_normal(samples)
    rate = rng.uniform(3.0, 10.0)
    position = int(rng.exponential(sample_rate / rate))
    length = int(0.06 * sample_rate)
    time = np.arange(length) / sample_rate
    while position < samples:
        decay = rng.uniform(0.005, 0.02)
        click = np.exp(-time / decay) * (np.sin(2 * np.pi * rng.uniform(2000, 5000) * time)
                                         + 0.5 * rng.standard_normal(length))
        end = min(samples, position + length)
        signal[position:end] += rng.uniform(0.3, 1.0) * click[:end - position]
        position += max(int(0.03 * sample_rate), int(rng.exponential(sample_rate / rate)))
    return _peak_normalised(signal)


NONSTATIONARY_NOISES = {
    "modulated": modulated_noise,
    "bursts": noise_bursts,
    "hum": mains_hum,
    "keyboard": keyboard_clicks,
}
