"""Progressive-learning targets, the training batches and the corpus each name opens
(reproductions/tfgridnet/data.py)."""
import copy
from pathlib import Path

import numpy as np
import pytest

from common.config import load_config
from reproductions.tfgridnet.data import draw_examples, make_batches, progressive_snrs, training_pair

RECIPE_DIR = Path(__file__).resolve().parents[3] / "reproductions" / "tfgridnet"


def variance_snr(clean, mixture):
    """Upstream's mk_mixture sets SNR from variances: 10 log10(var(s) / var(n))."""
    return 10 * np.log10(np.var(clean) / np.var(mixture - clean))


def test_progressive_targets_are_remixes_at_the_ladder_snrs(mini_corpus):
    example = draw_examples({"data": {"snr_range": [-5, 15], "segment_seconds": 1.0}}, mini_corpus, "train",
                            seed=3, max_items=1)[0]
    noisy, clean, noise = example.load()
    segment = 16000
    _, targets = training_pair(example, segment, snrs=(0.0, 5.0, 10.0, 15.0))
    assert targets.shape == (5, segment)
    length = min(clean.size, segment)
    achieved = [variance_snr(clean[:length], row[:length]) for row in targets[:4]]
    np.testing.assert_allclose(achieved, [0.0, 5.0, 10.0, 15.0], atol=1e-3)
    np.testing.assert_array_equal(targets[4, :length], clean[:length])
    # the same noise realisation as the input, only its level changes (the input SNR is U(-5, 15))
    for row in targets[:4]:
        residual = row[:length] - clean[:length]
        assert abs(np.corrcoef(residual, noise[:length])[0, 1]) > 0.9999
    assert -5 <= example.meta["snr_db"] <= 15
    np.testing.assert_allclose(variance_snr(clean, noisy), example.meta["snr_db"], atol=1e-3)


def test_ladder_length_must_match_the_blocks(tiny_config):
    config = copy.deepcopy(tiny_config)
    config["training"]["progressive_snrs"] = [0, 5]
    with pytest.raises(ValueError, match="progressive_snrs has 2 SNRs but model.num_blocks = 2"):
        progressive_snrs(config)


def test_progressive_batches_hold_one_target_per_block(mini_corpus, tiny_config):
    batches = make_batches(tiny_config, mini_corpus, "train", True, fresh_every_epoch=True)
    noisy, targets = batches[0]
    assert noisy.shape == (2, 4000)
    assert len(targets) == 2 and all(target.shape == (2, 4000) for target in targets)
    first_epoch = [example.meta["snr_db"] for example in batches.examples]
    batches.on_epoch_end()  # on-the-fly mixing: a new epoch draws new mixtures
    assert [example.meta["snr_db"] for example in batches.examples] != first_epoch


def test_each_corpus_name_gives_the_examples_of_its_adapter(tmp_path, mini_data_dir, mini_corpus):
    from data_prep.adapters.dns5 import dns5_corpus
    from reproductions.tfgridnet.data import open_corpus
    from tests.corpus_trees import describe, dns_fixture

    config = load_config("mini", RECIPE_DIR, overrides=[f"data.data_dir={mini_data_dir}"])
    corpus = open_corpus(config)
    assert corpus.root == mini_corpus.root
    assert describe(draw_examples(config, corpus, "train", seed=1, max_items=6)) == describe(
        draw_examples(config, mini_corpus, "train", seed=1, max_items=6))

    dns_fixture(tmp_path)
    config = load_config("paper", RECIPE_DIR, overrides=[f"data.clean_dir={tmp_path / 'clean_fullband'}",
                                                         f"data.noise_dir={tmp_path / 'noise_fullband'}"])
    expected = dns5_corpus(tmp_path / "clean_fullband", tmp_path / "noise_fullband", seed=43)
    opened = open_corpus(config)
    assert opened.speech("train") == expected.speech("train") and opened.noise("train") == expected.noise("train")
    assert describe(draw_examples(config, opened, "train", seed=2)) == describe(
        draw_examples(config, expected, "train", seed=2))
    config["data"]["corpus"] = "timit"
    with pytest.raises(ValueError, match=r"paper\.yaml: data\.corpus = 'timit' .* expected one of 'mini', 'dns5'$"):
        open_corpus(config)
