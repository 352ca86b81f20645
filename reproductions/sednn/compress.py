"""Beyond sednn: magnitude pruning and weight clustering of the four Dense layers, and .tflite export.

Both compressions fine-tune the trained float model with sednn's loss, optimiser and batch order (MAE, Adam,
the same resumable batch sequence as :mod:`reproductions.sednn.trainer`), through the shared TFMOT wrappers of
``common.compression``; the wrappers are stripped before saving, so the saved model is a plain sednn DNN whose
kernels hold zeros (pruned) or at most ``clusters`` distinct values per layer (clustered). Size gains appear in
the gzip size of the .tflite (``docs/toolchain.md#channel-pruning``, ``docs/toolchain.md#size``). The .tflite graphs
take the standardised features and return standardised features; the scaler travels beside them as ``.scaler.npz``
(STFT, scaler and resynthesis stay in float numpy, ``docs/toolchain.md#tflite-conversion``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.tfkeras import layers
from reproductions.sednn.trainer import batch_indices, compile_model, save_checkpoint


def dense_layer_names(model) -> list:
    return [layer.name for layer in model.layers if isinstance(layer, layers.Dense)]


def _batches(inputs, targets, batch_size: int, seed: int):
    iteration = 0
    while True:
        indices = np.sort(batch_indices(iteration, len(inputs), batch_size, seed))
        yield inputs[indices], targets[indices]
        iteration += 1


def fine_tune_compressed(model, variant: str, config: dict, scaler, train_inputs, train_targets, output: Path,
                         batch_size: int, seed: int, log=print):
    """Compress ``model`` (``variant`` 'pruned' or 'clustered'), fine-tune, strip and save to ``output``.

    Args:
        config: the configuration; its ``pruning:`` or ``clustering:`` section sets the variant's schedule.
        train_inputs, train_targets: scaled packed training features.
    Returns:
        The stripped Keras model.
    """
    from common.compression import clustering, pruning

    names = dense_layer_names(model)
    if variant == "pruned":
        section = "pruning"
        settings = config[section]
        iterations = int(settings["iterations"])
        frequency = max(1, int(settings["frequency"]))
        # The polynomial ramp must end on a pruning step (TFMOT prunes when (step - begin) % frequency == 0).
        end_step = max(frequency, (int(iterations * settings["ramp_fraction"]) // frequency) * frequency)
        schedule = pruning.pruning_schedule("polynomial", target_sparsity=settings["target_sparsity"],
                                            begin_step=0, end_step=end_step, frequency=frequency)
        wrapped = pruning.prune_magnitude(model, schedule=schedule, layers=names)
        callbacks = pruning.pruning_callbacks()
    elif variant == "clustered":
        section = "clustering"
        settings = config[section]
        iterations = int(settings["iterations"])
        wrapped = clustering.cluster_weights(model, {name: int(settings["clusters"]) for name in names},
                                             centroid_init=settings["centroid_init"], preserve_sparsity=False)
        callbacks = []
    else:
        raise ValueError(f"unknown variant {variant!r}; use 'pruned' or 'clustered'")
    if iterations < 1:
        raise ValueError(f"{section}.iterations must be >= 1, got {iterations}")
    compile_model(wrapped, settings["learning_rate"])
    history = wrapped.fit(_batches(train_inputs, train_targets, batch_size, seed), steps_per_epoch=iterations,
                          epochs=1, callbacks=callbacks, verbose=0)
    stripped = pruning.strip_pruning(wrapped) if variant == "pruned" else clustering.strip_clustering(wrapped)
    compile_model(stripped, settings["learning_rate"])
    if variant == "pruned":
        detail = {name: round(value, 3) for name, value in pruning.kernel_sparsity(stripped).items()}
        log(f"pruned: kernel sparsity {detail}")
    else:
        log(f"clustered: distinct kernel values {clustering.distinct_kernel_values(stripped)}")
    log(f"{variant}: fine-tuned {iterations} iterations, final tr_loss {history.history['loss'][-1]:.6f}")
    save_checkpoint(stripped, scaler, output)
    return stripped


def export_variant(model, scaler, target: Path, mode: str, scaled_train_inputs: np.ndarray, calibration_segments: int,
                   seed: int = 0) -> Path:
    """Write ``target`` (.tflite, free batch axis) and its scaler ``target.scaler.npz``.

    int8 is full-integer (int8 weights, activations and I/O) calibrated on ``calibration_segments`` random
    training segments, one per calibration step.
    """
    from common.tflite import export_tflite

    target = Path(target)
    representative = None
    if mode == "int8":
        count = min(int(calibration_segments), len(scaled_train_inputs))
        chosen = np.random.RandomState(seed).choice(len(scaled_train_inputs), count, replace=False)
        representative = [scaled_train_inputs[index:index + 1] for index in np.sort(chosen)]
    n_concat, n_freq = model.input_shape[1:]
    export_tflite(model, target, mode=mode, representative_data=representative,
                  input_shapes=[(None, n_concat, n_freq)])
    scaler.save_npz(target.with_suffix(".scaler.npz"))
    return target
