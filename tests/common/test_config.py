import pytest

from common.config import apply_override, load_config


@pytest.fixture
def recipe_dir(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mini.yaml").write_text("model:\n  filters: 30\n  causal: false\ntraining:\n  epochs: 2\n")
    return tmp_path


def test_named_config_and_overrides(recipe_dir):
    config = load_config("mini", recipe_dir, ["training.epochs=5", "model.causal=true", "model.filters=1e-3"])
    assert config["training"]["epochs"] == 5
    assert config["model"]["causal"] is True
    assert config["model"]["filters"] == pytest.approx(1e-3)
    assert config["config_name"] == "mini"


def test_config_by_path(recipe_dir, tmp_path):
    path = tmp_path / "custom.yaml"
    path.write_text("a: 1\n")
    assert load_config(str(path), recipe_dir)["config_name"] == "custom"


def test_unknown_key_is_refused():
    with pytest.raises(ValueError, match="model.filterz"):
        apply_override({"model": {"filters": 1}}, "model.filterz=3")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_override({"a": 1}, "a")


def test_missing_or_bad_file(recipe_dir):
    with pytest.raises(ValueError, match="paper.yaml does not exist"):
        load_config("paper", recipe_dir)
    (recipe_dir / "conf" / "paper.yaml").write_text("- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config("paper", recipe_dir)
