"""TF-GridNet for single-channel speech enhancement, as in Acceleration123/Speech-Enhancement (direct / progressive
learning).

The network maps the noisy waveform ``y`` to the clean waveform by direct complex spectral mapping:

    Y      = STFT(y)                                   512-point sqrt-Hann, hop 256, centred (torch.stft)
    P      = |complex_conv_3x1(Y)|^0.5                 phase encoder, 1 -> 4 complex channels
    e_0    = GroupNorm_1(Conv2D_3x3(P))                4 -> D channels, frequency unpadded: 257 -> 255
    o_b    = GridNetBlock_b(e_0 + sum_{j<b} o_j)       progressive learning (PL); direct learning (DL): o_b = GridNetBlock_b(o_{b-1})
    S_b    = ConvTranspose2D_3x3(o_b)                  D -> 2 (real, imaginary), frequency 255 -> 257
    s_b    = iSTFT(S_b), zero-padded to len(y)         DL returns s_B only; PL one head and one waveform per block

Each GridNet block (ESPnet ``tfgridnet_separator.py``, copied upstream) is

    intra-frame:  x += ConvT1D_{I,J}(BLSTM_H(Unfold_{I,J}(LN_C(x))))    along frequency, one sequence per frame
    inter-frame:  x += ConvT1D_{I,J}(BLSTM_H(Unfold_{I,J}(LN_C(x))))    along time, one sequence per frequency
    attention:    Q_l, K_l = LN_{E,F}(PReLU(Conv1x1_E(x))),  V_l = LN_{D/L,F}(PReLU(Conv1x1_{D/L}(x)))   l = 1..L
                  A_l = softmax(Q_l K_l^T / sqrt(E F)) V_l   over all frames of the utterance (flattened F x E per frame)
                  x += LN_{D,F}(PReLU(Conv1x1_D([A_1 .. A_L])))

Args (``build_tfgridnet``):
    n_fft, hop_length: STFT size and hop (512, 256).
    phase_channels: complex output channels of the phase encoder (4).
    embedding_dim: D (32).   unfold_kernel: I (4).   unfold_stride: J (1).   hidden_units: H per LSTM direction (100).
    num_blocks: B (5).   num_heads: L (4).   approx_qk_dim: E = floor(approx_qk_dim / 255) = floor(1024/255) = 4.
    eps: epsilon of every normalisation (1e-5).
    phase_bias_magnitude: modulus of the phase encoder's initial complex biases (0: Keras' zero biases, the paper
        configuration); an initialiser only, see ``phase_encoder_biases``.   progressive: one output head per block (PL) instead of one (DL).
    fused_lstm: build the BLSTMs from ``common.recurrent.LSTM`` (same weights, faster CPU training) instead of
        ``keras.layers.LSTM``; export with False (the converter needs the Keras layer).
    normalize_input: divide the waveform by its standard deviation and multiply every output back (ESPnet; off in
        the paper configuration, as upstream).
    complex_input: feed the (real, imaginary) STFT to the input convolution instead of the phase encoder's
        magnitudes (ESPnet's input; our ablation, off in the paper configuration).

Shape:
    input ``(batch, samples)`` float32 waveform at 16 kHz (at least ``n_fft // 2 + 1`` samples for the reflect pad);
    output ``(batch, samples)`` (DL) or a list of ``num_blocks`` such tensors (PL, last = clean estimate).

Returns:
    A Functional ``keras.Model``. Paper configuration: 2,351,523 parameters (DL) and 2,353,835 (PL); upstream's
    PyTorch counts 2,359,523 / 2,361,835 include the second LSTM bias vector (400 per direction, 20 directions).

References:
    Z.-Q. Wang et al., "TF-GridNet: Integrating full- and sub-band modeling for speech separation", arXiv 2209.03952;
    ESPnet ``espnet2/enh/separator/tfgridnet_separator.py``; upstream Acceleration123/Speech-Enhancement
    ``model/{Module.py, Model_DL_end2end.py, Model_PL_end2end.py, configure.toml}``. All constants:
    ``docs/tfgridnet.md#model`` (hyper-parameters) and ``docs/tfgridnet.md#progressive-learning``.
    Differences from upstream: E uses ``floor`` as upstream does (ESPnet: ``ceil``); a tiny floor (1e-20) under the squared magnitude of the phase encoder so that digital
    silence gives a finite gradient (upstream's ``|z|^0.5`` has an infinite one at 0).
"""
import math

import numpy as np

from common.config import check_keys
from common.recurrent import lstm
from common.tfkeras import keras, layers, tf

PAPER_PARAMETERS = 2_351_523
PAPER_PARAMETERS_PROGRESSIVE = 2_353_835
SEED_PYTORCH_PARAMETERS = 2_359_523
SEED_PYTORCH_PARAMETERS_PROGRESSIVE = 2_361_835


def sqrt_hann_window(n_fft):
    """``torch.hann_window(n_fft) ** 0.5``: periodic Hann, square-rooted (upstream ``stft_encoder``)."""
    n = np.arange(n_fft)
    return np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft))


def dft_matrices(n_fft):
    """Real and imaginary parts of the one-sided DFT as ``(n_fft, n_fft // 2 + 1)`` matrices.

    The transform is a matrix product rather than ``tf.signal.rfft`` so that the .tflite needs no FFT kernel and
    the converter can quantise it like any matmul (``docs/toolchain.md#tflite-conversion``, kapre's
    "tflite_compatible" STFT); at 512 points it costs 0.26 M MACs per frame, under 0.1 % of the network.
    """
    n = np.arange(n_fft)[:, None]
    k = np.arange(n_fft // 2 + 1)[None, :]
    angle = 2.0 * np.pi * n * k / n_fft
    return np.cos(angle), -np.sin(angle)


def inverse_dft_matrices(n_fft):
    """Matrices mapping one-sided real/imaginary spectra ``(.., n_fft//2+1)`` to ``irfft`` frames ``(.., n_fft)``.

    ``irfft`` ignores the imaginary part of the DC and Nyquist bins and counts every other bin twice.
    """
    n = np.arange(n_fft)[None, :]
    k = np.arange(n_fft // 2 + 1)[:, None]
    weight = np.full((n_fft // 2 + 1, 1), 2.0)
    weight[0] = 1.0
    weight[-1] = 1.0
    angle = 2.0 * np.pi * k * n / n_fft
    return weight * np.cos(angle) / n_fft, -weight * np.sin(angle) / n_fft


def _check_positive_int(name, value, minimum=1):
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@keras.utils.register_keras_serializable(package="se")
class TorchStft(layers.Layer):
    """``torch.stft(x, n_fft, hop, window=sqrt_hann, center=True, pad_mode="reflect")`` as real/imaginary channels.

    Shape: ``(batch, samples)`` -> ``(batch, 1 + samples // hop, n_fft // 2 + 1, 2)``.
    """

    def __init__(self, n_fft=512, hop_length=256, **kwargs):
        super().__init__(**kwargs)
        self.n_fft = _check_positive_int("n_fft", n_fft, 2)
        self.hop_length = _check_positive_int("hop_length", hop_length)

    def build(self, input_shape):
        window = sqrt_hann_window(self.n_fft)[:, None]
        real, imaginary = dft_matrices(self.n_fft)
        self.real_kernel = tf.constant(window * real, tf.float32)
        self.imaginary_kernel = tf.constant(window * imaginary, tf.float32)
        super().build(input_shape)

    def call(self, waveform):
        half = self.n_fft // 2
        padded = tf.pad(waveform, [[0, 0], [half, half]], mode="REFLECT")
        frames = tf.signal.frame(padded, self.n_fft, self.hop_length)
        real = tf.matmul(frames, self.real_kernel)
        imaginary = tf.matmul(frames, self.imaginary_kernel)
        return tf.stack([real, imaginary], axis=-1)

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        frames = None if samples is None else 1 + samples // self.hop_length
        return tf.TensorShape([input_shape[0], frames, self.n_fft // 2 + 1, 2])

    def compute_macs(self, input_shape, output_shape):
        frames = output_shape[1]
        return int(frames * self.n_fft * 2 * (self.n_fft // 2 + 1))

    def get_config(self):
        return {**super().get_config(), "n_fft": self.n_fft, "hop_length": self.hop_length}


@keras.utils.register_keras_serializable(package="se")
class TorchIstft(layers.Layer):
    """``torch.istft`` (centred, sqrt-Hann, window-envelope normalised) then zero-padded to the reference length.

    Inputs: ``[spectrum (batch, frames, n_fft//2+1, 2), reference (batch, samples)]``; the reference waveform only
    provides the output length, as ``F.pad(x, (0, n_samples - x.shape[-1]))`` does upstream.
    Shape: ``(batch, samples)``; torch.istft returns ``hop * (frames - 1)`` samples, the rest is zeros.
    """

    def __init__(self, n_fft=512, hop_length=256, **kwargs):
        super().__init__(**kwargs)
        self.n_fft = _check_positive_int("n_fft", n_fft, 2)
        self.hop_length = _check_positive_int("hop_length", hop_length)

    def build(self, input_shape):
        window = sqrt_hann_window(self.n_fft)[None, :]
        real, imaginary = inverse_dft_matrices(self.n_fft)
        self.real_kernel = tf.constant(real * window, tf.float32)
        self.imaginary_kernel = tf.constant(imaginary * window, tf.float32)
        self.squared_window = tf.constant(window[0] ** 2, tf.float32)
        super().build(input_shape)

    def call(self, inputs):
        spectrum, reference = inputs
        frames = tf.matmul(spectrum[..., 0], self.real_kernel) + tf.matmul(spectrum[..., 1], self.imaginary_kernel)
        signal = tf.signal.overlap_and_add(frames, self.hop_length)
        frame_count = tf.shape(frames)[1]
        envelope = tf.signal.overlap_and_add(
            tf.tile(self.squared_window[None, :], tf.stack([frame_count, 1])), self.hop_length
        )
        half = self.n_fft // 2
        length = self.hop_length * (frame_count - 1)
        signal = signal[:, half : half + length]
        envelope = envelope[half : half + length]
        # torch.istft refuses envelopes below 1e-11 (NOLA); the sqrt-Hann pair at 50 % overlap sums to one.
        signal = signal / tf.maximum(envelope, 1e-11)
        missing = tf.shape(reference)[1] - length
        return tf.pad(signal, tf.stack([[0, 0], [0, tf.maximum(missing, 0)]]))[:, : tf.shape(reference)[1]]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[1][0], input_shape[1][1]])

    def compute_macs(self, input_shape, output_shape):
        frames = input_shape[0][1]
        return int(frames * 2 * (self.n_fft // 2 + 1) * self.n_fft)

    def get_config(self):
        return {**super().get_config(), "n_fft": self.n_fft, "hop_length": self.hop_length}


def phase_encoder_biases(channels, magnitude):
    """Initial biases ``(b_real, b_imaginary)`` of the phase encoder's two convolutions such that channel k's
    complex bias ``b_k = (b_real - b_imaginary) + j (b_real + b_imaginary)`` has modulus ``magnitude`` and angle
    ``2 pi (k + 0.5) / channels``.

    With ``|b_k|`` large against ``|W * Y|``, ``|W * Y + b_k| ~ |b_k| + Re(conj(b_k) / |b_k| W * Y)`` is linear in
    the real and imaginary parts of the spectrum, so its phase reaches the network from the first step; each
    channel projects onto another direction of the complex plane.
    """
    angles = 2.0 * np.pi * (np.arange(channels) + 0.5) / channels
    complex_real, complex_imaginary = magnitude * np.cos(angles), magnitude * np.sin(angles)
    real = (complex_real + complex_imaginary) / 2.0
    imaginary = (complex_imaginary - complex_real) / 2.0
    return real.astype(np.float32), imaginary.astype(np.float32)


@keras.utils.register_keras_serializable(package="se")
class ComplexPhaseEncoder(layers.Layer):
    """Complex 2-D convolution of the spectrum followed by magnitude compression (upstream ``Phase_Encoder``).

    With the real-valued kernels ``W_r``, ``W_i`` (each Conv2D 1 -> C, kernel 3x1 over time x frequency, time padded
    by one): ``Z = (W_r*Y_r - W_i*Y_i) + j (W_r*Y_i + W_i*Y_r)``, output ``|Z|^0.5``.
    Shape: ``(batch, frames, freq, 2)`` -> ``(batch, frames, freq, channels)``.
    """

    def __init__(self, channels=4, kernel_size=(3, 1), bias_magnitude=0.0, **kwargs):
        super().__init__(**kwargs)
        self.channels = _check_positive_int("phase_channels", channels)
        self.kernel_size = tuple(int(size) for size in kernel_size)
        if not float(bias_magnitude) >= 0.0:
            raise ValueError(f"phase_bias_magnitude must be >= 0, got {bias_magnitude!r}")
        self.bias_magnitude = float(bias_magnitude)

    def build(self, input_shape):
        single = tf.TensorShape(input_shape[:-1]).concatenate([1])
        self.real_convolution = layers.Conv2D(self.channels, self.kernel_size, padding="same", name="real")
        self.imaginary_convolution = layers.Conv2D(self.channels, self.kernel_size, padding="same", name="imaginary")
        self.real_convolution.build(single)
        self.imaginary_convolution.build(single)
        if self.bias_magnitude:
            real_bias, imaginary_bias = phase_encoder_biases(self.channels, self.bias_magnitude)
            self.real_convolution.bias.assign(real_bias)
            self.imaginary_convolution.bias.assign(imaginary_bias)
        super().build(input_shape)

    def call(self, spectrum):
        real, imaginary = spectrum[..., :1], spectrum[..., 1:]
        out_real = self.real_convolution(real) - self.imaginary_convolution(imaginary)
        out_imaginary = self.real_convolution(imaginary) + self.imaginary_convolution(real)
        return tf.pow(tf.maximum(tf.square(out_real) + tf.square(out_imaginary), 1e-20), 0.25)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[:-1]).concatenate([self.channels])

    def compute_macs(self, input_shape, output_shape):
        positions = output_shape[1] * output_shape[2]
        taps = self.kernel_size[0] * self.kernel_size[1]
        return int(positions * self.channels * (4 * taps + 2))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "kernel_size": self.kernel_size,
                "bias_magnitude": self.bias_magnitude}


@keras.utils.register_keras_serializable(package="se")
class WaveformDeviation(layers.Layer):
    """Standard deviation of each waveform over its samples (``torch.std`` as ESPnet's TFGridNet, unbiased),
    floored so that digital silence does not divide by zero.

    Shape: ``(batch, samples)`` -> ``(batch, 1)``.
    """

    def __init__(self, floor=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.floor = float(floor)

    def call(self, waveform):
        count = tf.cast(tf.shape(waveform)[1], waveform.dtype)
        centred = waveform - tf.reduce_mean(waveform, axis=1, keepdims=True)
        variance = tf.reduce_sum(tf.square(centred), axis=1, keepdims=True) / tf.maximum(count - 1.0, 1.0)
        return tf.maximum(tf.sqrt(variance), self.floor)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], 1])

    def compute_macs(self, input_shape, output_shape):
        return 0

    def get_config(self):
        return {**super().get_config(), "floor": self.floor}


@keras.utils.register_keras_serializable(package="se")
class ScaleWaveform(layers.Layer):
    """``[waveform (batch, samples), scale (batch, 1)]`` -> ``waveform / scale`` or, with ``inverse``, ``* scale``."""

    def __init__(self, inverse=False, **kwargs):
        super().__init__(**kwargs)
        self.inverse = bool(inverse)

    def call(self, inputs):
        waveform, scale = inputs
        return waveform * scale if self.inverse else waveform / scale

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])

    def compute_macs(self, input_shape, output_shape):
        return 0

    def get_config(self):
        return {**super().get_config(), "inverse": self.inverse}


def _check_axis(axis):
    if axis not in ("frequency", "time"):
        raise ValueError(f"axis must be 'frequency' or 'time', got {axis!r}")
    return axis


@keras.utils.register_keras_serializable(package="se")
class UnfoldSequences(layers.Layer):
    """Cut ``(batch, frames, freq, C)`` into one sequence per frame (``axis="frequency"``) or per bin (``"time"``)
    of overlapping windows of ``kernel`` steps with hop ``stride`` (``F.unfold`` in ESPnet's GridNetBlock).

    The sequence axis is zero-padded at its end to ``ceil((L - I) / J) * J + I`` steps (ESPnet's rule; no padding
    when J = 1). Window features are ordered channel-major as ``F.unfold`` does (``c * I + k``).
    Shape: ``(batch * frames, windows, C * kernel)`` (frequency) or ``(batch * freq, windows, C * kernel)`` (time).
    """

    def __init__(self, axis, kernel, stride, **kwargs):
        super().__init__(**kwargs)
        self.axis = _check_axis(axis)
        self.kernel = _check_positive_int("unfold_kernel", kernel)
        self.stride = _check_positive_int("unfold_stride", stride)

    def windows(self, length):
        """Number of windows for a sequence of ``length`` steps."""
        padded = max(math.ceil((length - self.kernel) / self.stride) * self.stride + self.kernel, self.kernel)
        return (padded - self.kernel) // self.stride + 1

    def call(self, x):
        channels = x.shape[-1]
        if self.axis == "time":
            x = tf.transpose(x, [0, 2, 1, 3])
        length = tf.shape(x)[2]
        sequences = tf.reshape(x, tf.stack([-1, length, channels]))
        windows = tf.maximum((length - self.kernel + self.stride - 1) // self.stride, 0) + 1
        padded = (windows - 1) * self.stride + self.kernel
        sequences = tf.pad(sequences, tf.stack([[0, 0], [0, padded - length], [0, 0]]))
        span = (windows - 1) * self.stride + 1
        shifted = [sequences[:, offset : offset + span : self.stride] for offset in range(self.kernel)]
        stacked = tf.stack(shifted, axis=-1)  # (sequences, windows, C, I)
        return tf.reshape(stacked, tf.stack([-1, windows, channels * self.kernel]))

    def compute_output_shape(self, input_shape):
        length = input_shape[2] if self.axis == "frequency" else input_shape[1]
        windows = None if length is None else self.windows(length)
        return tf.TensorShape([None, windows, input_shape[-1] * self.kernel])

    def compute_macs(self, input_shape, output_shape):
        return 0

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "kernel": self.kernel, "stride": self.stride}


@keras.utils.register_keras_serializable(package="se")
class FoldSequences(layers.Layer):
    """Inverse of :class:`UnfoldSequences`' batching: ``[sequences, reference]`` -> the reference's layout.

    ``sequences`` is ``(batch * frames, steps, C)`` (frequency) or ``(batch * freq, steps, C)`` (time) with
    ``steps >=`` the reference's length along ``axis``; the padded tail is cropped.
    Shape: ``(batch, frames, freq, C)`` like ``reference``.
    """

    def __init__(self, axis, **kwargs):
        super().__init__(**kwargs)
        self.axis = _check_axis(axis)

    def call(self, inputs):
        sequences, reference = inputs
        shape = tf.shape(reference)
        channels = sequences.shape[-1]
        steps = tf.shape(sequences)[1]
        if self.axis == "frequency":
            grid = tf.reshape(sequences, tf.stack([shape[0], shape[1], steps, channels]))
            return grid[:, :, : shape[2]]
        grid = tf.reshape(sequences, tf.stack([shape[0], shape[2], steps, channels]))
        return tf.transpose(grid[:, :, : shape[1]], [0, 2, 1, 3])

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[1][:-1]).concatenate([input_shape[0][-1]])

    def compute_macs(self, input_shape, output_shape):
        return 0

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras.utils.register_keras_serializable(package="se")
class FullUtteranceAttention(layers.Layer):
    """Multi-head self-attention across all frames, each frame flattened over frequency x channels.

    Inputs ``[queries, keys, values]`` of shape ``(batch, frames, freq, L*E)``, ``(.., L*E)``, ``(.., L*V)``, heads
    concatenated along channels (head-major). Head l: ``softmax(Q_l K_l^T / sqrt(E * freq)) V_l``.
    Shape: ``(batch, frames, freq, L*V)``, heads concatenated in order (ESPnet's view/transpose).
    """

    def __init__(self, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _check_positive_int("num_heads", num_heads)

    def _split_heads(self, x):
        shape = tf.shape(x)
        per_head = x.shape[-1] // self.num_heads
        x = tf.reshape(x, tf.stack([shape[0], shape[1], shape[2], self.num_heads, per_head]))
        x = tf.transpose(x, [0, 3, 1, 2, 4])  # (batch, heads, frames, freq, channels)
        return tf.reshape(x, tf.stack([shape[0], self.num_heads, shape[1], shape[2] * per_head]))

    def call(self, inputs):
        queries, keys, values = inputs
        shape = tf.shape(values)
        query_dim = tf.cast(shape[2] * (queries.shape[-1] // self.num_heads), queries.dtype)
        scores = tf.matmul(self._split_heads(queries), self._split_heads(keys), transpose_b=True)
        # The softmax in float32 under a mixed policy: bf16's 8-bit mantissa flattens the weights of long utterances.
        weights = tf.nn.softmax(tf.cast(scores / tf.sqrt(query_dim), tf.float32), axis=-1)
        weights = tf.cast(weights, values.dtype)
        attended = tf.matmul(weights, self._split_heads(values))  # (batch, heads, frames, freq * V)
        per_head = values.shape[-1] // self.num_heads
        attended = tf.reshape(attended, tf.stack([shape[0], self.num_heads, shape[1], shape[2], per_head]))
        attended = tf.transpose(attended, [0, 2, 3, 1, 4])
        return tf.reshape(attended, tf.stack([shape[0], shape[1], shape[2], values.shape[-1]]))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[2])

    def compute_macs(self, input_shape, output_shape):
        _, frames, freq, query_channels = input_shape[0]
        value_channels = input_shape[2][-1]
        return int(frames * frames * freq * (query_channels + value_channels))

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}


def recurrent_path(x, axis, kernel, stride, hidden_units, eps, name, fused_lstm=False):
    """Intra-frame (``axis="frequency"``) or inter-frame (``"time"``) BLSTM path with its residual."""
    embedding_dim = x.shape[-1]
    normalized = layers.LayerNormalization(axis=-1, epsilon=eps, dtype="float32", name=f"{name}_norm")(x)
    windows = UnfoldSequences(axis, kernel, stride, name=f"{name}_unfold")(normalized)
    recurrent = layers.Bidirectional(
        lstm(hidden_units, fused_lstm, return_sequences=True), name=f"{name}_blstm"
    )(windows)
    projected = layers.Conv1DTranspose(embedding_dim, kernel, strides=stride, name=f"{name}_linear")(recurrent)
    folded = FoldSequences(axis, name=f"{name}_fold")([projected, x])
    return layers.Add(name=f"{name}_residual")([folded, x])


def attention_projection(x, channels, eps, name):
    """Conv1x1 -> PReLU (one slope, 0.25 as torch) -> LayerNorm over (freq, channels) (ESPnet LayerNormalization4DCF)."""
    x = layers.Conv2D(channels, 1, name=f"{name}_conv")(x)
    x = layers.PReLU(keras.initializers.Constant(0.25), shared_axes=[1, 2, 3], name=f"{name}_prelu")(x)
    return layers.LayerNormalization(axis=[2, 3], epsilon=eps, dtype="float32", name=f"{name}_norm")(x)


def attention_path(x, num_heads, qk_channels, eps, name):
    """Full-utterance multi-head self-attention with its residual."""
    embedding_dim = x.shape[-1]
    if embedding_dim % num_heads:
        raise ValueError(
            f"embedding_dim {embedding_dim} must be divisible by num_heads {num_heads}"
        )
    heads = range(num_heads)
    queries = [attention_projection(x, qk_channels, eps, f"{name}_query{h}") for h in heads]
    keys = [attention_projection(x, qk_channels, eps, f"{name}_key{h}") for h in heads]
    values = [attention_projection(x, embedding_dim // num_heads, eps, f"{name}_value{h}") for h in heads]
    concatenate = lambda tensors, kind: (  # noqa: E731
        tensors[0] if num_heads == 1 else layers.Concatenate(name=f"{name}_{kind}")(tensors)
    )
    attended = FullUtteranceAttention(num_heads, name=f"{name}_attention")(
        [concatenate(queries, "queries"), concatenate(keys, "keys"), concatenate(values, "values")]
    )
    projected = attention_projection(attended, embedding_dim, eps, f"{name}_output")
    return layers.Add(name=f"{name}_residual")([projected, x])


def gridnet_block(x, kernel, stride, hidden_units, num_heads, qk_channels, eps, name, fused_lstm=False):
    """One TF-GridNet block: intra-frame BLSTM, inter-frame BLSTM, full-utterance attention."""
    x = recurrent_path(x, "frequency", kernel, stride, hidden_units, eps, f"{name}_intra", fused_lstm)
    x = recurrent_path(x, "time", kernel, stride, hidden_units, eps, f"{name}_inter", fused_lstm)
    return attention_path(x, num_heads, qk_channels, eps, f"{name}_attn")


def output_head(x, waveform, n_fft, hop_length, name):
    """ConvTranspose2D 3x3 (torch padding (1, 0): crop one frame each side) -> complex spectrum -> iSTFT."""
    spectrum = layers.Conv2DTranspose(2, (3, 3), name=f"{name}_deconv")(x)
    spectrum = layers.Cropping2D(((1, 1), (0, 0)), name=f"{name}_crop")(spectrum)
    return TorchIstft(n_fft, hop_length, dtype="float32", name=name)([spectrum, waveform])


def build_tfgridnet(
    n_fft=512,
    hop_length=256,
    phase_channels=4,
    embedding_dim=32,
    unfold_kernel=4,
    unfold_stride=1,
    hidden_units=100,
    num_blocks=5,
    num_heads=4,
    approx_qk_dim=1024,
    eps=1e-5,
    phase_bias_magnitude=0.0,
    progressive=False,
    normalize_input=False,
    complex_input=False,
    name=None,
    fused_lstm=False,
):
    """Build TF-GridNet (DL) or its progressive-learning variant (PL); see the module docstring."""
    n_fft = _check_positive_int("n_fft", n_fft, 8)
    if n_fft % 2:
        raise ValueError(f"n_fft must be even, got {n_fft}")
    hop_length = _check_positive_int("hop_length", hop_length)
    if hop_length > n_fft // 2:
        raise ValueError(f"hop_length {hop_length} > n_fft/2 breaks the overlap-add")
    embedding_dim = _check_positive_int("embedding_dim", embedding_dim)
    num_blocks = _check_positive_int("num_blocks", num_blocks)
    hidden_units = _check_positive_int("hidden_units", hidden_units)
    num_heads = _check_positive_int("num_heads", num_heads)
    if embedding_dim % num_heads:
        raise ValueError(
            f"embedding_dim {embedding_dim} must be divisible by num_heads {num_heads}"
        )
    block_freqs = n_fft // 2 + 1 - 2  # the unpadded 3x3 input convolution removes one bin at each edge
    # E = floor(approx_qk_dim / n_freqs) (upstream Module.py; ESPnet uses ceil), here floor(1024 / 255) = 4.
    qk_channels = math.floor(approx_qk_dim / block_freqs)
    if qk_channels < 1:
        raise ValueError(
            f"approx_qk_dim {approx_qk_dim} < {block_freqs} frequency bins gives E = 0"
        )
    waveform = keras.Input(shape=(None,), name="noisy")
    network_input = waveform
    if normalize_input:
        deviation = WaveformDeviation(dtype="float32", name="input_deviation")(waveform)
        network_input = ScaleWaveform(dtype="float32", name="input_scale")([waveform, deviation])
    spectrum = TorchStft(n_fft, hop_length, dtype="float32", name="stft")(network_input)
    if complex_input:
        features = spectrum
    else:
        features = ComplexPhaseEncoder(phase_channels, (3, 1), phase_bias_magnitude, name="phase_encoder")(spectrum)
    features = layers.ZeroPadding2D(((1, 1), (0, 0)), name="input_pad")(features)
    features = layers.Conv2D(embedding_dim, (3, 3), name="input_conv")(features)
    embedding = layers.GroupNormalization(groups=1, epsilon=eps, dtype="float32", name="input_norm")(features)

    block_arguments = (unfold_kernel, unfold_stride, hidden_units, num_heads, qk_channels, eps)

    def head(x, name):
        estimate = output_head(x, network_input, n_fft, hop_length, name=name)
        if not normalize_input:
            return estimate
        return ScaleWaveform(inverse=True, dtype="float32", name=f"{name}_rescale")([estimate, deviation])

    outputs = []
    x = embedding
    cumulative = embedding
    for index in range(1, num_blocks + 1):
        if progressive and index > 1:
            cumulative = layers.Add(name=f"cumulative{index}")([cumulative, x])
            x = gridnet_block(cumulative, *block_arguments, name=f"block{index}", fused_lstm=fused_lstm)
        else:
            x = gridnet_block(x, *block_arguments, name=f"block{index}", fused_lstm=fused_lstm)
        if progressive:
            outputs.append(head(x, f"estimate{index}"))
    if not progressive:
        outputs = head(x, "enhanced")
    default_name = "tfgridnet_pl" if progressive else "tfgridnet_dl"
    return keras.Model(waveform, outputs, name=name or default_name)


MODEL_KEYS = (
    "n_fft", "hop_length", "phase_channels", "embedding_dim", "unfold_kernel", "unfold_stride", "hidden_units",
    "num_blocks", "num_heads", "approx_qk_dim", "eps", "phase_bias_magnitude", "normalize_input", "complex_input",
)


def build_from_config(model_section, progressive=False, complex_input=None, fused_lstm=False, source=None):
    """Build the model from the ``model:`` section of ``conf/*.yaml``, which must hold every key of ``MODEL_KEYS``.

    ``complex_input`` overrides the section's value (the ablation trains the configured network with the complex
    spectrum as input); ``source`` is the configuration file that the errors name (``config["config_path"]``).
    """
    check_keys(model_section, "model", MODEL_KEYS, source=source)
    where = f"{source}: " if source else ""
    for key in ("normalize_input", "complex_input"):
        if not isinstance(model_section[key], bool):
            raise ValueError(f"{where}model.{key} must be true or false, got {model_section[key]!r}")
    arguments = dict(model_section)
    if complex_input is not None:
        arguments["complex_input"] = bool(complex_input)
    return build_tfgridnet(**arguments, progressive=progressive, fused_lstm=fused_lstm)
