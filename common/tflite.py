"""TFLite export (float32, dynamic range, full int8, 16x8) and a LiteRT runner.

Conversion uses ``tf.lite.TFLiteConverter`` (TF 2.21); running uses ``ai_edge_litert.interpreter.Interpreter``
(``tf.lite.Interpreter`` is deprecated, ``docs/toolchain.md#litert``) with a fallback to
``tf.lite.Interpreter`` only when ``ai_edge_litert`` cannot be imported.

Static shapes: ``input_shapes`` fixes every input's shape (batch included) through a concrete function, so Keras 2
LSTMs become fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` ops (``docs/toolchain.md#keras-2``) and XNNPACK sees static tensors.

Signal processing stays outside the int8 graph (``docs/toolchain.md#tflite-conversion``: STFT/iSTFT, FQSE's
splitter/combiner).  The pattern::

    features = stft_and_magnitude(waveform)            # float, numpy (common.features)
    mask = TFLiteModel("model_int8.tflite")(features)  # int8 graph, (de)quantised by the wrapper
    enhanced = istft(mask * spectrum)                  # float, numpy

i.e. the Keras model exported to .tflite takes features and returns features; the recipe's pipeline wraps it with
float pre/post-processing, and every "int8" number is measured by running the .tflite through that pipeline.
"""
from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Sequence

import numpy as np

MODES = ("float32", "dynamic", "int8", "int16x8")


def _representative(data, inputs_count: int, order: Sequence[int] | None = None):
    """Normalise ``representative_data`` (callable returning an iterable, or an iterable) to TFLite's generator of
    lists of float32 arrays, each with a leading batch axis; ``order[i]`` is the Keras input fed to the converted
    graph's input ``i``."""
    source = data() if callable(data) else data

    def generator():
        for item in source:
            arrays = list(item) if isinstance(item, (list, tuple)) else [item]
            if len(arrays) != inputs_count:
                raise ValueError(f"representative sample has {len(arrays)} arrays, model has "
                                 f"{inputs_count} inputs")
            if order is not None:
                arrays = [arrays[index] for index in order]
            yield [np.asarray(a, np.float32) for a in arrays]

    return generator


def tensor_base_name(name: str) -> str:
    """A .tflite input/output name without ``:0`` and the converter's ``serving_default_`` / ``serve_`` prefix, i.e.
    the Keras input's name."""
    name = name.split(":")[0]
    for prefix in ("serving_default_", "serve_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _converted_input_order(concrete, model) -> list | None:
    """Keras input index of each input of the converted graph, or ``None`` when it keeps the Keras order.

    The calibrator feeds a representative sample's arrays by the converted graph's input index, and for graphs
    with many inputs (CRN's streaming step: frame + 15 states) the converter orders them differently from
    ``model.inputs``. The float conversion of the same concrete function has the order the calibrator uses.
    """
    from common.tfkeras import tf

    interpreter = _interpreter_class()(model_content=tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete], model).convert())
    converted = [tensor_base_name(detail["name"]) for detail in interpreter.get_input_details()]
    keras_names = [tensor.name.split(":")[0] for tensor in model.inputs]
    if sorted(converted) != sorted(keras_names):
        raise ValueError(f"converted inputs {converted} do not match the model's {keras_names}")
    order = [keras_names.index(name) for name in converted]
    return None if order == list(range(len(order))) else order


def export_tflite(model, path, mode: str = "float32", representative_data=None,
                  input_shapes: Sequence[Sequence[int]] | None = None, int8_io: bool = True,
                  allow_float_fallback: bool = False, representative_steps: int | None = None) -> Path:
    """Convert a tf_keras model to a .tflite file.

    Args:
        model: tf_keras model (QAT models included).
        path: output file (parents created).
        mode: ``float32`` | ``dynamic`` (int8 weights, float activations) | ``int8`` (full integer) |
            ``int16x8`` (int16 activations, int8 weights; recommended for audio,
            ``docs/toolchain.md#tflite-conversion``).
        representative_data: calibration samples for ``int8``/``int16x8``: an iterable, or a callable returning
            one, of arrays (single input) or lists of arrays in ``model.inputs`` order (reordered here to the
            converted graph's input order), batch axis included.  QAT models in
            ``int8`` mode may omit it.
        input_shapes: static shapes (batch included) for every input, e.g. ``[(1, 100, 161)]``; needed for
            fused LSTMs.  ``None`` keeps the model's shapes (batch fixed to 1).
        int8_io: in ``int8`` mode, int8 input and output tensors (else float32 I/O around the int8 graph);
            in ``int16x8`` mode, int16 I/O.
        allow_float_fallback: let ops without an integer kernel stay float (else conversion fails on them).
        representative_steps: use only the first N representative samples.
    Returns:
        The path written.
    """
    from common.tfkeras import tf

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    converter, concrete, static = _converter(model, input_shapes)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode in ("int8", "int16x8"):
        if representative_data is not None:
            order = _converted_input_order(concrete, model) if len(model.inputs) > 1 else None
            generator = _representative(representative_data, len(model.inputs), order)
            if representative_steps is not None:
                full = generator
                generator = lambda: itertools.islice(full(), representative_steps)  # noqa: E731
            converter.representative_dataset = generator
        elif mode == "int16x8" or not _is_qat(model):
            raise ValueError(f"mode {mode!r} needs representative_data to calibrate {path.name}")
        if mode == "int8":
            ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io_type = tf.int8
        else:
            ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            io_type = tf.int16
        if allow_float_fallback:
            ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        converter.target_spec.supported_ops = ops
        if int8_io:
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type
    if not static:
        converter.experimental_new_converter = True
    path.write_bytes(converter.convert())
    return path


def _converter(model, input_shapes=None):
    """``(converter, concrete function, static)`` for ``model`` traced at ``input_shapes`` (batch 1 by default)."""
    from common.tfkeras import tf

    shapes = input_shapes or [(1,) + tuple(shape[1:]) for shape in
                              ([model.input_shape] if len(model.inputs) == 1 else model.input_shape)]
    if len(shapes) != len(model.inputs):
        raise ValueError(f"{len(shapes)} input_shapes given for {len(model.inputs)} model inputs")
    static = all(None not in tuple(shape) for shape in shapes)
    signature = [tf.TensorSpec(shape=tuple(shape), dtype=tf.float32, name=tensor.name.split(":")[0])
                 for shape, tensor in zip(shapes, model.inputs)]

    @tf.function(input_signature=signature)
    def serve(*inputs):
        return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    concrete = serve.get_concrete_function()
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model), concrete, static


def quantization_debugger(model, representative_data, input_shapes=None, float_nodes=()):
    """TFLite's ``QuantizationDebugger`` on the full-int8 conversion of ``model`` (float32 I/O around the graph).

    ``representative_data`` as for :func:`export_tflite` (Keras input order); ``float_nodes``: tensor names of the
    ops to leave in float (``QuantizationDebugOptions.denylisted_nodes``), the selective quantization.
    ``debugger.run()`` then compares every quantized op's output with the float one on that data
    (:func:`layer_errors`); ``debugger.get_nondebug_quantized_model()`` is the selectively quantized flatbuffer.
    """
    from common.tfkeras import tf

    converter, concrete, _ = _converter(model, input_shapes)
    order = _converted_input_order(concrete, model) if len(model.inputs) > 1 else None
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(representative_data, len(model.inputs), order)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_nodes) or None)
    return tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=_representative(representative_data, len(model.inputs), order),
        debug_options=options)


def layer_errors(debugger) -> list:
    """Per-layer rows of a run ``QuantizationDebugger``: ``op_name``, ``tensor_name``, ``rmse_over_scale`` (the
    root-mean-square error of the op's int8 output against float, in quantization steps), ``mean_squared_error``,
    ``max_abs_error``, ``scale``; largest ``rmse_over_scale`` first."""
    import csv
    import io

    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    rows = []
    for record in csv.DictReader(io.StringIO(buffer.getvalue())):
        scale = float(record["scale"])
        mse = float(record["mean_squared_error"])
        rows.append({"op_name": record["op_name"], "tensor_name": record["tensor_name"],
                     "mean_squared_error": mse, "max_abs_error": float(record["max_abs_error"]), "scale": scale,
                     "rmse_over_scale": float(np.sqrt(mse) / scale) if scale > 0 else float("nan")})
    return sorted(rows, key=lambda row: -np.nan_to_num(row["rmse_over_scale"], nan=-1.0))


def quantize_float_weights(tflite_bytes: bytes, ops=("FULLY_CONNECTED",)) -> bytes:
    """Dynamic-range weights for the float ``ops`` of a flatbuffer: each constant float weight matrix becomes int8
    with one symmetric scale per output row, and the op quantizes its float input on the fly (the converter's
    dynamic-range form), so a selectively quantized graph reads its float layers' weights as int8.

    Raises:
        ValueError: none of ``ops`` has a float constant weight to quantize.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    wanted = {getattr(schema.BuiltinOperator, name) for name in ops}
    quantized = 0
    for graph in model.subgraphs:
        for operator in graph.operators:
            code = model.operatorCodes[operator.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) not in wanted:
                continue
            activation = graph.tensors[operator.inputs[0]]
            weights = graph.tensors[operator.inputs[1]]
            data = model.buffers[weights.buffer].data
            if activation.type != schema.TensorType.FLOAT32 or weights.type != schema.TensorType.FLOAT32 \
                    or data is None or len(data) == 0:
                continue
            matrix = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.float32).reshape(weights.shape)
            scales = np.maximum(np.abs(matrix.reshape(matrix.shape[0], -1)).max(axis=1), 1e-12) / 127.0
            values = np.clip(np.round(matrix / scales.reshape((-1,) + (1,) * (matrix.ndim - 1))), -127, 127)
            model.buffers[weights.buffer].data = np.frombuffer(values.astype(np.int8).tobytes(), np.uint8)
            weights.type = schema.TensorType.INT8
            parameters = schema.QuantizationParametersT()
            parameters.scale = scales.astype(np.float32).tolist()
            parameters.zeroPoint = [0] * len(scales)
            parameters.quantizedDimension = 0
            weights.quantization = parameters
            if hasattr(operator.builtinOptions, "asymmetricQuantizeInputs"):
                operator.builtinOptions.asymmetricQuantizeInputs = True
            quantized += 1
    if not quantized:
        raise ValueError(f"no float {'/'.join(ops)} weights to quantize in this flatbuffer")
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _is_qat(model) -> bool:
    return any(type(layer).__name__.startswith("Quantize") for layer in model.layers)


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # LiteRT missing: TF's deprecated interpreter still works on TF 2.21
        from common.tfkeras import tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


def _signature_output_order(interpreter) -> list | None:
    """Tensor indices of the outputs in the exported function's order (``output_0``, ``output_1``, ...).

    ``get_output_details()`` lists outputs by tensor index, which for a multi-head graph need not be the model's
    order: TF-GridNet PL's two heads came out as (output_1, output_0), so ``outputs[-1]`` was the 10-dB head, not the
    clean estimate. None when the file has no single signature (the tensor order is then all there is).
    """
    try:
        signatures = interpreter._get_full_signature_list()
    except AttributeError:
        return None
    if len(signatures) != 1:
        return None
    outputs = next(iter(signatures.values()))["outputs"]

    def key(name):
        match = re.fullmatch(r"(.*?)(\d+)", name)
        return (match.group(1), int(match.group(2))) if match else (name, -1)

    order = [outputs[name] for name in sorted(outputs, key=key)]
    return order if len(order) == len(interpreter.get_output_details()) else None


class TFLiteModel:
    """Run a .tflite file: float32 numpy in, float32 numpy out, int8/int16 (de)quantisation handled.

    Args:
        path: the .tflite file.
        num_threads: interpreter threads (1 = single-core latency).
    """

    def __init__(self, path, num_threads: int = 1):
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"no .tflite file at {self.path}")
        self.num_threads = int(num_threads)
        self.interpreter = _interpreter_class()(model_path=str(self.path), num_threads=self.num_threads)
        try:
            self.interpreter.allocate_tensors()
        except RuntimeError as error:
            # A graph with a free length can fail to prepare at its placeholder shape (XNNPACK, strided int8 convs):
            # it is then allocated at the first call's shapes instead.
            if not any(-1 in tuple(d.get("shape_signature", ())) for d in self.interpreter.get_input_details()):
                raise ValueError(f"{self.path} cannot be prepared: {error}") from error
        self._shapes = [tuple(d["shape"]) for d in self.interpreter.get_input_details()]
        self._output_order = _signature_output_order(self.interpreter)

    @property
    def input_details(self) -> list:
        return self.interpreter.get_input_details()

    @property
    def output_details(self) -> list:
        """Output details in the order the exported function returned them (Keras' order), not tensor order."""
        details = self.interpreter.get_output_details()
        if self._output_order is None:
            return details
        by_index = {detail["index"]: detail for detail in details}
        return [by_index[index] for index in self._output_order]

    @property
    def input_dtypes(self) -> list:
        return [np.dtype(d["dtype"]) for d in self.input_details]

    @property
    def output_dtypes(self) -> list:
        return [np.dtype(d["dtype"]) for d in self.output_details]

    def op_names(self) -> list:
        """Names of the graph's operators in execution order, e.g. ``UNIDIRECTIONAL_SEQUENCE_LSTM``."""
        return [op["op_name"] for op in self.interpreter._get_ops_details()]

    @staticmethod
    def _quantize(array, detail):
        dtype = np.dtype(detail["dtype"])
        if dtype == np.float32:
            return np.asarray(array, np.float32)
        scale, zero_point = detail["quantization"]
        if scale == 0:
            raise ValueError(f"input {detail['name']} is {dtype} without a quantisation scale")
        info = np.iinfo(dtype)
        return np.clip(np.round(np.asarray(array, np.float64) / scale + zero_point), info.min, info.max).astype(dtype)

    @staticmethod
    def _dequantize(array, detail):
        if np.dtype(detail["dtype"]) == np.float32:
            return np.asarray(array, np.float32)
        scale, zero_point = detail["quantization"]
        return ((array.astype(np.float64) - zero_point) * scale).astype(np.float32)

    def _resize(self, arrays):
        shapes = [tuple(a.shape) for a in arrays]
        if shapes == self._shapes:
            return
        for index, (detail, shape) in enumerate(zip(self.input_details, shapes)):
            if tuple(detail["shape"]) != shape:
                try:
                    self.interpreter.resize_tensor_input(detail["index"], list(shape), strict=False)
                except (ValueError, RuntimeError) as error:
                    raise ValueError(f"{self.path.name} cannot take input {index} of shape {shape} "
                                     f"(exported shape {tuple(detail['shape'])}): {error}") from error
        try:
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as first_error:
            # XNNPACK cannot always re-prepare an allocated graph for new shapes ("failed to reshape"); a fresh
            # interpreter resized before its first allocation can.
            try:
                self.interpreter = _interpreter_class()(model_path=str(self.path), num_threads=self.num_threads)
                for detail, shape in zip(self.interpreter.get_input_details(), shapes):
                    self.interpreter.resize_tensor_input(detail["index"], list(shape), strict=False)
                self.interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as error:
                raise ValueError(f"{self.path.name} was exported with static shapes {self._shapes}; "
                                 f"cannot resize to {shapes}: {first_error}") from error
        self._shapes = shapes

    def __call__(self, *inputs):
        """Run once; returns one float32 array, or a list when the model has several outputs.

        Every call starts from zeroed variable tensors: a fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (or
        ``BIDIRECTIONAL_SEQUENCE_LSTM``) keeps its hidden and cell state in variable tensors that it overwrites with
        the final state of the sequence, so without the reset a call's LSTMs would start from the previous call's
        last state instead of the zeros Keras uses (streaming models pass their state as explicit inputs).
        """
        details = self.input_details
        if len(inputs) != len(details):
            raise ValueError(f"{self.path.name} takes {len(details)} inputs, got {len(inputs)}")
        arrays = [np.asarray(x) for x in inputs]
        self._resize(arrays)
        self.interpreter.reset_all_variables()
        for array, detail in zip(arrays, self.input_details):
            self.interpreter.set_tensor(detail["index"], self._quantize(array, detail))
        self.interpreter.invoke()
        outputs = [self._dequantize(self.interpreter.get_tensor(d["index"]), d) for d in self.output_details]
        return outputs[0] if len(outputs) == 1 else outputs

    def invoke_only(self):
        """Re-run on the tensors already set (for latency measurement without (de)quantisation cost)."""
        self.interpreter.invoke()


def run_in_chunks(model: TFLiteModel, signal: np.ndarray, chunk: int, axis: int = 1) -> np.ndarray:
    """Run a static-shape model over a longer input by consecutive non-overlapping chunks along ``axis`` (the last
    chunk zero-padded, the padding cut from the output); for models without cross-chunk state only."""
    length = signal.shape[axis]
    pieces = []
    for start in range(0, length, chunk):
        part = np.take(signal, range(start, min(start + chunk, length)), axis=axis)
        valid = part.shape[axis]
        if valid < chunk:
            pad = [(0, 0)] * signal.ndim
            pad[axis] = (0, chunk - valid)
            part = np.pad(part, pad)
        out = model(part)
        pieces.append(np.take(out, range(valid), axis=axis))
    return np.concatenate(pieces, axis=axis)


__all__ = ["export_tflite", "TFLiteModel", "run_in_chunks", "MODES", "quantization_debugger", "layer_errors",
           "quantize_float_weights"]
