"""FQSE scoring (docs/fqse.md#evaluation): the systems evaluate runs (float, Keras fake-quant and int8 .tflite), the
summary saved per system through the shared result layout and read back, the PESQ WB / STOI / SI-SNR of the test
set and the robustness sets (docs/robustness.md#sets), and the .tflite size and real-time factor.
"""
from __future__ import annotations

import time

import numpy as np

from common.enhancement import inference_level
from reproductions.fqse.data import SAMPLE_RATE
from reproductions.fqse.inference import enhance_keras, enhance_tflite, tflite_path
from reproductions.fqse.variants import build_trainable, load_core

# The deployed models and the float reference: PESQ WB, STOI and SI-SNR on the test set and the robustness sets.
ROBUSTNESS_SYSTEMS = ("float", "vanilla_tflite", "fqse_tflite")
# Every system evaluate scores on the test set, in the order of the table's summary.
SCORED_SYSTEMS = ("float", "vanilla_keras", "vanilla_tflite", "fqse_keras", "fqse_tflite")


def evaluation_systems(config, exp_dir):
    """``{name: enhance_function}`` for float, Keras fake-quant and .tflite models, each level-normalised
    (``inference.level_dbfs``)."""
    from common.enhancement import level_normalized
    from reproductions.fqse.fqse import Int8CoreRunner

    systems = {}
    float_model = build_trainable(config, "float", load_core(config, exp_dir, "float"))
    systems["float"] = lambda noisy, model=float_model: enhance_keras(model, noisy)
    for variant in ("vanilla", "fqse"):
        model = build_trainable(config, variant, load_core(config, exp_dir, variant))
        systems[f"{variant}_keras"] = lambda noisy, model=model: enhance_keras(model, noisy)
        path = tflite_path(exp_dir, variant)
        if not path.is_file():
            raise ValueError(f"{path}: missing; run 'export' first")
        runner = Int8CoreRunner(path)
        systems[f"{variant}_tflite"] = (lambda noisy, runner=runner, variant=variant:
                                        enhance_tflite(runner, noisy, variant, config))
    level = inference_level(config)
    return {name: level_normalized(enhance, level) for name, enhance in systems.items()}


def save_summary(results_dir, scores, summary, config, run) -> None:
    """Save each system's per-file SI-SNR (``scores``, {system: [dB]}, ``noisy`` among them) and its part of
    ``summary`` through ``common.evaluation.save_scores``; :func:`load_summary` reads them back."""
    from common.evaluation import save_scores
    from common.metrics import summarize

    for name, per_file in scores.items():
        rows = [{"name": str(index), "si_snr": value} for index, value in enumerate(per_file)]
        if name != "noisy":
            for row, noisy_value in zip(rows, scores["noisy"]):
                row["si_snr_improvement"] = row["si_snr"] - noisy_value
        fields = {}
        if name in summary["nominal"]:
            fields["nominal"] = summary["nominal"][name]
        if "buckets" in summary and name in ROBUSTNESS_SYSTEMS:
            fields["buckets"] = {snr: values[name] for snr, values in summary["buckets"].items()}
        if name == "vanilla_tflite" and "buckets" in summary:
            fields["input_floor_buckets"] = {snr: values["vanilla_input_floor"]
                                             for snr, values in summary["buckets"].items()}
        if name.endswith("_tflite"):
            fields["tflite"] = summary["tflite"][name[: -len("_tflite")]]
        save_scores(results_dir, name, rows, summarize(rows), config, run, **fields)


def load_summary(results_dir) -> dict:
    """The evaluation summary (files, SI-SNR and its improvement per system, SI-SNR by input SNR, .tflite size
    and speed, PESQ WB / STOI / SI-SNR on the test set and the robustness sets) from the scores evaluate saved
    under ``results_dir``."""
    from common.evaluation import load_robustness, load_scores, scores_path

    documents = {name: load_scores(results_dir, name) for name in (*SCORED_SYSTEMS, "noisy")}
    for name, document in documents.items():
        if document is None:
            raise ValueError(f"{scores_path(results_dir, name)}: missing; run 'evaluate' first")
    summary = {"files": int(documents["noisy"]["summary"]["si_snr"][2]),
               "si_snr": {name: document["summary"]["si_snr"][0] for name, document in documents.items()},
               "si_snr_improvement": {name: documents[name]["summary"]["si_snr_improvement"][0]
                                      for name in SCORED_SYSTEMS}}
    if "buckets" in documents["float"]:
        summary["buckets"] = {
            snr: {**{name: documents[name]["buckets"][snr] for name in ROBUSTNESS_SYSTEMS},
                  "vanilla_input_floor": documents["vanilla_tflite"]["input_floor_buckets"][snr]}
            for snr in documents["float"]["buckets"]}
    summary["tflite"] = {variant: documents[f"{variant}_tflite"]["tflite"] for variant in ("vanilla", "fqse")}
    summary["nominal"] = {name: documents[name]["nominal"] for name in ("noisy", *ROBUSTNESS_SYSTEMS)}
    robustness = load_robustness(results_dir, ROBUSTNESS_SYSTEMS)
    if robustness:
        summary["robustness"] = robustness
    return summary


def robustness_scores(config, results_dir, systems, test_examples, arrays, outputs):
    """PESQ WB, STOI and SI-SNR of noisy and :data:`ROBUSTNESS_SYSTEMS` on the test set (``nominal``) and on
    the shared robustness sets (unseen voices x unseen noises, the test set at other levels)."""
    from common.evaluation import ROBUSTNESS_METRICS, score_examples, score_robustness
    from data_prep.paper_sets import robustness_sets
    from data_prep.registry import open_corpus

    evaluation = config["evaluation"]
    processes = int(evaluation.get("processes", 1))
    items = [(str(index), noisy, clean) for index, (noisy, clean, _noise) in enumerate(arrays)]
    nominal = {}
    for name in ("noisy", *ROBUSTNESS_SYSTEMS):
        _rows, nominal[name] = score_examples(outputs.get(name), items, ROBUSTNESS_METRICS,
                                              sample_rate=SAMPLE_RATE, processes=processes,
                                              description=f"{name} on the test set")
    # LibriMix pairs have no unseen-voice or unseen-noise split: the unseen sets come from the mini corpus.
    corpus = open_corpus({**config["data"], "corpus": "mini"}, config.get("config_path"), names=("mini",))
    sets = robustness_sets(corpus, test_examples, seed=int(config["data"]["seed"]),
                           max_items=evaluation.get("robustness_items"))
    robustness = score_robustness({name: systems[name] for name in ROBUSTNESS_SYSTEMS}, sets,
                                  sample_rate=SAMPLE_RATE, processes=processes, results_dir=results_dir)
    return nominal, robustness


def tflite_report(exp_dir, variant, config) -> dict:
    from common.accounting import gzip_bytes
    from reproductions.fqse.fqse import Int8CoreRunner

    path = tflite_path(exp_dir, variant)
    runner = Int8CoreRunner(path)
    seconds = float(config["evaluation"]["rtf_seconds"])
    noisy = np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE)).astype(np.float32) * 0.1
    enhance_tflite(runner, noisy, variant, config)
    started = time.perf_counter()
    repeats = int(config["evaluation"]["rtf_repeats"])
    for _ in range(repeats):
        enhance_tflite(runner, noisy, variant, config)
    elapsed = (time.perf_counter() - started) / repeats
    return {"bytes": path.stat().st_size, "gzip_bytes": gzip_bytes(path), "rtf_1_thread": elapsed / seconds}
