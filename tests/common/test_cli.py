import json
from pathlib import Path

import pytest
import yaml

from common.cli import main


class EchoRecipe:
    """A recipe that reports what the command line gave it."""

    name = "echo"

    def __init__(self):
        self.calls = []

    def add_arguments(self, command, parser):
        if command == "train":
            parser.add_argument("--fast", action="store_true")

    def info(self, config, args):
        return {"params": config["model"]["filters"], "config": args.config_name}

    def train(self, config, args):
        self.calls.append(("train", args.fast, args.exp_dir))

    def evaluate(self, config, args):
        raise ValueError("no trained model in exp/echo/mini")

    export = enhance = table = train


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    import common.cli

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mini.yaml").write_text("model:\n  filters: 30\n")
    monkeypatch.setattr(common.cli, "load_config",
                        lambda name, recipe_dir, overrides, **options: common.config.load_config(
                            name, tmp_path, overrides, **options))
    # Default experiment folders go under the test's folder, not the repository's exp/.
    monkeypatch.setattr(common.cli, "REPOSITORY_ROOT", tmp_path)
    return EchoRecipe()


def test_info_prints_one_json_line(recipe, capsys):
    assert main(recipe, ["info", "--set", "model.filters=7"]) == 0
    assert json.loads(capsys.readouterr().out.strip()) == {"params": 7, "config": "mini"}


def test_recipe_flags_and_default_folders(recipe):
    assert main(recipe, ["train", "--fast"]) == 0
    command, fast, exp_dir = recipe.calls[0]
    assert fast and exp_dir.parts[-3:] == ("exp", "echo", "mini")


def test_overrides_get_their_own_folders_and_a_reused_folder_refuses_another_model(recipe, tmp_path, capsys):
    from common.config import experiment_name

    assert main(recipe, ["train"]) == 0
    assert main(recipe, ["train", "--set", "model.filters=7"]) == 0
    plain, narrow = recipe.calls[0][2], recipe.calls[1][2]
    assert plain == tmp_path / "exp" / "echo" / "mini"
    assert narrow == tmp_path / "exp" / "echo" / experiment_name("mini", ["model.filters=7"])
    assert narrow.name.startswith("mini_") and len(narrow.name) == len("mini_") + 8
    # Each folder records the configuration it was trained with.
    assert yaml.safe_load((plain / "config.yaml").read_text())["model"] == {"filters": 30}
    assert yaml.safe_load((narrow / "config.yaml").read_text())["model"] == {"filters": 7}
    # Forcing the plain run's folder for the narrow model is refused before the recipe runs, naming the key.
    capsys.readouterr()
    assert main(recipe, ["train", "--set", "model.filters=7", "--exp-dir", str(plain)]) == 2
    error = capsys.readouterr().err
    assert "model.filters (30 recorded, 7 now)" in error and str(plain) in error
    assert len(recipe.calls) == 2
    assert yaml.safe_load((plain / "config.yaml").read_text())["model"] == {"filters": 30}


def test_user_errors_exit_2_with_message(recipe, capsys):
    assert main(recipe, ["evaluate"]) == 2
    assert "error: no trained model" in capsys.readouterr().err
    assert main(recipe, ["evaluate", "--noisy-dir", "x"]) == 2
    assert main(recipe, ["info", "--set", "model.nope=1"]) == 2
    capsys.readouterr()
    assert main(recipe, ["train", "--set", "model.filters=16.7"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --set model.filters=16.7: model.filters expects an int (the configuration holds 30), got a float 16.7")
    assert main(recipe, ["train", "--set", "model=3"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert recipe.calls == []


def test_help_lists_every_command(recipe, capsys):
    with pytest.raises(SystemExit):
        main(recipe, ["--help"])
    out = capsys.readouterr().out
    for command in ("info", "train", "evaluate", "export", "enhance", "table"):
        assert command in out


def test_enhancement_jobs_mirror_folders(tmp_path):
    from common.cli import enhancement_jobs

    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("a.wav", "sub/b.wav", "notes.txt"):
        (tmp_path / "in" / name).write_bytes(b"")
    jobs = enhancement_jobs(tmp_path / "in", tmp_path / "out")
    assert [(source.relative_to(tmp_path), target.relative_to(tmp_path)) for source, target in jobs] == [
        (Path("in/a.wav"), Path("out/a.wav")), (Path("in/sub/b.wav"), Path("out/sub/b.wav"))]
    assert enhancement_jobs(tmp_path / "in" / "a.wav", tmp_path / "x.wav") == [
        (tmp_path / "in" / "a.wav", tmp_path / "x.wav")]
    with pytest.raises(ValueError, match="no .wav files"):
        enhancement_jobs(tmp_path / "out_empty" if (tmp_path / "out_empty").mkdir() is None else None, tmp_path)
    with pytest.raises(ValueError, match="no such file"):
        enhancement_jobs(tmp_path / "missing", tmp_path / "out")
