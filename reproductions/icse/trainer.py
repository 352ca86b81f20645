"""ICSE's training loop (docs/icse.md#training), shared by the float FCN and the pruning and quantization
retrainings: the ``training`` settings (loss, batch size, crop length), the negative SI-SNR loss, the learning-rate
schedule and the resumable fit that keeps the best epoch by validation loss.
"""
from __future__ import annotations

import math

from reproductions.icse.data import SAMPLE_RATE, make_sequence_class

LOSSES = ("mse", "negative_si_snr")
SCHEDULES = ("constant", "cosine")


def training_settings(config) -> dict:
    """The batching and objective of every training step (``training`` in the config, shared by the FCN and the
    compression retrainings): ``loss`` (``mse``, Fu's, or ``negative_si_snr``), ``pre_emphasis`` (of the
    ``negative_si_snr`` loss, ``common.losses``; 0 = plain SI-SNR), ``batch_size`` and ``segment_seconds`` (null:
    one whole utterance per batch, Fu's; else ``batch_size`` crops of that length)."""
    from common.losses import checked_pre_emphasis

    training = config["training"]
    where = f"{config.get('config_path', 'config')}: training"
    loss = training.get("loss", "mse")
    if loss not in LOSSES:
        raise ValueError(f"{where}.loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    batch_size = int(training.get("batch_size", 1))
    if batch_size < 1:
        raise ValueError(f"{where}.batch_size must be at least 1, got {batch_size}")
    segment = training.get("segment_seconds")
    if segment is not None and float(segment) <= 0:
        raise ValueError(f"{where}.segment_seconds must be positive or null, got {segment!r}")
    if segment is None and batch_size != 1:
        raise ValueError(f"{where}.batch_size {batch_size} needs training.segment_seconds: whole utterances differ "
                         "in length, so they go one per batch")
    pre_emphasis = checked_pre_emphasis(training.get("pre_emphasis", 0.0), f"{where}.pre_emphasis")
    if pre_emphasis and loss != "negative_si_snr":
        raise ValueError(f"{where}.pre_emphasis applies to the negative_si_snr loss, not to {loss!r}")
    return {"loss": loss, "batch_size": batch_size, "pre_emphasis": pre_emphasis,
            "segment_samples": None if segment is None else int(round(float(segment) * SAMPLE_RATE))}


def learning_rate(spec, steps):
    """``spec.learning_rate``, constant or (``spec.schedule: cosine``) cosine-decayed to zero over ``steps``
    optimizer steps; the optimizer's step counter is checkpointed, so a resumed run continues the same curve."""
    from common.tfkeras import keras

    schedule = spec.get("schedule", "constant")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    rate = float(spec["learning_rate"])
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(int(steps), 1))
    return rate


def train_model(model, corpus, config, run_dir, spec, callbacks=()):
    """Resumable training of ``model`` (Adam; loss and batching from :func:`training_settings`) for ``spec`` =
    {epochs, utterances_per_epoch, learning_rate, schedule}; validation on whole utterances, one per batch, with the
    same loss; the best epoch by validation loss is loaded back. Returns the model."""
    from common.losses import waveform_loss
    from common.tfkeras import keras
    from common.training import BackgroundBatches, ResumableTraining

    epochs = int(spec["epochs"])
    if epochs <= 0:
        return model
    settings = training_settings(config)
    sequence = make_sequence_class()
    count = int(spec["utterances_per_epoch"])
    steps = epochs * int(math.ceil(count / settings["batch_size"]))
    loss = waveform_loss(settings["pre_emphasis"]) if settings["loss"] == "negative_si_snr" else "mse"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate(spec, steps)), loss=loss)
    training = ResumableTraining(model, run_dir)
    train_data = BackgroundBatches(sequence(corpus, config, "train", count, epoch=training.initial_epoch,
                                            batch_size=settings["batch_size"],
                                            segment_samples=settings["segment_samples"]))
    valid_data = sequence(corpus, config, "valid", int(config["data"]["valid_items"]))
    try:
        training.fit(train_data, epochs=epochs, validation_data=valid_data, callbacks=list(callbacks), shuffle=False)
    finally:
        train_data.close()
    if training.best_weights_path.is_file():
        model.load_weights(str(training.best_weights_path))
    for callback in callbacks:
        if hasattr(callback, "apply"):
            callback.set_model(model)
            callback.apply()  # the best epoch's weights were saved after the holder ran; re-applying is exact
    return model
