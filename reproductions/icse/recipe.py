"""ICSE: Fu et al.'s waveform FCN compressed by parameter pruning (PP) and parameter quantization (PQ).

Reproduces Wu, Yu, Fu, Liu, Chien, Tsao, "Increasing compactness of deep learning based speech enhancement models
with parameter pruning and quantization techniques" (arXiv 1906.01078, repo WilliamYu1993/ICSE); spec with sources in
``docs/icse.md``.

Pipeline (``run.sh``; every step is a command of ``python -m reproductions.icse``)::

    train --variant fcn        float FCN: one whole utterance per batch, MSE, Adam; or --init-from-keras1
    train --variant pp         ICSE channel pruning at each theta, retrained with the mask held
    train --variant pq         ICSE k-means (16+16, output 4+4) retrained with shared centroids, k sweep, FP16
    train --variant pp_pq      PP then PQ for each theta and k (the paper's pipeline)
    train --variant released   the authors' FCNN_0509 through our PP+PQ, beside the authors' own PP+PQ file
    export                     int8 TFLite (post-training, float I/O) of the FCN and the PP+PQ model
    evaluate                   PESQ (WB P.862.2 and NB P.862.1 MOS-LQO), STOI, SI-SNR of every model on the test set
    table                      our figures beside the paper's, with sizes under the ICSE bit rule and real bytes

Trained models are stored as ``exp/icse/<config>/models/<variant>.weights.h5`` with a ``<variant>.json`` describing
them (parent, theta, code-book sizes, per-layer pruning report); retraining runs (resumable) live in
``exp/icse/<config>/runs/<variant>/``; metrics in ``results/icse/<config>/scores/<variant>.json``, scores of a
folder of pairs (``evaluate --noisy-dir``) in ``results/icse/<config>/scores/folders/<variant>.json``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from common.enhancement import configured_enhancer
from reproductions.icse.fcn import (
    build_from_config,
    conv_layers,
    conv_weight_statistics,
    fcn_from_keras1,
    load_keras1_weights,
)

RECIPE_DIR = Path(__file__).resolve().parent
REPOSITORY_ROOT = RECIPE_DIR.parents[1]
SAMPLE_RATE = 16000
CORPORA = ("mini", "folder", "timit")
METRICS = ("pesq_wb", "pesq_nb_mos", "stoi", "si_snr")
# A float32 weight costs 32 bits under the ICSE size rule: a "code book" of 2**32 levels.
FLOAT_LEVELS = 2 ** 32
VARIANTS = ("fcn", "pp", "pq", "pp_pq", "released")

# The paper's figures (docs/icse.md#paper README row and docs/icse.md#paper-results figure read-offs, +-0.005). PESQ
# there is the repo's modified MATLAB pesq.m (WB mapping with the NB IRS filter, docs/icse.md#metrics): not the standard
# P.862.2 we report.
PAPER_MAIN = {
    "fcn": {"size_percent": 100.0, "pesq_wb": 2.55, "stoi": 0.85},
    "pp_0.65": {"pesq_wb": 2.537, "stoi": 0.8466},
    "pp_0.70": {"pesq_wb": 2.551, "stoi": 0.8505},
    "pq_k16": {"pesq_wb": 2.517, "stoi": 0.839},
    "pp_0.65_pq_k16": {"size_percent": 9.76, "pesq_wb": 2.52, "stoi": 0.84},
    "pp_0.70_pq_k16": {"size_percent": 10.8, "pesq_wb": 2.546, "stoi": 0.848},
}
# Bar charts PESQ_/STOI_PP&PQ&FQ.png: (PESQ FP32, PESQ FP16, STOI FP32, STOI FP16) per k.
PAPER_SWEEP = {
    64: (2.52, 2.51, 0.841, 0.836),
    32: (2.52, 2.505, 0.840, 0.836),
    16: (2.517, 2.497, 0.839, 0.835),
    8: (2.50, 2.49, 0.833, 0.832),
    4: (2.35, 2.35, 0.817, 0.817),
    2: (2.015, 2.015, 0.743, 0.745),
}
# Line plots FP1632_pesq/stoi.png: theta -> k (None = PP only) -> (size %, PESQ, STOI).
PAPER_THETA = {
    0.65: {None: (None, 2.537, 0.8466), 64: (14.7, 2.538, 0.846), 32: (12.2, 2.533, 0.8457),
           16: (9.8, 2.524, 0.845), 8: (7.3, 2.519, 0.842), 4: (4.9, 2.39, 0.828)},
    0.70: {None: (None, 2.551, 0.8505), 64: (16.1, 2.552, 0.850), 32: (13.4, 2.548, 0.8497),
           16: (10.8, 2.546, 0.848), 8: (8.1, 2.529, 0.843), 4: (5.2, 2.424, 0.823)},
}


# ---------------------------------------------------------------------------------------------------------------------
# Names and files
# ---------------------------------------------------------------------------------------------------------------------
def theta_name(theta) -> str:
    return f"{float(theta):.2f}"


def pp_name(theta) -> str:
    return f"pp_{theta_name(theta)}"


def pq_name(clusters, theta=None, fp16=False) -> str:
    base = f"pq_k{int(clusters)}" if theta is None else f"{pp_name(theta)}_pq_k{int(clusters)}"
    return base + ("_fp16" if fp16 else "")


def models_dir(exp_dir) -> Path:
    return Path(exp_dir) / "models"


def tflite_path(exp_dir, variant) -> Path:
    return models_dir(exp_dir) / f"{variant}_int8.tflite"


def metrics_path(results_dir, variant) -> Path:
    from common.evaluation import scores_path

    return scores_path(results_dir, variant)


def robustness_path(results_dir) -> Path:
    return Path(results_dir) / "scores" / "robustness.json"


def build_model(config, settings=None):
    """The FCN of ``config``'s model section, or of ``settings`` (the layer sizes a Keras-1 file's variant records)."""
    if settings is None:
        return build_from_config(config["model"], seed=int(config["seed"]), source=config.get("config_path"))
    return build_from_config(settings, seed=int(config["seed"]))


def output_layer_name(model) -> str:
    return conv_layers(model)[-1].name


def save_variant(model, exp_dir, name, meta) -> Path:
    directory = models_dir(exp_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.weights.h5"
    model.save_weights(str(path))
    meta = dict(meta, name=name, conv=conv_weight_statistics(model))
    meta.setdefault("model", None)
    (directory / f"{name}.json").write_text(json.dumps(meta, indent=1))
    return path


def variant_exists(exp_dir, name) -> bool:
    return (models_dir(exp_dir) / f"{name}.weights.h5").is_file()


def load_variant(config, exp_dir, name):
    """Return ``(model, meta)`` of a stored variant; ValueError naming the missing file and the step that makes it."""
    path = models_dir(exp_dir) / f"{name}.weights.h5"
    if not path.is_file():
        raise ValueError(f"{path} does not exist: run the training step that produces '{name}' first (see run.sh)")
    meta = json.loads((models_dir(exp_dir) / f"{name}.json").read_text())
    # Variants made from a Keras-1 file carry that file's layer sizes; the others are the configuration's model.
    model = build_model(config, meta.get("model"))
    model.load_weights(str(path))
    return model, meta


def stored_variants(exp_dir) -> list:
    return sorted(path.name[: -len(".weights.h5")] for path in models_dir(exp_dir).glob("*.weights.h5"))


# ---------------------------------------------------------------------------------------------------------------------
# ICSE size rule and code books
# ---------------------------------------------------------------------------------------------------------------------
def quantized_levels(model, clusters_per_sign, output_clusters_per_sign) -> dict:
    """Code-book size ``k`` per conv layer for the ICSE bit rule (docs/icse.md#size-rule): the hidden layers count ``k``
    = clusters per sign (the released 16 + 16 code book is "16C", 4 bits) and the output layer its total number of
    levels (4 + 4 = 8, 3 bits); with these the released model gives exactly 9.76 %."""
    output = output_layer_name(model)
    return {layer.name: (2 * int(output_clusters_per_sign) if layer.name == output else int(clusters_per_sign))
            for layer in conv_layers(model)}


def float_levels(model) -> dict:
    return {layer.name: FLOAT_LEVELS for layer in conv_layers(model)}


def inferred_levels(model) -> dict:
    """ICSE code-book sizes read off the weights (for a file of unknown history, e.g. ``--init-from-keras1``): a
    layer with more than 256 distinct non-zero values is float (32 bits); otherwise the hidden layers count half
    their signed levels and the output layer all of them, the convention of :func:`quantized_levels`."""
    output = output_layer_name(model)
    levels = {}
    for row in conv_weight_statistics(model):
        distinct = row["distinct_nonzero"]
        if distinct > 256:
            levels[row["layer"]] = FLOAT_LEVELS
        elif row["layer"] == output:
            levels[row["layer"]] = max(distinct, 1)
        else:
            levels[row["layer"]] = max(int(math.ceil(distinct / 2)), 1)
    return levels


def icse_size(model, levels) -> float:
    from common.accounting import icse_size_percent

    return icse_size_percent({layer.name: layer.kernel.numpy() for layer in conv_layers(model)}, levels)


def kept_fraction(model) -> float:
    statistics = conv_weight_statistics(model)
    return sum(row["nonzero"] for row in statistics) / sum(row["weights"] for row in statistics)


def round_centroids_to_fp16(model) -> None:
    """FP16 storage of the code books (the paper's "FP16" curves): every kernel value rounded to float16."""
    for layer in conv_layers(model):
        kernel = layer.kernel.numpy()
        layer.kernel.assign(kernel.astype(np.float16).astype(np.float32))


# ---------------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------------
def load_corpus(config):
    """The configured corpus (``data.corpus``: ``mini``, ``folder`` or ``timit``, data_prep.registry), relative
    folders read from the repository root."""
    from data_prep.registry import open_corpus

    data = config["data"]
    corpus = open_corpus(data, config.get("config_path"), names=CORPORA, root=REPOSITORY_ROOT,
                         adapter_options={"timit": {"seed": int(config["seed"])}})
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

    seed = int(config["seed"]) * 100_003 + (epoch if split == "train" else 0)
    snrs = config["data"]["train_snrs"]
    examples = fcn_set(corpus, split, snrs=snrs, seed=seed, max_items=count)
    if not examples:
        raise ValueError(f"{getattr(corpus, 'name', 'corpus')}: no {split} examples for the FCN")
    return examples


def test_examples(corpus, config, max_items):
    from data_prep.paper_sets import fcn_set

    return fcn_set(corpus, "test", snrs=config["data"]["test_snrs"], seed=int(config["seed"]) + 7,
                   max_items=max_items)


LOSSES = ("mse", "negative_si_snr")
SCHEDULES = ("constant", "cosine")


def training_settings(config) -> dict:
    """The batching and objective of every training step (``training`` in the config, shared by the FCN and the
    compression retrainings): ``loss`` (``mse``, Fu's, or ``negative_si_snr``), ``batch_size`` and
    ``segment_seconds`` (null: one whole utterance per batch, Fu's; else ``batch_size`` crops of that length)."""
    training = config["training"]
    where = f"{config.get('config_path', 'config')}: training"
    loss = training.get("loss", "mse")
    if loss not in LOSSES:
        raise ValueError(f"{where}.loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    batch_size = int(training.get("batch_size", 1))
    if batch_size < 1:
        raise ValueError(f"{where}.batch_size must be at least 1, got {batch_size}")
    segment = training.get("segment_seconds")
    if segment is not None and float(segment) <= 0:
        raise ValueError(f"{where}.segment_seconds must be positive or null, got {segment!r}")
    if segment is None and batch_size != 1:
        raise ValueError(f"{where}.batch_size {batch_size} needs training.segment_seconds: whole utterances differ "
                         "in length, so they go one per batch")
    return {"loss": loss, "batch_size": batch_size,
            "segment_samples": None if segment is None else int(round(float(segment) * SAMPLE_RATE))}


def negative_si_snr(target, estimate, eps=1e-8):
    """Mean over the batch of minus the SI-SNR in dB of ``(batch, T, 1)`` waveforms (zero-mean, as
    ``common.metrics.si_snr``)."""
    from common.tfkeras import tf

    target = tf.cast(target, tf.float32)[..., 0]
    estimate = tf.cast(estimate, tf.float32)[..., 0]
    target = target - tf.reduce_mean(target, axis=1, keepdims=True)
    estimate = estimate - tf.reduce_mean(estimate, axis=1, keepdims=True)
    projection = (tf.reduce_sum(estimate * target, axis=1, keepdims=True)
                  / (tf.reduce_sum(target * target, axis=1, keepdims=True) + eps)) * target
    error = estimate - projection
    ratio = tf.reduce_sum(projection * projection, axis=1) / (tf.reduce_sum(error * error, axis=1) + eps)
    return -tf.reduce_mean(10.0 * tf.math.log(ratio + eps) / tf.math.log(10.0))


def learning_rate(spec, steps):
    """``spec.learning_rate``, constant or (``spec.schedule: cosine``) cosine-decayed to zero over ``steps``
    optimizer steps; the optimizer's step counter is checkpointed, so a resumed run continues the same curve."""
    from common.tfkeras import keras

    schedule = spec.get("schedule", "constant")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    rate = float(spec["learning_rate"])
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(int(steps), 1))
    return rate


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
            rng = np.random.default_rng([int(self.config["seed"]), self.epoch, index, 29])
            indices = range(index * self.batch_size, min((index + 1) * self.batch_size, len(self.examples)))
            pairs = [crop_segment(*self._pair(item), self.segment_samples, rng) for item in indices]
            return (np.stack([noisy for noisy, _ in pairs])[:, :, None],
                    np.stack([clean for _, clean in pairs])[:, :, None])

        def on_epoch_end(self):
            if self.split == "train":
                self.epoch += 1
                self.examples = training_examples(self.corpus, self.config, self.split, self.epoch, self.count)

    return UtteranceSequence


def train_model(model, corpus, config, run_dir, spec, callbacks=()):
    """Resumable training of ``model`` (Adam; loss and batching from :func:`training_settings`) for ``spec`` =
    {epochs, utterances_per_epoch, learning_rate, schedule}; validation on whole utterances, one per batch, with the
    same loss; the best epoch by validation loss is loaded back. Returns the model."""
    from common.tfkeras import keras
    from common.training import BackgroundBatches, ResumableTraining

    epochs = int(spec["epochs"])
    if epochs <= 0:
        return model
    settings = training_settings(config)
    sequence = make_sequence_class()
    count = int(spec["utterances_per_epoch"])
    steps = epochs * int(math.ceil(count / settings["batch_size"]))
    loss = negative_si_snr if settings["loss"] == "negative_si_snr" else "mse"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate(spec, steps)), loss=loss)
    training = ResumableTraining(model, run_dir)
    train_data = BackgroundBatches(sequence(corpus, config, "train", count, epoch=training.initial_epoch,
                                            batch_size=settings["batch_size"],
                                            segment_samples=settings["segment_samples"]))
    valid_data = sequence(corpus, config, "valid", int(config["data"]["valid_items"]))
    try:
        training.fit(train_data, epochs=epochs, validation_data=valid_data, callbacks=list(callbacks), shuffle=False)
    finally:
        train_data.close()
    if training.best_weights_path.is_file():
        model.load_weights(str(training.best_weights_path))
    for callback in callbacks:
        if hasattr(callback, "apply"):
            callback.set_model(model)
            callback.apply()  # the best epoch's weights were saved after the holder ran; re-applying is exact
    return model


# ---------------------------------------------------------------------------------------------------------------------
# Compression steps
# ---------------------------------------------------------------------------------------------------------------------
def prune_and_retrain(model, corpus, config, run_dir, theta, spec):
    """ICSE PP at ``theta`` (output layer excluded) and soft-pruning retraining with the mask held."""
    from common.compression.icse import MaskHolder, icse_channel_prune

    exclude = [output_layer_name(model)] if config["pruning"]["exclude_output_layer"] else []
    result = icse_channel_prune(model, float(theta), exclude_layers=exclude)
    train_model(model, corpus, config, run_dir, spec, callbacks=[MaskHolder(result.masks)])
    return result


def quantize_and_retrain(model, corpus, config, run_dir, clusters, spec):
    """ICSE PQ: signed per-layer k-means (``clusters`` per sign; output layer its own, docs/icse.md#quantization),
    shared-centroid retraining."""
    from common.compression.icse import CentroidHolder, icse_kmeans

    output_clusters = min(int(config["quantization"]["output_clusters_per_sign"]), int(clusters))
    result = icse_kmeans(model, clusters_per_sign={output_layer_name(model): output_clusters}, default=int(clusters),
                         seed=int(config["seed"]))
    train_model(model, corpus, config, run_dir, spec, callbacks=[CentroidHolder(result.assignments)])
    return quantized_levels(model, clusters, output_clusters), output_clusters


# The folder of the authors' released weight files when --released-dir is not given.
RELEASED_DIR_VARIABLE = "ICSE_RELEASED_DIR"


def released_dir(args) -> Path:
    """The folder of the authors' files: ``--released-dir``, else the ``ICSE_RELEASED_DIR`` environment variable."""
    import os

    folder = getattr(args, "released_dir", None) or os.environ.get(RELEASED_DIR_VARIABLE)
    if not folder:
        raise ValueError(f"the authors' files (WilliamYu1993/ICSE) are not redistributed: pass --released-dir DIR or "
                         f"set {RELEASED_DIR_VARIABLE} to the folder that holds them")
    return Path(folder)


def keras1_path(config, key, folder) -> Path:
    path = Path(folder) / config["released"][key]
    if not path.is_file():
        raise ValueError(f"{path}: the authors' file is missing (released.{key} in {config.get('config_path')} "
                         f"names it in --released-dir / {RELEASED_DIR_VARIABLE})")
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------------------
def keras_enhancer(model):
    """``noisy -> enhanced`` through the Keras FCN, peak-normalised input, in windows beyond 12 s (bounded memory)."""
    from common.enhancement import chunked
    from common.tfkeras import tf

    @tf.function(input_signature=[tf.TensorSpec((1, None, 1), tf.float32)], reduce_retracing=True)
    def forward(waveform):
        return model(waveform, training=False)

    run = chunked(lambda signal: forward(signal[None, :, None]).numpy()[0, :, 0], SAMPLE_RATE)

    def enhance(noisy):
        return run(peak_normalise(noisy))

    return enhance


def tflite_enhancer(path):
    """``noisy -> enhanced`` through a .tflite FCN, peak-normalised input, in windows beyond 12 s: an interpreter
    resized to a whole long file needs memory in proportion to its length."""
    from common.enhancement import chunked
    from common.tflite import TFLiteModel

    runner = TFLiteModel(path, num_threads=1)
    run = chunked(lambda signal: np.asarray(runner(signal[None, :, None]))[0, :, 0], SAMPLE_RATE)

    def enhance(noisy):
        return run(peak_normalise(noisy))

    return enhance


def score(enhance, examples, processes, description, score_noisy=False):
    """Enhance every example and score it; the enhanced signal is re-peak-normalised as the authors' MATLAB does."""
    from common.evaluation import score_examples

    def named(example):
        noisy, clean, _ = example.load()
        name = f"{Path(example.meta['speech']).stem}|{example.meta['noise_type']}|{example.meta['snr_db']:g}dB"
        return name, noisy, clean

    normalised = None if enhance is None else (lambda noisy: peak_normalise(enhance(noisy)))
    return score_examples(normalised, [named(example) for example in examples], METRICS, SAMPLE_RATE, processes,
                          score_noisy=score_noisy, description=description)


def save_metrics(results_dir, variant, rows, summary, extra=None, config=None, run=None) -> Path:
    from common.evaluation import save_scores

    return save_scores(results_dir, variant, rows, summary, config, run, variant=variant, **(extra or {}))


def read_summary(results_dir, variant):
    path = metrics_path(results_dir, variant)
    if not path.is_file():
        return None
    return json.loads(path.read_text())["summary"]


def mean_of(summary, metric):
    if summary is None or metric not in summary:
        return None
    value = summary[metric][0]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


# ---------------------------------------------------------------------------------------------------------------------
# The recipe
# ---------------------------------------------------------------------------------------------------------------------
class Recipe:
    """ICSE: PP + PQ of Fu et al.'s waveform FCN (arXiv 1906.01078)."""

    name = "icse"
    # Every top-level section of conf/*.yaml: a renamed or missing one fails on loading, not as a KeyError later.
    config_sections = ("seed", "model", "data", "training", "pruning", "quantization", "export", "inference",
                       "evaluation", "released")

    def add_arguments(self, command, parser):
        if command in ("info", "train"):
            parser.add_argument("--init-from-keras1", type=Path, default=None, metavar="PATH",
                                help="start from a Keras 1.1 weight file of the FCN (e.g. the authors' FCNN_0509.hdf5)")
        if command == "train":
            parser.add_argument("--variant", choices=VARIANTS, default="fcn",
                                help="fcn: float FCN; pp: pruning at every theta; pq: k-means (and the k sweep); "
                                     "pp_pq: PP then PQ; released: the authors' files through our PP+PQ")
            parser.add_argument("--released-dir", type=Path, default=None, metavar="DIR",
                                help="folder of the authors' files named by released.unpruned and released.pp_pq "
                                     f"(--variant released; default: ${RELEASED_DIR_VARIABLE})")
        if command in ("evaluate", "enhance"):
            parser.add_argument("--variant", default=None,
                                help="model to use (default: every stored one for evaluate, 'fcn' for enhance)")
        if command == "evaluate":
            from common.evaluation import FOLDER_HELP

            parser.add_argument("--force", action="store_true", help="score again even if metrics exist")
            parser.epilog = FOLDER_HELP

    # -- info -----------------------------------------------------------------------------------------------------
    def info(self, config, args):
        from common.accounting import macs_per_second

        model = build_model(config)
        result = {
            "model": "Fu et al. FCN (ICSE)",
            "config": config["config_name"],
            "params": int(model.count_params()),
            "conv_weights": int(sum(layer.kernel.numpy().size for layer in conv_layers(model))),
            "macs_per_second": macs_per_second(model, np.zeros((1, SAMPLE_RATE, 1), np.float32)),
            "receptive_field_samples": int(len(conv_layers(model)) * (int(config["model"]["kernel_size"]) - 1) + 1),
        }
        if getattr(args, "init_from_keras1", None) is not None:
            model, sizes = fcn_from_keras1(args.init_from_keras1)
            result.update(params=int(model.count_params()),
                          conv_weights=int(sum(layer.kernel.numpy().size for layer in conv_layers(model))),
                          macs_per_second=macs_per_second(model, np.zeros((1, SAMPLE_RATE, 1), np.float32)),
                          receptive_field_samples=int(len(conv_layers(model)) * (sizes["kernel_size"] - 1) + 1))
            statistics = conv_weight_statistics(model)
            levels = inferred_levels(model)
            result.update({
                "init_from_keras1": str(args.init_from_keras1),
                "kept_fraction": round(kept_fraction(model), 6),
                "kept_fraction_per_layer": {row["layer"]: round(row["kept_fraction"], 6) for row in statistics},
                "distinct_nonzero_per_layer": {row["layer"]: row["distinct_nonzero"] for row in statistics},
                "icse_levels": {name: (None if k == FLOAT_LEVELS else k) for name, k in levels.items()},
                "size_percent": round(icse_size(model, levels), 4),
            })
        return result

    # -- train ----------------------------------------------------------------------------------------------------
    def train(self, config, args):
        from common.training import config_precision, training_precision

        with training_precision(*config_precision(config)):
            return self._train(config, args)

    def _train(self, config, args):
        from common.training import set_seed

        set_seed(int(config["seed"]))
        variant = getattr(args, "variant", "fcn")
        exp_dir = Path(args.exp_dir)
        if variant == "released":
            return self._train_released(config, exp_dir, released_dir(args))
        corpus = load_corpus(config)
        runs = exp_dir / "runs"
        if variant == "fcn":
            model = build_model(config)
            meta = {"parent": None, "levels": float_levels(model)}
            init = getattr(args, "init_from_keras1", None)
            if init is not None:
                load_keras1_weights(model, init)
                meta["init_from_keras1"] = str(init)
            train_model(model, corpus, config, runs / "fcn", config["training"])
            meta["training"] = config["training"]
            save_variant(model, exp_dir, "fcn", meta)
            print(f"saved {models_dir(exp_dir) / 'fcn.weights.h5'}")
        elif variant == "pp":
            for theta in config["pruning"]["thetas"]:
                model, _ = load_variant(config, exp_dir, "fcn")
                result = prune_and_retrain(model, corpus, config, runs / pp_name(theta), theta,
                                           config["pruning"]["retrain"])
                print(f"PP theta={theta_name(theta)}:\n{result.format()}")
                save_variant(model, exp_dir, pp_name(theta), {
                    "parent": "fcn", "theta": float(theta), "levels": float_levels(model),
                    "pruning_report": result.report, "kept_fraction_after_pruning": result.totals()["kept_fraction"],
                })
        elif variant == "pq":
            quantization = config["quantization"]
            main = int(quantization["clusters_per_sign"])
            for clusters in [main] + [int(k) for k in quantization["sweep"] if int(k) != main]:
                spec = quantization["retrain"] if clusters == main else quantization["sweep_retrain"]
                self._quantize_variant(config, corpus, exp_dir, "fcn", None, clusters, spec,
                                       fp16_copy=clusters == main or bool(quantization["fp16_sweep"]))
        elif variant == "pp_pq":
            quantization = config["quantization"]
            main = int(quantization["clusters_per_sign"])
            for theta in config["pruning"]["thetas"]:
                for clusters in [main] + [int(k) for k in quantization["theta_sweep"] if int(k) != main]:
                    spec = quantization["retrain"] if clusters == main else quantization["sweep_retrain"]
                    self._quantize_variant(config, corpus, exp_dir, pp_name(theta), theta, clusters, spec,
                                           fp16_copy=clusters == main)
        return None

    def _quantize_variant(self, config, corpus, exp_dir, parent, theta, clusters, spec, fp16_copy):
        name = pq_name(clusters, theta)
        model, parent_meta = load_variant(config, exp_dir, parent)
        levels, output_clusters = quantize_and_retrain(model, corpus, config, Path(exp_dir) / "runs" / name,
                                                       clusters, spec)
        meta = {"parent": parent, "theta": parent_meta.get("theta"), "clusters_per_sign": int(clusters),
                "output_clusters_per_sign": output_clusters, "levels": levels, "fp16": False, "retrain": spec}
        save_variant(model, exp_dir, name, meta)
        print(f"{name}: size {icse_size(model, levels):.2f} % of the float FCN (ICSE rule), "
              f"kept {100 * kept_fraction(model):.1f} % of conv weights")
        if fp16_copy:
            round_centroids_to_fp16(model)
            save_variant(model, exp_dir, pq_name(clusters, theta, fp16=True), dict(meta, fp16=True, parent=name))

    def _train_released(self, config, exp_dir, folder):
        """The authors' FCNN_0509 (unpruned) compressed by our PP + PQ with a short retraining on our corpus, and
        the authors' own PP+PQ file (built from another base model, FCNN_0425), stored as variants."""
        released = config["released"]
        quantization = config["quantization"]
        corpus = load_corpus(config)
        runs = Path(exp_dir) / "runs"
        unpruned, authors = keras1_path(config, "unpruned", folder), keras1_path(config, "pp_pq", folder)
        model, sizes = fcn_from_keras1(unpruned)
        released_config = dict(config, model=sizes)
        save_variant(model, exp_dir, "released_fcn", {"parent": None, "keras1_file": str(unpruned), "model": sizes,
                                                      "levels": float_levels(model)})
        theta = float(released["theta"])
        result = prune_and_retrain(model, corpus, released_config, runs / "released_ours_pp", theta,
                                   released["pruning_retrain"])
        print(f"released FCNN_0509, PP theta={theta_name(theta)}:\n{result.format()}")
        levels, output_clusters = quantize_and_retrain(model, corpus, released_config, runs / "released_ours_pp_pq",
                                                       int(quantization["clusters_per_sign"]),
                                                       released["quantization_retrain"])
        save_variant(model, exp_dir, "released_ours_pp_pq", {
            "parent": "released_fcn", "theta": theta, "clusters_per_sign": int(quantization["clusters_per_sign"]),
            "output_clusters_per_sign": output_clusters, "levels": levels, "pruning_report": result.report,
            "model": sizes})

        authors_model, authors_sizes = fcn_from_keras1(authors)
        save_variant(authors_model, exp_dir, "released_authors_pp_pq", {
            "parent": None, "keras1_file": str(authors), "model": authors_sizes,
            "levels": inferred_levels(authors_model)})
        return None

    # -- export ---------------------------------------------------------------------------------------------------
    def export(self, config, args):
        """int8 TFLite (full-integer graph, float32 input/output: quantising the waveform itself costs quality in
        time-domain models, docs/toolchain.md#tflite-conversion) of the float FCN and of the main PP+PQ model."""
        from common.tflite import export_tflite

        exp_dir = Path(args.exp_dir)
        corpus = load_corpus(config)
        count = int(config["export"]["representative_utterances"])
        examples = training_examples(corpus, config, "train", 0, count)
        calibration = [peak_normalise(example.load()[0])[None, :, None] for example in examples]
        main = self._main_pp_pq(config)
        for variant in ("fcn", main):
            model, _ = load_variant(config, exp_dir, variant)
            path = export_tflite(model, tflite_path(exp_dir, variant), mode="int8", representative_data=calibration,
                                 int8_io=False)
            print(f"wrote {path} ({path.stat().st_size:,} bytes)")
        return None

    @staticmethod
    def _main_pp_pq(config):
        return pq_name(int(config["quantization"]["clusters_per_sign"]), config["pruning"]["thetas"][0])

    # -- evaluate -------------------------------------------------------------------------------------------------
    def _enhancer(self, config, args, variant):
        exp_dir = Path(args.exp_dir)
        if getattr(args, "tflite", False):
            return configured_enhancer(config, tflite_enhancer(tflite_path(exp_dir, variant)))
        checkpoint = getattr(args, "checkpoint", None)
        if checkpoint is not None:
            model = build_model(config)
            model.load_weights(str(checkpoint))
            return configured_enhancer(config, keras_enhancer(model))
        model, _ = load_variant(config, exp_dir, variant)
        return configured_enhancer(config, keras_enhancer(model))

    def evaluate(self, config, args):
        processes = int(config["evaluation"]["processes"])
        results_dir = Path(args.results_dir)
        exp_dir = Path(args.exp_dir)
        if args.noisy_dir is not None:
            return self._evaluate_folders(config, args, processes)
        corpus = load_corpus(config)
        force = getattr(args, "force", False)
        variants = [args.variant] if args.variant else stored_variants(exp_dir)
        plain = [variant for variant in variants if not variant.startswith("released")]
        released = [variant for variant in variants if variant.startswith("released")]
        jobs = []
        if plain:
            examples = test_examples(corpus, config, config["evaluation"]["max_items"])
            jobs.append(("noisy", None, examples))
            for variant in plain:
                jobs.append((variant, lambda variant=variant: self._enhancer(config, args, variant), examples))
                if args.variant is None and tflite_path(exp_dir, variant).is_file():
                    jobs.append((f"{variant}_int8", lambda variant=variant: configured_enhancer(
                        config, tflite_enhancer(tflite_path(exp_dir, variant))), examples))
            if args.variant and args.tflite:
                jobs = [(f"{args.variant}_int8", lambda: configured_enhancer(
                    config, tflite_enhancer(tflite_path(exp_dir, args.variant))), examples)]
        if released:
            examples = test_examples(corpus, config, config["released"]["max_items"])
            jobs.append(("released_noisy", None, examples))
            for variant in released:
                jobs.append((variant, lambda variant=variant: self._enhancer(config, args, variant), examples))
        for name, make_enhancer, examples in jobs:
            saved = metrics_path(results_dir, name)
            # The model file a score came from: a retrained or re-exported model makes its saved score stale.
            source = (tflite_path(exp_dir, name[: -len("_int8")]) if name.endswith("_int8")
                      else models_dir(exp_dir) / f"{name}.weights.h5")
            fresh = saved.is_file() and (not source.is_file() or saved.stat().st_mtime >= source.stat().st_mtime)
            if fresh and not force:
                print(f"{name}: metrics exist ({saved}), newer than the model; skipped (--force scores again)")
                continue
            enhance = None if make_enhancer is None else make_enhancer()
            rows, summary = score(enhance, examples, processes, name)
            save_metrics(results_dir, name, rows, summary, {"items": len(examples)}, config,
                         f"{self.name}/{args.experiment_name}")
            print(f"{name}: " + ", ".join(f"{metric} {mean_of(summary, metric):.3f}" for metric in METRICS
                                          if mean_of(summary, metric) is not None)
                  + f" ({summary['invalid']} invalid of {len(rows)})")
        if plain and args.variant is None and config["evaluation"].get("robustness_items") is not None:
            self._evaluate_robustness(config, args, corpus, jobs[0][2], processes, force)
        return None

    def _robustness_systems(self, config, exp_dir) -> dict:
        """The systems of the robustness table: the float FCN, the main PP+PQ model and its int8 .tflite."""
        main = self._main_pp_pq(config)
        systems = {}
        for variant in ("fcn", main):
            if variant_exists(exp_dir, variant):
                systems[variant] = models_dir(exp_dir) / f"{variant}.weights.h5"
        if tflite_path(exp_dir, main).is_file():
            systems[f"{main}_int8"] = tflite_path(exp_dir, main)
        return systems

    def _evaluate_robustness(self, config, args, corpus, examples, processes, force):
        """Unseen voices x unseen noises and the test set at other levels (docs/robustness.md) for the systems of
        :meth:`_robustness_systems`; the summaries go to ``scores/robustness.json``, the rows to
        ``scores/robustness/``."""
        from common.evaluation import ROBUSTNESS_METRICS, score_robustness
        from data_prep.paper_sets import robustness_sets

        exp_dir, results_dir = Path(args.exp_dir), Path(args.results_dir)
        systems = self._robustness_systems(config, exp_dir)
        saved = robustness_path(results_dir)
        if saved.is_file() and not force:
            document = json.loads(saved.read_text())
            if set(document["systems"]) == set(systems) and all(
                    saved.stat().st_mtime >= source.stat().st_mtime for source in systems.values()):
                print(f"robustness: scores exist ({saved}), newer than the models; skipped (--force scores again)")
                return None
        enhancers = {}
        for system in systems:
            if system.endswith("_int8"):
                enhance = configured_enhancer(config, tflite_enhancer(tflite_path(exp_dir, system[: -len("_int8")])))
            else:
                enhance = configured_enhancer(config, keras_enhancer(load_variant(config, exp_dir, system)[0]))
            # Scored as the test set is: the enhanced output peak-normalised, as the authors' MATLAB does.
            enhancers[system] = lambda noisy, enhance=enhance: peak_normalise(enhance(noisy))
        sets = robustness_sets(corpus, examples, seed=int(config["seed"]),
                               max_items=config["evaluation"]["robustness_items"])
        scores = score_robustness(enhancers, sets, processes=processes, results_dir=results_dir, config=config,
                                  run=f"{self.name}/{args.experiment_name}")
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps({"systems": sorted(systems), "scores": scores}, indent=1, default=float))
        for set_name, by_system in scores.items():
            print(f"{set_name}: " + "; ".join(
                f"{system} " + ", ".join(f"{metric} {mean_of(summary, metric):.3f}" for metric in ROBUSTNESS_METRICS)
                for system, summary in by_system.items()))
        return None

    def _evaluate_folders(self, config, args, processes):
        from common.evaluation import check_folders, score_folders

        pairs = check_folders(args.noisy_dir, args.clean_dir, SAMPLE_RATE, args.max_files)
        variant = args.variant or "fcn"
        enhance = self._enhancer(config, args, variant)
        system = variant + ("_int8" if args.tflite else "")
        score_folders(pairs, {system: lambda noisy: peak_normalise(enhance(noisy))}, METRICS, args.results_dir,
                      processes=processes, config=config, run=f"{self.name}/{args.config_name}")
        return None

    # -- enhance --------------------------------------------------------------------------------------------------
    def enhance(self, config, args):
        from common.enhancement import run_enhancement

        def load():
            enhance = self._enhancer(config, args, args.variant or "fcn")
            return lambda noisy: peak_normalise(enhance(noisy))

        run_enhancement(args, SAMPLE_RATE, load)
        return None

    # -- table ----------------------------------------------------------------------------------------------------
    def table(self, config, args):
        from common.accounting import gzip_bytes
        from common.tables import ResultTable

        exp_dir, results_dir = Path(args.exp_dir), Path(args.results_dir)
        headers = [("size_percent", "size % (ICSE bits)"), ("kept_percent", "conv kept %", 1),
                   ("tflite_kib", "tflite KiB", 1), ("gzip_kib", "gzip KiB", 1),
                   ("pesq_wb", "PESQ WB P.862.2"), ("pesq_nb_mos", "PESQ NB P.862.1"), ("stoi", "STOI", 3),
                   ("si_snr", "SI-SNR dB")]
        notes = [
            "Paper columns: ICSE README (original 2.55/0.85, PP+PQ 2.52/0.84 at 9.76 %) and figure read-offs "
            "(docs/icse.md#paper-results); the paper's PESQ is the repo's modified MATLAB pesq.m (WB mapping with "
            "the NB IRS filter, docs/icse.md#metrics), not the standard P.862.2 WB printed here, and its test set is "
            "TIMIT, ours "
            f"{config['data']['corpus']}.",
            "size %: ICSE bit rule sum(non-zero conv weights x log2 k) / (conv weights x 32); float layers 32 bits; "
            "k = clusters per sign for conv1-7, total levels (8) for the output layer.",
            "int8 rows: post-training full-integer .tflite with float32 input/output, run with LiteRT; their size % "
            "counts 8 bits per kept weight.",
        ]
        tables = {}

        def row_values(variant, summary_name=None):
            summary = read_summary(results_dir, summary_name or variant)
            values = {metric: mean_of(summary, metric) for metric in METRICS}
            base = variant[: -len("_int8")] if variant.endswith("_int8") else variant
            if variant_exists(exp_dir, base):
                model, meta = load_variant(config, exp_dir, base)
                # The .tflite stores every kept weight as int8: 8 bits under the ICSE rule.
                levels = {name: 256 for name in meta["levels"]} if variant.endswith("_int8") else meta["levels"]
                values["size_percent"] = icse_size(model, levels)
                values["kept_percent"] = 100 * kept_fraction(model)
            if variant.endswith("_int8") and tflite_path(exp_dir, base).is_file():
                values["tflite_kib"] = tflite_path(exp_dir, base).stat().st_size / 1024
                values["gzip_kib"] = gzip_bytes(tflite_path(exp_dir, base)) / 1024
            return values, summary is not None

        thetas = [float(theta) for theta in config["pruning"]["thetas"]]
        clusters = int(config["quantization"]["clusters_per_sign"])
        main = ResultTable(f"ICSE on {config['data']['corpus']} (config {config['config_name']}): FCN, PP, PQ, PP+PQ",
                           headers, notes)
        labels = [("noisy", "Noisy input", None), ("fcn", "FCN (float)", "fcn")]
        labels += [(pp_name(theta), f"PP theta={theta_name(theta)}", pp_name(theta)) for theta in thetas]
        labels += [(pq_name(clusters), f"PQ k={clusters} (+output {config['quantization']['output_clusters_per_sign']})",
                    pq_name(clusters))]
        labels += [(pq_name(clusters, theta), f"PP+PQ theta={theta_name(theta)} k={clusters}", pq_name(clusters, theta))
                   for theta in thetas]
        labels += [("fcn_int8", "FCN int8 .tflite", None),
                   (f"{self._main_pp_pq(config)}_int8", f"PP+PQ theta={theta_name(thetas[0])} int8 .tflite", None)]
        for variant, label, paper_key in labels:
            values, present = row_values(variant)
            if present:
                main.add_row(label, values, paper=PAPER_MAIN.get(paper_key) if paper_key else None)
        tables[""] = main

        if robustness_path(results_dir).is_file():
            from common.evaluation import robustness_table

            scores = json.loads(robustness_path(results_dir).read_text())["scores"]
            systems = {system for by_system in scores.values() for system in by_system} - {"noisy"}
            nominal = {system: read_summary(results_dir, system) for system in systems
                       if read_summary(results_dir, system) is not None}
            tables["robustness"] = robustness_table(
                scores, f"ICSE robustness (config {config['config_name']}): unseen voices x unseen noises, and the "
                        f"test set at other levels (docs/robustness.md)", nominal)

        sweep = ResultTable(f"ICSE PQ sweep (k per sign, output 4+4; no pruning), FP32 and FP16 centroids, "
                            f"{config['data']['corpus']}", headers, notes[:2])
        for k in config["quantization"]["sweep"]:
            paper = PAPER_SWEEP.get(int(k))
            for fp16 in (False, True):
                values, present = row_values(pq_name(k, fp16=fp16))
                if present:
                    reference = None if paper is None else {"pesq_wb": paper[1 if fp16 else 0],
                                                            "stoi": paper[3 if fp16 else 2]}
                    sweep.add_row(f"PQ k={k} {'FP16' if fp16 else 'FP32'}", values, paper=reference)
        tables["k_sweep"] = sweep

        curves = ResultTable(f"ICSE PP+PQ: theta x k ({config['data']['corpus']})", headers, notes[:2])
        for theta in thetas:
            paper_theta = PAPER_THETA.get(round(theta, 2), {})
            values, present = row_values(pp_name(theta))
            if present:
                reference = paper_theta.get(None)
                curves.add_row(f"theta={theta_name(theta)} PP only", values,
                               paper=None if reference is None else {"pesq_wb": reference[1], "stoi": reference[2]})
            for k in config["quantization"]["theta_sweep"]:
                values, present = row_values(pq_name(k, theta))
                if present:
                    reference = paper_theta.get(int(k))
                    curves.add_row(f"theta={theta_name(theta)} k={k}", values, paper=None if reference is None else {
                        "size_percent": reference[0], "pesq_wb": reference[1], "stoi": reference[2]})
        tables["theta_curves"] = curves

        released = ResultTable("Released models on our test set: the authors' FCNN_0509, our PP+PQ of it (short "
                               "retraining on our corpus), the authors' PP+PQ file", headers, notes[:2])
        for variant, label, paper in (
                ("released_noisy", "Noisy input", None),
                ("released_fcn", "authors' FCNN_0509 (float)", {"size_percent": 100.0}),
                ("released_ours_pp_pq", "our PP+PQ of FCNN_0509", None),
                ("released_authors_pp_pq", "authors' Kmeans_16C..sp0.65 (PP+PQ)", {"size_percent": 9.76})):
            values, present = row_values(variant)
            if present:
                released.add_row(label, values, paper=paper)
        tables["released"] = released

        printed = []
        for folder, table in tables.items():
            if not table.rows:
                continue
            table.save(results_dir / folder if folder else results_dir, config=config, run=args.config_name)
            printed.append(table.render())
        if not printed:
            raise ValueError(f"{results_dir}/metrics has no scores yet: run the evaluate step first")
        print("\n\n".join(printed))
        return None


def artifacts(exp_dir, config) -> dict:
    """The models and .tflite files run.sh writes (``common.artifacts``): stage 1 trains the FCN, stage 3 prunes it
    (PP), stage 4 clusters it (PQ), stage 5 clusters each pruned model (PP+PQ), stage 6 exports the FCN and the
    main PP+PQ model in one go."""
    from common.artifacts import Artifact

    def weights(stored):
        return models_dir(exp_dir) / f"{stored}.weights.h5"

    clusters = int(config["quantization"]["clusters_per_sign"])
    published = {"fcn": Artifact(weights("fcn"), 1),
                 pq_name(clusters): Artifact(weights(pq_name(clusters)), 4, ("fcn",))}
    for theta in config["pruning"]["thetas"]:
        published[pp_name(theta)] = Artifact(weights(pp_name(theta)), 3, ("fcn",))
        published[pq_name(clusters, theta)] = Artifact(weights(pq_name(clusters, theta)), 5, (pp_name(theta),))
    exported = ("fcn", Recipe._main_pp_pq(config))
    for stored in exported:
        published[f"{stored}_tflite"] = Artifact(tflite_path(exp_dir, stored), 6, exported)
    return published
