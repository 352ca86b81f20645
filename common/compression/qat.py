"""Quantization-aware training with TFMOT, covering the layers the default registry leaves out.

:func:`quantize_model` annotates every layer of a flat Functional model and calls ``quantize_apply`` with one of
TFMOT's schemes:

* ``"default"``        -- ``Default8BitQuantizeScheme`` (plain QAT);
* ``"prune"``          -- ``Default8BitPrunePreserveQuantizeScheme`` (PQAT: zeros stay zero);
* ``"cluster"``        -- ``Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)`` (CQAT);
* ``"prune_cluster"``  -- ``Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)`` (PCQAT).

Per layer (first match wins, see :func:`annotation_plan`):
1. ``layer_configs`` given by the caller (by layer name or class), e.g. FQSE's quantizers;
2. layers the scheme's registry supports (Conv2D, Dense, DepthwiseConv2D, ReLU, Add, ...) -> TFMOT's own config,
   including the preserve quantizers of the scheme; a BatchNormalization right after Conv2D/DepthwiseConv2D is left
   to TFMOT's batch-norm folding;
3. Conv1D (and Conv2D/Dense the scheme's registry refuses) -> :class:`KernelQuantizeConfig`, int8 kernel per
   tensor (per channel only for rank-4 kernels: per-channel QAT of a rank-3 Conv1D kernel does not convert, see
   quantize_configs.py); Conv1DTranspose / Conv2DTranspose / Conv3DTranspose -> per tensor; both with the scheme's
   preserve mode installed explicitly, since a custom config bypasses the registry (docs/toolchain.md#layer-coverage);
4. recurrent layers (LSTM, GRU, Bidirectional, RNN) -> left unannotated: TFMOT cannot QAT them
   (docs/toolchain.md#layer-coverage); they are quantized at conversion (int8 or 16x8) and a fused LSTM op is kept;
5. anything else (PReLU, LayerNormalization, GroupNormalization, stand-alone BatchNormalization, custom layers)
   -> :class:`OutputQuantizeConfig` (output range learned, weights quantized by the converter).
``TFOpLambda``/``Lambda`` layers cannot be annotated (docs/toolchain.md#functional-models) and raise a ValueError naming
them.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from common.tfkeras import keras, tfmot

SCHEMES = ("default", "prune", "cluster", "prune_cluster")
_RECURRENT = (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN, keras.layers.RNN,
              keras.layers.Bidirectional)
_TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
_PRESERVE = {"default": "none", "prune": "sparsity", "cluster": "clusters", "prune_cluster": "clusters_sparsity"}


def _scheme(name: str):
    quantization = tfmot().quantization.keras
    if name == "default":
        return quantization.default_8bit.Default8BitQuantizeScheme()
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
        default_8bit_cluster_preserve_quantize_scheme as cluster_scheme)
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        default_8bit_prune_preserve_quantize_scheme as prune_scheme)

    if name == "prune":
        return prune_scheme.Default8BitPrunePreserveQuantizeScheme()
    if name in ("cluster", "prune_cluster"):
        return cluster_scheme.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=name == "prune_cluster")
    raise ValueError(f"unknown scheme {name!r}; use one of {SCHEMES}")


def _registry(name: str):
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry)

    return registry.Default8BitQuantizeRegistry() if name == "default" else _scheme(name).get_quantize_registry()


def _previous_layer(layer):
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        return None
    inbound = nodes[0].inbound_layers
    return inbound if not isinstance(inbound, list) else (inbound[0] if len(inbound) == 1 else None)


def annotation_plan(model, scheme: str = "default", layer_configs: Mapping | None = None,
                    skip_layers: Iterable[str] = ()) -> dict:
    """How :func:`quantize_model` treats every layer: name -> (kind, QuantizeConfig or None).

    kind is one of ``custom``, ``registry``, ``kernel``, ``output``, ``float`` (left unannotated)."""
    from common.compression import quantize_configs as configs

    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; use one of {SCHEMES}")
    layer_configs = dict(layer_configs or {})
    skip = set(skip_layers)
    registry = _registry(scheme)
    default_registry = _registry("default")
    preserve = _PRESERVE[scheme]
    plan = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            raise ValueError(f"nested model {layer.name!r}: TFMOT cannot quantize a model inside a model; "
                             "build the model flat")
        custom = layer_configs.get(layer.name, layer_configs.get(type(layer)))
        if layer.name in skip:
            plan[layer.name] = ("float", None)
        elif custom is not None:
            plan[layer.name] = ("custom", custom)
        elif type(layer).__name__ in ("TFOpLambda", "SlicingOpLambda", "Lambda"):
            raise ValueError(f"layer {layer.name!r} is a {type(layer).__name__}; TFMOT cannot annotate it "
                             "(docs/toolchain.md#functional-models). Wrap the op in a named custom layer or pass "
                             "skip_layers")
        elif isinstance(layer, keras.layers.BatchNormalization) and isinstance(
                _previous_layer(layer), (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and not isinstance(
                _previous_layer(layer), _TRANSPOSED):
            plan[layer.name] = ("registry", None)  # folded into the convolution by TFMOT's transforms
        elif default_registry.supports(layer) and registry.supports(layer):
            plan[layer.name] = ("registry", None)
        elif isinstance(layer, _RECURRENT):
            plan[layer.name] = ("float", None)
        elif isinstance(layer, _TRANSPOSED):
            plan[layer.name] = ("kernel", configs.KernelQuantizeConfig(preserve=preserve, per_axis=False))
        elif isinstance(layer, keras.layers.Conv1D) or (
                isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and getattr(layer, "kernel", None)
                is not None):
            plan[layer.name] = ("kernel", configs.KernelQuantizeConfig(
                preserve=preserve, per_axis=len(layer.kernel.shape) == 4))
        else:
            plan[layer.name] = ("output", configs.OutputQuantizeConfig())
    unknown = (set(k for k in layer_configs if isinstance(k, str)) | skip) - {layer.name for layer in model.layers}
    if unknown:
        raise ValueError(f"layer_configs/skip_layers name layers not in model {model.name!r}: {sorted(unknown)}")
    return plan


def quantize_scope(extra_objects: Mapping | None = None):
    """``tfmot.quantization.keras.quantize_scope`` including this package's QuantizeConfigs."""
    from common.compression import quantize_configs as configs

    objects = dict(configs.custom_objects())
    objects.update(extra_objects or {})
    return tfmot().quantization.keras.quantize_scope(objects)


def quantize_model(model, scheme: str = "default", layer_configs: Mapping | None = None,
                   skip_layers: Iterable[str] = (), custom_objects: Mapping | None = None):
    """QAT copy of a flat Functional ``model`` (see the module docstring for the per-layer rules).

    Args:
        model: tf_keras Functional model (weights are copied, the model is not modified).
        scheme: ``default`` | ``prune`` | ``cluster`` | ``prune_cluster`` (collaborative optimisation).
        layer_configs: layer name or layer class -> QuantizeConfig overriding the automatic choice.
        skip_layers: names of layers to leave float (unannotated).
        custom_objects: extra classes (custom quantizers/configs) for cloning inside ``quantize_scope``.
    Returns:
        The quantize-wrapped model; compile and fine-tune it, then export with ``common.tflite.export_tflite``.
    """
    quantization = tfmot().quantization.keras
    plan = annotation_plan(model, scheme, layer_configs, skip_layers)
    extra = dict(custom_objects or {})
    for _, config in plan.values():
        if config is not None:
            extra.setdefault(type(config).__name__, type(config))

    def annotate(layer):
        kind, config = plan.get(layer.name, ("float", None))
        if kind == "float":
            return layer
        return quantization.quantize_annotate_layer(layer, quantize_config=config)

    with quantize_scope(extra):
        annotated = keras.models.clone_model(model, clone_function=annotate)
        annotated.set_weights(model.get_weights())
        return quantization.quantize_apply(annotated, scheme=_scheme(scheme))


__all__ = ["quantize_model", "annotation_plan", "quantize_scope", "SCHEMES"]
