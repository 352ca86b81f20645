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
    """The PL model trained, its .tflite files not exported: the rows must say so and give stage 5 alone."""
    adapter = _adapter_on("tfgridnet", monkeypatch, tmp_path)
    exp_dir = tmp_path / "exp" / "tfgridnet" / "mini"
    for strategy in ("direct", "progressive"):
        (exp_dir / strategy).mkdir(parents=True)
        (exp_dir / strategy / "best.weights.h5").touch()  # only tested for existence until a row is measured
    rows = {variant.variant: variant for variant in adapter.variants("mini")}
    assert rows["PL float Keras"].missing is None
    tflite = exp_dir / "tflite" / "progressive_float32.tflite"
    assert rows["PL float .tflite"].missing == (
        f"not exported yet: {tflite} is missing; run bash reproductions/tfgridnet/run.sh --stage 5 --stop-stage 5")

    # Stage 5 marked done but the file absent: run.sh would skip the stage, so the command must force it.
    (exp_dir / "stages").mkdir()
    (exp_dir / "stages" / "5.done").touch()
    rows = {variant.variant: variant for variant in adapter.variants("mini")}
    message = rows["PL PTQ int8 .tflite (spectral core)"].missing
    assert message.startswith(f"not exported yet: {exp_dir / 'tflite' / 'progressive_int8.tflite'} is missing; run "
                              "bash reproductions/tfgridnet/run.sh --stage 5 --stop-stage 5 --force"), message


def test_missing_weights_add_their_training_stages_without_unrelated_ones(monkeypatch, tmp_path):
    """Export needs both TF-GridNet models: with none trained, stages 2-3 then 5 (not evaluation stage 4)."""
    adapter = _adapter_on("tfgridnet", monkeypatch, tmp_path)
    rows = {variant.variant: variant for variant in adapter.variants("mini")}
    assert rows["PL float .tflite"].missing.endswith(
        "run bash reproductions/tfgridnet/run.sh --stage 2 --stop-stage 3, "
        "then bash reproductions/tfgridnet/run.sh --stage 5 --stop-stage 5")
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
