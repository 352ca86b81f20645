"""Adapters on small fixtures written in the real folder layouts and file names, plus bad-input handling."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from data_prep.adapters.dns5 import dns5_corpus, dns5_pairs, write_synthetic_test
from data_prep.adapters.librimix import librimix_pairs
from data_prep.adapters.timit import fu_noisy_pairs, parse_snr_folder, sednn_folders_corpus, timit_corpus
from data_prep.adapters.voicebank import voicebank_pairs
from data_prep.adapters.wsj0_chime2 import chime2_pairs, wsj0_si84_corpus
from data_prep.mix import main as mix_main
from data_prep.paper_sets import crn_set, fcn_set, sednn_set, tfgridnet_set
from tests.corpus_trees import dns_fixture, librimix_fixture, sednn_fixture, timit_fixture, tone, write, wsj0_fixture

REPOSITORY = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------ VoiceBank


def voicebank_fixture(root, names=("p232_001", "p232_002", "p257_001"), rate=16000):
    for index, name in enumerate(names):
        clean = tone(index, rate=rate)
        write(root / "clean_testset_wav" / f"{name}.wav", clean, rate)
        write(root / "noisy_testset_wav" / f"{name}.wav", clean + tone(index + 10, rate=rate) * 0.5, rate)
    return root


def test_voicebank_pairs(tmp_path):
    pairs = voicebank_pairs(voicebank_fixture(tmp_path))
    assert [pair.meta["name"] for pair in pairs] == ["p232_001.wav", "p232_002.wav", "p257_001.wav"]
    assert [pair.meta["speaker"] for pair in pairs] == ["p232", "p232", "p257"]
    noisy, clean, noise = pairs[0].load()
    expected_clean, _ = soundfile.read(tmp_path / "clean_testset_wav" / "p232_001.wav", dtype="float32")
    np.testing.assert_allclose(clean, expected_clean)
    np.testing.assert_allclose(noisy - clean, noise, atol=1e-7)
    assert pairs.skipped.count == 0


def test_voicebank_clean_without_noisy_pair(tmp_path):
    voicebank_fixture(tmp_path)
    (tmp_path / "noisy_testset_wav" / "p232_002.wav").unlink()
    with pytest.raises(ValueError, match=r"p232_002\.wav: no noisy pair"):
        voicebank_pairs(tmp_path)
    pairs = voicebank_pairs(tmp_path, skip_bad=True)
    assert len(pairs) == 2 and pairs.skipped.count == 1 and pairs.skipped.by_reason == {"no noisy pair": 1}


def test_voicebank_48k_needs_resampling(tmp_path):
    voicebank_fixture(tmp_path, names=("p232_001",), rate=48000)
    with pytest.raises(ValueError, match=r"p232_001\.wav: wrong sample rate \(48000 Hz"):
        voicebank_pairs(tmp_path)
    pairs = voicebank_pairs(tmp_path, allow_resample=True)
    noisy, clean, _ = pairs[0].load()
    assert noisy.shape == clean.shape == (8000,)


def test_corrupt_and_empty_files_are_named_or_counted(tmp_path):
    voicebank_fixture(tmp_path)
    (tmp_path / "clean_testset_wav" / "p232_002.wav").write_bytes(b"RIFF garbage, not audio")
    write(tmp_path / "noisy_testset_wav" / "p257_001.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"p232_002\.wav: corrupt"):
        voicebank_pairs(tmp_path)
    pairs = voicebank_pairs(tmp_path, skip_bad=True)
    assert len(pairs) == 1
    assert pairs.skipped.by_reason == {"corrupt": 1, "empty": 1}
    assert "skipped 2 file(s)" in str(pairs.skipped)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"noisy_testset_wav: noisy folder does not exist"):
        voicebank_pairs(tmp_path)
    with pytest.raises(ValueError, match="absent: VoiceBank-DEMAND folder does not exist"):
        voicebank_pairs(tmp_path / "absent")


# ------------------------------------------------------------------------------------------------ LibriMix


@pytest.mark.parametrize("moved", [False, True])
def test_librimix_pairs_from_metadata(tmp_path, moved):
    pairs = librimix_pairs(librimix_fixture(tmp_path, moved), subset="test")
    assert [pair.meta["mixture_ID"] for pair in pairs] == ["61-70968-0000_8455-210777-0012", "121-121726-0000_4446-2271-0003"]
    noisy, clean, noise = pairs[1].load()
    stored_noise, _ = soundfile.read(pairs[1].meta["noise"], dtype="float32")
    assert noisy.shape == (32000,)
    np.testing.assert_allclose(noise, stored_noise, atol=1e-4)  # mix_single = s1 + noise (PCM_16 rounding)
    segments = librimix_pairs(tmp_path, subset="test", segment_seconds=1.5)
    assert len(segments) == 1 and segments[0].load()[0].shape == (24000,)


def test_librimix_missing_metadata_and_columns(tmp_path):
    librimix_fixture(tmp_path)
    with pytest.raises(ValueError, match=r"mixture_dev_mix_single\.csv: LibriMix metadata CSV does not exist"):
        librimix_pairs(tmp_path, subset="dev")
    metadata = tmp_path / "Libri2Mix" / "wav16k" / "min" / "metadata" / "mixture_test_mix_single.csv"
    metadata.write_text("mixture_ID,mixture_path\nx,y\n")
    with pytest.raises(ValueError, match="missing LibriMix column"):
        librimix_pairs(tmp_path)


# ------------------------------------------------------------------------------------------------ DNS5


def test_dns5_corpus_splits_and_on_the_fly_mixing(tmp_path):
    dns_fixture(tmp_path)
    corpus = dns5_corpus(tmp_path / "clean_fullband", tmp_path / "noise_fullband", valid_fraction=0.2,
                         test_fraction=0.2, seed=0)
    speakers = {split: set(corpus.speakers(split)) for split in ("train", "valid", "test")}
    assert speakers["train"] and speakers["test"] and not speakers["train"] & speakers["test"]
    noise_files = {split: {row["path"] for row in corpus.noise(split)} for split in ("train", "test")}
    assert noise_files["test"] and not noise_files["train"] & noise_files["test"]
    examples = tfgridnet_set(corpus, "train", seed=0)
    assert len(examples) == len(corpus.speech("train"))
    _, clean, noise = examples[0].load()
    measured = 10 * np.log10(np.var(clean.astype(np.float64)) / np.var(noise.astype(np.float64)))
    assert abs(measured - examples[0].meta["snr_db"]) < 0.1
    again = dns5_corpus(tmp_path / "clean_fullband", tmp_path / "noise_fullband", valid_fraction=0.2, test_fraction=0.2)
    assert again.speech("test") == corpus.speech("test")


def test_dns5_synthetic_test_and_pairs(tmp_path):
    dns_fixture(tmp_path / "dns")
    corpus = dns5_corpus(tmp_path / "dns" / "clean_fullband", tmp_path / "dns" / "noise_fullband",
                         valid_fraction=0.2, test_fraction=0.3)
    pairs = write_synthetic_test(corpus, tmp_path / "synthetic", count=3, seed=0)
    assert len(pairs) == 3
    with open(tmp_path / "synthetic" / "manifest.csv") as handle:
        manifest = list(csv.DictReader(handle))
    for pair, row in zip(pairs, manifest):
        noisy, clean, noise = pair.load()
        measured = 10 * np.log10(np.var(clean.astype(np.float64)) / np.var(noise.astype(np.float64)))
        assert abs(measured - float(row["snr_db"])) < 0.1
    (tmp_path / "synthetic" / "clean" / "clean_fileid_1.wav").unlink()
    with pytest.raises(ValueError, match=r"fileid_1\.wav: no clean pair"):
        dns5_pairs(tmp_path / "synthetic" / "noisy", tmp_path / "synthetic" / "clean")


# ------------------------------------------------------------------------------------------------ TIMIT


def test_timit_tree_corpus_with_nist_files(tmp_path):
    timit_fixture(tmp_path)
    corpus = timit_corpus(tmp_path / "TIMIT", tmp_path / "noise" / "train", tmp_path / "noise" / "test",
                          valid_fraction=0.3)
    assert set(corpus.speakers("test")) == {"FDMS0", "MRJM3"}
    assert not set(corpus.speakers("train")) & set(corpus.speakers("valid"))
    assert len(corpus.speech("train")) + len(corpus.speech("valid")) == 8
    assert corpus.noise_types("train") == ["n1", "n49"]
    examples = sednn_set(corpus, "test", snr_db=0)
    assert len(examples) == 4
    _, clean, noise = examples[0].load()
    assert abs(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(noise.astype(np.float64) ** 2))) < 0.1


def test_sednn_mini_data_folders(tmp_path):
    sednn_fixture(tmp_path)
    corpus = sednn_folders_corpus(tmp_path)
    assert corpus.speakers("train") == ["FCJF0", "MRDD0"] and corpus.speakers("test") == ["FDMS0"]
    train = sednn_set(corpus, "train", magnification=2)
    assert len(train) == 4
    assert len(sednn_set(corpus, "test")) == 2


def test_fu_noisy_tree(tmp_path):
    for index, name in enumerate(["1", "2"]):
        write(tmp_path / "clean" / f"{name}.wav", tone(index))
        for noise in ("engine", "BabyCry"):
            for snr in ("-6dB", "n3dB", "12dB", "-15db"):
                write(tmp_path / "noisy" / noise / snr / f"{name}.wav", tone(index) + tone(5) * 0.1)
    pairs = fu_noisy_pairs(tmp_path / "noisy", tmp_path / "clean")
    assert len(pairs) == 2 * 2 * 3
    assert {pair.meta["snr_db"] for pair in pairs} == {-6.0, -3.0, 12.0}
    assert {pair.meta["noise_type"] for pair in pairs} == {"engine", "BabyCry"}
    assert parse_snr_folder("n6dB") == -6.0 and parse_snr_folder("18dB") == 18.0 and parse_snr_folder("clean") is None
    (tmp_path / "clean" / "2.wav").unlink()
    with pytest.raises(ValueError, match=r"2\.wav: no clean file"):
        fu_noisy_pairs(tmp_path / "noisy", tmp_path / "clean")
    skipping = fu_noisy_pairs(tmp_path / "noisy", tmp_path / "clean", skip_bad=True)
    assert len(skipping) == 6 and skipping.skipped.by_reason == {"no clean pair": 6}
    grid = fcn_set(sednn_folders_corpus_from_pairs(tmp_path), "test", snrs=(-6, 0))
    assert len(grid) == 2


def sednn_folders_corpus_from_pairs(root):
    for folder, source in (("train_speech", "clean/1.wav"), ("test_speech", "clean/1.wav"),
                           ("train_noise", "noisy/engine/12dB/1.wav"), ("test_noise", "noisy/engine/12dB/2.wav")):
        target = root / "sednn" / folder / Path(source).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((root / source).read_bytes())
    return sednn_folders_corpus(root / "sednn")


# ------------------------------------------------------------------------------------------------ WSJ0 / CHiME-2


def test_wsj0_si84_corpus_and_crn_protocol(tmp_path):
    wsj0_fixture(tmp_path)
    corpus = wsj0_si84_corpus(tmp_path / "wsj0", tmp_path / "sound_effects", tmp_path / "auditec", test_speakers=["014"])
    assert corpus.speakers("test_unseen_voice") == ["014"]
    assert "014" not in corpus.speakers("train")
    assert corpus.noise_types("test_unseen_noise") == ["babble", "cafeteria"]
    examples = crn_set(corpus, "test_unseen_voice", seed=0)
    assert len(examples) == 3 * 2 * 3
    noisy, _, _ = examples[0].load()
    assert abs(np.sqrt(np.mean(noisy.astype(np.float64) ** 2)) - 1) < 1e-4
    (tmp_path / "empty_wsj0" / "si_tr_s" / "011").mkdir(parents=True)
    (tmp_path / "empty_wsj0" / "si_tr_s" / "011" / "011c0201.wv1").write_bytes(b"NIST_1A")
    with pytest.raises(ValueError, match="sph2pipe"):
        wsj0_si84_corpus(tmp_path / "empty_wsj0", tmp_path / "sound_effects", tmp_path / "auditec")


def test_chime2_pairs_downmix_binaural(tmp_path):
    for name in ("440c0201", "440c0202"):
        write(tmp_path / "chime2-wsj0" / "isolated" / "si_et_05" / f"{name}.wav", tone(1, channels=2))
        write(tmp_path / "chime2-wsj0" / "scaled" / "si_et_05" / f"{name}.wav", tone(2, channels=2) * 0.5)
    pairs = chime2_pairs(tmp_path / "chime2-wsj0", "si_et_05")
    noisy, clean, noise = pairs[0].load()
    assert noisy.ndim == 1 and noisy.shape == clean.shape == noise.shape


# ------------------------------------------------------------------------------------------------ data_prep.mix


def test_mix_command(tmp_path, capsys):
    for index in range(2):
        write(tmp_path / "speech" / "spk" / f"u{index}.wav", tone(index, seconds=1.0))
    write(tmp_path / "noise" / "hum.wav", tone(9, seconds=0.3))
    write(tmp_path / "noise" / "broken.wav", np.zeros(0, dtype=np.float32))
    arguments = ["--speech", str(tmp_path / "speech"), "--noise", str(tmp_path / "noise"), "--snr", "-5", "10",
                 "--out", str(tmp_path / "out"), "--convention", "tfgridnet"]
    assert mix_main(arguments) == 2
    assert "broken.wav: empty" in capsys.readouterr().err
    assert mix_main(arguments + ["--skip-bad"]) == 0
    assert "skipped 1 file(s): 1 empty" in capsys.readouterr().out
    with open(tmp_path / "out" / "manifest.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    for row in rows:
        clean, _ = soundfile.read(tmp_path / "out" / row["clean"], dtype="float64")
        noise, _ = soundfile.read(tmp_path / "out" / row["noise"], dtype="float64")
        noisy, _ = soundfile.read(tmp_path / "out" / row["noisy"], dtype="float64")
        assert clean.shape == noise.shape == noisy.shape == (16000,)
        assert abs(10 * np.log10(np.var(clean) / np.var(noise)) - float(row["snr_db"])) < 0.1
    result = subprocess.run([sys.executable, "-m", "data_prep.mix", "--help"], cwd=REPOSITORY, capture_output=True, text=True)
    assert result.returncode == 0 and "--skip-bad" in result.stdout
