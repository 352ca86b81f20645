"""The examples each corpus name opens (reproductions/fqse/data.py)."""
from pathlib import Path

import pytest

from common.config import load_config

RECIPE_DIR = Path(__file__).resolve().parents[3] / "reproductions" / "fqse"


def test_each_corpus_name_gives_the_examples_of_its_adapter(tmp_path, mini_data_dir, mini_corpus):
    from data_prep.adapters.librimix import librimix_pairs
    from data_prep.paper_sets import fqse_set
    from reproductions.fqse.data import load_examples
    from tests.corpus_trees import describe, librimix_fixture

    config = load_config("mini", RECIPE_DIR, overrides=[f"data.data_dir={mini_data_dir}", "data.seed=5"])
    for split in ("train", "test"):
        assert describe(load_examples(config, split, 4)) == describe(
            fqse_set(mini_corpus, split, segment_seconds=1.0, seed=5, max_items=4))

    librimix_fixture(tmp_path)
    config = load_config("paper", RECIPE_DIR, overrides=[f"data.librimix_root={tmp_path}"])
    examples = load_examples(config, "test", 1)
    assert len(examples) == 1 and describe(examples) == describe(librimix_pairs(tmp_path, subset="test")[:1])
    config = load_config("paper", RECIPE_DIR, overrides=[f"data.librimix_root={tmp_path / 'moved'}"])
    with pytest.raises(ValueError, match=rf"paper\.yaml: data\.librimix_root = '.*moved': folder {tmp_path / 'moved'} "
                                         "does not exist"):
        load_examples(config, "test")
