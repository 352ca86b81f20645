import pytest

import hashlib
from pathlib import Path

from common.config import (
    apply_override,
    check_keys,
    experiment_name,
    load_config,
    load_recipe_config,
    overrides_tag,
    record_experiment,
)


@pytest.fixture
def recipe_dir(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mini.yaml").write_text(
        "model:\n  filters: 30\n  causal: false\n  kernel: [3, 5]\n  activation: relu\n"
        "training:\n  epochs: 2\n  learning_rate: 0.1\n  warmup: null\n"
    )
    return tmp_path


def test_named_config_and_overrides(recipe_dir):
    config = load_config("mini", recipe_dir, ["training.epochs=5", "model.causal=true", "training.learning_rate=1e-3"])
    assert config["training"]["epochs"] == 5
    assert config["model"]["causal"] is True
    assert config["training"]["learning_rate"] == pytest.approx(1e-3)
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


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("training.epochs=abc",
         r"--set training.epochs=abc: training.epochs expects an int \(the configuration holds 2\), got a string 'abc'"),
        ("model.filters=16.7", r"model.filters expects an int .* got a float 16.7"),
        ("model.filters=[1,2]", r"model.filters expects an int .* got a list"),
        ("model=3", r"--set model=3: model is a mapping \(keys: activation, causal, filters, kernel\), not an int"),
        ("model.causal=1", r"model.causal expects a bool"),
        ("training.learning_rate=true", r"training.learning_rate expects a number .* got a bool"),
        ("model.kernel=3", r"model.kernel expects a list"),
        ("model.kernel=[3, 4.5]", r"model.kernel\[1\] expects an int .* got a float 4.5"),
        ("model.activation=[relu]", r"model.activation expects a string"),
        ("model={filters: 2.5}", r"model.filters expects an int"),
        ("model={filterz: 2}", r"unknown key model.filterz"),
        ("model.filters=[1", r"--set model.filters=\[1: the value is not valid YAML"),
    ],
)
def test_override_that_changes_the_type_is_refused_naming_the_key(recipe_dir, assignment, message):
    with pytest.raises(ValueError, match=message):
        load_config("mini", recipe_dir, [assignment])


def test_override_keeps_the_yaml_type(recipe_dir):
    config = load_config("mini", recipe_dir, [
        "training.learning_rate=1", "model.activation=2024", "model.kernel=[7]", "training.warmup=[1, x]",
        "model.filters=8", "model={causal: true}",
    ])
    # An int where the YAML holds a float becomes that float; a string entry keeps the text as written.
    assert config["training"]["learning_rate"] == 1.0 and isinstance(config["training"]["learning_rate"], float)
    assert config["model"]["activation"] == "2024"
    assert config["model"]["kernel"] == [7]
    assert config["training"]["warmup"] == [1, "x"]
    # A mapping value sets its keys and keeps the others, including earlier overrides.
    assert config["model"] == {"filters": 8, "causal": True, "kernel": [7], "activation": "2024"}
    # Checked against the YAML as loaded: a null entry accepts any type, however an earlier override set it.
    assert load_config("mini", recipe_dir, ["training.warmup=1", "training.warmup=abc"])["training"]["warmup"] == "abc"


def test_config_that_is_not_yaml_text_is_refused_naming_the_file(recipe_dir, tmp_path):
    wav = tmp_path / "speech.wav"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)))
    with pytest.raises(ValueError, match=f"configuration file {wav} is not a YAML file"):
        load_config(str(wav), recipe_dir)
    disguised = tmp_path / "speech.yaml"
    disguised.write_bytes(wav.read_bytes())
    with pytest.raises(ValueError, match=f"configuration file {disguised} is not YAML text"):
        load_config(str(disguised), recipe_dir)


def test_experiment_name_tags_overrides_independently_of_their_order():
    assert experiment_name("mini") == "mini"
    expected = hashlib.sha256(b"model.filters=16\ntraining.epochs=3\n").hexdigest()[:8]
    assert overrides_tag(["training.epochs=3", "model.filters=16"]) == expected
    assert experiment_name("mini", ["model.filters=16", "training.epochs=3"]) == f"mini_{expected}"
    # The last assignment of a key decides, as when the overrides are applied.
    assert overrides_tag(["model.filters=4", "model.filters=16", "training.epochs=3"]) == expected
    assert overrides_tag(["model.filters=17", "training.epochs=3"]) != expected


def test_recorded_experiment_refuses_another_model(recipe_dir, tmp_path):
    exp_dir = tmp_path / "exp"
    config = load_config("mini", recipe_dir)
    path = record_experiment(exp_dir, config)
    assert load_config(str(path), recipe_dir)["model"] == config["model"]
    # Other training settings resume in the same folder; another model does not.
    record_experiment(exp_dir, load_config("mini", recipe_dir, ["training.epochs=9"]))
    wider = load_config("mini", recipe_dir, ["model.filters=64", "model.kernel=[3]"])
    with pytest.raises(ValueError, match=r"model.filters \(30 recorded, 64 now\); model.kernel \(\[3, 5\] recorded"):
        record_experiment(exp_dir, wider)
    with pytest.raises(ValueError, match=r"training.epochs \(9 recorded, 2 now\)"):
        record_experiment(exp_dir, config, sections=("model", "training"))


def test_sections_named_by_the_recipe_are_checked_naming_the_file(recipe_dir):
    path = recipe_dir / "conf" / "mini.yaml"
    assert load_config("mini", recipe_dir, ["training.epochs=4"], sections=("model", "training"))["training"] == {
        "epochs": 4, "learning_rate": 0.1, "warmup": None}
    # fqse's old section name: the missing section and the unknown one are both named, with the file.
    path.write_text(path.read_text() + "evaluate:\n  processes: 2\n")
    with pytest.raises(ValueError) as error:
        load_config("mini", recipe_dir, sections=("model", "training", "evaluation"))
    assert str(error.value) == (f"{path}: no section 'evaluation' (found 'evaluate'); the recipe reads the sections "
                                "model, training, evaluation")
    with pytest.raises(ValueError, match=rf"^{path}: unknown section 'evaluate'; the recipe reads the sections "
                                         "model, training$"):
        load_config("mini", recipe_dir, sections=("model", "training"))
    with pytest.raises(ValueError, match=rf"^{path}: no sections 'data', 'export'; "):
        load_config("mini", recipe_dir, sections=("model", "data", "training", "evaluate", "export"))
    # Without sections (a caller that is not a recipe) nothing is checked.
    assert load_config("mini", recipe_dir)["evaluate"] == {"processes": 2}


def test_recipes_sections_are_their_yaml_sections():
    from pathlib import Path

    import yaml

    import reproductions.crn.recipe
    import reproductions.fqse.recipe
    import reproductions.icse.recipe
    import reproductions.sednn.recipe
    import reproductions.tfgridnet.recipe

    root = Path(__file__).resolve().parents[2] / "reproductions"
    for module in (reproductions.crn.recipe, reproductions.fqse.recipe, reproductions.icse.recipe,
                   reproductions.sednn.recipe, reproductions.tfgridnet.recipe):
        recipe = module.Recipe
        for name in ("mini", "paper"):
            text = (root / recipe.name / "conf" / f"{name}.yaml").read_text(encoding="utf-8")
            assert list(yaml.safe_load(text)) == list(recipe.config_sections), (recipe.name, name)
            load_config(name, root / recipe.name, sections=recipe.config_sections)


def test_recipe_config_outside_the_command_line_gets_the_recipes_section_check(tmp_path):
    import yaml

    root = Path(__file__).resolve().parents[2] / "reproductions"
    assert load_recipe_config("crn", "mini")["evaluation"]["snrs"] == [-5, 0, 5]
    config = yaml.safe_load((root / "crn" / "conf" / "mini.yaml").read_text(encoding="utf-8"))
    config["test"] = config.pop("evaluation")
    path = tmp_path / "renamed.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^{path}: no section 'evaluation' \(found 'test'\)"):
        load_recipe_config("crn", str(path))
    with pytest.raises(ValueError, match="no recipe 'crm'"):
        load_recipe_config("crm", "mini")


def test_check_keys_names_the_unknown_or_missing_key_and_the_accepted_ones():
    section = {"filters": 3, "kernel": 5}
    assert check_keys(section, "model", ("filters", "kernel")) is section
    assert check_keys({"filters": 3}, "model", ("filters",), optional=("kernel",)) == {"filters": 3}
    with pytest.raises(ValueError) as error:
        check_keys({"filters": 3, "kernal": 5}, "model", ("filters", "kernel"), source="conf/mini.yaml")
    assert str(error.value) == "conf/mini.yaml: unknown key model.kernal; model accepts: filters, kernel"
    with pytest.raises(ValueError) as error:
        check_keys({"filters": 3}, "model", ("filters", "kernel", "layers"), optional=("name",))
    assert str(error.value) == ("missing keys model.kernel, model.layers; model requires: filters, kernel, layers "
                                "(optional: name)")
    with pytest.raises(ValueError, match=r"^conf/x.yaml: model must be a mapping with the keys filters, got an int$"):
        check_keys(3, "model", ("filters",), source="conf/x.yaml")
