"""sednn's data (docs/sednn.md#data, docs/sednn.md#mixing, docs/sednn.md#features): the configured corpus, the
training mixtures (cycled over ``data.train_snrs_db`` where set) and the test mixtures, and the packed, unscaled
features with the scaler, cached once per data/feature configuration in ``<exp_dir>/features/``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CORPORA = ("mini", "manifest", "sednn_folders", "timit")


def _log(message: str) -> None:
    print(message, flush=True)


def load_corpus(config):
    from data_prep.registry import open_corpus

    # sednn trains on all 4620 TIMIT training utterances: no speakers are held out for validation.
    return open_corpus(config["data"], config.get("config_path"), names=CORPORA, root=REPOSITORY_ROOT,
                       adapter_options={"timit": {"valid_fraction": 0.0}})


def mixture_examples(config, split):
    from common.mixing import Augmentation
    from data_prep.paper_sets import sednn_set

    data = config["data"]
    magnification = data["magnification"] if split == "train" else None
    key = {"train": "max_train_speech", "test": "max_test_speech"}[split]
    kwargs = dict(seed=data["seed"], max_speech=data.get(key),
                  augmentation=Augmentation.from_config(data.get("augmentation")))
    if magnification is not None:
        kwargs["magnification"] = magnification
    corpus = load_corpus(config)
    if split == "train":
        examples = snr_cycled(lambda snr: sednn_set(corpus, split, snr_db=snr, **kwargs), training_snrs(config))
    else:
        examples = sednn_set(corpus, split, snr_db=data["snr_db"], **kwargs)
    wanted = data.get("test_noise_types") if split == "test" else None
    if wanted:
        # A subset of the test noise types keeps the mini run short; every kept noise still meets every
        # test utterance, as in sednn.
        missing = set(wanted) - {example.meta["noise_type"] for example in examples}
        if missing:
            raise ValueError(f"{config['config_path']}: data.test_noise_types {sorted(missing)} are not test "
                             "noise types of the corpus")
        examples = [example for example in examples if example.meta["noise_type"] in set(wanted)]
    return examples


def cached_features(config, exp_dir):
    """Packed, unscaled features and the scaler; built once per data/feature configuration."""
    import h5py

    from reproductions.sednn.pipeline import pack_examples
    from reproductions.sednn.scaler import Scaler

    features_dir = Path(exp_dir) / "features"
    level = config["inference"].get("level_dbfs")
    identity = {"data": config["data"], "features": config["features"], "inference_level_dbfs": level}
    meta_path = features_dir / "meta.json"
    if not (meta_path.is_file() and json.loads(meta_path.read_text()) == identity):
        features_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        for split in ("train", "test"):
            examples = mixture_examples(config, split)
            if split == "test" and level is not None:
                from data_prep.paper_sets import at_level

                # te_loss measures the test mixtures as inference gives them to the network.
                examples = at_level(examples, level)
            inputs, targets = pack_examples(examples, config["features"]["n_concat"],
                                            config["features"]["hop"], description=f"pack {split}")
            with h5py.File(features_dir / f"{split}.h5.partial", "w") as handle:
                handle.create_dataset("x", data=inputs)
                handle.create_dataset("y", data=targets)
            (features_dir / f"{split}.h5.partial").replace(features_dir / f"{split}.h5")
            if split == "train":
                Scaler.fit(inputs).save_npz(features_dir / "scaler.npz")
            _log(f"{split}: {inputs.shape[0]} segments of {inputs.shape[1]}x{inputs.shape[2]}")
        meta_path.write_text(json.dumps(identity, indent=1))
        _log(f"Features: {time.time() - started:.1f} s -> {features_dir}")
    arrays = {}
    for split in ("train", "test"):
        with h5py.File(features_dir / f"{split}.h5", "r") as handle:
            arrays[split] = (handle["x"][()], handle["y"][()])
    return arrays, Scaler.load_npz(features_dir / "scaler.npz")


def evaluation_items(config):
    """``[(name, noise_type, loader)]`` of the test set, with ``loader() -> (noisy, clean)``."""
    items = []
    for example in mixture_examples(config, "test"):
        meta = example.meta
        name = f"{Path(str(meta['speech'])).stem}.{meta['noise_type']}.{Path(str(meta['noise'])).stem}"

        def loader(example=example):
            noisy, clean, _ = example.load()
            return noisy, clean

        items.append((name, meta["noise_type"], loader))
    return items


def training_snrs(config) -> list:
    """The training SNRs: ``data.train_snrs_db`` where set (a list), else sednn's one ``data.snr_db``."""
    snrs = config["data"].get("train_snrs_db")
    if snrs is None:
        return [config["data"]["snr_db"]]
    if not isinstance(snrs, (list, tuple)) or not snrs or not all(isinstance(snr, (int, float)) for snr in snrs):
        raise ValueError(f"{config.get('config_path', 'config')}: data.train_snrs_db must be null or a non-empty "
                         f"list of numbers (dB), got {snrs!r}")
    return [float(snr) for snr in snrs]


def snr_cycled(make_set, snrs) -> list:
    """One training set whose mixture ``i`` is mixed at ``snrs[i % len(snrs)]``.

    sednn's draws (noise choice, onsets) do not depend on the SNR, so the sets of every SNR list the same
    utterance-noise pairs in the same order: taking mixture ``i`` from set ``i % len(snrs)`` keeps sednn's pairs and
    their number and spreads the SNRs evenly over utterances and noises.
    """
    sets = [make_set(snr) for snr in snrs]
    return [sets[index % len(sets)][index] for index in range(len(sets[0]))]


def snr_text(snr) -> str:
    """An SNR as sednn writes it in file and table names: ``0``, ``-5``, ``2.5``."""
    return str(int(snr)) if float(snr).is_integer() else str(snr)
