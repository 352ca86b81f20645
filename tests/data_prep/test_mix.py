"""data_prep.mix on malformed input: bad files, nonsensical counts, unusable --out, and a run that fails part way."""
import csv

import numpy as np
import pytest
import soundfile

import data_prep.mix as mix
from data_prep.mix import main

RATE = 16000


def tone(seed, seconds=0.5):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * (150 + 50 * seed) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def write(path, signal, rate=RATE, subtype="FLOAT"):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), signal, rate, subtype=subtype)
    return path


@pytest.fixture
def inputs(tmp_path):
    for index in range(3):
        write(tmp_path / "speech" / "spk" / f"u{index}.wav", tone(index))
    write(tmp_path / "noise" / "hum.wav", tone(9, seconds=0.3))
    write(tmp_path / "noise" / "buzz.wav", tone(8, seconds=0.3))
    return tmp_path


def arguments(root, out, *extra):
    return ["--speech", str(root / "speech"), "--noise", str(root / "noise"), "--snr", "0", "5", "--out", str(out),
            *extra]


def manifest_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def audio_files(out):
    return sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()
                  and not path.name.startswith("manifest"))


def listed_files(rows):
    return sorted(row[kind] for row in rows for kind in ("noisy", "clean", "noise"))


def test_skip_bad_leaves_out_nan_and_silent_files_and_still_writes_the_manifest(inputs, capsys):
    nan = tone(3)
    nan[10] = np.nan
    write(inputs / "speech" / "spk" / "nan.wav", nan)
    write(inputs / "speech" / "spk" / "zeros.wav", np.zeros(RATE // 2, np.float32))
    dither = (np.random.default_rng(0).integers(-1, 2, RATE // 2) / 32768.0).astype(np.float32)  # about -92 dBFS
    write(inputs / "noise" / "dither.wav", dither, subtype="PCM_16")
    out = inputs / "out"
    assert main(arguments(inputs, out)) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "nan.wav: signal contains 1 NaN/Inf sample(s)" in error
    assert audio_files(out) == [] and not (out / "manifest.csv").exists()

    assert main(arguments(inputs, out, "--skip-bad")) == 0
    output = capsys.readouterr().out
    assert "skipped 3 file(s)" in output
    skipped_lines = [line for line in output.splitlines() if line.startswith("  skipped ")]
    assert len(skipped_lines) == 3
    assert any("nan.wav: signal contains 1 NaN/Inf" in line for line in skipped_lines)
    assert any("zeros.wav: all-zero (silent)" in line for line in skipped_lines)
    assert any("dither.wav: silent (RMS -9" in line for line in skipped_lines)
    rows = manifest_rows(out / "manifest.csv")
    assert len(rows) == 3 * 2  # 3 good speech files x 2 SNRs x 1 noise
    assert audio_files(out) == listed_files(rows)
    assert not any(name in row["speech_source"] + row["noise_source"] for row in rows
                   for name in ("nan.wav", "zeros.wav", "dither.wav"))


@pytest.mark.parametrize("extra, message", [
    (["--per-snr", "0"], "--per-snr: must be a whole number of noise files, at least 1, got 0"),
    (["--per-snr", "-2"], "--per-snr: must be a whole number of noise files, at least 1, got -2"),
    (["--per-snr", "3"], "--per-snr 3: more than the 2 usable noise file(s)"),
])
def test_nonsensical_counts_are_refused_before_anything_is_written(inputs, capsys, extra, message):
    out = inputs / "out"
    assert main(arguments(inputs, out, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or audio_files(out) == []
    assert not (out / "manifest.csv").exists()


def test_repeated_or_infinite_snrs_are_refused(inputs):
    with pytest.raises(ValueError, match="an SNR is given twice"):
        mix.mix_folders(inputs / "speech", inputs / "noise", [0, 0], inputs / "out")
    with pytest.raises(ValueError, match="every SNR must be a finite number"):
        mix.mix_folders(inputs / "speech", inputs / "noise", [float("nan")], inputs / "out")
    assert not (inputs / "out").exists()


def test_an_out_folder_that_cannot_be_made_or_used_is_refused_before_mixing(inputs, capsys):
    (inputs / "a_file").write_text("not a folder")
    cases = [
        (inputs / "a_file" / "out", "cannot create the folder (Not a directory)"),
        (inputs / "a_file", "exists and is not a folder"),
        ("/proc/mix_out", "cannot create the folder"),
        (inputs / "speech" / "out", "inside the speech folder"),
    ]
    for out, message in cases:
        assert main(arguments(inputs, out)) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith(f"error: --out {out}: ") and message in error and "\n" not in error
    assert not (inputs / "speech" / "out").exists()
    busy = inputs / "busy"
    write(busy / "keep.wav", tone(1))
    assert main(arguments(inputs, busy)) == 2
    assert "not empty (1 file(s)" in capsys.readouterr().err
    assert main(arguments(inputs, inputs / "done")) == 0
    assert main(arguments(inputs, inputs / "done")) == 2
    assert "already holds a finished mix (manifest.csv)" in capsys.readouterr().err


def test_a_run_that_fails_part_way_leaves_only_listed_files_and_the_same_command_starts_over(inputs, monkeypatch,
                                                                                             capsys):
    out = inputs / "out"
    real_write = mix.write_audio
    calls = []

    def failing_write(path, signal, rate, subtype="PCM_16"):
        calls.append(path)
        if len(calls) == 8:  # the second file of the third mixture
            raise OSError(28, "No space left on device")
        return real_write(path, signal, rate, subtype=subtype)

    monkeypatch.setattr(mix, "write_audio", failing_write)
    assert main(arguments(inputs, out)) == 2
    error = capsys.readouterr().err
    assert "mixing stopped after 2 of 6 mixtures" in error and "No space left on device" in error
    assert not (out / "manifest.csv").exists()
    partial = manifest_rows(out / "manifest.partial.csv")
    assert len(partial) == 2 and audio_files(out) == listed_files(partial)
    assert not list(out.rglob(".partial.*"))  # the failed mixture's first file, written under a temporary name

    monkeypatch.setattr(mix, "write_audio", real_write)
    assert main(arguments(inputs, out)) == 0
    assert "an unfinished run left 2 mixture(s); removed its 6 file(s), starting again" in capsys.readouterr().out
    rows = manifest_rows(out / "manifest.csv")
    assert len(rows) == 6 and audio_files(out) == listed_files(rows)
    assert not (out / "manifest.partial.csv").exists() and not list(out.rglob(".partial.*"))
    for row in rows:
        clean, _ = soundfile.read(out / row["clean"], dtype="float64")
        noise, _ = soundfile.read(out / row["noise"], dtype="float64")
        noisy, _ = soundfile.read(out / row["noisy"], dtype="float64")
        np.testing.assert_allclose(noisy, clean + noise, atol=1e-6)
        assert abs(10 * np.log10(np.var(clean) / np.var(noise)) - float(row["snr_db"])) < 0.1


def test_noise_files_with_one_name_in_two_folders_get_distinct_mixtures(tmp_path):
    write(tmp_path / "speech" / "u0.wav", tone(0))
    write(tmp_path / "noise" / "cafe" / "1.wav", tone(5, seconds=0.3))
    write(tmp_path / "noise" / "street" / "1.wav", tone(6, seconds=0.3))
    result = mix.mix_folders(tmp_path / "speech", tmp_path / "noise", [0], tmp_path / "out", per_snr=2)
    names = sorted(row["name"] for row in result["rows"])
    assert names == ["u0__cafe__1__0dB.wav", "u0__street__1__0dB.wav"]
    assert audio_files(tmp_path / "out") == listed_files(result["rows"])


def test_a_killed_run_is_cleared_with_its_temporary_files_by_the_next_run(inputs, monkeypatch, capsys):
    out = inputs / "out"
    real_write = mix._write
    calls = []

    def killed_write(path, signal):
        calls.append(path)
        if len(calls) == 8:
            raise KeyboardInterrupt  # as a kill in the middle of the third mixture
        return real_write(path, signal)

    monkeypatch.setattr(mix, "_write", killed_write)
    with pytest.raises(KeyboardInterrupt):
        mix.mix_folders(inputs / "speech", inputs / "noise", [0, 5], out)
    partial = manifest_rows(out / "manifest.partial.csv")
    temporaries = sorted(path.name for path in out.rglob(".partial.*"))
    assert len(partial) == 2 and temporaries == [".partial.spk__u1__buzz__0dB.wav"]
    assert [name for name in audio_files(out) if ".partial." not in name] == listed_files(partial)
    monkeypatch.setattr(mix, "_write", real_write)
    assert main(arguments(inputs, out)) == 0
    assert "an unfinished run left 2 mixture(s); removed its 7 file(s), starting again" in capsys.readouterr().out
    assert audio_files(out) == listed_files(manifest_rows(out / "manifest.csv"))


def test_a_mixture_above_full_scale_is_scaled_with_its_sources_keeping_the_snr(tmp_path, capsys):
    t = np.arange(RATE // 2) / RATE
    write(tmp_path / "speech" / "spk" / "loud.wav", (0.95 * np.sin(2 * np.pi * 200 * t)).astype(np.float32))
    write(tmp_path / "noise" / "hum.wav", (0.9 * np.sin(2 * np.pi * 330 * t)).astype(np.float32))
    out = tmp_path / "out"
    assert main(["--speech", str(tmp_path / "speech"), "--noise", str(tmp_path / "noise"), "--snr", "0",
                 "--out", str(out)]) == 0
    assert "all three signals scaled by" in capsys.readouterr().out
    (row,) = manifest_rows(out / "manifest.csv")
    noisy, clean, noise = (soundfile.read(str(out / row[kind]), dtype="float64")[0] for kind in ("noisy", "clean", "noise"))
    assert np.max(np.abs(noisy)) == pytest.approx(mix.MAX_PEAK, abs=1e-6)
    np.testing.assert_allclose(noisy, clean + noise, atol=1e-6)
    assert 10 * np.log10(np.sum(clean ** 2) / np.sum(noise ** 2)) == pytest.approx(0.0, abs=0.05)
