"""CRN recipe (reproductions/crn/recipe.py): ``info`` against the formulas, ``evaluate`` on a folder of pairs, and
``evaluate`` then ``table`` with the robustness rows."""
from types import SimpleNamespace

import numpy as np
import pytest

from tests.reproductions.crn.helpers import MINI


def test_info_counts_match_formulas():
    from reproductions.crn.crn import crn_macs_per_frame
    from reproductions.crn.recipe import Recipe

    info = Recipe().info(MINI, SimpleNamespace())
    assert info["crn"]["macs_per_second"] == info["crn"]["macs_per_second_from_shapes"]
    assert info["crn"]["macs_per_second"] == 100 * crn_macs_per_frame(channels=MINI["model"]["channels"])
    assert info["lstm2"]["macs_per_second"] == info["lstm2"]["macs_per_second_from_shapes"]
    assert info["crn"]["parameters_pytorch_convention"] - info["crn"]["parameters_keras"] == 2 * 4 * 16
    assert info["algorithmic_latency_ms"] == 20.0


def test_evaluate_scores_a_folder_of_pairs_for_the_unprocessed_system(tmp_path, capsys):
    import json

    import soundfile

    from common.cli import main
    from reproductions.crn.recipe import Recipe

    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    expected = {}
    for index in range(2):
        clean = (0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * (200 + 40 * index) * t))
        noisy = clean + 0.05 * (index + 1) * rng.standard_normal(t.size)
        for folder, signal in (("noisy", noisy), ("clean", clean)):
            (tmp_path / folder).mkdir(exist_ok=True)
            soundfile.write(tmp_path / folder / f"u{index}.wav", signal.astype(np.float32), 16000, subtype="FLOAT")
        written, _ = soundfile.read(tmp_path / "noisy" / f"u{index}.wav", dtype="float64")
        reference, _ = soundfile.read(tmp_path / "clean" / f"u{index}.wav", dtype="float64")
        expected[f"u{index}.wav"] = 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - written) ** 2))
    soundfile.write(tmp_path / "noisy" / "narrow.wav", np.ones(800, np.float32) * 0.1, 8000)
    status = main(Recipe(), ["evaluate", "--noisy-dir", str(tmp_path / "noisy"), "--clean-dir", str(tmp_path / "clean"),
                             "--systems", "unprocessed", "--exp-dir", str(tmp_path / "exp"),
                             "--results-dir", str(tmp_path / "results"), "--set", "evaluation.processes=1"])
    assert status == 0
    assert "unprocessed: stoi " in capsys.readouterr().out
    document = json.loads((tmp_path / "results" / "scores" / "folders" / "unprocessed.json").read_text())
    # The unprocessed system is scored as it was read.
    assert {row["name"]: row["snr"] for row in document["rows"]} == pytest.approx(expected, abs=1e-4)
    assert document["summary"]["scored"] == 2 and document["summary"]["pairs"] == 3
    assert document["invalid"][0]["reason"].endswith(f"narrow.wav: no clean partner in {tmp_path / 'clean'}")
    assert not (tmp_path / "results" / "scores" / "unprocessed.json").exists()  # the test set's, which table reads


def test_evaluate_and_table_print_the_robustness_rows_and_checks(tmp_path, capsys, mini_corpus):
    import json

    import yaml

    from common.cli import main
    from reproductions.crn.networks import build_model
    from reproductions.crn.recipe import Recipe

    config = yaml.safe_load(open("reproductions/crn/conf/mini.yaml"))
    config["model"]["channels"] = [2, 3, 4, 4, 4]
    config["baseline"]["units"] = 8
    config["evaluation"].update(utterances=1, noise_types=["babble"])
    config["evaluation"].update(processes=1, robustness_items=2)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    exp = tmp_path / "exp"
    for which in ("crn", "lstm2"):
        (exp / which).mkdir(parents=True)
        build_model(config, which).save_weights(str(exp / which / "best.weights.h5"))
    common = ["--config", str(path), "--exp-dir", str(exp), "--results-dir", str(tmp_path / "results")]
    assert main(Recipe(), ["evaluate", *common]) == 0
    from common.evaluation import load_robustness, load_scores

    scores = load_robustness(tmp_path / "results", ["lstm2", "crn"])
    assert list(scores) == ["unseen voice x noise -5 dB", "unseen voice x noise +0 dB",
                            "unseen voice x noise +5 dB", "test at -40 dBFS", "test at -10 dBFS"]
    assert all(list(by_system) == ["noisy", "lstm2", "crn"] for by_system in scores.values())
    assert load_scores(tmp_path / "results", "crn")["provenance"]["config"]["model"]["channels"] == [2, 3, 4, 4, 4]
    assert scores["unseen voice x noise -5 dB"]["noisy"]["si_snr"][2] == 2
    capsys.readouterr()
    assert main(Recipe(), ["table", *common]) == 0
    out = capsys.readouterr().out
    assert "against the mini targets" in out and "SI-SNRi dB" in out
    assert "unseen voice x noise -5 dB: crn" in out and "level rows within 0.05 PESQ WB" in out
    assert (tmp_path / "results" / "robustness" / "results.json").is_file()
