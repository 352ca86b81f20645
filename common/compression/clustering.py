"""Weight clustering through TFMOT ``cluster_weights`` with a per-layer number of clusters.

``preserve_sparsity=True`` keeps pruned zeros at zero while the centroids are fine-tuned (collaborative
optimisation, ``docs/toolchain.md#collaborative-optimization``).  Conv1D, Conv1DTranspose, Dense, LSTM/GRU are
clusterable; per-channel clustering applies only to Conv2D (``docs/toolchain.md#clustering``).  :func:`strip_clustering`
must run before export, and the size gain shows only in the gzip size (``docs/toolchain.md#size``).  The ICSE
sign-separated k-means is :func:`reproductions.icse.compression.icse_kmeans`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from common.tfkeras import keras, tfmot

_INIT_NAMES = ("kmeans_plus_plus", "linear", "density_based", "random", "kmeans++", "density")


def _centroid_init(name: str):
    initialization = tfmot().clustering.keras.CentroidInitialization
    aliases = {"kmeans++": "kmeans_plus_plus", "density": "density_based"}
    key = aliases.get(name, name)
    members = {"kmeans_plus_plus": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "density_based": "DENSITY_BASED",
               "random": "RANDOM"}
    if key not in members:
        raise ValueError(f"unknown centroid initialisation {name!r}; use one of {_INIT_NAMES}")
    return getattr(initialization, members[key])


def cluster_weights(model, number_of_clusters: int | Mapping[str, int] = 16, centroid_init: str = "kmeans_plus_plus",
                    preserve_sparsity: bool = True, exclude_layers=(), cluster_per_channel: bool = False):
    """Wrap the clusterable layers of ``model`` with TFMOT clustering (a new model; the original is untouched).

    Args:
        model: tf_keras Functional or Sequential model.
        number_of_clusters: an int for every clusterable layer, or layer name -> clusters (only those layers are
            clustered).
        centroid_init: ``kmeans_plus_plus`` | ``linear`` | ``density_based`` | ``random``.
        preserve_sparsity: zeros stay zero (needed after pruning).
        exclude_layers: names left unclustered.
        cluster_per_channel: per-output-channel code books (Conv2D only in TFMOT).
    Returns:
        The clustered model; fine-tune it, then :func:`strip_clustering`.
    """
    clustering = tfmot().clustering.keras
    from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry

    per_layer = dict(number_of_clusters) if isinstance(number_of_clusters, Mapping) else None
    names = {layer.name for layer in model.layers}
    for group, label in ((set(per_layer or {}), "number_of_clusters"), (set(exclude_layers), "exclude_layers")):
        if group - names:
            raise ValueError(f"{label} names layers not in model {model.name!r}: {sorted(group - names)}")
    init = _centroid_init(centroid_init)

    # The wrappers compute their initial centroids from the weights of the layer they wrap, so wrap the (built,
    # weight-carrying) layers of a throw-away copy: the caller's model is never modified.
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    excluded = set(exclude_layers)

    def wrap(layer):
        if layer.name in excluded or not layer.weights:
            return layer
        if per_layer is not None:
            if layer.name not in per_layer:
                return layer
            clusters = int(per_layer[layer.name])
        else:
            if not clustering_registry.ClusteringRegistry.supports(layer):
                return layer
            clusters = int(number_of_clusters)
        if clusters < 2:
            raise ValueError(f"layer {layer.name!r} needs at least 2 clusters, got {clusters}")
        kwargs = {"number_of_clusters": clusters, "cluster_centroids_init": init, "preserve_sparsity": preserve_sparsity}
        if cluster_per_channel:
            kwargs["cluster_per_channel"] = True
        return clustering.cluster_weights(layer, **kwargs)

    return keras.models.clone_model(copy, clone_function=wrap)


def strip_clustering(model):
    """Remove clustering wrappers, leaving kernels made of the centroid values."""
    return tfmot().clustering.keras.strip_clustering(model)


def cluster_scope():
    """Context for loading a saved model that still contains clustering wrappers."""
    return tfmot().clustering.keras.cluster_scope()


def distinct_kernel_values(model) -> dict:
    """Number of distinct values of every kernel (layer name -> int), wrappers looked through."""
    from common.compression.pruning import kernel_arrays

    return {name: int(np.unique(kernel).size) for name, kernel in kernel_arrays(model).items()}


__all__ = ["cluster_weights", "strip_clustering", "cluster_scope", "distinct_kernel_values"]
