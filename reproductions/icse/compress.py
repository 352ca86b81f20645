"""ICSE's compression stages on the FCN: channel pruning at a threshold theta retrained with the mask held
(docs/icse.md#pruning), signed per-layer k-means retrained with shared centroids (docs/icse.md#quantization), and the
FP16 rounding of the code books.
"""
from __future__ import annotations

import numpy as np

from reproductions.icse.fcn import conv_layers
from reproductions.icse.size_rule import quantized_levels
from reproductions.icse.trainer import train_model
from reproductions.icse.variants import output_layer_name


def prune_and_retrain(model, corpus, config, run_dir, theta, spec):
    """ICSE PP at ``theta`` (output layer excluded) and soft-pruning retraining with the mask held."""
    from common.compression.icse import MaskHolder, icse_channel_prune

    exclude = [output_layer_name(model)] if config["pruning"]["exclude_output_layer"] else []
    result = icse_channel_prune(model, float(theta), exclude_layers=exclude)
    train_model(model, corpus, config, run_dir, spec, callbacks=[MaskHolder(result.masks)])
    return result


def quantize_and_retrain(model, corpus, config, run_dir, clusters, spec):
    """ICSE PQ: signed per-layer k-means (``clusters`` per sign; output layer its own, docs/icse.md#quantization),
    shared-centroid retraining."""
    from common.compression.icse import CentroidHolder, icse_kmeans

    output_clusters = min(int(config["quantization"]["output_clusters_per_sign"]), int(clusters))
    result = icse_kmeans(model, clusters_per_sign={output_layer_name(model): output_clusters}, default=int(clusters),
                         seed=int(config["training"]["seed"]))
    train_model(model, corpus, config, run_dir, spec, callbacks=[CentroidHolder(result.assignments)])
    return quantized_levels(model, clusters, output_clusters), output_clusters


def round_centroids_to_fp16(model) -> None:
    """FP16 storage of the code books (the paper's "FP16" curves): every kernel value rounded to float16."""
    for layer in conv_layers(model):
        kernel = layer.kernel.numpy()
        layer.kernel.assign(kernel.astype(np.float16).astype(np.float32))
