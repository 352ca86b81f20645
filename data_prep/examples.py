"""Lazy examples and input checking shared by the mixture sets, the adapters and ``data_prep.mix``.

An example is cheap to create (paths, offsets, a seed) and loads its audio only in ``load()``, which returns
``(noisy, clean, noise)`` float32 arrays of equal length at 16 kHz. ``MixedExample`` mixes a speech file with a
noise file through a mixing function of ``common.mixing``; ``PairExample`` reads a noisy/clean pair from disk.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from common.audio import read_audio

SAMPLE_RATE = 16000
# Seed suffix of the augmentation draws, apart from the mixing draws of the same example.
AUGMENTATION_STREAM = 977

__all__ = ["MixedExample", "PairExample", "LevelExample", "SkipReport", "Listing", "check_audio_file", "load_audio"]


@functools.lru_cache(maxsize=256)
def _cached_read(path: str, sample_rate: int, resample: bool):
    signal, _ = read_audio(path, sample_rate=sample_rate, mono=True, resample=resample)
    signal.setflags(write=False)
    return signal


def load_audio(path, sample_rate=SAMPLE_RATE, resample=True) -> np.ndarray:
    """read_audio with a small cache (noise files are read once per set, not once per example); a copy is returned."""
    return np.array(_cached_read(str(path), int(sample_rate), bool(resample)), dtype=np.float32)


@dataclass
class MixedExample:
    """Speech + noise mixed on demand.

    Attributes:
        speech_path, noise_path: 16 kHz audio files (other rates are resampled by ``read_audio``).
        snr_db: requested SNR.
        mixer: callable ``(speech, noise, rng) -> common.mixing.Mixture`` (noise already cut to the speech length).
        seed: per-example seed; ``load()`` is deterministic.
        speech_start, speech_length: optional crop of the speech (samples; length None = to the end).
        noise_start: noise onset (samples) when the noise is longer than the speech; None = chosen by ``fit_noise``.
        fit_noise: callable ``(noise, length, rng) -> noise`` (``common.mixing.fit_noise_to_length``).
        crop: optional (start, length) applied to the three outputs after mixing (LibriMix-style segments).
        meta: speech, noise, noise_type, snr_db, split, speaker and protocol details.
        augmentation: optional ``common.mixing.Augmentation``: a new speaker before mixing (the crop is kept
            inside the perturbed speech) and a random mixture level after it, from a draw stream of its own so
            that an example without augmentation mixes exactly as before.
    """

    speech_path: str
    noise_path: str
    snr_db: float | None
    mixer: object
    seed: tuple
    fit_noise: object
    speech_start: int = 0
    speech_length: int | None = None
    noise_start: int | None = None
    crop: tuple | None = None
    meta: dict = field(default_factory=dict)
    augmentation: object = None

    def load(self):
        """Return (noisy, clean, noise) float32 arrays of equal length."""
        rng = np.random.default_rng(list(self.seed))
        augmentation_rng = np.random.default_rng(list(self.seed) + [AUGMENTATION_STREAM])
        speech = load_audio(self.speech_path)
        stop = None if self.speech_length is None else self.speech_start + self.speech_length
        speech = speech[self.speech_start:stop]
        if self.augmentation is not None:
            speech = self.augmentation.speech(speech, augmentation_rng)
        noise = load_audio(self.noise_path)
        length = speech.shape[0]
        if self.noise_start is not None and noise.shape[0] >= self.noise_start + length:
            noise = noise[self.noise_start:self.noise_start + length]
        else:
            noise = self.fit_noise(noise, length, rng)
        mixture = self.mixer(speech, noise, rng)
        noisy, clean, scaled_noise = mixture.mixture, mixture.speech, mixture.noise
        if self.crop is not None:
            start, size = self.crop
            start = max(0, min(start, noisy.shape[0] - size))
            # a speed-perturbed utterance can end before the segment does: zeros keep noisy == clean + noise
            noisy, clean, scaled_noise = (np.pad(array[start:start + size], (0, max(0, size - array.shape[0])))
                                          for array in (noisy, clean, scaled_noise))
        if self.augmentation is not None:
            noisy, clean, scaled_noise = self.augmentation.level(noisy, clean, scaled_noise, augmentation_rng)
        return (
            np.asarray(noisy, dtype=np.float32),
            np.asarray(clean, dtype=np.float32),
            np.asarray(scaled_noise, dtype=np.float32),
        )


@dataclass
class PairExample:
    """A noisy/clean pair on disk (VoiceBank-DEMAND, LibriMix ``mix_single``/``s1``, Fu's TIMIT folders ...).

    ``load()`` returns (noisy, clean, noise) with noise = noisy - clean, all cut to the shorter length
    (LibriMix ``min`` files are equal; VoiceBank pairs are equal by construction). ``crop`` = (start, length)
    selects a segment (LibriMix 3-s training segments).
    """

    noisy_path: str
    clean_path: str
    meta: dict = field(default_factory=dict)
    sample_rate: int = SAMPLE_RATE
    resample: bool = False
    crop: tuple | None = None

    def load(self):
        noisy, _ = read_audio(self.noisy_path, sample_rate=self.sample_rate, resample=self.resample)
        clean, _ = read_audio(self.clean_path, sample_rate=self.sample_rate, resample=self.resample)
        length = min(noisy.shape[0], clean.shape[0])
        noisy, clean = noisy[:length], clean[:length]
        if self.crop is not None:
            start, size = self.crop
            noisy, clean = noisy[start:start + size], clean[start:start + size]
        return noisy, clean, (noisy - clean).astype(np.float32)


@dataclass
class LevelExample:
    """Another example played at a fixed level: ``load()`` returns its (noisy, clean, noise) scaled by one gain
    that puts the mixture at ``level_dbfs`` RMS (lowered where the peak would pass 0.999)."""

    example: object
    level_dbfs: float

    @property
    def meta(self) -> dict:
        return {**getattr(self.example, "meta", {}), "level_dbfs": float(self.level_dbfs)}

    def load(self):
        from common.mixing import scale_to_level

        scaled, _ = scale_to_level(tuple(self.example.load()), self.level_dbfs)
        return scaled


class SkipReport:
    """Files left out with ``skip_bad=True``: ``count``, ``by_reason`` (Counter) and ``items`` [(path, reason)]."""

    def __init__(self):
        self.items: list[tuple[str, str]] = []

    def add(self, path, reason: str) -> None:
        self.items.append((str(path), reason))

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def by_reason(self) -> collections.Counter:
        return collections.Counter(reason for _, reason in self.items)

    def __str__(self) -> str:
        if not self.items:
            return "skipped 0 files"
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.by_reason.items()))
        return f"skipped {self.count} file(s): {reasons}"


class Listing(list):
    """A list of rows/examples with the ``SkipReport`` of what was left out (``.skipped``)."""

    def __init__(self, items=(), skipped=None):
        super().__init__(items)
        self.skipped = skipped if skipped is not None else SkipReport()


def problem_with_audio_file(path, sample_rate=SAMPLE_RATE, allow_resample=False):
    """Return (reason, info) where reason is None for a usable file; reads the header only (fast on big corpora).

    Reasons: ``missing``, ``corrupt``, ``empty``, ``wrong sample rate``.
    """
    path = Path(path)
    if not path.is_file():
        return "missing", None
    try:
        info = soundfile.info(str(path))
    except Exception as error:  # libsndfile raises different types for truncated or non-audio files
        return f"corrupt ({error})".replace("\n", " "), None
    if info.frames <= 0:
        return "empty", info
    if sample_rate is not None and int(info.samplerate) != int(sample_rate) and not allow_resample:
        return f"wrong sample rate ({info.samplerate} Hz, expected {sample_rate} Hz)", info
    return None, info


def check_audio_file(path, skipped=None, sample_rate=SAMPLE_RATE, allow_resample=False):
    """Header check of one file: returns soundfile's info, or None after recording the problem in ``skipped``.

    Raises:
        ValueError: naming the file and the problem, when ``skipped`` is None (the user did not ask to skip).
    """
    reason, info = problem_with_audio_file(path, sample_rate, allow_resample)
    if reason is None:
        return info
    if skipped is None:
        hint = " (pass skip_bad=True / --skip-bad to leave bad files out)"
        if reason.startswith("wrong sample rate"):
            hint = " (resample the corpus to 16 kHz or pass allow_resample=True)"
        raise ValueError(f"{path}: {reason}{hint}")
    skipped.add(path, reason.split(" (")[0])
    return None
