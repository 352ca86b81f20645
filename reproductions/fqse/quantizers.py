"""The quantizers of FQSE (Cohen, Habi, Netzer, Interspeech 2023) as TFMOT ``Quantizer`` subclasses and layers.

FQSE fake-quantizes with its own quantizers, not with TFMOT's default scheme, and the two differ in ways that
change the results (``docs/fqse.md#quantizers``, ``docs/fqse.md#tfmot-port``):

* **Weights** (:class:`FQSEWeightQuantizer`): per output channel, symmetric, signed, full range ``[-128, 127]``
  with step ``delta_c = max(|min_c|, |max_c|) / 2**(bits-1)`` (TFMOT: narrow range ``[-127, 127]`` and step
  ``max|w| / 127``). ``min_c``/``max_c`` are taken once from the weights the quantizer starts from
  (:func:`initialize_weight_ranges`) and then stay fixed (vanilla QAT) or are learned (FQSE).
* **Activations** (:class:`FQSEActivationQuantizer`): per tensor, asymmetric, ``delta = (max - min) / 255``,
  ``y = delta * clip(round((x - min) / delta), 0, 255) + min`` with a real-valued zero point ``min``. For the
  first 50 training steps the quantizer is the identity and ``min``/``max`` follow an exponential moving average
  ``r <- 0.9 r + 0.1 batch_minmax`` starting from 0; afterwards the ranges are frozen (vanilla QAT) or trained
  (FQSE: the gradient reaches ``min``/``max`` through ``delta`` and the offset, as in LSQ).

Rounding has a straight-through gradient; clipping has zero gradient with respect to ``x`` outside the range
(ssi-research/FQSE ``quantization/qat/qat_quant.py`` ``round_ste``, ``quantize``).

Deployment: inside :func:`deployment_graph` the quantizers emit TensorFlow's ``FakeQuantWithMinMaxVars`` ops
(per channel for weights), which the TFLite converter turns into int8 tensors with exactly these weight steps.
For activations that op moves the zero point onto the integer grid, as FQSE's own exporter does
(``torch.fake_quantize_per_tensor_affine`` in ssi-research/FQSE ``quantization/qat/qat_quant.py``
``TorchActivationFakeQuantize``); the range is first widened to contain 0 so that it is never shifted.
"""
from __future__ import annotations

import contextlib

import numpy as np

from common.tfkeras import keras, tf, tfmot

# ssi-research/FQSE quantization/qat/qat_quant.py GradientActivationFakeQuantize: max_observations = 50, alpha = 0.9.
OBSERVATION_STEPS = 50
EMA_MOMENTUM = 0.9
# Guards the step of an all-zero channel (FQSE would divide by zero there).
_SMALLEST_STEP = 1e-12

_DEPLOYMENT = {"active": False}
# The call methods below branch only on Python values, so they are marked do_not_convert: autograph's
# transpilation of every layer was a large part of building and tracing the quantized models.


@contextlib.contextmanager
def deployment_graph():
    """Trace models inside this context to get TFLite-convertible ``FakeQuantWithMinMaxVars`` ops."""
    previous = _DEPLOYMENT["active"]
    _DEPLOYMENT["active"] = True
    try:
        yield
    finally:
        _DEPLOYMENT["active"] = previous


def in_deployment_graph() -> bool:
    return _DEPLOYMENT["active"]


def round_straight_through(values):
    """``round(values)`` forward, identity gradient backward."""
    return values + tf.stop_gradient(tf.round(values) - values)


def quantize_symmetric(values, range_min, range_max, bits: int = 8):
    """FQSE's signed symmetric fake quantizer: step ``max(|min|, |max|) / 2**(bits-1)``, levels ``[-2**(bits-1), 2**(bits-1)-1]``.

    ``range_min``/``range_max`` broadcast against ``values`` (per channel: shape 1 except along the channel axis).
    """
    largest = tf.maximum(tf.abs(range_min), tf.abs(range_max))
    step = tf.maximum(largest / 2 ** (bits - 1), _SMALLEST_STEP)
    levels = tf.clip_by_value(round_straight_through(values / step), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return step * levels


def quantize_asymmetric(values, range_min, range_max, bits: int = 8):
    """FQSE's uniform (asymmetric) fake quantizer with real-valued zero point ``range_min``."""
    step = tf.maximum((range_max - range_min) / (2**bits - 1), _SMALLEST_STEP)
    levels = tf.clip_by_value(round_straight_through((values - range_min) / step), 0, 2**bits - 1)
    return step * levels + range_min


def quantize_symmetric_numpy(values, range_min, range_max, bits: int = 8):
    """NumPy twin of :func:`quantize_symmetric` (the independent reference used by the tests)."""
    largest = np.maximum(np.abs(range_min), np.abs(range_max))
    step = np.maximum(largest / 2 ** (bits - 1), _SMALLEST_STEP)
    return step * np.clip(np.round(values / step), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _deployment_weights(values, range_min, range_max, bits):
    # The grid step * [-128, 127] written as a FakeQuant range: zero point 128 is an integer, so TensorFlow's
    # nudging leaves it unchanged and the converter stores int8 weights with exactly FQSE's step.
    largest = tf.maximum(tf.abs(range_min), tf.abs(range_max))
    step = tf.maximum(largest / 2 ** (bits - 1), _SMALLEST_STEP)
    low = tf.reshape(-step * 2 ** (bits - 1), [-1])
    high = tf.reshape(step * (2 ** (bits - 1) - 1), [-1])
    if low.shape[0] == 1:
        return tf.quantization.fake_quant_with_min_max_vars(values, low[0], high[0], num_bits=bits)
    return tf.quantization.fake_quant_with_min_max_vars_per_channel(values, low, high, num_bits=bits)


def _deployment_activations(values, range_min, range_max, bits):
    low = tf.minimum(tf.reshape(range_min, []), 0.0)
    high = tf.maximum(tf.reshape(range_max, []), 0.0)
    return tf.quantization.fake_quant_with_min_max_vars(values, low, high, num_bits=bits)


def _is_training(training):
    if training is None:
        return keras.backend.learning_phase()
    return training


_Quantizer = tfmot().quantization.keras.quantizers.Quantizer


class FQSEWeightQuantizer(_Quantizer):
    """Per-channel symmetric full-range weight fake quantizer of FQSE.

    Args:
        bits: word length (8 in the paper).
        trainable_ranges: learn ``min_c``/``max_c`` (FQSE) or keep them fixed (vanilla QAT).
        channel_axis: axis of the output channels in the kernel (the last one for every kernel of this suite).

    The ranges start at zero; :func:`initialize_weight_ranges` sets them from the weights once the starting
    (float) weights are loaded, which is what FQSE does on its first forward call.
    """

    def __init__(self, bits: int = 8, trainable_ranges: bool = False, channel_axis: int = -1):
        self.bits = int(bits)
        self.trainable_ranges = bool(trainable_ranges)
        self.channel_axis = int(channel_axis)

    def build(self, tensor_shape, name, layer):
        shape = [1] * len(tensor_shape)
        shape[self.channel_axis] = int(tensor_shape[self.channel_axis])
        range_min = layer.add_weight(
            name=f"{name}_range_min", shape=shape, initializer="zeros", trainable=self.trainable_ranges
        )
        range_max = layer.add_weight(
            name=f"{name}_range_max", shape=shape, initializer="zeros", trainable=self.trainable_ranges
        )
        return {"range_min": range_min, "range_max": range_max}

    @tf.autograph.experimental.do_not_convert
    def __call__(self, inputs, training, weights, **kwargs):
        if in_deployment_graph():
            channels = weights["range_min"].shape[self.channel_axis]
            if channels > 1 and self.channel_axis not in (-1, len(inputs.shape) - 1):
                raise ValueError("FQSEWeightQuantizer: deployment of per-channel ranges needs the channel axis last")
            return _deployment_weights(inputs, weights["range_min"], weights["range_max"], self.bits)
        return quantize_symmetric(inputs, weights["range_min"], weights["range_max"], self.bits)

    @staticmethod
    def initialize(weights, kernel):
        """Set ``min_c``/``max_c`` to the per-channel extremes of ``kernel`` (FQSE's first-call initialisation)."""
        kernel = np.asarray(kernel)
        shape = weights["range_min"].shape
        axes = tuple(axis for axis, size in enumerate(shape) if size == 1)
        weights["range_min"].assign(np.min(kernel, axis=axes, keepdims=True).reshape(shape))
        weights["range_max"].assign(np.max(kernel, axis=axes, keepdims=True).reshape(shape))

    def get_config(self):
        return {"bits": self.bits, "trainable_ranges": self.trainable_ranges, "channel_axis": self.channel_axis}


class FQSEActivationQuantizer(_Quantizer):
    """Per-tensor asymmetric activation fake quantizer with FQSE's 50-step EMA range initialisation.

    Args:
        bits: word length (8).
        trainable_ranges: after the observation steps, learn the range (FQSE) or freeze it (vanilla QAT).
        observation_steps: training steps during which the range follows the EMA and nothing is quantized.
        momentum: EMA momentum ``alpha`` in ``r <- alpha r + (1 - alpha) batch_minmax``.
    """

    def __init__(self, bits: int = 8, trainable_ranges: bool = False, observation_steps: int = OBSERVATION_STEPS,
                 momentum: float = EMA_MOMENTUM):
        self.bits = int(bits)
        self.trainable_ranges = bool(trainable_ranges)
        self.observation_steps = int(observation_steps)
        self.momentum = float(momentum)

    def build(self, tensor_shape, name, layer):
        return {
            "range_min": layer.add_weight(name=f"{name}_range_min", shape=(), initializer="zeros",
                                          trainable=self.trainable_ranges),
            "range_max": layer.add_weight(name=f"{name}_range_max", shape=(), initializer="zeros",
                                          trainable=self.trainable_ranges),
            "observed_steps": layer.add_weight(name=f"{name}_observed_steps", shape=(), initializer="zeros",
                                               trainable=False),
        }

    @tf.autograph.experimental.do_not_convert
    def __call__(self, inputs, training, weights, **kwargs):
        range_min, range_max, steps = weights["range_min"], weights["range_max"], weights["observed_steps"]
        if in_deployment_graph():
            return _deployment_activations(inputs, range_min, range_max, self.bits)

        # Branch-free on purpose: ~30 tf.cond per model (with their gradients) made tracing a train step take
        # minutes; the select below costs a few element-wise ops and gives the same values and gradients.
        observing = steps < self.observation_steps
        quantized = quantize_asymmetric(inputs, range_min, range_max, self.bits)
        training = _is_training(training)
        if isinstance(training, bool) and not training:
            return tf.where(observing, inputs, quantized)
        update = observing if isinstance(training, bool) else tf.logical_and(tf.cast(training, tf.bool), observing)
        weight = tf.cast(update, inputs.dtype) * (1.0 - self.momentum)  # 0 outside the observation: no update
        with tf.control_dependencies([quantized]):  # quantize with the ranges read before this step's update
            updates = [
                range_min.assign(range_min + weight * (tf.reduce_min(inputs) - range_min)),
                range_max.assign(range_max + weight * (tf.reduce_max(inputs) - range_max)),
                steps.assign_add(tf.cast(update, steps.dtype)),
            ]
        with tf.control_dependencies(updates):
            return tf.where(observing, inputs, quantized)

    def get_config(self):
        return {
            "bits": self.bits,
            "trainable_ranges": self.trainable_ranges,
            "observation_steps": self.observation_steps,
            "momentum": self.momentum,
        }


class FixedGridQuantizer(_Quantizer):
    """Fake quantizer on a fixed grid ``[minimum, maximum]`` with ``2**bits`` levels (no variables learned).

    Used for the splitter's output, which is already exactly on the int8 grid ``k/128``: the quantizer is then
    the identity in training and gives the converter the int8 input scale 1/128, zero point 0.
    """

    def __init__(self, minimum: float = -1.0, maximum: float = 127.0 / 128.0, bits: int = 8):
        if not minimum <= 0.0 <= maximum:
            raise ValueError(f"FixedGridQuantizer: the range [{minimum}, {maximum}] must contain 0")
        self.minimum = float(minimum)
        self.maximum = float(maximum)
        self.bits = int(bits)

    def build(self, tensor_shape, name, layer):
        return {}

    @tf.autograph.experimental.do_not_convert
    def __call__(self, inputs, training, weights, **kwargs):
        if in_deployment_graph():
            return tf.quantization.fake_quant_with_min_max_vars(inputs, self.minimum, self.maximum, num_bits=self.bits)
        return quantize_asymmetric(inputs, tf.constant(self.minimum), tf.constant(self.maximum), self.bits)

    def get_config(self):
        return {"minimum": self.minimum, "maximum": self.maximum, "bits": self.bits}


QUANTIZERS = {
    "FQSEWeightQuantizer": FQSEWeightQuantizer,
    "FQSEActivationQuantizer": FQSEActivationQuantizer,
    "FixedGridQuantizer": FixedGridQuantizer,
}


def quantizer_from_config(config: dict | None):
    """Rebuild a quantizer from ``{"class_name": ..., "config": ...}`` (``None`` stays ``None``)."""
    if config is None:
        return None
    if config["class_name"] not in QUANTIZERS:
        raise ValueError(f"unknown quantizer class_name {config['class_name']!r}; known: {', '.join(QUANTIZERS)}")
    return QUANTIZERS[config["class_name"]].from_config(config["config"])


def quantizer_to_config(quantizer) -> dict | None:
    if quantizer is None:
        return None
    return {"class_name": type(quantizer).__name__, "config": quantizer.get_config()}


@keras.utils.register_keras_serializable(package="se")
class ActivationQuantize(keras.layers.Layer):
    """A layer that only fake-quantizes its input (after Add, Mul, at the model input).

    Args:
        quantizer: an activation quantizer (:class:`FQSEActivationQuantizer` or :class:`FixedGridQuantizer`),
            or its ``quantizer_to_config`` dict.
    """

    def __init__(self, quantizer, **kwargs):
        super().__init__(**kwargs)
        self.quantizer = quantizer_from_config(quantizer) if isinstance(quantizer, dict) else quantizer

    def build(self, input_shape):
        self.quantizer_weights = self.quantizer.build(input_shape, "output", self)
        super().build(input_shape)

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, training=None):
        return self.quantizer(inputs, training, self.quantizer_weights)

    def compute_macs(self, input_shape, output_shape) -> int:
        return 0

    def get_config(self):
        config = super().get_config()
        config["quantizer"] = quantizer_to_config(self.quantizer)
        return config


def initialize_weight_ranges(model) -> int:
    """Set every weight quantizer's ranges from the current kernels; returns how many were set.

    Layers opt in by exposing ``weight_quantizer_pairs() -> [(quantizer, weights_dict, kernel_variable)]``.
    """
    count = 0
    for layer in model.submodules:
        pairs = getattr(layer, "weight_quantizer_pairs", None)
        if pairs is None or not callable(pairs):
            continue
        for quantizer, weights, kernel in pairs():
            quantizer.initialize(weights, kernel.numpy())
            count += 1
    return count


def activation_ranges(model) -> dict:
    """``{variable_name: (min, max, observed_steps)}`` of every activation quantizer (for reports and tests)."""
    ranges = {}
    for variable in model.variables:
        if variable.name.endswith("_range_min:0") and variable.shape.rank == 0:
            stem = variable.name[: -len("_range_min:0")]
            ranges[stem] = [float(variable.numpy())]
    for variable in model.variables:
        for suffix, position in (("_range_max:0", 1), ("_observed_steps:0", 2)):
            if variable.name.endswith(suffix) and variable.shape.rank == 0:
                stem = variable.name[: -len(suffix)]
                if stem in ranges:
                    ranges[stem].append(float(variable.numpy()))
    return {name: tuple(values) for name, values in ranges.items()}


__all__ = [
    "OBSERVATION_STEPS", "EMA_MOMENTUM", "deployment_graph", "in_deployment_graph", "round_straight_through",
    "quantize_symmetric", "quantize_asymmetric", "quantize_symmetric_numpy", "FQSEWeightQuantizer",
    "FQSEActivationQuantizer", "FixedGridQuantizer", "ActivationQuantize", "initialize_weight_ranges",
    "activation_ranges", "quantizer_from_config", "quantizer_to_config",
]
