"""Frame-by-frame (10 ms hop) CRN inference: a Keras step model, a streaming .tflite and a latency benchmark.

Every causal layer of the CRN looks at most one frame back (kernel 2 in time), so one hop needs, as state, the
previous input frame of each of the five encoder convolutions and of the five decoder deconvolutions, plus
(h, c) of both LSTM layers (``docs/crn.md#streaming``). The step model takes the
noisy magnitude frame and that state as inputs and returns the enhanced frame and the new state; batch norm
runs with its moving statistics. Its output equals the offline model's on every frame, frame 0 included:
the author's decoder emits an exact zero (no bias) at frame 0 of every transposed convolution (crn.py), which
a zero-initialised state cannot produce (it gives ``w0 x[0] + b``, and the difference would then spread one
frame further through each decoder layer), so the state carries a ``started`` flag (0 on the first hop,
1 afterwards) that gates the decoder's first frame. Only frame 0 depends on that flag; if a caller leaves it
at 1 from the start, frame 0 differs from the offline model (and frames 1-4 by a fading amount).

TFLite (``docs/toolchain.md#keras-2``, ``docs/toolchain.md#tflite-conversion``): the tf_keras LSTM converts to the fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` only without ``return_state`` (with it the converter emits a ``WHILE`` loop,
measured here on TF 2.21). The fused kernel keeps its (h, c) in *variable* tensors that it updates in place;
given ``initial_state`` inputs, those variable tensors are the graph inputs (float) or the quantised copies of
them (int8). :func:`expose_lstm_states` appends these tensors to the graph outputs, so after ``invoke`` the
new (h, c) come out as ordinary outputs (int8 h / int16 c with their scales in int8 mode) and are fed back as
inputs: the state is explicit I/O, as the DTLN / Ambiq streaming exports, and the LSTM stays fused. It also
removes the cell clip of 10 that the converter writes into the fused op (Keras does not clip). In full int8 the
cell state's int16 scale is still calibrated on the converter's clipped float graph, so there the cell state
saturates at the power-of-two range above 10 (a cost of full int8 next to its quantisation noise).
STFT and iSTFT stay outside the .tflite (``docs/toolchain.md#tflite-conversion``) in numpy (``features.py``).

Algorithmic latency: a frame needs its full 20 ms window, and the overlap-add output of a hop is final once the
next frame is in, so output lags input by one window, 20 ms = 320 samples at 16 kHz.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from common.tfkeras import keras, layers, tf
from reproductions.crn.crn import (
    BATCH_NORM,
    KERNEL_SIZE,
    STRIDES,
    StableSoftplus,
    decoder_output_padding,
    encoder_frequencies,
)

SAMPLE_RATE = 16000
HOP_SECONDS = 0.010
WINDOW_SECONDS = 0.020
ALGORITHMIC_LATENCY_MS = 1000 * WINDOW_SECONDS
FUSED_LSTM_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
# Input indices of the fused LSTM kernel's variable state tensors (tflite schema: 18 = output/activation state,
# 19 = cell state).
LSTM_STATE_INPUTS = {"h": 18, "c": 19}


def crn_architecture(offline_model) -> dict:
    """Frequency bins, encoder channels and LSTM layers of a model built by ``crn.build_crn``."""
    names = {layer.name: layer for layer in offline_model.layers}
    channels = []
    while f"encoder{len(channels) + 1}_conv" in names:
        channels.append(int(names[f"encoder{len(channels) + 1}_conv"].filters))
    lstm_layers = 0
    while f"lstm{lstm_layers + 1}" in names:
        lstm_layers += 1
    if not channels or not lstm_layers:
        raise ValueError(
            f"model {offline_model.name!r} is not a CRN built by crn.build_crn"
        )
    frequency_bins = int(offline_model.input_shape[-1])
    sizes = encoder_frequencies(frequency_bins, len(channels))
    return {
        "frequency_bins": frequency_bins,
        "channels": tuple(channels),
        "lstm_layers": lstm_layers,
        "sizes": sizes,
        "units": channels[-1] * sizes[-1],
    }


def state_specs(architecture) -> list:
    """``(name, shape without batch)`` of every state input, in the step model's input order (after the frame)."""
    channels, sizes = architecture["channels"], architecture["sizes"]
    specs = []
    encoder_inputs = (1,) + tuple(channels[:-1])
    for index in range(len(channels)):
        specs.append((f"encoder{index + 1}_state", (1, sizes[index], encoder_inputs[index])))
    for index in range(1, architecture["lstm_layers"] + 1):
        specs.append((f"lstm{index}_h", (architecture["units"],)))
        specs.append((f"lstm{index}_c", (architecture["units"],)))
    for layer_number in range(len(channels), 0, -1):
        specs.append((f"decoder{layer_number}_state", (1, sizes[layer_number], 2 * channels[layer_number - 1])))
    specs.append(("started", (1, 1, 1)))
    return specs


class LstmCellStep(layers.Layer):
    """One LSTM time step from its gate pre-activations ``W x + U h + b`` (Keras' gate order i, f, c, o):
    ``[gates, c] -> [h', c']`` with Keras' LSTM activations (sigmoid gates, tanh cell)."""

    def call(self, inputs):
        gates, cell = inputs
        input_gate, forget_gate, candidate, output_gate = tf.split(gates, 4, axis=-1)
        cell = tf.sigmoid(forget_gate) * cell + tf.sigmoid(input_gate) * tf.tanh(candidate)
        return [tf.sigmoid(output_gate) * tf.tanh(cell), cell]


LSTM_FORMS = ("fused", "dense")


def configured_lstm_form(config) -> str:
    """The step model's LSTM form for the exports, ``export.lstm_form`` of a CRN configuration (default
    ``fused``); ValueError naming the configuration file for any other value."""
    form = config.get("export", {}).get("lstm_form", "fused")
    if form not in LSTM_FORMS:
        raise ValueError(f"{config.get('config_path', 'the CRN configuration')}: export.lstm_form must be one of "
                         f"{list(LSTM_FORMS)}, got {form!r}")
    return form


def build_streaming_crn(offline_model, lstm_state_outputs=True, lstm_form="fused"):
    """Build the one-hop step model and copy the offline model's weights into it.

    Args:
        offline_model: a (trained) model from ``crn.build_crn``.
        lstm_state_outputs: also return the LSTMs' new (h, c) (Keras runner); False for the .tflite graph, whose
            fused LSTM returns them through :func:`expose_lstm_states`.
        lstm_form: ``fused`` (a Keras LSTM layer: one fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op in TFLite) or
            ``dense`` (each LSTM's one step written out: ``[x, h]`` through one ``Dense`` of the stacked input and
            recurrent kernels, then :class:`LstmCellStep`; the same arithmetic, with (h, c) as ordinary outputs).
            A one-step LSTM is a matrix-vector product, and as a ``FULLY_CONNECTED`` op XNNPACK runs it in every
            mode (dynamic-range included), while the fused LSTM op runs on LiteRT's own kernels.

    Returns:
        ``(model, output_names)``: inputs ``noisy_frame (1, 1, F)`` then :func:`state_specs`; outputs
        ``enhanced_frame`` then the new encoder and decoder states (and LSTM states), named in ``output_names``.
    """
    architecture = crn_architecture(offline_model)
    frequency_bins, channels = architecture["frequency_bins"], architecture["channels"]
    sizes, units = architecture["sizes"], architecture["units"]
    frame = keras.Input((1, frequency_bins), batch_size=1, name="noisy_frame")
    states = {name: keras.Input(shape, batch_size=1, name=name) for name, shape in state_specs(architecture)}

    outputs = {}
    x = layers.Reshape((1, frequency_bins, 1), name="add_channel")(frame)
    encoder_activations = []
    for index, width in enumerate(channels, start=1):
        outputs[f"encoder{index}_state"] = x
        window = layers.Concatenate(axis=1, name=f"encoder{index}_window")([states[f"encoder{index}_state"], x])
        x = layers.Conv2D(width, KERNEL_SIZE, strides=STRIDES, padding="valid", name=f"encoder{index}_conv")(window)
        x = layers.BatchNormalization(name=f"encoder{index}_batch_norm", **BATCH_NORM)(x)
        x = layers.ELU(name=f"encoder{index}_elu")(x)
        encoder_activations.append(x)

    if lstm_form not in LSTM_FORMS:
        raise ValueError(f"lstm_form must be one of {LSTM_FORMS}, got {lstm_form!r}")
    if lstm_form == "dense":
        x = layers.Reshape((units,), name="flatten_frequency")(x)
        for index in range(1, architecture["lstm_layers"] + 1):
            joined = layers.Concatenate(name=f"lstm{index}_input_and_state")([x, states[f"lstm{index}_h"]])
            gates = layers.Dense(4 * units, name=f"lstm{index}_gates")(joined)
            x, cell = LstmCellStep(name=f"lstm{index}_cell")([gates, states[f"lstm{index}_c"]])
            outputs[f"lstm{index}_h"], outputs[f"lstm{index}_c"] = x, cell
    else:
        x = layers.Reshape((1, units), name="flatten_frequency")(x)
    for index in range(1, architecture["lstm_layers"] + 1 if lstm_form == "fused" else 1):
        initial = [states[f"lstm{index}_h"], states[f"lstm{index}_c"]]
        lstm = layers.LSTM(units, return_sequences=True, return_state=lstm_state_outputs, name=f"lstm{index}")
        if lstm_state_outputs:
            x, outputs[f"lstm{index}_h"], outputs[f"lstm{index}_c"] = lstm(x, initial_state=initial)
        else:
            x = lstm(x, initial_state=initial)
    x = layers.Reshape((1, sizes[-1], channels[-1]), name="unflatten_frequency")(x)
    x = layers.Concatenate(name="lstm_skip")([x, encoder_activations[-1]])

    decoder_widths = list(channels[:-1][::-1]) + [1]
    for layer_number, width in zip(range(len(channels), 0, -1), decoder_widths):
        outputs[f"decoder{layer_number}_state"] = x
        padding = decoder_output_padding(sizes[layer_number], sizes[layer_number - 1])
        common = dict(strides=STRIDES, padding="valid", output_padding=(0, padding) if padding else None)
        # y[t] = w0 x[t] + w1 x[t-1] + b: the offline kernel's two time taps as two one-frame deconvolutions.
        current = layers.Conv2DTranspose(width, (1, KERNEL_SIZE[1]), name=f"decoder{layer_number}_current", **common)(x)
        previous = layers.Conv2DTranspose(
            width, (1, KERNEL_SIZE[1]), use_bias=False, name=f"decoder{layer_number}_previous", **common
        )(states[f"decoder{layer_number}_state"])
        x = layers.Add(name=f"decoder{layer_number}_sum")([current, previous])
        x = layers.Multiply(name=f"decoder{layer_number}_first_frame")([x, states["started"]])
        x = layers.BatchNormalization(name=f"decoder{layer_number}_batch_norm", **BATCH_NORM)(x)
        if layer_number > 1:
            x = layers.Concatenate(name=f"decoder{layer_number}_skip")([x, encoder_activations[layer_number - 2]])
            x = layers.ELU(name=f"decoder{layer_number}_elu")(x)
    x = StableSoftplus(name="softplus")(x)
    enhanced = layers.Reshape((1, frequency_bins), name="enhanced_frame")(x)

    output_names = ["enhanced_frame"]
    output_names += [name for name, _ in state_specs(architecture) if name in outputs]
    model = keras.Model(
        [frame] + list(states.values()),
        [enhanced] + [outputs[name] for name in output_names[1:]],
        name=f"{offline_model.name}_streaming",
    )
    copy_offline_weights(offline_model, model)
    return model, output_names


def copy_offline_weights(offline_model, streaming_model) -> None:
    """Give the step model the offline model's weights; the decoder kernels are split into their two time taps."""
    offline = {layer.name: layer for layer in offline_model.layers}
    for layer in streaming_model.layers:
        if not layer.weights:
            continue
        name = layer.name
        if name.endswith("_gates"):
            # [x, h] @ [[W], [U]] + b = W x + U h + b: Keras' LSTM weights are (kernel, recurrent kernel, bias).
            kernel, recurrent, bias = offline[name[: -len("_gates")]].get_weights()
            layer.set_weights([np.concatenate([kernel, recurrent], axis=0), bias])
        elif name.endswith("_current") or name.endswith("_previous"):
            source = offline[name.rsplit("_", 1)[0] + "_deconv"]
            kernel, bias = source.get_weights()
            # Keras' transposed conv: full[t] = kernel[0] x[t] + kernel[1] x[t-1] (stride 1 in time).
            layer.set_weights([kernel[0:1], bias] if name.endswith("_current") else [kernel[1:2]])
        else:
            layer.set_weights(offline[name].get_weights())


def initial_state(architecture) -> dict:
    """Zero state (the offline model's causal padding) with ``started`` = 0 for the first hop."""
    return {name: np.zeros((1,) + shape, np.float32) for name, shape in state_specs(architecture)}


class StreamingCRN:
    """Run the Keras step model hop by hop.

    Args:
        offline_model: a model from ``crn.build_crn``.

    Example::

        stream = StreamingCRN(model)
        frames = [stream.step(frame) for frame in magnitude]   # magnitude: (T, 161)
    """

    def __init__(self, offline_model):
        self.architecture = crn_architecture(offline_model)
        self.model, self.output_names = build_streaming_crn(offline_model, lstm_state_outputs=True)
        self.input_names = ["noisy_frame"] + [name for name, _ in state_specs(self.architecture)]
        self._step = tf.function(lambda inputs: self.model(inputs, training=False))
        self.reset()

    def reset(self) -> None:
        self.state = initial_state(self.architecture)

    def step(self, frame) -> np.ndarray:
        """Enhance one magnitude frame ``(F,)``; returns ``(F,)``."""
        frame = np.asarray(frame, np.float32).reshape(1, 1, -1)
        inputs = [tf.constant(frame)] + [tf.constant(self.state[name]) for name in self.input_names[1:]]
        results = [value.numpy() for value in self._step(inputs)]
        for name, value in zip(self.output_names[1:], results[1:]):
            self.state[name] = value
        self.state["started"] = np.ones_like(self.state["started"])
        return results[0][0, 0]

    def process(self, magnitude) -> np.ndarray:
        """Enhance a whole ``(T, F)`` magnitude hop by hop from a fresh state."""
        self.reset()
        return np.stack([self.step(frame) for frame in np.asarray(magnitude, np.float32)])


# ---------------------------------------------------------------------------------------------------- TFLite
def _schema():
    # The flatbuffer tools are not exposed under tf.lite; common.tfkeras (imported above) has loaded TensorFlow.
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    return schema, flatbuffer_utils


def _tensor_name(tensor) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name)


def _name_outputs(model, output_names):
    """Name a converted step model's outputs ``output_names`` (in the Keras order); returns (graph, outputs)."""
    if len(model.subgraphs) != 1:
        raise ValueError(f"expected one subgraph, found {len(model.subgraphs)}")
    graph = model.subgraphs[0]
    outputs = list(graph.outputs)
    # The converter orders the graph outputs as the signature's output_0, output_1, ... (the Keras outputs).
    signature_outputs = {}
    for signature in model.signatureDefs or []:
        for item in signature.outputs:
            key = item.name.decode() if isinstance(item.name, bytes) else item.name
            if re.fullmatch(r"output_\d+", key):
                signature_outputs[int(key.rsplit("_", 1)[1])] = item.tensorIndex
    if len(signature_outputs) == len(output_names):
        outputs = [signature_outputs[index] for index in range(len(output_names))]
    elif len(outputs) != len(output_names):
        raise ValueError(
            f"the .tflite has {len(outputs)} outputs, expected {len(output_names)}"
        )
    for index, name in zip(outputs, output_names):
        graph.tensors[index].name = name.encode()
    return graph, outputs


def name_state_outputs(tflite_bytes: bytes, output_names) -> bytes:
    """Name the outputs of a step model whose LSTM states are ordinary outputs (``lstm_form="dense"``)."""
    _, flatbuffer_utils = _schema()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    graph, outputs = _name_outputs(model, output_names)
    graph.outputs = outputs
    model.signatureDefs = []  # as in expose_lstm_states: the runner uses the plain interpreter API
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def expose_lstm_states(tflite_bytes: bytes, output_names) -> bytes:
    """Name the outputs, append every fused LSTM's state tensors (h, c) to the graph outputs, remove the cell clip.

    Args:
        tflite_bytes: a converted step model (``build_streaming_crn(..., lstm_state_outputs=False)``).
        output_names: the Keras output names, in order.

    Returns:
        The edited flatbuffer; outputs are ``output_names`` then ``lstm<k>_h``, ``lstm<k>_c`` per fused LSTM in
        execution order. Raises ValueError when the graph has no fused LSTM.
    """
    schema, flatbuffer_utils = _schema()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    graph, outputs = _name_outputs(model, output_names)
    lstm_number = 0
    for operator in graph.operators:
        code = model.operatorCodes[operator.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin != schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM:
            continue
        lstm_number += 1
        # The converter's Keras-LSTM fusion writes cell_clip = 10 (measured on TF 2.21: a trained mini CRN's cell
        # state reaches 35 in Keras and stuck at 10.0 in the .tflite); Keras does not clip, so neither do we.
        operator.builtinOptions.cellClip = 0.0
        for kind, position in LSTM_STATE_INPUTS.items():
            tensor_index = int(operator.inputs[position])
            if tensor_index < 0 or not graph.tensors[tensor_index].isVariable:
                raise ValueError(
                    f"LSTM {lstm_number} state input {position} is not a variable tensor"
                )
            outputs.append(tensor_index)
            output_names = list(output_names) + [f"lstm{lstm_number}_{kind}_out"]
            if tensor_index not in graph.inputs:
                graph.tensors[tensor_index].name = f"lstm{lstm_number}_{kind}_out".encode()
    if lstm_number == 0:
        raise ValueError(f"no {FUSED_LSTM_OP} in the converted graph")
    graph.outputs = outputs
    # The signature runner would not see the appended outputs; the plain interpreter API is used instead.
    model.signatureDefs = []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def lstm_cell_clips(path) -> list:
    """``cell_clip`` of every fused LSTM of a .tflite, in execution order (0 = no clipping)."""
    _, flatbuffer_utils = _schema()
    model = flatbuffer_utils.read_model(str(path))
    return [float(op.builtinOptions.cellClip) for graph in model.subgraphs for op in graph.operators
            if type(op.builtinOptions).__name__ == "UnidirectionalSequenceLSTMOptionsT"]


def calibration_inputs(offline_model, magnitudes, max_hops=400, seed=0) -> list:
    """Step-model inputs (frame + state) seen while streaming ``magnitudes``, for int8 calibration."""
    stream = StreamingCRN(offline_model)
    rng = np.random.default_rng(seed)
    hops = sum(len(m) for m in magnitudes)
    keep_probability = min(1.0, max_hops / max(hops, 1))
    samples = []
    for magnitude in magnitudes:
        stream.reset()
        for frame in np.asarray(magnitude, np.float32):
            record = rng.random() < keep_probability or not samples
            if record:
                inputs = [frame.reshape(1, 1, -1)] + [stream.state[name].copy() for name in stream.input_names[1:]]
            stream.step(frame)
            if record:
                samples.append(inputs)
    return samples


def export_streaming_tflite(offline_model, path, mode="float32", calibration=None, lstm_form="fused") -> Path:
    """Write the streaming step model as .tflite with explicit state I/O (fused LSTMs, or dense LSTM steps).

    Args:
        offline_model: a trained model from ``crn.build_crn``.
        path: output file.
        mode: ``float32``, ``dynamic`` (int8 weights, float activations), ``int8`` (full integer kernels,
            float I/O around them so the runner needs no per-tensor scales for the conv states) or ``selective``
            (:func:`export_selective_tflite`: int8 convolutions, dynamic-range dense LSTM steps, float output layer).
        calibration: for ``int8`` and ``selective``: list of step-model input lists in Keras input order (:func:`calibration_inputs`);
            ``common.tflite`` feeds them in the converted graph's order.
        lstm_form: ``fused`` or ``dense`` (:func:`build_streaming_crn`).
    """
    from common.tflite import export_tflite

    if mode == "selective":
        return export_selective_tflite(offline_model, path, calibration)[0]
    model, output_names = build_streaming_crn(offline_model, lstm_state_outputs=lstm_form == "dense",
                                              lstm_form=lstm_form)
    path = Path(path)
    if mode == "int8" and not calibration:
        raise ValueError(f"int8 export of {path.name} needs calibration inputs")
    representative = calibration if mode == "int8" else None
    export_tflite(model, path, mode=mode, representative_data=representative, int8_io=False)
    if lstm_form == "dense":
        path.write_bytes(name_state_outputs(path.read_bytes(), output_names))
    else:
        path.write_bytes(expose_lstm_states(path.read_bytes(), output_names))
    return path


# The ops of the dense LSTM steps (build_streaming_crn(lstm_form="dense")): their output tensors' names contain one of
# these layer names.
LSTM_STEP_LAYER = re.compile(r"lstm\d+_(input_and_state|gates|cell)\b")
# The output layer (last deconvolution, its batch norm and the softplus): the quantization debugger ranks its ops'
# errors first, and in int8 the softplus' ABS/EXP/LOG run outside XNNPACK anyway.
OUTPUT_LAYER = re.compile(r"decoder1_|softplus|enhanced_frame")


def quantization_error_table(offline_model, calibration) -> list:
    """TFLite's quantization debugger on the full-int8 dense step model: per-layer error rows
    (:func:`common.tflite.layer_errors`, largest error in quantization steps first), each with ``lstm`` True for
    the ops of an LSTM step."""
    from common.tflite import layer_errors, quantization_debugger

    model, _ = build_streaming_crn(offline_model, lstm_state_outputs=True, lstm_form="dense")
    debugger = quantization_debugger(model, calibration)
    debugger.run()
    rows = layer_errors(debugger)
    for row in rows:
        row["lstm"] = bool(LSTM_STEP_LAYER.search(row["tensor_name"]))
        row["output_layer"] = bool(OUTPUT_LAYER.search(row["tensor_name"]))
    return rows


def export_selective_tflite(offline_model, path, calibration, error_table=None) -> tuple:
    """Selective quantization of the dense step model: the encoder and decoder convolutions in int8, the LSTM steps
    with float activations and int8 dynamic-range weights, the output layer in float.

    The quantization debugger's error table (:func:`quantization_error_table`, computed here unless given) names
    the LSTM steps' and the output layer's ops; they are denylisted (kept float) in the int8 conversion, and the
    LSTM weight matrices are
    then stored as int8 with per-row scales (:func:`common.tflite.quantize_float_weights`), so a hop still reads
    the LSTM weights as int8 and the cell and gate arithmetic stays float. Returns ``(path, error_table)``.
    """
    from common.tflite import quantization_debugger, quantize_float_weights

    if not calibration:
        raise ValueError(f"selective export of {Path(path).name} needs calibration "
                         "inputs")
    table = error_table if error_table is not None else quantization_error_table(offline_model, calibration)
    float_nodes = [row["tensor_name"] for row in table if row["lstm"] or row["output_layer"]]
    if not float_nodes:
        raise ValueError("the quantization debugger reported no LSTM step op")
    model, output_names = build_streaming_crn(offline_model, lstm_state_outputs=True, lstm_form="dense")
    flatbuffer = quantization_debugger(model, calibration, float_nodes=float_nodes).get_nondebug_quantized_model()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(name_state_outputs(quantize_float_weights(flatbuffer), output_names))
    return path, table


class StreamingTFLite:
    """Run a streaming .tflite hop by hop, feeding the state outputs back as inputs.

    Args:
        path: a file written by :func:`export_streaming_tflite`.
        num_threads: interpreter threads (1 for the real-time figure).
    """

    def __init__(self, path, num_threads=1):
        from common.tflite import TFLiteModel, tensor_base_name

        self.model = TFLiteModel(path, num_threads=num_threads)
        self.input_names = [tensor_base_name(detail["name"]) for detail in self.model.input_details]
        self.output_names = [tensor_base_name(detail["name"]) for detail in self.model.output_details]
        self.shapes = {name: tuple(d["shape"]) for name, d in zip(self.input_names, self.model.input_details)}
        # Which output feeds which input on the next hop.
        self.feedback = {}
        for name in self.input_names:
            if name == "noisy_frame" or name == "started":
                continue
            # An LSTM state output is either the renamed quantised copy ("lstm1_c_out", int8) or, in float graphs,
            # the input tensor itself, updated in place by the fused kernel (same name as the input).
            source = name + "_out" if name + "_out" in self.output_names else name
            if source not in self.output_names:
                raise ValueError(f"{path} has no output for state {name}")
            self.feedback[name] = self.output_names.index(source)
        self.reset()


    def reset(self) -> None:
        self.state = {name: np.zeros(shape, np.float32) for name, shape in self.shapes.items() if name != "noisy_frame"}

    def step(self, frame) -> np.ndarray:
        self.state["noisy_frame"] = np.asarray(frame, np.float32).reshape(self.shapes["noisy_frame"])
        results = self.model(*[self.state[name] for name in self.input_names])
        for name, index in self.feedback.items():
            self.state[name] = results[index].reshape(self.shapes[name])
        self.state["started"] = np.ones(self.shapes["started"], np.float32)
        return results[self.output_names.index("enhanced_frame")].reshape(-1)

    def process(self, magnitude) -> np.ndarray:
        self.reset()
        return np.stack([self.step(frame) for frame in np.asarray(magnitude, np.float32)])


def benchmark_streaming(path, threads=1, hops=300, warmup=20, seed=0) -> dict:
    """Per-hop latency of a streaming .tflite on ``threads`` threads: the whole hop (state in, invoke, state out)
    and the interpreter's ``invoke`` alone; compared with the 10 ms hop budget."""
    runner = StreamingTFLite(path, num_threads=threads)
    rng = np.random.default_rng(seed)
    frames = np.abs(rng.standard_normal((hops + warmup, runner.shapes["noisy_frame"][-1]))).astype(np.float32)
    hop_times, invoke_times = [], []
    for index, frame in enumerate(frames):
        start = time.perf_counter()
        runner.step(frame)
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        runner.model.invoke_only()
        invoke = time.perf_counter() - start
        if index >= warmup:
            hop_times.append(elapsed)
            invoke_times.append(invoke)
    median = statistics.median(hop_times)
    return {
        "file": str(path),
        "threads": threads,
        "hops": hops,
        "hop_ms_median": 1000 * median,
        "hop_ms_p95": 1000 * float(np.percentile(hop_times, 95)),
        "invoke_ms_median": 1000 * statistics.median(invoke_times),
        "budget_ms": 1000 * HOP_SECONDS,
        "real_time_factor": median / HOP_SECONDS,
        "algorithmic_latency_ms": ALGORITHMIC_LATENCY_MS,
    }


def format_benchmark(result: dict) -> str:
    verdict = "within" if result["hop_ms_median"] <= result["budget_ms"] else "OVER"
    return (
        f"{Path(result['file']).name}: {result['hop_ms_median']:.3f} ms per 10 ms hop (median of {result['hops']}, "
        f"p95 {result['hop_ms_p95']:.3f} ms, invoke alone {result['invoke_ms_median']:.3f} ms) on "
        f"{result['threads']} thread(s): {verdict} the {result['budget_ms']:.0f} ms budget, real-time factor "
        f"{result['real_time_factor']:.3f}; algorithmic latency {result['algorithmic_latency_ms']:.0f} ms "
        "(one 20 ms window)"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reproductions.crn.streaming",
        description="Per-hop latency of streaming CRN .tflite files against the 10 ms hop budget.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("benchmark", help="time a streaming .tflite hop by hop")
    bench.add_argument("models", type=Path, nargs="+", help="streaming .tflite files (from the export stage)")
    bench.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    bench.add_argument("--hops", type=int, default=300, help="timed hops (default 300)")
    bench.add_argument("--json", action="store_true", help="print JSON lines instead of sentences")
    args = parser.parse_args(argv)
    for model in args.models:
        if not model.is_file():
            print(f"error: no such file: {model}", file=sys.stderr)
            return 2
        result = benchmark_streaming(model, threads=args.threads, hops=args.hops)
        print(json.dumps(result) if args.json else format_benchmark(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
