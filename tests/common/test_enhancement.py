"""Tests for common.enhancement: the shared ``enhance`` command (destination checks before the model is loaded,
inputs checked and skipped one by one, every change reported, outputs at the model's rate) and the chunked
inference that bounds memory on long files; one recipe (ICSE) end to end through its command line."""
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

import common.cli
import common.config
from common.audio import write_audio
from common.cli import main
from common.enhancement import chunked, overlap_discard, run_enhancement

RATE = 16000


def _speech_like(seconds=0.5, rate=RATE, seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32)


class HalvingRecipe:
    """A recipe whose model halves the signal; it records whether the model was loaded."""

    name = "halving"

    def __init__(self):
        self.loaded = False

    def enhance(self, config, args):
        def load():
            self.loaded = True
            return lambda noisy: 0.5 * noisy

        run_enhancement(args, RATE, load)


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mini.yaml").write_text("model:\n  filters: 1\n")
    monkeypatch.setattr(common.cli, "load_config",
                        lambda name, recipe_dir, overrides, **options: common.config.load_config(
                            name, tmp_path, overrides, **options))
    return HalvingRecipe()


def _folder(root, names=("a.wav", "sub/b.wav")):
    for index, name in enumerate(names):
        write_audio(root / name, _speech_like(seed=index), RATE)
    return {name: (root / name).read_bytes() for name in names}


def test_output_equal_to_input_is_refused_and_the_input_kept(recipe, tmp_path, capsys):
    source = write_audio(tmp_path / "in.wav", _speech_like(), RATE)
    before = source.read_bytes()
    assert main(recipe, ["enhance", str(source), str(source)]) == 2
    assert "in.wav: the output is the input file" in capsys.readouterr().err
    assert source.read_bytes() == before and not recipe.loaded
    os.link(source, tmp_path / "hard_link.wav")  # another name for the same file
    assert main(recipe, ["enhance", str(source), str(tmp_path / "hard_link.wav")]) == 2
    assert "hard_link.wav: the output is the input file" in capsys.readouterr().err
    assert source.read_bytes() == before
    folder = tmp_path / "folder"
    contents = _folder(folder)
    for output in (folder, folder / "enhanced", tmp_path):
        assert main(recipe, ["enhance", str(folder), str(output)]) == 2
        error = capsys.readouterr().err
        assert f"{output}: the output folder" in error and "--overwrite" in error
    assert {name: (folder / name).read_bytes() for name in contents} == contents
    assert sorted(path.name for path in folder.rglob("*")) == ["a.wav", "b.wav", "sub"]
    assert not recipe.loaded


def test_overwrite_replaces_the_inputs(recipe, tmp_path):
    folder = tmp_path / "folder"
    _folder(folder)
    originals = {name: soundfile.read(str(folder / name))[0] for name in ("a.wav", "sub/b.wav")}
    assert main(recipe, ["enhance", str(folder), str(folder), "--overwrite"]) == 0
    for name, original in originals.items():
        np.testing.assert_allclose(soundfile.read(str(folder / name))[0], 0.5 * original, atol=1.5 / 32768)
    assert sorted(path.name for path in folder.rglob("*")) == ["a.wav", "b.wav", "sub"]


def test_unwritable_outputs_are_refused_before_the_model_loads(recipe, tmp_path, capsys):
    source = write_audio(tmp_path / "in.wav", _speech_like(), RATE)
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    cases = {
        tmp_path / "out.txt": "out.txt: cannot write audio with the extension '.txt'",
        tmp_path / "a_folder": "a_folder: is a folder, not an output file path",
        tmp_path / "a_file" / "out.wav": "cannot be written, ",
        Path("/proc/enhanced.wav"): "/proc/enhanced.wav: cannot be written, no file can be created in /proc",
    }
    for output, message in cases.items():
        assert main(recipe, ["enhance", str(source), str(output)]) == 2
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1, error
    _folder(tmp_path / "wavs")
    assert main(recipe, ["enhance", str(tmp_path / "wavs"), str(tmp_path / "a_file")]) == 2
    assert "a_file: is a file; the output of a folder input is a folder" in capsys.readouterr().err
    assert not recipe.loaded
    assert sorted(os.listdir(tmp_path)) == ["a_file", "a_folder", "conf", "in.wav", "wavs"]


def test_read_only_output_folder_is_refused(recipe, tmp_path, capsys):
    from tests.common.test_audio import _read_only_folder

    source = write_audio(tmp_path / "in.wav", _speech_like(), RATE)
    folder = _read_only_folder(tmp_path)
    try:
        assert main(recipe, ["enhance", str(source), str(folder / "out.wav")]) == 2
    finally:
        folder.chmod(0o755)
    assert "out.wav: cannot be written, no file can be created" in capsys.readouterr().err
    assert not recipe.loaded


def test_a_folder_with_bad_files_enhances_the_others_and_fails_at_the_end(recipe, tmp_path, capsys):
    folder = tmp_path / "in"
    _folder(folder, ("a.wav", "sub/e.wav"))
    write_audio(folder / "b_silent.wav", np.zeros(800, np.float32), RATE)
    dither = np.zeros(8000, np.float32)
    dither[::3] = 1 / 32768
    write_audio(folder / "c_dither.wav", dither, RATE)
    (folder / "d_corrupt.wav").write_bytes(b"RIFF\x00\x00not a wave file at all" * 4)
    assert main(recipe, ["enhance", str(folder), str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    error_lines = captured.err.strip().splitlines()
    assert [line.split(":")[0] for line in error_lines[:3]] == ["skipped"] * 3
    assert "b_silent.wav: silent (all zeros)" in error_lines[0]
    assert "c_dither.wav: level" in error_lines[1] and "below the -70 dBFS floor" in error_lines[1]
    assert "d_corrupt.wav: unreadable or corrupt audio file" in error_lines[2]
    assert error_lines[3].startswith(f"error: {folder}: 3 of 5 file(s) not enhanced")
    written = sorted(str(path.relative_to(tmp_path / "out")) for path in (tmp_path / "out").rglob("*.wav"))
    assert written == ["a.wav", "sub/e.wav"]
    assert f"{folder / 'a.wav'} -> {tmp_path / 'out' / 'a.wav'}" in captured.out
    assert sorted(os.listdir(tmp_path / "out")) == ["a.wav", "sub"]  # no temporary file left
    assert main(recipe, ["enhance", str(folder / "b_silent.wav"), str(tmp_path / "b.wav")]) == 2
    assert "b_silent.wav: silent (all zeros)" in capsys.readouterr().err and not (tmp_path / "b.wav").exists()


def test_changes_to_the_input_are_reported_and_the_output_is_at_the_model_rate(recipe, tmp_path, capsys):
    stereo = np.stack([_speech_like(1.0, 8000, seed=1), _speech_like(1.0, 8000, seed=2)], axis=1)
    source = write_audio(tmp_path / "stereo8k.wav", stereo, 8000)
    assert main(recipe, ["enhance", str(source), str(tmp_path / "out.wav")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [f"{source}: down-mixed 2 channels to their mean (--channel N picks one)",
                     f"{source}: resampled from 8000 Hz to {RATE} Hz (the model's rate)",
                     f"{source} -> {tmp_path / 'out.wav'}"]
    info = soundfile.info(str(tmp_path / "out.wav"))
    assert (info.samplerate, info.frames, info.channels) == (RATE, 2 * 8000, 1)
    assert main(recipe, ["enhance", str(source), str(tmp_path / "right.wav"), "--channel", "2"]) == 0
    assert f"{source}: used channel 2 of 2" in capsys.readouterr().out
    full = write_audio(tmp_path / "full.wav", _speech_like(1.0), RATE)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(full.read_bytes()[: 44 + 2 * 4000])
    assert main(recipe, ["enhance", str(truncated), str(tmp_path / "t.wav")]) == 0
    assert f"{truncated}: truncated file: its header announces 16000 frames, it holds 4000" in capsys.readouterr().out
    assert soundfile.info(str(tmp_path / "t.wav")).frames == 4000


def test_chunked_output_equals_whole_output_when_the_receptive_field_fits_in_the_context():
    from common.tfkeras import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, 1))
    hidden = keras.layers.Conv1D(4, 9, padding="same", activation="tanh")(inputs)
    outputs = keras.layers.Conv1D(1, 9, padding="same")(hidden)
    model = keras.Model(inputs, outputs)  # receptive field: 8 samples to each side

    def enhance(signal):
        return model(signal[None, :, None], training=False).numpy()[0, :, 0]

    signal = _speech_like(seconds=5003 / RATE, seed=4)
    whole = enhance(signal)
    chunked = overlap_discard(enhance, signal, chunk=700, context=16)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    # Without context the window edges see zero padding instead of the neighbouring samples.
    assert np.max(np.abs(overlap_discard(enhance, signal, chunk=700, context=0) - whole)) > 1e-3
    np.testing.assert_array_equal(overlap_discard(enhance, signal[:732], chunk=700, context=16), enhance(signal[:732]))


def test_chunked_runs_short_inputs_whole_and_long_ones_in_bounded_windows():
    calls = []

    def enhance(signal):
        calls.append(signal.shape[0])
        return 2 * signal

    run = chunked(enhance, 100, chunk_seconds=4, context_seconds=0.5, whole_seconds=12)
    signal = _speech_like(seconds=12, rate=100)
    np.testing.assert_array_equal(run(signal), 2 * signal)
    assert calls == [1200]
    calls.clear()
    signal = _speech_like(seconds=20.3, rate=100)
    np.testing.assert_array_equal(run(signal), 2 * signal)
    # 4 s kept + 0.5 s on each side that exists: windows start every 400 samples of the 2030
    assert calls == [450, 500, 500, 500, 480, 80]
    calls.clear()
    # A model with one input length gets windows of exactly that length, the last one moved inward.
    np.testing.assert_array_equal(overlap_discard(enhance, signal, 400, 50, window_length=520), 2 * signal)
    assert calls == [520] * 6
    with pytest.raises(ValueError, match="window_length 480 is shorter than chunk"):
        overlap_discard(enhance, signal, 400, 50, window_length=480)
    calls.clear()
    run = chunked(enhance, 100, chunk_seconds=3, context_seconds=0.5, whole_seconds=12, window_length=400)
    np.testing.assert_array_equal(run(signal), 2 * signal)
    assert calls == [400] * 7


def test_icse_enhance_end_to_end_through_its_command_line(tmp_path, capsys):
    from reproductions.icse.fcn import build_fcn
    from reproductions.icse.recipe import Recipe

    sizes = ["--set", "model.filters=4", "--set", "model.kernel_size=9", "--set", "model.hidden_layers=2"]
    weights = tmp_path / "tiny.weights.h5"
    build_fcn(filters=4, kernel_size=9, hidden_layers=2).save_weights(str(weights))
    stereo = np.stack([_speech_like(0.5, 8000, seed=5), _speech_like(0.5, 8000, seed=6)], axis=1)
    source = write_audio(tmp_path / "noisy8k.wav", stereo, 8000)
    before = source.read_bytes()
    common = ["--checkpoint", str(weights), "--exp-dir", str(tmp_path / "exp"), *sizes]
    assert main(Recipe(), ["enhance", str(source), str(source), *common]) == 2
    assert "the output is the input file" in capsys.readouterr().err and source.read_bytes() == before
    output = tmp_path / "enhanced" / "noisy.wav"
    assert main(Recipe(), ["enhance", str(source), str(output), *common]) == 0
    out = capsys.readouterr().out
    assert "resampled from 8000 Hz to 16000 Hz" in out and "down-mixed 2 channels" in out
    enhanced, rate = soundfile.read(str(output))
    assert rate == 16000 and enhanced.shape == (8000,)
    assert np.max(np.abs(enhanced)) == pytest.approx(1.0, abs=1 / 32768)  # ICSE peak-normalises its output
    text_checkpoint = tmp_path / "notes.weights.h5"
    text_checkpoint.write_text("not weights")
    assert main(Recipe(), ["enhance", str(source), str(tmp_path / "x.wav"), *common[2:], "--checkpoint",
                           str(text_checkpoint)]) == 2
    error = capsys.readouterr().err
    assert f"{text_checkpoint}: cannot load the model from this file" in error
    assert not (tmp_path / "x.wav").exists()


def test_least_squares_gain_puts_a_scaled_speech_estimate_at_the_speech_level_of_the_mixture():
    from common.enhancement import least_squares_gain

    rng = np.random.default_rng(4)
    speech, noise = rng.standard_normal(64000), rng.standard_normal(64000)
    mixture = speech + noise
    gain = least_squares_gain(mixture, -3.0 * speech)
    assert gain == pytest.approx(-1.0 / 3.0, rel=0.02)
    assert least_squares_gain(mixture, np.zeros(100)) == 1.0
    assert least_squares_gain(mixture[:10], 2.0 * mixture[:10]) == pytest.approx(0.5)


def test_level_normalized_enhancement_is_the_same_at_any_level():
    from common.enhancement import level_normalized

    def level_dependent(noisy):  # a model that treats quiet and loud inputs differently
        return np.tanh(4 * noisy) * 0.5

    signal = (0.05 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    enhance = level_normalized(level_dependent, -25.0)
    reference = enhance(signal)
    for gain in (0.01, 0.3, 5.0):
        np.testing.assert_allclose(enhance(signal * gain) / gain, reference, rtol=1e-4, atol=1e-7)
    assert not np.allclose(level_dependent(signal * 0.01) / 0.01, level_dependent(signal), rtol=1e-2)
    np.testing.assert_allclose(level_normalized(lambda x: x, -25.0)(signal * 0.2), signal * 0.2, rtol=1e-5)
    # An output at an arbitrary scale and sign (SI-SNR training fixes neither) comes back at the input's level.
    np.testing.assert_allclose(level_normalized(lambda x: -4.0 * x, -25.0)(signal * 0.2), signal * 0.2, rtol=1e-5)
    assert level_normalized(level_dependent, None) is level_dependent
    with pytest.raises(ValueError, match="level_dbfs"):
        level_normalized(level_dependent, 3.0)
