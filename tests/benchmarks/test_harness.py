"""The benchmark harness on a tiny waveform model: .tflite timing, the whole run, table/JSON/CSV, targets."""
import csv
import json

import numpy as np
import pytest

from benchmarks import benchmark
from benchmarks.variant import Variant, keras_function, missing_variant

RATE = 16000


def _tiny_model():
    from common.tfkeras import keras, layers

    inputs = keras.Input((None, 1), batch_size=1, name="waveform")
    hidden = layers.Conv1D(8, 9, padding="same", activation="relu", name="conv_in")(inputs)
    outputs = layers.Conv1D(1, 9, padding="same", name="conv_out")(hidden)
    model = keras.Model(inputs, outputs, name="tiny")
    rng = np.random.default_rng(0)
    model.set_weights([0.2 * rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from common.tflite import export_tflite

    folder = tmp_path_factory.mktemp("tiny")
    model = _tiny_model()
    model.save_weights(str(folder / "tiny.weights.h5"))
    rng = np.random.default_rng(1)
    shape = [(1, RATE // 4, 1)]
    float_path = export_tflite(model, folder / "tiny_float.tflite", "float32", input_shapes=shape)
    int8_path = export_tflite(model, folder / "tiny_int8.tflite", "int8", input_shapes=shape,
                              representative_data=[(0.1 * rng.standard_normal(shape[0])).astype(np.float32)
                                                   for _ in range(8)])
    return {"folder": folder, "model": model, "float": float_path, "int8": int8_path}


def _tflite_enhancer(path):
    from common.tflite import TFLiteModel, run_in_chunks

    def make(threads):
        runner = TFLiteModel(path, num_threads=threads)
        return lambda signal: run_in_chunks(runner, np.asarray(signal, np.float32)[None, :, None], RATE // 4)[0, :, 0]

    return make


class TinyAdapter:
    name = "tiny"
    torch_comparison = True

    def __init__(self, tiny):
        self.tiny = tiny

    def variants(self, config_name):
        model = self.tiny["model"]
        core_inputs = lambda signal: [np.asarray(signal, np.float32)[None, : RATE // 4, None]]  # noqa: E731
        float_keras = Variant("tiny", "float Keras", "float", file=self.tiny["folder"] / "tiny.weights.h5",
                              make_enhancer=lambda threads: (lambda s: keras_function(model)(s[None, :, None])[0, :, 0]),
                              keras_model=lambda: model, core_inputs=core_inputs, core_seconds=0.25)
        rows = [float_keras]
        for kind, label, path in (("tflite", "float .tflite", self.tiny["float"]),
                                  ("ptq_int8", "PTQ int8 .tflite", self.tiny["int8"])):
            rows.append(Variant("tiny", label, kind, file=path, runtime="litert", tflite_path=path,
                                make_enhancer=_tflite_enhancer(path), keras_model=lambda: model,
                                core_inputs=core_inputs, core_seconds=0.25))
        rows.append(missing_variant("tiny", "QAT int8 .tflite", "qat_int8", self.tiny["folder"] / "absent.tflite"))
        return rows


def test_measure_variant_tflite_timing(tiny):
    variant = TinyAdapter(tiny).variants("mini")[1]
    signal = np.random.default_rng(2).standard_normal(RATE).astype(np.float32) * 0.1
    row, pairs = benchmark.measure_variant(variant, [], signal, repeats=5, all_threads=2, quality=False)
    assert row["status"] == "measured" and pairs == []
    for key in ("rtf_1", "rtf_all"):
        stats = row[f"{key}_stats"]
        assert stats["rtf"] > 0 and row[key] == stats["rtf"]
        assert stats["rtf_min"] <= stats["rtf"] <= stats["rtf_max"]
        assert stats["min_s"] <= stats["median_s"] <= stats["max_s"] and stats["audio_seconds"] == 1.0
    assert row["rtf_1_stats"]["threads"] == 1 and row["rtf_all_stats"]["threads"] == 2
    assert 0 < row["core_1_stats"]["min_s"] <= row["core_1_stats"]["median_s"] <= row["core_1_stats"]["max_s"]
    # Sizes: the Keras model's weights (8*9 + 8 + 8*9 + 1) and the file itself.
    assert row["parameters"] == 153 and row["nonzero_parameters"] == 153
    assert row["tflite_bytes"] == tiny["float"].stat().st_size and 0 < row["tflite_gzip_bytes"] < row["tflite_bytes"]
    # MACs per second of audio: (9*1*8 + 9*8*1) per sample, measured on the 0.25-s core input -> x4.
    assert row["macs_per_second"] == 144 * RATE


def test_missing_artefact_is_reported_not_raised(tiny):
    variant = TinyAdapter(tiny).variants("mini")[-1]
    row, pairs = benchmark.measure_variant(variant, [], np.zeros(RATE, np.float32), 3, 2)
    assert pairs == [] and row["status"] == (f"not trained yet: {tiny['folder'] / 'absent.tflite'} is missing; "
                                             "run bash reproductions/tiny/run.sh")
    broken = Variant("tiny", "broken", "tflite", runtime="litert", make_enhancer=lambda threads: 1 / 0)
    row, _ = benchmark.measure_variant(broken, [], np.zeros(RATE, np.float32), 3, 2, quality=False)
    assert row["status"].startswith("error: ZeroDivisionError")


def test_run_benchmark_writes_table_json_csv_and_plot(tiny, tmp_path, capsys):
    rng = np.random.default_rng(3)
    time_axis = np.arange(2 * RATE) / RATE
    clips = []
    for index in range(1):
        # A voiced, amplitude-modulated harmonic signal: PESQ/STOI score it like speech.
        clean = sum(np.sin(2 * np.pi * 140 * h * time_axis) / h for h in range(1, 8))
        clean = (0.1 * clean * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * time_axis + index))).astype(np.float32)
        noisy = (clean + 0.02 * rng.standard_normal(clean.size)).astype(np.float32)
        clips.append({"name": f"clip{index}", "noisy": noisy, "clean": clean, "snr_db": 0.0, "noise_type": "white"})
    results_dir = tmp_path / "results"
    result = benchmark.run_benchmark([TinyAdapter(tiny)], "mini", results_dir, tmp_path / "work", seconds=1.0,
                                     repeats=3, processes=1, clips=clips)
    printed = capsys.readouterr().out
    assert "Compression and deployment benchmark (mini configs)" in printed
    assert "tiny / PTQ int8 .tflite" in printed and "not trained yet" in printed
    assert "Targets:" in printed and "[n/a ] fqse: LiteRT int8 >= 2x ONNX Runtime float" in printed

    document = json.loads((results_dir / "results.json").read_text())
    rows = {row["variant"]: row for row in document["extra"]["rows"]}
    assert rows["unprocessed input"]["si_snr_improvement"] == pytest.approx(0.0, abs=1e-6)
    for label in ("float Keras", "float .tflite", "PTQ int8 .tflite"):
        assert rows[label]["status"] == "measured" and rows[label]["clips_scored"] == 1
        assert rows[label]["stoi"] is not None and -1 <= rows[label]["stoi"] <= 1
        assert rows[label]["dnsmos_ovrl"] is not None and 1 <= rows[label]["dnsmos_ovrl"] <= 5
    assert rows["float .tflite"]["speedup"] == pytest.approx(1.0)
    # Peak memory is measured in a child process that rebuilds the adapter: TinyAdapter(tiny) cannot be, so the
    # rows say why instead of showing an in-process figure (tests/benchmarks/test_peak_memory.py measures one).
    assert rows["float .tflite"]["peak_mib"] is None
    assert "needs constructor arguments" in rows["float .tflite"]["peak_memory_note"]
    assert "fresh process per variant" in document["extra"]["peak_memory_method"]
    int8 = rows["PTQ int8 .tflite"]
    assert int8["speedup"] == pytest.approx(rows["float .tflite"]["core_1_ms"] / int8["core_1_ms"])
    # Every figure names its file; the table's CSV has the same rows in the same order.
    assert rows["float .tflite"]["file"].endswith("tiny_float.tflite")
    with open(results_dir / "results.csv", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0][0] == "row" and "RTF 1 thr [min-max]" in table[0] and "file / status" in table[0]
    labels = [line[0] for line in table[1:]]
    assert labels[:5] == ["noisy / unprocessed input", "tiny / float Keras", "tiny / float .tflite",
                          "tiny / PTQ int8 .tflite", "tiny / QAT int8 .tflite"]
    assert document["provenance"]["config"]["config_name"] == "mini"
    assert (results_dir / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    comparison = document["extra"]["comparisons"][0]
    assert comparison["litert_float_ms_1"] == rows["float .tflite"]["core_1_ms"]
    if "onnxruntime" in rows.get("float ONNX Runtime (tf2onnx)", {}).get("runtime", ""):
        onnx = rows["float ONNX Runtime (tf2onnx)"]
        if onnx["status"] == "measured":
            assert onnx["max_abs_difference_vs_keras"] < 1e-5
            assert comparison["onnx_float_over_litert_float"] == pytest.approx(
                onnx["core_1_ms"] / rows["float .tflite"]["core_1_ms"])


def test_targets_pass_and_fail_lines():
    rows = [
        {"model": "icse", "kind": "tflite", "variant": "float .tflite", "core_1_ms": 10.0, "rtf_1": 0.05},
        {"model": "icse", "kind": "ptq_int8", "variant": "PTQ int8 .tflite", "core_1_ms": 2.0, "rtf_1": 0.01},
        {"model": "sednn", "kind": "tflite", "variant": "float .tflite", "core_1_ms": 9.0, "rtf_1": 0.2},
        {"model": "sednn", "kind": "ptq_int8", "variant": "PTQ int8 .tflite", "core_1_ms": 3.0, "rtf_1": 0.15},
    ]
    comparisons = [{"model": "fqse", "onnx_float_over_litert_int8": 2.5, "torch_float_over_litert_int8": 3.0}]
    targets = {t["target"].split(":")[0] + t["target"].split(":")[1][:12]: t
               for t in benchmark.evaluate_targets(rows, comparisons, "paper")}
    lines = benchmark.format_targets(benchmark.evaluate_targets(rows, comparisons, "paper")).splitlines()
    assert "[PASS] icse: int8 .tflite >= 4x faster than float .tflite (1 thread, core graph): 5.00x" in lines[0]
    assert lines[1].startswith("[FAIL] sednn: int8") and "3.00x" in lines[1]
    assert lines[2].startswith("[n/a ] fqse: int8")
    assert any(line.startswith("[PASS] icse: real-time factor <= 0.1") for line in lines)
    assert any(line.startswith("[FAIL] sednn: real-time factor <= 0.1") for line in lines)
    assert lines[-2].startswith("[PASS] fqse: LiteRT int8 >= 2x ONNX") and lines[-1].startswith("[FAIL] fqse: LiteRT int8 >= 4x PyTorch")
    assert targets  # one entry per target line
    assert any(line.startswith("[n/a ] crn: streaming <= 2 ms") for line in lines)
    mini = benchmark.format_targets(benchmark.evaluate_targets(rows, comparisons, "mini"))
    assert "[n/a ] icse: real-time factor <= 0.1 on one thread (paper config): best PTQ int8 .tflite: RTF 0.0100" in mini


def test_crn_targets_judge_each_streaming_row_on_time_and_quality_against_float():
    rows = [
        {"model": "crn", "kind": "tflite_streaming", "variant": "streaming float", "hop_ms": 4.3, "stoi": 0.700},
        {"model": "crn", "kind": "dynamic", "variant": "streaming dynamic", "hop_ms": 1.6, "stoi": 0.6995},
        {"model": "crn", "kind": "ptq_int8", "variant": "streaming int8", "hop_ms": 3.6, "stoi": 0.512},
    ]
    lines = benchmark.format_targets(benchmark.evaluate_targets(rows, [], "paper")).splitlines()
    hop_lines = [line for line in lines if "crn: streaming <= 2 ms" in line]
    assert [line[:6] for line in hop_lines] == ["[FAIL]", "[PASS]", "[FAIL]"]
    assert "1.600 ms (streaming dynamic)" in hop_lines[1]
    quality = [line for line in lines if "within 0.5 STOI points" in line]
    assert quality[0].startswith("[PASS]") and "+0.05 points below float (streaming dynamic)" in quality[0]
    assert quality[1].startswith("[FAIL]") and "+18.80 points" in quality[1]
    speed_only = [dict(row, stoi=None) for row in rows]
    lines = benchmark.format_targets(benchmark.evaluate_targets(speed_only, [], "paper")).splitlines()
    assert any(line.startswith("[n/a ] crn: quantized streaming") for line in lines)
