"""The one place where TensorFlow and Keras are imported.

TFMOT 0.8.1 works only with Keras 2 (the ``tf_keras`` package). ``TF_USE_LEGACY_KERAS=1`` must be set before
TensorFlow is first imported, otherwise ``tf.keras`` resolves to Keras 3 and TFMOT rejects the models
(``docs/toolchain.md#keras-2``). Every module of the suite imports from here::

    from common.tfkeras import tf, keras, layers

and, where it needs model optimisation, calls :func:`tfmot` (imported lazily, it costs seconds).
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# oneDNN's reordering makes float results differ run to run in the last bits; keep tests reproducible.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from tf_keras import layers  # noqa: E402

if tf.keras.layers.Layer is not keras.layers.Layer:
    raise ImportError(
        "tf.keras is not tf_keras (Keras 2), which TFMOT needs: TensorFlow was imported before common.tfkeras "
        "could set TF_USE_LEGACY_KERAS=1. Import TensorFlow through common.tfkeras."
    )


def tfmot():
    """Return the ``tensorflow_model_optimization`` module (imported on first use)."""
    import tensorflow_model_optimization

    return tensorflow_model_optimization


__all__ = ["tf", "keras", "layers", "tfmot"]
