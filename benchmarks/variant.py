"""What the benchmark needs to know about one model variant, and the generic runners around Keras and .tflite.

A :class:`Variant` is produced by a per-reproduction adapter (:mod:`benchmarks.models`). It names the file its
figures come from and knows how to build a waveform-in/waveform-out enhancer (pre- and post-processing such as the
STFT stay in float numpy around the graph, exactly as the reproduction's own pipeline does), the core graph the
.tflite was exported from (for parameter counts, MACs and the ONNX export) and the core graph's input tensors for
a given duration (for runtime-against-runtime timing on identical tensors).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Variant:
    """One row of the benchmark.

    Attributes:
        model: reproduction name (``icse``, ``fqse``, ``sednn``, ``crn``, ``tfgridnet``).
        variant: human label, e.g. ``"PTQ int8 .tflite"``.
        kind: plot marker key (``float``, ``tflite``, ``pruned``, ``clustered``, ``pruned_clustered``,
            ``ptq_int8``, ``qat_int8``, ``fqse``, ``icse``, ``dynamic``).
        file: the checkpoint or .tflite the figures come from.
        runtime: ``keras`` or ``litert``.
        make_enhancer: ``threads -> (noisy waveform -> enhanced waveform)``; None when the variant is missing.
        keras_model: lazily builds the Keras model of this variant (parameter and non-zero counts, MACs).
        tflite_path: the deployed file (sizes, LiteRT core timing).
        core_inputs: ``waveform -> [arrays]``, the core graph's inputs (batch 1) for that waveform, exactly what
            the enhancer feeds the graph (identical tensors for every runtime).
        core_seconds: audio seconds one :attr:`core_inputs` set represents when the core has a fixed input size
            (a static-shape .tflite run chunk by chunk, one streaming hop); None = as long as the waveform given.
        macs_inputs: ``() -> [arrays]`` batch-1 inputs for MAC counting when :attr:`core_inputs` has no batch-1 form
            (sednn's frames are its batch axis), representing :attr:`macs_seconds` of audio.
        hop_latency: ``threads -> (callable running one streaming hop)`` for streaming models (CRN).
        build: called once before measuring (e.g. the benchmark exports a .tflite the recipe does not write).
        speed_only: the weights are a seeded random initialisation, not a trained model (no trained model of
            this config exists): size and speed are the deployed model's, quality is not measured.
        calibration_audio: ``() -> [waveforms]``, the audio the variant's int8 files are calibrated on; the ONNX
            Runtime int8 comparison calibrates on the same audio.
        missing: why the variant cannot be measured (e.g. ``not exported yet: exp/x/mini/x.tflite is missing; run bash
            reproductions/x/run.sh --stage 5 --stop-stage 5``).
        notes: free text stored with the row.
    """

    model: str
    variant: str
    kind: str
    file: Path | None = None
    runtime: str = "keras"
    make_enhancer: Callable | None = None
    keras_model: Callable | None = None
    tflite_path: Path | None = None
    core_inputs: Callable | None = None
    core_seconds: float | None = None
    macs_inputs: Callable | None = None
    macs_seconds: float = 1.0
    hop_latency: Callable | None = None
    hop_seconds: float = 0.01
    build: Callable | None = None
    speed_only: bool = False
    calibration_audio: Callable | None = None
    missing: str | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model} / {self.variant}"

    @property
    def file_label(self) -> str:
        if self.file is None:
            return "-"
        path = Path(self.file).resolve()
        try:
            return str(path.relative_to(REPOSITORY_ROOT))
        except ValueError:
            return str(path)


def missing_variant(model: str, variant: str, kind: str, path, reason: str | None = None) -> Variant:
    """A row that names the missing artefact and what to run to produce it, instead of crashing.

    ``reason`` should name the file and the run.sh stages that write it (the adapters in
    :mod:`benchmarks.models` do); the default names the file and the whole recipe."""
    reason = reason or f"not trained yet: {relative_path(path)} is missing; run bash reproductions/{model}/run.sh"
    return Variant(model, variant, kind, file=Path(path) if path else None, missing=reason)


def relative_path(path) -> str:
    """``path`` relative to the repository root when inside it (as users type it), else as given."""
    try:
        return str(Path(path).resolve().relative_to(REPOSITORY_ROOT))
    except ValueError:
        return str(path)


def keras_function(model):
    """A traced inference function of a Keras model (``training=False``), retracing only on new ranks."""
    from common.tfkeras import tf

    @tf.function(reduce_retracing=True)
    def run(*inputs):
        return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    def call(*arrays):
        outputs = run(*[tf.constant(np.asarray(array, np.float32)) for array in arrays])
        if isinstance(outputs, (list, tuple)):
            return [output.numpy() for output in outputs]
        return outputs.numpy()

    return call


def litert_core(path, threads: int):
    """``common.tflite.TFLiteModel`` (float I/O around int8 graphs) with ``threads`` interpreter threads."""
    from common.tflite import TFLiteModel

    return TFLiteModel(path, num_threads=threads)


def fixed_length(signal: np.ndarray, samples: int) -> np.ndarray:
    """``signal`` tiled or cut to ``samples`` (the fixed timing input)."""
    signal = np.asarray(signal, np.float32)
    repeats = int(np.ceil(samples / max(signal.size, 1)))
    return np.tile(signal, repeats)[:samples]
