"""sednn's feature packing and frame-by-frame inference, on top of ``reproductions.sednn.features``.

Packing (``prepare_data.py pack_features``, ``docs/sednn.md#features``): the mixture
log-magnitude is cut into 7-frame windows with border padding and hop 3; the target of each window is the clean
log-magnitude of its centre frame. Inference (``main_dnn.py inference``, 1.9): the same windows with hop 1 (one
output frame per mixture frame), scaler, network, inverse scaler, ``exp``, mixture phase, overlap-add divided by
the window sum, times sqrt(sum hamming^2) (the last two inside :func:`reproductions.sednn.features.sednn_istft`).
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from reproductions.sednn.features import sednn_context, sednn_log_magnitude, sednn_stft
from reproductions.sednn.scaler import Scaler


def pack_pair(noisy: np.ndarray, clean: np.ndarray, n_concat: int = 7, hop: int = 3):
    """Return ``(inputs (segments, n_concat, 257), targets (segments, 257))`` for one mixture, unscaled.

    The targets are the centre frames of the clean context windows, which equals sednn's
    ``mat_2d_to_3d(pad_with_border(y))[:, (n_concat-1)//2, :]``.
    """
    if len(noisy) != len(clean):
        raise ValueError(f"pack_pair: noisy ({len(noisy)}) and clean ({len(clean)}) lengths differ")
    mixture_log = sednn_log_magnitude(sednn_stft(noisy))
    clean_log = sednn_log_magnitude(sednn_stft(clean))
    inputs = sednn_context(mixture_log, n_concat=n_concat, hop=hop)
    targets = sednn_context(clean_log, n_concat=n_concat, hop=hop)[:, (n_concat - 1) // 2, :]
    return inputs.astype(np.float32), targets.astype(np.float32)


def pack_examples(examples, n_concat: int = 7, hop: int = 3, description: str = "pack features"):
    """Pack a list of ``data_prep`` examples (``.load() -> (noisy, clean, noise)``) into two float32 arrays."""
    examples = list(examples)
    if not examples:
        raise ValueError(f"{description}: no examples; check the corpus split and the data configuration")
    inputs, targets = [], []
    for example in tqdm(examples, desc=description, unit="mixture"):
        noisy, clean, _ = example.load()
        packed_inputs, packed_targets = pack_pair(noisy, clean, n_concat, hop)
        inputs.append(packed_inputs)
        targets.append(packed_targets)
    return np.concatenate(inputs), np.concatenate(targets)


def keras_predictor(model, batch_size: int = 2048):
    """A ``predict(scaled_inputs) -> scaled_outputs`` callable running a Keras model without dropout."""
    def predict(inputs):
        return model.predict(inputs, batch_size=batch_size, verbose=0)

    return predict


def tflite_predictor(tflite_model, batch_size: int = 256):
    """The same for a :class:`common.tflite.TFLiteModel` exported with a free batch axis, in fixed-size chunks."""
    def predict(inputs):
        outputs = [tflite_model(inputs[start:start + batch_size]) for start in range(0, len(inputs), batch_size)]
        return np.concatenate(outputs)

    return predict


def enhance_waveform(noisy: np.ndarray, predict, scaler: Scaler, n_concat: int = 7):
    """Enhance one mixture; returns ``(enhanced waveform, mixture log-magnitude, enhanced log-magnitude)``.

    The output has the mixture's length: ``sednn_istft`` yields (frames-1)*256+512 samples and the trailing
    samples that no frame covered (fewer than 256) are zeros, so PESQ compares equal-length files.
    """
    from reproductions.sednn.features import sednn_istft

    mixture_complex = sednn_stft(noisy)
    mixture_log = sednn_log_magnitude(mixture_complex)
    windows = scaler.transform(sednn_context(mixture_log, n_concat=n_concat, hop=1))
    enhanced_log = scaler.inverse_transform(predict(windows))
    enhanced = sednn_istft(np.exp(enhanced_log), mixture_complex, length=len(noisy))
    return enhanced, mixture_log, enhanced_log
