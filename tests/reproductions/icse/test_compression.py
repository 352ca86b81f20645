"""ICSE pruning statistic, held masks, signed k-means and shared-centroid fine-tuning."""
from pathlib import Path

import numpy as np
import pytest

from reproductions.icse import compression as icse
from common.tfkeras import keras, layers

ANCHORS = Path(__file__).resolve().parents[3] / ".." / "shared" / "anchors" / "icse"


def _naive_sparsity(kernel):
    """S(j, k) by explicit loops over filters j and input channels k (docs/icse.md#pruning)."""
    taps = kernel.reshape((-1,) + kernel.shape[-2:])
    result = np.zeros(kernel.shape[-2:])
    for j in range(kernel.shape[-1]):
        mav = np.mean(np.abs(taps[:, :, j]))
        for k in range(kernel.shape[-2]):
            result[k, j] = np.mean(np.abs(taps[:, k, j]) < mav)
    return result


def _conv_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 2))
    x = layers.Conv1D(6, 5, padding="same", name="conv1")(inputs)
    x = layers.LeakyReLU(0.3)(x)
    x = layers.Conv1D(6, 5, padding="same", name="conv2")(x)
    x = layers.LeakyReLU(0.3)(x)
    outputs = layers.Conv1D(1, 5, padding="same", name="conv_out")(x)
    return keras.Model(inputs, outputs)


def test_sparsity_matches_loop_definition():
    kernel = np.random.default_rng(1).standard_normal((7, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(icse.icse_kernel_sparsity(kernel), _naive_sparsity(kernel))
    conv2d = kernel[None]  # (1, k) Conv2D layout
    np.testing.assert_allclose(icse.icse_kernel_sparsity(conv2d), _naive_sparsity(kernel))
    mask = icse.icse_kernel_mask(kernel, 0.6)
    pruned = _naive_sparsity(kernel) > 0.6
    assert np.all(mask[:, pruned] == 0) and np.all(mask[:, ~pruned] == 1)


def test_fcnn_0509_pruned_kernel_counts_at_theta_065():
    path = ANCHORS / "FCNN_0509.hdf5"
    if not path.is_file():
        pytest.skip("missing ../shared/anchors/icse/FCNN_0509.hdf5")
    import h5py

    with h5py.File(path, "r") as handle:
        counts = [int((icse.icse_kernel_sparsity(handle[f"convolution1d_{i}"][f"convolution1d_{i}_W:0"][()])
                       > 0.65).sum()) for i in range(1, 9)]
    assert counts == [4, 210, 186, 254, 313, 323, 392, 19]  # docs/icse.md#pruning, measured on FCNN_0509.hdf5


def test_channel_prune_report_exclusion_and_mask_holder():
    model = _conv_model()
    before_out = model.get_layer("conv_out").kernel.numpy().copy()
    result = icse.icse_channel_prune(model, theta=0.6, exclude_layers=("conv_out",))
    assert set(result.masks) == {"conv1", "conv2"}
    np.testing.assert_array_equal(model.get_layer("conv_out").kernel.numpy(), before_out)
    for row in result.report:
        kernel = model.get_layer(row["layer"]).kernel.numpy()
        pruned_kernels = int((~np.any(kernel != 0, axis=0)).sum())
        assert row["kernels_pruned"] == pruned_kernels
        assert row["kernels_kept"] + row["kernels_pruned"] == row["kernels_total"] == kernel.shape[1] * kernel.shape[2]
        assert row["weights_kept"] == np.count_nonzero(kernel) == row["kernels_kept"] * kernel.shape[0]
    assert result.report[1]["kernels_pruned"] > 0
    totals = result.totals()
    assert totals["weights_total"] == 5 * 2 * 6 + 5 * 6 * 6

    masks = result.masks
    trained_before = {name: model.get_layer(name).kernel.numpy().copy() for name in masks}
    model.compile(keras.optimizers.Adam(0.05), "mse")
    data = np.random.default_rng(0).standard_normal((8, 32, 2)).astype(np.float32)
    model.fit(data, data[..., :1], epochs=2, batch_size=4, verbose=0, callbacks=[icse.MaskHolder(masks)])
    for name, mask in masks.items():
        kernel = model.get_layer(name).kernel.numpy()
        assert np.all(kernel[mask == 0] == 0.0), name  # exactly zero after training
        assert not np.allclose(kernel[mask == 1], trained_before[name][mask == 1])  # the rest did train


def test_conv2d_1k_and_dense_pruning():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((1, 16, 3))
    x = layers.Conv2D(4, (1, 5), padding="same", name="conv")(inputs)
    x = layers.Dense(5, name="dense")(x)
    model = keras.Model(inputs, x)
    conv_before = model.get_layer("conv").kernel.numpy()
    dense_before = model.get_layer("dense").kernel.numpy()
    result = icse.icse_channel_prune(model, theta={"conv": 0.55, "dense": 0.5})
    conv = model.get_layer("conv").kernel.numpy()
    expected = _naive_sparsity(conv_before) > 0.55
    assert expected.any()
    np.testing.assert_array_equal(~np.any(conv.reshape(5, 3, 4) != 0, axis=0), expected)
    dense = model.get_layer("dense").kernel.numpy()  # one tap: S is 0 or 1, pruned iff |w| < filter MAV
    np.testing.assert_array_equal(dense == 0, np.abs(dense_before) < np.abs(dense_before).mean(axis=0))
    assert [row["layer"] for row in result.report] == ["conv", "dense"]


def test_signed_kmeans_codebook_sizes_and_shared_centroid_training():
    model = _conv_model(seed=5)
    pruning = icse.icse_channel_prune(model, theta=0.6, exclude_layers=("conv_out",))
    zeros = {name: model.get_layer(name).kernel.numpy() == 0 for name in ("conv1", "conv2", "conv_out")}
    result = icse.icse_kmeans(model, clusters_per_sign={"conv_out": 4}, default=8)
    for name, per_sign in (("conv1", 8), ("conv2", 8), ("conv_out", 4)):
        kernel = model.get_layer(name).kernel.numpy()
        counts = icse.distinct_values(kernel)
        assert counts["negative"] == per_sign and counts["positive"] == per_sign, (name, counts)
        np.testing.assert_array_equal(kernel == 0, zeros[name])
        assert result.codebooks[name].size == 2 * per_sign
    model.compile(keras.optimizers.SGD(0.05), "mse")
    data = np.random.default_rng(1).standard_normal((8, 32, 2)).astype(np.float32)
    before = model.get_layer("conv2").kernel.numpy().copy()
    model.fit(data, data[..., :1], epochs=2, batch_size=4, verbose=0,
              callbacks=[icse.CentroidHolder(result.assignments), icse.MaskHolder(pruning.masks)])
    after = model.get_layer("conv2").kernel.numpy()
    assert icse.distinct_values(after)["nonzero"] <= 16
    np.testing.assert_array_equal(after == 0, zeros["conv2"])
    assert not np.allclose(after, before)
    # members of one cluster share one value
    assignment = result.assignments["conv2"]
    for cluster in range(int(assignment.max()) + 1):
        assert np.unique(after[assignment == cluster]).size == 1
