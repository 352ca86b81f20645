"""The evaluate command on a folder of pairs, and the inference level (reproductions/tfgridnet/recipe.py)."""
from pathlib import Path

import numpy as np
import pytest

from common.config import load_config
from reproductions.tfgridnet.strategies import build_model

RECIPE_DIR = Path(__file__).resolve().parents[3] / "reproductions" / "tfgridnet"


def test_evaluate_scores_a_folder_of_pairs_with_a_checkpoint(tmp_path, capsys):
    import json

    import soundfile

    from common.cli import main
    from reproductions.tfgridnet.recipe import Recipe

    sizes = ["model.embedding_dim=4", "model.hidden_units=4", "model.num_blocks=1", "model.unfold_stride=4"]
    config = load_config("mini", RECIPE_DIR, sizes)
    model = build_model(config, False)
    checkpoint = tmp_path / "direct.weights.h5"
    model.save_weights(str(checkpoint))
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for index in range(2):
        clean = 0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * (200 + 40 * index) * t)
        noisy = clean + 0.05 * rng.standard_normal(t.size)
        for folder, signal in (("noisy", noisy), ("clean", clean)):
            (tmp_path / folder).mkdir(exist_ok=True)
            soundfile.write(tmp_path / folder / f"u{index}.wav", signal.astype(np.float32), 16000, subtype="FLOAT")
    soundfile.write(tmp_path / "noisy" / "cut.wav", noisy[:8000].astype(np.float32), 16000, subtype="FLOAT")
    soundfile.write(tmp_path / "clean" / "cut.wav", clean.astype(np.float32), 16000, subtype="FLOAT")
    arguments = ["evaluate", "--strategy", "direct", "--checkpoint", str(checkpoint),
                 "--noisy-dir", str(tmp_path / "noisy"), "--clean-dir", str(tmp_path / "clean"),
                 "--exp-dir", str(tmp_path / "exp"), "--results-dir", str(tmp_path / "results"),
                 "--set", "evaluation.processes=1"]
    for item in sizes:
        arguments += ["--set", item]
    assert main(Recipe(), arguments) == 0
    assert "; scored 2 of 3 pairs; 1 invalid: " in capsys.readouterr().out
    document = json.loads((tmp_path / "results" / "scores" / "folders" / "direct.json").read_text())
    assert [row["name"] for row in document["rows"]] == ["u0.wav", "u1.wav"] and document["invalid"][0]["name"] == "cut.wav"

    def numpy_si_snr(reference, estimate):
        reference, estimate = reference - reference.mean(), estimate - estimate.mean()
        target = np.dot(estimate, reference) / np.dot(reference, reference) * reference
        return 10 * np.log10(np.sum(target ** 2) / np.sum((estimate - target) ** 2))

    for row in document["rows"]:
        noisy, _ = soundfile.read(tmp_path / "noisy" / row["name"], dtype="float32")
        clean, _ = soundfile.read(tmp_path / "clean" / row["name"], dtype="float64")
        assert row["noisy_si_snr"] == pytest.approx(numpy_si_snr(clean, noisy.astype(np.float64)), abs=1e-3)
        # The untrained model's output is tiny (about -46 dB SI-SNR) and its score is not repeatable to 0.001 dB
        # between runs: only its presence is checked.
        assert row["valid"] and np.isfinite(row["si_snr"]) and row["dnsmos_ovrl"] is not None
    assert not (tmp_path / "results" / "scores" / "direct.json").exists()  # the test set's scores, which table reads


def test_inference_level_is_checked_and_returns_the_speech_at_the_input_level():
    from common.enhancement import configured_enhancer, inference_level

    config = load_config("mini", RECIPE_DIR)
    assert inference_level(config) is None  # the mini model normalises its input itself
    for bad in ("loud", 5.0, True):
        with pytest.raises(ValueError, match="inference.level_dbfs must be null or a number"):
            inference_level(dict(config, inference={"level_dbfs": bad}))
    seen = []

    def halve(signal):
        seen.append(float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))))
        return signal / 2

    signal = 0.01 * np.random.default_rng(5).standard_normal(4000).astype(np.float32)
    enhance = configured_enhancer(dict(config, inference={"level_dbfs": -20.0}), halve)
    # The output is fitted to the input (least-squares gain): a model that only halves returns the input.
    np.testing.assert_allclose(enhance(signal), signal, rtol=1e-5)
    assert seen[0] == pytest.approx(10 ** (-20 / 20), rel=1e-4)
