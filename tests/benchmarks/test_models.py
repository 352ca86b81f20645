"""The per-reproduction adapters on an empty experiment folder: every variant is listed, none crashes, and each
missing one names the missing file and the run.sh stages that write it (or says the recipe does not produce it)."""
import numpy as np
import pytest

from benchmarks import models


def _adapter_on(name, monkeypatch, tmp_path):
    """The ``name`` adapter reading and writing only under ``tmp_path`` (exp/<name>/<config>, bench, results)."""
    adapter = models.adapters_for([name])[0]
    monkeypatch.setattr(type(adapter), "exp_dir", lambda self, config_name: tmp_path / "exp" / name / config_name)
    monkeypatch.setattr(type(adapter), "bench_dir", lambda self, config_name: tmp_path / "bench" / name)
    monkeypatch.setattr(type(adapter), "results_dir", lambda self, config_name: tmp_path / "results" / name)
    return adapter


@pytest.mark.parametrize("name", sorted(models.ADAPTERS))
def test_adapter_lists_missing_artefacts_with_the_command_to_run(name, monkeypatch, tmp_path):
    adapter = _adapter_on(name, monkeypatch, tmp_path)
    variants = adapter.variants("mini")
    assert variants, f"{name}: no variants listed"
    for variant in variants:
        assert variant.model == name
        assert variant.missing, f"{variant.label} claims to be ready in an empty folder"
        if variant.missing.startswith((f"not produced by reproductions/{name}", "not available:")):
            continue
        # A recipe file that is not on disk: the message names that file and the stages that write it.
        step = "exported" if variant.file.suffix == ".tflite" else "trained"
        assert variant.missing.startswith(f"not {step} yet: {variant.file} is missing; run "), variant.missing
        assert f"bash reproductions/{name}/run.sh --stage " in variant.missing, variant.missing
        assert "--force" not in variant.missing  # no stage is marked done in an empty folder
    kinds = {variant.kind for variant in variants}
    if not any(v.missing.startswith("not available:") for v in variants):
        assert "float" in kinds


def test_tfgridnet_trained_but_not_exported_names_the_file_and_the_export_stage(monkeypatch, tmp_path):
    """The PL model trained, its .tflite files not exported: the rows must say so and give the export stage (6) alone."""
    adapter = _adapter_on("tfgridnet", monkeypatch, tmp_path)
    exp_dir = tmp_path / "exp" / "tfgridnet" / "mini"
    for strategy in ("direct", "progressive"):
        (exp_dir / strategy).mkdir(parents=True)
        (exp_dir / strategy / "best.weights.h5").touch()  # only tested for existence until a row is measured
    rows = {variant.variant: variant for variant in adapter.variants("mini")}
    assert rows["PL float Keras"].missing is None
    tflite = exp_dir / "tflite" / "progressive_float32.tflite"
    assert rows["PL float .tflite"].missing == (
        f"not exported yet: {tflite} is missing; run bash reproductions/tfgridnet/run.sh --stage 6 --stop-stage 6")

    # Stage 6 marked done but the file absent: run.sh would skip the stage, so the command must force it.
    (exp_dir / "stages").mkdir()
    (exp_dir / "stages" / "6.done").touch()
    rows = {variant.variant: variant for variant in adapter.variants("mini")}
    message = rows["PL PTQ int8 .tflite (spectral core)"].missing
    assert message.startswith(f"not exported yet: {exp_dir / 'tflite' / 'progressive_int8.tflite'} is missing; run "
                              "bash reproductions/tfgridnet/run.sh --stage 6 --stop-stage 6 --force"), message


def test_missing_weights_add_their_training_stages_without_unrelated_ones(monkeypatch, tmp_path):
    """Export needs both TF-GridNet models: with none trained, stages 2-3 then 6 (not the ablation stage 4 or evaluation stage 5)."""
    adapter = _adapter_on("tfgridnet", monkeypatch, tmp_path)
    rows = {variant.variant: variant for variant in adapter.variants("mini")}
    assert rows["PL float .tflite"].missing.endswith(
        "run bash reproductions/tfgridnet/run.sh --stage 2 --stop-stage 3, "
        "then bash reproductions/tfgridnet/run.sh --stage 6 --stop-stage 6")
    assert rows["PL float Keras"].missing.endswith("run bash reproductions/tfgridnet/run.sh --stage 3 --stop-stage 3")
    assert "--config paper" in adapter.run_command("paper", [5])


def test_crn_streaming_tflite_names_the_export_stage(monkeypatch, tmp_path):
    adapter = _adapter_on("crn", monkeypatch, tmp_path)
    weights = tmp_path / "exp" / "crn" / "mini" / "crn" / "best.weights.h5"
    weights.parent.mkdir(parents=True)
    weights.touch()
    rows = {variant.variant: variant for variant in adapter.variants("mini")}
    streaming = tmp_path / "exp" / "crn" / "mini" / "tflite" / "crn_streaming_int8.tflite"
    assert rows["streaming PTQ int8 .tflite"].missing == (
        f"not exported yet: {streaming} is missing; run bash reproductions/crn/run.sh --stage 5 --stop-stage 5")


def test_unknown_model_is_a_value_error():
    with pytest.raises(ValueError, match="unknown models"):
        models.adapters_for(["wavenet"])


def test_static_length_runner_pads_and_windows_to_the_exported_length(tmp_path):
    from common.tfkeras import keras, layers
    from common.tflite import export_tflite

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, layers.Dense(2)(inputs))  # frame-wise, so windows do not change the result
    path = export_tflite(model, tmp_path / "static.tflite", input_shapes=[(1, 8, 3)])
    run = models._static_length_runner(path, threads=1)
    for frames in (5, 8, 20):  # shorter, equal, longer than the static 8 frames
        signal = np.random.default_rng(frames).standard_normal((1, frames, 3)).astype(np.float32)
        np.testing.assert_allclose(run(signal), model(signal).numpy(), atol=1e-5)


@pytest.mark.parametrize("name", sorted(models.ADAPTERS))
def test_paper_without_a_trained_model_lists_speed_only_rows_with_random_weights(name, monkeypatch, tmp_path):
    adapter = _adapter_on(name, monkeypatch, tmp_path)
    variants = adapter.variants("paper")
    ready = [variant for variant in variants if not variant.missing]
    kinds = {variant.kind for variant in ready}
    assert "float" in kinds and "tflite" in kinds | {"tflite_streaming"}, kinds
    assert kinds & {"ptq_int8", "qat_int8", "fqse"}, kinds
    for variant in ready:
        assert variant.speed_only and variant.variant.endswith(f"[{models.SPEED_ONLY_LABEL}]"), variant.label
        assert "calibrated on seeded random audio" in variant.notes
        assert variant.calibration_audio is not None
        if variant.tflite_path is not None:  # written by the benchmark, beside (never inside) the recipe's folder
            assert (tmp_path / "bench" / name / "random_weights") in variant.tflite_path.parents
    for variant in variants:
        if variant.missing:
            assert not variant.missing.startswith("not trained yet"), variant.missing
    if name == "fqse":
        assert {"qat_int8", "fqse"} <= kinds  # the QAT and FQSE graphs are timed too
    # The mini config keeps saying what to train.
    assert not any(variant.speed_only for variant in adapter.variants("mini"))


def test_random_audio_and_seeded_weights_are_reproducible():
    first, second = models.random_audio(3, seconds=0.5), models.random_audio(3, seconds=0.5)
    assert len(first) == 3 and all(clip.shape == (8000,) and clip.dtype == np.float32 for clip in first)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    levels = [float(np.sqrt(np.mean(clip ** 2))) for clip in first]
    assert all(0.04 < level < 0.55 for level in levels) and len(set(np.round(levels, 3))) == 3

    from reproductions.sednn.dnn import build_sednn_dnn

    build = lambda: build_sednn_dnn(hidden_units=16, hidden_layers=1)  # noqa: E731
    weights = [models.seeded_model(build)().get_weights() for _ in range(2)]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    assert any(np.abs(w).sum() > 0 for w in weights[0])  # initialised, not zeros


def test_speed_only_rows_are_measured_without_quality(monkeypatch, tmp_path):
    """A small sednn DNN under the paper config name: exported, timed, sized; no quality pairs, labelled status."""
    from benchmarks import benchmark
    from common.config import load_config

    adapter = _adapter_on("sednn", monkeypatch, tmp_path)
    small = load_config("paper", models.REPOSITORY_ROOT / "reproductions" / "sednn",
                        ["model.hidden_units=32", "model.hidden_layers=1", "export.calibration_segments=8"])
    monkeypatch.setattr(type(adapter), "recipe_config", lambda self, config_name: small)
    adapter.timing_seconds = 0.5
    rows = {variant.kind: variant for variant in adapter.variants("paper") if not variant.missing}
    signal = models.random_audio(1, seconds=0.5, seed=9)[0]
    clip = {"name": "noise", "noisy": signal, "clean": signal, "snr_db": 0.0, "noise_type": "white"}
    for kind in ("tflite", "ptq_int8"):
        row, pairs = benchmark.measure_variant(rows[kind], [clip], signal, repeats=2, all_threads=2, quality=True)
        assert row["status"] == benchmark.SPEED_ONLY_STATUS and row["speed_only"], row["status"]
        assert pairs == [] and row["core_1_ms"] > 0 and row["rtf_1"] > 0 and row["tflite_bytes"] > 0
        assert row["parameters"] == 1799 * 32 + 32 + 32 * 257 + 257
    int8 = rows["ptq_int8"].tflite_path.stat().st_size
    assert int8 < rows["tflite"].tflite_path.stat().st_size / 2  # int8 weights really written


def test_long_inputs_run_in_bounded_windows_equal_to_the_whole_file_output(tmp_path):
    """A 20-s input (longer than common.enhancement.WHOLE_SECONDS) reaches the .tflite runner in windows of at most
    chunk + 2 x context samples; with a receptive field (17 samples) inside the discarded context the output equals
    the whole-file output. Streaming rows (state carried hop by hop) get the input whole."""
    from benchmarks.models import Adapter
    from common.enhancement import CHUNK_SECONDS, CONTEXT_SECONDS
    from common.tflite import TFLiteModel, export_tflite
    from common.tfkeras import keras, layers

    inputs = keras.Input((None, 1), batch_size=1, name="waveform")
    hidden = layers.Conv1D(4, 9, padding="same", activation="relu", name="conv_in")(inputs)
    model = keras.Model(inputs, layers.Conv1D(1, 9, padding="same", name="conv_out")(hidden))
    rng = np.random.default_rng(0)
    model.set_weights([0.3 * rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()])
    path = export_tflite(model, tmp_path / "tiny.tflite", "float32", input_shapes=[(1, None, 1)])
    lengths = []

    def runner(path, threads):
        tflite = TFLiteModel(path, num_threads=threads)

        def run(array):
            lengths.append(array.shape[1])
            return tflite(array)

        return run

    prepare = lambda signal: ([signal[None, :, None]], None)  # noqa: E731
    finish = lambda outputs, context, signal: np.asarray(outputs)[0, :, 0]  # noqa: E731
    signal = (0.1 * rng.standard_normal(20 * 16000)).astype(np.float32)
    whole = TFLiteModel(path)(signal[None, :, None])[0, :, 0]
    adapter = Adapter()
    chunked = adapter.tflite_variant("float", "tflite", path, prepare, finish, runner=runner).make_enhancer(1)(signal)
    assert max(lengths) == int((CHUNK_SECONDS + 2 * CONTEXT_SECONDS) * 16000) and len(lengths) == 5
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    lengths.clear()
    streaming = adapter.tflite_variant("streaming", "tflite", path, prepare, finish, runner=runner,
                                       streaming=True).make_enhancer(1)(signal)
    assert lengths == [signal.size]
    np.testing.assert_array_equal(streaming, whole)
