"""The shared run.sh stage driver: ranges, skipping finished stages, --force, --help, failures."""
import os
import subprocess
from pathlib import Path

import pytest

from common.training import tcmalloc_library

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# One name per test worker process: the workers share the repository's exp/ folder.
STAGE_TEST_NAME = f"stagetest{os.getpid()}"
EXP = REPOSITORY_ROOT / "exp" / STAGE_TEST_NAME

RUN_SH = """
recipe={recipe}
stage_titles=([0]="prepare" [1]="train" [2]="evaluate")
stage_0() { echo "ran 0 $config" >> "$LOG"; }
stage_1() { echo "ran 1${set_arguments[*]:+ ${set_arguments[*]}}" >> "$LOG"; }
stage_2() { echo "ran 2" >> "$LOG"; [[ -z "${FAIL:-}" ]]; if [[ -n "${ABSENT:-}" ]]; then stage_skipped=1; fi; }
source "{root}/common/stages.sh"
run_stages "$@"
"""


@pytest.fixture
def recipe(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text(RUN_SH.replace("{root}", str(REPOSITORY_ROOT)).replace("{recipe}", STAGE_TEST_NAME))
    log = tmp_path / "log.txt"
    yield script, log
    subprocess.run(["rm", "-rf", str(EXP)])


def run(script, log, *arguments, **environment):
    result = subprocess.run(["bash", str(script), *arguments], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "LOG": str(log), **environment})
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return result, lines


def test_stages_run_once_then_skip(recipe):
    script, log = recipe
    result, lines = run(script, log)
    assert result.returncode == 0, result.stderr
    assert lines == ["ran 0 mini", "ran 1", "ran 2"]
    assert "Stage 1 finished in" in result.stdout
    result, lines = run(script, log)
    assert lines == [] and "done before, skipped" in result.stdout
    times = (EXP / "mini" / "stages" / "times.tsv").read_text().splitlines()
    assert [line.split("\t")[1] for line in times] == ["0", "1", "2"]


def test_overrides_have_their_own_stage_markers(recipe):
    from common.config import experiment_name

    script, log = recipe
    run(script, log)
    # The same folder as the python commands of that run use, so its stages are not skipped as done.
    result, lines = run(script, log, "--set", "b=2", "--set", "a=1")
    assert result.returncode == 0, result.stderr
    assert lines == ["ran 0 mini", "ran 1 --set b=2 --set a=1", "ran 2"]
    tagged = EXP / experiment_name("mini", ["a=1", "b=2"]) / "stages"
    assert sorted(path.name for path in tagged.glob("*.done")) == ["0.done", "1.done", "2.done"]
    result, lines = run(script, log, "--set", "a=1", "--set", "b=2")
    assert lines == [] and "done before, skipped" in result.stdout


def test_range_and_force(recipe):
    script, log = recipe
    run(script, log)
    result, lines = run(script, log, "--stage", "1", "--stop-stage", "1", "--force", "--config", "paper")
    assert lines == ["ran 1"]
    result, lines = run(script, log, "--stage", "1", "--stop-stage", "1", "--force")
    assert lines == ["ran 1"]


def test_failed_stage_is_not_marked_done(recipe):
    script, log = recipe
    result, lines = run(script, log, FAIL="1")
    assert result.returncode != 0 and lines == ["ran 0 mini", "ran 1", "ran 2"]
    result, lines = run(script, log)
    assert lines == ["ran 2"]


def test_help_and_unknown_option(recipe):
    script, log = recipe
    result, _ = run(script, log, "--help")
    assert result.returncode == 0 and "stage 1  train" in result.stdout and "--stop-stage" in result.stdout
    result, _ = run(script, log, "--bogus")
    assert result.returncode == 2 and "unknown option '--bogus'" in result.stderr


def test_a_stage_that_skips_itself_is_not_marked_done(recipe):
    script, log = recipe
    result, lines = run(script, log, ABSENT="1")
    assert result.returncode == 0, result.stderr
    assert lines == ["ran 0 mini", "ran 1", "ran 2"] and "Stage 2 skipped: not marked done" in result.stdout
    result, lines = run(script, log)
    assert lines == ["ran 2"] and "Stage 2 finished in" in result.stdout


ALLOCATOR_RUN_SH = """
recipe={recipe}
stage_titles=([0]="allocator")
stage_0() { if grep -q libtcmalloc /proc/self/maps; then echo tcmalloc >> "$LOG"; else echo glibc >> "$LOG"; fi; }
source "{root}/common/stages.sh"
run_stages --force "$@"
"""


@pytest.mark.skipif(tcmalloc_library() is None,
                    reason="libtcmalloc_minimal.so.4 is not installed (./runme.sh setup installs it)")
def test_stage_commands_run_on_tcmalloc_unless_told_otherwise(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text(ALLOCATOR_RUN_SH.replace("{root}", str(REPOSITORY_ROOT)).replace("{recipe}", STAGE_TEST_NAME))
    log = tmp_path / "log.txt"
    try:
        assert run(script, log)[1] == ["tcmalloc"]
        assert run(script, log, SE_ALLOCATOR="system")[1] == ["glibc"]
    finally:
        subprocess.run(["rm", "-rf", str(EXP)])
