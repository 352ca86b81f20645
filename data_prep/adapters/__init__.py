"""Adapters: the papers' corpora in the layouts their users have on disk, as manifests or paired examples.

- ``timit``: TIMIT + noise folders (sednn's ``train_speech/train_noise/test_speech/test_noise``, Fu/ICSE's
  ``<noise>/<snr>dB/<file>.wav`` noisy trees).
- ``librimix``: Libri2Mix 16 kHz ``min`` ``mix_single`` vs ``s1`` from LibriMix's metadata CSVs (FQSE).
- ``dns5``: DNS Challenge 5 clean/noise folders for on-the-fly mixing, pre-mixed pairs, a synthetic test split.
- ``wsj0_chime2``: WSJ0 SI-84 with noise folders (CRN) and CHiME-2 track-2 ``isolated``/``scaled`` pairs.
- ``voicebank``: VoiceBank-DEMAND ``clean_testset_wav``/``noisy_testset_wav`` pairs.

Corpus-style adapters return ``data_prep.corpus.ManifestCorpus`` (usable by every set of ``data_prep.paper_sets``);
pair-style adapters return a ``Listing`` of ``PairExample``. Problems (missing folder, clean file without its noisy
pair, wrong sample rate, corrupt or empty file) raise ``ValueError`` naming the file, or with ``skip_bad=True`` are
counted in ``.skipped`` (``SkipReport``: count and reasons).
"""

from __future__ import annotations

from pathlib import Path

from data_prep.examples import Listing, PairExample, SkipReport, check_audio_file

AUDIO_EXTENSIONS = (".wav", ".flac")

__all__ = ["require_folder", "list_audio", "audio_rows", "paired_folders", "AUDIO_EXTENSIONS"]


def require_folder(path, what: str = "folder") -> Path:
    """Return ``path`` as a Path, or raise ValueError naming it when it is not a directory."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: {what} does not exist")
    return path


def list_audio(folder, extensions=AUDIO_EXTENSIONS) -> list[Path]:
    """Audio files under ``folder`` (recursive, case-insensitive extension), sorted."""
    folder = require_folder(folder)
    wanted = tuple(extension.lower() for extension in extensions)
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in wanted)


def audio_rows(files, split: str, label_key: str, label_of, skipped: SkipReport | None, allow_resample=False,
               sample_rate=16000) -> list[dict]:
    """Manifest rows for ``files`` after a header check; ``label_of(path)`` gives the speaker or noise type."""
    rows = []
    for path in files:
        info = check_audio_file(path, skipped, sample_rate=sample_rate, allow_resample=allow_resample)
        if info is None:
            continue
        rows.append({
            "path": str(path),
            "duration": info.frames / info.samplerate,
            # samples after resampling to 16 kHz: what read_audio will return
            "samples": int(round(info.frames * sample_rate / info.samplerate)),
            label_key: label_of(path),
            "split": split,
            "sha256": "",
            "source": str(path),
        })
    return rows


def paired_folders(noisy_dir, clean_dir, key=None, skip_bad=False, allow_resample=False, meta_of=None,
                   extensions=AUDIO_EXTENSIONS) -> Listing:
    """Pair files of two folders by ``key(path relative to its folder)`` (default: the relative path itself).

    Every clean file needs its noisy partner (and vice versa); both must pass the header check.
    """
    noisy_dir = require_folder(noisy_dir, "noisy folder")
    clean_dir = require_folder(clean_dir, "clean folder")
    key = key or (lambda relative: relative.as_posix())
    skipped = SkipReport() if skip_bad else None
    noisy = {key(path.relative_to(noisy_dir)): path for path in list_audio(noisy_dir, extensions)}
    clean = {key(path.relative_to(clean_dir)): path for path in list_audio(clean_dir, extensions)}
    pairs = []
    for name in sorted(set(noisy) | set(clean)):
        if name not in noisy or name not in clean:
            lonely = clean.get(name) or noisy.get(name)
            reason = "no noisy pair" if name in clean else "no clean pair"
            if skipped is None:
                partner = noisy_dir if name in clean else clean_dir
                raise ValueError(f"{lonely}: {reason} in {partner} (pass skip_bad=True / --skip-bad to leave it out)")
            skipped.add(lonely, reason)
            continue
        noisy_info = check_audio_file(noisy[name], skipped, allow_resample=allow_resample)
        clean_info = check_audio_file(clean[name], skipped, allow_resample=allow_resample) if noisy_info else None
        if noisy_info is None or clean_info is None:
            continue
        meta = {"name": name, "noisy": str(noisy[name]), "clean": str(clean[name])}
        if meta_of is not None:
            meta.update(meta_of(noisy[name], clean[name]))
        pairs.append(PairExample(str(noisy[name]), str(clean[name]), meta=meta, resample=allow_resample))
    return Listing(pairs, skipped if skipped is not None else SkipReport())
