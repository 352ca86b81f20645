"""TF-GridNet's training data (docs/tfgridnet.md#data): the configured corpus, the on-the-fly mixtures of each
split, the PL target ladder (docs/tfgridnet.md#progressive-learning) and the Keras sequence of fixed-length batches.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
CORPORA = ("mini", "dns5")


def open_corpus(config: dict):
    from data_prep.registry import open_corpus as open_configured

    return open_configured(config["data"], config.get("config_path"), names=CORPORA)


def draw_examples(config: dict, corpus, split: str, seed: int, max_items=None, segmented: bool = True) -> list:
    """Lazy on-the-fly mixtures of ``split``: SNR ~ U(snr_range), upstream's variance-based ``mk_mixture``;
    ``data.augmentation`` (``common.mixing.Augmentation``) applies to the training split only."""
    from common.mixing import Augmentation
    from data_prep.paper_sets import tfgridnet_set

    data = config["data"]
    segment = data["segment_seconds"] if segmented else None
    return tfgridnet_set(corpus, split, snr_range=tuple(data["snr_range"]), seed=seed, max_items=max_items,
                         segment_seconds=segment, augmentation=Augmentation.from_config(data.get("augmentation")))


def fit_length(signal: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or cut the last axis to ``length`` samples (utterances shorter than a training segment)."""
    if signal.shape[-1] >= length:
        return signal[..., :length]
    pad = [(0, 0)] * (signal.ndim - 1) + [(0, length - signal.shape[-1])]
    return np.pad(signal, pad)


def training_pair(example, segment_samples: int, snrs=None):
    """``(noisy, targets)`` for one example; targets is the clean speech (DL) or the PL ladder (len(snrs)+1, N).

    PL targets are the example's speech and noise re-mixed at each SNR of ``snrs`` (absolute, whatever the input
    SNR) and the clean speech last (``data_prep.paper_sets.progressive_targets``, upstream dataloader.py).
    """
    from data_prep.paper_sets import progressive_targets

    noisy, clean, noise = example.load()
    targets = clean if snrs is None else progressive_targets(clean, noise, snrs)
    return fit_length(noisy, segment_samples), fit_length(targets, segment_samples)


def make_batches(config: dict, corpus, split: str, progressive: bool, fresh_every_epoch: bool, first_epoch: int = 0):
    """Keras ``Sequence`` of fixed-length batches; with ``fresh_every_epoch`` each epoch draws new mixtures, starting
    with those of ``first_epoch`` (a resumed training's next epoch)."""
    from common.tfkeras import keras

    data, training = config["data"], config["training"]
    batch_size = int(training["batch_size"])
    segment_samples = int(round(float(data["segment_seconds"]) * SAMPLE_RATE))
    items = int(training["examples_per_epoch"] if split == "train" else training["validation_examples"])
    snrs = progressive_snrs(config) if progressive else None
    base_seed = int(data["seed"]) + (0 if split == "train" else 1_000_003)

    class MixtureBatches(keras.utils.Sequence):
        def __init__(self):
            super().__init__()
            self.epoch = int(first_epoch)
            self.draw()

        def draw(self):
            seed = base_seed + (self.epoch if fresh_every_epoch else 0)
            self.examples = draw_examples(config, corpus, split, seed, max_items=items)
            if len(self.examples) < batch_size:
                raise ValueError(f"{config['config_path']}: {split} has {len(self.examples)} examples, fewer than "
                                 f"training.batch_size = {batch_size}")

        def __len__(self):
            return len(self.examples) // batch_size

        def __getitem__(self, index):
            pairs = [training_pair(example, segment_samples, snrs)
                     for example in self.examples[index * batch_size:(index + 1) * batch_size]]
            noisy = np.stack([noisy for noisy, _ in pairs]).astype(np.float32)
            targets = np.stack([target for _, target in pairs]).astype(np.float32)
            if snrs is None:
                return noisy, targets
            return noisy, tuple(targets[:, block] for block in range(targets.shape[1]))

        def on_epoch_end(self):
            if fresh_every_epoch:
                self.epoch += 1
                self.draw()

    return MixtureBatches()

def progressive_snrs(config: dict) -> tuple:
    """PL intermediate target SNRs; one per block but the last (whose target is the clean speech)."""
    snrs = tuple(float(snr) for snr in config["training"]["progressive_snrs"])
    blocks = int(config["model"]["num_blocks"])
    if len(snrs) != blocks - 1:
        raise ValueError(
            f"{config['config_path']}: training.progressive_snrs has {len(snrs)} SNRs but model.num_blocks = {blocks} "
            f"needs {blocks - 1} (block b < {blocks} learns the b-th SNR, the last block the clean speech)"
        )
    return snrs

