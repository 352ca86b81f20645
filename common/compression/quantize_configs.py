"""QuantizeConfigs for the layers TFMOT 0.8.1's default 8-bit registry does not cover.

TFMOT leaves Conv1D, Conv1DTranspose, PReLU, LayerNormalization, GroupNormalization, stand-alone BatchNormalization
and every custom layer unannotated (``docs/toolchain.md#layer-coverage``).  A layer annotated with its own
QuantizeConfig bypasses the scheme's registry (``quantize.py`` ``quantize_apply``,
``docs/toolchain.md#layer-coverage``), so the prune- and cluster-preserving weight quantizers of collaborative
optimisation are *not* installed for it.
:class:`KernelQuantizeConfig` therefore takes a ``preserve`` argument and installs the matching TFMOT preserve
quantizer itself (a fresh instance per layer: TFMOT's registry shares one instance between layers, and the cluster
quantizer flips its ``preserve_sparsity`` flag on a layer without zeros).

Configs:
* :class:`KernelQuantizeConfig` -- weighted layers outside the registry (Conv1D, Conv1DTranspose, ...): int8
  symmetric kernel, per tensor by default.  Per-channel ranges (``per_axis=True``) work only for rank-4 kernels:
  TFMOT's ``LastValueQuantize`` has no per-channel branch for a rank-3 Conv1D kernel ("'reduce_dims' is used
  before assignment"), and folding the kernel to rank 2 or 4 around it makes the TFLite converter fail
  ("'tfl.reshape'/'tfl.transpose' op has mismatched quantized axes", verified with TF 2.21).  Where per-channel
  int8 matters, build the layer as Conv2D with a (1, k) kernel, which TFMOT's registry handles.
  the activation output quantized by a moving-average asymmetric 8-bit quantizer.
* :class:`OutputQuantizeConfig` -- generic output-only config, usable for any custom layer (PReLU, gLN,
  LayerNormalization, instance norms, ...): weights stay float in training (the converter quantizes them), the
  output range is learned.
* :class:`NoOpQuantizeConfig` -- nothing quantized (reshape-like layers whose output scale equals their input's).
"""
from __future__ import annotations

from common.tfkeras import tfmot

_quantization = tfmot().quantization.keras
_quantizers = _quantization.quantizers
QuantizeConfig = _quantization.QuantizeConfig

PRESERVE_MODES = ("none", "sparsity", "clusters", "clusters_sparsity")


def activation_quantizer():
    """TFMOT's default 8-bit activation quantizer (per tensor, asymmetric, moving-average range)."""
    return _quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)


def weight_quantizer(preserve: str = "none", per_axis: bool = True):
    """A fresh 8-bit symmetric narrow-range weight quantizer, optionally prune- or cluster-preserving."""
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
        cluster_preserve_quantize_registry as cluster_preserve)
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        prune_preserve_quantize_registry as prune_preserve)
    if preserve not in PRESERVE_MODES:
        raise ValueError(f"preserve must be one of {PRESERVE_MODES}, got {preserve!r}")
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import default_8bit_quantizers

    if preserve == "none":
        if per_axis:
            return default_8bit_quantizers.Default8BitConvWeightsQuantizer()
        return _quantizers.LastValueQuantizer(num_bits=8, per_axis=False, symmetric=True, narrow_range=True)
    if preserve == "sparsity":
        if per_axis:
            return prune_preserve.PrunePreserveDefault8BitConvWeightsQuantizer()
        return prune_preserve.PrunePreserveDefault8BitWeightsQuantizer()
    keep_zeros = preserve == "clusters_sparsity"
    if per_axis:
        return cluster_preserve.ClusterPreserveDefault8BitConvWeightsQuantizer(keep_zeros)
    return cluster_preserve.ClusterPreserveDefault8BitWeightsQuantizer(keep_zeros)


class KernelQuantizeConfig(QuantizeConfig):
    """Quantize ``kernel`` (int8 symmetric) and the layer's ``activation`` output.

    Args:
        preserve: ``none`` | ``sparsity`` (PQAT) | ``clusters`` (CQAT) | ``clusters_sparsity`` (PCQAT).
        per_axis: per-output-channel weight ranges over the last axis of a rank-4 kernel (see module docstring);
            never for transposed convolutions, whose last kernel axis is the input channel.
        weight_attr: name of the kernel attribute.
    """

    def __init__(self, preserve: str = "none", per_axis: bool = False, weight_attr: str = "kernel"):
        self.preserve = preserve
        self.per_axis = per_axis
        self.weight_attr = weight_attr
        self.weight_quantizer = weight_quantizer(preserve, per_axis)
        self.activation_quantizer = activation_quantizer()

    def get_weights_and_quantizers(self, layer):
        return [(getattr(layer, self.weight_attr), self.weight_quantizer)]

    def get_activations_and_quantizers(self, layer):
        return [(layer.activation, self.activation_quantizer)]

    def set_quantize_weights(self, layer, quantize_weights):
        setattr(layer, self.weight_attr, quantize_weights[0])

    def set_quantize_activations(self, layer, quantize_activations):
        layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {"preserve": self.preserve, "per_axis": self.per_axis, "weight_attr": self.weight_attr}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class OutputQuantizeConfig(QuantizeConfig):
    """Generic config for any layer: only the output tensor(s) get a learned 8-bit range."""

    def __init__(self):
        self.output_quantizer = activation_quantizer()

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [self.output_quantizer]

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class NoOpQuantizeConfig(OutputQuantizeConfig):
    """Nothing quantized: the layer stays float between fake-quantized neighbours."""

    def get_output_quantizers(self, layer):
        return []


def custom_objects() -> dict:
    """Objects needed by ``quantize_scope`` to clone or load models that use these configs."""
    return {"KernelQuantizeConfig": KernelQuantizeConfig, "OutputQuantizeConfig": OutputQuantizeConfig,
            "NoOpQuantizeConfig": NoOpQuantizeConfig}


__all__ = ["KernelQuantizeConfig", "OutputQuantizeConfig", "NoOpQuantizeConfig", "weight_quantizer",
           "activation_quantizer", "custom_objects", "PRESERVE_MODES"]
