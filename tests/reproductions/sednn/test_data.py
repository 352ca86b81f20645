"""sednn's data: the corpus each data.corpus names, the training SNRs cycled over sednn's pairs and the test
subset (reproductions/sednn/data.py)."""
import numpy as np
import pytest

from reproductions.sednn.data import load_corpus, mixture_examples, training_snrs


def _mini_config(overrides=()):
    from pathlib import Path

    from common.config import load_config

    recipe_dir = Path(__file__).resolve().parents[3] / "reproductions" / "sednn"
    return load_config("mini", recipe_dir, overrides=list(overrides))


def test_training_set_cycles_the_training_snrs_over_sednn_pairs(mini_corpus_root):
    from data_prep.paper_sets import sednn_set

    config = _mini_config(["data.corpus=manifest", f"data.corpus_dir={mini_corpus_root}", "data.max_train_speech=5"])
    examples = mixture_examples(config, "train")
    reference = sednn_set(load_corpus(config), "train", snr_db=0, magnification=2, seed=0, max_speech=5)
    assert len(examples) == len(reference) == 10
    assert [example.meta["snr_db"] for example in examples] == [[-5.0, 0.0, 5.0][i % 3] for i in range(10)]
    assert [(e.meta["speech"], e.meta["noise"], e.meta["noise_start"]) for e in examples] == \
        [(e.meta["speech"], e.meta["noise"], e.meta["noise_start"]) for e in reference]
    assert all(example.augmentation is not None for example in examples)
    noisy, clean, _ = examples[1].load()
    # The mini augmentation plays each training mixture at a level within [-30, -20] dBFS.
    level = 20 * np.log10(np.sqrt(np.mean(noisy.astype(np.float64) ** 2)))
    assert -30.01 <= level <= -19.99
    # The test set keeps sednn's one SNR and no augmentation.
    test = mixture_examples(config, "test")
    assert {example.meta["snr_db"] for example in test} == {0.0}
    assert all(example.augmentation is None for example in test)


def test_training_snrs_are_checked():
    assert training_snrs({"data": {"snr_db": 3, "train_snrs_db": None}}) == [3]
    with pytest.raises(ValueError, match="data.train_snrs_db"):
        training_snrs({"config_path": "mini.yaml", "data": {"snr_db": 0, "train_snrs_db": "0"}})


def _paper_config(overrides=()):
    from pathlib import Path

    from common.config import load_config

    recipe_dir = Path(__file__).resolve().parents[3] / "reproductions" / "sednn"
    return load_config("paper", recipe_dir, overrides=list(overrides))


def test_each_corpus_name_gives_the_examples_of_its_adapter(tmp_path, mini_data_dir, mini_corpus):
    from data_prep.adapters.timit import sednn_folders_corpus, timit_corpus
    from data_prep.paper_sets import sednn_set
    from tests.corpus_trees import describe, sednn_fixture, timit_fixture

    config = _mini_config([f"data.data_dir={mini_data_dir}"])
    assert load_corpus(config).root == mini_corpus.root
    reference = sednn_set(mini_corpus, "test", snr_db=0, seed=0, max_speech=6)
    wanted = set(config["data"]["test_noise_types"])
    assert describe(mixture_examples(config, "test")) == describe(
        [example for example in reference if example.meta["noise_type"] in wanted])

    # sednn's TIMIT keeps every training speaker (no validation split), whatever data.seed says
    timit_fixture(tmp_path / "timit")
    config = _paper_config([f"data.timit_dir={tmp_path / 'timit' / 'TIMIT'}", "data.seed=3",
                            f"data.noise_train_dir={tmp_path / 'timit' / 'noise' / 'train'}",
                            f"data.noise_test_dir={tmp_path / 'timit' / 'noise' / 'test'}"])
    expected = timit_corpus(tmp_path / "timit" / "TIMIT", tmp_path / "timit" / "noise" / "train",
                            tmp_path / "timit" / "noise" / "test", valid_fraction=0.0)
    assert not load_corpus(config).speech("valid") and len(load_corpus(config).speech("train")) == 8
    assert describe(mixture_examples(config, "train")) == describe(
        sednn_set(expected, "train", snr_db=0, magnification=2, seed=3))

    sednn_fixture(tmp_path / "sednn")
    config = _paper_config(["data.corpus=sednn_folders", f"data.sednn_dir={tmp_path / 'sednn'}"])
    assert describe(mixture_examples(config, "test")) == describe(
        sednn_set(sednn_folders_corpus(tmp_path / "sednn"), "test", snr_db=0, max_speech=168))
    config = _paper_config(["data.corpus=dns5"])
    with pytest.raises(ValueError, match=r"paper\.yaml: data\.corpus = 'dns5' .* 'mini', 'manifest', 'sednn_folders', "
                                         r"'timit'$"):
        load_corpus(config)
