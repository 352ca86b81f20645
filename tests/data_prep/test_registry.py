"""The corpus registry (data_prep/registry.py): each name opens what its adapter opens, and configuration errors
name the file, the key and the folder at fault."""

import pytest

from data_prep.adapters.dns5 import dns5_corpus
from data_prep.adapters.librimix import librimix_pairs
from data_prep.adapters.timit import sednn_folders_corpus, timit_corpus
from data_prep.adapters.wsj0_chime2 import wsj0_si84_corpus
from data_prep.corpus import NOISE_SPLITS, SPEECH_SPLITS, Corpus
from data_prep.registry import SOURCES, LibriMixCorpus, open_corpus
from tests.conftest import TINY_CORPUS_OPTIONS
from tests.corpus_trees import dns_fixture, librimix_fixture, sednn_fixture, timit_fixture, wsj0_fixture

CONFIG = "conf/tiny.yaml"


def rows(corpus) -> dict:
    """Every speech and noise row of a corpus, split by split, and its name."""
    return {"name": corpus.name, **{f"speech {split}": corpus.speech(split) for split in SPEECH_SPLITS},
            **{f"noise {split}": corpus.noise(split) for split in NOISE_SPLITS}}


def test_mini_opens_the_built_corpus(mini_corpus_root, mini_corpus):
    corpus = open_corpus({"corpus": "mini", "data_dir": str(mini_corpus_root.parent)}, CONFIG,
                         adapter_options={"mini": {"quiet": True, **TINY_CORPUS_OPTIONS}})
    assert isinstance(corpus, Corpus) and corpus.root == mini_corpus_root
    assert rows(corpus) == rows(mini_corpus) and corpus.speech("train")


def test_an_absent_corpus_key_means_mini(mini_data_dir, mini_corpus):
    assert rows(open_corpus({"data_dir": str(mini_data_dir)}, CONFIG)) == rows(mini_corpus)


@pytest.mark.parametrize("name, key", [("folder", "root"), ("manifest", "corpus_dir")])
def test_corpus_folders_are_read_relative_to_root(mini_corpus_root, mini_corpus, name, key):
    corpus = open_corpus({"corpus": name, key: mini_corpus_root.name}, CONFIG, root=mini_corpus_root.parent)
    assert rows(corpus) == rows(mini_corpus)


def test_adapters_open_with_the_data_seed_and_the_callers_options(tmp_path):
    timit_fixture(tmp_path / "timit")
    noise = {"noise_train_dir": str(tmp_path / "timit" / "noise" / "train"),
             "noise_test_dir": str(tmp_path / "timit" / "noise" / "test")}
    timit = {"corpus": "timit", "timit_root": str(tmp_path / "timit" / "TIMIT"), "seed": 3, **noise}
    expected = timit_corpus(tmp_path / "timit" / "TIMIT", tmp_path / "timit" / "noise" / "train",
                            tmp_path / "timit" / "noise" / "test", valid_fraction=0.5, seed=3)
    assert rows(open_corpus(timit, CONFIG, adapter_options={"timit": {"valid_fraction": 0.5}})) == rows(expected)
    # sednn's spelling of the TIMIT folder key
    sednn_spelling = {"corpus": "timit", "timit_dir": "TIMIT", **noise}
    expected = timit_corpus(tmp_path / "timit" / "TIMIT", tmp_path / "timit" / "noise" / "train",
                            tmp_path / "timit" / "noise" / "test", valid_fraction=0.0)
    assert rows(open_corpus(sednn_spelling, CONFIG, root=tmp_path / "timit",
                            adapter_options={"timit": {"valid_fraction": 0.0}})) == rows(expected)

    sednn_fixture(tmp_path / "sednn")
    assert rows(open_corpus({"corpus": "sednn_folders", "sednn_dir": str(tmp_path / "sednn")}, CONFIG)) == \
        rows(sednn_folders_corpus(tmp_path / "sednn"))

    wsj0_fixture(tmp_path / "wsj")
    wsj0 = {"corpus": "wsj0_si84", "wsj0_root": "wsj/wsj0", "noise_train_dir": "wsj/sound_effects",
            "noise_test_dir": "wsj/auditec", "seed": 1}
    assert rows(open_corpus(wsj0, CONFIG, root=tmp_path)) == rows(
        wsj0_si84_corpus(tmp_path / "wsj" / "wsj0", tmp_path / "wsj" / "sound_effects", tmp_path / "wsj" / "auditec",
                         seed=1))

    dns_fixture(tmp_path / "dns")
    dns = {"corpus": "dns5", "clean_dir": str(tmp_path / "dns" / "clean_fullband"),
           "noise_dir": str(tmp_path / "dns" / "noise_fullband"), "seed": 43}
    options = {"valid_fraction": 0.2, "test_fraction": 0.2}
    assert rows(open_corpus(dns, CONFIG, adapter_options={"dns5": options})) == rows(
        dns5_corpus(tmp_path / "dns" / "clean_fullband", tmp_path / "dns" / "noise_fullband", seed=43, **options))


def test_librimix_lists_the_pairs_of_a_subset(tmp_path):
    librimix_fixture(tmp_path)
    corpus = open_corpus({"corpus": "librimix", "librimix_root": str(tmp_path)}, CONFIG)
    assert isinstance(corpus, LibriMixCorpus)
    pairs = corpus.pairs("test", segment_seconds=1.5, seed=4)
    expected = librimix_pairs(tmp_path, subset="test", segment_seconds=1.5, seed=4)
    assert [(pair.noisy_path, pair.clean_path, pair.crop) for pair in pairs] == \
        [(pair.noisy_path, pair.clean_path, pair.crop) for pair in expected]
    assert len(pairs) == 1


def test_an_unknown_name_is_named_with_the_accepted_ones():
    with pytest.raises(ValueError) as error:
        open_corpus({"corpus": "wsj1"}, CONFIG)
    message = str(error.value)
    assert message.startswith(f"{CONFIG}: data.corpus = 'wsj1'")
    assert all(repr(name) in message for name in SOURCES)
    # a registered corpus that the recipe does not read
    with pytest.raises(ValueError, match=r"conf/tiny\.yaml: data\.corpus = 'timit' .* expected one of 'mini', "
                                         r"'dns5'$"):
        open_corpus({"corpus": "timit"}, CONFIG, names=("mini", "dns5"))
    with pytest.raises(ValueError, match="data_prep/registry.py: no corpus named 'wsj1'"):
        open_corpus({"corpus": "mini"}, CONFIG, names=("mini", "wsj1"))


def test_a_missing_or_unset_folder_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    data = {"corpus": "dns5", "clean_dir": str(missing), "noise_dir": str(tmp_path)}
    with pytest.raises(ValueError) as error:
        open_corpus(data, CONFIG)
    assert str(error.value) == (f"{CONFIG}: data.clean_dir = {str(missing)!r}: folder {missing} does not exist "
                                "(data.corpus 'dns5' reads it)")
    with pytest.raises(ValueError, match=rf"folder {tmp_path / 'relative'} does not exist"):
        open_corpus({"corpus": "folder", "root": "relative"}, CONFIG, root=tmp_path)
    with pytest.raises(ValueError, match=r"^conf/tiny\.yaml: data\.timit_root or data\.timit_dir is not set"):
        open_corpus({"corpus": "timit", "timit_root": None, "noise_train_dir": str(tmp_path),
                     "noise_test_dir": str(tmp_path)}, CONFIG)
    with pytest.raises(ValueError, match=r"^the configuration: data\.librimix_root is not set"):
        open_corpus({"corpus": "librimix"}, None)
