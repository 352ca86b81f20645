"""CRN recipe (reproductions/crn/recipe.py): the author's masked MSE, padded batches of whole utterances, the
test protocol and ``info``."""
from types import SimpleNamespace

import numpy as np
import pytest


def test_masked_mse_matches_numpy():
    from common.tfkeras import tf
    from reproductions.crn.recipe import masked_mse

    rng = np.random.default_rng(0)
    lengths = [7, 3, 5]
    estimate = rng.standard_normal((3, 7, 161)).astype(np.float32)
    target = rng.standard_normal((3, 7, 161)).astype(np.float32)
    mask = np.zeros((3, 7, 1), np.float32)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1.0
        target[row, length:] = 0.0  # zero padding
    # criteria.py: sum((est - lbl)^2 * mask) / (sum(n_frames) * F)
    expected = sum(((estimate[row, :length] - target[row, :length]) ** 2).sum()
                   for row, length in enumerate(lengths)) / (sum(lengths) * 161)
    actual = float(masked_mse(tf.constant(np.concatenate([target, mask], -1)), tf.constant(estimate)))
    assert actual == pytest.approx(expected, rel=1e-5)
    # padded frames never count, whatever the estimate there
    estimate[0 + 1, 3:] += 100.0
    again = float(masked_mse(tf.constant(np.concatenate([target, mask], -1)), tf.constant(estimate)))
    assert again == pytest.approx(expected, rel=1e-5)


MINI = {
    "model": {"frequency_bins": 161, "channels": [2, 3, 4, 4, 4], "lstm_layers": 2},
    "baseline": {"units": 8, "lstm_layers": 4},
    "data": {"corpus": "mini", "per_utterance": 1, "train_items": 5, "valid_items": 2, "max_train_seconds": None,
             "seed": 0},
    "test": {"snrs": [-5, 0, 5], "noise_types": None, "utterances": 2, "seed": 0},
    "config_name": "tiny",
}


def test_padded_batches_of_whole_utterances_carry_the_valid_frame_mask(mini_corpus):
    from reproductions.crn.recipe import make_dataset, training_examples

    examples = training_examples(mini_corpus, MINI, "train")
    assert len(examples) == 5 and {e.meta["snr_db"] for e in examples} <= {-5.0, -4.0, -3.0, -2.0, -1.0, 0.0}
    noisy, target = next(iter(make_dataset(examples[:3], batch_size=3)))
    noisy, target = noisy.numpy(), target.numpy()
    lengths = []
    for example in examples[:3]:
        mixture, clean, _ = example.load()
        assert np.sqrt(np.mean(mixture.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)  # mix_crn
        lengths.append(mixture.size // 160 + 1)  # countFrames of the author's STFT
    assert noisy.shape == (3, max(lengths), 161) and target.shape == (3, max(lengths), 162)
    for row, length in enumerate(lengths):
        assert np.all(target[row, :length, -1] == 1.0) and np.all(target[row, length:] == 0.0)
        assert np.all(noisy[row, length:] == 0.0)


def test_test_set_uses_unseen_noises_same_utterances_every_condition(mini_corpus):
    from reproductions.crn.recipe import test_examples

    examples = test_examples(mini_corpus, MINI)
    train_noises = {row["noise_type"] for row in mini_corpus.noise("train")}
    assert {e.meta["noise_type"] for e in examples}.isdisjoint(train_noises)
    assert len({e.meta["speech"] for e in examples}) == 2
    conditions = {(e.meta["noise_type"], e.meta["snr_db"]) for e in examples}
    assert {snr for _, snr in conditions} == {-5.0, 0.0, 5.0}
    assert len(examples) == 2 * len(conditions)


def test_each_corpus_name_gives_the_examples_of_its_adapter(tmp_path, mini_data_dir, mini_corpus):
    from data_prep.adapters.wsj0_chime2 import wsj0_si84_corpus
    from reproductions.crn.recipe import load_corpus, test_examples, training_examples
    from tests.corpus_trees import describe, wsj0_fixture

    mini = {**MINI, "data": {**MINI["data"], "data_dir": str(mini_data_dir)}, "config_path": "conf/tiny.yaml"}
    corpus = load_corpus(mini)
    assert corpus.root == mini_corpus.root
    assert describe(training_examples(corpus, mini, "train")) == describe(training_examples(mini_corpus, mini, "train"))
    assert describe(test_examples(corpus, mini)) == describe(test_examples(mini_corpus, mini))

    wsj0_fixture(tmp_path)
    folders = {"wsj0_root": str(tmp_path / "wsj0"), "noise_train_dir": str(tmp_path / "sound_effects"),
               "noise_test_dir": str(tmp_path / "auditec")}
    paper = {**mini, "data": {**mini["data"], "corpus": "wsj0_si84", "seed": 1, "train_items": None, **folders}}
    expected = wsj0_si84_corpus(tmp_path / "wsj0", tmp_path / "sound_effects", tmp_path / "auditec", seed=1)
    opened = load_corpus(paper)
    assert opened.speakers("test_unseen_voice") == expected.speakers("test_unseen_voice")
    train = training_examples(opened, paper, "train")
    assert train and describe(train) == describe(training_examples(expected, paper, "train"))
    with pytest.raises(ValueError, match=r"^conf/tiny\.yaml: data\.corpus = 'dns5' .* 'mini', 'wsj0_si84'$"):
        load_corpus({**mini, "data": {**mini["data"], "corpus": "dns5"}})


def test_info_counts_match_formulas():
    from reproductions.crn.crn import crn_macs_per_frame
    from reproductions.crn.recipe import Recipe

    info = Recipe().info(MINI, SimpleNamespace())
    assert info["crn"]["macs_per_second"] == info["crn"]["macs_per_second_from_shapes"]
    assert info["crn"]["macs_per_second"] == 100 * crn_macs_per_frame(channels=MINI["model"]["channels"])
    assert info["lstm2"]["macs_per_second"] == info["lstm2"]["macs_per_second_from_shapes"]
    assert info["crn"]["parameters_pytorch_convention"] - info["crn"]["parameters_keras"] == 2 * 4 * 16
    assert info["algorithmic_latency_ms"] == 20.0


def test_beats_unprocessed_is_checked_per_noise_as_well_as_on_average():
    from reproductions.crn.recipe import crn_beats_unprocessed

    def cells(stoi, pesq):
        return {"stoi_-5": stoi, "pesq_-5": pesq}

    summaries = {("unprocessed", "all"): cells(55.0, 0.80), ("crn", "all"): cells(58.0, 0.84),
                 ("unprocessed", "babble"): cells(49.0, 0.77), ("crn", "babble"): cells(50.0, 0.71),
                 ("lstm2", "babble"): cells(60.0, 0.90)}
    verdicts = crn_beats_unprocessed(summaries, [-5.0])
    assert verdicts == {"all/stoi_-5": True, "all/pesq_-5": True, "babble/stoi_-5": True, "babble/pesq_-5": False}


def test_crn_minus_unprocessed_pairs_the_same_mixtures_per_noise():
    from reproductions.crn.recipe import crn_minus_unprocessed

    def row(name, noise_type, stoi, pesq):
        return {"name": name, "noise_type": noise_type, "snr_db": -5.0, "stoi": stoi, "pesq_nb_raw": pesq}

    unprocessed = [row("a", "babble", 0.50, 1.0), row("b", "babble", 0.40, 1.2), row("a", "crowd", 0.60, 0.9),
                   row("b", "crowd", 0.70, 1.1), row("c", "crowd", 0.65, 1.0)]
    # listed in another order, and utterance "c" was not scored for the CRN: it must drop out of the pairs
    crn = [row("b", "crowd", 0.74, 1.3), row("b", "babble", 0.38, 1.5), row("a", "babble", 0.46, 1.1),
           row("a", "crowd", 0.62, 1.0)]
    differences = crn_minus_unprocessed(crn, unprocessed, [-5.0])
    assert differences["babble/stoi_-5"]["mean"] == pytest.approx(-0.03)
    assert differences["babble/pesq_-5"]["mean"] == pytest.approx(0.2)
    assert differences["crowd/stoi_-5"]["count"] == 2
    assert differences["crowd/stoi_-5"]["mean"] == pytest.approx(0.03)
    assert differences["all/stoi_-5"]["count"] == 4
    assert differences["all/stoi_-5"]["mean"] == pytest.approx(0.0)
    # two pairs whose differences are -0.02 and -0.04: half-width t(1, 0.975) = 12.706 x 0.01
    assert differences["babble/stoi_-5"]["half_width"] == pytest.approx(0.12706, rel=1e-3)


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


def test_training_set_is_augmented_and_validation_is_played_at_the_inference_level(mini_corpus):
    from reproductions.crn.recipe import training_examples

    config = {**MINI, "data": {**MINI["data"], "train_snrs": [3, 4, 5],
                               "augmentation": {"speed_factors": [0.9, 1.1], "level_dbfs": [-30, -20]}},
              "inference": {"level_dbfs": -25}}
    train = training_examples(mini_corpus, config, "train")
    assert {e.meta["snr_db"] for e in train} <= {3.0, 4.0, 5.0} and all(e.meta.get("augmented") for e in train)
    for example in train[:3]:
        noisy, clean, noise = example.load()
        level = 20 * np.log10(np.sqrt(np.mean(noisy.astype(np.float64) ** 2)))
        assert -30.01 <= level <= -19.99
        np.testing.assert_allclose(noisy, clean + noise, atol=1e-5)
    for example in training_examples(mini_corpus, config, "valid"):
        noisy = example.load()[0].astype(np.float64)
        assert 20 * np.log10(np.sqrt(np.mean(noisy ** 2))) == pytest.approx(-25.0, abs=1e-3)
    assert not any(e.meta.get("augmented") for e in training_examples(mini_corpus, config, "valid"))


@pytest.mark.parametrize("level_dbfs", [-25.0, None])
def test_model_enhancers_run_at_the_inference_level(tmp_path, level_dbfs):
    from reproductions.crn.recipe import Recipe, build_model

    config = {**MINI, "inference": {"level_dbfs": level_dbfs}}
    model = build_model(config, "crn")
    (tmp_path / "crn").mkdir()
    model.save_weights(str(tmp_path / "crn" / "best.weights.h5"))
    enhance = Recipe()._enhancers(config, SimpleNamespace(exp_dir=tmp_path), ["crn"])["crn"]
    noisy = (0.05 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    quiet, loud = enhance(noisy), enhance(8.0 * noisy)
    # the network is not scale invariant: only an input played at one level gives outputs in proportion
    assert np.allclose(loud, 8.0 * quiet, rtol=1e-3, atol=1e-5) == (level_dbfs is not None)


def test_mini_targets_are_gains_over_the_unprocessed_average():
    from reproductions.crn.recipe import mini_targets

    summaries = {("unprocessed", "all"): {"stoi_-5": 60.0, "stoi_5": 80.0, "pesq_wb": 1.2, "si_snr": 0.0},
                 ("crn", "all"): {"stoi_-5": 62.0, "stoi_5": 84.0, "pesq_wb": 1.5, "si_snr": 3.5},
                 ("crn", "babble"): {"stoi_-5": 10.0, "stoi_5": 10.0, "pesq_wb": 1.0, "si_snr": -9.0}}
    targets = mini_targets(summaries)
    assert set(targets) == {"crn"}
    assert targets["crn"] == pytest.approx({"si_snri": 3.5, "pesq_wb_gain": 0.3, "stoi_gain": 0.03})


def test_evaluate_and_table_print_the_robustness_rows_and_checks(tmp_path, capsys, mini_corpus):
    import json

    import yaml

    from common.cli import main
    from reproductions.crn.recipe import Recipe, build_model

    config = yaml.safe_load(open("reproductions/crn/conf/mini.yaml"))
    config["model"]["channels"] = [2, 3, 4, 4, 4]
    config["baseline"]["units"] = 8
    config["test"].update(utterances=1, noise_types=["babble"])
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
