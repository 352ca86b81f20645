"""The systems CRN evaluation scores (docs/crn.md#metric, docs/crn.md#streaming): the unprocessed input, the
offline Keras models and the streaming .tflite files, each as a ``noisy -> enhanced`` function at the inference
level.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.enhancement import inference_level
from reproductions.crn.data import magnitude
from reproductions.crn.networks import MODEL_NAMES, load_trained

SYSTEMS_FLOAT = ("unprocessed", "lstm2", "crn")
TFLITE_MODES = ("float32", "dynamic", "int8")
# Every system evaluate scores, in the order of the tables.
ALL_SYSTEMS = SYSTEMS_FLOAT + tuple(f"crn_tflite_{mode}" for mode in TFLITE_MODES)
SYSTEM_LABELS = {
    "unprocessed": "Unprocessed",
    "lstm2": "LSTM-2 (Keras)",
    "crn": "CRN (Keras, offline)",
    "crn_tflite_float32": "CRN .tflite float32, streaming",
    "crn_tflite_dynamic": "CRN .tflite int8 weights (dynamic range), streaming",
    "crn_tflite_int8": "CRN .tflite full int8, streaming",
}


def compiled(model):
    """``model`` as one traced graph for inputs of any length: an eager Keras LSTM runs its time loop op by op in
    Python, seconds per utterance on 2 cores."""
    from common.tfkeras import tf

    function = tf.function(lambda inputs: model(inputs, training=False),
                           input_signature=[tf.TensorSpec((1, None, model.input_shape[-1]), tf.float32)])
    return lambda inputs, training=False: function(tf.constant(inputs))


def enhance_offline(model, noisy) -> np.ndarray:
    """Whole-utterance enhancement: magnitude through the model, noisy phase, inverse STFT."""
    from reproductions.crn.features import crn_resynthesize

    estimate = model(magnitude(noisy)[None], training=False).numpy()[0]
    return crn_resynthesize(estimate, noisy)


def enhance_streaming(runner, noisy) -> np.ndarray:
    """Hop-by-hop enhancement with a streaming runner (``StreamingCRN`` or ``StreamingTFLite``)."""
    from reproductions.crn.features import crn_resynthesize

    # crn_stft frames are local (frame t needs samples up to 160 t + 160), so computing them at once gives the
    # frames a sample-by-sample STFT would give.
    return crn_resynthesize(runner.process(magnitude(noisy)), noisy)


def tflite_path(args, mode) -> Path:
    return Path(args.exp_dir) / "tflite" / f"crn_streaming_{mode}.tflite"


def enhancers(config, args, systems):
    """``{system: noisy -> enhanced}``; every model runs at ``inference.level_dbfs`` (common.enhancement)."""
    from common.enhancement import level_normalized
    from reproductions.crn.streaming import StreamingTFLite

    enhancers = {}
    for system in systems:
        if system == "unprocessed":
            enhancers[system] = lambda noisy: noisy
        elif system in MODEL_NAMES:
            model = compiled(load_trained(config, args, system,
                                          getattr(args, "checkpoint", None) if system == "crn" else None))
            enhancers[system] = level_normalized(lambda noisy, model=model: enhance_offline(model, noisy),
                                                 inference_level(config))
        elif system.startswith("crn_tflite_"):
            path = tflite_path(args, system[len("crn_tflite_"):])
            if not path.is_file():
                raise ValueError(f"no {path}: run the export command first")
            runner = StreamingTFLite(path, num_threads=1)
            enhancers[system] = level_normalized(lambda noisy, runner=runner: enhance_streaming(runner, noisy),
                                                 inference_level(config))
        else:
            raise ValueError(f"unknown system {system!r}; expected {sorted(SYSTEM_LABELS)}")
    return enhancers
