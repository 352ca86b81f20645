"""TFMOT magnitude pruning wrappers: schedules reach their sparsity and strip leaves plain layers."""
import numpy as np
import pytest

from common.compression import pruning
from common.tfkeras import keras, layers


def _model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 2))
    x = layers.Conv1D(8, 5, padding="same", name="conv")(inputs)
    x = layers.ReLU()(x)
    x = layers.Dense(4, name="dense")(x)
    outputs = layers.Dense(1, name="out")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("kind", ["constant", "polynomial"])
def test_magnitude_pruning_reaches_target_and_strips(kind):
    model = _model()
    original = model.get_layer("conv").kernel.numpy().copy()
    pruned = pruning.prune_magnitude(model, kind=kind, target_sparsity=0.5, begin_step=0, end_step=4, frequency=1,
                                     exclude_layers=("out",))
    np.testing.assert_array_equal(model.get_layer("conv").kernel.numpy(), original)  # caller's model untouched
    pruned.compile(keras.optimizers.Adam(1e-3), "mse")
    data = np.random.default_rng(0).standard_normal((12, 16, 2)).astype(np.float32)
    pruned.fit(data, data[..., :1], epochs=2, batch_size=2, verbose=0, callbacks=pruning.pruning_callbacks())
    stripped = pruning.strip_pruning(pruned)
    assert not any(type(layer).__name__ == "PruneLowMagnitude" for layer in stripped.layers)
    sparsity = pruning.kernel_sparsity(stripped)
    assert sparsity["conv/kernel"] == pytest.approx(0.5, abs=0.02)
    assert sparsity["dense/kernel"] == pytest.approx(0.5, abs=0.02)
    assert sparsity["out/kernel"] == 0.0


def test_unknown_layer_and_bad_schedule_raise():
    with pytest.raises(ValueError, match="not in model"):
        pruning.prune_magnitude(_model(), layers=["missing"], target_sparsity=0.5)
    with pytest.raises(ValueError, match="end_step"):
        pruning.pruning_schedule("polynomial", 0.5, begin_step=10, end_step=5)
