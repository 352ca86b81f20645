"""LibriMix (Cosentino et al.): Libri2Mix 16 kHz ``min``, ``mix_single`` (s1 + WHAM noise) vs ``s1`` (FQSE).

LibriMix's ``create_librimix_from_metadata.py`` writes ``Libri2Mix/wav16k/min/<subset>/{mix_single,s1,s2,noise}/
<mixture_ID>.wav`` and ``Libri2Mix/wav16k/min/metadata/mixture_<subset>_mix_single.csv`` with the columns
``mixture_ID, [original_mixture_ID,] mixture_path, source_1_path, noise_path, length`` (absolute paths of the
machine that generated it). Subsets: ``train-360``, ``train-100``, ``dev``, ``test`` (3000 test mixtures,
docs/fqse.md#data). When the corpus was moved, paths are looked up under the local folder.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from data_prep.adapters import require_folder
from data_prep.examples import Listing, PairExample, SkipReport, check_audio_file

REQUIRED_COLUMNS = ("mixture_ID", "mixture_path", "source_1_path", "noise_path", "length")

__all__ = ["librimix_pairs", "find_mode_folder", "REQUIRED_COLUMNS"]


def find_mode_folder(root, n_src: int = 2, sample_rate: str = "16k", mode: str = "min") -> Path:
    """The ``wav16k/min`` folder from the LibriMix storage dir, ``Libri2Mix`` or the folder itself."""
    root = require_folder(root, "LibriMix folder")
    for candidate in (root / f"Libri{n_src}Mix" / f"wav{sample_rate}" / mode, root / f"wav{sample_rate}" / mode, root):
        if (candidate / "metadata").is_dir():
            return candidate
    raise ValueError(f"{root}: no LibriMix metadata folder (expected Libri{n_src}Mix/wav{sample_rate}/{mode}/metadata)")


def _local(path_text: str, folder: Path, subset: str, kind: str, mixture_id: str) -> Path:
    path = Path(path_text)
    if path.is_file():
        return path
    return folder / subset / kind / f"{mixture_id}.wav"


def librimix_pairs(root, subset: str = "test", n_src: int = 2, sample_rate: str = "16k", mode: str = "min",
                   skip_bad: bool = False, segment_seconds: float | None = None, seed: int = 0) -> Listing:
    """Listing of ``PairExample`` (noisy = ``mix_single``, clean = ``s1``; meta: mixture_ID, noise, length).

    ``segment_seconds`` (training): mixtures shorter than a segment are dropped, as asteroid's LibriMix dataset
    does, the others get a random segment drawn from ``seed``. ``load()`` returns noise = mix_single - s1, which is
    the stored noise, so ``data_prep.paper_sets.fqse_augment`` can re-mix it.
    """
    folder = find_mode_folder(root, n_src, sample_rate, mode)
    metadata = folder / "metadata" / f"mixture_{subset}_mix_single.csv"
    if not metadata.is_file():
        raise ValueError(f"{metadata}: LibriMix metadata CSV does not exist (subset {subset!r})")
    skipped = SkipReport() if skip_bad else None
    rng = np.random.default_rng([int(seed), 21])
    segment = None if segment_seconds is None else int(round(float(segment_seconds) * 16000))
    pairs = []
    with open(metadata, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{metadata}: missing LibriMix column(s) {missing}; found {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            mixture_id = row["mixture_ID"]
            noisy = _local(row["mixture_path"], folder, subset, "mix_single", mixture_id)
            clean = _local(row["source_1_path"], folder, subset, "s1", mixture_id)
            noise = _local(row["noise_path"], folder, subset, "noise", mixture_id)
            infos = [check_audio_file(path, skipped) for path in (noisy, clean)]
            if None in infos:
                continue
            length = int(float(row["length"]))
            if any(info.frames != length for info in infos):
                problem = f"length {infos[0].frames}/{infos[1].frames} samples, metadata line {line} says {length}"
                if skipped is None:
                    raise ValueError(f"{noisy}: {problem}")
                skipped.add(noisy, "length mismatch")
                continue
            crop = None
            if segment is not None:
                if length < segment:
                    continue
                crop = (int(rng.integers(0, length - segment + 1)), segment)
            meta = {"name": mixture_id, "mixture_ID": mixture_id, "noise": str(noise), "length": length, "subset": subset}
            pairs.append(PairExample(str(noisy), str(clean), meta=meta, crop=crop))
    return Listing(pairs, skipped if skipped is not None else SkipReport())
