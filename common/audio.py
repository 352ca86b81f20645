"""Audio input/output and level helpers shared by every reproduction (numpy only, no TensorFlow).

Signals are float32 numpy arrays of shape (samples,) (mono) or (samples, channels), the layout soundfile uses.
Bad input raises ``ValueError`` naming the file (or the signal's name) and the problem, so that a corrupt file in a
corpus of thousands is found at once instead of showing up as a NaN loss hours later.

References:
    docs/sednn.md#repository (sednn reads with soundfile and down-mixes by the channel mean).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

logger = logging.getLogger(__name__)

# |x| at or above this is treated as a clipped sample; 0.999 leaves room for the PCM_16 rounding of a full-scale
# sample (32767/32768 = 0.99997) while still catching float files that were clipped at +-1 before being written.
CLIP_THRESHOLD = 0.999
# A single full-scale sample is often a legitimate peak-normalised signal; many of them mean clipping.
CLIP_MIN_SAMPLES = 10

__all__ = [
    "CLIP_THRESHOLD",
    "CLIP_MIN_SAMPLES",
    "read_audio",
    "write_audio",
    "resample",
    "to_mono",
    "peak_normalize",
    "rms",
    "rms_normalize",
    "validate_signal",
    "count_clipped",
]


def validate_signal(signal, name: str = "signal") -> np.ndarray:
    """Return ``signal`` as a numpy array after checking that it can be processed.

    Raises:
        ValueError: naming ``name`` when the signal is not numeric, empty, contains NaN/Inf, or is all zeros.
    """
    array = np.asarray(signal)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected a real numeric signal, got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{name}: empty signal (0 samples)")
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        raise ValueError(f"{name}: signal contains {bad} NaN/Inf sample(s)")
    if not np.any(array):
        raise ValueError(f"{name}: all-zero (silent) signal of {array.shape[0]} samples")
    return array


def count_clipped(signal, threshold: float = CLIP_THRESHOLD) -> int:
    """Number of samples with ``|x| >= threshold``."""
    return int(np.count_nonzero(np.abs(np.asarray(signal)) >= threshold))


def _report_clipping(signal: np.ndarray, name: str) -> None:
    clipped = count_clipped(signal)
    if clipped >= CLIP_MIN_SAMPLES:
        fraction = 100.0 * clipped / signal.size
        logger.warning(
            "%s: %d sample(s) (%.3f %%) at |x| >= %.3f, the signal is probably clipped",
            name, clipped, fraction, CLIP_THRESHOLD,
        )


def to_mono(signal) -> np.ndarray:
    """Down-mix (samples, channels) to (samples,) by the channel mean, as sednn's ``read_audio``; 1-D is kept."""
    array = np.asarray(signal)
    if array.ndim == 1:
        return array
    if array.ndim != 2:
        raise ValueError(f"to_mono: expected shape (samples,) or (samples, channels), got {array.shape}")
    return array.mean(axis=1).astype(array.dtype if array.dtype.kind == "f" else np.float32)


def resample(signal, original_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``, Kaiser window) along the sample axis; float32 out.

    A rational ratio up/down reduced by the gcd keeps the filter exact for the common 8/16/22.05/44.1/48 kHz rates.
    """
    original_rate, target_rate = int(original_rate), int(target_rate)
    if original_rate <= 0 or target_rate <= 0:
        raise ValueError(f"resample: sample rates must be positive, got {original_rate} -> {target_rate}")
    array = np.asarray(signal, dtype=np.float64)
    if original_rate == target_rate:
        return array.astype(np.float32)
    divisor = math.gcd(original_rate, target_rate)
    up, down = target_rate // divisor, original_rate // divisor
    return resample_poly(array, up, down, axis=0).astype(np.float32)


# read_audio's ``resample`` flag shadows the function inside it.
_resample_signal = resample


def read_audio(path, sample_rate: int | None = None, mono: bool = True, resample: bool = True):
    """Read an audio file with soundfile.

    Args:
        path: file to read.
        sample_rate: wanted rate; ``None`` keeps the file's rate.
        mono: down-mix to (samples,) by the channel mean; otherwise (samples, channels) is returned.
        resample: when the file's rate differs from ``sample_rate``, resample (True) or raise (False).

    Returns:
        (signal float32, sample_rate int).

    Raises:
        ValueError: naming the file for a missing/unreadable/corrupt file, an empty, all-zero or NaN/Inf signal,
            or an unexpected sample rate with ``resample=False``. Clipping is reported with a logging warning.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise ValueError(f"{name}: audio file does not exist")
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError/RuntimeError/TypeError depending on the damage
        raise ValueError(f"{name}: unreadable or corrupt audio file ({error})") from error
    if data.shape[0] == 0:
        raise ValueError(f"{name}: empty audio file (0 samples)")
    signal = to_mono(data) if mono else data
    validate_signal(signal, name)
    _report_clipping(signal, name)
    if sample_rate is not None and int(sample_rate) != int(file_rate):
        if not resample:
            raise ValueError(
                f"{name}: sample rate {file_rate} Hz, expected {int(sample_rate)} Hz (resampling is off)"
            )
        signal = _resample_signal(signal, file_rate, int(sample_rate))
        file_rate = int(sample_rate)
    return np.ascontiguousarray(signal, dtype=np.float32), int(file_rate)


def write_audio(path, signal, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write ``signal`` (float, (samples,) or (samples, channels)) creating parent folders; PCM_16 by default.

    NaN/Inf raise ValueError (they would be written as garbage); values beyond +-1 are clipped by the PCM
    conversion and reported with a logging warning.
    """
    path = Path(path)
    array = np.asarray(signal, dtype=np.float32)
    if array.size and not np.isfinite(array).all():
        raise ValueError(f"{path}: refusing to write a signal containing NaN/Inf")
    if subtype.startswith("PCM") and array.size:
        over = int(np.count_nonzero(np.abs(array) > 1.0))
        if over:
            logger.warning("%s: %d sample(s) beyond +-1 will be clipped by %s", path, over, subtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), array, int(sample_rate), subtype=subtype)
    return path


def rms(signal) -> float:
    """Root mean square over the whole signal (silences included, as sednn's ``rms``)."""
    array = np.asarray(signal, dtype=np.float64)
    if array.size == 0:
        raise ValueError("rms: empty signal")
    return float(np.sqrt(np.mean(array ** 2)))


def peak_normalize(signal, peak: float = 1.0) -> np.ndarray:
    """Scale so that max|x| equals ``peak``; an all-zero signal raises ValueError."""
    array = validate_signal(signal, "peak_normalize input").astype(np.float64)
    return (array * (peak / np.max(np.abs(array)))).astype(np.float32)


def rms_normalize(signal, target_rms: float = 1.0) -> np.ndarray:
    """Scale so that the RMS equals ``target_rms``; an all-zero signal raises ValueError."""
    array = validate_signal(signal, "rms_normalize input").astype(np.float64)
    return (array * (target_rms / rms(array))).astype(np.float32)
