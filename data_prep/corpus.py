"""Speech/noise corpora as manifests: the embedded mini corpus and any corpus an adapter lists.

A corpus is two manifests of rows ``dict(path, duration, samples, speaker | noise_type, split, sha256, source)``
(speech rows may add ``sex``, ``f`` or ``m``, empty when unknown):
speech splits ``train``, ``valid``, ``test``, ``test_unseen_voice`` and noise splits ``train``, ``valid``, ``test``,
``test_unseen_noise``. ``Corpus(root)`` reads the CSV manifests that ``data_prep.build_mini`` writes;
``ManifestCorpus`` holds rows built in memory by the adapters (TIMIT, WSJ0, DNS5 ...), so the per-paper mixture sets
in ``data_prep.paper_sets`` accept either.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

SPEECH_SPLITS = ("train", "valid", "test", "test_unseen_voice")
NOISE_SPLITS = ("train", "valid", "test", "test_unseen_noise")
SPEECH_COLUMNS = ("path", "duration", "samples", "speaker", "split", "sha256", "source", "sex")
NOISE_COLUMNS = ("path", "duration", "samples", "noise_type", "split", "sha256", "source")
SAMPLE_RATE = 16000

__all__ = [
    "SPEECH_SPLITS",
    "NOISE_SPLITS",
    "SPEECH_COLUMNS",
    "NOISE_COLUMNS",
    "Corpus",
    "ManifestCorpus",
    "ensure_mini_corpus",
    "read_manifest",
    "write_manifest",
    "sha256_file",
]


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(path, rows, columns) -> Path:
    """Write manifest rows (dicts) as CSV with the given column order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def read_manifest(path, root=None) -> list[dict]:
    """Read a manifest CSV; relative paths are resolved against ``root`` (default: the CSV's folder)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: manifest does not exist")
    root = Path(root) if root is not None else path.parent
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"path", "duration", "split"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: manifest lacks column(s) {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                row["duration"] = float(row["duration"])
                row["samples"] = int(row["samples"]) if row.get("samples") else int(round(row["duration"] * SAMPLE_RATE))
            except ValueError as error:
                raise ValueError(f"{path}: line {line}: bad duration/samples ({error})") from error
            file_path = Path(row["path"])
            row["relative_path"] = row["path"]
            row["path"] = str(file_path if file_path.is_absolute() else root / file_path)
            rows.append(row)
    return rows


class ManifestCorpus:
    """A corpus held as in-memory manifest rows (what the adapters return).

    Args:
        speech_rows: dicts with at least ``path``, ``duration``, ``speaker``, ``split``.
        noise_rows: dicts with at least ``path``, ``duration``, ``noise_type``, ``split``.
        name: label used in messages.
        skipped: optional ``data_prep.examples.SkipReport`` of files left out while listing.
    """

    def __init__(self, speech_rows, noise_rows, name="corpus", skipped=None):
        self.name = name
        self._speech = [dict(row) for row in speech_rows]
        self._noise = [dict(row) for row in noise_rows]
        for row in self._speech + self._noise:
            row.setdefault("samples", int(round(float(row["duration"]) * SAMPLE_RATE)))
        self.skipped = skipped

    def speech(self, split: str) -> list[dict]:
        """Speech rows of one split (sorted by path), a fresh list of fresh dicts."""
        if split not in SPEECH_SPLITS:
            raise ValueError(f"{self.name}: unknown speech split {split!r}; expected one of {SPEECH_SPLITS}")
        return sorted((dict(row) for row in self._speech if row["split"] == split), key=lambda row: row["path"])

    def noise(self, split: str) -> list[dict]:
        """Noise rows of one split (sorted by path)."""
        if split not in NOISE_SPLITS:
            raise ValueError(f"{self.name}: unknown noise split {split!r}; expected one of {NOISE_SPLITS}")
        return sorted((dict(row) for row in self._noise if row["split"] == split), key=lambda row: row["path"])

    def speakers(self, split: str | None = None) -> list[str]:
        rows = self._speech if split is None else self.speech(split)
        return sorted({row["speaker"] for row in rows})

    def noise_types(self, split: str | None = None) -> list[str]:
        rows = self._noise if split is None else self.noise(split)
        return sorted({row["noise_type"] for row in rows})

    def hours(self, split: str) -> float:
        return sum(row["duration"] for row in self.speech(split)) / 3600.0

    def summary(self) -> dict:
        """Hours of speech, speakers and noise types per split."""
        return {
            "speech": {
                split: {
                    "files": len(self.speech(split)),
                    "hours": round(self.hours(split), 4),
                    "speakers": self.speakers(split),
                    "speaker_sex": {row["speaker"]: row.get("sex") or "?" for row in self.speech(split)},
                }
                for split in SPEECH_SPLITS
            },
            "noise": {
                split: {
                    "files": len(self.noise(split)),
                    "minutes": round(sum(row["duration"] for row in self.noise(split)) / 60.0, 3),
                    "noise_types": self.noise_types(split),
                }
                for split in NOISE_SPLITS
            },
        }


class Corpus(ManifestCorpus):
    """A corpus on disk: ``root/speech.csv`` and ``root/noise.csv`` (paths relative to ``root``)."""

    def __init__(self, root):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"{self.root}: corpus folder does not exist (build it with python -m data_prep.build_mini)")
        speech = read_manifest(self.root / "speech.csv", self.root)
        noise = read_manifest(self.root / "noise.csv", self.root)
        super().__init__(speech, noise, name=str(self.root))


def ensure_mini_corpus(data_dir="data", **options) -> Corpus:
    """Build the embedded mini corpus into ``data_dir/mini`` if it is missing or stale, and open it.

    ``options`` are passed to ``data_prep.build_mini.build_mini_corpus`` (seed, max_prompts, ...).
    """
    from data_prep.build_mini import build_mini_corpus

    root = build_mini_corpus(data_dir=data_dir, **options)
    return Corpus(root)
