"""The per-reproduction adapters on an empty experiment folder: every variant is listed, none crashes, and each
missing one names the run.sh that produces it (or says the recipe does not produce it)."""
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
