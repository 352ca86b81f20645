"""TF-GridNet's .tflite export (docs/toolchain.md#tflite-conversion): float32 and dynamic-range waveform models,
int16x8 and int8 spectral cores (STFT/iSTFT outside); each form that converts is scored beside the Keras model, each
that does not keeps the converter's message, and the quantised forms are judged against the float32 SI-SNR.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from common.enhancement import configured_enhancer
from reproductions.tfgridnet.data import draw_examples, fit_length, open_corpus
from reproductions.tfgridnet.inference import enhancer, input_deviation
from reproductions.tfgridnet.scoring import evaluation_pairs, score_pairs
from reproductions.tfgridnet.strategies import load_trained

# An int8 model is usable when it keeps the float model's SI-SNR within this margin (dB).
USABLE_SI_SNR_DROP_DB = 0.5


def export_models(config, args, strategies, log):
    """Float32 and dynamic-range waveform models, int16x8 / int8 spectral cores; each scored if it converts."""
    from common.accounting import gzip_bytes, tflite_bytes
    from reproductions.tfgridnet.features import tfgridnet_istft, tfgridnet_stft
    from common.tfkeras import keras
    from common.tflite import TFLiteModel, export_tflite

    export_config = config["export"]
    pairs = evaluation_pairs(config, args)[: int(export_config["eval_files"])]
    # The BLSTMs' TensorLists need static shapes in the converter ("TensorListReserve requires element_shape to
    # be static"), so every .tflite has one input length: the longest scored file, rounded up to the hop.
    # Shorter inputs are zero-padded and the output cut; the Keras reference sees the same padded input.
    hop = int(config["model"]["hop_length"])
    samples = int(math.ceil(max(noisy.size for _, noisy, _ in pairs) / hop) * hop)
    frames = 1 + samples // hop
    corpus = open_corpus(config)
    calibration = [fit_length(example.load()[0], samples) for example in
                   draw_examples(config, corpus, "valid", int(config["data"]["seed"]) + 7,
                                 max_items=int(export_config["calibration_examples"]))]
    folder = Path(args.exp_dir) / "tflite"
    report_path = Path(args.results_dir) / "export.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    for strategy in strategies:
        model = load_trained(config, args, strategy)
        keras_enhance = configured_enhancer(config, enhancer(model))
        reference = {name: keras_enhance(fit_length(noisy, samples))[: noisy.size] for name, noisy, _ in pairs}
        # The spectral core: STFT'd input -> complex spectrum of the (last) estimate; STFT/iSTFT stay in numpy.
        last = f"estimate{config['model']['num_blocks']}" if strategy == "progressive" else "enhanced"
        core = keras.Model(model.get_layer("stft").output, model.get_layer(f"{last}_crop").output,
                           name=f"{strategy}_core")
        spectra = [tfgridnet_stft(signal / input_deviation(config, signal))[None] for signal in calibration]
        representative = [np.stack([s.real, s.imag], -1).astype(np.float32) for s in spectra]
        variants = [
            ("float32", model, "float32", None, "waveform"),
            ("dynamic", model, "dynamic", None, "waveform"),
            ("int16x8", core, "int16x8", representative, "core"),
            ("int8", core, "int8", representative, "core"),
        ]
        for variant, network, mode, data, kind in variants:
            path = folder / f"{strategy}_{variant}.tflite"
            entry = {"mode": mode, "graph": kind, "path": str(path), "input_samples": samples}
            started = time.time()
            try:
                export_tflite(network, path, mode=mode, representative_data=data, int8_io=False,
                              input_shapes=[(1, samples) if kind == "waveform" else (1, frames, 257, 2)])
            except Exception as error:  # the converter's own message is the result to report
                entry.update(converted=False, error=f"{type(error).__name__}: {str(error)[:600]}")
                report[f"{strategy}_{variant}"] = entry
                log(f"[tfgridnet] {strategy} {variant}: conversion failed: {entry['error'][:200]}")
                continue
            runner = TFLiteModel(path, num_threads=2)
            if kind == "waveform":
                def run(signal, runner=runner):
                    out = runner(fit_length(np.asarray(signal, np.float32), samples)[None])
                    return np.asarray(out[-1] if isinstance(out, list) else out)[0, : signal.size]
            else:
                def run(signal, runner=runner):
                    padded = fit_length(np.asarray(signal, np.float32), samples)
                    scale = input_deviation(config, padded)
                    spectrum = tfgridnet_stft(padded / scale)
                    out = runner(np.stack([spectrum.real, spectrum.imag], -1)[None].astype(np.float32))[0]
                    # torch.istft without length, zero-padded: the model's own output convention
                    waveform = fit_length(tfgridnet_istft(out[..., 0] + 1j * out[..., 1]), samples) * scale
                    return waveform[: signal.size].astype(np.float32)
            run = configured_enhancer(config, run)
            outputs = {name: run(noisy) for name, noisy, _ in pairs}
            difference = max(float(np.max(np.abs(outputs[name] - reference[name]))) for name in outputs)
            _, summary = score_pairs(config, outputs, pairs, f"{strategy} {variant}")
            entry.update(converted=True, seconds=round(time.time() - started, 1), bytes=tflite_bytes(path),
                         gzip_bytes=gzip_bytes(path), max_abs_difference_to_keras=difference,
                         ops=sorted(set(runner.op_names())),
                         scores={key: value for key, value in summary.items() if isinstance(value, tuple)})
            report[f"{strategy}_{variant}"] = entry
            log(f"[tfgridnet] {strategy} {variant}: {entry['bytes']:,} bytes, max |tflite - keras| "
                 f"{difference:.2e}")
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=1, default=float))
    return report


def distinct_lines(message: str, limit: int = 300) -> str:
    """The converter's multi-line error as its distinct lines joined by ' | ' (it repeats one line per op)."""
    kind, _, rest = str(message).partition(": ")
    if not kind.isidentifier():  # no "ErrorType: " prefix
        kind, rest = "", str(message)
    lines = dict.fromkeys(line.strip() for line in rest.splitlines() if line.strip())
    text = (f"{kind}: " if kind else "") + " | ".join(lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def int8_usability(export: dict) -> dict:
    """``{entry: text}``: each quantised export against its strategy's float32 SI-SNR (usable within
    ``USABLE_SI_SNR_DROP_DB``), or why it cannot be judged."""
    verdicts = {}
    for name, entry in export.items():
        strategy, _, variant = name.rpartition("_")
        if variant == "float32":
            verdicts[name] = "reference"
            continue
        if not entry.get("converted"):
            verdicts[name] = "unusable: does not convert"
            continue
        floating = export.get(f"{strategy}_float32", {})
        reference = floating.get("scores", {}).get("si_snr")
        value = entry.get("scores", {}).get("si_snr")
        if reference is None or value is None:
            verdicts[name] = "unknown: no float32 SI-SNR to compare with"
            continue
        change = float(value[0]) - float(reference[0])
        # either way: an int8 model far above a poor float32 model is not the float32 model either
        usable = abs(change) <= USABLE_SI_SNR_DROP_DB
        verdicts[name] = (f"{'usable' if usable else 'unusable'}: SI-SNR {abs(change):.2f} dB "
                          f"{'below' if change < 0 else 'above'} float32")
    return verdicts
