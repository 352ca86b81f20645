"""The evaluation summary through the shared result layout and the table that reads it (reproductions/fqse/recipe.py)."""
import json
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from common.config import load_config
from reproductions.fqse.recipe import Recipe
from reproductions.fqse.scoring import ROBUSTNESS_SYSTEMS, SCORED_SYSTEMS, load_summary, save_summary

RECIPE_DIR = Path(__file__).resolve().parents[3] / "reproductions" / "fqse"


def evaluated(files=3, seed=0):
    """Per-file SI-SNR and the summary as ``Recipe.evaluate`` computes them, with made-up scores."""
    rng = np.random.default_rng(seed)
    scores = {name: [float(value) for value in rng.normal(8.0, 3.0, files)] for name in SCORED_SYSTEMS}
    scores["noisy"] = [float(value) for value in rng.normal(5.0, 3.0, files)]
    summary = {"files": files,
               "si_snr": {name: float(np.mean(values)) for name, values in scores.items()},
               "si_snr_improvement": {name: float(np.mean(np.array(values) - np.array(scores["noisy"])))
                                      for name, values in scores.items() if name != "noisy"}}
    summary["buckets"] = {str(snr): {"float": 10.0 + snr, "vanilla_tflite": 9.0 + snr, "fqse_tflite": 9.5 + snr,
                                     "vanilla_input_floor": 30.0 + snr} for snr in (0.0, 15.0)}
    summary["tflite"] = {variant: {"bytes": 1000 + index, "gzip_bytes": 900 + index, "rtf_1_thread": 0.1 * index}
                         for index, variant in enumerate(("vanilla", "fqse"))}
    summary["nominal"] = {name: {"pesq_wb": [1.2 + index / 10, 0.1, files], "stoi": [0.8, 0.05, files],
                                 "si_snr": [summary["si_snr"][name], 1.0, files], "invalid": 0, "invalid_reasons": {}}
                          for index, name in enumerate(("noisy", *ROBUSTNESS_SYSTEMS))}
    return scores, summary


def test_saved_scores_give_back_the_evaluation_summary(tmp_path):
    scores, summary = evaluated()
    save_summary(tmp_path, scores, summary, {"config_name": "mini"}, "fqse/mini")
    assert sorted(path.name for path in (tmp_path / "scores").glob("*.json")) == sorted(
        f"{name}.json" for name in (*SCORED_SYSTEMS, "noisy"))
    document = json.loads((tmp_path / "scores" / "fqse_tflite.json").read_text())
    assert [row["si_snr"] for row in document["rows"]] == scores["fqse_tflite"]
    assert document["provenance"]["run"] == "fqse/mini"
    # No robustness scores were written, so the summary has none, as an evaluation without them.
    assert load_summary(tmp_path) == json.loads(json.dumps(summary))


def test_summary_without_buckets(tmp_path):
    scores, summary = evaluated(files=2, seed=1)
    del summary["buckets"]
    save_summary(tmp_path, scores, summary, None, None)
    assert load_summary(tmp_path) == json.loads(json.dumps(summary))


def test_table_needs_every_system_scored(tmp_path):
    scores, summary = evaluated()
    save_summary(tmp_path, scores, summary, None, None)
    (tmp_path / "scores" / "vanilla_keras.json").unlink()
    config = load_config("mini", RECIPE_DIR)
    with pytest.raises(ValueError, match=r"scores/vanilla_keras\.json: missing; run 'evaluate' first"):
        Recipe().table(config, Namespace(results_dir=str(tmp_path)))


def test_table_prints_and_saves_the_saved_scores(tmp_path, capsys):
    scores, summary = evaluated()
    save_summary(tmp_path, scores, summary, None, None)
    config = load_config("mini", RECIPE_DIR)
    Recipe().table(config, Namespace(results_dir=str(tmp_path)))
    printed = capsys.readouterr().out
    assert "FQSE Conv-TasNet (mini, 3 test files)" in printed
    assert f"Noisy input SI-SNR {summary['si_snr']['noisy']:.2f} dB." in printed
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["extra"]["evaluation"] == json.loads(json.dumps(summary))
    assert saved["extra"]["targets"]["fqse_high_snr_gap_smaller"]


def test_a_configuration_with_the_old_section_name_is_refused_naming_file_and_section(tmp_path, capsys):
    from common.cli import main

    path = tmp_path / "old.yaml"
    text = (RECIPE_DIR / "conf" / "mini.yaml").read_text(encoding="utf-8")
    assert "\nevaluation:\n" in text
    path.write_text(text.replace("\nevaluation:\n", "\nevaluate:\n"), encoding="utf-8")
    assert main(Recipe(), ["info", "--config", str(path), "--set", "training.epochs=2"]) == 2
    assert capsys.readouterr().err == (f"error: {path}: no section 'evaluation' (found 'evaluate'); the recipe reads "
                                       "the sections model, data, loss, training, qat, quantization, inference, "
                                       "fqse, export, evaluation\n")
    # The recipe's own files load with their overrides.
    config = load_config("mini", RECIPE_DIR, ["evaluation.processes=1"], sections=Recipe.config_sections)
    assert config["evaluation"]["processes"] == 1
