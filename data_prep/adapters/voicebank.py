"""VoiceBank-DEMAND (Valentini-Botinhao et al.): paired ``clean_*_wav`` / ``noisy_*_wav`` folders.

Layout as distributed: ``clean_testset_wav/p232_001.wav`` <-> ``noisy_testset_wav/p232_001.wav`` (824 test pairs),
``clean_trainset_28spk_wav`` / ``noisy_trainset_28spk_wav`` (or ``_56spk``) for training. The release is 48 kHz:
resample to 16 kHz beforehand or pass ``allow_resample=True`` (files are then resampled when loaded).
"""

from __future__ import annotations

import re
from pathlib import Path

from data_prep.adapters import paired_folders, require_folder
from data_prep.examples import Listing

__all__ = ["voicebank_pairs"]


def voicebank_pairs(root, split: str = "test", skip_bad: bool = False, allow_resample: bool = False) -> Listing:
    """Listing of ``PairExample`` (meta: name, speaker) for ``split`` ``test`` or ``train``."""
    root = require_folder(root, "VoiceBank-DEMAND folder")
    if split == "test":
        clean, noisy = root / "clean_testset_wav", root / "noisy_testset_wav"
    elif split == "train":
        candidates = [(root / f"clean_trainset_{n}spk_wav", root / f"noisy_trainset_{n}spk_wav") for n in (28, 56)]
        clean, noisy = next((pair for pair in candidates if pair[0].is_dir()), candidates[0])
    else:
        raise ValueError(f"voicebank_pairs: unknown split {split!r}; expected 'test' or 'train'")

    def speaker(noisy_path: Path, clean_path: Path) -> dict:
        match = re.match(r"(p\d+)_", clean_path.name)
        return {"speaker": match.group(1) if match else ""}

    return paired_folders(noisy, clean, skip_bad=skip_bad, allow_resample=allow_resample, meta_of=speaker)
