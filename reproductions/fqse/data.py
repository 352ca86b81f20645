"""FQSE's data (docs/fqse.md#data): the noisy/clean examples of each split of the configured corpus, loaded as
arrays, and the Keras sequence of training segments (random crops, optional augmentation).
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
CORPORA = ("mini", "librimix")


def load_examples(config: dict, split: str, max_items=None) -> list:
    """Lazy examples of ``split`` (train/valid: segments, test: whole utterances) for the configured corpus."""
    from data_prep.registry import open_corpus

    data = config["data"]
    corpus = open_corpus(data, config.get("config_path"), names=CORPORA)
    if data["corpus"] == "librimix":
        subset = {"train": data["train_subset"], "valid": "dev", "test": "test"}[split]
        segment = data["segment_seconds"] if split in ("train", "valid") else None
        pairs = corpus.pairs(subset, segment_seconds=segment, seed=data["seed"])
        return list(pairs)[:max_items] if max_items else list(pairs)
    from data_prep.paper_sets import fqse_set

    return fqse_set(corpus, split, segment_seconds=data["segment_seconds"], seed=data["seed"], max_items=max_items)


def load_arrays(examples) -> list:
    from tqdm import tqdm

    return [example.load() for example in tqdm(examples, desc="loading audio", leave=False)]


def make_batches(arrays, batch_size: int, augment: bool, seed: int):
    """A Keras ``Sequence`` of (noisy, clean) batches; with ``augment`` every epoch re-mixes at U(-6, 18) dB."""
    from common.tfkeras import keras
    from data_prep.paper_sets import fqse_augment

    class SegmentBatches(keras.utils.Sequence):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self._draw()

        def _draw(self):
            rng = np.random.default_rng([seed, self.epoch])
            self.order = rng.permutation(len(arrays))
            pairs = []
            for noisy, clean, noise in arrays:
                if augment:
                    mixture = fqse_augment(clean, noise, rng)
                    noisy, clean = mixture.mixture, mixture.speech
                pairs.append((np.asarray(noisy, np.float32), np.asarray(clean, np.float32)))
            self.pairs = pairs

        def __len__(self):
            return max(1, len(arrays) // batch_size)  # drop_last=True, as FQSE's loader

        def __getitem__(self, index):
            chosen = self.order[index * batch_size:(index + 1) * batch_size]
            length = min(self.pairs[i][0].shape[0] for i in chosen)
            noisy = np.stack([self.pairs[i][0][:length] for i in chosen])
            clean = np.stack([self.pairs[i][1][:length] for i in chosen])
            return noisy, clean

        def on_epoch_end(self):
            self.epoch += 1
            self._draw()

    return SegmentBatches()
