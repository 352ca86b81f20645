"""The CRN's streaming .tflite export (docs/crn.md#streaming, docs/toolchain.md#tflite-conversion): the Keras
streaming model checked against the offline model, each mode converted, checked on one test utterance and
benchmarked hop by hop, and the report written beside the files.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.enhancement import inference_level
from reproductions.crn.data import load_corpus, magnitude, test_examples, training_examples
from reproductions.crn.networks import load_trained
from reproductions.crn.systems import tflite_path


def export_streaming(config, args):
    """Export every configured mode of the trained CRN; ValueError when a check fails."""
    from data_prep.paper_sets import at_level
    from reproductions.crn import streaming

    model = load_trained(config, args, "crn")
    corpus = load_corpus(config)
    test = test_examples(corpus, config)
    # the check utterance at the level the enhancers play their input at, as the calibration mixtures are
    check_example = test[0] if inference_level(config) is None else at_level(test[:1], inference_level(config))[0]
    check_noisy = check_example.load()[0]
    check_magnitude = magnitude(check_noisy)
    offline = model(check_magnitude[None], training=False).numpy()[0]
    report = {"check_utterance": test[0].meta["speech"], "frames": int(offline.shape[0])}
    keras_stream = streaming.StreamingCRN(model).process(check_magnitude)
    report["keras_streaming_max_abs_difference"] = float(np.abs(keras_stream - offline).max())
    print(f"Keras streaming vs offline: max |difference| {report['keras_streaming_max_abs_difference']:.2e} "
          f"over {offline.shape[0]} frames")
    if report["keras_streaming_max_abs_difference"] > 1e-4:
        raise ValueError("the Keras streaming model differs from the offline model by more than 1e-4")
    calibration_set = training_examples(corpus, config, "valid")[: config["export"]["calibration_utterances"]]
    calibration = streaming.calibration_inputs(
        model, [magnitude(example.load()[0]) for example in calibration_set], config["export"]["calibration_hops"])
    report["calibration"] = {"utterances": len(calibration_set), "hops": len(calibration), "split": "valid"}
    report["variants"] = {}
    report["lstm_form"] = lstm_form = streaming.configured_lstm_form(config)
    for mode in sorted(args.modes or config["export"]["modes"], key=lambda m: m != "float32"):
        path = streaming.export_streaming_tflite(model, tflite_path(args, mode), mode, calibration, lstm_form)
        runner = streaming.StreamingTFLite(path, num_threads=1)
        output = runner.process(check_magnitude)
        difference = np.abs(output - offline)
        bench = streaming.benchmark_streaming(path, threads=1, hops=config["export"]["benchmark_hops"])
        report["variants"][mode] = {
            "path": str(path),
            "bytes": path.stat().st_size,
            "ops": sorted(set(runner.model.op_names())),
            "fused_lstm": streaming.FUSED_LSTM_OP in runner.model.op_names(),
            "max_abs_difference_to_offline": float(difference.max()),
            "mean_abs_difference_to_offline": float(difference.mean()),
            "benchmark": bench,
        }
        print(f"{mode}: {path} ({path.stat().st_size / 1024:.0f} KiB), fused LSTM "
              f"{report['variants'][mode]['fused_lstm']}, max |difference| to offline Keras {difference.max():.2e}")
        print("  " + streaming.format_benchmark(bench))
        # float32 LiteRT kernels (XNNPACK) sum in another order than TensorFlow; through the LSTM recursion the
        # rounding grows with the output scale (trained magnitudes reach ~10^2), hence a relative bound here;
        # the tests check 1e-4 absolute on a model with outputs of order 1.
        bound = 1e-4 * max(1.0, float(np.abs(offline).max()))
        report["variants"][mode]["tolerance"] = bound
        if mode == "float32" and difference.max() > bound:
            raise ValueError(f"the float32 streaming .tflite differs from the offline model by "
                             f"{difference.max():.2e} (> {bound:.2e})")
    json_dump(Path(args.exp_dir) / "export" / "report.json", report)


def json_dump(path, document):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, default=lambda value: getattr(value, "item", lambda: str(value))()))
