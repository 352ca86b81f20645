"""WSJ0 SI-84 with noise folders (CRN, Tan & Wang) and CHiME-2 track-2 pairs.

- WSJ0 SI-84 (CRN, docs/crn.md#data): ``<wsj0>/si_tr_s/<speaker>/<utt>.wav`` (the
  LDC ``.wv1`` files are shorten-compressed SPHERE: convert them with ``sph2pipe -f wav`` first); 6 speakers are
  held out as untrained test speakers (``test_unseen_voice``), a fraction of each trained speaker's utterances is
  the trained-speaker test (``test``) and validation. Training noises from one folder, test noises (CRN: babble and
  cafeteria) from another, which are the ``test_unseen_noise`` split.
- CHiME-2 track 2: ``<chime2-wsj0>/isolated/<subset>/*.wav`` (noisy, binaural, down-mixed when loaded) paired with
  ``<chime2-wsj0>/scaled/<subset>/*.wav`` (reverberant clean); subsets ``si_tr_s``, ``si_dt_05``, ``si_et_05``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from data_prep.adapters import audio_rows, list_audio, paired_folders, require_folder
from data_prep.corpus import ManifestCorpus
from data_prep.examples import Listing, SkipReport

__all__ = ["wsj0_si84_corpus", "chime2_pairs", "UNTRAINED_SPEAKERS"]

UNTRAINED_SPEAKERS = 6


def wsj0_si84_corpus(wsj0_root, noise_train_dir, noise_test_dir, test_speakers=None, test_fraction: float = 0.05,
                     valid_fraction: float = 0.05, seed: int = 0, skip_bad: bool = False,
                     allow_resample: bool = False) -> ManifestCorpus:
    """ManifestCorpus of SI-84 speech and the noise folders (see the module docstring for the splits).

    ``test_speakers``: the held-out speaker ids (default: ``UNTRAINED_SPEAKERS`` drawn with ``seed``; the paper's
    3 male + 3 female choice is not documented, pass it explicitly to match).
    """
    wsj0_root = require_folder(wsj0_root, "WSJ0 folder")
    si84 = wsj0_root / "si_tr_s" if (wsj0_root / "si_tr_s").is_dir() else wsj0_root
    compressed = sorted(si84.rglob("*.wv1"))
    files = list_audio(si84)
    if not files:
        hint = f" ({len(compressed)} .wv1 files: convert them with sph2pipe -f wav)" if compressed else ""
        raise ValueError(f"{si84}: no .wav files{hint}")
    skipped = SkipReport() if skip_bad else None
    speakers = sorted({path.parent.name for path in files})
    if test_speakers is None:
        count = min(UNTRAINED_SPEAKERS, max(1, len(speakers) // 2))
        test_speakers = sorted(np.random.default_rng([int(seed), 31]).choice(speakers, size=count, replace=False))
    unknown = set(test_speakers) - set(speakers)
    if unknown:
        raise ValueError(f"{si84}: test speaker(s) {sorted(unknown)} not found")
    held_out = set(test_speakers)

    def split_of(path: Path) -> str:
        if path.parent.name in held_out:
            return "test_unseen_voice"
        position = zlib.crc32(f"{seed}:{path.stem}".encode()) / 2 ** 32
        return "test" if position < test_fraction else "valid" if position < test_fraction + valid_fraction else "train"

    speech = []
    for path in files:
        speech += audio_rows([path], split_of(path), "speaker", lambda p: p.parent.name, skipped, allow_resample)
    noise_train_dir = require_folder(noise_train_dir, "training noise folder")
    noise_test_dir = require_folder(noise_test_dir, "test noise folder")

    def noise_type(root):
        return lambda path: path.relative_to(root).parent.as_posix() if path.parent != root else path.stem

    noise = []
    for path in list_audio(noise_train_dir):
        position = zlib.crc32(f"{seed}:noise:{path.name}".encode()) / 2 ** 32
        noise += audio_rows([path], "valid" if position < valid_fraction else "train", "noise_type",
                            noise_type(noise_train_dir), skipped, allow_resample)
    noise += audio_rows(list_audio(noise_test_dir), "test_unseen_noise", "noise_type", noise_type(noise_test_dir),
                        skipped, allow_resample)
    return ManifestCorpus(speech, noise, name=f"WSJ0 SI-84 {si84}", skipped=skipped or SkipReport())


def chime2_pairs(chime2_root, subset: str = "si_et_05", skip_bad: bool = False) -> Listing:
    """CHiME-2 track-2 ``isolated`` (noisy) vs ``scaled`` (clean) pairs of one subset, matched by relative path."""
    root = require_folder(chime2_root, "CHiME-2 folder")
    return paired_folders(root / "isolated" / subset, root / "scaled" / subset, skip_bad=skip_bad)
