"""The corpora a configuration can name in ``data.corpus``, and one function that opens them for every recipe.

A recipe calls ``open_corpus(config["data"], config["config_path"], names=CORPORA)`` with the names its protocol
reads. Every name but ``librimix`` opens a ``data_prep.corpus.ManifestCorpus`` (speech and noise rows) for the
mixture sets of ``data_prep.paper_sets``; ``librimix`` is pre-mixed and opens as a ``LibriMixCorpus`` whose pairs
are listed per subset. Names, the ``data`` keys of the folders they read, and what opens them:

- ``mini``: ``data_dir`` (default ``data``, built on first use), ``data_prep.corpus.ensure_mini_corpus``.
- ``folder``: ``root``; ``manifest``: ``corpus_dir``; a folder with ``speech.csv`` and ``noise.csv``
  (``data_prep.corpus.Corpus``).
- ``timit``: ``timit_root`` (or ``timit_dir``), ``noise_train_dir``, ``noise_test_dir``
  (``data_prep.adapters.timit.timit_corpus``).
- ``sednn_folders``: ``sednn_dir`` (``data_prep.adapters.timit.sednn_folders_corpus``).
- ``wsj0_si84``: ``wsj0_root``, ``noise_train_dir``, ``noise_test_dir``
  (``data_prep.adapters.wsj0_chime2.wsj0_si84_corpus``).
- ``dns5``: ``clean_dir``, ``noise_dir`` (``data_prep.adapters.dns5.dns5_corpus``).
- ``librimix``: ``librimix_root`` (``data_prep.adapters.librimix.librimix_pairs``).

The adapters draw their splits with ``data.seed`` (0 when absent); ``adapter_options`` overrides any keyword of one
name's opener (a recipe whose seed lives elsewhere, sednn's TIMIT without a validation split, a test's tiny mini
corpus).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["SOURCES", "LibriMixCorpus", "open_corpus"]


class LibriMixCorpus:
    """Libri2Mix ``mix_single``/``s1`` pairs under ``root``, listed per subset (``train-360``, ``dev``, ``test``)."""

    def __init__(self, root):
        self.root = Path(root)
        self.name = f"LibriMix {self.root}"

    def pairs(self, subset: str, segment_seconds=None, seed: int = 0, **options):
        """``data_prep.adapters.librimix.librimix_pairs`` of ``subset`` (a ``Listing`` of ``PairExample``)."""
        from data_prep.adapters.librimix import librimix_pairs

        return librimix_pairs(self.root, subset=subset, segment_seconds=segment_seconds, seed=seed, **options)


def _mini(data, folders, options):
    from data_prep.corpus import ensure_mini_corpus

    return ensure_mini_corpus(folders["data_dir"], **options)


def _folder(data, folders, options):
    from data_prep.corpus import Corpus

    return Corpus(next(iter(folders.values())))


def _timit(data, folders, options):
    from data_prep.adapters.timit import timit_corpus

    return timit_corpus(folders["timit_root"], folders["noise_train_dir"], folders["noise_test_dir"],
                        **{"seed": data.get("seed", 0), **options})


def _sednn_folders(data, folders, options):
    from data_prep.adapters.timit import sednn_folders_corpus

    return sednn_folders_corpus(folders["sednn_dir"], **{"seed": data.get("seed", 0), **options})


def _wsj0_si84(data, folders, options):
    from data_prep.adapters.wsj0_chime2 import wsj0_si84_corpus

    return wsj0_si84_corpus(folders["wsj0_root"], folders["noise_train_dir"], folders["noise_test_dir"],
                            **{"seed": data.get("seed", 0), **options})


def _dns5(data, folders, options):
    from data_prep.adapters.dns5 import dns5_corpus

    return dns5_corpus(folders["clean_dir"], folders["noise_dir"], **{"seed": data.get("seed", 0), **options})


def _librimix(data, folders, options):
    return LibriMixCorpus(folders["librimix_root"])


@dataclass(frozen=True)
class Source:
    """How one ``data.corpus`` name opens.

    Attributes:
        folders: the folders it reads, each a tuple of the ``data`` keys that may name it (the first key set wins;
            the folder is known by the first spelling).
        open: ``(data, folders, options) -> corpus`` with ``folders`` {first spelling: Path}.
        built: the folder is built on first use (``mini``) and need not exist yet.
    """

    folders: tuple
    open: Callable
    built: bool = False


SOURCES = {
    "mini": Source((("data_dir",),), _mini, built=True),
    "folder": Source((("root",),), _folder),
    "manifest": Source((("corpus_dir",),), _folder),
    "timit": Source((("timit_root", "timit_dir"), ("noise_train_dir",), ("noise_test_dir",)), _timit),
    "sednn_folders": Source((("sednn_dir",),), _sednn_folders),
    "wsj0_si84": Source((("wsj0_root",), ("noise_train_dir",), ("noise_test_dir",)), _wsj0_si84),
    "dns5": Source((("clean_dir",), ("noise_dir",)), _dns5),
    "librimix": Source((("librimix_root",),), _librimix),
}
# Where the mini corpus is built when the configuration names no data.data_dir.
DEFAULT_DATA_DIR = "data"


def _names_text(names) -> str:
    return ", ".join(repr(name) for name in names)


def open_corpus(data: dict, config_path=None, names=None, root=None, adapter_options=None):
    """Open the corpus that the ``data`` section of a configuration names.

    Args:
        data: the configuration's ``data`` section: ``data.corpus`` (``mini`` when absent) and the folder keys of
            that corpus.
        config_path: the configuration file, named by every error.
        names: the ``data.corpus`` values the caller reads (default: every name of ``SOURCES``).
        root: the folder relative paths are read from (None: the working directory).
        adapter_options: {name: keyword arguments} passed to that name's opener over the registry's defaults.

    Returns:
        A ``data_prep.corpus.ManifestCorpus`` (a ``Corpus`` for ``mini``, ``folder`` and ``manifest``), or a
        ``LibriMixCorpus`` for ``librimix``.

    Raises:
        ValueError: naming ``config_path`` and the ``data`` key at fault, for a name outside ``names``, an unset
            folder key or a folder that does not exist.
    """
    where = config_path or "the configuration"
    names = tuple(SOURCES if names is None else names)
    unknown = [name for name in names if name not in SOURCES]
    if unknown:
        raise ValueError(f"data_prep/registry.py: no corpus named {_names_text(unknown)}; "
                         f"known: {_names_text(SOURCES)}")
    name = data.get("corpus", "mini")
    if name not in names:
        raise ValueError(f"{where}: data.corpus = {name!r} is not a corpus this recipe reads; "
                         f"expected one of {_names_text(names)}")
    source = SOURCES[name]
    folders = {}
    for spellings in source.folders:
        key = next((key for key in spellings if data.get(key) not in (None, "")), spellings[0])
        value = data.get(key)
        if value in (None, ""):
            if not source.built:
                keys = " or ".join(f"data.{spelling}" for spelling in spellings)
                raise ValueError(f"{where}: {keys} is not set (data.corpus {name!r} reads that folder)")
            value = DEFAULT_DATA_DIR
        path = Path(value)
        if root is not None and not path.is_absolute():
            path = Path(root) / path
        if not source.built and not path.is_dir():
            raise ValueError(f"{where}: data.{key} = {value!r}: folder {path} does not exist "
                             f"(data.corpus {name!r} reads it)")
        folders[spellings[0]] = path
    options = dict((adapter_options or {}).get(name, {}))
    return source.open(data, folders, options)
