"""Compression library shared by the reproductions (``docs/toolchain.md``).

Modules (import them directly; TFMOT is loaded only by the modules that need it):

* :mod:`common.compression.surgery` -- physically smaller models where masks empty whole channels.
* :mod:`common.compression.pruning` -- TFMOT magnitude pruning (constant / polynomial), strip.
* :mod:`common.compression.clustering` -- TFMOT weight clustering (per-layer clusters, sparsity preserving), strip.
* :mod:`common.compression.qat` / :mod:`common.compression.quantize_configs` -- QAT with configs for the layers
  TFMOT leaves out, collaborative (prune/cluster preserving) schemes.

The papers' own compression methods live in their reproductions: ICSE's channel pruning and signed k-means in
``reproductions/icse/compression.py``, FQSE's quantizers in ``reproductions/fqse/quantizers.py``.
"""
