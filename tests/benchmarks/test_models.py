"""The per-reproduction adapters on an empty experiment folder: every variant is listed, none crashes, and each
missing one names the run.sh that produces it (or says the recipe does not produce it)."""
import numpy as np
import pytest

from benchmarks import models


@pytest.mark.parametrize("name", sorted(models.ADAPTERS))
def test_adapter_lists_missing_artefacts_with_the_command_to_run(name, monkeypatch, tmp_path):
    adapter = models.adapters_for([name])[0]
    monkeypatch.setattr(type(adapter), "exp_dir", lambda self, config_name: tmp_path / "exp" / name / config_name)
    monkeypatch.setattr(type(adapter), "bench_dir", lambda self, config_name: tmp_path / "bench" / name)
    monkeypatch.setattr(type(adapter), "results_dir", lambda self, config_name: tmp_path / "results" / name)
    variants = adapter.variants("mini")
    assert variants, f"{name}: no variants listed"
    for variant in variants:
        assert variant.model == name
        assert variant.missing, f"{variant.label} claims to be ready in an empty folder"
        assert (variant.missing.startswith(f"not trained yet: run bash reproductions/{name}/run.sh")
                or variant.missing.startswith(f"not produced by reproductions/{name}")
                or variant.missing.startswith("not available:")), variant.missing
    kinds = {variant.kind for variant in variants}
    if not any(v.missing.startswith("not available:") for v in variants):
        assert "float" in kinds


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
