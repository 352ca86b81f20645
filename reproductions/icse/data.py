"""ICSE's training and test data (docs/icse.md#data, docs/icse.md#training): the configured corpus, Fu's peak
normalisation, the noisy/clean examples of each split and the Keras sequence that batches them (one whole utterance,
or random crops of a fixed length).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RATE = 16000
CORPORA = ("mini", "folder", "timit")


def load_corpus(config):
    """The configured corpus (``data.corpus``: ``mini``, ``folder`` or ``timit``, data_prep.registry), relative
    folders read from the repository root."""
    from data_prep.registry import open_corpus

    data = config["data"]
    corpus = open_corpus(data, config.get("config_path"), names=CORPORA, root=REPOSITORY_ROOT,
                         adapter_options={"timit": {"seed": int(data["seed"])}})
    limit = data.get("max_train_seconds")
    if limit is None:
        return corpus
    # Fu's script skips training utterances longer than max_input_audio_length (docs/icse.md#training).
    from data_prep.corpus import NOISE_SPLITS, SPEECH_SPLITS, ManifestCorpus

    speech = [row for split in SPEECH_SPLITS for row in corpus.speech(split)
              if split != "train" or float(row["duration"]) <= float(limit)]
    noise = [row for split in NOISE_SPLITS for row in corpus.noise(split)]
    return ManifestCorpus(speech, noise, name=f"{getattr(corpus, 'name', 'corpus')} (train <= {limit} s)")


def peak_normalise(signal) -> np.ndarray:
    """``x / max|x|`` (Fu/ICSE normalise noisy input, clean target and enhanced output this way,
    docs/icse.md#training, docs/icse.md#metrics)."""
    signal = np.asarray(signal, np.float32)
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    return signal / peak if peak > 0 else signal


def training_pair(noisy, clean, target_peak="own"):
    """The ``(input, target)`` of one training utterance: the noisy input divided by its peak; the clean target
    divided by its own peak (``own``, Fu's protocol) or by the noisy input's (``noisy``: one gain for both, so
    that the target is the exact speech component of the input)."""
    if target_peak == "own":
        return peak_normalise(noisy), peak_normalise(clean)
    if target_peak == "noisy":
        peak = float(np.max(np.abs(noisy))) if np.size(noisy) else 0.0
        scale = 1.0 / peak if peak > 0 else 1.0
        return (np.asarray(noisy, np.float32) * scale).astype(np.float32), (
            np.asarray(clean, np.float32) * scale).astype(np.float32)
    raise ValueError(f"data.target_peak must be 'own' or 'noisy', got {target_peak!r}")


def training_examples(corpus, config, split, epoch, count):
    from data_prep.paper_sets import fcn_set

    seed = int(config["data"]["seed"]) * 100_003 + (epoch if split == "train" else 0)
    snrs = config["data"]["train_snrs"]
    examples = fcn_set(corpus, split, snrs=snrs, seed=seed, max_items=count)
    if not examples:
        raise ValueError(f"{getattr(corpus, 'name', 'corpus')}: no {split} examples for the FCN")
    return examples


def test_examples(corpus, config, max_items):
    from data_prep.paper_sets import fcn_set

    return fcn_set(corpus, "test", snrs=config["data"]["test_snrs"], seed=int(config["data"]["seed"]) + 7,
                   max_items=max_items)

def crop_segment(noisy, clean, length, rng):
    """A random ``length``-sample crop of the pair (zero-padded at the end when the utterance is shorter)."""
    if len(noisy) >= length:
        start = int(rng.integers(len(noisy) - length + 1))
        return noisy[start:start + length], clean[start:start + length]
    pad = length - len(noisy)
    return np.pad(noisy, (0, pad)), np.pad(clean, (0, pad))


def make_sequence_class():
    from common.tfkeras import keras

    class UtteranceSequence(keras.utils.Sequence):
        """Peak-normalised noisy and clean waveforms (docs/icse.md#training): one whole utterance per batch,
        ``(1, T, 1)``, or ``batch_size`` random crops of ``segment_samples`` each; a fresh random draw of ``count``
        examples (utterance, SNR, noise) every epoch for training, a fixed set for validation."""

        def __init__(self, corpus, config, split, count, epoch=0, batch_size=1, segment_samples=None):
            super().__init__()
            self.corpus, self.config, self.split, self.count = corpus, config, split, count
            self.epoch = epoch
            self.batch_size, self.segment_samples = int(batch_size), segment_samples
            self.examples = training_examples(corpus, config, split, epoch, count)

        def __len__(self):
            return int(math.ceil(len(self.examples) / self.batch_size))

        def _pair(self, index):
            noisy, clean, _ = self.examples[index].load()
            return training_pair(noisy, clean, self.config["data"].get("target_peak", "own"))

        def __getitem__(self, index):
            if self.segment_samples is None:
                noisy, clean = self._pair(index)
                return noisy[None, :, None], clean[None, :, None]
            # The crop positions are a function of seed, epoch and batch, so a resumed epoch sees the same data.
            rng = np.random.default_rng([int(self.config["data"]["seed"]), self.epoch, index, 29])
            indices = range(index * self.batch_size, min((index + 1) * self.batch_size, len(self.examples)))
            pairs = [crop_segment(*self._pair(item), self.segment_samples, rng) for item in indices]
            return (np.stack([noisy for noisy, _ in pairs])[:, :, None],
                    np.stack([clean for _, clean in pairs])[:, :, None])

        def on_epoch_end(self):
            if self.split == "train":
                self.epoch += 1
                self.examples = training_examples(self.corpus, self.config, self.split, self.epoch, self.count)

    return UtteranceSequence
