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
from common.mixing import estimate_f0
from data_prep.build_mini import (
    GENERATED_TYPES,
    LIBRIVOX_SPEAKER,
    POCKETSPHINX_SPEAKER,
    SPEAKER_SEX,
    UNSEEN_NOISE_TYPES,
    KLETTRES_VOICES,
    MAX_CLIPPED_FRACTION,
    OPENSFX_TYPES,
    UNSEEN_KLETTRES_LANGUAGES,
    UNSEEN_VOICES,
    VOICES,
    assign_prompt_splits,
    build_mini_corpus,
    extract_opensfx,
    klettres_speaker,
    scan_voices,
    speaker_person,
)
from data_prep.corpus import Corpus, sha256_file
from data_prep.synthetic_noise import (
    LTAS_FFT,
    babble,
    colored_noise,
    keyboard_clicks,
    mains_hum,
    modulated_noise,
    noise_bursts,
    speech_power_spectrum,
    speech_shaped_noise,
)

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
    assert {row["speaker"] for row in unseen} >= set(UNSEEN_VOICES) | {LIBRIVOX_SPEAKER, POCKETSPHINX_SPEAKER}
    for split in ("train", "valid", "test"):
        assert not set(UNSEEN_VOICES) & set(mini_corpus.speakers(split))
    # the held-out voices only read test prompts, so they never say a training sentence either
    assert {_prompt(row) for row in unseen if row["speaker"] in UNSEEN_VOICES} <= prompts["test"]


def test_voices_are_speaker_disjoint_with_both_sexes_unseen_and_seen(mini_corpus):
    """No person (two Asterisk languages of one speaker count as one) is both seen and unseen; the unseen split has
    a female and a male voice, and so does training."""
    seen_people = {speaker_person(voice) for split in ("train", "valid", "test") for voice in mini_corpus.speakers(split)}
    unseen_people = {speaker_person(voice) for voice in mini_corpus.speakers("test_unseen_voice")}
    assert not seen_people & unseen_people
    assert speaker_person("en_US_f_Allison") == speaker_person("es_MX_f_Allison") == "Allison Smith"
    assert speaker_person(klettres_speaker("de/alpha")) == speaker_person(klettres_speaker("de/syllab")) == "klettres de"
    assert not {speaker_person(klettres_speaker(f"{language}/alpha")) for language in UNSEEN_KLETTRES_LANGUAGES} \
        & {speaker_person(klettres_speaker(folder)) for folder in KLETTRES_VOICES
           if folder.split("/")[0] not in UNSEEN_KLETTRES_LANGUAGES}
    for split in ("train", "test_unseen_voice"):
        sexes = {row["sex"] for row in mini_corpus.speech(split)}
        assert sexes == {"f", "m"}, split
        assert all(row["sex"] == SPEAKER_SEX[row["speaker"]] for row in mini_corpus.speech(split))


def test_recorded_sex_agrees_with_the_measured_pitch(mini_corpus):
    """Each voice's median F0 lies in its sex's range (male below 135 Hz, female above 165 Hz), except Carlo,
    a male IVR voice speaking high (measured 188 Hz median), documented as male by his package's credits."""
    for voice in mini_corpus.speakers():
        if voice == "it_IT_m_Carlo":
            continue
        frames = np.concatenate([estimate_f0(soundfile.read(row["path"])[0]) for split in
                                 ("train", "valid", "test", "test_unseen_voice") for row in mini_corpus.speech(split)
                                 if row["speaker"] == voice])
        median = float(np.median(frames))
        assert (median < 135) if SPEAKER_SEX[voice] == "m" else (median > 165), (voice, median)


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
    monkeypatch.setattr(build_mini, "LIBRIVOX_DIR", tmp_path / "absent")
    monkeypatch.setattr(build_mini.os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as error:
        build_mini.ensure_packages(quiet=True)
    assert "apt-get install" in str(error.value) and "asterisk-core-sounds-en-g722" in str(error.value)
    assert "asterisk-core-sounds-es-g722" in str(error.value) and "pocketsphinx-testdata" in str(error.value)


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


def _frame_rms_db(signal, frame=320):
    frames = signal[: signal.size // frame * frame].reshape(-1, frame).astype(np.float64)
    return 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)


def test_modulated_noise_follows_a_slow_envelope():
    signal = modulated_noise(160000, np.random.default_rng(0))
    levels = _frame_rms_db(signal, 1600)  # 100-ms frames
    assert signal.dtype == np.float32 and abs(np.max(np.abs(signal)) - 0.9) < 1e-6
    # depth >= 0.5: envelope from 1 - d to 1 + d is at least 9.5 dB
    assert np.percentile(levels, 95) - np.percentile(levels, 5) > 6
    assert abs(_slope(signal) + 1.0) < 0.15  # still pink underneath


def test_noise_bursts_are_loud_against_their_floor():
    signal = noise_bursts(160000, np.random.default_rng(1))
    levels = _frame_rms_db(signal)
    assert np.percentile(levels, 99) - np.median(levels) > 20


def test_mains_hum_has_its_harmonics():
    signal = mains_hum(160000, np.random.default_rng(2))
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64)))
    frequencies = np.fft.rfftfreq(signal.size, 1 / 16000)
    base = 50.0 if spectrum[np.argmin(np.abs(frequencies - 50))] > spectrum[np.argmin(np.abs(frequencies - 60))] else 60.0
    median = np.median(spectrum)
    for harmonic in (1, 2, 3, 5):
        assert spectrum[np.argmin(np.abs(frequencies - base * harmonic))] > 100 * median, (base, harmonic)


def test_keyboard_clicks_are_sparse_impulses():
    signal = keyboard_clicks(160000, np.random.default_rng(3))
    levels = _frame_rms_db(signal, 160)  # 10-ms frames
    loud = levels > np.median(levels) + 20
    assert 0.02 < loud.mean() < 0.5
    kurtosis = np.mean(signal.astype(np.float64) ** 4) / np.mean(signal.astype(np.float64) ** 2) ** 2
    assert kurtosis > 10  # Gaussian noise has 3


def test_generated_noises_refuse_a_too_short_length():
    for function in (modulated_noise, noise_bursts, mains_hum, keyboard_clicks):
        with pytest.raises(ValueError, match="at least 1600 samples"):
            function(100, np.random.default_rng(0))


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
    for licence in ("CC BY-SA 3.0", "CC BY 3.0", "GPL-2+", "CC0", "BSD-2"):
        assert licence in attribution
    for entry in VOICES.values():
        assert entry.package in attribution
    info = json.loads((mini_corpus_root / "build_info.json").read_text())
    assert info["options"]["max_prompts"] == 3 and info["summary"]["speech"]["train"]["hours"] > 0
    assert info["options"]["builder_version"] == 4


def test_pitch_ranges_are_measured_per_split_and_augmentation_reaches_lower(mini_corpus, mini_corpus_root):
    info = json.loads((mini_corpus_root / "build_info.json").read_text())
    for split in ("train", "valid", "test", "test_unseen_voice"):
        entry = info["pitch"][split]
        assert set(entry["voices"]) == set(mini_corpus.speakers(split))
        low, median, high = entry["range"]
        assert 60 <= low < median < high <= 400
    # the recorded training range, recomputed from the files
    frames = np.concatenate([estimate_f0(soundfile.read(row["path"])[0]) for row in mini_corpus.speech("train")])
    assert info["pitch"]["train"]["range"][0] == pytest.approx(np.percentile(frames, 5), abs=0.1)
    # pitch shifts down to -7 semitones take the training voices' low end down into the male range
    assert info["pitch"]["train"]["augmented_range"][0] < info["pitch"]["train"]["range"][0]


def test_generated_noise_types_are_in_every_seen_split(mini_corpus):
    for split in ("train", "valid", "test"):
        assert set(GENERATED_TYPES) <= set(mini_corpus.noise_types(split))


def test_command_line_help():
    result = subprocess.run([sys.executable, "-m", "data_prep.build_mini", "--help"], cwd=REPOSITORY,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--force" in result.stdout and "--max-prompts" in result.stdout


def test_klettres_folders_have_a_recorded_sex_and_clipped_files_are_refused(tmp_path):
    held_out = {KLETTRES_VOICES[folder] for folder in KLETTRES_VOICES if folder.split("/")[0] in UNSEEN_KLETTRES_LANGUAGES}
    assert held_out == {"f", "m"}
    assert klettres_speaker("de/syllab") == "de_m_klettres_syllab"
    source = tmp_path / "clipped.ogg"
    rate = 44100
    tone = 0.5 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate)
    soundfile.write(str(source), np.clip(4 * tone, -1, 1), rate)
    row = {"path": "x.wav", "speaker": "s", "split": "train"}
    result, problem = build_mini._klettres_task((str(source), str(tmp_path / "x.wav"), row, False))
    assert result is None and "clipped" in problem[1]
    soundfile.write(str(source), tone, rate, format="OGG")
    (written, _), problem = build_mini._klettres_task((str(source), str(tmp_path / "x.wav"), row, False))
    assert problem is None and soundfile.info(str(tmp_path / "x.wav")).samplerate == 16000
    assert written["samples"] == pytest.approx(16000, abs=2)
    signal = soundfile.read(str(tmp_path / "x.wav"))[0]
    assert np.median(estimate_f0(signal)) == pytest.approx(200, rel=0.01)
    assert MAX_CLIPPED_FRACTION * rate < np.count_nonzero(np.abs(np.clip(4 * tone, -1, 1)) >= 0.999)


def _catalogue_entry(title: bytes, wave: bytes) -> bytes:
    return bytes([len(title) + 1]) + title + b"\0" + wave


def test_extract_opensfx_reads_the_openttd_container(tmp_path):
    import io

    buffer = io.BytesIO()
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(4410) / 44100)).astype(np.float32)
    soundfile.write(buffer, tone, 44100, format="WAV", subtype="PCM_16")
    entries = [_catalogue_entry(b'"Wind". By someone.', buffer.getvalue()),
               _catalogue_entry(b'"Unused/Nothing".', b"")]
    table_size = 8 * len(entries)
    table, offset = b"", table_size
    for entry in entries:
        table += (offset | 0x80000000).to_bytes(4, "little") + len(entry).to_bytes(4, "little")
        offset += len(entry)
    catalogue = tmp_path / "sounds.cat"
    catalogue.write_bytes(table + b"".join(entries))
    sounds = extract_opensfx(catalogue, tmp_path / "out")
    assert list(sounds) == ['"Wind". By someone.']  # the empty placeholder has no RIFF data
    signal, rate = soundfile.read(str(sounds['"Wind". By someone.']), dtype="float32")
    assert rate == 44100 and np.max(np.abs(signal - tone)) < 1e-4
    catalogue.write_bytes(table[:8] + b"\0" * 4)
    with pytest.raises(ValueError, match="sounds.cat: entry 0 lies outside the file"):
        extract_opensfx(catalogue, tmp_path / "out")


def test_opensfx_background_recordings_are_noise_types_of_the_corpus(mini_corpus):
    types = set(mini_corpus.noise_types())
    assert set(OPENSFX_TYPES.values()) <= types
    assert not set(OPENSFX_TYPES.values()) & set(UNSEEN_NOISE_TYPES)
    sources = [row["source"] for split in ("train", "valid", "test") for row in mini_corpus.noise(split)]
    assert any(source.startswith("openttd-opensfx/") for source in sources)
