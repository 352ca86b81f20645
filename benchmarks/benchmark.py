"""The benchmark run: every variant of every model on one test set, one table, results.json/csv and the plot.

Quality is scored on one shared test set drawn from the embedded mini corpus (test speech x test noises at
``BENCHMARK_SNRS``, asteroid's energy-gain mixing, the same clips for every model and variant); each adapter
applies its model's own input normalisation and undoes it on the output, so the clean reference and the noisy
input are the same for all rows.

Speed is measured twice, on the same fixed input (the first test clip tiled to ``seconds``):
* end to end (``rtf_1``, ``rtf_all``): the enhancer as a user runs it, pre/post-processing included, median of
  ``repeats`` runs with min and max (Keras rows: all threads only, TensorFlow's thread pools are fixed at start-up);
* core graph only (``core_ms_1``, ``core_ms_all``): the exported graph on identical input tensors in LiteRT, in
  ONNX Runtime (tf2onnx export of the float Keras graph) and for Conv-TasNet in PyTorch (weight-for-weight port),
  so runtime-against-runtime ratios compare the same work.

Peak memory (``peak MiB``) is the extra peak resident memory of building the variant's enhancer and running it once
on the speed input, in a fresh process per variant after its imports (TensorFlow, tf_keras, LiteRT, the recipe):
:mod:`benchmarks.peak_memory`, run one variant at a time after every timing of the run is done, so no child runs
during a timing. ``memory=False`` (``python -m benchmarks run --no-memory``) skips it.
"""
from __future__ import annotations

import logging
import math
import os
import traceback
from pathlib import Path

import numpy as np

from benchmarks import peak_memory, timing
from benchmarks.variant import REPOSITORY_ROOT, Variant, fixed_length

LOG = logging.getLogger(__name__)

# Test SNRs spanning the five papers' test conditions (CRN -5/0/5 dB, ICSE -6..18 dB, sednn 0 dB).
BENCHMARK_SNRS = (-5.0, 0.0, 5.0)
QUALITY_METRICS = ("pesq_wb", "stoi", "si_snr_improvement")
# DNSMOS's procedure (dnsmos_local.py) doubles a short clip until it lasts 9.01 s and averages 1-s-hop segments:
# a 2-s clip becomes 16 s and 7 segments (about 2 s of CPU each on this machine). The benchmark scores ONE
# segment, the clip tiled to 9.01 s, which is exactly the official procedure's first segment (doubling a clip
# is tiling it), at a seventh of the cost; the column header says so.
DNSMOS_SEGMENT_SAMPLES = int(9.01 * 16000)
SAMPLE_RATE = 16000
SPEED_ONLY_STATUS = "measured (speed only: random weights, no quality)"
# Peak memory is measured on a file of this length (the issue's long-file case), the first test clip tiled.
MEMORY_SECONDS = 600.0
INT8_KINDS = ("ptq_int8", "qat_int8", "fqse")

COLUMNS = [
    ("pesq_wb", "PESQ (WB)", 2), ("stoi", "STOI", 3), ("si_snr_improvement", "SI-SNRi dB", 2),
    ("dnsmos_ovrl", "DNSMOS OVRL (1 seg)", 2), ("parameters", "params"), ("nonzero_parameters", "non-zero"),
    ("tflite_kb", "tflite kB", 1), ("gzip_kb", "gzip kB", 1), ("gmacs", "GMAC/s", 3),
    ("rtf_1_text", "RTF 1 thr [min-max]"), ("rtf_all_text", "RTF all thr [min-max]"),
    ("core_ms_1", "core ms 1 thr", 2), ("speedup", "x vs LiteRT float core", 2), ("hop_ms", "ms/10ms hop", 3),
    ("peak_mib", "peak MiB (long file)", 1), ("file", "file / status"),
]


# --------------------------------------------------------------------------------------------------- test set
def shared_test_set(max_items: int = 8, seed: int = 0, corpus=None) -> list[dict]:
    """``max_items`` clips: dict(name, noisy, clean, snr_db, noise_type) float32 16 kHz from the test split of
    ``corpus`` (default: the embedded mini corpus in data/, built if missing)."""
    from data_prep.corpus import ensure_mini_corpus
    from data_prep.paper_sets import fcn_set

    if corpus is None:
        corpus = ensure_mini_corpus(str(REPOSITORY_ROOT / "data"))
    examples = fcn_set(corpus, "test", snrs=BENCHMARK_SNRS, seed=seed, max_items=max_items)
    clips = []
    for index, example in enumerate(examples):
        noisy, clean, _ = example.load()
        meta = example.meta
        clips.append({"name": f"{index:02d}_{meta.get('noise_type')}_{meta.get('snr_db'):+.0f}dB",
                      "noisy": np.asarray(noisy, np.float32), "clean": np.asarray(clean, np.float32),
                      "snr_db": meta.get("snr_db"), "noise_type": meta.get("noise_type")})
    if not clips:
        raise ValueError("the mini corpus has no test clips (python -m data_prep.build_mini --force)")
    return clips


# --------------------------------------------------------------------------------------------------- one variant
def _format_rtf(stats) -> str | None:
    if not stats:
        return None
    return f"{stats['rtf']:.4f} [{stats['rtf_min']:.4f}-{stats['rtf_max']:.4f}]"


def _core_timing(path, arrays, threads, repeats):
    from common.tflite import TFLiteModel

    model = TFLiteModel(path, num_threads=threads)
    model(*arrays)  # sets (and quantises) the inputs once; invoke_only re-runs on them
    return timing.time_callable(model.invoke_only, repeats=repeats, warmup=2)


def measure_variant(variant: Variant, clips, speed_signal, repeats: int, all_threads: int,
                    quality: bool = True) -> tuple[dict, list]:
    """Measure one variant; returns (row, pairs for quality scoring). Never raises for a broken artefact: the row
    gets ``status = 'error: ...'`` with the exception, so one bad file does not stop the benchmark."""
    row = {"model": variant.model, "variant": variant.variant, "kind": variant.kind, "runtime": variant.runtime,
           "file": variant.file_label, "status": "measured", "notes": variant.notes, "speed_only": variant.speed_only,
           **variant.extra}
    if variant.missing:
        row["status"] = variant.missing
        return row, []
    if variant.speed_only:
        # Random weights: size and speed are the deployed model's, quality would be noise.
        quality = False
        row["status"] = SPEED_ONLY_STATUS
    seconds = speed_signal.size / SAMPLE_RATE
    pairs = []
    try:
        if variant.build is not None:
            variant.build()
        keras_model = variant.keras_model() if variant.keras_model else None
        if keras_model is not None:
            from common.accounting import count_nonzero, count_parameters, macs_per_second

            row["parameters"] = count_parameters(keras_model)
            row["nonzero_parameters"] = count_nonzero(keras_model)
            row["float32_bytes"] = 4 * row["parameters"]
            if variant.core_inputs is not None or variant.macs_inputs is not None:
                try:
                    if variant.macs_inputs is not None:
                        arrays, represented = variant.macs_inputs(), variant.macs_seconds
                    else:
                        arrays = variant.core_inputs(speed_signal[:SAMPLE_RATE])
                        represented = variant.core_seconds or min(1.0, speed_signal.size / SAMPLE_RATE)
                    row["macs_per_second"] = macs_per_second(keras_model, arrays, audio_seconds=represented)
                except Exception as error:  # a MAC formula missing for a custom layer must not lose the row
                    row["macs_note"] = f"MACs not counted: {type(error).__name__}: {error}"
        if variant.tflite_path is not None:
            from common.accounting import gzip_bytes, tflite_bytes

            row["tflite_bytes"] = tflite_bytes(variant.tflite_path)
            row["tflite_gzip_bytes"] = gzip_bytes(variant.tflite_path)
        elif "float32_bytes" in row:
            import gzip
            # Keras rows: the float32 weights gzip-compressed, so the plot places them on the same size axis.
            weights = np.concatenate([w.numpy().ravel().astype(np.float32) for w in keras_model.weights])
            row["gzip_bytes_estimate"] = len(gzip.compress(weights.tobytes(), compresslevel=9))

        thread_counts = sorted({1, all_threads}) if variant.runtime == "litert" else [all_threads]
        # Peak memory is not measured here: this process has run other variants, whose freed memory is reused
        # (see benchmarks/peak_memory.py); run_benchmark measures it per variant in a fresh process afterwards.
        enhancers = {thread_counts[0]: _build_and_run(variant, thread_counts[0], speed_signal)}
        for count in thread_counts:
            if count not in enhancers:
                enhancers[count] = variant.make_enhancer(count)
            stats = timing.time_callable(lambda e=enhancers[count]: e(speed_signal), repeats=repeats, warmup=1)
            stats.update(timing.real_time_factor(stats, seconds), threads=count, audio_seconds=seconds)
            keys = (["rtf_1"] if count == 1 and variant.runtime == "litert" else []) + \
                (["rtf_all"] if count == all_threads else [])
            for key in keys:
                row[key] = stats["rtf"]
                row[f"{key}_stats"] = stats
        if variant.runtime == "litert" and variant.tflite_path is not None and variant.core_inputs is not None:
            arrays = variant.core_inputs(speed_signal)
            for count, key in ((1, "core_1"), (all_threads, "core_all")):
                stats = _core_timing(variant.tflite_path, arrays, count, repeats)
                row[f"{key}_stats"] = stats
                row[f"{key}_ms"] = 1000 * stats["median_s"]
        if variant.hop_latency is not None:
            hop = variant.hop_latency(1)
            stats = timing.time_callable(hop, repeats=max(repeats * 20, 100), warmup=10)
            row["hop_ms"] = 1000 * stats["median_s"]
            row["hop_stats"] = stats
            row["hop_budget_ms"] = 1000 * variant.hop_seconds
        if quality:
            enhance = enhancers[all_threads]
            try:
                for clip in clips:
                    enhanced = np.asarray(enhance(clip["noisy"]), np.float32).reshape(-1)
                    pairs.append({"name": clip["name"], "clean": clip["clean"], "noisy": clip["noisy"],
                                  "enhanced": enhanced})
            except Exception as error:  # size and speed stand; say why quality is missing
                LOG.error("%s: quality run failed: %s", variant.label, traceback.format_exc())
                pairs = []
                row["quality_note"] = f"quality not measured: {type(error).__name__}: {str(error)[:240]}"
                row["status"] = "measured (no quality)"
    except Exception as error:  # report the broken artefact in its row and carry on with the others
        LOG.error("%s: %s", variant.label, traceback.format_exc())
        row["status"] = f"error: {type(error).__name__}: {str(error)[:300]}"
        return row, []
    finally:
        _clear_keras()
    return row, pairs


def _build_and_run(variant, threads, signal):
    enhancer = variant.make_enhancer(threads)
    enhancer(signal)
    return enhancer


def _clear_keras():
    import sys

    if "tf_keras" in sys.modules:  # only when TF is already loaded; the quality-only tests never load it
        from common.tfkeras import keras

        keras.backend.clear_session()


# --------------------------------------------------------------------------------------------------- memory
def measure_peak_memories(jobs, config_name: str, speed_signal, all_threads: int,
                          timeout: float | None = None, timing_seconds: float | None = None) -> None:
    """Each measured row's ``peak_mib`` from a fresh child process (:func:`benchmarks.peak_memory.measure_in_child`).

    ``jobs``: (row, adapter, variant) triples. Stores ``peak_mib`` (None on failure), ``peak_baseline_mib``,
    ``peak_memory_wall_s`` and, on failure, ``peak_memory_note`` with the reason; never raises."""
    timeout = peak_memory.DEFAULT_TIMEOUT_S if timeout is None else timeout
    for row, adapter, variant in jobs:
        reference, reason = peak_memory.adapter_reference(adapter)
        threads = 1 if variant.runtime == "litert" else all_threads  # measure_variant's first thread count
        if reference is None:
            result = {"peak_mib": None, "error": reason}
        else:
            result = peak_memory.measure_in_child(config_name, variant.model, variant.variant, signal=speed_signal,
                                                  threads=threads, adapter=reference, timeout=timeout,
                                                  timing_seconds=timing_seconds)
        row["peak_mib"] = result.get("peak_mib")
        row["peak_baseline_mib"] = result.get("baseline_mib")
        row["peak_memory_wall_s"] = result.get("wall_s")
        row["peak_memory_threads"] = threads
        row["peak_memory_input_seconds"] = speed_signal.size / SAMPLE_RATE
        if row["peak_mib"] is None:
            row["peak_memory_note"] = f"peak memory not measured: {result.get('error')}"
            LOG.warning("%s: %s", variant.label, row["peak_memory_note"])
        figure = "n/a" if row["peak_mib"] is None else \
            f"{row['peak_mib']:.1f} MiB (peak resident {result.get('peak_rss_mib', 0):.1f} MiB)"
        wall = result.get("wall_s")
        print(f"[benchmark] peak memory {variant.label}: {figure}"
              + ("" if wall is None else f" (child process {wall:.1f} s)"), flush=True)


# --------------------------------------------------------------------------------------------------- quality
def score_pairs(rows_pairs, processes: int = 2, dnsmos: bool = True) -> None:
    """Score every variant's pairs in one pool (one spawn for all) and store the means in the rows."""
    from common.metrics import evaluate_pairs, summarize

    flat, owners = [], []
    for row, pairs in rows_pairs:
        flat.extend(pairs)
        owners.extend([row] * len(pairs))
    if not flat:
        return
    scored = evaluate_pairs(flat, metrics=QUALITY_METRICS, processes=processes, description="PESQ/STOI/SI-SNRi")
    if dnsmos:
        segments = []
        for pair in flat:
            segment = fixed_length(pair["enhanced"], DNSMOS_SEGMENT_SAMPLES)
            segments.append({"name": pair["name"], "clean": segment, "enhanced": segment})
        for result, extra in zip(scored, evaluate_pairs(segments, metrics=("dnsmos",), processes=processes,
                                                        description="DNSMOS")):
            result.update({key: value for key, value in extra.items() if key.startswith("dnsmos")})
            if not extra["valid"]:
                result.update(valid=False, reason="; ".join(filter(None, [result["reason"], extra["reason"]])))
    grouped = {}
    for row, result in zip(owners, scored):
        grouped.setdefault(id(row), (row, []))[1].append(result)
    for row, results in grouped.values():
        summary = summarize(results)
        for key in ("pesq_wb", "stoi", "si_snr_improvement", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"):
            mean, std, count = summary.get(key, (math.nan, math.nan, 0))
            row[key] = None if count == 0 else mean
            row[f"{key}_std"] = None if count == 0 else std
        row["clips_scored"] = len(results)
        row["clips_invalid"] = summary.get("invalid", 0)


# --------------------------------------------------------------------------------------------------- runtimes

def _compare_with_keras(row, output, reference, time_runtime, all_threads) -> None:
    """Record another runtime's output difference to Keras and its time on 1 and on all threads in ``row``."""
    output = output[0] if isinstance(output, list) else output
    row["max_abs_difference_vs_keras"] = float(np.max(np.abs(np.asarray(output) - reference)))
    for count, key in ((1, "core_1"), (all_threads, "core_all")):
        stats = time_runtime(count)
        row[f"{key}_stats"] = stats
        row[f"{key}_ms"] = 1000 * stats["median_s"]

def _onnx_int8_row(model_name, float_variant, float_path, arrays, reference, speed_signal, repeats, all_threads):
    """ONNX Runtime static int8 (QDQ) of the float ONNX file, calibrated on the variant's calibration audio."""
    from benchmarks import onnx_compare

    row = {"model": model_name, "variant": "int8 ONNX Runtime (QDQ, quantize_static)", "kind": "onnx_int8",
           "runtime": "onnxruntime", "file": "-", "status": "measured"}
    if float_variant.calibration_audio is None:
        row["status"] = "no calibration audio for this model"
        return row
    try:
        calibration = [float_variant.core_inputs(fixed_length(clip, speed_signal.size))
                       for clip in float_variant.calibration_audio()]
        path = onnx_compare.quantize_int8(float_path, float_path.with_name(float_path.stem + "_int8.onnx"),
                                          calibration)
        row["file"] = str(path.relative_to(REPOSITORY_ROOT)) if path.is_relative_to(REPOSITORY_ROOT) else str(path)
        row["onnx_bytes"] = path.stat().st_size
        _compare_with_keras(row, onnx_compare.OnnxModel(path, 1)(*arrays), reference,
                            lambda threads: onnx_compare.time_onnx(path, arrays, threads, repeats), all_threads)
    except Exception as error:
        row["status"] = f"error: {type(error).__name__}: {str(error)[:300]}"
    return row


def compare_runtimes(model_name: str, float_variant: Variant | None, rows: list, speed_signal, repeats: int,
                     all_threads: int, work_dir: Path, torch_port: bool = False) -> tuple[list, dict]:
    """ONNX Runtime (and PyTorch for Conv-TasNet) against LiteRT float and int8 on the same core tensors.

    Returns extra table rows and a dict of ratios (``onnx_float_over_litert_float`` etc.: > 1 means LiteRT is
    faster). Unavailable runtimes are reported with the reason.
    """
    from benchmarks import onnx_compare, torch_port as port_module

    results = {"model": model_name}
    extra_rows = []
    seconds = speed_signal.size / SAMPLE_RATE
    litert = {row["kind"]: row for row in rows if row["model"] == model_name and row.get("core_1_ms") is not None}
    float_row = litert.get("tflite")
    int8_row = litert.get("ptq_int8") or litert.get("qat_int8") or litert.get("fqse")
    results["litert_float_ms_1"] = float_row and float_row["core_1_ms"]
    results["litert_int8_ms_1"] = int8_row and int8_row["core_1_ms"]
    results["litert_int8_variant"] = int8_row and int8_row["variant"]
    results["litert_int8_ms_1_by_variant"] = {litert[kind]["variant"]: litert[kind]["core_1_ms"]
                                              for kind in INT8_KINDS if kind in litert}
    if float_variant is None or float_variant.missing or float_variant.keras_model is None \
            or float_variant.core_inputs is None:
        results["status"] = "no float Keras model to compare"
        return extra_rows, results
    keras_model = None
    try:
        keras_model = float_variant.keras_model()
        arrays = float_variant.core_inputs(speed_signal)
        from benchmarks.variant import keras_function

        reference = keras_function(keras_model)(*arrays)
        reference = reference[0] if isinstance(reference, list) else reference
    except Exception as error:
        results["status"] = f"error building the float core: {type(error).__name__}: {error}"
        return extra_rows, results

    available, reason = onnx_compare.onnx_available()
    onnx_row = {"model": model_name, "variant": "float ONNX Runtime (tf2onnx)", "kind": "onnx", "runtime": "onnxruntime",
                "file": "-", "status": "measured"}
    onnx_path = None
    if not available:
        onnx_row["status"] = f"unavailable: {reason}"
    else:
        try:
            path = onnx_path = onnx_compare.export_onnx(keras_model, work_dir / f"{model_name}_float.onnx",
                                            [array.shape for array in arrays])
            onnx_row["file"] = str(path.relative_to(REPOSITORY_ROOT)) if path.is_relative_to(REPOSITORY_ROOT) else str(path)
            onnx_row["onnx_bytes"] = path.stat().st_size
            _compare_with_keras(onnx_row, onnx_compare.OnnxModel(path, 1)(*arrays), reference,
                                lambda threads: onnx_compare.time_onnx(path, arrays, threads, repeats), all_threads)
        except Exception as error:
            onnx_row["status"] = f"error: {type(error).__name__}: {str(error)[:300]}"
    extra_rows.append(onnx_row)
    results["onnx_float_ms_1"] = onnx_row.get("core_1_ms")
    results["onnx_status"] = onnx_row["status"]
    if onnx_row["status"] == "measured":
        int8_onnx = _onnx_int8_row(model_name, float_variant, onnx_path, arrays, reference, speed_signal, repeats,
                                   all_threads)
        extra_rows.append(int8_onnx)
        results["onnx_int8_ms_1"] = int8_onnx.get("core_1_ms")
        results["onnx_int8_status"] = int8_onnx["status"]

    if torch_port:
        available, reason = port_module.torch_available()
        torch_row = {"model": model_name, "variant": "float PyTorch (weight port)", "kind": "torch",
                     "runtime": "pytorch", "file": float_variant.file_label, "status": "measured"}
        if not available:
            torch_row["status"] = f"unavailable: {reason}"
        else:
            try:
                port = port_module.TorchPort(keras_model)
                _compare_with_keras(torch_row, port(*arrays), reference,
                                    lambda threads: port_module.time_torch(port, arrays, threads, repeats), all_threads)
            except Exception as error:
                torch_row["status"] = f"error: {type(error).__name__}: {str(error)[:300]}"
        extra_rows.append(torch_row)
        results["torch_float_ms_1"] = torch_row.get("core_1_ms")
        results["torch_status"] = torch_row["status"]

    results["core_input_shapes"] = [list(array.shape) for array in arrays]
    results["audio_seconds"] = seconds
    results["onnx_float_over_litert_float"] = timing.ratio(results.get("onnx_float_ms_1"), results["litert_float_ms_1"])
    results["onnx_float_over_litert_int8"] = timing.ratio(results.get("onnx_float_ms_1"), results["litert_int8_ms_1"])
    results["onnx_float_over_litert_int8_by_variant"] = {
        variant: timing.ratio(results.get("onnx_float_ms_1"), value)
        for variant, value in results["litert_int8_ms_1_by_variant"].items()}
    results["onnx_int8_over_litert_int8"] = timing.ratio(results.get("onnx_int8_ms_1"), results["litert_int8_ms_1"])
    results["onnx_float_over_onnx_int8"] = timing.ratio(results.get("onnx_float_ms_1"), results.get("onnx_int8_ms_1"))
    results["torch_float_over_litert_int8"] = timing.ratio(results.get("torch_float_ms_1"), results["litert_int8_ms_1"])
    results["torch_float_over_litert_float"] = timing.ratio(results.get("torch_float_ms_1"), results["litert_float_ms_1"])
    _clear_keras()
    return extra_rows, results


# --------------------------------------------------------------------------------------------------- summary
def add_speedups(rows) -> None:
    """``speedup`` = LiteRT float core time / this row's core time (1 thread), within each model."""
    for model in {row["model"] for row in rows}:
        reference = next((row.get("core_1_ms") for row in rows if row["model"] == model and row["kind"] == "tflite"
                          and row.get("core_1_ms")), None)
        for row in rows:
            if row["model"] == model and row.get("core_1_ms"):
                row["speedup"] = timing.ratio(reference, row["core_1_ms"])


def evaluate_targets(rows, comparisons, config_name: str) -> list[dict]:
    """The issue's targets as dicts(target, passed: True/False/None, detail); None = cannot be judged here.

    Each int8 .tflite of the FCN, the sednn DNN and Conv-TasNet (PTQ, vanilla QAT, FQSE) is judged on its own
    against the model's float .tflite (>= 4x, 1 thread, core graph) and against ONNX Runtime float (>= 2x)."""
    targets = []
    for model in ("icse", "sednn", "fqse"):
        float_row = next((r for r in rows if r["model"] == model and r["kind"] == "tflite" and r.get("core_1_ms")), None)
        int8_rows = [r for r in rows if r["model"] == model and r["kind"] in INT8_KINDS and r.get("core_1_ms")]
        name = f"{model}: int8 .tflite >= 4x faster than float .tflite (1 thread, core graph)"
        if float_row and int8_rows:
            for int8_row in int8_rows:
                speed = float_row["core_1_ms"] / int8_row["core_1_ms"]
                targets.append({"target": name, "passed": speed >= 4.0,
                                "detail": f"{speed:.2f}x ({float_row['core_1_ms']:.2f} ms -> "
                                          f"{int8_row['core_1_ms']:.2f} ms, {int8_row['variant']})"})
        else:
            targets.append({"target": name, "passed": None, "detail": "float or int8 .tflite not measured"})
    hops = [r for r in rows if r["model"] == "crn" and r.get("hop_ms") is not None]
    name = "crn: streaming <= 2 ms per 10-ms hop on one thread (paper config)"
    if not hops:
        targets.append({"target": name, "passed": None, "detail": "no streaming .tflite measured"})
    for row in hops:
        detail = f"{row['hop_ms']:.3f} ms ({row['variant']})"
        targets.append({"target": name, "passed": row["hop_ms"] <= 2.0 if config_name == "paper" else None,
                        "detail": detail if config_name == "paper" else
                        f"{detail}, measured on the {config_name} config; the target is for paper"})
    # Quality is judged on trained models; the paper config's speed-only rows have none.
    float_stream = next((r for r in hops if r["kind"] == "tflite_streaming" and r.get("stoi") is not None), None)
    quantized = [r for r in hops if r["kind"] != "tflite_streaming" and r.get("stoi") is not None]
    name = "crn: quantized streaming .tflite within 0.5 STOI points of the float streaming .tflite"
    if float_stream is None or not quantized:
        targets.append({"target": name, "passed": None, "detail": "no trained streaming .tflite scored"})
    for row in quantized:
        loss = 100 * (float_stream["stoi"] - row["stoi"])
        targets.append({"target": name, "passed": loss <= 0.5,
                        "detail": f"{loss:+.2f} points below float ({row['variant']})"})
    for model in ("icse", "fqse", "sednn", "crn", "tfgridnet"):
        limit = 1.0 if model == "tfgridnet" else 0.1
        candidates = [r for r in rows if r["model"] == model and r.get("rtf_1") is not None]
        name = f"{model}: real-time factor <= {limit} on one thread (paper config)"
        if not candidates:
            targets.append({"target": name, "passed": None, "detail": "no .tflite measured"})
            continue
        best = min(candidates, key=lambda r: r["rtf_1"])
        detail = f"best {best['variant']}: RTF {best['rtf_1']:.4f}"
        if config_name != "paper":
            targets.append({"target": name, "passed": None,
                            "detail": f"{detail} (measured on the {config_name} config; the target is for paper)"})
        else:
            targets.append({"target": name, "passed": best["rtf_1"] <= limit, "detail": detail})
    for model in ("icse", "sednn", "fqse"):
        comparison = next((c for c in comparisons if c.get("model") == model), {})
        by_variant = {variant: value for variant, value in
                      (comparison.get("onnx_float_over_litert_int8_by_variant") or {}).items() if value is not None}
        if not by_variant and comparison.get("onnx_float_over_litert_int8") is not None:
            by_variant = {comparison.get("litert_int8_variant") or "int8": comparison["onnx_float_over_litert_int8"]}
        name = f"{model}: LiteRT int8 >= 2x ONNX Runtime float"
        if not by_variant:
            targets.append({"target": name, "passed": None, "detail": "not measured"})
        for variant, value in by_variant.items():
            targets.append({"target": name, "passed": value >= 2.0, "detail": f"{value:.2f}x ({variant})"})
    fqse = next((c for c in comparisons if c.get("model") == "fqse"), {})
    value = fqse.get("torch_float_over_litert_int8")
    targets.append({"target": "fqse: LiteRT int8 >= 4x PyTorch float", "passed": None if value is None else value >= 4.0,
                    "detail": "not measured" if value is None else f"{value:.2f}x"})
    return targets


def format_targets(targets) -> str:
    lines = []
    for target in targets:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[target["passed"]]
        lines.append(f"[{verdict}] {target['target']}: {target['detail']}")
    return "\n".join(lines)


def _kb(value):
    return None if value is None else value / 1000.0


def build_table(rows, comparisons, config_name: str, clips: int, seconds: float, all_threads: int,
                memory: bool = True, memory_seconds: float = MEMORY_SECONDS):
    from common.tables import ResultTable

    notes = [
        f"Quality: mean over {clips} clips of the mini test set (test speech x test noises at "
        f"{', '.join(f'{snr:+.0f}' for snr in BENCHMARK_SNRS)} dB); PESQ wide-band MOS-LQO (P.862.2), STOI, "
        "SI-SNR improvement over the noisy input, DNSMOS P.835 OVRL on one 9.01-s segment (the clip tiled).",
        f"Speed: {seconds:.1f}-s fixed input; RTF = median time / audio time [min-max over the repeats], end to end "
        f"(pre/post-processing included); 'all thr' = {all_threads} threads; Keras rows: all threads only.",
        "Rows marked 'speed only (random weights)': no trained model of this config exists; the paper-size network "
        "with a seeded random initialisation, exported as the recipe exports it (int8 calibrated on seeded random "
        "audio): size and speed are the deployed model's, quality is not measured.",
        "core ms: the exported graph alone on identical input tensors (LiteRT, ONNX Runtime, PyTorch); "
        "'x vs LiteRT float core' = LiteRT float core time / this row's core time.",
        "Sizes: .tflite bytes and gzip -9 bytes; Keras rows: parameters as float32. GMAC/s: multiply-accumulates "
        "per second of audio of the Keras graph.",
        (f"peak MiB: extra peak resident memory (VmHWM minus the VmRSS baseline) of building the variant's enhancer "
         f"and running it once on a {memory_seconds / 60:g}-minute input (the first test clip tiled), in a fresh "
         "process per variant after its imports (TensorFlow, "
         "tf_keras, LiteRT, the recipe); LiteRT rows on 1 thread, Keras rows on all threads; blank: not measured "
         "(reason in results.json, peak_memory_note)." if memory else
         "peak MiB: not measured in this run (--no-memory)."),
    ]
    for comparison in comparisons:
        parts = []
        for key, label in (("onnx_float_over_litert_float", "ONNX float / LiteRT float"),
                           ("onnx_float_over_litert_int8", "ONNX float / LiteRT int8"),
                           ("onnx_float_over_onnx_int8", "ONNX float / ONNX int8"),
                           ("onnx_int8_over_litert_int8", "ONNX int8 / LiteRT int8"),
                           ("torch_float_over_litert_float", "PyTorch float / LiteRT float"),
                           ("torch_float_over_litert_int8", "PyTorch float / LiteRT int8")):
            if comparison.get(key) is not None:
                parts.append(f"{label} = {comparison[key]:.2f}x")
        if parts:
            notes.append(f"{comparison['model']} time ratios (1 thread, same input, > 1: LiteRT faster): " + "; ".join(parts))
    table = ResultTable(f"Compression and deployment benchmark ({config_name} configs)", COLUMNS, notes)
    for row in rows:
        values = {
            "pesq_wb": row.get("pesq_wb"), "stoi": row.get("stoi"), "si_snr_improvement": row.get("si_snr_improvement"),
            "dnsmos_ovrl": row.get("dnsmos_ovrl"), "parameters": row.get("parameters"),
            "nonzero_parameters": row.get("nonzero_parameters"), "tflite_kb": _kb(row.get("tflite_bytes")),
            "gzip_kb": _kb(row.get("tflite_gzip_bytes")),
            "gmacs": None if row.get("macs_per_second") is None else row["macs_per_second"] / 1e9,
            "rtf_1_text": _format_rtf(row.get("rtf_1_stats")), "rtf_all_text": _format_rtf(row.get("rtf_all_stats")),
            "core_ms_1": row.get("core_1_ms"), "speedup": row.get("speedup"), "hop_ms": row.get("hop_ms"),
            "peak_mib": row.get("peak_mib"),
            "file": row["file"] if row["status"] == "measured" else
            row["file"] + "; speed only (random weights)" if row["status"] == SPEED_ONLY_STATUS else
            row["file"] + "; " + row["quality_note"] if row.get("quality_note") else row["status"],
        }
        table.add_row(f"{row['model']} / {row['variant']}", {k: v for k, v in values.items() if v is not None})
    return table


def _jsonable(rows):
    clean = []
    for row in rows:
        clean.append({key: value for key, value in row.items()})
    return clean


def run_benchmark(adapters, config_name: str, results_dir: Path, work_dir: Path, max_items: int = 8,
                  seconds: float = 4.0, repeats: int = 10, quality: bool = True, compare: bool = True,
                  processes: int = 2, seed: int = 0, clips=None, dnsmos: bool = True, memory: bool = True,
                  memory_timeout: float | None = None, memory_seconds: float = MEMORY_SECONDS) -> dict:
    """Measure every adapter's variants, print the table and targets, write results and the plot.

    ``clips`` replaces the shared test set (tests pass synthetic ones). ``memory``: measure each measured
    variant's peak memory in a fresh child process after all timings (:func:`measure_peak_memories`), on the first
    test clip tiled to ``memory_seconds``."""
    from benchmarks.plot import plot_frontiers

    all_threads = os.cpu_count() or 1
    clips = clips if clips is not None else shared_test_set(max_items=max_items, seed=seed)
    speed_signal = fixed_length(clips[0]["noisy"], int(round(seconds * SAMPLE_RATE)))
    rows, rows_pairs, comparisons, memory_jobs = [], [], [], []
    if quality:
        noisy_row = {"model": "noisy", "variant": "unprocessed input", "kind": "noisy", "runtime": "-", "file": "-",
                     "status": "measured"}
        rows.append(noisy_row)
        rows_pairs.append((noisy_row, [{"name": c["name"], "clean": c["clean"], "noisy": c["noisy"],
                                        "enhanced": c["noisy"]} for c in clips]))
    for adapter in adapters:
        if hasattr(adapter, "timing_seconds"):
            adapter.timing_seconds = speed_signal.size / SAMPLE_RATE
        variants = adapter.variants(config_name)
        model_rows = []
        for variant in variants:
            print(f"[benchmark] {variant.label}: {'measuring' if not variant.missing else variant.missing}", flush=True)
            row, pairs = measure_variant(variant, clips, speed_signal, repeats, all_threads, quality=quality)
            model_rows.append(row)
            rows_pairs.append((row, pairs))
            if row["status"].startswith("measured"):
                memory_jobs.append((row, adapter, variant))
        rows.extend(model_rows)
        if compare:
            float_variant = next((v for v in variants if v.kind == "float" and not v.missing), None)
            extra_rows, comparison = compare_runtimes(adapter.name, float_variant, model_rows, speed_signal, repeats,
                                                      all_threads, work_dir / "onnx",
                                                      torch_port=getattr(adapter, "torch_comparison", False))
            rows.extend(extra_rows)
            comparisons.append(comparison)
    if memory:  # after every timing and before the quality pool: a child never runs beside a measurement
        memory_signal = fixed_length(clips[0]["noisy"], int(round(memory_seconds * SAMPLE_RATE)))
        measure_peak_memories(memory_jobs, config_name, memory_signal, all_threads, timeout=memory_timeout,
                              timing_seconds=speed_signal.size / SAMPLE_RATE)
    if quality:
        score_pairs(rows_pairs, processes=processes, dnsmos=dnsmos)
    add_speedups(rows)
    targets = evaluate_targets(rows, comparisons, config_name)
    table = build_table(rows, comparisons, config_name, len(clips), seconds, all_threads, memory=memory,
                        memory_seconds=memory_seconds)
    print(table.render())
    print("\nTargets:")
    print(format_targets(targets))
    results_dir = Path(results_dir)
    plot_path = plot_frontiers([r for r in rows if r["status"].startswith("measured") and r["kind"] != "noisy"],
                               results_dir / "frontier.png",
                               title=f"Size-quality-speed frontier ({config_name} configs, mini test set)")
    extra = {"rows": _jsonable(rows), "comparisons": comparisons, "targets": targets,
             "test_set": [{"name": c["name"], "snr_db": c["snr_db"], "noise_type": c["noise_type"],
                           "seconds": c["noisy"].size / SAMPLE_RATE} for c in clips],
             "speed_input_seconds": seconds, "repeats": repeats, "all_threads": all_threads,
             "peak_memory_input_seconds": memory_seconds if memory else None,
             "peak_memory_method": None if not memory else peak_memory.METHOD,
             "plot": None if plot_path is None else str(plot_path)}
    table.save(results_dir, config={"config_name": config_name, "max_items": max_items, "seconds": seconds,
                                    "repeats": repeats, "seed": seed}, extra=extra, run=f"benchmark-{config_name}")
    print(f"\nwrote {results_dir / 'results.json'}, {results_dir / 'results.csv'}"
          + (f", {plot_path}" if plot_path else " (no plot: no row has quality and size/speed)"))
    return {"rows": rows, "comparisons": comparisons, "targets": targets, "table": table, "plot": plot_path}
