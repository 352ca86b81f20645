"""ICSE parameter pruning (PP) and parameter quantization (PQ) of convolution kernels.

ICSE (Wu, Yu, Fu, Liu, Chien, Tsao, arXiv 1906.01078) compresses Fu's FCN in two stages
(``docs/icse.md#pruning``, ``docs/icse.md#quantization``):

* **PP** -- a convolution filter ``F_j`` (output channel j) is made of one kernel ``F_jk`` of ``L`` taps per input
  channel k.  Its sparsity is

      S(j, k) = (1 / L) * #{ l : |w_{j,k,l}| < MAV(F_j) },   MAV(F_j) = mean_{k', l} |w_{j,k',l}|

  and every kernel with ``S(j, k) > theta`` is set to zero (all L taps).  The exact equation of the paper was not
  reachable; this filter-wise MAV reading reproduces the counts measured on ``FCNN_0509.hdf5``
  (``docs/icse.md#pruning``).  Soft pruning retrains with the zero mask held: :class:`MaskHolder` re-applies the
  masks after every training batch, so pruned weights are exactly zero after each optimizer step and after ``fit``.
* **PQ** -- per layer, k-means on the negative and on the positive non-zero weights separately
  (16 + 16 centroids; 4 + 4 for the output layer in the released model, ``docs/icse.md#quantization``), zeros kept.
  :class:`CentroidHolder` keeps the weights on shared centroids during retraining: after every batch the weights
  of each cluster are replaced by their mean, i.e. a centroid moves by the average of its members' updates
  (with plain SGD that is exactly the per-cluster averaged gradient).

Kernel layouts handled: Conv1D ``(taps, in, out)``, Conv2D ``(kh, kw, in, out)`` (e.g. ``(1, k)`` kernels),
Dense ``(in, out)`` (one tap), and the Keras-1 Convolution1D layout ``(taps, 1, in, out)`` of the authors' h5 files.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

import numpy as np

from common.tfkeras import keras
from reproductions.icse.fcn import conv_layers
from reproductions.icse.size_rule import quantized_levels
from reproductions.icse.trainer import train_model
from reproductions.icse.variants import output_layer_name


# ---------------------------------------------------------------------------------------------------------------------
# Kernel statistics (numpy only)
# ---------------------------------------------------------------------------------------------------------------------
def _taps_in_out(kernel: np.ndarray) -> np.ndarray:
    """View a kernel as ``(taps, in, out)``: all leading axes are taps, the last two are in/out channels."""
    kernel = np.asarray(kernel)
    if kernel.ndim < 2:
        raise ValueError(f"a kernel needs at least 2 axes (in, out), got shape {kernel.shape}")
    return kernel.reshape((-1,) + kernel.shape[-2:])


def icse_kernel_sparsity(kernel: np.ndarray) -> np.ndarray:
    """ICSE sparsity ``S(j, k)`` of every kernel of a layer.

    Args:
        kernel: weights with the input channel on axis -2 and the output filter on axis -1; all leading axes are
            taps (Conv1D ``(L, in, out)``, Conv2D ``(kh, kw, in, out)``, Dense ``(in, out)``).
    Returns:
        float array ``(in, out)``: fraction of the kernel's taps whose magnitude is below the mean absolute value
        of its filter (MAV over all input channels and taps of output filter j).
    """
    magnitude = np.abs(_taps_in_out(kernel).astype(np.float64))
    filter_mav = magnitude.mean(axis=(0, 1))  # (out,)
    return (magnitude < filter_mav[None, None, :]).mean(axis=0)


def icse_kernel_mask(kernel: np.ndarray, theta: float) -> np.ndarray:
    """0/1 float32 mask with the kernel's shape: 0 for every kernel ``F_jk`` with ``S(j, k) > theta``."""
    keep = icse_kernel_sparsity(kernel) <= theta  # (in, out)
    return np.broadcast_to(keep, np.shape(kernel)).astype(np.float32)


def kernel_counts(kernel: np.ndarray) -> dict:
    """Kernel and weight counts of a (masked) kernel: a kernel ``F_jk`` is pruned when all its taps are zero."""
    view = _taps_in_out(kernel)
    pruned = ~np.any(view != 0, axis=0)  # (in, out)
    return {
        "kernels_total": int(pruned.size),
        "kernels_pruned": int(pruned.sum()),
        "kernels_kept": int(pruned.size - pruned.sum()),
        "weights_total": int(view.size),
        "weights_kept": int(np.count_nonzero(view)),
        "empty_input_channels": [int(k) for k in np.flatnonzero(pruned.all(axis=1))],
        "empty_output_channels": [int(j) for j in np.flatnonzero(pruned.all(axis=0))],
    }


# ---------------------------------------------------------------------------------------------------------------------
# Model-level pruning
# ---------------------------------------------------------------------------------------------------------------------
KERNEL_LAYER_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Dense)


def _kernel_layers(model, exclude_layers: Iterable[str] = (), layer_types=KERNEL_LAYER_TYPES):
    """Layers (recursing into nested models) with a ``kernel`` of a pruneable type, minus ``exclude_layers``."""
    exclude = set(exclude_layers)
    found = []

    def walk(container):
        for layer in container.layers:
            if isinstance(layer, keras.Model):
                walk(layer)
            elif (isinstance(layer, layer_types) and not isinstance(layer, (keras.layers.Conv1DTranspose,
                                                                            keras.layers.Conv2DTranspose))
                  and getattr(layer, "kernel", None) is not None and layer.name not in exclude):
                found.append(layer)

    walk(model)
    names = {layer.name for layer in _all_layers(model)}
    unknown = exclude - names
    if unknown:
        raise ValueError(f"exclude_layers names layers that are not in the model: {sorted(unknown)}")
    return found


def _all_layers(model):
    result = []
    for layer in model.layers:
        result.append(layer)
        if isinstance(layer, keras.Model):
            result.extend(_all_layers(layer))
    return result


def _layer_by_name(model, name):
    for layer in _all_layers(model):
        if layer.name == name:
            return layer
    raise ValueError(f"the model has no layer named {name!r}")


@dataclasses.dataclass
class PruningResult:
    """Masks (layer name -> 0/1 float32 array shaped like the kernel) and a per-layer report."""

    masks: dict
    report: list

    def totals(self) -> dict:
        kernels = sum(row["kernels_total"] for row in self.report)
        kept_kernels = sum(row["kernels_kept"] for row in self.report)
        weights = sum(row["weights_total"] for row in self.report)
        kept_weights = sum(row["weights_kept"] for row in self.report)
        return {"kernels_total": kernels, "kernels_kept": kept_kernels, "weights_total": weights,
                "weights_kept": kept_weights, "kept_fraction": kept_weights / max(weights, 1)}

    def format(self) -> str:
        lines = [f"{'layer':<24}{'kernels kept':>16}{'weights kept':>20}{'kept':>8}"]
        for row in self.report:
            lines.append(f"{row['layer']:<24}{row['kernels_kept']:>7}/{row['kernels_total']:<8}"
                         f"{row['weights_kept']:>10}/{row['weights_total']:<9}"
                         f"{row['weights_kept'] / max(row['weights_total'], 1):>8.3f}")
        total = self.totals()
        lines.append(f"{'total':<24}{total['kernels_kept']:>7}/{total['kernels_total']:<8}"
                     f"{total['weights_kept']:>10}/{total['weights_total']:<9}{total['kept_fraction']:>8.3f}")
        return "\n".join(lines)


def pruning_report(model, masks: Mapping[str, np.ndarray] | None = None, exclude_layers: Iterable[str] = ()) -> list:
    """Per-layer kept kernels and weights of the model's kernels (masked by ``masks`` where given)."""
    rows = []
    for layer in _kernel_layers(model, exclude_layers):
        kernel = layer.kernel.numpy()
        if masks is not None and layer.name in masks:
            kernel = kernel * masks[layer.name]
        rows.append({"layer": layer.name, **kernel_counts(kernel)})
    return rows


def icse_channel_prune(model, theta, exclude_layers: Iterable[str] = (), apply: bool = True) -> PruningResult:
    """ICSE channel pruning of every Conv1D / Conv2D / Dense kernel of ``model``.

    Args:
        model: a built Keras model (modified in place when ``apply``).
        theta: sparsity threshold; a float for all layers or a mapping layer name -> float.  Kernels with
            ``S(j, k) > theta`` are zeroed (larger theta prunes less).
        exclude_layers: names of layers left untouched (ICSE leaves the output convolution unpruned).
        apply: write the masked kernels into the model.
    Returns:
        PruningResult with the masks of the pruned layers and the per-layer report (kernels/weights kept).
    """
    masks, rows = {}, []
    for layer in _kernel_layers(model, exclude_layers):
        layer_theta = theta.get(layer.name) if isinstance(theta, Mapping) else theta
        if layer_theta is None:
            continue
        if not 0.0 <= float(layer_theta) <= 1.0:
            raise ValueError(f"theta for layer {layer.name!r} must be in [0, 1], got {layer_theta}")
        kernel = layer.kernel.numpy()
        mask = icse_kernel_mask(kernel, float(layer_theta))
        masks[layer.name] = mask
        if apply:
            layer.kernel.assign(kernel * mask)
        rows.append({"layer": layer.name, "theta": float(layer_theta), **kernel_counts(kernel * mask)})
    return PruningResult(masks=masks, report=rows)


def apply_masks(model, masks: Mapping[str, np.ndarray]) -> None:
    """Multiply each named layer's kernel by its mask (in place)."""
    for name, mask in masks.items():
        layer = _layer_by_name(model, name)
        if tuple(layer.kernel.shape) != tuple(np.shape(mask)):
            raise ValueError(f"mask for {name!r} has shape {np.shape(mask)}, kernel has {layer.kernel.shape}")
        layer.kernel.assign(layer.kernel * mask)


class MaskConstraint(keras.constraints.Constraint):
    """Kernel constraint ``w * mask`` for layers built fresh with a known mask (the optimizer applies it after
    every update).  For an existing model use :class:`MaskHolder`: constraints are bound when a weight is created."""

    def __init__(self, mask):
        self.mask = np.asarray(mask, np.float32)

    def __call__(self, weight):
        return weight * self.mask

    def get_config(self):
        return {"mask": self.mask.tolist()}


class MaskHolder(keras.callbacks.Callback):
    """Soft-pruning retraining: re-apply the pruning masks at the start of training and after every batch, so
    pruned kernels are exactly zero after every optimizer step (the gradient step on a pruned weight is undone
    before the next forward pass)."""

    def __init__(self, masks: Mapping[str, np.ndarray]):
        super().__init__()
        self.masks = {name: np.asarray(mask, np.float32) for name, mask in masks.items()}
        self._targets = None

    def _bind(self):
        if self._targets is None:
            self._targets = [(_layer_by_name(self.model, name).kernel, mask) for name, mask in self.masks.items()]
        return self._targets

    def apply(self):
        for variable, mask in self._bind():
            variable.assign(variable * mask)

    def on_train_begin(self, logs=None):
        self._targets = None
        self.apply()

    def on_train_batch_end(self, batch, logs=None):
        self.apply()


# ---------------------------------------------------------------------------------------------------------------------
# ICSE k-means (PQ)
# ---------------------------------------------------------------------------------------------------------------------
def _kmeans_1d(values: np.ndarray, clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """k-means of a 1-D sample: (centroids (c,), labels (n,)); fewer distinct values than clusters -> the values."""
    from sklearn.cluster import KMeans

    distinct = np.unique(values)
    if distinct.size <= clusters:
        return distinct.astype(np.float32), np.searchsorted(distinct, values)
    estimator = KMeans(n_clusters=clusters, n_init=3, random_state=seed)
    labels = estimator.fit_predict(values.reshape(-1, 1).astype(np.float64))
    return estimator.cluster_centers_[:, 0].astype(np.float32), labels


def kmeans_signed(kernel: np.ndarray, clusters_per_sign: int, seed: int = 0):
    """Quantize one kernel: k-means on negative and positive non-zero weights separately, zeros stay zero.

    Returns ``(quantized kernel, assignment, codebook)`` where ``assignment`` has the kernel's shape with -1 for
    zeros and indices into ``codebook`` (negative centroids first, then positive)."""
    if clusters_per_sign < 1:
        raise ValueError(f"clusters_per_sign must be >= 1, got {clusters_per_sign}")
    flat = np.asarray(kernel, np.float32).ravel()
    assignment = np.full(flat.shape, -1, np.int64)
    codebook = []
    for select in (flat < 0, flat > 0):
        if not select.any():
            continue
        centroids, labels = _kmeans_1d(flat[select], clusters_per_sign, seed)
        assignment[select] = labels + len(codebook)
        codebook.extend(centroids.tolist())
    codebook = np.asarray(codebook, np.float32)
    quantized = np.where(assignment >= 0, codebook[np.maximum(assignment, 0)] if codebook.size else 0.0, 0.0)
    return (quantized.astype(np.float32).reshape(np.shape(kernel)), assignment.reshape(np.shape(kernel)), codebook)


@dataclasses.dataclass
class KMeansResult:
    """Per-layer code books and assignments (layer name -> array); -1 marks a zero (pruned) weight."""

    codebooks: dict
    assignments: dict
    clusters_per_sign: dict


def icse_kmeans(model, clusters_per_sign: Mapping[str, int] | None = None, default: int = 16,
                exclude_layers: Iterable[str] = (), seed: int = 0) -> KMeansResult:
    """ICSE parameter quantization, in place: every Conv1D / Conv2D / Dense kernel is replaced by its signed
    k-means code book (``default`` centroids per sign, ``clusters_per_sign[name]`` where given; the released model
    uses 16 + 16 and 4 + 4 for the output layer, ``docs/icse.md#quantization``).  Biases and norm parameters are
    untouched."""
    clusters_per_sign = dict(clusters_per_sign or {})
    layers_ = _kernel_layers(model, exclude_layers)
    unknown = set(clusters_per_sign) - {layer.name for layer in layers_}
    if unknown:
        raise ValueError(f"clusters_per_sign names layers that are not clusterable kernels: {sorted(unknown)}")
    codebooks, assignments, used = {}, {}, {}
    for layer in layers_:
        count = int(clusters_per_sign.get(layer.name, default))
        quantized, assignment, codebook = kmeans_signed(layer.kernel.numpy(), count, seed)
        layer.kernel.assign(quantized)
        codebooks[layer.name], assignments[layer.name], used[layer.name] = codebook, assignment, count
    return KMeansResult(codebooks=codebooks, assignments=assignments, clusters_per_sign=used)


class CentroidHolder(keras.callbacks.Callback):
    """Shared-centroid fine-tuning after :func:`icse_kmeans`: after every batch, each cluster's weights are
    replaced by their mean (the centroid moves by the average of its members' updates) and zeros are reset to 0,
    so each layer keeps exactly its code book size of distinct non-zero values."""

    def __init__(self, assignments: Mapping[str, np.ndarray]):
        super().__init__()
        self.assignments = {name: np.asarray(a, np.int64) for name, a in assignments.items()}
        self._targets = None

    def _bind(self):
        if self._targets is None:
            self._targets = []
            for name, assignment in self.assignments.items():
                flat = assignment.ravel()
                members = flat >= 0
                clusters = int(flat.max()) + 1 if members.any() else 0
                counts = np.bincount(flat[members], minlength=clusters).astype(np.float64)
                self._targets.append((_layer_by_name(self.model, name).kernel, flat, members, clusters, counts))
        return self._targets

    def apply(self):
        for variable, flat, members, clusters, counts in self._bind():
            values = variable.numpy().ravel().astype(np.float64)
            sums = np.bincount(flat[members], weights=values[members], minlength=clusters)
            centroids = (sums / np.maximum(counts, 1)).astype(np.float32)
            snapped = np.zeros(values.shape, np.float32)
            snapped[members] = centroids[flat[members]]
            variable.assign(snapped.reshape(variable.shape))

    def on_train_begin(self, logs=None):
        self._targets = None
        self.apply()

    def on_train_batch_end(self, batch, logs=None):
        self.apply()


def distinct_values(kernel: np.ndarray) -> dict:
    """Distinct values of a kernel: total, non-zero, negative and positive counts."""
    values = np.unique(np.asarray(kernel))
    return {"distinct": int(values.size), "nonzero": int(np.count_nonzero(values)),
            "negative": int((values < 0).sum()), "positive": int((values > 0).sum())}


# ---------------------------------------------------------------------------------------------------------------------
# The recipe's compression stages: compress, then retrain with the structure held
# ---------------------------------------------------------------------------------------------------------------------
def prune_and_retrain(model, corpus, config, run_dir, theta, spec):
    """ICSE PP at ``theta`` (output layer excluded) and soft-pruning retraining with the mask held."""
    exclude = [output_layer_name(model)] if config["pruning"]["exclude_output_layer"] else []
    result = icse_channel_prune(model, float(theta), exclude_layers=exclude)
    train_model(model, corpus, config, run_dir, spec, callbacks=[MaskHolder(result.masks)])
    return result


def quantize_and_retrain(model, corpus, config, run_dir, clusters, spec):
    """ICSE PQ: signed per-layer k-means (``clusters`` per sign; output layer its own, docs/icse.md#quantization),
    shared-centroid retraining."""
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


__all__ = [
    "icse_kernel_sparsity", "icse_kernel_mask", "kernel_counts", "icse_channel_prune", "pruning_report",
    "PruningResult", "apply_masks", "MaskConstraint", "MaskHolder", "kmeans_signed", "icse_kmeans", "KMeansResult",
    "CentroidHolder", "distinct_values", "prune_and_retrain", "quantize_and_retrain",
    "round_centroids_to_fp16",
]
