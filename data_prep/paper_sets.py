"""Per-paper mixture sets: each paper's training/test protocol applied to a corpus (the mini corpus or an adapter's).

Every function returns a list of lazy examples (``Example``): creating a set only draws the protocol's random
choices (noise file, noise onset, SNR, crop) from ``seed``; ``example.load()`` reads the two files and mixes them
with the paper's convention from ``common.mixing``, returning ``(noisy, clean, noise)`` float32 16 kHz arrays.
The same seed gives the same set, example for example; use a different seed per epoch for fresh on-the-fly draws.

``split`` is one of ``train``, ``valid``, ``test``, ``test_unseen_voice`` (test noises, unseen voice) and
``test_unseen_noise`` (test speech, unseen noise types); ``noise_split=`` overrides the noise split.

References:
    docs/sednn.md#mixing     sednn: one SNR per model (0 dB), magnification 2, each test utterance x every noise
    docs/icse.md#data        ICSE/FCN: whole utterances, test grid noise x SNR (-6, 0, 6, 12, 18 dB)
    docs/crn.md#data         CRN: training SNR drawn from {-5..0} dB, tests with unseen noises
    docs/fqse.md#data        FQSE: LibriMix loudness levels, 3-s segments, augmentation at U(-6, 18) dB
    docs/tfgridnet.md#data   TF-GridNet: on-the-fly mixing at U(-5, 15) dB, PL targets at 0/5/10/15 dB
"""

from __future__ import annotations

import numpy as np

from common.mixing import (
    Mixture,
    fit_noise_to_length,
    mix_crn,
    mix_energy_gain,
    mix_librimix_loudness,
    mix_sednn,
    mix_tfgridnet,
)
from data_prep.examples import MixedExample

SAMPLE_RATE = 16000
Example = MixedExample

# Test SNRs of the ICSE tables (docs/icse.md#data); Fu's training SNRs are UNCONFIRMED, the same grid is used.
FCN_SNRS = (-6.0, 0.0, 6.0, 12.0, 18.0)
# CRN: training SNR from {-5,-4,-3,-2,-1,0} dB (docs/crn.md#data); tests at -5, 0, 5 dB, the project's grid.
CRN_TRAIN_SNRS = (-5.0, -4.0, -3.0, -2.0, -1.0, 0.0)
CRN_TEST_SNRS = (-5.0, 0.0, 5.0)
# FQSE high-SNR augmentation range (docs/fqse.md#augmentation).
FQSE_AUGMENT_SNR_RANGE = (-6.0, 18.0)
# TF-GridNet upstream: input SNR ~ U(-5, 15), PL targets k*5 dB for k = 0..3 (docs/tfgridnet.md#progressive-learning).
TFGRIDNET_SNR_RANGE = (-5.0, 15.0)
PROGRESSIVE_SNRS = (0.0, 5.0, 10.0, 15.0)

SPLITS = {
    "train": ("train", "train"),
    "valid": ("valid", "valid"),
    "test": ("test", "test"),
    "test_unseen_voice": ("test_unseen_voice", "test"),
    "test_unseen_noise": ("test", "test_unseen_noise"),
    "test_unseen": ("test_unseen_voice", "test_unseen_noise"),
}
# The robustness rows of every table: unseen voices x unseen noises at these SNRs, and the test set at these levels.
UNSEEN_SNRS = (-5.0, 0.0, 5.0)
UNSEEN_LEVEL_DBFS = -25.0
TEST_LEVELS_DBFS = (-40.0, -10.0)
# STOI needs a few 384-ms frames of speech; shorter unseen utterances are left out of the robustness sets.
UNSEEN_MIN_SECONDS = 1.5

__all__ = [
    "Example",
    "sednn_set",
    "fcn_set",
    "crn_set",
    "fqse_set",
    "fqse_augment",
    "tfgridnet_set",
    "progressive_targets",
    "unseen_set",
    "robustness_sets",
    "at_level",
    "UNSEEN_SNRS",
    "UNSEEN_LEVEL_DBFS",
    "TEST_LEVELS_DBFS",
    "FCN_SNRS",
    "CRN_TRAIN_SNRS",
    "CRN_TEST_SNRS",
    "FQSE_AUGMENT_SNR_RANGE",
    "TFGRIDNET_SNR_RANGE",
    "PROGRESSIVE_SNRS",
]


class _Mixer:
    """Picklable ``(speech, noise, rng) -> Mixture`` for one convention and SNR."""

    def __init__(self, convention: str, snr_db: float | None = None):
        self.convention = convention
        self.snr_db = None if snr_db is None else float(snr_db)

    def __call__(self, speech, noise, rng) -> Mixture:
        if self.convention == "sednn":
            return mix_sednn(speech, noise, self.snr_db, rng)
        if self.convention == "energy_gain":
            return mix_energy_gain(speech, noise, self.snr_db, rng)
        if self.convention == "crn":
            return mix_crn(speech, noise, self.snr_db, rng)
        if self.convention == "tfgridnet":
            return mix_tfgridnet(speech, noise, self.snr_db, rng)
        if self.convention == "librimix":
            return mix_librimix_loudness(speech, noise, rng, sample_rate=SAMPLE_RATE)
        raise ValueError(f"unknown mixing convention {self.convention!r}")


def _resolve_split(corpus, split: str, noise_split, default_test_noise: str | None = None):
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    speech_split, noise_name = SPLITS[split]
    if default_test_noise is not None and split in ("test", "test_unseen_voice"):
        noise_name = default_test_noise
    if noise_split is not None:
        noise_name = noise_split
    speech = corpus.speech(speech_split)
    noise = corpus.noise(noise_name)
    where = getattr(corpus, "name", "corpus")
    if not speech:
        raise ValueError(f"{where}: no speech in split {speech_split!r}")
    if not noise:
        raise ValueError(f"{where}: no noise in split {noise_name!r}")
    return speech_split, noise_name, speech, noise


def _subset(items: list, limit, rng) -> list:
    """Keep ``limit`` items chosen at random, in their original order (None keeps all)."""
    if limit is None or limit >= len(items):
        return items
    if limit <= 0:
        raise ValueError(f"the item limit must be positive, got {limit}")
    keep = np.sort(rng.choice(len(items), size=int(limit), replace=False))
    return [items[index] for index in keep]


def _example(protocol, index, seed, speech_row, noise_row, split, speech_split, noise_split, mixer, snr_db,
             noise_start=None, speech_start=0, speech_length=None, crop=None, extra=None) -> MixedExample:
    meta = {
        "protocol": protocol,
        "speech": speech_row["path"],
        "speaker": speech_row.get("speaker", ""),
        "noise": noise_row["path"],
        "noise_type": noise_row.get("noise_type", ""),
        "snr_db": None if snr_db is None else float(snr_db),
        "split": split,
        "speech_split": speech_split,
        "noise_split": noise_split,
        "noise_start": noise_start,
        "index": index,
    }
    meta.update(extra or {})
    return MixedExample(
        speech_path=speech_row["path"],
        noise_path=noise_row["path"],
        snr_db=None if snr_db is None else float(snr_db),
        mixer=mixer,
        seed=(int(seed), int(index)),
        fit_noise=fit_noise_to_length,
        speech_start=int(speech_start),
        speech_length=None if speech_length is None else int(speech_length),
        noise_start=noise_start,
        crop=crop,
        meta=meta,
    )


def _augmented(examples: list, augmentation, split: str) -> list:
    """Attach ``augmentation`` (a ``common.mixing.Augmentation`` or None) to the examples of a training split;
    validation and test sets are never augmented, so their scores compare across configurations."""
    if augmentation is None or split != "train":
        return examples
    for example in examples:
        example.augmentation = augmentation
        example.meta["augmented"] = True
    return examples


def _samples(row) -> int:
    return int(row.get("samples") or round(float(row["duration"]) * SAMPLE_RATE))


def sednn_set(corpus, split, snr_db=0, magnification=2, seed=0, max_speech=None, noise_split=None,
              augmentation=None) -> list:
    """sednn (Xu et al. / Kong): one SNR per model.

    Training splits mix each utterance with ``magnification`` different noises (``rs.choice(..., replace=False)``);
    test splits mix each utterance with every noise. A noise longer than the utterance starts at
    ``rs.randint(0, len_noise - len_speech)``, a shorter one is tiled; the mixture is scaled by ``mix_sednn``
    (speech RMS to the SNR, mixture peak-normalised). The random draws use ``numpy.random.RandomState(seed)`` in
    sednn's order (sorted speech, for each the noise choice then the onsets) so a set is reproducible.
    """
    speech_split, noise_name, speech, noise = _resolve_split(corpus, split, noise_split)
    state = np.random.RandomState(seed)
    if max_speech is not None:
        speech = [speech[i] for i in sorted(state.choice(len(speech), size=min(int(max_speech), len(speech)), replace=False))]
    training = split in ("train", "valid")
    if training and magnification > len(noise):
        raise ValueError(f"sednn_set: magnification {magnification} > {len(noise)} noises in split {noise_name!r}")
    mixer = _Mixer("sednn", snr_db)
    examples = []
    for speech_row in speech:
        chosen = state.choice(len(noise), size=int(magnification), replace=False) if training else range(len(noise))
        for noise_index in chosen:
            noise_row = noise[int(noise_index)]
            length, noise_length = _samples(speech_row), _samples(noise_row)
            onset = int(state.randint(0, noise_length - length)) if noise_length > length else None
            examples.append(_example("sednn", len(examples), seed, speech_row, noise_row, split, speech_split,
                                     noise_name, mixer, snr_db, noise_start=onset,
                                     extra={"magnification": int(magnification) if training else None}))
    return _augmented(examples, augmentation, split)


def fcn_set(corpus, split, snrs=FCN_SNRS, seed=0, max_items=None, noise_split=None, augmentation=None) -> list:
    """ICSE / Fu's FCN: whole utterances (batch of one, no cropping).

    Training splits: every utterance at every SNR of ``snrs``, each time with a randomly chosen noise file.
    Test splits: the full grid utterance x noise x SNR, Fu's ``<noise>/<snr>dB/<file>.wav`` layout. Mixing is the
    plain energy gain (``mix_energy_gain``: s + g n); the FCN recipe peak-normalises noisy and clean itself.
    """
    speech_split, noise_name, speech, noise = _resolve_split(corpus, split, noise_split)
    rng = np.random.default_rng([int(seed), 11])
    snrs = tuple(float(snr) for snr in snrs)
    if not snrs:
        raise ValueError("fcn_set: snrs is empty")
    examples = []
    for speech_row in speech:
        for snr in snrs:
            noise_rows = [noise[int(rng.integers(len(noise)))]] if split in ("train", "valid") else noise
            for noise_row in noise_rows:
                examples.append(_example("fcn", len(examples), seed, speech_row, noise_row, split, speech_split,
                                         noise_name, _Mixer("energy_gain", snr), snr))
    return _augmented(_subset(examples, max_items, rng), augmentation, split)


def crn_set(corpus, split, snrs=None, seed=0, max_items=None, per_utterance=1, noise_split=None,
            augmentation=None) -> list:
    """CRN (Tan & Wang): training SNR drawn from ``snrs`` (default -5..0 dB in 1-dB steps) per mixture, a random
    noise file, ``per_utterance`` mixtures per utterance; tests use the unseen noise types (default noise split
    ``test_unseen_noise``), each test utterance with each noise type (a random file of it) at each SNR of ``snrs``
    (default -5, 0, 5 dB). Mixing: ``mix_crn`` (SNR by energy, mixture RMS normalised to 1).
    """
    training = split in ("train", "valid")
    speech_split, noise_name, speech, noise = _resolve_split(corpus, split, noise_split, default_test_noise="test_unseen_noise")
    snrs = tuple(float(snr) for snr in (snrs if snrs is not None else CRN_TRAIN_SNRS if training else CRN_TEST_SNRS))
    rng = np.random.default_rng([int(seed), 12])
    examples = []
    if training:
        for speech_row in speech:
            for _ in range(int(per_utterance)):
                snr = snrs[int(rng.integers(len(snrs)))]
                noise_row = noise[int(rng.integers(len(noise)))]
                examples.append(_example("crn", len(examples), seed, speech_row, noise_row, split, speech_split,
                                         noise_name, _Mixer("crn", snr), snr))
    else:
        by_type = {}
        for row in noise:
            by_type.setdefault(row.get("noise_type", ""), []).append(row)
        for speech_row in speech:
            for noise_type in sorted(by_type):
                files = by_type[noise_type]
                noise_row = files[int(rng.integers(len(files)))]
                for snr in snrs:
                    examples.append(_example("crn", len(examples), seed, speech_row, noise_row, split, speech_split,
                                             noise_name, _Mixer("crn", snr), snr))
    return _augmented(_subset(examples, max_items, rng), augmentation, split)


# pyloudnorm's gating block (ITU-R BS.1770): shorter utterances have no LibriMix loudness.
LOUDNESS_BLOCK_SECONDS = 0.4


def fqse_set(corpus, split, segment_seconds=3.0, seed=0, max_items=None, noise_split=None,
             augmentation=None) -> list:
    """FQSE on LibriMix ``enh_single``: LibriMix loudness levels (speech U[-33,-25] LUFS, noise U[-38,-30] LUFS,
    clipping guard 0.9, ``mix_librimix_loudness``), one random noise per utterance.

    Training and validation examples are random ``segment_seconds`` crops (utterances shorter than a segment are
    dropped, as asteroid's LibriMix loader does); test examples are whole utterances. ``meta['snr_db']`` is None
    (the SNR follows from the loudness draws); ``fqse_augment`` re-mixes a training example at U(-6, 18) dB.
    """
    speech_split, noise_name, speech, noise = _resolve_split(corpus, split, noise_split)
    rng = np.random.default_rng([int(seed), 13])
    segment = int(round(float(segment_seconds) * SAMPLE_RATE)) if split in ("train", "valid") else None
    mixer = _Mixer("librimix")
    examples = []
    for speech_row in speech:
        length = _samples(speech_row)
        noise_row = noise[int(rng.integers(len(noise)))]
        crop = None
        if length < LOUDNESS_BLOCK_SECONDS * SAMPLE_RATE:
            continue  # the LibriMix loudness meter needs one full block
        if segment is not None:
            if length < segment:
                continue
            crop = (int(rng.integers(0, length - segment + 1)), segment)
        examples.append(_example("fqse", len(examples), seed, speech_row, noise_row, split, speech_split, noise_name,
                                 mixer, None, crop=crop, extra={"segment_seconds": None if segment is None else float(segment_seconds)}))
    if not examples:
        raise ValueError(f"fqse_set: no utterance of split {speech_split!r} is {segment_seconds} s or longer")
    return _augmented(_subset(examples, max_items, rng), augmentation, split)


def fqse_augment(clean, noise, rng) -> Mixture:
    """FQSE high-SNR augmentation: a new mixture ``clean + g noise`` at SNR ~ U(-6, 18) dB (``mix_energy_gain``).

    ``noise`` may be the scaled noise of a loaded example (the gain is scale invariant in the noise). Returns the
    ``common.mixing.Mixture`` (``.mixture``, ``.speech``, ``.noise``, ``.snr_db``).
    """
    low, high = FQSE_AUGMENT_SNR_RANGE
    snr = float(rng.uniform(low, high))
    return mix_energy_gain(clean, noise, snr, rng)


def tfgridnet_set(corpus, split, snr_range=TFGRIDNET_SNR_RANGE, seed=0, max_items=None, segment_seconds=None,
                  noise_split=None, augmentation=None) -> list:
    """TF-GridNet + progressive learning: on-the-fly mixtures, SNR ~ U(snr_range) per example, a random noise file,
    ``mix_tfgridnet`` (variance-based, no normalisation). ``segment_seconds`` crops longer utterances at a random
    start (the TF-GridNet upstream uses 8-s crops); shorter ones are used whole. Test splits draw their SNRs the same
    way (a fixed synthetic test set for a given seed).
    """
    speech_split, noise_name, speech, noise = _resolve_split(corpus, split, noise_split)
    low, high = (float(value) for value in snr_range)
    if high < low:
        raise ValueError(f"tfgridnet_set: snr_range {snr_range} is decreasing")
    rng = np.random.default_rng([int(seed), 14])
    segment = None if segment_seconds is None else int(round(float(segment_seconds) * SAMPLE_RATE))
    examples = []
    for speech_row in speech:
        snr = float(rng.uniform(low, high))
        noise_row = noise[int(rng.integers(len(noise)))]
        length = _samples(speech_row)
        start, size = 0, None
        if segment is not None and length > segment:
            start, size = int(rng.integers(0, length - segment + 1)), segment
        examples.append(_example("tfgridnet", len(examples), seed, speech_row, noise_row, split, speech_split,
                                 noise_name, _Mixer("tfgridnet", snr), snr, speech_start=start, speech_length=size))
    return _augmented(_subset(examples, max_items, rng), augmentation, split)


def progressive_targets(speech, noise, snrs=PROGRESSIVE_SNRS) -> np.ndarray:
    """Progressive-learning targets of the TF-GridNet upstream: the mixtures of the same speech and noise at each SNR
    of ``snrs`` (0, 5, 10, 15 dB, absolute, independent of the input SNR) followed by the clean speech.

    Returns float32 of shape (len(snrs) + 1, samples): rows 0..len(snrs)-1 feed blocks 1..4, the last row block 5.
    """
    speech = np.asarray(speech, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    if speech.shape != noise.shape or speech.ndim != 1:
        raise ValueError(f"progressive_targets: speech {speech.shape} and noise {noise.shape} must be equal 1-D shapes")
    rows = [mix_tfgridnet(speech, noise, float(snr)).mixture for snr in snrs]
    return np.stack(rows + [speech]).astype(np.float32)


def unseen_set(corpus, snr_db: float, seed=0, max_items=None, level_dbfs=UNSEEN_LEVEL_DBFS,
               min_seconds=UNSEEN_MIN_SECONDS) -> list:
    """Unseen voices x unseen noises at one SNR, the same mixtures for every reproduction.

    Utterances of ``test_unseen_voice`` of at least ``min_seconds`` are taken in turn from each voice (round robin,
    so that no voice dominates a subset) and paired with the noise types of ``test_unseen_noise`` in turn (a random
    file of the type, at a random onset): with ``max_items`` None every such utterance meets every noise type.
    Mixing is ``clean + g noise`` by energy (``mix_energy_gain``); the mixture is then played at ``level_dbfs`` RMS
    as a recording would arrive, in no paper's convention. The same seed gives the same set at every SNR.
    """
    from data_prep.examples import LevelExample

    speech_split, noise_name, speech, noise = _resolve_split(corpus, "test_unseen", None)
    rng = np.random.default_rng([int(seed), 15])
    by_voice = {}
    for row in speech:
        if _samples(row) >= float(min_seconds) * SAMPLE_RATE:
            by_voice.setdefault(row.get("speaker", ""), []).append(row)
    if not by_voice:
        raise ValueError(f"unseen_set: no utterance of split {speech_split!r} is {min_seconds} s or longer")
    queues = [[rows[int(index)] for index in rng.permutation(len(rows))] for _, rows in sorted(by_voice.items())]
    ordered = [queue[turn] for turn in range(max(map(len, queues))) for queue in queues if turn < len(queue)]
    by_type = {}
    for row in noise:
        by_type.setdefault(row.get("noise_type", ""), []).append(row)
    types = sorted(by_type)
    if max_items is None:
        pairs = [(speech_row, noise_type) for speech_row in ordered for noise_type in types]
    else:
        pairs = [(ordered[index % len(ordered)], types[index % len(types)]) for index in range(min(int(max_items),
                                                                                                    len(ordered) * len(types)))]
    examples = []
    for speech_row, noise_type in pairs:
        files = by_type[noise_type]
        noise_row = files[int(rng.integers(len(files)))]
        onset = int(rng.integers(0, max(1, _samples(noise_row) - _samples(speech_row))))
        examples.append(_example("unseen", len(examples), seed, speech_row, noise_row, "test_unseen", speech_split,
                                 noise_name, _Mixer("energy_gain", snr_db), snr_db,
                                 noise_start=onset if _samples(noise_row) > _samples(speech_row) else None))
    return [LevelExample(example, level_dbfs) for example in examples]


def at_level(examples, level_dbfs: float) -> list:
    """The same examples with their mixtures (and targets, by the same gain) at ``level_dbfs`` RMS."""
    from data_prep.examples import LevelExample

    return [LevelExample(example, float(level_dbfs)) for example in examples]


def robustness_sets(corpus, test_examples, seed=0, max_items=None, snrs=UNSEEN_SNRS,
                    levels_dbfs=TEST_LEVELS_DBFS) -> dict:
    """The robustness rows every reproduction prints: ``unseen voice x noise <snr> dB`` for each SNR of ``snrs``
    and ``test at <level> dBFS``, the recipe's own test examples replayed at each level of ``levels_dbfs``."""
    sets = {f"unseen voice x noise {float(snr):+g} dB": unseen_set(corpus, snr, seed=seed, max_items=max_items)
            for snr in snrs}
    sets.update({f"test at {float(level):g} dBFS": at_level(test_examples, level) for level in levels_dbfs})
    return sets
