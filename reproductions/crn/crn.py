"""Tan & Wang's causal convolutional recurrent network (CRN) for real-time speech enhancement.

The network maps the noisy STFT magnitude :math:`|Y(t, f)|` to an estimate of the clean magnitude
:math:`|\\hat S(t, f)|`; the waveform is resynthesised with the noisy phase. Everything follows the first
author's own code (JupiterEthan/CRN-causal ``scripts/utils/networks.py``), summarised with sources in
``docs/crn.md#model``:

* encoder: five causal Conv2D, kernel 2 x 3 (time x frequency), stride 1 x 2, channels 16-32-64-128-256,
  each followed by batch norm and ELU; frequency 161 -> 80 -> 39 -> 19 -> 9 -> 4;
* the 256 x 4 feature map of every frame is flattened to 1024 values and fed to two unidirectional
  LSTM layers of 1024 units, whose output is reshaped back to 4 x 256;
* decoder: five causal transposed convolutions mirroring the encoder (output padding 1 in frequency on the
  second one, so 39 -> 80); the skip connection concatenates the encoder activation to the decoder's
  batch-norm output *before* the ELU, i.e. ``ELU([BN(deconv(x)) || e_k])`` (the encoder activation passes a
  second ELU, as in the author's ``forward``); the input of the first deconvolution is ``[LSTM || e_5]``;
* the output layer is transposed conv -> batch norm -> softplus (non-negative magnitude).

Causality in time (``docs/crn.md#model``):

* encoder: PyTorch pads one frame on both sides and drops the last output frame, i.e.
  ``y[t] = w0 x[t-1] + w1 x[t]`` with ``x[-1] = 0``; here: one zero frame at the start, "valid" conv.
* decoder: PyTorch's transposed conv with time padding 1 returns frames ``1 .. T-1`` of the full transposed
  convolution and ``F.pad`` prepends a zero frame, so frame 0 is exactly zero (no bias) before the batch norm,
  and ``y[t] = w0 x[t] + w1 x[t-1] + b`` for ``t >= 1``. The Keras graph does the same with stock layers
  (valid transposed conv -> crop one frame at each end -> one zero frame at the start), so a trained Keras
  model and a PyTorch checkpoint compute the same function. The streaming graph (``streaming.py``)
  reproduces the zero frame with a ``started`` state.

The PyTorch code flattens each frame channel-major (``256 x 4``); Keras' channels-last reshape flattens it
frequency-major (``4 x 256``). The two differ by a fixed permutation of the LSTM's input weights and of its
hidden units, so they describe the same function class; only a weight import would need to permute.

Parameter count: 17,571,267 in Keras, whose LSTM has one bias vector per gate; PyTorch's ``nn.LSTM`` keeps two
(``b_ih`` and ``b_hh``), giving the paper's 17.58 M = 17,579,459. MACs: about 21.5 M per frame,
2.15 G per second of audio at 100 frames per second.

Args (``build_crn``):
    frequency_bins: STFT bins F (161 for the 320-point FFT of a 20 ms window at 16 kHz).
    channels: encoder channels per layer; the decoder mirrors them.
    lstm_layers: number of stacked LSTM layers (2 in the paper).
    fused_lstm: build the LSTMs as ``common.recurrent.LSTM`` (same weights, faster CPU training) instead of
        ``keras.layers.LSTM``; the streaming and exported models always use the Keras layer.

Shape:
    input  ``(batch, frames, frequency_bins)`` noisy magnitude, any number of frames;
    output ``(batch, frames, frequency_bins)`` estimated clean magnitude (>= 0).

Returns:
    A Functional ``keras.Model`` named ``name``.

References:
    K. Tan and D. L. Wang, "A convolutional recurrent neural network for real-time speech enhancement",
    Interspeech 2018. Code: github.com/JupiterEthan/CRN-causal (HEAD a50799a).
"""
from common.config import check_keys
from common.recurrent import lstm
from common.tfkeras import keras, layers, tf

PAPER_CHANNELS = (16, 32, 64, 128, 256)
PAPER_FREQUENCY_BINS = 161
KERNEL_SIZE = (2, 3)  # time x frequency, networks.py
STRIDES = (1, 2)
# Keras counts one LSTM bias per gate, PyTorch two (docs/crn.md#model).
PAPER_KERAS_PARAMETERS = 17_571_267
PAPER_PYTORCH_PARAMETERS = 17_579_459
FRAMES_PER_SECOND = 100  # 10 ms hop
# PyTorch's BatchNorm2d defaults (eps 1e-5, running-average momentum 0.1), which the author's code keeps; Keras'
# momentum is the weight of the old value, so 0.1 there is 0.9 here.
BATCH_NORM = dict(epsilon=1e-5, momentum=0.9)


@keras.utils.register_keras_serializable(package="se")
class StableSoftplus(layers.Layer):
    """Softplus written as ``relu(x) + log(1 + exp(-|x|))``.

    Same function as ``tf.nn.softplus``, but TFLite lowers a softplus activation to ``LOG(1 + EXP(x))``, which
    overflows to inf once ``x`` exceeds ~88 (trained magnitudes reach ~10^2); this form never exponentiates a
    positive number, in TensorFlow or in the converted graph.
    """

    def call(self, inputs):
        return tf.nn.relu(inputs) + tf.math.log(1.0 + tf.exp(-tf.abs(inputs)))

    def compute_macs(self, input_shape, output_shape):
        return 0  # element-wise, not counted as MACs (common.accounting convention)

    def get_config(self):
        return super().get_config()


def encoder_frequencies(frequency_bins, number_of_layers):
    """Frequency sizes through the encoder: ``F -> (F - 3) // 2 + 1`` per layer (valid conv, stride 2)."""
    sizes = [frequency_bins]
    for _ in range(number_of_layers):
        sizes.append((sizes[-1] - KERNEL_SIZE[1]) // STRIDES[1] + 1)
    return sizes


def decoder_output_padding(input_frequency, target_frequency):
    """Frequency output padding of a stride-2, width-3 transposed conv mapping ``input`` to ``target`` bins."""
    padding = target_frequency - ((input_frequency - 1) * STRIDES[1] + KERNEL_SIZE[1])
    if padding not in (0, 1):
        raise ValueError(
            f"cannot map {input_frequency} to {target_frequency} frequency bins "
            "with a stride-2, width-3 transposed convolution"
        )
    return padding


def validate_architecture(frequency_bins, channels):
    """Raise ValueError when the encoder would collapse the frequency axis."""
    channels = tuple(int(c) for c in channels)
    if not channels or min(channels) < 1:
        raise ValueError(f"channels must be positive integers, got {channels}")
    sizes = encoder_frequencies(frequency_bins, len(channels))
    if sizes[-1] < 1:
        raise ValueError(
            f"{len(channels)} stride-2 layers leave no frequency bins from {frequency_bins}"
        )
    return channels, sizes


def lstm_units(frequency_bins=PAPER_FREQUENCY_BINS, channels=PAPER_CHANNELS):
    """The LSTM width equals the flattened encoder output (256 x 4 = 1024 in the paper), so it can be reshaped back."""
    channels, sizes = validate_architecture(frequency_bins, channels)
    return channels[-1] * sizes[-1]


def build_crn(
    frequency_bins=PAPER_FREQUENCY_BINS, channels=PAPER_CHANNELS, lstm_layers=2, name="crn", fused_lstm=False
):
    """Build the offline (whole-utterance) CRN; see the module docstring."""
    channels, sizes = validate_architecture(frequency_bins, channels)
    units = channels[-1] * sizes[-1]
    noisy = keras.Input((None, frequency_bins), name="noisy_magnitude")
    x = layers.Reshape((-1, frequency_bins, 1), name="add_channel")(noisy)

    encoder_activations = []
    for index, width in enumerate(channels, start=1):
        x = layers.ZeroPadding2D(((1, 0), (0, 0)), name=f"encoder{index}_causal_pad")(x)
        x = layers.Conv2D(width, KERNEL_SIZE, strides=STRIDES, padding="valid", name=f"encoder{index}_conv")(x)
        x = layers.BatchNormalization(name=f"encoder{index}_batch_norm", dtype="float32", **BATCH_NORM)(x)
        x = layers.ELU(name=f"encoder{index}_elu")(x)
        encoder_activations.append(x)

    x = layers.Reshape((-1, units), name="flatten_frequency")(x)
    for index in range(1, lstm_layers + 1):
        x = lstm(units, fused_lstm, return_sequences=True, name=f"lstm{index}")(x)
    x = layers.Reshape((-1, sizes[-1], channels[-1]), name="unflatten_frequency")(x)

    x = layers.Concatenate(name="lstm_skip")([x, encoder_activations[-1]])
    decoder_widths = list(channels[:-1][::-1]) + [1]
    for layer_number, width in zip(range(len(channels), 0, -1), decoder_widths):
        output_padding = decoder_output_padding(sizes[layer_number], sizes[layer_number - 1])
        x = layers.Conv2DTranspose(
            width,
            KERNEL_SIZE,
            strides=STRIDES,
            padding="valid",
            output_padding=(0, output_padding) if output_padding else None,
            name=f"decoder{layer_number}_deconv",
        )(x)
        # Frames 1..T-1 of the full transposed conv, then a zero frame 0: the author's padding=(1, 0) + F.pad.
        x = layers.Cropping2D(((1, 1), (0, 0)), name=f"decoder{layer_number}_crop")(x)
        x = layers.ZeroPadding2D(((1, 0), (0, 0)), name=f"decoder{layer_number}_first_frame")(x)
        x = layers.BatchNormalization(name=f"decoder{layer_number}_batch_norm", dtype="float32", **BATCH_NORM)(x)
        if layer_number > 1:
            # Skip connection after the batch norm and before the ELU (networks.py forward).
            x = layers.Concatenate(name=f"decoder{layer_number}_skip")([x, encoder_activations[layer_number - 2]])
            x = layers.ELU(name=f"decoder{layer_number}_elu")(x)
    x = StableSoftplus(dtype="float32", name="softplus")(x)
    enhanced = layers.Reshape((-1, frequency_bins), dtype="float32", name="enhanced_magnitude")(x)
    return keras.Model(noisy, enhanced, name=name)


MODEL_KEYS = ("frequency_bins", "channels", "lstm_layers")


def build_from_config(model_section, fused_lstm=False, name="crn", source=None):
    """Build the CRN from the ``model:`` section of ``conf/*.yaml``, which must hold every key of ``MODEL_KEYS``.

    ``source`` is the configuration file that the errors name (``config["config_path"]``).
    """
    check_keys(model_section, "model", MODEL_KEYS, source=source)
    return build_crn(model_section["frequency_bins"], model_section["channels"], model_section["lstm_layers"],
                     name=name, fused_lstm=fused_lstm)


def crn_macs_per_frame(frequency_bins=PAPER_FREQUENCY_BINS, channels=PAPER_CHANNELS, lstm_layers=2):
    """Multiply-accumulates per frame, counted from the layer shapes (independent of the Keras graph)."""
    channels, sizes = validate_architecture(frequency_bins, channels)
    kernel = KERNEL_SIZE[0] * KERNEL_SIZE[1]
    macs = 0
    previous = 1
    for index, width in enumerate(channels):
        macs += sizes[index + 1] * width * kernel * previous
        previous = width
    units = channels[-1] * sizes[-1]
    macs += lstm_layers * 4 * units * (units + units)
    decoder_inputs = [2 * c for c in channels[::-1]]
    decoder_outputs = list(channels[:-1][::-1]) + [1]
    for index, (inputs, outputs) in enumerate(zip(decoder_inputs, decoder_outputs)):
        input_frequency = sizes[len(channels) - index]
        macs += input_frequency * inputs * outputs * kernel
    return macs
