"""CRN's data and objective (docs/crn.md#data, docs/crn.md#training): the configured corpus, the training,
validation and test mixtures, the author's ``|STFT|`` features, the zero-padded batches of whole utterances with a
valid-frame mask, and the masked MSE over those frames.
"""
from __future__ import annotations

import functools

import numpy as np

from common.enhancement import inference_level

CORPORA = ("mini", "wsj0_si84")
# Floor of the compressed loss: below 99 % of the noisy |STFT| bins at -25 dBFS (mini validation set).
MAGNITUDE_FLOOR = 1e-4


def config_file(config) -> str:
    """The configuration file an error names (``common.config.load_config`` records it)."""
    return config.get("config_path", "the configuration")


def load_corpus(config):
    """The speech/noise corpus named by ``config['data']``: the embedded mini corpus or WSJ0 SI-84 + noise folders."""
    from data_prep.registry import open_corpus

    return open_corpus(config["data"], config_file(config), names=CORPORA)


def training_examples(corpus, config, split):
    """CRN training (``train``) or validation (``valid``) mixtures: SNR from ``data.train_snrs`` (default the
    paper's {-5..0} dB), a random training noise; ``data.augmentation`` on the training split, and the validation
    mixtures played at ``inference.level_dbfs`` when it is set, the level the models see at inference."""
    from common.mixing import Augmentation
    from data_prep.paper_sets import at_level, crn_set

    data = config["data"]
    augmentation = Augmentation.from_config(data.get("augmentation"))
    examples = crn_set(corpus, split, snrs=data.get("train_snrs"), seed=data["seed"],
                       per_utterance=data.get("per_utterance", 1), augmentation=augmentation)
    if data.get("max_train_seconds"):
        durations = {row["path"]: float(row["duration"]) for row in corpus.speech(split)}
        examples = [e for e in examples if durations.get(e.meta["speech"], 0.0) <= data["max_train_seconds"]]
    limit = data.get("train_items" if split == "train" else "valid_items")
    if limit is not None and limit < len(examples):
        keep = np.sort(np.random.default_rng([data["seed"], 5]).choice(len(examples), int(limit), replace=False))
        examples = [examples[index] for index in keep]
    if not examples:
        raise ValueError(f"{config_file(config)}: no {split} examples (data.max_train_seconds too small?)")
    if split == "valid" and inference_level(config) is not None:
        examples = at_level(examples, inference_level(config))
    return examples


def test_examples(corpus, config):
    """Test mixtures: test speech with the unseen test noises at ``evaluation.snrs``; the same utterances in every
    condition (the first ``evaluation.utterances`` test utterances in name order)."""
    from data_prep.paper_sets import crn_set

    test = config["evaluation"]
    examples = crn_set(corpus, "test_unseen_noise", snrs=test["snrs"], seed=test["seed"])
    if test.get("noise_types"):
        wanted = set(test["noise_types"])
        missing = wanted - {e.meta["noise_type"] for e in examples}
        if missing:
            raise ValueError(f"{config_file(config)}: evaluation.noise_types {sorted(missing)} are not "
                             "in the test noise split")
        examples = [e for e in examples if e.meta["noise_type"] in wanted]
    if test.get("utterances"):
        chosen = set(sorted({e.meta["speech"] for e in examples})[: int(test["utterances"])])
        examples = [e for e in examples if e.meta["speech"] in chosen]
    return examples


def magnitude(signal) -> np.ndarray:
    """``|STFT|`` (frames, 161) of a waveform, the author's features (no log, no normalisation)."""
    from reproductions.crn.features import crn_stft

    return np.abs(crn_stft(signal)).astype(np.float32)


def feature_pair(example):
    """(noisy magnitude, clean magnitude + valid-frame mask column) of one example."""
    noisy, clean, _ = example.load()
    target = magnitude(clean)
    return magnitude(noisy), np.concatenate([target, np.ones((target.shape[0], 1), np.float32)], axis=1)


def make_dataset(examples, batch_size, frequency_bins=161, shuffle_seed=None):
    """tf.data of zero-padded batches of whole utterances; targets carry a last column = 1 on valid frames."""
    from common.tfkeras import tf

    epoch = [0]

    def generator():
        order = np.arange(len(examples))
        if shuffle_seed is not None:
            np.random.default_rng([shuffle_seed, epoch[0]]).shuffle(order)
            epoch[0] += 1
        for index in order:
            yield feature_pair(examples[index])

    signature = (
        tf.TensorSpec((None, frequency_bins), tf.float32),
        tf.TensorSpec((None, frequency_bins + 1), tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(generator, output_signature=signature)
    return dataset.padded_batch(batch_size).prefetch(2)


def masked_mse(target_and_mask, estimate, exponent=1.0):
    """The author's loss: ``sum((est - lbl)^2 * mask) / (sum(n_frames) * F)`` (criteria.py, docs/crn.md#training).

    ``target_and_mask`` is ``(batch, frames, F + 1)``: the clean magnitude and, last, 1 on valid frames and 0 on
    the zero padding. ``exponent`` < 1 compares power-law compressed magnitudes ``(x + 1e-4)**exponent`` instead
    (docs/crn.md#mini): quiet time-frequency bins weigh more than under the plain MSE, which loud low-frequency
    bins dominate; 1e-4 keeps the gradient finite at a zero estimate.
    """
    from common.tfkeras import tf

    target, mask = target_and_mask[..., :-1], target_and_mask[..., -1:]
    if exponent != 1.0:
        target = tf.pow(target + MAGNITUDE_FLOOR, exponent)
        estimate = tf.pow(estimate + MAGNITUDE_FLOOR, exponent)
    squared = tf.square(estimate - target) * mask
    frequency_bins = tf.cast(tf.shape(target)[-1], squared.dtype)
    return tf.reduce_sum(squared) / (tf.maximum(tf.reduce_sum(mask), 1.0) * frequency_bins)


def training_loss(config):
    """The configured objective: ``masked_mse`` at ``training.magnitude_exponent`` (1 in the paper)."""
    exponent = float(config["training"]["magnitude_exponent"])
    if not 0.0 < exponent <= 1.0:
        raise ValueError(f"{config_file(config)}: training.magnitude_exponent must be in (0, 1], got {exponent}")
    if exponent == 1.0:
        return masked_mse
    return functools.partial(masked_mse, exponent=exponent)
