"""The same float graph in ONNX Runtime: tf2onnx export of the tf_keras model, timed beside LiteRT.

tf2onnx 1.17.0 (the last release) converts tf_keras 2.21 models under TF 2.21 / numpy 2.4 through
``tf2onnx.convert.from_keras``; it is an optional dependency (``pip install tf2onnx==1.17.0``, which pulls ``onnx``).
When it is missing or a graph does not convert, the comparison is reported as unavailable with the reason.
One tf2onnx defect is repaired after conversion: a transposed convolution with ``output_padding`` (CRN's decoder)
comes out with negative pads, which ONNX Runtime rejects; they are rewritten as the equivalent ``output_padding``.

Timing is done on the core graph alone (the same tensors LiteRT gets), ``intra_op_num_threads`` set to the thread
count and ``inter_op_num_threads`` to 1, sequential execution, all graph optimisations on (ONNX Runtime's default
for users), so the ratios compare two runtimes on identical work.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from benchmarks.timing import time_callable

# opset 17 is the newest tf2onnx 1.17 targets by default and has every op these models use (LayerNormalization
# is decomposed either way).
ONNX_OPSET = 17


def onnx_available() -> tuple[bool, str]:
    """Whether tf2onnx and onnxruntime import, with the reason when not."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as error:
        return False, f"onnxruntime not installed ({error})"
    try:
        import tf2onnx  # noqa: F401
    except ImportError as error:
        return False, f"tf2onnx not installed ({error}); pip install tf2onnx==1.17.0"
    return True, ""


def export_onnx(model, path, input_shapes) -> Path:
    """Convert a tf_keras model to ONNX with static ``input_shapes`` (batch included); returns the path.

    Raises:
        ValueError: the converter failed (the message names the model and tf2onnx's error).
    """
    from common.tfkeras import tf
    import onnx
    import tf2onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = tuple(tf.TensorSpec(tuple(shape), tf.float32, name=f"input_{index}")
                      for index, shape in enumerate(input_shapes))
    try:
        model_proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=ONNX_OPSET)
    except Exception as error:  # tf2onnx raises bare Exceptions, ValueErrors and KeyErrors for unsupported ops
        raise ValueError(f"tf2onnx could not convert {model.name!r}: {type(error).__name__}: "
                         f"{str(error)[:400]}") from error
    move_negative_transpose_pads_to_output_padding(model_proto)
    onnx.save(model_proto, str(path))
    return path


def move_negative_transpose_pads_to_output_padding(model_proto) -> int:
    """Rewrite tf2onnx's negative ``ConvTranspose`` end pads as ``output_padding``, in place; returns the count.

    A Keras ``Conv2DTranspose`` with ``output_padding`` (CRN's decoder: 161 = 2 x 79 + 3 + 1 bins) is a TF
    ``Conv2DBackpropInput`` whose output is one column longer than the full transposed convolution. With static
    shapes, tf2onnx 1.17 turns that into ``pads`` with a negative end value, which the ONNX spec forbids (ONNX
    Runtime refuses to load the file: "Attribute pads must not contain negative values"). ONNX's ``output_padding``
    adds the same zero-contribution rows at the end of an axis (only the bias lands there, as in TF), so a
    negative end pad ``-k`` is exactly ``output_padding = k`` with end pad 0.

    Raises:
        ValueError: a negative *start* pad, which ``output_padding`` cannot express (the node is named).
    """
    from onnx import helper

    rewritten = 0
    for node in model_proto.graph.node:
        if node.op_type != "ConvTranspose":
            continue
        attributes = {attribute.name: attribute for attribute in node.attribute}
        if "pads" not in attributes:
            continue
        pads = list(attributes["pads"].ints)
        if min(pads, default=0) >= 0:
            continue
        spatial = len(pads) // 2
        starts, ends = pads[:spatial], pads[spatial:]
        if min(starts) < 0:
            raise ValueError(f"ConvTranspose {node.name!r} has negative start pads {starts} "
                             "(tf2onnx output); ONNX output_padding only extends the end of an axis")
        output_padding = list(attributes["output_padding"].ints) if "output_padding" in attributes \
            else [0] * spatial
        output_padding = [extra + max(-end, 0) for extra, end in zip(output_padding, ends)]
        new_pads = starts + [max(end, 0) for end in ends]
        for name in ("pads", "output_padding"):
            if name in attributes:
                node.attribute.remove(attributes[name])
        node.attribute.extend([helper.make_attribute("pads", new_pads),
                               helper.make_attribute("output_padding", output_padding)])
        rewritten += 1
    return rewritten


class OnnxModel:
    """An ONNX Runtime CPU session with a fixed thread count; ``__call__(*arrays)`` returns the outputs."""

    def __init__(self, path, threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads) if threads else (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [item.name for item in self.session.get_inputs()]

    def __call__(self, *arrays):
        feeds = {name: np.asarray(array, np.float32) for name, array in zip(self.input_names, arrays)}
        outputs = self.session.run(None, feeds)
        return outputs[0] if len(outputs) == 1 else outputs


def time_onnx(path, inputs, threads: int, repeats: int, warmup: int = 2) -> dict:
    model = OnnxModel(path, threads)
    return time_callable(lambda: model(*inputs), repeats=repeats, warmup=warmup)


# CPU flags of the int8 dot-product instructions ONNX Runtime's U8S8 kernels use without 16-bit saturation.
VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}


def has_vnni(flags) -> bool:
    """Whether the CPU flags include an int8 dot-product instruction set (VNNI or AMX-INT8)."""
    return bool(VNNI_FLAGS & set(flags))


def quantize_int8(float_path, path, calibration) -> Path:
    """ONNX Runtime's static int8 quantisation (QDQ format) of ``float_path``, calibrated on ``calibration``.

    ``calibration``: a list of input lists (the core tensors, in the model's input order), the same audio the
    LiteRT int8 files are calibrated on. Activations uint8 with int8 per-channel weights (U8S8, ONNX Runtime's
    recommended form for x86 CPUs), MinMax calibration as the TFLite converter's. On a CPU without VNNI int8 dot
    products (AVX2 only) the weights are quantised to 7 bits (``reduce_range``), because ONNX Runtime's U8S8
    kernels there add pairs of products in 16 bits, which saturate with full-range weights.

    Raises:
        ValueError: no calibration inputs, or an input list of the wrong length (the file is named).
    """
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, \
        quantize_static

    float_path, path = Path(float_path), Path(path)
    names = [item.name for item in onnxruntime.InferenceSession(
        str(float_path), providers=["CPUExecutionProvider"]).get_inputs()]
    if not calibration:
        raise ValueError(f"no calibration inputs to quantise {float_path.name}")
    feeds = []
    for arrays in calibration:
        if len(arrays) != len(names):
            raise ValueError(f"{float_path.name} has inputs {names}, a calibration sample has "
                             f"{len(arrays)} arrays")
        feeds.append({name: np.asarray(array, np.float32) for name, array in zip(names, arrays)})

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(feeds)

        def get_next(self):
            return next(self.items, None)

    from common.training import cpu_flags

    path.parent.mkdir(parents=True, exist_ok=True)
    quantize_static(str(float_path), str(path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method=CalibrationMethod.MinMax, reduce_range=not has_vnni(cpu_flags()))
    return path
