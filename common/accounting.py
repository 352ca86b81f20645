"""Honest size and speed accounting for every model variant.

Sizes (``docs/toolchain.md#size``): parameter count, non-zero parameters, float32 bytes, raw .tflite
bytes and gzip .tflite bytes (TFMOT's own compression figures are gzip sizes after strip_pruning/strip_clustering).

MACs: :func:`macs_breakdown` runs the Functional graph node by node on a concrete (batch 1) input, so every layer is
counted with its real input and output shapes; custom layers report through ``compute_macs(input_shape,
output_shape)``.  Element-wise work (activations, norms, additions) is not counted as MACs.

Latency: :func:`measure_rtf` times a .tflite (median of repeated invocations on a fixed input, with spread);
``python -m common.accounting benchmark MODEL.tflite --seconds 4 --threads 1 2`` prints the figures.
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

LOG = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------------------------------
def count_parameters(model) -> int:
    """All weights of the model (trainable and not), as Keras counts them."""
    return int(sum(int(np.prod(w.shape)) for w in model.weights))


def count_nonzero(model) -> int:
    """Non-zero entries over all weights of the model."""
    return int(sum(int(np.count_nonzero(w.numpy())) for w in model.weights))


def tflite_bytes(path) -> int:
    return Path(path).stat().st_size


def gzip_bytes(path) -> int:
    """Size of the file compressed with gzip at maximum level (TFMOT's convention for pruned/clustered models)."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9))


def size_report(model, tflite_path=None) -> dict:
    """Parameter count, non-zero parameters, float32 bytes, and the .tflite raw/gzip bytes when given."""
    params = count_parameters(model)
    report = {"parameters": params, "nonzero_parameters": count_nonzero(model), "float32_bytes": 4 * params}
    if tflite_path is not None:
        report["tflite_bytes"] = tflite_bytes(tflite_path)
        report["tflite_gzip_bytes"] = gzip_bytes(tflite_path)
    return report


# ---------------------------------------------------------------------------------------------------------------------
# MACs
# ---------------------------------------------------------------------------------------------------------------------
def _shape(tensor):
    return tuple(int(d) for d in tensor.shape)


def _conv_macs(layer, input_shape, output_shape) -> int:
    from common.tfkeras import keras

    kernel_taps = int(np.prod(layer.kernel_size))
    if isinstance(layer, (keras.layers.DepthwiseConv2D, getattr(keras.layers, "DepthwiseConv1D",
                                                                 keras.layers.DepthwiseConv2D))):
        return int(np.prod(output_shape[1:])) * kernel_taps
    if isinstance(layer, keras.layers.SeparableConv1D) or isinstance(layer, keras.layers.SeparableConv2D):
        spatial_out = int(np.prod(output_shape[1:-1]))
        expanded = input_shape[-1] * layer.depth_multiplier
        return spatial_out * expanded * kernel_taps + spatial_out * expanded * output_shape[-1]
    if isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)):
        return int(np.prod(input_shape[1:])) * kernel_taps * layer.filters
    groups = getattr(layer, "groups", 1) or 1
    return int(np.prod(output_shape[1:])) * kernel_taps * (input_shape[-1] // groups)


def _rnn_cell_macs(cell, steps, input_dim) -> int:
    from common.tfkeras import keras

    units = cell.units
    gates = 4 if isinstance(cell, keras.layers.LSTMCell) else 3 if isinstance(cell, keras.layers.GRUCell) else 1
    return steps * gates * (input_dim * units + units * units)


def _layer_macs(layer, inputs, outputs):
    """MACs of one call (batch 1) or None when the layer type is unknown."""
    from common.tfkeras import keras

    in_shapes = [_shape(t) for t in inputs]
    out_shapes = [_shape(t) for t in outputs]
    input_shape, output_shape = in_shapes[0], out_shapes[0]
    if hasattr(layer, "compute_macs"):
        return int(layer.compute_macs(input_shape if len(in_shapes) == 1 else in_shapes,
                                      output_shape if len(out_shapes) == 1 else out_shapes))
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(input_shape[1:-1])) * input_shape[-1] * layer.units
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                          keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)) or isinstance(
            layer, (keras.layers.DepthwiseConv2D,)):
        return _conv_macs(layer, input_shape, output_shape)
    if isinstance(layer, keras.layers.Bidirectional):
        steps = input_shape[1]
        return sum(_rnn_cell_macs(rnn.cell, steps, input_shape[-1]) for rnn in (layer.forward_layer,
                                                                                 layer.backward_layer))
    if isinstance(layer, keras.layers.RNN):
        return _rnn_cell_macs(layer.cell, input_shape[1], input_shape[-1])
    if isinstance(layer, keras.layers.MultiHeadAttention):
        query, value = in_shapes[0], in_shapes[1] if len(in_shapes) > 1 else in_shapes[0]
        key = in_shapes[2] if len(in_shapes) > 2 else value
        heads, key_dim = layer._num_heads, layer._key_dim
        value_dim = layer._value_dim or key_dim
        tq, tk = int(np.prod(query[1:-1])), int(np.prod(key[1:-1]))
        macs = tq * query[-1] * heads * key_dim + tk * key[-1] * heads * key_dim + tk * value[-1] * heads * value_dim
        macs += heads * tq * tk * key_dim + heads * tq * tk * value_dim
        macs += tq * heads * value_dim * output_shape[-1]
        return macs
    if isinstance(layer, keras.layers.TimeDistributed):
        inner_in = (1,) + input_shape[2:]
        inner_out = (1,) + output_shape[2:]

        class _Fake:
            def __init__(self, shape):
                self.shape = shape

        inner = _layer_macs(layer.layer, [_Fake(inner_in)], [_Fake(inner_out)])
        return None if inner is None else inner * input_shape[1]
    if not layer.weights:
        return 0  # reshapes, activations, pooling, merges: element-wise work, not MACs
    if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.PReLU,
                          getattr(keras.layers, "GroupNormalization", keras.layers.LayerNormalization))):
        return 0
    return None


def macs_breakdown(model, one_second_inputs) -> list:
    """Per-layer MACs of one forward pass of ``model`` on ``one_second_inputs``.

    Args:
        model: tf_keras Functional (or Sequential) model; nested models are walked recursively.
        one_second_inputs: arrays (batch 1) or shapes (batch included) for each model input.
    Returns:
        list of dicts ``layer, type, input_shape, output_shape, macs`` (macs None: unknown layer with weights and
        no ``compute_macs``; counted as 0 with a warning by :func:`macs_per_second`).
    """
    from common.tfkeras import tf

    inputs = one_second_inputs if isinstance(one_second_inputs, (list, tuple)) and not all(
        isinstance(d, (int, np.integer)) for d in one_second_inputs) else [one_second_inputs]
    arrays = [np.zeros(x, np.float32) if isinstance(x, (tuple, list)) else np.asarray(x, np.float32) for x in inputs]
    for array in arrays:
        if array.shape[0] != 1:
            raise ValueError(f"MAC counting expects batch 1 inputs, got shape {array.shape}")
    rows = []
    _walk(model, [tf.constant(a) for a in arrays], rows)
    return rows


def _walk(model, inputs, rows):
    from common.tfkeras import keras, tf

    if not getattr(model, "_is_graph_network", False):
        raise ValueError(f"model {model.name!r} is subclassed; MAC counting walks Functional models")
    if len(inputs) != len(model.inputs):
        raise ValueError(f"model {model.name!r} has {len(model.inputs)} inputs, got {len(inputs)}")
    tensor_dict = {}
    usage = model._tensor_usage_count
    for reference, value in zip(model.inputs, inputs):
        tensor_dict[str(id(reference))] = [value] * usage[str(id(reference))]
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input or any(t not in tensor_dict for t in node.flat_input_ids):
                continue
            args, kwargs = node.map_arguments(tensor_dict)
            flat_in = [t for t in tf.nest.flatten((args, kwargs)) if tf.is_tensor(t)]
            if isinstance(node.layer, keras.Model) and getattr(node.layer, "_is_graph_network", False):
                outputs = _walk(node.layer, flat_in, rows)
            else:
                outputs = node.layer(*args, **kwargs)
                flat_out = [t for t in tf.nest.flatten(outputs) if tf.is_tensor(t)]
                rows.append({"layer": node.layer.name, "type": type(node.layer).__name__,
                             "input_shape": [_shape(t) for t in flat_in], "output_shape": [_shape(t) for t in flat_out],
                             "macs": _layer_macs(node.layer, flat_in, flat_out)})
            for x_id, y in zip(node.flat_output_ids, tf.nest.flatten(outputs)):
                tensor_dict[x_id] = [y] * usage[x_id]
    outputs = [tensor_dict[str(id(x))].pop() for x in model.outputs]
    return outputs if len(outputs) > 1 else outputs[0]


def macs_per_second(model, one_second_inputs, audio_seconds: float = 1.0) -> int:
    """Multiply-accumulates per second of audio: total MACs on inputs representing ``audio_seconds`` of audio,
    divided by ``audio_seconds``.  Layers with weights but no known formula are warned about and count 0."""
    rows = macs_breakdown(model, one_second_inputs)
    unknown = [row["layer"] for row in rows if row["macs"] is None]
    if unknown:
        LOG.warning("no MAC formula for layers %s (add compute_macs); counted as 0", unknown)
    return int(round(sum(row["macs"] or 0 for row in rows) / audio_seconds))


# ---------------------------------------------------------------------------------------------------------------------
# Latency
# ---------------------------------------------------------------------------------------------------------------------
def measure_rtf(tflite_path, inputs, audio_seconds: float, threads: int = 1, repeats: int = 20,
                warmup: int = 3) -> dict:
    """Real-time factor of a .tflite: median wall time of ``repeats`` invocations on the fixed ``inputs`` divided by
    the ``audio_seconds`` they represent (RTF < 1 is faster than real time).

    Returns:
        dict with ``threads, repeats, audio_seconds, median_s, min_s, max_s, iqr_s, rtf, rtf_min, rtf_max``.
    """
    from common.tflite import TFLiteModel

    if repeats < 1 or audio_seconds <= 0:
        raise ValueError(f"measure_rtf needs repeats >= 1 and audio_seconds > 0 for {tflite_path}")
    model = TFLiteModel(tflite_path, num_threads=threads)
    arrays = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    for _ in range(max(warmup, 1)):
        model(*arrays)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.invoke_only()
        times.append(time.perf_counter() - start)
    quartiles = np.percentile(times, [25, 75])
    median = statistics.median(times)
    return {"threads": threads, "repeats": repeats, "audio_seconds": audio_seconds, "median_s": median,
            "min_s": min(times), "max_s": max(times), "iqr_s": float(quartiles[1] - quartiles[0]),
            "rtf": median / audio_seconds, "rtf_min": min(times) / audio_seconds,
            "rtf_max": max(times) / audio_seconds}


def benchmark_inputs(tflite_path, seconds: float, sample_rate: int = 16000, seed: int = 0) -> list:
    """Fixed random inputs for a .tflite: dynamic (-1) non-batch axes become ``seconds * sample_rate`` long (the
    first such axis) and 1 otherwise; static shapes are kept (then ``seconds`` must describe what they hold)."""
    from common.tflite import TFLiteModel

    model = TFLiteModel(tflite_path)
    rng = np.random.default_rng(seed)
    arrays = []
    for detail in model.input_details:
        signature = list(detail.get("shape_signature", detail["shape"]))
        shape, used = [], False
        for axis, dim in enumerate(signature):
            if dim >= 0:
                shape.append(int(dim))
            elif axis == 0:
                shape.append(1)
            elif not used:
                shape.append(int(round(seconds * sample_rate)))
                used = True
            else:
                shape.append(1)
        arrays.append((0.1 * rng.standard_normal(shape)).astype(np.float32))
    return arrays


def benchmark(tflite_path, seconds: float = 4.0, threads: Sequence[int] = (1,), repeats: int = 20,
              sample_rate: int = 16000) -> list:
    """:func:`measure_rtf` for each thread count (0 = all cores) on :func:`benchmark_inputs`."""
    arrays = benchmark_inputs(tflite_path, seconds, sample_rate)
    results = []
    for count in threads:
        count = os.cpu_count() if count == 0 else count
        result = measure_rtf(tflite_path, arrays, seconds, threads=count, repeats=repeats)
        result["file"] = str(tflite_path)
        result["input_shapes"] = [list(a.shape) for a in arrays]
        results.append(result)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.accounting",
                                     description="Size and latency accounting of .tflite files.")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("benchmark", help="real-time factor of a .tflite (median of repeated runs)")
    bench.add_argument("model", type=Path, help=".tflite file")
    bench.add_argument("--seconds", type=float, default=4.0, help="audio seconds one input represents")
    bench.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="thread counts (0 = all cores)")
    bench.add_argument("--repeats", type=int, default=20)
    bench.add_argument("--sample-rate", type=int, default=16000, help="samples per second on dynamic time axes")
    size = commands.add_parser("size", help="raw and gzip bytes of a .tflite")
    size.add_argument("model", type=Path)
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"no such file: {args.model}")
    if args.command == "size":
        print(json.dumps({"file": str(args.model), "tflite_bytes": tflite_bytes(args.model),
                          "tflite_gzip_bytes": gzip_bytes(args.model)}))
        return 0
    for result in benchmark(args.model, args.seconds, args.threads, args.repeats, args.sample_rate):
        print(f"{args.model.name}: threads={result['threads']} input={result['input_shapes']} "
              f"median={1000 * result['median_s']:.2f} ms (min {1000 * result['min_s']:.2f}, max "
              f"{1000 * result['max_s']:.2f}, IQR {1000 * result['iqr_s']:.2f}) for {result['audio_seconds']} s audio"
              f" -> RTF {result['rtf']:.4f} [{result['rtf_min']:.4f}, {result['rtf_max']:.4f}]")
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
