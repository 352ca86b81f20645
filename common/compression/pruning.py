"""Unstructured magnitude pruning through TFMOT (``prune_low_magnitude``), constant or polynomial schedule.

TFMOT prunes Conv1D/Conv2D/Dense/LSTM cells but has no channel pruning (``docs/toolchain.md#channel-pruning``);
structured ICSE pruning lives in :mod:`reproductions.icse.compression`.  Training a pruned model needs the
``UpdatePruningStep`` callback (:func:`pruning_callbacks`), and the size gain appears only after
:func:`strip_pruning` plus gzip (``docs/toolchain.md#size``).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from common.tfkeras import keras, tfmot


def pruning_schedule(kind: str = "constant", target_sparsity: float = 0.5, begin_step: int = 0,
                     end_step: int = -1, frequency: int = 100, initial_sparsity: float = 0.0, power: int = 3):
    """TFMOT schedule: ``"constant"`` (ConstantSparsity) or ``"polynomial"`` (PolynomialDecay from
    ``initial_sparsity`` to ``target_sparsity`` between ``begin_step`` and ``end_step``)."""
    if not 0.0 <= target_sparsity < 1.0:
        raise ValueError(f"target_sparsity must be in [0, 1), got {target_sparsity}")
    sparsity = tfmot().sparsity.keras
    if kind == "constant":
        return sparsity.ConstantSparsity(target_sparsity, begin_step=begin_step, end_step=end_step,
                                         frequency=frequency)
    if kind == "polynomial":
        if end_step <= begin_step:
            raise ValueError(f"polynomial schedule needs end_step > begin_step, got {begin_step}..{end_step}")
        return sparsity.PolynomialDecay(initial_sparsity=initial_sparsity, final_sparsity=target_sparsity,
                                        begin_step=begin_step, end_step=end_step, power=power, frequency=frequency)
    raise ValueError(f"unknown schedule kind {kind!r}; use 'constant' or 'polynomial'")


def prune_magnitude(model, schedule=None, layers: Iterable[str] | None = None, exclude_layers: Iterable[str] = (),
                    block_size=(1, 1), **schedule_kwargs):
    """Wrap the prunable layers of a Functional/Sequential ``model`` with ``prune_low_magnitude``.

    Args:
        model: tf_keras Functional or Sequential model.
        schedule: a TFMOT PruningSchedule; default ``pruning_schedule(**schedule_kwargs)``.
        layers: names of layers to prune (default: every layer the TFMOT prune registry supports).
        exclude_layers: names left dense (e.g. the output layer).
        block_size: TFMOT block sparsity (Conv2D/Dense only).
    Returns:
        A new model with ``PruneLowMagnitude`` wrappers; train it with :func:`pruning_callbacks`.
    """
    sparsity = tfmot().sparsity.keras
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    schedule = schedule or pruning_schedule(**schedule_kwargs)
    wanted = None if layers is None else set(layers)
    excluded = set(exclude_layers)
    names = {layer.name for layer in model.layers}
    for group, label in ((wanted or set(), "layers"), (excluded, "exclude_layers")):
        if group - names:
            raise ValueError(f"{label} not in model {model.name!r}: {sorted(group - names)}")

    def clone(layer):
        selected = (wanted is None or layer.name in wanted) and layer.name not in excluded
        if selected and layer.weights and prune_registry.PruneRegistry.supports(layer):
            fresh = layer.__class__.from_config(layer.get_config())
            return sparsity.prune_low_magnitude(fresh, pruning_schedule=schedule, block_size=block_size)
        if selected and wanted is not None and not prune_registry.PruneRegistry.supports(layer):
            raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is not supported by "
                             "TFMOT pruning")
        return layer.__class__.from_config(layer.get_config())

    pruned = keras.models.clone_model(model, clone_function=clone)
    for new_layer, layer in zip(pruned.layers, model.layers):
        weights = layer.get_weights()
        if hasattr(new_layer, "layer"):
            new_layer.layer.set_weights(weights)
        else:
            new_layer.set_weights(weights)
    return pruned


def pruning_callbacks(log_dir=None) -> list:
    """``UpdatePruningStep`` (mandatory for training a pruned model) and optionally ``PruningSummaries``."""
    sparsity = tfmot().sparsity.keras
    callbacks = [sparsity.UpdatePruningStep()]
    if log_dir is not None:
        callbacks.append(sparsity.PruningSummaries(log_dir=str(log_dir)))
    return callbacks


def strip_pruning(model):
    """Remove the pruning wrappers (weights keep their zeros)."""
    return tfmot().sparsity.keras.strip_pruning(model)


def pruning_scope():
    """Context for loading a saved model that still contains pruning wrappers."""
    return tfmot().sparsity.keras.prune_scope()


def kernel_arrays(model) -> dict:
    """Every kernel of ``model`` as a numpy array (``"layer/kernel"`` -> array), pruning and clustering
    wrappers looked through."""
    result = {}
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        for weight in inner.weights:
            short = weight.name.split("/")[-1].split(":")[0]
            if short.endswith("kernel"):
                result[f"{inner.name}/{short}"] = weight.numpy()
    return result


def kernel_sparsity(model) -> dict:
    """Fraction of zero weights of every kernel (layer name -> float), wrappers looked through."""
    return {name: float(np.mean(kernel == 0)) for name, kernel in kernel_arrays(model).items()}


__all__ = ["pruning_schedule", "prune_magnitude", "pruning_callbacks", "strip_pruning", "pruning_scope",
           "kernel_arrays", "kernel_sparsity"]
