"""Audio input/output and level helpers shared by every reproduction (numpy only, no TensorFlow).

Signals are float32 numpy arrays of shape (samples,) (mono) or (samples, channels), the layout soundfile uses.
Bad input raises ``ValueError`` naming the file (or the signal's name) and the problem, so that a corrupt file in a
corpus of thousands is found at once instead of showing up as a NaN loss hours later. Down-mixing by the channel
mean follows sednn's ``read_audio``.

Files are written through a temporary file in the destination folder renamed over the target, so an interrupted
or failed write never leaves a half-written file or destroys an existing one. ``read_input`` is the reader of
``enhance``: besides the checks of ``read_audio`` it refuses input below :data:`LEVEL_FLOOR_DBFS` and returns one
line for every change it makes to the file's content (down-mix, channel choice, resampling) or finds in it
(clipped samples, a header announcing more frames than the file holds).

References:
    docs/sednn.md#repository (sednn reads with soundfile and down-mixes by the channel mean).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import struct
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
# Recorded speech sits near -20 to -35 dBFS RMS and a quiet room near -60; below -70 a file holds only dither, and
# a model that normalises its input level would blow that up to full scale.
LEVEL_FLOOR_DBFS = -70.0

__all__ = [
    "CLIP_THRESHOLD",
    "CLIP_MIN_SAMPLES",
    "LEVEL_FLOOR_DBFS",
    "read_audio",
    "read_input",
    "write_audio",
    "output_format",
    "check_writable",
    "announced_frames",
    "level_dbfs",
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


def _read_file(path: Path):
    """(samples, channels) float32 and the file's rate; ValueError naming the file when it is missing, unreadable
    or empty."""
    if not path.is_file():
        raise ValueError(f"{path}: audio file does not exist")
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError/RuntimeError/TypeError depending on the damage
        raise ValueError(f"{path}: unreadable or corrupt audio file ({error})") from error
    if data.shape[0] == 0:
        raise ValueError(f"{path}: empty audio file (0 samples)")
    return data, file_rate


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
    data, file_rate = _read_file(path)
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


def output_format(path) -> str:
    """The soundfile format (``WAV``, ``FLAC``, ...) that the extension of ``path`` selects.

    Raises:
        ValueError: naming the path when soundfile cannot write files with that extension (``.txt``, none).
    """
    path = Path(path)
    writable = sorted(name for name in soundfile.available_formats() if name != "RAW")
    extension = path.suffix[1:].upper()
    if extension not in writable:
        raise ValueError(f"{path}: cannot write audio with the extension {path.suffix or '(none)'!r}; "
                         f"use one of {', '.join('.' + name.lower() for name in writable)}")
    return extension


def check_writable(path) -> None:
    """Check, without leaving anything behind, that an audio file can be created at ``path``.

    The nearest existing folder above ``path`` must be a folder in which a file can be created (a probe file is
    made and removed: permission bits do not tell for root or for /proc).

    Raises:
        ValueError: naming the path for an extension soundfile cannot write, a path that is an existing folder,
            a parent that is a file, or a folder in which no file can be created.
    """
    path = Path(path)
    output_format(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not an output file path")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{path}: cannot be written, {folder} is a file, not a folder")
    probe = folder / f".{path.name}.{secrets.token_hex(4)}.probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as error:
        raise ValueError(f"{path}: cannot be written, no file can be created in {folder} "
                         f"({error.strerror or error})") from error
    os.unlink(probe)


def write_audio(path, signal, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write ``signal`` (float, (samples,) or (samples, channels)) creating parent folders; PCM_16 by default.

    The format follows the extension (``.wav``, ``.flac``, ...); a format without ``subtype`` (Ogg Vorbis) gets its
    own default. The samples go to a temporary file in the destination folder that is then renamed over ``path``.

    NaN/Inf raise ValueError (they would be written as garbage); values beyond +-1 are clipped by the PCM
    conversion and reported with a logging warning. A write that fails raises ValueError naming ``path`` and
    leaves an existing file there untouched.
    """
    path = Path(path)
    array = np.asarray(signal, dtype=np.float32)
    if array.size and not np.isfinite(array).all():
        raise ValueError(f"{path}: refusing to write a signal containing NaN/Inf")
    file_format = output_format(path)
    if not soundfile.check_format(file_format, subtype):
        subtype = soundfile.default_subtype(file_format)
    if subtype.startswith("PCM") and array.size:
        over = int(np.count_nonzero(np.abs(array) > 1.0))
        if over:
            logger.warning("%s: %d sample(s) beyond +-1 will be clipped by %s", path, over, subtype)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not an output file path")
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.partial"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created with the usual mode (0666 less the umask) so that the renamed file gets it too.
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        soundfile.write(str(temporary), array, int(sample_rate), subtype=subtype, format=file_format)
        os.replace(temporary, path)
    except (OSError, RuntimeError, TypeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"{path}: cannot write ({error})") from error
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def announced_frames(path) -> int | None:
    """Frames that a WAV file's ``data`` chunk header announces (``None`` for other formats or an open-ended size).

    libsndfile silently shortens a WAV whose header announces more data than the file holds; comparing this
    number with the frames read finds such truncated files.
    """
    try:
        with open(path, "rb") as handle:
            header = handle.read(12)
            if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = handle.read(8)
                if len(chunk) < 8:
                    return None
                chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if chunk_id == b"fmt ":
                    body = handle.read(size)
                    if len(body) < 14:
                        return None
                    block_align = struct.unpack("<H", body[12:14])[0]
                    handle.seek(size % 2, os.SEEK_CUR)
                elif chunk_id == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    handle.seek(size + size % 2, os.SEEK_CUR)
    except OSError:
        return None


def level_dbfs(signal) -> float:
    """RMS level in dB relative to a full-scale (amplitude 1) signal; ``-inf`` for all zeros.

    The squares are summed in float64 one block at a time, so a long file costs no float64 copy of itself.
    """
    array = np.asarray(signal).reshape(-1)
    if array.size == 0:
        raise ValueError("level_dbfs: empty signal")
    block = 1 << 20
    energy = sum(float(np.dot(part, part)) for part in
                 (array[start: start + block].astype(np.float64) for start in range(0, array.size, block)))
    return 10.0 * math.log10(energy / array.size) if energy > 0 else -math.inf


def read_input(path, sample_rate: int, channel: int | None = None,
               level_floor_dbfs: float = LEVEL_FLOOR_DBFS) -> tuple[np.ndarray, list[str]]:
    """Read one input of ``enhance``: mono float32 at ``sample_rate``, and one line per change or defect found.

    Args:
        path: the audio file.
        sample_rate: the model's rate; a file at another rate is resampled to it. ``None`` keeps the file's rate.
        channel: for multi-channel files, the channel to use (1 = the first); ``None`` takes the channel mean.
        level_floor_dbfs: input whose RMS level (after the channel choice or down-mix) is below this is refused.

    Returns:
        (signal, notices): ``notices`` are short sentences such as ``"resampled from 8000 Hz to 16000 Hz"``.

    Raises:
        ValueError: naming the file for what ``read_audio`` refuses, a ``channel`` the file does not have, and a
            level below ``level_floor_dbfs`` (the measured level is in the message).
    """
    path = Path(path)
    data, file_rate = _read_file(path)
    finite = np.isfinite(data)
    if not finite.all():
        raise ValueError(f"{path}: signal contains {int(data.size - np.count_nonzero(finite))} NaN/Inf sample(s)")
    notices = []
    announced = announced_frames(path)
    if announced is not None and announced > data.shape[0]:
        notices.append(f"truncated file: its header announces {announced} frames, it holds {data.shape[0]} "
                       f"({data.shape[0] / file_rate:.2f} s enhanced)")
    channels = data.shape[1]
    source = ""
    if channel is not None:
        if not 1 <= int(channel) <= channels:
            raise ValueError(f"{path}: --channel {channel} asked, the file has {channels} channel(s)")
        signal = data[:, int(channel) - 1]
        if channels > 1:
            source = f" (channel {int(channel)} of {channels})"
            notices.append(f"used channel {int(channel)} of {channels}")
    elif channels > 1:
        signal = to_mono(data)
        source = f" (mean of {channels} channels)"
        notices.append(f"down-mixed {channels} channels to their mean (--channel N picks one)")
    else:
        signal = data[:, 0]
    level = level_dbfs(signal)
    if level < level_floor_dbfs:
        described = "silent (all zeros)" if level == -math.inf else f"level {level:.1f} dBFS RMS"
        raise ValueError(f"{path}: {described}{source} is below the {level_floor_dbfs:g} dBFS floor; "
                         "near-silent input is refused, enhancing it would only amplify noise")
    clipped = count_clipped(signal)
    if clipped >= CLIP_MIN_SAMPLES:
        notices.append(f"{clipped} sample(s) ({100.0 * clipped / signal.size:.3f} %) at |x| >= {CLIP_THRESHOLD}: "
                       "the input is probably clipped")
    if sample_rate is not None and int(sample_rate) != int(file_rate):
        signal = _resample_signal(signal, file_rate, int(sample_rate))
        notices.append(f"resampled from {int(file_rate)} Hz to {int(sample_rate)} Hz (the model's rate)")
    return np.ascontiguousarray(signal, dtype=np.float32), notices


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
