"""Fu et al.'s fully convolutional waveform network (FCN), the model that ICSE compresses.

The network maps a noisy waveform x of any length T to an enhanced waveform y of the same length::

    h_0 = x
    h_i = LeakyReLU_0.3( IN_i( W_i * h_{i-1} + b_i ) )      i = 1..7,  W_i: 55 taps, 30 filters, 'same'
    y   = tanh( W_8 * h_7 + b_8 )                                      W_8: 55 taps, 1 filter, 'same'

``IN_i`` is Keras-1 ``BatchNormalization(mode=2)``: the statistics of the current input over time, per channel,
at training and at test, with learnable gamma/beta and epsilon 1e-5. The authors train and test with one
utterance per batch, so this is instance normalisation (``docs/icse.md#model``).

Layout choice: the convolutions are ``Conv1D``. The ICSE pipeline has no quantisation-aware training (its PQ step
is k-means plus retraining and its int8 model is post-training quantised), so the TFMOT QAT gap for ``Conv1D``
(``docs/toolchain.md#layer-coverage``) does not apply; the TFLite converter lowers ``Conv1D`` to ``CONV_2D``
itself, and the kernel layout ``(taps, in, out)`` is the authors' Keras-1 ``W[:, 0, :, :]`` with no reshaping.

Args (of :func:`build_fcn`):
    filters: channels of the seven hidden layers (30).
    kernel_size: taps of every convolution (55).
    hidden_layers: number of conv + IN + LeakyReLU blocks (7).
    leaky_slope: LeakyReLU alpha (0.3).
    epsilon: instance-norm epsilon (1e-5).

Shape:
    input ``(batch, T, 1)``, output ``(batch, T, 1)``, T any length.

Returns:
    a Functional ``keras.Model`` named ``fcn`` with 300,931 trainable parameters (300,300 conv weights) in the
    paper configuration; conv layers are named ``conv1`` .. ``conv8``.

References:
    S.-W. Fu, T.-W. Wang, Y. Tsao, X. Lu, H. Kawai, "End-to-end waveform utterance enhancement for direct
    evaluation metrics optimization by fully convolutional neural networks", IEEE/ACM TASLP 26(9), 2018.
    J.-Y. Wu, C. Yu, S.-W. Fu, C.-T. Liu, S.-Y. Chien, Y. Tsao, "Increasing compactness of deep learning based
    speech enhancement models with parameter pruning and quantization techniques", arXiv 1906.01078.
"""
from pathlib import Path

import numpy as np

from common.config import check_keys
from common.normalization import normalise_by_own_statistics
from common.tfkeras import keras, layers

# Keras 1's ``init='uniform'`` draws from U(-0.05, 0.05) (docs/icse.md#model); biases start at 0.
KERAS1_UNIFORM_LIMIT = 0.05


@keras.utils.register_keras_serializable(package="se")
class InstanceNormalization(layers.Layer):
    """Per-utterance, per-channel normalisation over time with learnable gamma/beta (Keras-1 BN mode 2).

    ``y = gamma * (x - mean_t(x)) / sqrt(var_t(x) + epsilon) + beta``, the biased variance, computed from the input
    itself in training and inference alike (no running statistics).

    Args:
        epsilon: added to the variance (Keras-1 BatchNormalization default 1e-5).

    Shape:
        ``(batch, T, channels)`` in and out.
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones", trainable=True)
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        # The int8-friendly form of the normalisation (common/normalization.py).
        return normalise_by_own_statistics(inputs, 1, self.gamma, self.beta, self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_macs(self, input_shape, output_shape):
        # The square for the variance and the scale by gamma / sqrt(var) are the two multiplications per element
        # (the same count as the gLN of reproductions/fqse/convtasnet.py); the sums for the mean are additions.
        return 2 * int(np.prod([int(dimension) for dimension in input_shape[1:]]))

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config


def build_fcn(filters=30, kernel_size=55, hidden_layers=7, leaky_slope=0.3, epsilon=1e-5, seed=None):
    """Build Fu et al.'s FCN (see the module docstring)."""
    if filters < 1 or kernel_size < 1 or hidden_layers < 1:
        raise ValueError(
            f"filters, kernel_size and hidden_layers must be positive, got {filters}, {kernel_size}, {hidden_layers}"
        )

    def uniform(index):
        return keras.initializers.RandomUniform(
            -KERAS1_UNIFORM_LIMIT, KERAS1_UNIFORM_LIMIT, seed=None if seed is None else seed + index
        )

    waveform = keras.Input(shape=(None, 1), name="noisy")
    hidden = waveform
    for index in range(1, hidden_layers + 1):
        hidden = layers.Conv1D(
            filters, kernel_size, padding="same", kernel_initializer=uniform(index), name=f"conv{index}"
        )(hidden)
        # Statistics in float32 under a mixed policy: a bf16 variance of a long utterance loses the small channels.
        hidden = InstanceNormalization(epsilon=epsilon, dtype="float32", name=f"instance_norm{index}")(hidden)
        hidden = layers.LeakyReLU(alpha=leaky_slope, name=f"leaky_relu{index}")(hidden)
    output_index = hidden_layers + 1
    hidden = layers.Conv1D(
        1, kernel_size, padding="same", kernel_initializer=uniform(output_index), name=f"conv{output_index}"
    )(hidden)
    enhanced = layers.Activation("tanh", dtype="float32", name="tanh")(hidden)
    return keras.Model(waveform, enhanced, name="fcn")


MODEL_KEYS = ("filters", "kernel_size", "hidden_layers", "leaky_slope", "epsilon")


def build_from_config(model_section, seed=None, source=None):
    """Build the FCN from the ``model:`` section of ``conf/*.yaml``, which must hold every key of ``MODEL_KEYS``.

    ``seed`` seeds the initialisers (the configuration's top-level ``seed``); ``source`` is the configuration file
    that the errors name (``config["config_path"]``).
    """
    check_keys(model_section, "model", MODEL_KEYS, source=source)
    return build_fcn(
        filters=int(model_section["filters"]),
        kernel_size=int(model_section["kernel_size"]),
        hidden_layers=int(model_section["hidden_layers"]),
        leaky_slope=float(model_section["leaky_slope"]),
        epsilon=float(model_section["epsilon"]),
        seed=seed,
    )


def conv_layers(model):
    """The model's convolution layers in order (``conv1`` .. ``conv8`` for the paper FCN)."""
    return [layer for layer in model.layers if isinstance(layer, layers.Conv1D)]


def norm_layers(model):
    """The model's instance-normalisation layers in order."""
    return [layer for layer in model.layers if isinstance(layer, InstanceNormalization)]


def read_keras1_weights(path):
    """Read a Keras 1.1 ``save_weights`` file of the FCN into plain numpy arrays.

    Returns:
        dict with ``kernels`` (list of ``(taps, in, out)`` arrays, Keras-1 ``W[:, 0, :, :]``, not flipped: the
        authors ran the TensorFlow backend, whose convolution is a cross-correlation like tf.keras;
        ``docs/icse.md#keras1-weights``), ``biases``, ``gammas``, ``betas``. The running
        statistics are ignored (mode 2 never uses them; they are 0 and 1 in the released files).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: Keras-1 weight file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not a readable HDF5 weight file ({error})") from error
    with handle:
        if "layer_names" not in handle.attrs:
            raise ValueError(f"{path}: no 'layer_names' attribute, not a Keras save_weights file")
        names = [name.decode() if isinstance(name, bytes) else str(name) for name in handle.attrs["layer_names"]]
        conv_names = [name for name in names if name.startswith("convolution1d_")]
        norm_names = [name for name in names if name.startswith("batchnormalization_")]
        if not conv_names:
            raise ValueError(f"{path}: no convolution1d_* layers, not a Keras-1 FCN weight file")
        weights = {"kernels": [], "biases": [], "gammas": [], "betas": []}
        for name in conv_names:
            group = handle[name]
            kernel = np.asarray(group[f"{name}_W:0"], dtype=np.float32)
            if kernel.ndim != 4 or kernel.shape[1] != 1:
                raise ValueError(f"{path}: {name}_W has shape {kernel.shape}, expected (taps, 1, in, out)")
            weights["kernels"].append(kernel[:, 0, :, :])
            weights["biases"].append(np.asarray(group[f"{name}_b:0"], dtype=np.float32))
        for name in norm_names:
            group = handle[name]
            weights["gammas"].append(np.asarray(group[f"{name}_gamma:0"], dtype=np.float32))
            weights["betas"].append(np.asarray(group[f"{name}_beta:0"], dtype=np.float32))
    return weights


def load_keras1_weights(model, path):
    """Copy a Keras 1.1 FCN weight file into ``model`` (built by :func:`build_fcn`); returns ``model``."""
    weights = read_keras1_weights(path)
    convolutions, norms = conv_layers(model), norm_layers(model)
    if len(weights["kernels"]) != len(convolutions) or len(weights["gammas"]) != len(norms):
        raise ValueError(
            f"{path}: file has {len(weights['kernels'])} conv and {len(weights['gammas'])} normalisation layers, "
            f"the model has {len(convolutions)} and {len(norms)}"
        )
    for layer, kernel, bias in zip(convolutions, weights["kernels"], weights["biases"]):
        expected = tuple(int(size) for size in layer.kernel.shape)
        if kernel.shape != expected or bias.shape != tuple(layer.bias.shape):
            raise ValueError(f"{path}: kernel {kernel.shape} for layer {layer.name} which expects {expected}")
        layer.set_weights([kernel, bias])
    for layer, gamma, beta in zip(norms, weights["gammas"], weights["betas"]):
        if gamma.shape != tuple(layer.gamma.shape):
            raise ValueError(f"{path}: gamma {gamma.shape} for layer {layer.name} which expects {layer.gamma.shape}")
        layer.set_weights([gamma, beta])
    return model


def fcn_from_keras1(path, leaky_slope=0.3, epsilon=1e-5):
    """Build an FCN with the layer sizes of a Keras-1 weight file and load it; returns ``(model, sizes)``."""
    weights = read_keras1_weights(path)
    first = weights["kernels"][0]
    sizes = {"filters": int(first.shape[-1]), "kernel_size": int(first.shape[0]),
             "hidden_layers": len(weights["kernels"]) - 1, "leaky_slope": leaky_slope, "epsilon": epsilon}
    model = build_from_config(sizes)
    return load_keras1_weights(model, path), sizes


def conv_weight_statistics(model):
    """Per conv layer: total and non-zero kernel weights and the number of distinct non-zero values."""
    statistics = []
    for layer in conv_layers(model):
        kernel = layer.kernel.numpy()
        nonzero = kernel[kernel != 0]
        statistics.append(
            {
                "layer": layer.name,
                "weights": int(kernel.size),
                "nonzero": int(nonzero.size),
                "kept_fraction": float(nonzero.size / kernel.size),
                "distinct_nonzero": int(np.unique(nonzero).size),
            }
        )
    return statistics
