"""The single Keras import module selects Keras 2, which TFMOT requires."""
import os
import subprocess
import sys

from common.tfkeras import keras, tf, tfmot


def test_tf_keras_is_keras_2():
    assert keras.__version__.startswith("2.")
    assert tf.keras.layers.Dense is keras.layers.Dense
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"


def test_tfmot_accepts_our_models():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    pruned = tfmot().sparsity.keras.prune_low_magnitude(model)
    assert any("prune_low_magnitude" in layer.name for layer in pruned.layers)


def test_importing_tensorflow_first_is_refused():
    code = "import tensorflow\ntensorflow.keras.layers.Dense\nimport common.tfkeras"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "TF_USE_LEGACY_KERAS": "0"})
    assert result.returncode != 0
    assert "TF_USE_LEGACY_KERAS" in result.stderr
