"""ICSE data: Fu's peak normalisation of a training pair, the fixed-length crops of the batches, and the examples
each corpus name opens (reproductions/icse/data.py)."""
from pathlib import Path

import numpy as np
import pytest
import yaml


def test_training_pair_divides_the_target_by_its_own_or_by_the_noisy_peak():
    from reproductions.icse.data import training_pair

    rng = np.random.default_rng(0)
    clean = (0.2 * rng.standard_normal(800)).astype(np.float32)
    noisy = clean + (0.5 * rng.standard_normal(800)).astype(np.float32)
    own_input, own_target = training_pair(noisy, clean, "own")
    assert np.max(np.abs(own_input)) == pytest.approx(1.0) and np.max(np.abs(own_target)) == pytest.approx(1.0)
    shared_input, shared_target = training_pair(noisy, clean, "noisy")
    np.testing.assert_allclose(shared_input, own_input, rtol=1e-6)
    # One gain for both: the target stays the speech component of the input, the noise their difference.
    np.testing.assert_allclose(shared_target, clean / np.max(np.abs(noisy)), rtol=1e-6)
    with pytest.raises(ValueError, match="data.target_peak"):
        training_pair(noisy, clean, "rms")


def test_segment_batches_are_fixed_length_crops_of_the_training_pairs(mini_corpus):
    from reproductions.icse.data import make_sequence_class, training_pair

    config = {"data": {"seed": 0, "train_snrs": [0], "target_peak": "noisy"}}
    sequence = make_sequence_class()(mini_corpus, config, "train", 5, batch_size=2, segment_samples=4000)
    assert len(sequence) == 3  # 5 crops in batches of 2, the last batch holds one
    noisy, clean = sequence[0]
    assert noisy.shape == clean.shape == (2, 4000, 1)
    assert sequence[2][0].shape == (1, 4000, 1)
    np.testing.assert_array_equal(sequence[0][0], noisy)  # the same crop when a resumed epoch reads it again
    # Each crop is a window of the whole peak-normalised pair (or the pair zero-padded when it is shorter).
    whole_noisy, whole_clean = training_pair(*sequence.examples[0].load()[:2], "noisy")
    padded = np.pad(whole_noisy, (0, max(0, 4000 - len(whole_noisy))))
    starts = [start for start in range(len(padded) - 4000 + 1)
              if np.array_equal(padded[start:start + 4000], noisy[0, :, 0])]
    assert starts
    padded_clean = np.pad(whole_clean, (0, max(0, 4000 - len(whole_clean))))
    np.testing.assert_array_equal(padded_clean[starts[0]:starts[0] + 4000], clean[0, :, 0])


def test_each_corpus_name_gives_the_examples_of_its_adapter(tmp_path, mini_data_dir, mini_corpus):
    from data_prep.adapters.timit import timit_corpus
    from reproductions.icse.data import load_corpus, test_examples, training_examples
    from tests.corpus_trees import describe, timit_fixture

    config = yaml.safe_load((Path(__file__).resolve().parents[3] / "reproductions/icse/conf/mini.yaml").read_text())
    config["data"].update(data_dir=str(mini_data_dir), max_train_seconds=None)
    config["config_path"] = "conf/tiny.yaml"
    corpus = load_corpus(config)
    assert corpus.root == mini_corpus.root
    assert describe(training_examples(corpus, config, "train", 1, 5)) == describe(
        training_examples(mini_corpus, config, "train", 1, 5))
    assert describe(test_examples(corpus, config, 6)) == describe(test_examples(mini_corpus, config, 6))

    # TIMIT's validation speakers are drawn with data.seed (3 holds one out of the fixture's four)
    timit_fixture(tmp_path)
    config["data"]["seed"] = 3
    config["data"].update(corpus="timit", timit_root=str(tmp_path / "TIMIT"),
                          noise_train_dir=str(tmp_path / "noise" / "train"), noise_test_dir=str(tmp_path / "noise" / "test"))
    expected = timit_corpus(tmp_path / "TIMIT", tmp_path / "noise" / "train", tmp_path / "noise" / "test", seed=3)
    opened = load_corpus(config)
    assert opened.speakers("valid") == expected.speakers("valid") == ["FCJF0"]
    assert describe(training_examples(opened, config, "train", 0, None)) == describe(
        training_examples(expected, config, "train", 0, None))
    config["data"]["corpus"] = "librimix"
    with pytest.raises(ValueError, match=r"^conf/tiny\.yaml: data\.corpus = 'librimix' .* 'mini', 'folder', 'timit'$"):
        load_corpus(config)
