"""Shared library of the speech-enhancement reproduction suite.

Import TensorFlow and Keras only through :mod:`common.tfkeras`, which selects Keras 2 (``tf_keras``) before
TensorFlow loads; TFMOT 0.8.1 rejects Keras 3 models. This package itself imports nothing heavy so that
signal-processing and data code stays usable without TensorFlow.
"""
