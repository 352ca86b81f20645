"""Corpus manifests: reading, split access, summaries and errors."""

import pytest

from data_prep.corpus import Corpus, ManifestCorpus, ensure_mini_corpus, read_manifest, write_manifest
from tests.conftest import TINY_CORPUS_OPTIONS


def test_corpus_rows_and_summary(mini_corpus):
    train = mini_corpus.speech("train")
    assert train == sorted(train, key=lambda row: row["path"])
    assert all(row["split"] == "train" and row["duration"] > 0 for row in train)
    summary = mini_corpus.summary()
    hours = sum(row["duration"] for row in train) / 3600
    assert summary["speech"]["train"]["hours"] == pytest.approx(hours, abs=1e-4)
    assert summary["noise"]["test_unseen_noise"]["noise_types"] == mini_corpus.noise_types("test_unseen_noise")
    with pytest.raises(ValueError, match="unknown speech split"):
        mini_corpus.speech("dev")
    with pytest.raises(ValueError, match="unknown noise split"):
        mini_corpus.noise("test_unseen_voice")


def test_ensure_mini_corpus_reuses_a_current_build(mini_corpus_root):
    corpus = ensure_mini_corpus(data_dir=mini_corpus_root.parent, quiet=True, **TINY_CORPUS_OPTIONS)
    assert isinstance(corpus, Corpus) and corpus.root == mini_corpus_root


def test_manifest_round_trip_and_errors(tmp_path):
    rows = [{"path": "a.wav", "duration": 1.5, "samples": 24000, "speaker": "x", "split": "train", "sha256": "", "source": ""}]
    write_manifest(tmp_path / "speech.csv", rows, ["path", "duration", "samples", "speaker", "split", "sha256", "source"])
    read = read_manifest(tmp_path / "speech.csv")
    assert read[0]["path"] == str(tmp_path / "a.wav") and read[0]["samples"] == 24000 and read[0]["duration"] == 1.5
    (tmp_path / "bad.csv").write_text("path,split\na.wav,train\n")
    with pytest.raises(ValueError, match=r"bad\.csv: manifest lacks column"):
        read_manifest(tmp_path / "bad.csv")
    (tmp_path / "worse.csv").write_text("path,duration,split\na.wav,long,train\n")
    with pytest.raises(ValueError, match=r"worse\.csv: line 2"):
        read_manifest(tmp_path / "worse.csv")
    with pytest.raises(ValueError, match="does not exist"):
        Corpus(tmp_path / "nothing")
    corpus = ManifestCorpus(rows, [])
    assert corpus.speech("train")[0]["samples"] == 24000 and corpus.noise("train") == []
