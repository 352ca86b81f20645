"""ICSE: parameter pruning and quantization of Fu et al.'s waveform FCN (arXiv 1906.01078)."""
