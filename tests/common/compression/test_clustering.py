"""TFMOT clustering wrapper: per-layer cluster counts, zeros preserved through fine-tuning, strip."""
import numpy as np

from common.compression import clustering
from common.tfkeras import keras, layers


def test_per_layer_clusters_preserve_sparsity_through_training():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 2))
    x = layers.Conv1D(8, 5, padding="same", name="conv")(inputs)
    x = layers.ReLU()(x)
    x = layers.Dense(6, name="dense")(x)
    outputs = layers.Dense(1, name="out")(x)
    model = keras.Model(inputs, outputs)
    kernel = model.get_layer("conv").kernel
    kernel.assign(kernel.numpy() * (np.abs(kernel.numpy()) > 0.1))  # pre-pruned weights
    zeros = model.get_layer("conv").kernel.numpy() == 0
    assert zeros.any()
    clustered = clustering.cluster_weights(model, {"conv": 4, "dense": 3}, centroid_init="kmeans_plus_plus",
                                           preserve_sparsity=True)
    clustered.compile(keras.optimizers.Adam(1e-2), "mse")
    data = np.random.default_rng(0).standard_normal((8, 16, 2)).astype(np.float32)
    clustered.fit(data, data[..., :1], epochs=2, batch_size=4, verbose=0)
    stripped = clustering.strip_clustering(clustered)
    conv = stripped.get_layer("conv").kernel.numpy()
    assert np.all(conv[zeros] == 0)  # pruned zeros stay zero (TFMOT may also snap tiny weights to its zero centroid)
    assert np.unique(conv).size <= 4 + 1
    assert np.unique(conv[conv != 0]).size <= 4
    assert np.unique(stripped.get_layer("dense").kernel.numpy()).size <= 3
    counts = clustering.distinct_kernel_values(stripped)
    assert counts["out/kernel"] == 6  # not named -> not clustered
