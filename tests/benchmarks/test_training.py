"""``python -m benchmarks.training`` on a tiny ICSE FCN, 2 steps: the saved JSON's structure (no timings asserted);
the allocator rows run in child processes whose allocator the row records."""
import json
from pathlib import Path

import pytest
import yaml

from benchmarks import training
from common.tfkeras import keras
from common.training import tcmalloc_library


def test_tiny_icse_run_saves_every_option_with_provenance(tmp_path, mini_corpus_root, capsys):
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "reproductions/icse/conf/mini.yaml").read_text())
    config["model"].update(filters=4, kernel_size=5, hidden_layers=2)
    config["data"].update(corpus="folder", root=str(mini_corpus_root), max_train_seconds=None)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    results_dir = tmp_path / "results"
    assert training.main(["--config", "mini", "--recipes", "icse", "--steps", "2", "--warmup", "1",
                          "--recipe-config", f"icse={tmp_path / 'tiny.yaml'}",
                          "--results-dir", str(results_dir)]) == 0
    printed = capsys.readouterr().out
    assert "[1/8] icse float32: step" in printed and "[3/8] icse fused_lstm: not available" in printed
    assert keras.mixed_precision.global_policy().name == "float32"

    document = json.loads((results_dir / "results.json").read_text())
    provenance = document["provenance"]
    assert {"git", "packages", "date", "config"} <= set(provenance)
    assert provenance["config"]["steps"] == 2 and provenance["config"]["recipes"] == ["icse"]
    assert provenance["config"]["recipe_configs"]["icse"]["model"]["filters"] == 4
    rows = document["extra"]["results"]["icse"]
    assert list(rows) == list(training.OPTIONS)
    assert rows["fused_lstm"]["status"].startswith("not available")
    allocator_rows = ["glibc_malloc"] + (["tcmalloc"] if tcmalloc_library() else [])
    if not tcmalloc_library():
        assert rows["tcmalloc"]["status"].startswith("not available: libtcmalloc_minimal.so.4 not found")
    assert rows["glibc_malloc"]["allocator"] == "glibc malloc"
    assert rows.get("tcmalloc", {}).get("allocator", "tcmalloc") == "tcmalloc"
    assert provenance["config"]["allocator"] in ("glibc malloc", "tcmalloc", "jemalloc")
    for option in ["float32", "bf16", "data_serial", "data_path", "fit"] + allocator_rows:
        row = rows[option]
        assert row["status"] == "measured", option
        assert len(row["step_times_s"]) == len(row["example_times_s"]) == 2
        for figure in ("step", "example"):
            assert row[figure]["min_s"] <= row[figure]["median_s"] <= row[figure]["max_s"]
        assert row[figure]["median_s"] > 0
        reference = rows["glibc_malloc" if option in training.ALLOCATOR_OPTIONS else "float32"]
        assert row["step_speedup"] == pytest.approx(reference["step"]["median_s"] / row["step"]["median_s"])
    assert rows["float32"]["step_speedup"] == 1.0
    assert rows["float32"]["input_shape"] == [1, 48000, 1]  # 3 s where the config keeps whole utterances
    labels = [row["label"] for row in document["table"]["rows"]]
    assert labels == ["icse float32", "icse bf16", "icse data_serial", "icse data_path", "icse fit"] + [
        f"icse {option}" for option in ("tcmalloc", "glibc_malloc") if option in allocator_rows]


def test_bad_arguments_name_the_flag(capsys):
    assert training.main(["--recipes", "icse,wavenet"]) == 2
    assert "--recipes" in capsys.readouterr().err
    assert training.main(["--recipes", "icse", "--set", "model.filters=4"]) == 2
    assert "RECIPE:KEY=VALUE" in capsys.readouterr().err
