"""Conv-TasNet (Luo & Mesgarani 2019) as asteroid's ``ConvTasNet_Libri1Mix_enhsingle_16k``, float or FQSE-quantized.

Notation (Luo & Mesgarani): a free encoder of N filters of length L with stride L/2 turns the waveform into
M frames; a temporal convolutional network (bottleneck to B channels, R repeats of X dilated blocks with H
hidden channels, kernel P, skip channels Sc) estimates a ReLU mask; the masked frames are decoded by a transposed
convolution and the output is zero-padded to the input length. Paper configuration N=512, L=32, B=128, Sc=128,
H=512, P=3, X=8, R=3, non-causal, gLN, one source: 5,000,881 parameters
(``docs/fqse.md#model``).

Every layer can carry FQSE's fake quantizers (``reproductions/fqse/quantizers.py``): with
``quantization={"bits": 8, "trainable_ranges": False|True}`` the kernels are weight-quantized per output channel
and the activation quantizers sit exactly where FQSE puts them (``docs/fqse.md#quantizers``): after the encoder, each
fused conv+PReLU, each gLN, each res/skip conv, each residual and skip-sum add, the mask PReLU, the mask conv+ReLU, the
mask x features product and the decoder output. Biases, gLN gamma/beta and PReLU slopes stay float.

Args of :func:`build_convtasnet_core`:
    config: ``model`` section (``filters`` N, ``kernel_size`` L, ``stride``, ``bottleneck`` B, ``hidden`` H,
        ``skip`` Sc, ``conv_kernel`` P, ``blocks`` X, ``repeats`` R, ``input_channels`` 1 or 2 (splitter),
        ``residual_stages`` 1 or 2 (RQB)).
    quantization: ``None`` (float) or the quantizer settings.
    quantize_input: fake-quantize the model input with an EMA quantizer (vanilla QAT, FQSE's ``in_quant``).
    fixed_input_grid: treat the input as already on the int8 grid k/128 (FQSE with the splitter).

Shape:
    input ``(batch, samples, input_channels)``; output ``(batch, (M - 1) * stride + L, 1)`` per decoder stage,
    ``M = (samples - L) // stride + 1``; with the RQB two outputs ``y0`` and ``y1``.

References:
    Y. Luo, N. Mesgarani, "Conv-TasNet: Surpassing ideal time-frequency magnitude masking for speech
    separation", IEEE/ACM TASLP 27(8), 2019. asteroid ``asteroid/models/conv_tasnet.py``,
    ``asteroid/masknn/{convolutional,norms}.py``. FQSE ``quantization/models/convtasnetq.py``.
"""
from __future__ import annotations

import numpy as np

from reproductions.fqse import quantizers as fq
from common.config import check_keys
from common.normalization import normalise_by_own_statistics
from common.tfkeras import keras, layers, tf

# asteroid/masknn/norms.py: EPS = 1e-8 inside GlobLN.
GLN_EPSILON = 1e-8
# torch.nn.PReLU() default slope, which asteroid does not change.
PRELU_INITIAL_SLOPE = 0.25
# The call methods below branch only on Python values, so they are marked do_not_convert: autograph's
# transpilation of every layer was a large part of building and tracing the quantized models.


def _weight_quantizer(quantization, channel_axis=-1):
    if quantization is None:
        return None
    return fq.FQSEWeightQuantizer(bits=quantization.get("bits", 8),
                                  trainable_ranges=quantization.get("trainable_ranges", False),
                                  channel_axis=channel_axis)


def activation_quantizer(quantization):
    """The activation quantizer FQSE puts after an op (``None`` for a float model)."""
    if quantization is None:
        return None
    return fq.FQSEActivationQuantizer(bits=quantization.get("bits", 8),
                                      trainable_ranges=quantization.get("trainable_ranges", False))


def _torch_conv_initializer(fan_in):
    # PyTorch's default Conv1d initialisation (kaiming_uniform with a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1.0 / np.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


class QuantizableLayer(layers.Layer):
    """Base of the Conv-TasNet layers: optional FQSE weight quantizer on ``kernel`` and output quantizer.

    Float variables are created before quantizer variables, so ``get_weights()[:n]`` of a quantized layer are
    exactly the ``n`` weights of its float twin (used to start QAT from the float model).
    """

    def __init__(self, quantization=None, quantize_output=True, **kwargs):
        super().__init__(**kwargs)
        self.quantization = dict(quantization) if quantization is not None else None
        self.quantize_output = bool(quantize_output)

    def _build_quantizers(self, output_shape, kernel_channel_axis=-1):
        self.kernel_quantizer = None
        self.output_quantizer = None
        if self.quantization is None:
            return
        if getattr(self, "kernel", None) is not None:
            self.kernel_quantizer = _weight_quantizer(self.quantization, kernel_channel_axis)
            self.kernel_quantizer_weights = self.kernel_quantizer.build(self.kernel.shape, "kernel", self)
        if self.quantize_output:
            self.output_quantizer = activation_quantizer(self.quantization)
            self.output_quantizer_weights = self.output_quantizer.build(output_shape, "output", self)

    def quantized_kernel(self, training=None):
        if self.kernel_quantizer is None:
            return self.kernel
        return self.kernel_quantizer(self.kernel, training, self.kernel_quantizer_weights)

    def _quantize(self, outputs, training):
        if self.output_quantizer is None:
            return outputs
        return self.output_quantizer(outputs, training, self.output_quantizer_weights)

    def weight_quantizer_pairs(self):
        if self.kernel_quantizer is None:
            return []
        return [(self.kernel_quantizer, self.kernel_quantizer_weights, self.kernel)]

    def get_config(self):
        config = super().get_config()
        config.update(quantization=self.quantization, quantize_output=self.quantize_output)
        return config


def _prelu(inputs, slope):
    if fq.in_deployment_graph():
        # The slope is one scalar (torch.nn.PReLU()), so this is LeakyReLU with its trained value, read once at
        # trace time: XNNPACK runs int8 LEAKY_RELU but not int8 PRELU, which fell back to LiteRT's reference
        # kernel and made the int8 core slower than float (mini ConvTasNet 0.3x; with LEAKY_RELU and the gLN
        # variance as a product 1.3-1.5x). Training graphs keep the trainable slope.
        with tf.init_scope():
            alpha = float(np.asarray(slope.numpy()).reshape(-1)[0])
        return tf.nn.leaky_relu(inputs, alpha=alpha)
    # Keras' PReLU formula, which the TFLite converter fuses into one PRELU op (other spellings leave a float NEG).
    positive = tf.nn.relu(inputs)
    negative = -slope * tf.nn.relu(-inputs)
    return positive + negative


@keras.utils.register_keras_serializable(package="se")
class Encoder(QuantizableLayer):
    """Free filterbank encoder: ``Conv1d(in -> N, kernel L, stride L/2, no bias)``, no nonlinearity.

    Shape: ``(batch, samples, channels) -> (batch, M, N)``.
    """

    def __init__(self, filters, kernel_size, stride, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        # Conv2D layout (1, L, in, N) on (batch, 1, samples, in): the per-channel FakeQuant of the kernel must
        # feed the convolution directly (Conv1D's ExpandDims in between breaks the TFLite converter).
        self.kernel = self.add_weight(
            name="kernel", shape=(1, self.kernel_size, channels, self.filters),
            initializer=_torch_conv_initializer(channels * self.kernel_size),
        )
        self._build_quantizers((None, None, self.filters))
        super().build(input_shape)

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, training=None):
        outputs = tf.nn.conv2d(tf.expand_dims(inputs, 1), self.quantized_kernel(training),
                               strides=[1, 1, self.stride, 1], padding="VALID")
        return self._quantize(tf.squeeze(outputs, 1), training)

    def compute_macs(self, input_shape, output_shape) -> int:
        return int(output_shape[1]) * self.filters * self.kernel_size * int(input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, stride=self.stride)
        return config


@keras.utils.register_keras_serializable(package="se")
class GlobalLayerNorm(QuantizableLayer):
    """gLN: ``gamma * (x - mean) / sqrt(var + eps) + beta`` with mean/var over (time, channel) per example.

    Shape: ``(batch, M, C) -> (batch, M, C)``; gamma and beta per channel (asteroid ``GlobLN``).
    """

    def __init__(self, epsilon=GLN_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        self.kernel = None
        self._build_quantizers(input_shape)
        super().build(input_shape)

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, training=None):
        # The int8-friendly form of the gLN (common/normalization.py).
        outputs = normalise_by_own_statistics(inputs, [1, 2], self.gamma, self.beta, self.epsilon)
        return self._quantize(outputs, training)

    def compute_macs(self, input_shape, output_shape) -> int:
        # Squares for the variance plus the scale by gamma/sqrt(var): two multiplications per element.
        return 2 * int(np.prod([int(size) for size in input_shape[1:]]))

    def get_config(self):
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config


@keras.utils.register_keras_serializable(package="se")
class SharedPReLU(QuantizableLayer):
    """PReLU with one slope shared by all channels (``torch.nn.PReLU()``), optionally output-quantized."""

    def build(self, input_shape):
        self.slope = self.add_weight(name="slope", shape=(1, 1), initializer=keras.initializers.Constant(PRELU_INITIAL_SLOPE))
        self.kernel = None
        self._build_quantizers(input_shape)
        super().build(input_shape)

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, training=None):
        return self._quantize(_prelu(inputs, self.slope), training)

    def compute_macs(self, input_shape, output_shape) -> int:
        return int(np.prod([int(size) for size in input_shape[1:]]))


@keras.utils.register_keras_serializable(package="se")
class PointwiseConv(QuantizableLayer):
    """1x1 ``Conv1d`` with bias, optionally followed by PReLU (shared slope) or ReLU before the output quantizer.

    ``activation="prelu"`` is FQSE's fused ``Conv1dNlQ`` (one quantizer after the nonlinearity).
    """

    def __init__(self, filters, activation=None, **kwargs):
        super().__init__(**kwargs)
        if activation not in (None, "prelu", "relu"):
            raise ValueError(f"PointwiseConv activation must be None, 'prelu' or 'relu', got {activation!r}")
        self.filters = int(filters)
        self.activation = activation

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(1, 1, channels, self.filters),
                                      initializer=_torch_conv_initializer(channels))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=_torch_conv_initializer(channels))
        if self.activation == "prelu":
            self.slope = self.add_weight(name="slope", shape=(1, 1),
                                         initializer=keras.initializers.Constant(PRELU_INITIAL_SLOPE))
        self._build_quantizers((None, None, self.filters))
        super().build(input_shape)

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, training=None):
        outputs = tf.nn.conv2d(tf.expand_dims(inputs, 1), self.quantized_kernel(training), strides=1, padding="VALID")
        outputs = tf.squeeze(outputs, 1) + self.bias
        if self.activation == "prelu":
            outputs = _prelu(outputs, self.slope)
        elif self.activation == "relu":
            outputs = tf.nn.relu(outputs)
        return self._quantize(outputs, training)

    def compute_macs(self, input_shape, output_shape) -> int:
        return int(input_shape[1]) * int(input_shape[-1]) * self.filters

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, activation=self.activation)
        return config


@keras.utils.register_keras_serializable(package="se")
class DepthwiseConv(QuantizableLayer):
    """Dilated depthwise ``Conv1d(C, C, kernel P, dilation d, padding d, groups C)`` with bias, then PReLU.

    'SAME' padding of the dilated odd kernel is d samples on each side, as asteroid's ``padding=d``.
    """

    def __init__(self, kernel_size, dilation, **kwargs):
        super().__init__(**kwargs)
        if int(kernel_size) % 2 != 1:
            raise ValueError(f"the depthwise kernel must be odd for non-causal padding, got {kernel_size}")
        self.kernel_size = int(kernel_size)
        self.dilation = int(dilation)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        # (P, 1, 1, C): the output channel is the last axis, as the per-channel FakeQuant op needs.
        self.kernel = self.add_weight(name="kernel", shape=(self.kernel_size, 1, 1, channels),
                                      initializer=_torch_conv_initializer(self.kernel_size))
        self.bias = self.add_weight(name="bias", shape=(channels,), initializer=_torch_conv_initializer(self.kernel_size))
        self.slope = self.add_weight(name="slope", shape=(1, 1), initializer=keras.initializers.Constant(PRELU_INITIAL_SLOPE))
        self._build_quantizers(input_shape)
        super().build(input_shape)

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, training=None):
        kernel = self.quantized_kernel(training)
        kernel = tf.reshape(kernel, (self.kernel_size, 1, -1, 1))
        outputs = tf.nn.depthwise_conv2d(
            tf.expand_dims(inputs, 2), kernel, strides=[1, 1, 1, 1], padding="SAME", dilations=[self.dilation, 1]
        )
        outputs = tf.squeeze(outputs, 2) + self.bias
        return self._quantize(_prelu(outputs, self.slope), training)

    def compute_macs(self, input_shape, output_shape) -> int:
        return int(input_shape[1]) * int(input_shape[-1]) * self.kernel_size

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, dilation=self.dilation)
        return config


@keras.utils.register_keras_serializable(package="se")
class Decoder(QuantizableLayer):
    """``ConvTranspose1d(N -> 1, kernel L, stride L/2, no bias)``, weight-quantized per tensor (1 output channel).

    The output quantizer is a separate layer because the RQB reuses these weights with its own output quantizer.
    Shape: ``(batch, M, N) -> (batch, (M - 1) * stride + L, 1)``.
    """

    def __init__(self, kernel_size, stride, **kwargs):
        kwargs["quantize_output"] = False
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        # conv2d_transpose filter layout (1, L, out=1, in=N); PyTorch's fan-in for ConvTranspose1d is out*L.
        self.kernel = self.add_weight(name="kernel", shape=(1, self.kernel_size, 1, channels),
                                      initializer=_torch_conv_initializer(self.kernel_size))
        self._build_quantizers(None, kernel_channel_axis=2)
        super().build(input_shape)

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, training=None):
        frames = tf.shape(inputs)[1]
        batch = tf.shape(inputs)[0]
        length = (frames - 1) * self.stride + self.kernel_size
        outputs = tf.nn.conv2d_transpose(tf.expand_dims(inputs, 1), self.quantized_kernel(training),
                                         tf.stack([batch, 1, length, 1]), strides=[1, 1, self.stride, 1],
                                         padding="VALID")
        return tf.squeeze(outputs, 1)

    def compute_macs(self, input_shape, output_shape) -> int:
        return int(input_shape[1]) * int(input_shape[-1]) * self.kernel_size

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, stride=self.stride)
        config.pop("quantize_output")
        return config


def _maybe_quantize(tensor, quantization, name):
    if quantization is None:
        return tensor
    return fq.ActivationQuantize(activation_quantizer(quantization), dtype="float32", name=name)(tensor)


def build_convtasnet_core(config: dict, quantization=None, quantize_input=False, fixed_input_grid=False,
                          name="convtasnet"):
    """Build the Functional Conv-TasNet from the splitter's (or the raw) input to the decoder output(s).

    See the module docstring for the arguments. With ``residual_stages == 2`` the outputs are ``[y0, y1]``
    of the residual quantization block (``reproductions/fqse/fqse.py``), otherwise the single ``y0``.
    """
    from reproductions.fqse.fqse import residual_quantization_block

    model = config
    filters, kernel_size, stride = int(model["filters"]), int(model["kernel_size"]), int(model["stride"])
    if kernel_size % stride != 0:
        raise ValueError(f"model.kernel_size {kernel_size} must be a multiple of model.stride {stride}")
    input_channels = int(model.get("input_channels", 1))
    residual_stages = int(model.get("residual_stages", 1))
    if residual_stages not in (1, 2):
        raise ValueError(f"residual_stages (fqse.residual_stages) must be 1 or 2, got {residual_stages}")

    inputs = keras.Input(shape=(None, input_channels), name="waveform")
    signal = inputs
    if quantization is not None and fixed_input_grid:
        signal = fq.ActivationQuantize(fq.FixedGridQuantizer(), dtype="float32", name="input_grid")(signal)
    elif quantization is not None and quantize_input:
        signal = _maybe_quantize(signal, quantization, "input_quantizer")
    features = Encoder(filters, kernel_size, stride, quantization=quantization, name="encoder")(signal)

    hidden = GlobalLayerNorm(quantization=quantization, dtype="float32", name="bottleneck_norm")(features)
    hidden = PointwiseConv(model["bottleneck"], quantization=quantization, name="bottleneck_conv")(hidden)
    skip_sum = None
    for repeat in range(int(model["repeats"])):
        for block in range(int(model["blocks"])):
            prefix = f"block_{repeat}_{block}"
            dilation = 2**block
            branch = PointwiseConv(model["hidden"], activation="prelu", quantization=quantization,
                                   name=f"{prefix}_conv_in")(hidden)
            branch = GlobalLayerNorm(quantization=quantization, dtype="float32", name=f"{prefix}_norm_in")(branch)
            branch = DepthwiseConv(model["conv_kernel"], dilation, quantization=quantization,
                                   name=f"{prefix}_depthwise")(branch)
            branch = GlobalLayerNorm(quantization=quantization, dtype="float32", name=f"{prefix}_norm_out")(branch)
            residual = PointwiseConv(model["bottleneck"], quantization=quantization, name=f"{prefix}_residual")(branch)
            skip = PointwiseConv(model["skip"], quantization=quantization, name=f"{prefix}_skip")(branch)
            hidden = _maybe_quantize(layers.Add(name=f"{prefix}_residual_add")([hidden, residual]), quantization,
                                     f"{prefix}_residual_add_quantizer")
            if skip_sum is None:
                skip_sum = skip
            else:
                skip_sum = _maybe_quantize(layers.Add(name=f"{prefix}_skip_add")([skip_sum, skip]), quantization,
                                           f"{prefix}_skip_add_quantizer")
    # The last block's residual output feeds nothing (asteroid computes it too); it stays in the graph through
    # a zero-weight term so that the Functional model keeps res_conv's parameters, as the reference counts them.
    skip_sum = LastResidualSink(name="last_residual_sink")([skip_sum, hidden])
    mask = SharedPReLU(quantization=quantization, name="mask_prelu")(skip_sum)
    mask = PointwiseConv(filters, activation="relu", quantization=quantization, name="mask_conv")(mask)
    masked = _maybe_quantize(layers.Multiply(name="mask_multiply")([mask, features]), quantization,
                             "mask_multiply_quantizer")
    decoder = Decoder(kernel_size, stride, quantization=quantization, dtype="float32", name="decoder")
    first = _maybe_quantize(decoder(masked), quantization, "decoder_output_quantizer")
    if residual_stages == 1:
        return keras.Model(inputs, first, name=name)
    second = residual_quantization_block(masked, first, decoder, filters, kernel_size, stride, quantization)
    return keras.Model(inputs, [first, second], name=name)


MODEL_KEYS = ("filters", "kernel_size", "stride", "bottleneck", "hidden", "skip", "conv_kernel", "blocks", "repeats")


def build_from_config(model_section, quantization=None, quantize_input=False, name="convtasnet", source=None):
    """Build the Conv-TasNet core from the ``model:`` section of ``conf/*.yaml`` (every key of ``MODEL_KEYS``).

    The float core, or with ``quantization`` and ``quantize_input`` the vanilla-QAT one; the FQSE core, which
    also reads the ``fqse:`` section, is :func:`reproductions.fqse.fqse.build_from_config`. ``source`` is the
    configuration file that the errors name (``config["config_path"]``).
    """
    check_keys(model_section, "model", MODEL_KEYS, source=source)
    return build_convtasnet_core(dict(model_section), quantization=quantization, quantize_input=quantize_input,
                                 name=name)


@keras.utils.register_keras_serializable(package="se")
class LastResidualSink(layers.Layer):
    """Passes ``skip_sum`` through unchanged while depending on the last block's unused residual output.

    asteroid computes ``output + residual`` in the last block and drops it; a Functional model would drop the
    whole branch with its res_conv weights. Taking the residual output as a second input keeps the branch (and
    the 5,000,881 parameters) in the model; the output is exactly ``skip_sum``, and the TFLite converter prunes
    the unused branch.
    """

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, training=None):
        skip_sum, _unused_residual = inputs
        return skip_sum

    def compute_macs(self, input_shape, output_shape) -> int:
        return 0
