"""Tests of the embedded mini corpus build: splits, determinism, manifests, atomicity, idempotence, noises."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from data_prep import build_mini
from data_prep.build_mini import (
    UNSEEN_NOISE_TYPES,
    UNSEEN_VOICE,
    assign_prompt_splits,
    build_mini_corpus,
    scan_voices,
)
from data_prep.corpus import Corpus, sha256_file
from data_prep.synthetic_noise import LTAS_FFT, babble, colored_noise, speech_power_spectrum, speech_shaped_noise

REPOSITORY = Path(__file__).resolve().parents[2]
TINY = {"seed": 0, "max_prompts": 3, "max_noise_files": 1, "generated_seconds": 3.0}


def _prompt(row):
    return row["source"].split(":", 1)[1]


def test_speech_splits_have_disjoint_prompts(mini_corpus):
    prompts = {split: {_prompt(row) for row in mini_corpus.speech(split)} for split in ("train", "valid", "test")}
    assert all(prompts.values())
    assert not prompts["train"] & prompts["test"]
    assert not prompts["train"] & prompts["valid"]
    assert not prompts["valid"] & prompts["test"]
    unseen = mini_corpus.speech("test_unseen_voice")
    assert {row["speaker"] for row in unseen} >= {UNSEEN_VOICE}
    for split in ("train", "valid", "test"):
        assert UNSEEN_VOICE not in mini_corpus.speakers(split)
    # the held-out voice only reads test prompts, so it never says a training sentence either
    assert {_prompt(row) for row in unseen if row["speaker"] == UNSEEN_VOICE} <= prompts["test"]


def test_noise_splits_are_disjoint(mini_corpus):
    sources = {split: {row["source"] for row in mini_corpus.noise(split) if row["source"] != "generated"}
               for split in ("train", "valid", "test", "test_unseen_noise")}
    whole_files = {split: {source for source in sources[split] if "[" not in source} for split in sources}
    train_files = {source.split("[")[0] for source in sources["train"]}
    for split in ("valid", "test", "test_unseen_noise"):
        assert not sources[split] & sources["train"]
        assert not whole_files[split] & train_files
    generated = {split: {row["sha256"] for row in mini_corpus.noise(split) if row["source"] == "generated"}
                 for split in ("train", "test")}
    assert generated["train"] and generated["test"] and not generated["train"] & generated["test"]
    assert set(mini_corpus.noise_types("test_unseen_noise")) == set(UNSEEN_NOISE_TYPES)
    assert not set(mini_corpus.noise_types("train")) & set(UNSEEN_NOISE_TYPES)


def test_full_prompt_split_keeps_identical_recordings_together():
    voices = scan_voices([])
    split = assign_prompt_splits(voices, seed=0)
    for prompts in voices.values():
        by_digest = {}
        for prompt, (_, digest) in prompts.items():
            by_digest.setdefault(digest, set()).add(split[prompt][0])
        assert all(len(splits) == 1 for splits in by_digest.values())
    counts = {name: sum(1 for value in split.values() if value[0] == name) for name in ("train", "valid", "test")}
    total = sum(counts.values())
    assert 0.07 < counts["test"] / total < 0.13 and 0.07 < counts["valid"] / total < 0.13
    other = assign_prompt_splits(voices, seed=1)
    assert other != split and assign_prompt_splits(voices, seed=0) == split


def test_manifest_sha256_duration_and_format(mini_corpus):
    rows = [row for split in ("train", "valid", "test", "test_unseen_voice") for row in mini_corpus.speech(split)]
    rows += [row for split in ("train", "valid", "test", "test_unseen_noise") for row in mini_corpus.noise(split)]
    for row in rows:
        assert sha256_file(row["path"]) == row["sha256"]
        info = soundfile.info(row["path"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == row["samples"]
        assert abs(info.frames / 16000 - row["duration"]) < 1e-5


def test_same_seed_gives_the_same_corpus(mini_corpus_root, tmp_path):
    again = build_mini_corpus(data_dir=tmp_path, quiet=True, jobs=1, **TINY)
    for name in ("speech.csv", "noise.csv"):
        assert (again / name).read_text() == (mini_corpus_root / name).read_text()


def test_rerun_does_not_rebuild(mini_corpus_root, capsys):
    info = mini_corpus_root / "build_info.json"
    before = (info.stat().st_mtime_ns, info.read_text())
    assert build_mini_corpus(data_dir=mini_corpus_root.parent, **TINY) == mini_corpus_root
    assert "up to date" in capsys.readouterr().out
    assert (info.stat().st_mtime_ns, info.read_text()) == before


def test_interrupted_build_leaves_no_corpus(tmp_path, monkeypatch):
    def interrupted(root, options, jobs, quiet):
        (root / "speech.csv").write_text("path,duration\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(build_mini, "_build_into", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_mini_corpus(data_dir=tmp_path, quiet=True, **TINY)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="does not exist"):
        Corpus(tmp_path / "mini")


def test_failed_forced_rebuild_keeps_the_old_corpus(tmp_path, monkeypatch):
    old = tmp_path / "mini"
    old.mkdir()
    (old / "marker").write_text("old")

    def failing(root, options, jobs, quiet):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build_mini, "_build_into", failing)
    with pytest.raises(RuntimeError):
        build_mini_corpus(data_dir=tmp_path, force=True, quiet=True, **TINY)
    assert (old / "marker").read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mini"]


def test_missing_package_without_root_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(build_mini, "ASTERISK_DIR", tmp_path / "absent")
    monkeypatch.setattr(build_mini.os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as error:
        build_mini.ensure_packages(quiet=True)
    assert "apt-get install" in str(error.value) and "asterisk-core-sounds-en-g722" in str(error.value)


def _slope(signal):
    frequencies = np.fft.rfftfreq(signal.shape[0], 1 / 16000)
    power = np.abs(np.fft.rfft(signal)) ** 2
    band = (frequencies > 50) & (frequencies < 5000)
    return np.polyfit(np.log10(frequencies[band]), np.log10(power[band]), 1)[0]


@pytest.mark.parametrize("kind, exponent", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_colored_noise_spectral_slope(kind, exponent):
    signal = colored_noise(kind, 160000, np.random.default_rng(0))
    assert abs(_slope(signal) - exponent) < 0.1
    assert abs(np.max(np.abs(signal)) - 0.9) < 1e-6


def test_speech_shaped_noise_follows_the_long_term_spectrum(mini_corpus):
    spectra = [speech_power_spectrum(soundfile.read(row["path"])[0]) for row in mini_corpus.speech("train")]
    ltas = sum(power for power, _ in spectra) / sum(count for _, count in spectra)
    noise = speech_shaped_noise(ltas, 160000, np.random.default_rng(1))
    measured, count = speech_power_spectrum(noise, active_db=200)
    measured /= count
    band = slice(4, 240)  # 125 Hz .. 7.5 kHz
    correlation = np.corrcoef(np.log10(measured[band]), np.log10(ltas[band]))[0, 1]
    assert correlation > 0.95
    assert measured.shape == (LTAS_FFT // 2 + 1,)


def test_babble_is_a_sum_of_talkers():
    rng = np.random.default_rng(0)
    utterances = [np.sin(np.arange(8000) * (0.01 * (k + 1))).astype(np.float32) for k in range(4)]
    signal = babble(utterances, 32000, talkers=6, rng=rng)
    assert signal.shape == (32000,) and abs(np.max(np.abs(signal)) - 0.9) < 1e-6
    with pytest.raises(ValueError):
        babble(utterances[:1], 32000, 6, rng)


def test_babble_talkers_are_the_unseen_voices_in_test_and_the_seen_voices_in_training(mini_corpus, mini_corpus_root):
    """Each babble file is rebuilt from the speech split it should come from (seen voices' training/validation
    prompts for ``multi_talker``, unseen voices for the test ``babble``): a file made of any other speech differs."""
    samples = int(TINY["generated_seconds"] * build_mini.SAMPLE_RATE)
    plan = [("train", "multi_talker", "train"), ("valid", "multi_talker", "valid"),
            ("test_unseen_voice", "babble", "test_unseen_noise")]
    for plan_index, (speech_split, noise_type, noise_split) in enumerate(plan):
        rows = [row for row in mini_corpus.noise(noise_split) if row["noise_type"] == noise_type]
        assert len(rows) == 1, (noise_split, noise_type)
        utterances = [soundfile.read(str(mini_corpus_root / row["path"]), dtype="float32")[0]
                      for row in sorted(mini_corpus.speech(speech_split), key=lambda row: row["path"])]
        expected = babble(utterances, samples, build_mini.BABBLE_TALKERS,
                          np.random.default_rng([TINY["seed"], 4, plan_index, 0]))
        written = soundfile.read(str(mini_corpus_root / rows[0]["path"]), dtype="float32")[0]
        assert np.max(np.abs(written - expected)) < 2.0 / 32768, (noise_split, noise_type)
    unseen = {row["speaker"] for row in mini_corpus.speech("test_unseen_voice")}
    assert not unseen & set(mini_corpus.speakers("train"))
    assert "multi_talker" not in mini_corpus.noise_types("test_unseen_noise")


def test_manifest_columns_and_attribution(mini_corpus_root):
    with open(mini_corpus_root / "speech.csv") as handle:
        assert csv.DictReader(handle).fieldnames[:6] == ["path", "duration", "samples", "speaker", "split", "sha256"]
    attribution = (mini_corpus_root / "ATTRIBUTION.md").read_text()
    for licence in ("CC BY-SA 3.0", "CC BY 3.0", "GPL-2+", "CC0"):
        assert licence in attribution
    info = json.loads((mini_corpus_root / "build_info.json").read_text())
    assert info["options"]["max_prompts"] == 3 and info["summary"]["speech"]["train"]["hours"] > 0


def test_command_line_help():
    result = subprocess.run([sys.executable, "-m", "data_prep.build_mini", "--help"], cwd=REPOSITORY,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--force" in result.stdout and "--max-prompts" in result.stdout
