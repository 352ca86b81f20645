"""What each reproduction's run.sh leaves on disk, published by the recipe itself.

Every ``reproductions/<name>/recipe.py`` defines ``artifacts(exp_dir, config) -> {name: Artifact}``: the file each
trained model or exported .tflite lives in, the run.sh stage that writes it, and the artefacts that stage reads.
Tools outside the recipe (the benchmark) read these instead of re-deriving file names and stage numbers, so a
renamed file or a renumbered stage changes in one place; ``tests/common/test_artifacts.py`` checks that every
published stage is a stage of that run.sh.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
_STAGE_FUNCTION = re.compile(r"^stage_(\d+)\s*\(\)", re.MULTILINE)


@dataclass(frozen=True)
class Artifact:
    """``path``, written by run.sh stage ``stage``, which reads the artefacts named in ``needs``."""

    path: Path
    stage: int
    needs: tuple = ()


def stages_to_make(artifacts: dict, name: str) -> list:
    """The run.sh stages that write ``name``: its own stage, then, for every artefact that stage reads and that is
    not on disk, the stages that make that one (recursively)."""
    artifact = artifacts[name]
    stages = [artifact.stage]
    for need in artifact.needs:
        if not artifacts[need].path.is_file():
            stages += [stage for stage in stages_to_make(artifacts, need) if stage not in stages]
    return stages


def run_sh_stages(recipe_name: str) -> set:
    """The stage numbers ``reproductions/<recipe_name>/run.sh`` defines (its ``stage_<N>()`` functions)."""
    path = REPOSITORY_ROOT / "reproductions" / recipe_name / "run.sh"
    return {int(number) for number in _STAGE_FUNCTION.findall(path.read_text())}
