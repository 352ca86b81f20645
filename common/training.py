"""Training machinery shared by the reproductions: seeding, resumable ``fit``, schedules, device strategy.

A training run lives in its experiment folder::

    exp/<name>/<config>/checkpoints/   model + optimizer checkpoints (the last two) and state.json
    exp/<name>/<config>/best.weights.h5  weights of the best epoch by the monitored metric
    exp/<name>/<config>/tensorboard/   TensorBoard logs
    exp/<name>/<config>/training_log.csv

:class:`ResumableTraining` saves all of it after every epoch. Rerunning the same command after a kill
restores the model, the optimizer (moments, step, learning rate) and the state of early stopping and
learning-rate schedules, and continues with the next epoch.
"""
from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np

from common.tfkeras import keras, tf

STATE_FILE = "state.json"


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def select_strategy(kind: str = "auto", devices=None) -> tf.distribute.Strategy:
    """Pick the ``tf.distribute`` strategy.

    Args:
        kind: ``"auto"`` (a multi-worker strategy when ``TF_CONFIG`` names several machines, mirrored over
            the GPUs when there are several, otherwise the default one-device strategy), ``"default"``,
            ``"mirrored"`` or ``"multi_worker"``.
        devices: device names for ``"mirrored"`` (default: all GPUs).
    """
    if kind == "auto":
        if os.environ.get("TF_CONFIG"):
            kind = "multi_worker"
        elif devices is not None or len(tf.config.list_logical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {kind!r}: use auto, default, mirrored or multi_worker")


class StepDecay(keras.callbacks.Callback):
    """Multiply the learning rate by ``factor`` every ``every_epochs`` epochs (CRN: 0.98 every 2).

    The rate is computed from the epoch index, so a resumed run gets the same rate as an uninterrupted one.
    """

    def __init__(self, initial_learning_rate: float, factor: float, every_epochs: int):
        super().__init__()
        if every_epochs < 1:
            raise ValueError(f"every_epochs must be at least 1, got {every_epochs}")
        self.initial_learning_rate = initial_learning_rate
        self.factor = factor
        self.every_epochs = every_epochs

    def learning_rate(self, epoch: int) -> float:
        return self.initial_learning_rate * self.factor ** (epoch // self.every_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        keras.backend.set_value(self.model.optimizer.learning_rate, self.learning_rate(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.backend.get_value(self.model.optimizer.learning_rate))


# Attributes of Keras' stateful callbacks that must survive a restart for the resumed run to behave like an
# uninterrupted one (patience counters and best values).
_CALLBACK_STATE = {
    "EarlyStopping": ("wait", "best", "stopped_epoch", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}


def _to_json(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def _from_json(value):
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def _checkpoint_epoch(checkpoint_path: str) -> int:
    """The epoch of ``.../ckpt-<epoch>`` (checkpoints are numbered by the epochs completed)."""
    return int(str(checkpoint_path).rsplit("-", 1)[1])


def _checkpoint_problem(checkpoint_path: str):
    """Return why ``checkpoint_path`` cannot be restored (missing, truncated, corrupt), or None if it can."""
    if not tf.io.gfile.exists(checkpoint_path + ".index"):
        return "missing"
    try:
        reader = tf.train.load_checkpoint(checkpoint_path)
        # Reading every tensor finds a truncated data file, which the index alone does not show.
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError, OSError, RuntimeError) as error:
        return f"unreadable ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no message'})"
    return None


class _EpochCheckpoint(keras.callbacks.Callback):
    """Save model, optimizer and callback state after every epoch; restore callback state on resume."""

    def __init__(self, training: "ResumableTraining", stateful_callbacks):
        super().__init__()
        self.training = training
        self.stateful_callbacks = stateful_callbacks

    def on_train_begin(self, logs=None):
        # Runs after the other callbacks' on_train_begin (it is last in the list), which reset their counters.
        saved = self.training.state.get("callbacks", {})
        for callback in self.stateful_callbacks:
            for attribute, value in saved.get(type(callback).__name__, {}).items():
                setattr(callback, attribute, _from_json(value))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        training = self.training
        monitored = logs.get(training.monitor)
        best = training.state.get("best")
        improved = monitored is not None and (
            best is None or (monitored < best if training.mode == "min" else monitored > best)
        )
        if improved:
            training.state["best"] = float(monitored)
            training.state["best_epoch"] = epoch + 1
            self.model.save_weights(str(training.best_weights_path))
        training.state["epoch"] = epoch + 1
        training.state["callbacks"] = {
            type(callback).__name__: {
                attribute: _to_json(getattr(callback, attribute))
                for attribute in _CALLBACK_STATE[type(callback).__name__]
                if hasattr(callback, attribute)
            }
            for callback in self.stateful_callbacks
        }
        training.manager.save(checkpoint_number=epoch + 1)
        # The state of every kept checkpoint, so that a resume from an older one (the newest being unreadable)
        # continues exactly as that epoch left off.
        kept_epochs = {_checkpoint_epoch(path) for path in training.manager.checkpoints}
        kept = {key: value for key, value in training.state.get("kept", {}).items() if int(key) in kept_epochs}
        kept[str(epoch + 1)] = {key: value for key, value in training.state.items() if key != "kept"}
        training.state["kept"] = kept
        # The state file is written after the checkpoint, and atomically: a kill between the two leaves the
        # previous state, whose epoch has a checkpoint too.
        temporary = training.state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(training.state, indent=1))
        os.replace(temporary, training.state_path)


class ResumableTraining:
    """``model.fit`` with per-epoch checkpoints in ``exp_dir`` and automatic resume.

    Args:
        model: a compiled Keras model.
        exp_dir: the experiment folder.
        monitor: the logged metric that decides the best epoch (``val_loss`` by default).
        mode: ``"min"`` or ``"max"``.
        max_to_keep: how many epoch checkpoints to keep.

    Example::

        training = ResumableTraining(model, "exp/icse/mini")
        training.fit(train_dataset, epochs=20, validation_data=valid_dataset,
                     callbacks=[keras.callbacks.EarlyStopping(patience=30)])
        model.load_weights(training.best_weights_path)
    """

    def __init__(self, model, exp_dir, monitor: str = "val_loss", mode: str = "min", max_to_keep: int = 2):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if model.optimizer is None:
            raise ValueError("compile the model before creating ResumableTraining")
        self.model = model
        self.exp_dir = Path(exp_dir)
        self.monitor = monitor
        self.mode = mode
        self.checkpoint_dir = self.exp_dir / "checkpoints"
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.checkpoint_dir / STATE_FILE
        self.best_weights_path = self.exp_dir / "best.weights.h5"
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.checkpoint_dir), max_to_keep=max_to_keep)
        self.state = {"epoch": 0}
        if self.state_path.exists():
            self.state = json.loads(self.state_path.read_text())
            checkpoint_path = self._newest_readable_checkpoint()
            # Optimizer slots are created on the first step; the checkpoint restores them then.
            self.checkpoint.restore(checkpoint_path).expect_partial()

    def _newest_readable_checkpoint(self) -> str:
        """Return the checkpoint of the recorded epoch or, if it is unreadable, of the newest readable older one.

        On a fall-back ``state`` becomes the state recorded with that older checkpoint, except for the best epoch,
        whose weights are in ``best.weights.h5`` whichever checkpoints survive.
        """
        recorded_epoch = int(self.state["epoch"])
        epochs = {recorded_epoch} | {
            _checkpoint_epoch(str(path)[: -len(".index")]) for path in self.checkpoint_dir.glob("ckpt-*.index")
        }
        problems = []
        for epoch in sorted((epoch for epoch in epochs if epoch <= recorded_epoch), reverse=True):
            checkpoint_path = str(self.checkpoint_dir / f"ckpt-{epoch}")
            problem = _checkpoint_problem(checkpoint_path)
            if problem is None:
                if epoch != recorded_epoch:
                    print(f"{self.exp_dir}: {problems[0]}; resuming from {checkpoint_path} (epoch {epoch}), the "
                          "newest readable checkpoint", file=sys.stderr, flush=True)
                    kept = self.state.get("kept", {})
                    recorded = self.state
                    self.state = dict(kept.get(str(epoch), {**recorded, "epoch": epoch}), kept=kept)
                    # best.weights.h5 is its own file and still holds the best epoch's weights, even if that
                    # epoch's checkpoint is the unreadable one.
                    if recorded.get("best_epoch") is not None and recorded["best_epoch"] > epoch:
                        self.state.update(best=recorded["best"], best_epoch=recorded["best_epoch"])
                return checkpoint_path
            problems.append(f"{checkpoint_path} is {problem}")
        raise ValueError(
            f"{self.state_path} names epoch {recorded_epoch} but no checkpoint in {self.checkpoint_dir} is readable "
            f"({'; '.join(problems)}): the experiment folder {self.exp_dir} is damaged; delete it to start over"
        )

    @property
    def initial_epoch(self) -> int:
        """Number of epochs already completed (0 for a new run)."""
        return int(self.state["epoch"])

    def fit(self, train_data, epochs: int, validation_data=None, callbacks=(), verbose=None, **fit_arguments):
        """Train until ``epochs`` epochs are completed in total; returns the Keras ``History``.

        ``verbose`` defaults to the progress bar on a terminal and one line per epoch otherwise.
        """
        if self.initial_epoch >= epochs:
            print(f"{self.exp_dir}: all {epochs} epochs already trained (state in {self.state_path})")
            return None
        if self.initial_epoch > 0:
            print(f"{self.exp_dir}: resuming after epoch {self.initial_epoch} of {epochs}")
        callbacks = list(callbacks)
        stateful = [callback for callback in callbacks if type(callback).__name__ in _CALLBACK_STATE]
        callbacks += [
            keras.callbacks.TensorBoard(log_dir=str(self.exp_dir / "tensorboard")),
            keras.callbacks.CSVLogger(str(self.exp_dir / "training_log.csv"), append=True),
            _EpochCheckpoint(self, stateful),
        ]
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 2
        return self.model.fit(
            train_data,
            epochs=epochs,
            initial_epoch=self.initial_epoch,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
            **fit_arguments,
        )


def paper_callbacks(early_stop_patience=None, halve_lr_patience=None, step_decay=None, monitor="val_loss"):
    """The learning-rate and stopping rules the papers use, as Keras callbacks.

    Args:
        early_stop_patience: stop after this many epochs without improvement (FQSE: 30).
        halve_lr_patience: halve the learning rate after this many epochs without improvement (FQSE: 5).
        step_decay: ``(initial_learning_rate, factor, every_epochs)`` (CRN: ``(2e-4, 0.98, 2)``).
    """
    callbacks = []
    if halve_lr_patience is not None:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=halve_lr_patience))
    if early_stop_patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=early_stop_patience))
    if step_decay is not None:
        callbacks.append(StepDecay(*step_decay))
    return callbacks
