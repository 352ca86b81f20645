"""ICSE recipe: CLI info JSON, the size rule on the released model, the released FCN on real speech, and the whole
PP -> PQ -> PP+PQ -> int8 export -> evaluate -> table pipeline on a tiny configuration (reproductions/icse/recipe.py)."""
import io
import json
import math
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import yaml

from common.cli import main
from reproductions.icse.data import peak_normalise
from reproductions.icse.fcn import build_fcn, conv_layers, load_keras1_weights
from reproductions.icse.recipe import Recipe
from reproductions.icse.scoring import keras_enhancer
from reproductions.icse.variants import models_dir

ANCHORS = Path(__file__).resolve().parents[3] / ".." / "shared" / "anchors" / "icse"
UNPRUNED = ANCHORS / "FCNN_0509.hdf5"
RELEASED_PP_PQ = ANCHORS / "Kmeans_16C_ReTrain_st7_sp0.65_FCNN_0425.hdf5"


def require(path):
    if not path.is_file():
        pytest.skip(f"missing ../shared/anchors/icse/{path.name}")
    return path


def run_cli(*argv):
    output = io.StringIO()
    with redirect_stdout(output):
        status = main(Recipe(), list(argv))
    assert status == 0, output.getvalue()
    return output.getvalue()


def test_info_prints_one_json_line_with_the_paper_counts():
    lines = [line for line in run_cli("info", "--config", "paper").splitlines() if line.startswith("{")]
    assert len(lines) == 1
    info = json.loads(lines[0])
    assert info["params"] == 300_931
    assert info["conv_weights"] == 300_300
    # Per second of 16 kHz audio: 55 taps x (1x30 + 6 x 30x30 + 30x1) channel pairs, plus 2 multiplications per
    # element in each of the 7 instance norms.
    assert info["macs_per_second"] == 16000 * 55 * (30 + 6 * 900 + 30) + 7 * 2 * 16000 * 30


def test_size_rule_on_the_released_pp_pq_model_gives_9_76_percent():
    from reproductions.icse.size_rule import size_percent

    path = require(RELEASED_PP_PQ)
    model = load_keras1_weights(build_fcn(), path)
    kernels = {layer.name: layer.kernel.numpy() for layer in conv_layers(model)}
    # docs/icse.md#size-rule: (233,200 x 4 + 1,650 x 3) / (300,300 x 32) = 9.758 %.
    levels = {name: 16 for name in kernels} | {"conv8": 8}
    assert size_percent(kernels, levels) == pytest.approx(100 * 937_750 / 9_609_600, abs=1e-9)
    assert round(size_percent(kernels, levels), 2) == 9.76

    lines = [line for line in run_cli("info", "--config", "paper", "--init-from-keras1", str(path)).splitlines()
             if line.startswith("{")]
    info = json.loads(lines[0])
    assert round(info["size_percent"], 2) == 9.76
    assert info["kept_fraction"] == pytest.approx(234_850 / 300_300, abs=1e-6)
    assert info["distinct_nonzero_per_layer"] == {f"conv{index}": 32 for index in range(1, 8)} | {"conv8": 8}


def test_released_fcn_improves_si_snr_and_pesq_on_real_speech_at_0_db(mini_corpus):
    from common.metrics import pesq_wb, si_snr
    from data_prep.paper_sets import fcn_set

    model = load_keras1_weights(build_fcn(), require(UNPRUNED))
    enhance = keras_enhancer(model)
    # Stationary broadband noises, the kind of the authors' TIMIT training noises (docs/icse.md#keras1-weights: the
    # released FCN gains 5.5 dB SI-SNR at 0 dB on TIMIT with white noise).
    examples = [example for example in fcn_set(mini_corpus, "test", snrs=(0.0,), seed=0)
                if example.meta["noise_type"] in ("white", "pink")][:6]
    assert len(examples) >= 4
    gains = []
    for example in examples:
        noisy, clean, _ = example.load()
        enhanced = peak_normalise(enhance(noisy))
        gains.append((si_snr(clean, enhanced) - si_snr(clean, noisy), pesq_wb(clean, enhanced) - pesq_wb(clean, noisy)))
    si_snr_gain, pesq_gain = np.mean(gains, axis=0)
    assert si_snr_gain > 1.0, gains
    assert pesq_gain > 0.0, gains


def tiny_config(tmp_path, corpus_root):
    config = yaml.safe_load((Path(__file__).resolve().parents[3] / "reproductions/icse/conf/mini.yaml").read_text())
    config["model"].update(filters=4, kernel_size=9, hidden_layers=2)
    config["data"].update(corpus="folder", root=str(corpus_root), valid_items=2, max_train_seconds=None)
    config["training"].update(epochs=1, utterances_per_epoch=3)
    config["pruning"].update(thetas=[0.65])
    config["quantization"]["fp16_sweep"] = True
    config["pruning"]["retrain"].update(epochs=1, utterances_per_epoch=2)
    config["quantization"].update(clusters_per_sign=2, output_clusters_per_sign=1, sweep=[2], theta_sweep=[2])
    config["quantization"]["retrain"].update(epochs=1, utterances_per_epoch=2)
    config["quantization"]["sweep_retrain"].update(utterances_per_epoch=1)
    config["export"]["representative_utterances"] = 2
    config["evaluation"].update(max_items=2, processes=1, robustness_items=1)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_pipeline_on_a_tiny_config(tmp_path, mini_corpus_root):
    from reproductions.icse.compression import icse_kernel_sparsity

    config = tiny_config(tmp_path, mini_corpus_root)
    exp_dir, results_dir = tmp_path / "exp", tmp_path / "results"
    common = ["--config", str(config), "--exp-dir", str(exp_dir), "--results-dir", str(results_dir)]
    for variant in ("fcn", "pp", "pq", "pp_pq"):
        run_cli("train", "--variant", variant, *common)
    names = sorted(path.name for path in models_dir(exp_dir).glob("*.weights.h5"))
    assert names == sorted(f"{name}.weights.h5" for name in (
        "fcn", "pp_0.65", "pq_k2", "pq_k2_fp16", "pp_0.65_pq_k2", "pp_0.65_pq_k2_fp16"))

    def kernels(name):
        model = build_fcn(filters=4, kernel_size=9, hidden_layers=2)
        model.load_weights(str(models_dir(exp_dir) / f"{name}.weights.h5"))
        return [layer.kernel.numpy() for layer in conv_layers(model)]

    float_kernels, pruned_kernels = kernels("fcn"), kernels("pp_0.65")
    for index, (original, pruned) in enumerate(zip(float_kernels, pruned_kernels)):
        zero_kernels = ~np.any(pruned != 0, axis=0)  # (in, out): every tap zero
        if index == len(float_kernels) - 1:
            assert not zero_kernels.any()  # the output layer is never pruned
            continue
        # Independent numpy statement of the rule: prune kernel (k, j) when more than theta of its taps are below
        # the mean |w| of filter j.
        magnitude = np.abs(original)
        expected = (magnitude < magnitude.mean(axis=(0, 1))).mean(axis=0) > 0.65
        np.testing.assert_array_equal(zero_kernels, expected)
        np.testing.assert_array_equal(zero_kernels, icse_kernel_sparsity(original) > 0.65)
    for kernel, pruned in zip(kernels("pp_0.65_pq_k2"), pruned_kernels):
        assert np.all(kernel[pruned == 0] == 0)  # pruned weights stay pruned through PQ retraining
    hidden, output = kernels("pp_0.65_pq_k2")[:-1], kernels("pp_0.65_pq_k2")[-1]
    for kernel in hidden:
        values = np.unique(kernel[kernel != 0])
        assert (values < 0).sum() <= 2 and (values > 0).sum() <= 2
    assert np.unique(output).size <= 2  # 1 + 1 centroids in the output layer
    meta = json.loads((models_dir(exp_dir) / "pp_0.65_pq_k2.json").read_text())
    assert meta["levels"] == {"conv1": 2, "conv2": 2, "conv3": 2}
    fp16 = kernels("pq_k2_fp16")
    assert all(np.array_equal(kernel, kernel.astype(np.float16).astype(np.float32)) for kernel in fp16)

    run_cli("export", *common)
    assert (models_dir(exp_dir) / "fcn_int8.tflite").is_file()
    run_cli("evaluate", *common)
    for name in ("noisy", "fcn", "pp_0.65_pq_k2", "fcn_int8", "pp_0.65_pq_k2_int8"):
        document = json.loads((results_dir / "scores" / f"{name}.json").read_text())
        summary, rows = document["summary"], document["rows"]
        assert summary["pesq_wb"][2] == 2 and math.isfinite(summary["pesq_wb"][0])
        # STOI needs 30 frames of speech: a one-letter prompt is left out with the reason, never averaged as 0
        scored = [row for row in rows if row["stoi"] is not None]
        assert summary["stoi"][2] == len(scored) >= 1
        assert all("stoi: not enough non-silent frames" in row["reason"] for row in rows if row["stoi"] is None)
    robustness = json.loads((results_dir / "scores" / "robustness.json").read_text())
    assert robustness["systems"] == ["fcn", "pp_0.65_pq_k2", "pp_0.65_pq_k2_int8"]
    assert sorted(robustness["scores"]) == sorted([f"unseen voice x noise {snr} dB" for snr in ("-5", "+0", "+5")]
                                                  + ["test at -40 dBFS", "test at -10 dBFS"])
    for set_name, by_system in robustness["scores"].items():
        assert sorted(by_system) == ["fcn", "noisy", "pp_0.65_pq_k2", "pp_0.65_pq_k2_int8"]
        expected_items = 1 if set_name.startswith("unseen") else 2
        assert by_system["fcn"]["pesq_wb"][2] == expected_items and math.isfinite(by_system["fcn"]["pesq_wb"][0])
    # Peak normalisation takes the level out: the test set at -40 dBFS scores as the nominal test set.
    nominal = json.loads((results_dir / "scores" / "fcn.json").read_text())["summary"]
    quiet = robustness["scores"]["test at -40 dBFS"]["fcn"]
    assert quiet["si_snr"][0] == pytest.approx(nominal["si_snr"][0], abs=0.01)
    assert "robustness: scores exist" in run_cli("evaluate", *common)
    table = run_cli("table", *common)
    assert "PP+PQ theta=0.65 k=2" in table and "9.76" in table  # the paper's size beside ours
    assert "unseen voice x noise -5 dB: pp_0.65_pq_k2_int8" in table
    assert "fcn: above the noisy input on every unseen set and metric" in table
    assert (results_dir / "robustness" / "results.json").is_file()
    document = json.loads((results_dir / "results.json").read_text())
    sizes = {row["label"]: row["ours"].get("size_percent") for row in document["table"]["rows"]}
    model = build_fcn(filters=4, kernel_size=9, hidden_layers=2)
    model.load_weights(str(models_dir(exp_dir) / "pp_0.65_pq_k2.weights.h5"))
    kernels_list = [layer.kernel.numpy() for layer in conv_layers(model)]
    expected = 100 * sum(np.count_nonzero(kernel) * 1.0 for kernel in kernels_list) / (
        sum(kernel.size for kernel in kernels_list) * 32)  # log2(2) = 1 bit per kept weight
    assert sizes["PP+PQ theta=0.65 k=2"] == pytest.approx(expected)
    assert sizes["FCN (float)"] == pytest.approx(100.0)


def test_evaluate_scores_a_folder_of_pairs_and_lists_the_invalid_one(tmp_path, mini_corpus):
    import soundfile

    from data_prep.paper_sets import fcn_set

    model = load_keras1_weights(build_fcn(), require(UNPRUNED))
    checkpoint = tmp_path / "released.weights.h5"
    model.save_weights(str(checkpoint))
    examples = [example for example in fcn_set(mini_corpus, "test", snrs=(0.0,), seed=0)
                if example.meta["noise_type"] == "white"][:2]
    noisy_dir, clean_dir = tmp_path / "noisy", tmp_path / "clean"
    noisy_dir.mkdir()
    clean_dir.mkdir()
    for index, example in enumerate(examples):
        noisy, clean, _ = example.load()
        soundfile.write(noisy_dir / f"u{index}.wav", noisy, 16000, subtype="FLOAT")
        soundfile.write(clean_dir / f"u{index}.wav", clean, 16000, subtype="FLOAT")
    soundfile.write(noisy_dir / "cut.wav", noisy[: noisy.size // 2], 16000, subtype="FLOAT")
    soundfile.write(clean_dir / "cut.wav", clean, 16000, subtype="FLOAT")
    output = run_cli("evaluate", "--config", "paper", "--checkpoint", str(checkpoint), "--noisy-dir", str(noisy_dir),
                     "--clean-dir", str(clean_dir), "--exp-dir", str(tmp_path / "exp"),
                     "--results-dir", str(tmp_path / "results"))
    assert "; scored 2 of 3 pairs; 1 invalid: " in output and "cut.wav" in output
    document = json.loads((tmp_path / "results" / "scores" / "folders" / "fcn.json").read_text())
    assert [row["name"] for row in document["rows"]] == ["u0.wav", "u1.wav"]
    assert document["invalid"][0]["name"] == "cut.wav" and document["summary"]["invalid"] == 1
    enhance = keras_enhancer(model)
    for row, index in zip(document["rows"], range(2)):
        noisy, _ = soundfile.read(noisy_dir / f"u{index}.wav", dtype="float32")
        clean, _ = soundfile.read(clean_dir / f"u{index}.wav", dtype="float64")
        enhanced = peak_normalise(enhance(noisy)).astype(np.float64)
        for key, estimate in (("si_snr", enhanced), ("noisy_si_snr", noisy.astype(np.float64))):
            reference, estimate = clean - clean.mean(), estimate - estimate.mean()
            target = np.dot(estimate, reference) / np.dot(reference, reference) * reference
            expected = 10 * np.log10(np.sum(target ** 2) / np.sum((estimate - target) ** 2))
            assert row[key] == pytest.approx(expected, abs=1e-3)
        assert row["si_snr"] > row["noisy_si_snr"]  # the released FCN removes white noise at 0 dB


@pytest.mark.parametrize("level_dbfs", [None, -25.0])
def test_enhance_gives_the_same_output_for_a_quiet_and_a_loud_file(tmp_path, mini_corpus, level_dbfs):
    import soundfile

    from data_prep.paper_sets import fcn_set

    model = build_fcn(filters=4, kernel_size=9, hidden_layers=2, seed=3)
    checkpoint = tmp_path / "model.weights.h5"
    model.save_weights(str(checkpoint))
    config = yaml.safe_load((Path(__file__).resolve().parents[3] / "reproductions/icse/conf/mini.yaml").read_text())
    config["model"].update(filters=4, kernel_size=9, hidden_layers=2)
    config["inference"]["level_dbfs"] = level_dbfs
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(config))
    noisy, _, _ = fcn_set(mini_corpus, "test", snrs=(0.0,), seed=0, max_items=1)[0].load()
    rms = np.sqrt(np.mean(np.square(noisy)))
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name, dbfs in (("quiet", -45.0), ("loud", -20.0)):
        soundfile.write(inputs / f"{name}.wav", noisy * (10 ** (dbfs / 20) / rms), 16000, subtype="FLOAT")
    run_cli("enhance", "--config", str(config_path), "--checkpoint", str(checkpoint), str(inputs), str(outputs),
            "--exp-dir", str(tmp_path / "exp"), "--results-dir", str(tmp_path / "results"))
    quiet, _ = soundfile.read(outputs / "quiet.wav", dtype="float32")
    loud, _ = soundfile.read(outputs / "loud.wav", dtype="float32")
    assert np.max(np.abs(loud)) == pytest.approx(1.0, abs=1e-3)  # Fu's protocol: the output peak-normalised
    np.testing.assert_allclose(quiet, loud, atol=1e-4)
