"""TIMIT with noise folders: sednn's folders, the TIMIT tree, and Fu/ICSE's noisy ``<noise>/<snr>dB`` trees.

- sednn (docs/sednn.md#data): ``train_speech/*.WAV``, ``train_noise/*.wav``,
  ``test_speech/*.WAV``, ``test_noise/*.wav`` with TIMIT names ``TRAIN_DR1_FCJF0_SA1.WAV``.
- TIMIT (LDC93S1): ``TRAIN|TEST/DR<n>/<speaker>/<utterance>.WAV`` (NIST SPHERE headers, read by libsndfile).
- Fu/ICSE (docs/icse.md#data): ``<noisy_root>/<noise>/<snr>dB/<file>.wav`` with the clean file
  ``<clean_root>/<file>.wav``; SNR folders like ``-6dB``, ``n6dB`` (-6 dB), ``12dB``; ICSE drops ``-15db``/``-10db``.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

from data_prep.adapters import audio_rows, list_audio, require_folder
from data_prep.corpus import ManifestCorpus
from data_prep.examples import Listing, PairExample, SkipReport, check_audio_file

__all__ = ["sednn_folders_corpus", "timit_corpus", "fu_noisy_pairs", "parse_snr_folder"]

_SNR_FOLDER = re.compile(r"^(n|m|-)?(\d+(?:\.\d+)?)db$", re.IGNORECASE)


def parse_snr_folder(name: str) -> float | None:
    """``'-6dB'``/``'n6dB'``/``'m6dB'`` -> -6.0, ``'12dB'`` -> 12.0; None if the name is not an SNR folder."""
    match = _SNR_FOLDER.match(name)
    if not match:
        return None
    value = float(match.group(2))
    return -value if match.group(1) else value


def _timit_speaker(path: Path) -> str:
    parts = path.stem.split("_")
    return parts[2] if len(parts) >= 4 else path.parent.name


def _noise_type(root: Path):
    def label(path: Path) -> str:
        relative = path.relative_to(root)
        return relative.parent.as_posix() if relative.parent != Path(".") else path.stem
    return label


def sednn_folders_corpus(root, valid_fraction: float = 0.0, skip_bad: bool = False, allow_resample: bool = False,
                         seed: int = 0) -> ManifestCorpus:
    """sednn's four folders; ``valid_fraction`` of the training speakers go to ``valid``; test noise also serves
    as ``test_unseen_noise`` (sednn's test noises are NOISEX-92, not among its training noises)."""
    root = require_folder(root, "sednn data folder")
    skipped = SkipReport() if skip_bad else None
    speech, noise = [], []

    def train_split(path: Path) -> str:
        position = zlib.crc32(f"{seed}:{_timit_speaker(path)}".encode()) / 2 ** 32
        return "valid" if position < valid_fraction else "train"

    for path in list_audio(require_folder(root / "train_speech", "sednn train_speech folder")):
        speech += audio_rows([path], train_split(path), "speaker", _timit_speaker, skipped, allow_resample)
    speech += audio_rows(list_audio(require_folder(root / "test_speech")), "test", "speaker", _timit_speaker,
                         skipped, allow_resample)
    train_noise = require_folder(root / "train_noise", "sednn train_noise folder")
    noise += audio_rows(list_audio(train_noise), "train", "noise_type", _noise_type(train_noise), skipped, allow_resample)
    test_noise = require_folder(root / "test_noise", "sednn test_noise folder")
    test_rows = audio_rows(list_audio(test_noise), "test", "noise_type", _noise_type(test_noise), skipped, allow_resample)
    noise += test_rows + [dict(row, split="test_unseen_noise") for row in test_rows]
    return ManifestCorpus(speech, noise, name=f"sednn {root}", skipped=skipped or SkipReport())


def timit_corpus(timit_root, noise_train_dir, noise_test_dir, valid_fraction: float = 0.05, seed: int = 0,
                 skip_bad: bool = False, allow_resample: bool = False) -> ManifestCorpus:
    """TIMIT ``TRAIN`` (speaker-disjoint ``valid_fraction`` to ``valid``) and ``TEST`` speakers, plus training and
    test noise folders (noise type = sub-folder, or the file stem in a flat folder)."""
    timit_root = require_folder(timit_root, "TIMIT folder")
    parts = {child.name.upper(): child for child in timit_root.iterdir() if child.is_dir()}
    if "TRAIN" not in parts or "TEST" not in parts:
        raise ValueError(f"{timit_root}: expected TRAIN and TEST folders (TIMIT layout TRAIN/DR1/FCJF0/SA1.WAV)")
    skipped = SkipReport() if skip_bad else None

    def speaker(path: Path) -> str:
        return path.parent.name.upper()

    def train_split(path: Path) -> str:
        position = zlib.crc32(f"{seed}:{speaker(path)}".encode()) / 2 ** 32
        return "valid" if position < valid_fraction else "train"

    speech = []
    for path in list_audio(parts["TRAIN"]):
        speech += audio_rows([path], train_split(path), "speaker", speaker, skipped, allow_resample)
    speech += audio_rows(list_audio(parts["TEST"]), "test", "speaker", speaker, skipped, allow_resample)
    if not speech:
        raise ValueError(f"{timit_root}: no audio files found under TRAIN/ and TEST/")
    noise_train_dir = require_folder(noise_train_dir, "training noise folder")
    noise_test_dir = require_folder(noise_test_dir, "test noise folder")
    noise = audio_rows(list_audio(noise_train_dir), "train", "noise_type", _noise_type(noise_train_dir), skipped, allow_resample)
    test_rows = audio_rows(list_audio(noise_test_dir), "test", "noise_type", _noise_type(noise_test_dir), skipped, allow_resample)
    noise += test_rows + [dict(row, split="test_unseen_noise") for row in test_rows]
    return ManifestCorpus(speech, noise, name=f"TIMIT {timit_root}", skipped=skipped or SkipReport())


def fu_noisy_pairs(noisy_root, clean_root, skip_bad: bool = False, exclude_snr_folders=("-15db", "-10db"),
                   allow_resample: bool = False) -> Listing:
    """Fu/ICSE noisy tree ``<noise>/<snr>dB/<file>.wav`` (also ``<noise>/<speaker>/<snr>dB/<file>.wav``) paired with
    ``<clean_root>/<file>.wav`` (or the same sub-path under ``clean_root``). Meta: noise_type, snr_db, name."""
    noisy_root = require_folder(noisy_root, "noisy folder")
    clean_root = require_folder(clean_root, "clean folder")
    excluded = {name.lower() for name in exclude_snr_folders}
    skipped = SkipReport() if skip_bad else None
    pairs = []
    for path in list_audio(noisy_root):
        relative = path.relative_to(noisy_root)
        snr_folder = relative.parent.name
        snr = parse_snr_folder(snr_folder)
        if snr is None or len(relative.parts) < 3:
            problem = "not in a <noise>/<snr>dB/ folder"
            if skipped is None:
                raise ValueError(f"{path}: {problem} (Fu layout <noise>/<snr>dB/<file>.wav)")
            skipped.add(path, problem)
            continue
        if snr_folder.lower() in excluded:
            continue
        candidates = [clean_root / path.name, clean_root / Path(*relative.parts[1:-2], path.name)]
        clean = next((candidate for candidate in candidates if candidate.is_file()), None)
        if clean is None:
            if skipped is None:
                raise ValueError(f"{path}: no clean file {candidates[0]} (pass skip_bad=True to leave it out)")
            skipped.add(path, "no clean pair")
            continue
        if check_audio_file(path, skipped, allow_resample=allow_resample) is None:
            continue
        if check_audio_file(clean, skipped, allow_resample=allow_resample) is None:
            continue
        meta = {"name": relative.as_posix(), "noise_type": relative.parts[0], "snr_db": snr, "clean": str(clean)}
        pairs.append(PairExample(str(path), str(clean), meta=meta, resample=allow_resample))
    return Listing(pairs, skipped if skipped is not None else SkipReport())
