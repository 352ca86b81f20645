"""CRN data (reproductions/crn/data.py): the author's masked MSE, padded batches of whole utterances with the
valid-frame mask, the training, validation and test mixtures, and the corpus each name opens."""
import numpy as np
import pytest

from tests.reproductions.crn.helpers import MINI


def test_masked_mse_matches_numpy():
    from common.tfkeras import tf
    from reproductions.crn.data import masked_mse

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


def test_compressed_magnitude_loss_matches_numpy_and_checks_its_exponent():
    from common.tfkeras import tf
    from reproductions.crn.data import MAGNITUDE_FLOOR, masked_mse, training_loss

    rng = np.random.default_rng(1)
    estimate = rng.uniform(0.0, 3.0, (2, 5, 161)).astype(np.float32)
    target = rng.uniform(0.0, 3.0, (2, 5, 161)).astype(np.float32)
    mask = np.ones((2, 5, 1), np.float32)
    mask[1, 3:] = 0.0
    compress = lambda x: (x.astype(np.float64) + MAGNITUDE_FLOOR) ** 0.3  # noqa: E731
    expected = (((compress(estimate) - compress(target)) ** 2) * mask).sum() / (mask.sum() * 161)
    config = {"config_path": "mini.yaml", "training": {"magnitude_exponent": 0.3}}
    loss = training_loss(config)
    actual = float(loss(tf.constant(np.concatenate([target, mask], -1)), tf.constant(estimate)))
    assert actual == pytest.approx(expected, rel=1e-4)
    assert training_loss({"training": {"magnitude_exponent": 1.0}}) is masked_mse
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"mini.yaml: training.magnitude_exponent must be in \(0, 1\]"):
            training_loss({"config_path": "mini.yaml", "training": {"magnitude_exponent": bad}})


def test_padded_batches_of_whole_utterances_carry_the_valid_frame_mask(mini_corpus):
    from reproductions.crn.data import make_dataset, training_examples

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
    from reproductions.crn.data import test_examples

    examples = test_examples(mini_corpus, MINI)
    train_noises = {row["noise_type"] for row in mini_corpus.noise("train")}
    assert {e.meta["noise_type"] for e in examples}.isdisjoint(train_noises)
    assert len({e.meta["speech"] for e in examples}) == 2
    conditions = {(e.meta["noise_type"], e.meta["snr_db"]) for e in examples}
    assert {snr for _, snr in conditions} == {-5.0, 0.0, 5.0}
    assert len(examples) == 2 * len(conditions)


def test_each_corpus_name_gives_the_examples_of_its_adapter(tmp_path, mini_data_dir, mini_corpus):
    from data_prep.adapters.wsj0_chime2 import wsj0_si84_corpus
    from reproductions.crn.data import load_corpus, test_examples, training_examples
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


def test_training_set_is_augmented_and_validation_is_played_at_the_inference_level(mini_corpus):
    from reproductions.crn.data import training_examples

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
