"""The ICSE size rule (docs/icse.md#size-rule): a model's size in percent of the float FCN counts every non-zero
conv weight at log2 of its layer's code-book size, and the code-book sizes of a quantized, float or unknown
(e.g. ``--init-from-keras1``) model.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from reproductions.icse.fcn import conv_layers, conv_weight_statistics
from reproductions.icse.variants import output_layer_name

# A float32 weight costs 32 bits under the ICSE size rule: a "code book" of 2**32 levels.
FLOAT_LEVELS = 2 ** 32


def quantized_levels(model, clusters_per_sign, output_clusters_per_sign) -> dict:
    """Code-book size ``k`` per conv layer for the ICSE bit rule (docs/icse.md#size-rule): the hidden layers count ``k``
    = clusters per sign (the released 16 + 16 code book is "16C", 4 bits) and the output layer its total number of
    levels (4 + 4 = 8, 3 bits); with these the released model gives exactly 9.76 %."""
    output = output_layer_name(model)
    return {layer.name: (2 * int(output_clusters_per_sign) if layer.name == output else int(clusters_per_sign))
            for layer in conv_layers(model)}


def float_levels(model) -> dict:
    return {layer.name: FLOAT_LEVELS for layer in conv_layers(model)}


def inferred_levels(model) -> dict:
    """ICSE code-book sizes read off the weights (for a file of unknown history, e.g. ``--init-from-keras1``): a
    layer with more than 256 distinct non-zero values is float (32 bits); otherwise the hidden layers count half
    their signed levels and the output layer all of them, the convention of :func:`quantized_levels`."""
    output = output_layer_name(model)
    levels = {}
    for row in conv_weight_statistics(model):
        distinct = row["distinct_nonzero"]
        if distinct > 256:
            levels[row["layer"]] = FLOAT_LEVELS
        elif row["layer"] == output:
            levels[row["layer"]] = max(distinct, 1)
        else:
            levels[row["layer"]] = max(int(math.ceil(distinct / 2)), 1)
    return levels


def icse_size(model, levels) -> float:
    return size_percent({layer.name: layer.kernel.numpy() for layer in conv_layers(model)}, levels)


def kept_fraction(model) -> float:
    statistics = conv_weight_statistics(model)
    return sum(row["nonzero"] for row in statistics) / sum(row["weights"] for row in statistics)


def size_percent(kernels: Mapping[str, np.ndarray] | Sequence[np.ndarray], levels: Mapping[str, int] |
                 Sequence[int] | int = 16) -> float:
    """ICSE model size in percent of the float32 original (``docs/icse.md#size-rule``).

    Args:
        kernels: convolution kernels (layer name -> array, or a list in layer order); zeros are pruned weights.
        levels: code-book size ``k`` per layer (same keys/order as ``kernels``) or one int for all layers; each
            kept weight costs ``log2(k)`` bits.
    Returns:
        ``100 * sum(nonzero_l * log2(k_l)) / (sum(size_l) * 32)``.
    """
    if isinstance(kernels, Mapping):
        names = list(kernels)
        arrays = [np.asarray(kernels[name]) for name in names]
        if isinstance(levels, Mapping):
            missing = set(names) - set(levels)
            if missing:
                raise ValueError(f"size_percent has no levels for layers {sorted(missing)}")
            ks = [levels[name] for name in names]
        else:
            ks = [levels] * len(arrays) if isinstance(levels, int) else list(levels)
    else:
        arrays = [np.asarray(k) for k in kernels]
        ks = [levels] * len(arrays) if isinstance(levels, int) else list(levels)
    if len(ks) != len(arrays) or not arrays:
        raise ValueError(f"size_percent got {len(arrays)} kernels and {len(ks)} levels")
    for k in ks:
        if int(k) < 1:
            raise ValueError(f"code-book size must be >= 1, got {k}")
    bits = sum(np.count_nonzero(a) * math.log2(int(k)) for a, k in zip(arrays, ks))
    total = sum(a.size for a in arrays) * 32
    return 100.0 * bits / total
