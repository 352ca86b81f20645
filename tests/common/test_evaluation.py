"""common/evaluation.py: pair checks of two folders, scores against numpy references, the saved scores file."""
import json

import numpy as np
import pytest
import soundfile

from common.evaluation import (
    LENGTH_TOLERANCE_SECONDS,
    check_folders,
    score_examples,
    score_folders,
)

RATE = 16000


def speech_like(seed, seconds=1.0, rate=RATE):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.3 * envelope * np.sin(2 * np.pi * (180 + 40 * seed) * t)
            + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def write(path, signal, rate=RATE, subtype="FLOAT"):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), signal, rate, subtype=subtype)
    return path


def numpy_si_snr(reference, estimate):
    reference = reference - reference.mean()
    estimate = estimate - estimate.mean()
    target = np.dot(estimate, reference) / np.dot(reference, reference) * reference
    return 10 * np.log10(np.sum(target ** 2) / np.sum((estimate - target) ** 2))


def folders(tmp_path, count=3, noise_gain=0.3):
    noisy_dir, clean_dir = tmp_path / "noisy", tmp_path / "clean"
    for index in range(count):
        clean = speech_like(index)
        noise = noise_gain * np.random.default_rng(100 + index).standard_normal(clean.size).astype(np.float32)
        write(clean_dir / f"u{index}.wav", clean)
        write(noisy_dir / f"u{index}.wav", clean + noise)
    return noisy_dir, clean_dir


def test_si_snr_of_known_pairs_matches_the_numpy_formula(tmp_path):
    noisy_dir, clean_dir = folders(tmp_path)
    pairs = check_folders(noisy_dir, clean_dir, RATE)
    assert [pair.name for pair in pairs.pairs] == ["u0.wav", "u1.wav", "u2.wav"] and not pairs.invalid

    documents = score_folders(pairs, {"noisy_copy": None}, ["si_snr"], tmp_path / "results", log=lambda _: None)
    rows = documents["noisy_copy"]["rows"]
    expected = []
    for index in range(3):
        clean, _ = soundfile.read(clean_dir / f"u{index}.wav", dtype="float64")
        noisy, _ = soundfile.read(noisy_dir / f"u{index}.wav", dtype="float64")
        expected.append(numpy_si_snr(clean, noisy))
    assert [row["si_snr"] for row in rows] == pytest.approx(expected, abs=1e-4)
    assert [row["noisy_si_snr"] for row in rows] == pytest.approx(expected, abs=1e-4)
    assert documents["noisy_copy"]["summary"]["si_snr"][0] == pytest.approx(np.mean(expected), abs=1e-4)


def test_enhancer_output_is_scored_against_the_clean_file():
    clean = speech_like(0).astype(np.float64)
    noise = 0.2 * np.random.default_rng(5).standard_normal(clean.size)
    examples = [("a", (clean + noise).astype(np.float32), clean.astype(np.float32))]
    rows, summary = score_examples(lambda noisy: noisy - 0.5 * noise.astype(np.float32), examples, ["si_snr"],
                                   processes=1, score_noisy=True)
    assert rows[0]["si_snr"] == pytest.approx(numpy_si_snr(clean, clean + 0.5 * noise), abs=1e-4)
    assert rows[0]["noisy_si_snr"] == pytest.approx(numpy_si_snr(clean, clean + noise), abs=1e-4)
    # Halving the noise raises the SNR by 20 log10(2) = 6.02 dB.
    assert rows[0]["si_snr"] - rows[0]["noisy_si_snr"] == pytest.approx(6.02, abs=0.05)
    assert summary["invalid"] == 0


def test_length_mismatch_beyond_the_tolerance_is_invalid_and_excluded(tmp_path, capsys):
    noisy_dir, clean_dir = folders(tmp_path)
    tolerance = int(LENGTH_TOLERANCE_SECONDS * RATE)
    clean, _ = soundfile.read(clean_dir / "u1.wav", dtype="float32")
    write(noisy_dir / "u1.wav", clean[: clean.size // 2] + 0.1)  # half-length pair
    noisy0, _ = soundfile.read(noisy_dir / "u0.wav", dtype="float32")
    write(noisy_dir / "u0.wav", noisy0[: noisy0.size - tolerance])  # exactly at the tolerance: still valid
    pairs = check_folders(noisy_dir, clean_dir, RATE)
    assert [pair.name for pair in pairs.pairs] == ["u0.wav", "u2.wav"]
    assert [item["name"] for item in pairs.invalid] == ["u1.wav"]
    assert "-500.0 ms, tolerance 10 ms" in pairs.invalid[0]["reason"]
    documents = score_folders(pairs, {"copy": lambda noisy: noisy}, ["si_snr"], tmp_path / "results")
    line = capsys.readouterr().out
    assert "scored 2 of 3 pairs; 1 invalid: " in line and "u1.wav" in line
    document = json.loads((tmp_path / "results" / "scores" / "folders" / "copy.json").read_text())
    assert [row["name"] for row in document["rows"]] == ["u0.wav", "u2.wav"]
    assert document["summary"]["si_snr"][2] == 2 and document["summary"]["invalid"] == 1
    assert document["summary"]["pairs"] == 3 and document["summary"]["scored"] == 2
    assert document["invalid"][0]["name"] == "u1.wav"
    assert document["provenance"]["git"]["commit"] is not None and "packages" in document["provenance"]
    # The valid pair within the tolerance is scored over the shorter length.
    clean0, _ = soundfile.read(clean_dir / "u0.wav", dtype="float64")
    noisy0, _ = soundfile.read(noisy_dir / "u0.wav", dtype="float64")
    assert documents["copy"]["rows"][0]["si_snr"] == pytest.approx(
        numpy_si_snr(clean0[: noisy0.size], noisy0), abs=1e-4)


def test_unmatched_unreadable_silent_and_nan_files_are_listed_with_their_reasons(tmp_path):
    noisy_dir, clean_dir = folders(tmp_path, count=2)
    write(noisy_dir / "lonely.wav", speech_like(7))
    write(clean_dir / "orphan.wav", speech_like(8))
    (noisy_dir / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    write(clean_dir / "broken.wav", speech_like(9))
    write(noisy_dir / "zeros.wav", np.zeros(RATE, np.float32))
    write(clean_dir / "zeros.wav", speech_like(10))
    dither = (np.random.default_rng(0).integers(-1, 2, RATE) / 32768.0).astype(np.float32)  # about -92 dBFS
    write(noisy_dir / "dither.wav", speech_like(11))
    write(clean_dir / "dither.wav", dither, subtype="PCM_16")
    nan = speech_like(12)
    nan[100] = np.nan
    write(noisy_dir / "nan.wav", nan)
    write(clean_dir / "nan.wav", speech_like(12))
    pairs = check_folders(noisy_dir, clean_dir, RATE)
    assert [pair.name for pair in pairs.pairs] == ["u0.wav", "u1.wav"]
    reasons = {item["name"]: item["reason"] for item in pairs.invalid}
    assert sorted(reasons) == ["broken.wav", "dither.wav", "lonely.wav", "nan.wav", "orphan.wav", "zeros.wav"]
    assert reasons["lonely.wav"] == f"{noisy_dir / 'lonely.wav'}: no clean partner in {clean_dir}"
    assert reasons["orphan.wav"] == f"{clean_dir / 'orphan.wav'}: no noisy partner in {noisy_dir}"
    assert reasons["broken.wav"].startswith(f"{noisy_dir / 'broken.wav'}: corrupt")
    assert "all-zero (silent)" in reasons["zeros.wav"]
    assert reasons["dither.wav"].startswith(f"{clean_dir / 'dither.wav'}: silent (RMS -9")
    assert "NaN/Inf" in reasons["nan.wav"]
    assert pairs.total == 8


def test_a_sample_rate_other_than_the_model_rate_is_refused_not_resampled(tmp_path):
    noisy_dir, clean_dir = folders(tmp_path, count=2)
    write(noisy_dir / "narrow.wav", speech_like(3, rate=8000), rate=8000)
    write(clean_dir / "narrow.wav", speech_like(3, rate=8000), rate=8000)
    pairs = check_folders(noisy_dir, clean_dir, RATE)
    assert [pair.name for pair in pairs.pairs] == ["u0.wav", "u1.wav"]
    assert pairs.invalid[0]["reason"] == (f"{noisy_dir / 'narrow.wav'}: sample rate 8000 Hz, the model runs at "
                                          "16000 Hz (evaluate does not resample)")
    # The same folders at the other model rate: only the 8 kHz pair is valid.
    assert [pair.name for pair in check_folders(noisy_dir, clean_dir, 8000).pairs] == ["narrow.wav"]


def test_no_valid_pair_fails_with_every_reason(tmp_path):
    noisy_dir, clean_dir = tmp_path / "noisy", tmp_path / "clean"
    write(noisy_dir / "a.wav", speech_like(0))
    write(clean_dir / "a.wav", speech_like(0)[:8000])
    write(noisy_dir / "b.wav", speech_like(1))
    clean_dir.joinpath("c.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError) as error:
        check_folders(noisy_dir, clean_dir, RATE)
    message = str(error.value)
    assert message.startswith(f"no valid pair in {noisy_dir} and {clean_dir}: 3 invalid: ")
    assert "a.wav: 16000 samples, its clean partner 8000" in message
    assert "b.wav: no clean partner" in message and "c.wav: no noisy partner" in message


def test_missing_or_empty_folders_and_bad_max_files(tmp_path):
    (tmp_path / "noisy").mkdir()
    (tmp_path / "clean").mkdir()
    with pytest.raises(ValueError, match="no audio files in"):
        check_folders(tmp_path / "noisy", tmp_path / "clean", RATE)
    with pytest.raises(ValueError, match="missing: noisy folder does not exist"):
        check_folders(tmp_path / "missing", tmp_path / "clean", RATE)
    with pytest.raises(ValueError, match="--max-files must be at least 1, got 0"):
        check_folders(tmp_path / "noisy", tmp_path / "clean", RATE, max_files=0)


def test_max_files_keeps_the_first_pairs_in_name_order(tmp_path):
    noisy_dir, clean_dir = folders(tmp_path, count=3)
    assert [pair.name for pair in check_folders(noisy_dir, clean_dir, RATE, max_files=2).pairs] == ["u0.wav", "u1.wav"]


def test_a_metric_failure_counts_as_invalid_and_a_system_that_scores_nothing_fails(tmp_path, capsys):
    noisy_dir, clean_dir = folders(tmp_path, count=2)
    pairs = check_folders(noisy_dir, clean_dir, RATE)
    with pytest.raises(ValueError, match="silent: no pair of .* could be scored"):
        score_folders(pairs, {"silent": lambda noisy: np.zeros_like(noisy)}, ["si_snr"], tmp_path / "results")
    assert "scored 0 of 2 pairs; 2 invalid" in capsys.readouterr().out
    document = json.loads((tmp_path / "results" / "scores" / "folders" / "silent.json").read_text())
    assert len(document["invalid"]) == 2 and all("silent" in item["reason"] for item in document["invalid"])


RECIPES = ("icse", "fqse", "sednn", "crn", "tfgridnet")


def recipe(name):
    import importlib

    return importlib.import_module(f"reproductions.{name}.recipe").Recipe()


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_states_the_rules_and_refuses_folders_without_a_valid_pair(name, tmp_path, capsys):
    from common.cli import build_parser, main

    with pytest.raises(SystemExit):
        build_parser(recipe(name)).parse_args(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "evaluate never resamples" in help_text and "scores/folders/SYSTEM.json" in help_text
    noisy_dir, clean_dir = tmp_path / "noisy", tmp_path / "clean"
    write(noisy_dir / "a.wav", speech_like(0, rate=8000), rate=8000)
    write(clean_dir / "a.wav", speech_like(0, rate=8000), rate=8000)
    write(noisy_dir / "b.wav", speech_like(1))
    # The pairs are checked before any model is looked for: the empty experiment folder is never reached.
    status = main(recipe(name), ["evaluate", "--noisy-dir", str(noisy_dir), "--clean-dir", str(clean_dir),
                                 "--exp-dir", str(tmp_path / "exp"), "--results-dir", str(tmp_path / "results")])
    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith(f"error: no valid pair in {noisy_dir} and {clean_dir}: 2 invalid: ")
    assert "a.wav: sample rate 8000 Hz, the model runs at 16000 Hz" in error and "b.wav: no clean partner" in error
    assert not (tmp_path / "results").exists()


def test_the_summary_line_lists_the_first_reasons_and_counts_the_rest():
    from common.evaluation import LISTED_REASONS, summary_line

    invalid = [{"name": f"f{index}.wav", "reason": f"f{index}.wav: no clean partner"} for index in range(8)]
    summary = {"si_snr": (4.5, 1.0, 12), "noisy_si_snr": (1.25, 1.0, 12)}
    line = summary_line("crn", summary, 20, invalid, ["si_snr"])
    assert line.startswith("crn: si_snr 4.500 (noisy 1.250); scored 12 of 20 pairs; 8 invalid: f0.wav: no clean")
    assert line.count("no clean partner") == LISTED_REASONS and line.endswith(f"; and {8 - LISTED_REASONS} more")


def test_a_stereo_file_is_scored_as_its_channel_mean_with_one_line_saying_so(tmp_path, capsys):
    noisy_dir, clean_dir = folders(tmp_path, count=1)
    clean = speech_like(4)
    left = clean + 0.2 * np.random.default_rng(1).standard_normal(clean.size).astype(np.float32)
    write(noisy_dir / "stereo.wav", np.stack([left, clean], axis=1))
    write(clean_dir / "stereo.wav", clean)
    pairs = check_folders(noisy_dir, clean_dir, RATE)
    assert [pair.name for pair in pairs.pairs] == ["stereo.wav", "u0.wav"]
    assert pairs.notes == [f"{noisy_dir / 'stereo.wav'}: 2 channels averaged to mono"]
    documents = score_folders(pairs, {"copy": None}, ["si_snr"], tmp_path / "results")
    assert capsys.readouterr().out.startswith(f"{noisy_dir / 'stereo.wav'}: 2 channels averaged to mono\n")
    assert documents["copy"]["notes"] == pairs.notes
    mean = (left.astype(np.float64) + clean) / 2
    assert documents["copy"]["rows"][0]["si_snr"] == pytest.approx(numpy_si_snr(clean.astype(np.float64), mean),
                                                                   abs=1e-3)


def test_robustness_checks_and_table():
    from common.evaluation import robustness_checks, robustness_table

    def summary(pesq, stoi, si_snr):
        return {"pesq_wb": (pesq, 0.0, 4), "stoi": (stoi, 0.0, 4), "si_snr": (si_snr, 0.0, 4)}

    scores = {
        "unseen voice x noise -5 dB": {"noisy": summary(1.1, 0.6, -5.0), "good": summary(1.3, 0.7, 2.0),
                                       "bad": summary(1.3, 0.55, 2.0)},
        "test at -40 dBFS": {"noisy": summary(1.2, 0.7, 0.0), "good": summary(1.52, 0.8, 5.0),
                             "bad": summary(1.30, 0.7, 1.0)},
    }
    nominal = {"good": summary(1.50, 0.8, 5.0), "bad": summary(1.50, 0.7, 1.0)}
    checks = robustness_checks(scores, nominal)
    assert checks["good"] == {"beats_noisy": True, "level_gap_pesq_wb": pytest.approx(0.02), "level_robust": True}
    assert checks["bad"]["beats_noisy"] is False and checks["bad"]["level_robust"] is False
    text = robustness_table(scores, "Robustness", nominal).render()
    assert "unseen voice x noise -5 dB: good" in text and "largest gap 0.200" in text


def test_test_set_scores_and_folder_scores_have_their_own_files(tmp_path):
    from common.evaluation import load_scores, save_scores

    assert load_scores(tmp_path / "results", "model") is None
    rows = [{"name": "a", "si_snr": 3.0, "valid": True}]
    path = save_scores(tmp_path / "results", "model", rows, {"si_snr": [3.0, 0.0, 1]}, config={"seed": 1},
                       run="toy/mini", snr_db=0.0)
    assert path == tmp_path / "results" / "scores" / "model.json"
    document = load_scores(tmp_path / "results", "model")
    assert document["rows"] == rows and document["snr_db"] == 0.0 and document["source"] == "test set"
    assert document["provenance"]["run"] == "toy/mini" and document["provenance"]["config"] == {"seed": 1}
    noisy_dir, clean_dir = folders(tmp_path, count=1)
    score_folders(check_folders(noisy_dir, clean_dir, RATE), {"model": None}, ["si_snr"], tmp_path / "results",
                  log=lambda _: None)
    assert load_scores(tmp_path / "results", "model")["rows"] == rows
    assert (tmp_path / "results" / "scores" / "folders" / "model.json").is_file()


class _Example:
    def __init__(self, seed, speaker):
        self.meta = {"speaker": speaker, "noise_type": "tone", "snr_db": 0.0}
        self.seed = seed

    def load(self):
        clean = speech_like(self.seed)
        noise = 0.1 * np.random.default_rng(self.seed).standard_normal(clean.size).astype(np.float32)
        return clean + noise, clean, noise


def test_robustness_scores_are_read_back_in_the_order_they_were_scored(tmp_path):
    from common.evaluation import load_robustness, score_robustness

    sets = {"unseen voice x noise +5 dB": [_Example(1, "s1")], "test at -40 dBFS": [_Example(2, "s2")],
            "another set": [_Example(3, "s3")]}
    halve = {"half": lambda noisy: 0.5 * noisy}
    scores = score_robustness(halve, sets, metrics=("si_snr",), results_dir=tmp_path)
    more = score_robustness({"copy": lambda noisy: noisy}, sets, metrics=("si_snr",), results_dir=tmp_path,
                            score_noisy=False)
    assert all(list(by_system) == ["copy"] for by_system in more.values())
    loaded = load_robustness(tmp_path, ["copy", "half"])
    assert list(loaded) == list(sets)
    for set_name in sets:
        assert list(loaded[set_name]) == ["noisy", "copy", "half"]
        assert loaded[set_name]["half"]["si_snr"][0] == pytest.approx(scores[set_name]["half"]["si_snr"][0])
        # SI-SNR is scale invariant: halving the input changes nothing.
        assert loaded[set_name]["copy"]["si_snr"][0] == pytest.approx(loaded[set_name]["noisy"]["si_snr"][0])
    assert list(load_robustness(tmp_path, ["half"])[next(iter(sets))]) == ["noisy", "half"]
    assert load_robustness(tmp_path / "none", ["half"]) == {}
