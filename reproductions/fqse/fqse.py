"""FQSE's additions to Conv-TasNet: input splitter, residual quantization block (RQB) and output combiner.

* Splitter (``docs/fqse.md#splitter``, ssi-research/FQSE ``process.py`` ``preprocess``): the input is peak-normalised
  over the whole batch tensor, floor-quantized to the signed 8-bit grid (step ``delta = 1/128``), and the
  remainder ``x - q(x)`` in ``[0, delta)`` is mapped to ``[-1, 1)`` and quantized again; the two int8 channels
  feed an encoder with two input channels whose second channel starts as Gaussian noise with the mean and
  standard deviation of the pretrained filters (``quantization/qat/qat_layers.py`` ``Conv1dEncoderQ``).
* RQB (``docs/fqse.md#residual-quantization``, ``qat_layers.py`` ``ResidualErrorBlock``, ``ConvTr1dDecoderQ``): a new
  encoder re-encodes the quantized output ``y0``; the latent residual ``Y - Yq`` is quantized and decoded with the same
  (quantized) decoder weights into ``y1`` with its own 8-bit output quantizer.
* Combiner (``process.py`` ``postprocess``): ``y = y0 + sum_i y_i (delta/2)**i`` = ``y0 + y1/256`` for two
  stages; it runs in float outside the int8 model, as does the splitter.
"""
from __future__ import annotations

import numpy as np

from reproductions.fqse import quantizers as fq
from common.config import check_keys
from common.tfkeras import keras, layers, tf
from reproductions.fqse.convtasnet import MODEL_KEYS, Encoder, activation_quantizer, build_convtasnet_core

SPLITTER_BITS = 8


def grid_step(bits: int = SPLITTER_BITS) -> float:
    """``delta = 1 / 2**(bits-1)``: the signed int8 grid step of a [-1, 1) signal."""
    return 1.0 / 2 ** (bits - 1)


def split_input_numpy(signal, stages: int = 2, bits: int = SPLITTER_BITS):
    """Reference splitter in NumPy, a line-by-line port of FQSE's ``preprocess`` (threshold 1, signed).

    Args:
        signal: ``(batch, samples)`` float array (normalised by its maximum over the whole array).
    Returns:
        ``(batch, samples, stages)`` float64 array, every value a multiple of ``1/2**(bits-1)`` in ``[-1, 1)``.
    """
    signal = np.asarray(signal, dtype=np.float64)
    peak = max(abs(signal.min()), abs(signal.max()))
    if peak == 0:
        raise ValueError("fqse.py splitter: the input is all zeros")
    signal = signal / peak
    delta = grid_step(bits)
    lowest, highest = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    channels = []
    for _ in range(stages):
        quantized = np.clip(np.floor(signal / delta), lowest, highest) * delta
        channels.append(quantized)
        signal = 2 * (signal - quantized) / delta - 1
    return np.stack(channels, axis=-1)


def combine_outputs_numpy(outputs, bits: int = SPLITTER_BITS):
    """FQSE's combiner: ``outputs[0] + sum_i outputs[i] * (delta/2)**i`` (``y0 + y1/256`` for two stages)."""
    delta = grid_step(bits)
    combined = np.array(outputs[0], dtype=np.float64)
    for index in range(1, len(outputs)):
        combined = combined + np.asarray(outputs[index], dtype=np.float64) * (0.5 * delta) ** index
    return combined


@keras.utils.register_keras_serializable(package="se")
class InputSplitter(layers.Layer):
    """The splitter as a Keras layer for training: ``(batch, samples) -> (batch, samples, stages)``.

    Same arithmetic as :func:`split_input_numpy` in float32 (the input carries no gradient).
    """

    def __init__(self, stages=2, bits=SPLITTER_BITS, **kwargs):
        super().__init__(**kwargs)
        self.stages = int(stages)
        self.bits = int(bits)

    def call(self, inputs):
        signal = inputs / tf.maximum(tf.reduce_max(tf.abs(inputs)), 1e-12)
        delta = grid_step(self.bits)
        lowest, highest = -(2.0 ** (self.bits - 1)), 2.0 ** (self.bits - 1) - 1
        channels = []
        for _ in range(self.stages):
            quantized = tf.clip_by_value(tf.floor(signal / delta), lowest, highest) * delta
            channels.append(quantized)
            signal = 2 * (signal - quantized) / delta - 1
        return tf.stop_gradient(tf.stack(channels, axis=-1))

    def compute_macs(self, input_shape, output_shape) -> int:
        return 0

    def get_config(self):
        config = super().get_config()
        config.update(stages=self.stages, bits=self.bits)
        return config


@keras.utils.register_keras_serializable(package="se")
class OutputCombiner(layers.Layer):
    """``[y0, y1, ...] -> y0 + sum_i y_i (delta/2)**i`` (float, outside the int8 model)."""

    def __init__(self, bits=SPLITTER_BITS, **kwargs):
        super().__init__(**kwargs)
        self.bits = int(bits)

    def call(self, inputs):
        delta = grid_step(self.bits)
        combined = inputs[0]
        for index in range(1, len(inputs)):
            combined = combined + inputs[index] * (0.5 * delta) ** index
        return combined

    def compute_macs(self, input_shape, output_shape) -> int:
        return int(np.prod([int(size) for size in output_shape[1:] if size is not None]))

    def get_config(self):
        config = super().get_config()
        config["bits"] = self.bits
        return config


def residual_quantization_block(masked, first_output, decoder, filters, kernel_size, stride, quantization):
    """Append FQSE's RQB to a Functional graph; returns ``y1``.

    Args:
        masked: decoder input ``Y`` ``(batch, M, N)``.
        first_output: the quantized decoder output ``y0`` ``(batch, samples, 1)``.
        decoder: the :class:`~reproductions.fqse.convtasnet.Decoder` layer producing ``y0`` (called again, so
            ``y1`` uses the same quantized weights).
    """
    # FQSE quantizes Y - Yq but not Yq itself (ssi-research/FQSE qat_layers.py ResidualErrorBlock.forward).
    re_encoded = Encoder(filters, kernel_size, stride, quantization=quantization, quantize_output=False,
                         name="residual_encoder")(first_output)
    residual = layers.Subtract(name="residual_subtract")([masked, re_encoded])
    if quantization is not None:
        residual = fq.ActivationQuantize(activation_quantizer(quantization), name="residual_quantizer")(residual)
    second = decoder(residual)
    if quantization is not None:
        second = fq.ActivationQuantize(activation_quantizer(quantization), name="residual_output_quantizer")(second)
    return second


@keras.utils.register_keras_serializable(package="se")
class PadToLength(layers.Layer):
    """Zero-pad ``(batch, samples', 1)`` at the end to the reference's length: ``-> (batch, samples)``.

    asteroid ``pad_x_to_y`` / FQSE ``F.pad`` in ``model_infer``.
    """

    def call(self, inputs):
        signal, reference = inputs
        signal = signal[..., 0]
        missing = tf.shape(reference)[1] - tf.shape(signal)[1]
        return tf.pad(signal, [[0, 0], [0, missing]])

    def compute_macs(self, input_shape, output_shape) -> int:
        return 0


def build_waveform_model(core, splitter_stages: int = 1, name="waveform_model"):
    """Wrap a Conv-TasNet core for training and Keras inference: ``(batch, samples) -> (batch, samples)``.

    With ``splitter_stages > 1`` the splitter runs before the core and the combiner after it (FQSE).
    """
    waveform = keras.Input(shape=(None,), name="mixture")
    if splitter_stages > 1:
        core_input = InputSplitter(splitter_stages, name="splitter")(waveform)
    else:
        core_input = layers.Reshape((-1, 1), name="add_channel")(waveform)
    outputs = core(core_input)
    if isinstance(outputs, (list, tuple)):
        outputs = OutputCombiner(name="combiner")(list(outputs))
    enhanced = PadToLength(dtype="float32", name="pad_to_input")([outputs, waveform])
    return keras.Model(waveform, enhanced, name=name)


FQSE_KEYS = ("splitter_stages", "residual_stages")


def build_from_config(model_section, fqse_section, quantization=None, name="convtasnet_fqse", source=None):
    """Build the FQSE core: the Conv-TasNet of the ``model:`` section with the ``fqse:`` section's splitter and RQB.

    The core takes ``fqse.splitter_stages`` input channels and, with ``fqse.residual_stages`` 2, returns ``[y0, y1]``.
    With ``quantization`` it is the QAT model, whose input (the splitter's output) is already on the int8 grid, so
    it gets no input quantizer (FQSE's ``in_quant`` False); without, the float model whose weights
    :func:`transfer_float_weights` fills. ``source`` is the configuration file that the errors name.
    """
    check_keys(model_section, "model", MODEL_KEYS, source=source)
    check_keys(fqse_section, "fqse", FQSE_KEYS, source=source)
    core_config = dict(model_section, input_channels=int(fqse_section["splitter_stages"]),
                       residual_stages=int(fqse_section["residual_stages"]))
    return build_convtasnet_core(core_config, quantization=quantization, fixed_input_grid=True, name=name)


def splitter_encoder_kernel(float_kernel, stages: int, rng: np.random.Generator):
    """Encoder kernel ``(1, L, stages, N)`` from a float ``(1, L, 1, N)`` one, as FQSE's ``Conv1dEncoderQ``.

    Channel 0 keeps the pretrained filters; channel ``k >= 1`` is ``mean + randn * std**k`` with the mean and
    standard deviation over all pretrained weights of the input channel.
    """
    float_kernel = np.asarray(float_kernel)
    if float_kernel.ndim != 4 or float_kernel.shape[2] != 1:
        raise ValueError(f"expected a one-channel (1, L, 1, N) encoder kernel, got shape {float_kernel.shape}")
    kernel = np.repeat(float_kernel, stages, axis=2)
    mean, standard_deviation = float(float_kernel.mean()), float(float_kernel.std())
    for stage in range(1, stages):
        noise = rng.standard_normal(float_kernel[:, :, 0, :].shape)
        kernel[:, :, stage, :] = mean + noise * standard_deviation**stage
    return kernel.astype(np.float32)


def transfer_float_weights(float_core, target_core, seed: int = 0) -> list:
    """Copy a trained float core into a (quantized, possibly split/RQB) core and initialise the weight ranges.

    Layers are matched by name; a quantized layer's first weights are its float twin's. The splitter encoder
    gets :func:`splitter_encoder_kernel`; layers absent from the float core (the RQB's encoder) keep their
    fresh initialisation. Returns the names of the layers left untouched.
    """
    rng = np.random.default_rng(seed)
    float_layers = {layer.name: layer for layer in float_core.layers if layer.weights}
    untouched = []
    for layer in target_core.layers:
        if not layer.weights or isinstance(layer, fq.ActivationQuantize):
            continue
        source = float_layers.get(layer.name)
        if source is None:
            untouched.append(layer.name)
            continue
        source_weights = source.get_weights()
        target_weights = layer.get_weights()
        if layer.name == "encoder" and target_weights[0].shape != source_weights[0].shape:
            source_weights = [splitter_encoder_kernel(source_weights[0], target_weights[0].shape[2], rng)]
        for index, value in enumerate(source_weights):
            if target_weights[index].shape != value.shape:
                raise ValueError(f"layer {layer.name} weight {index} has shape {target_weights[index].shape}, "
                                 f"float model has {value.shape}")
            target_weights[index] = value
        layer.set_weights(target_weights)
    fq.initialize_weight_ranges(target_core)
    return untouched


def convert_core_to_int8(core, representative_inputs, input_channels: int):
    """Full-int8 TFLite flatbuffer of a quantized core (int8 input and outputs), outputs named ``y0``/``y1``.

    The fake quantizers are traced as ``FakeQuantWithMinMaxVars`` ops (:func:`fq.deployment_graph`), so the
    converter keeps every weight step and activation range learned in QAT; the few intermediate tensors FQSE
    leaves unquantized inside fused ops (conv before its PReLU, gLN internals, the RQB's ``Yq``) get ranges from
    ``representative_inputs`` (a list of ``(1, samples, input_channels)`` arrays).
    """
    with fq.deployment_graph():
        @tf.function(input_signature=[tf.TensorSpec([1, None, input_channels], tf.float32, name="waveform")])
        def serve(waveform):
            outputs = core(waveform, training=False)
            if not isinstance(outputs, (list, tuple)):
                outputs = [outputs]
            return {f"y{index}": output for index, output in enumerate(outputs)}

        concrete = serve.get_concrete_function()
        # A module holding only this function and the variables: handing the Keras model itself makes the
        # converter serialise (and trace) every layer's call, which took most of the conversion time.
        module = tf.Module()
        module.model_variables = list(core.variables)
        module.serve = serve
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([np.asarray(item, np.float32)] for item in representative_inputs)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        return converter.convert()


class Int8CoreRunner:
    """Run an int8 core .tflite on float inputs: quantize the input, run, dequantize ``y0``(, ``y1``).

    A thin view of :class:`common.tflite.TFLiteModel`, which quantizes with the file's input scale, returns the
    outputs in signature order (``y0``, ``y1``) and reopens the interpreter when XNNPACK cannot re-prepare the
    graph for a new length. ``input``: the input tensor's details (its ``quantization`` is the int8 input grid).
    """

    def __init__(self, path, num_threads: int = 1):
        from common.tflite import TFLiteModel

        self.model = TFLiteModel(path, num_threads=num_threads)
        self.input = self.model.input_details[0]

    def __call__(self, core_input):
        """``core_input`` ``(samples, channels)`` float -> list of ``(samples', )`` float outputs."""
        outputs = self.model(np.asarray(core_input, np.float32)[None])
        return [np.asarray(output)[0, :, 0] for output in (outputs if isinstance(outputs, list) else [outputs])]
