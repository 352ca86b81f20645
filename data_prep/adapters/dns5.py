"""DNS Challenge 5 (Microsoft): clean and noise folders for on-the-fly mixing (TF-GridNet PL seed).

Layouts: the challenge's ``clean_fullband/<subset>/...wav`` (read speech: ``book_..._reader_<id>_..._seg_<n>.wav``)
and ``noise_fullband/...wav`` (48 kHz; the TF-GridNet upstream used a 16 kHz copy, ``DNS5_16k``), and pre-mixed pairs
written by the challenge's ``noisyspeech_synthesizer`` (``noisy/<...>_fileid_<n>.wav`` <->
``clean/clean_fileid_<n>.wav``). The TF-GridNet upstream's "DNS5 test set" needs clean references, so it is a synthetic
split: ``write_synthetic_test`` mixes held-out clean files with held-out noises (docs/tfgridnet.md#data).
"""

from __future__ import annotations

import csv
import re
import zlib
from pathlib import Path

from common.audio import write_audio
from data_prep.adapters import audio_rows, list_audio, paired_folders, require_folder
from data_prep.corpus import ManifestCorpus
from data_prep.examples import Listing, SkipReport

__all__ = ["dns5_corpus", "dns5_pairs", "write_synthetic_test", "file_id"]

_READER = re.compile(r"reader_(\d+)")
_FILE_ID = re.compile(r"fileid_(\d+)")


def _fraction(relative: str, seed: int) -> float:
    """Stable position in [0, 1) of a file (adding files to the corpus does not move the others)."""
    return zlib.crc32(f"{seed}:{relative}".encode()) / 2 ** 32


def dns5_corpus(clean_dir, noise_dir, valid_fraction: float = 0.02, test_fraction: float = 0.02, seed: int = 0,
                skip_bad: bool = False, allow_resample: bool = False) -> ManifestCorpus:
    """Speech split by reader (readers of the test fraction never in training) and noise split by file.

    Speech splits ``train``/``valid``/``test``; noise ``train``/``valid``/``test`` (``test_unseen_noise`` = ``test``
    files, whose noise is never trained on). Speaker = DNS reader id (or the parent folder name).
    """
    clean_dir = require_folder(clean_dir, "DNS clean folder")
    noise_dir = require_folder(noise_dir, "DNS noise folder")
    skipped = SkipReport() if skip_bad else None

    def speaker(path: Path) -> str:
        match = _READER.search(path.name)
        return f"reader_{match.group(1)}" if match else path.parent.name

    def split_of(key: str) -> str:
        position = _fraction(key, seed)
        return "test" if position < test_fraction else "valid" if position < test_fraction + valid_fraction else "train"

    speech_rows, noise_rows = [], []
    for path in list_audio(clean_dir):
        rows = audio_rows([path], split_of(speaker(path)), "speaker", speaker, skipped, allow_resample)
        speech_rows += rows
    for path in list_audio(noise_dir):
        relative = path.relative_to(noise_dir)
        split = split_of(relative.as_posix())
        noise_type = relative.parent.as_posix() if relative.parent != Path(".") else "dns_noise"
        rows = audio_rows([path], split, "noise_type", lambda _: noise_type, skipped, allow_resample)
        noise_rows += rows
        if split == "test":
            noise_rows += [dict(row, split="test_unseen_noise") for row in rows]
    return ManifestCorpus(speech_rows, noise_rows, name=f"DNS5 {clean_dir}", skipped=skipped or SkipReport())


def file_id(relative: Path) -> str:
    """The ``fileid_<n>`` key of the DNS synthesizer's file names (the whole name when absent)."""
    match = _FILE_ID.search(relative.name)
    return f"fileid_{match.group(1)}" if match else relative.as_posix()


def dns5_pairs(noisy_dir, clean_dir, skip_bad: bool = False, allow_resample: bool = False) -> Listing:
    """Noisy/clean pairs of the synthesizer output, matched by ``fileid_<n>``."""
    return paired_folders(noisy_dir, clean_dir, key=file_id, skip_bad=skip_bad, allow_resample=allow_resample)


def write_synthetic_test(corpus, out_dir, count: int | None = None, snr_range=(-5.0, 15.0), seed: int = 0) -> Listing:
    """Write a synthetic test split with clean references from the corpus' held-out speech and noise.

    Mixes with the TF-GridNet convention at SNR ~ U(snr_range) (``data_prep.paper_sets.tfgridnet_set``), writes
    ``out_dir/{noisy,clean,noise}/<...>_fileid_<n>.wav`` (float WAV, so levels above 1 are kept) and
    ``out_dir/manifest.csv``; returns the pairs (``dns5_pairs``).
    """
    from data_prep.paper_sets import tfgridnet_set

    out_dir = Path(out_dir)
    examples = tfgridnet_set(corpus, "test", snr_range=snr_range, seed=seed, max_items=count)
    rows = []
    for index, example in enumerate(examples):
        noisy, clean, noise = example.load()
        snr = example.meta["snr_db"]
        names = {
            "noisy": f"{Path(example.speech_path).stem}_snr{snr:.2f}_fileid_{index}.wav",
            "clean": f"clean_fileid_{index}.wav",
            "noise": f"noise_fileid_{index}.wav",
        }
        for kind, signal in (("noisy", noisy), ("clean", clean), ("noise", noise)):
            write_audio(out_dir / kind / names[kind], signal, 16000, subtype="FLOAT")
        rows.append({"fileid": index, "noisy": f"noisy/{names['noisy']}", "clean": f"clean/{names['clean']}",
                     "noise": f"noise/{names['noise']}", "snr_db": f"{snr:.4f}", "speech_source": example.speech_path,
                     "noise_source": example.noise_path})
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["fileid", "noisy", "clean", "noise", "snr_db", "speech_source", "noise_source"])
        writer.writeheader()
        writer.writerows(rows)
    return dns5_pairs(out_dir / "noisy", out_dir / "clean")
