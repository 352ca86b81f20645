"""Each paper's mixture set follows its protocol (measured on the loaded audio) and is reproducible."""

import itertools

import numpy as np
import pyloudnorm
import pytest

from data_prep.paper_sets import (
    CRN_TEST_SNRS,
    CRN_TRAIN_SNRS,
    crn_set,
    fcn_set,
    fqse_augment,
    fqse_set,
    progressive_targets,
    sednn_set,
    tfgridnet_set,
)
from data_prep.build_mini import UNSEEN_NOISE_TYPES


def energy_snr(clean, noise):
    return 10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(noise.astype(np.float64) ** 2))


def variance_snr(clean, noise):
    return 10 * np.log10(np.var(clean.astype(np.float64)) / np.var(noise.astype(np.float64)))


def check_example(example, expected_length=None):
    noisy, clean, noise = example.load()
    assert noisy.dtype == clean.dtype == noise.dtype == np.float32
    assert noisy.shape == clean.shape == noise.shape
    if expected_length is not None:
        assert noisy.shape[0] == expected_length
    np.testing.assert_allclose(noisy, clean + noise, atol=1e-6)
    return noisy, clean, noise


def test_sednn_training_magnification_and_snr(mini_corpus):
    speech = mini_corpus.speech("train")
    examples = sednn_set(mini_corpus, "train", snr_db=0, magnification=2, seed=0)
    assert len(examples) == 2 * len(speech)
    for utterance, pair in itertools.groupby(examples, key=lambda example: example.meta["speech"]):
        noises = [example.meta["noise"] for example in pair]
        assert len(noises) == 2 and len(set(noises)) == 2
    for example in examples:
        length = next(row["samples"] for row in speech if row["path"] == example.speech_path)
        noisy, clean, noise = check_example(example, length)
        assert abs(energy_snr(clean, noise) - 0.0) < 0.1
        assert abs(np.max(np.abs(noisy)) - 1.0) < 1e-5  # sednn peak-normalises the mixture


def test_sednn_test_is_every_utterance_with_every_noise(mini_corpus):
    examples = sednn_set(mini_corpus, "test", snr_db=5, seed=0)
    pairs = {(example.meta["speech"], example.meta["noise"]) for example in examples}
    expected = {(s["path"], n["path"]) for s in mini_corpus.speech("test") for n in mini_corpus.noise("test")}
    assert pairs == expected and len(examples) == len(expected)
    for example in examples[::25]:
        _, clean, noise = check_example(example)
        assert abs(energy_snr(clean, noise) - 5.0) < 0.1
    unseen = sednn_set(mini_corpus, "test_unseen_noise", seed=0)
    assert {example.meta["noise_type"] for example in unseen} == set(UNSEEN_NOISE_TYPES)


def test_sets_are_reproducible(mini_corpus):
    first = sednn_set(mini_corpus, "train", seed=3)
    second = sednn_set(mini_corpus, "train", seed=3)
    assert [example.meta for example in first] == [example.meta for example in second]
    for a, b in zip(first[:3], second[:3]):
        for x, y in zip(a.load(), b.load()):
            np.testing.assert_array_equal(x, y)
    other = sednn_set(mini_corpus, "train", seed=4)
    assert [example.meta["noise"] for example in other] != [example.meta["noise"] for example in first]
    grid_a = tfgridnet_set(mini_corpus, "train", seed=1)
    grid_b = tfgridnet_set(mini_corpus, "train", seed=1)
    assert [example.meta["snr_db"] for example in grid_a] == [example.meta["snr_db"] for example in grid_b]


def test_fcn_whole_utterances_and_snr_grid(mini_corpus):
    snrs = (-6, 0, 6)
    train = fcn_set(mini_corpus, "train", snrs=snrs, seed=0)
    assert len(train) == 3 * len(mini_corpus.speech("train"))
    lengths = {row["path"]: row["samples"] for row in mini_corpus.speech("train")}
    for example in train:
        _, clean, noise = check_example(example, lengths[example.speech_path])
        assert abs(energy_snr(clean, noise) - example.meta["snr_db"]) < 0.1
    test = fcn_set(mini_corpus, "test", snrs=snrs, seed=0)
    assert len(test) == len(mini_corpus.speech("test")) * len(mini_corpus.noise("test")) * 3
    limited = fcn_set(mini_corpus, "test", snrs=snrs, seed=0, max_items=7)
    assert len(limited) == 7 and all(example.meta in [item.meta for item in test] for example in limited)


def test_crn_training_snrs_and_unseen_noise_tests(mini_corpus):
    train = crn_set(mini_corpus, "train", seed=0, per_utterance=2)
    assert len(train) == 2 * len(mini_corpus.speech("train"))
    assert {example.meta["snr_db"] for example in train} <= set(CRN_TRAIN_SNRS)
    for example in train:
        noisy, clean, noise = check_example(example)
        assert abs(energy_snr(clean, noise) - example.meta["snr_db"]) < 0.1
        assert abs(np.sqrt(np.mean(noisy.astype(np.float64) ** 2)) - 1.0) < 1e-4  # mixture RMS normalised to 1
    test = crn_set(mini_corpus, "test", seed=0)
    assert {example.meta["noise_type"] for example in test} == set(UNSEEN_NOISE_TYPES)
    assert {example.meta["snr_db"] for example in test} == set(CRN_TEST_SNRS)
    assert len(test) == len(mini_corpus.speech("test")) * len(UNSEEN_NOISE_TYPES) * len(CRN_TEST_SNRS)
    for example in test[::10]:
        _, clean, noise = check_example(example)
        assert abs(energy_snr(clean, noise) - example.meta["snr_db"]) < 0.1
    voice = crn_set(mini_corpus, "test_unseen_voice", seed=0, max_items=4)
    assert len(voice) == 4 and all(example.meta["noise_split"] == "test_unseen_noise" for example in voice)


def test_fqse_segments_levels_and_augmentation(mini_corpus):
    train = fqse_set(mini_corpus, "train", segment_seconds=3.0, seed=0)
    assert train and len(train) <= len(mini_corpus.speech("train"))
    meter = pyloudnorm.Meter(16000)
    for example in train:
        noisy, clean, noise = check_example(example, 48000)
        assert np.max(np.abs(noisy)) <= 0.9 + 1e-4  # LibriMix clipping guard
        augmented = fqse_augment(clean, noise, np.random.default_rng(example.meta["index"]))
        assert -6.0 <= augmented.snr_db <= 18.0
        assert abs(energy_snr(augmented.speech, augmented.noise) - augmented.snr_db) < 0.1
        np.testing.assert_array_equal(augmented.speech, clean)
    test = fqse_set(mini_corpus, "test", seed=0)
    lengths = {row["path"]: row["samples"] for row in mini_corpus.speech("test")}
    for example in test:
        noisy, clean, noise = check_example(example, lengths[example.speech_path])
        if np.max(np.abs(noisy)) < 0.9 - 1e-3:  # no clipping guard: the loudness draws are kept exactly
            assert -33.05 <= meter.integrated_loudness(clean.astype(np.float64)) <= -24.95
            assert -38.05 <= meter.integrated_loudness(noise.astype(np.float64)) <= -29.95
    with pytest.raises(ValueError, match="longer"):
        fqse_set(mini_corpus, "train", segment_seconds=600.0)


def test_tfgridnet_snr_range_segments_and_progressive_targets(mini_corpus):
    examples = tfgridnet_set(mini_corpus, "train", snr_range=(-5, 15), seed=0, segment_seconds=2.0)
    snrs = [example.meta["snr_db"] for example in examples]
    assert all(-5 <= snr <= 15 for snr in snrs) and len(set(snrs)) == len(snrs)
    for example in examples:
        noisy, clean, noise = check_example(example, 32000)
        assert abs(variance_snr(clean, noise) - example.meta["snr_db"]) < 0.1
        targets = progressive_targets(clean, noise)
        assert targets.shape == (5, 32000)
        for row, snr in zip(targets[:4], (0, 5, 10, 15)):
            assert abs(variance_snr(clean, row - clean) - snr) < 0.1
        np.testing.assert_array_equal(targets[4], clean)


def test_bad_split_and_empty_noise(mini_corpus):
    with pytest.raises(ValueError, match="unknown split"):
        sednn_set(mini_corpus, "training")
    with pytest.raises(ValueError, match="magnification"):
        sednn_set(mini_corpus, "train", magnification=1000)


def rms_dbfs(signal):
    return 20 * np.log10(np.sqrt(np.mean(signal.astype(np.float64) ** 2)))


def test_augmentation_only_on_training_and_keeps_components(mini_corpus):
    from common.mixing import Augmentation

    augmentation = Augmentation(speed_factors=(0.9, 1.1), level_dbfs=(-45.0, -10.0))
    plain = fcn_set(mini_corpus, "train", snrs=(0.0,), seed=3, max_items=4)
    augmented = fcn_set(mini_corpus, "train", snrs=(0.0,), seed=3, max_items=4, augmentation=augmentation)
    tests = fcn_set(mini_corpus, "test", snrs=(0.0,), seed=3, max_items=2, augmentation=augmentation)
    assert all(example.augmentation is None for example in tests)
    for before, after in zip(plain, augmented):
        assert before.meta["speech"] == after.meta["speech"] and after.meta["augmented"]
        _, clean_before, _ = check_example(before)
        noisy, clean, noise = check_example(after)
        ratio = clean_before.shape[0] / clean.shape[0]
        assert min(abs(ratio - 0.9), abs(ratio - 1.1)) < 0.01  # the speed factor sets the length
        assert -45.01 <= rms_dbfs(noisy) <= -9.99 or np.max(np.abs(noisy)) > 0.99
        assert abs(energy_snr(clean, noise)) < 0.1  # one gain for speech and noise keeps the SNR
    again = fcn_set(mini_corpus, "train", snrs=(0.0,), seed=3, max_items=4, augmentation=augmentation)
    np.testing.assert_array_equal(again[0].load()[0], augmented[0].load()[0])


def test_augmented_segments_keep_their_length(mini_corpus):
    from common.mixing import Augmentation

    augmentation = Augmentation(speed_factors=(1.1,))
    for example in fqse_set(mini_corpus, "train", segment_seconds=3.0, seed=0, max_items=6, augmentation=augmentation):
        check_example(example, 48000)


def test_unseen_set_crosses_unseen_voices_with_unseen_noises(mini_corpus):
    from data_prep.paper_sets import robustness_sets, unseen_set

    examples = unseen_set(mini_corpus, -5.0, seed=0)
    long_enough = [row for row in mini_corpus.speech("test_unseen_voice") if row["duration"] >= 1.5]
    voices = {row["path"] for row in long_enough}
    noises = {row["path"] for row in mini_corpus.noise("test_unseen_noise")}
    noise_types = {row["noise_type"] for row in mini_corpus.noise("test_unseen_noise")}
    assert len(examples) == len(voices) * len(noise_types)
    subset = unseen_set(mini_corpus, 5.0, seed=0, max_items=2 * len(noise_types))
    speakers = {row["speaker"] for row in long_enough}
    assert len({example.meta["speaker"] for example in subset}) == min(len(speakers), len(subset))
    assert {example.meta["noise_type"] for example in subset} == noise_types
    assert [e.meta["speech"] for e in subset] == [e.meta["speech"] for e in unseen_set(mini_corpus, -5.0, seed=0,
                                                                                         max_items=len(subset))]
    for example in examples[:: max(1, len(examples) // 5)]:
        assert example.meta["speech"] in voices and example.meta["noise"] in noises
        noisy, clean, noise = check_example(example)
        assert abs(energy_snr(clean, noise) + 5.0) < 0.1
        assert abs(rms_dbfs(noisy) + 25.0) < 0.01 or np.max(np.abs(noisy)) > 0.99
    tests = fcn_set(mini_corpus, "test", snrs=(0.0,), seed=0, max_items=2)
    sets = robustness_sets(mini_corpus, tests, seed=0, max_items=3)
    assert list(sets) == ["unseen voice x noise -5 dB", "unseen voice x noise +0 dB", "unseen voice x noise +5 dB",
                          "test at -40 dBFS", "test at -10 dBFS"]
    quiet, _, _ = sets["test at -40 dBFS"][0].load()
    original, _, _ = tests[0].load()
    assert abs(rms_dbfs(quiet) + 40.0) < 0.01
    np.testing.assert_allclose(quiet / np.max(np.abs(quiet)), original / np.max(np.abs(original)), atol=1e-6)
