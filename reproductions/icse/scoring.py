"""Scoring of ICSE models (docs/icse.md#metrics): the Keras and .tflite enhancers (peak-normalised input), the
test-set scores with the output re-peak-normalised as the authors' MATLAB does, the saved score files, and the
robustness sets (docs/robustness.md#sets).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from common.enhancement import configured_enhancer
from reproductions.icse.data import SAMPLE_RATE, peak_normalise
from reproductions.icse.variants import (
    load_variant,
    main_pp_pq,
    metrics_path,
    models_dir,
    robustness_path,
    tflite_path,
    variant_exists,
)

METRICS = ("pesq_wb", "pesq_nb_mos", "stoi", "si_snr")


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



def robustness_systems(config, exp_dir) -> dict:
    """The systems of the robustness table: the float FCN, the main PP+PQ model and its int8 .tflite."""
    main = main_pp_pq(config)
    systems = {}
    for variant in ("fcn", main):
        if variant_exists(exp_dir, variant):
            systems[variant] = models_dir(exp_dir) / f"{variant}.weights.h5"
    if tflite_path(exp_dir, main).is_file():
        systems[f"{main}_int8"] = tflite_path(exp_dir, main)
    return systems

def evaluate_robustness(config, exp_dir, results_dir, corpus, examples, processes, force, run):
    """Unseen voices x unseen noises and the test set at other levels (docs/robustness.md) for the systems of
    :func:`robustness_systems`; the summaries go to ``scores/robustness.json``, the rows to
    ``scores/robustness/``."""
    from common.evaluation import ROBUSTNESS_METRICS, score_robustness
    from data_prep.paper_sets import robustness_sets

    exp_dir, results_dir = Path(exp_dir), Path(results_dir)
    systems = robustness_systems(config, exp_dir)
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
    sets = robustness_sets(corpus, examples, seed=int(config["data"]["seed"]),
                           max_items=config["evaluation"]["robustness_items"])
    scores = score_robustness(enhancers, sets, processes=processes, results_dir=results_dir, config=config,
                              run=run)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"systems": sorted(systems), "scores": scores}, indent=1, default=float))
    for set_name, by_system in scores.items():
        print(f"{set_name}: " + "; ".join(
            f"{system} " + ", ".join(f"{metric} {mean_of(summary, metric):.3f}" for metric in ROBUSTNESS_METRICS)
            for system, summary in by_system.items()))
    return None
