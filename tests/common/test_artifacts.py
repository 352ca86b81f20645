"""Each recipe's published artefacts: every stage is a stage of its run.sh, and the stages that make a file."""
import importlib
from pathlib import Path

import pytest

from common.artifacts import Artifact, run_sh_stages, stages_to_make
from common.config import load_config

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
RECIPES = ("icse", "fqse", "sednn", "crn", "tfgridnet")


@pytest.mark.parametrize("config_name", ["mini", "paper"])
@pytest.mark.parametrize("name", RECIPES)
def test_every_published_stage_is_a_stage_of_that_run_sh(name, config_name, tmp_path):
    recipe = importlib.import_module(f"reproductions.{name}.recipe")
    config = load_config(config_name, REPOSITORY_ROOT / "reproductions" / name)
    published = recipe.artifacts(tmp_path, config)
    stages = run_sh_stages(name)
    assert published and stages
    for artifact_name, artifact in published.items():
        assert artifact.stage in stages, f"{name}: {artifact_name} names stage {artifact.stage}, not in run.sh"
        assert set(artifact.needs) <= set(published), f"{name}: {artifact_name} needs an unpublished artefact"
        assert Path(artifact.path).is_relative_to(tmp_path)


def test_run_sh_stages_reads_the_stage_functions():
    assert run_sh_stages("crn") == set(range(8))


def test_stages_to_make_adds_the_stages_of_missing_inputs(tmp_path):
    published = {"base": Artifact(tmp_path / "base", 1), "child": Artifact(tmp_path / "child", 3, ("base",)),
                 "export": Artifact(tmp_path / "export", 5, ("base", "child"))}
    assert stages_to_make(published, "export") == [5, 1, 3]
    (tmp_path / "base").write_text("")
    assert stages_to_make(published, "export") == [5, 3]
    (tmp_path / "child").write_text("")
    assert stages_to_make(published, "export") == [5]
