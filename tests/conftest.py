"""Shared pytest fixtures.

``mini_corpus``: a tiny version of the embedded mini corpus (3 prompts per split and voice, one file per noise type
and split, 3-s generated noises), built once per test session into a pytest temporary folder in a few seconds.
Reproduction tests use it as ``def test_x(mini_corpus): sets = sednn_set(mini_corpus, "train")``.
"""

import pytest

TINY_CORPUS_OPTIONS = {"seed": 0, "max_prompts": 3, "max_noise_files": 1, "generated_seconds": 3.0}


@pytest.fixture(scope="session")
def mini_corpus_root(tmp_path_factory):
    """Root folder of the tiny corpus (speech.csv, noise.csv, speech/, noise/)."""
    from data_prep.build_mini import build_mini_corpus

    data_dir = tmp_path_factory.mktemp("mini_corpus_data")
    return build_mini_corpus(data_dir=data_dir, quiet=True, **TINY_CORPUS_OPTIONS)


@pytest.fixture(scope="session")
def mini_corpus(mini_corpus_root):
    """``data_prep.corpus.Corpus`` of the tiny corpus (splits train/valid/test/test_unseen_voice, noise
    train/valid/test/test_unseen_noise)."""
    from data_prep.corpus import Corpus

    return Corpus(mini_corpus_root)


@pytest.fixture
def mini_data_dir(mini_corpus_root, monkeypatch):
    """``data.data_dir`` of the tiny corpus for code that opens ``data.corpus: mini`` through data_prep.registry:
    ``ensure_mini_corpus`` gets the tiny build options, so that it reuses the tiny corpus instead of building the
    full one."""
    import data_prep.corpus

    original = data_prep.corpus.ensure_mini_corpus
    monkeypatch.setattr(data_prep.corpus, "ensure_mini_corpus", lambda data_dir="data", **options: original(
        data_dir, **{"quiet": True, **TINY_CORPUS_OPTIONS, **options}))
    return mini_corpus_root.parent
