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

import contextlib
import glob
import json
import os
import random
import sys
from pathlib import Path

import numpy as np

from common.tfkeras import keras, tf

STATE_FILE = "state.json"
PRECISIONS = ("auto", "float32", "bfloat16")
# The CPU flags (Linux /proc/cpuinfo names) of the bf16 matrix units oneDNN uses: AMX tiles and AVX512 dot products.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


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


def cpu_flags(cpuinfo_path="/proc/cpuinfo") -> set:
    """The feature flags the CPU reports (the ``flags`` lines of ``/proc/cpuinfo``); empty where there is none."""
    try:
        text = Path(cpuinfo_path).read_text()
    except OSError:
        return set()
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return flags


def gpu_compute_capabilities() -> list:
    """``(major, minor)`` compute capability of every visible GPU."""
    capabilities = []
    for device in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(device).get("compute_capability")
        if capability:
            capabilities.append(tuple(int(part) for part in capability))
    return capabilities


def onednn_enabled() -> bool:
    """Whether TensorFlow's oneDNN kernels are on (``TF_ENABLE_ONEDNN_OPTS``, which common.tfkeras defaults to 0)."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() in ("1", "true")


def choose_precision(kind, flags, gpu_capabilities, onednn, source="training.precision"):
    """Decide the Keras policy for ``kind`` (``auto``, ``float32`` or ``bfloat16``); returns ``(policy, reason)``.

    ``auto`` takes ``mixed_bfloat16`` on GPUs of compute capability 8.0 or more and on CPUs with a bf16 matrix
    unit whose oneDNN kernels are on: without oneDNN, TensorFlow's CPU bf16 convolutions are emulated and an ICSE
    FCN step is about 12x slower than in float32.
    """
    if kind not in PRECISIONS:
        raise ValueError(f"{source} must be one of {', '.join(PRECISIONS)}, got {kind!r}")
    if kind == "float32":
        return "float32", f"{source} is float32"
    if kind == "bfloat16":
        reason = f"{source} is bfloat16"
        if not gpu_capabilities and not onednn:
            reason += " (warning: TF_ENABLE_ONEDNN_OPTS=0, CPU bf16 kernels are emulated and slow)"
        return "mixed_bfloat16", reason
    if gpu_capabilities:
        lowest = min(gpu_capabilities)
        if lowest >= (8, 0):
            return "mixed_bfloat16", f"auto: GPU compute capability {lowest[0]}.{lowest[1]} has bf16 units"
        return "float32", f"auto: GPU compute capability {lowest[0]}.{lowest[1]} is below 8.0 (no bf16 units)"
    found = [flag for flag in BFLOAT16_CPU_FLAGS if flag in flags]
    if not found:
        return "float32", f"auto: the CPU reports none of {', '.join(BFLOAT16_CPU_FLAGS)}"
    if not onednn:
        return "float32", (f"auto: the CPU has {', '.join(found)} but TF_ENABLE_ONEDNN_OPTS=0 (oneDNN off), "
                           "without which bf16 is emulated")
    return "mixed_bfloat16", f"auto: the CPU has {', '.join(found)} and oneDNN is on"


def memory_allocator(maps_path="/proc/self/maps") -> str:
    """``"tcmalloc"``, ``"jemalloc"`` or ``"glibc malloc"``: the allocator mapped into this process (Linux)."""
    try:
        maps = Path(maps_path).read_text()
    except OSError:
        return "unknown"
    for name in ("tcmalloc", "jemalloc"):
        if f"lib{name}" in maps:
            return name
    return "glibc malloc"


def tcmalloc_library():
    """Path of Debian's ``libtcmalloc_minimal.so.4`` (what ``common/allocator.sh`` preloads), or None."""
    found = sorted(glob.glob("/usr/lib/*/libtcmalloc_minimal.so.4") + glob.glob("/usr/lib/libtcmalloc_minimal.so.4"))
    return found[0] if found else None


def log_allocator(log=print) -> str:
    """Log the allocator in one line, with the remedy where it is glibc's (see ``common/allocator.sh``)."""
    allocator = memory_allocator()
    if allocator == "glibc malloc":
        log("memory allocator: glibc malloc (the recipes' training steps measured 1.4-3.6x slower than under "
            "TCMalloc: run through run.sh after './runme.sh setup', or set LD_PRELOAD to libtcmalloc_minimal.so.4)")
    else:
        log(f"memory allocator: {allocator}")
    return allocator


def select_precision(kind="auto", source="training.precision", log=print) -> str:
    """Set the global Keras policy for ``kind`` (see :func:`choose_precision`), log the choice in one line and
    return the policy name. Call it before the models are built: layers take the policy at construction."""
    policy, reason = choose_precision(kind, cpu_flags(), gpu_compute_capabilities(), onednn_enabled(), source)
    keras.mixed_precision.set_global_policy(policy)
    log(f"precision: {policy} ({reason})")
    return policy


@contextlib.contextmanager
def training_precision(kind="auto", source="training.precision", log=print):
    """:func:`select_precision` for the duration of a ``with`` block; the previous global policy comes back after,
    so that models built later in the same process (export, evaluation) are float32 again."""
    previous = keras.mixed_precision.global_policy()
    log_allocator(log)
    try:
        yield select_precision(kind, source, log)
    finally:
        keras.mixed_precision.set_global_policy(previous)


# Measured with TFMOT 0.8.1 under mixed_bfloat16 (tests/common/test_precision.py keeps it true): magnitude pruning
# and QAT fail to build (float32 masks and quantizer ranges against bf16 activations), clustering fails in its first
# step (float32 centroids subtracted from bf16 weights).
TFMOT_FLOAT32_REASON = ("TFMOT's pruning, clustering and QAT wrappers keep float32 masks, centroids and ranges "
                        "that do not mix with bf16 activations")


@contextlib.contextmanager
def compression_precision(kind="auto", stage="compression", reason=TFMOT_FLOAT32_REASON,
                          source="training.precision", log=print):
    """The policy for a stage whose wrappers need float32 (TFMOT pruning, clustering, QAT, the FQSE quantizers):
    float32 for the ``with`` block, and a line saying so and why when ``kind`` would otherwise have taken bf16."""
    policy, _ = choose_precision(kind, cpu_flags(), gpu_compute_capabilities(), onednn_enabled(), source)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    log_allocator(log)
    if policy != "float32":
        log(f"precision: float32 for {stage}, not {policy} ({reason})")
    else:
        log(f"precision: float32 for {stage}")
    try:
        yield "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)


def config_precision(config) -> tuple:
    """``(kind, source)`` of a recipe configuration's ``training.precision`` (``auto`` where a file has none)."""
    return (config.get("training", {}).get("precision", "auto"),
            f"{config.get('config_path', 'configuration')}: training.precision")


class BackgroundBatches(keras.utils.Sequence):
    """A Keras ``Sequence`` whose next ``depth`` batches are prepared in a background thread during the step.

    The wrapped sequence's ``__getitem__`` must be a function of its index and of the state that ``on_epoch_end``
    changes (the epoch's draw of examples): the batches are then exactly the serial ones, in the same order, for
    a given seed. Mixing and feature extraction (NumPy, soundfile) and the training step (TensorFlow) release the
    GIL, so on two cores one overlaps the other. ``on_epoch_end`` waits for the prepared batches before the wrapped
    sequence draws the next epoch.

    Args:
        sequence: the ``keras.utils.Sequence`` to read ahead.
        depth: how many batches to prepare ahead of the one the step asks for.
    """

    def __init__(self, sequence, depth=2):
        super().__init__()
        if int(depth) < 1:
            raise ValueError(f"BackgroundBatches: depth must be at least 1, got {depth}")
        self.sequence = sequence
        self.depth = int(depth)
        self._executor = None
        self._pending = {}
        self._last = None

    def __len__(self):
        return len(self.sequence)

    def _submit(self, index):
        if index < len(self.sequence) and index not in self._pending:
            if self._executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches")
            self._pending[index] = self._executor.submit(self.sequence.__getitem__, index)

    def __getitem__(self, index):
        if index < 0 or index >= len(self.sequence):
            raise IndexError(f"batch {index} of a sequence of {len(self.sequence)}")
        # Keras reads batch 0 once to learn the shapes and again to train on it: the second read is the same batch.
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        self._submit(index)
        for ahead in range(index + 1, index + 1 + self.depth):
            self._submit(ahead)
        batch = self._pending.pop(index).result()
        for stale in [key for key in self._pending if key < index]:
            self._pending.pop(stale).result()
        self._last = (index, batch)
        return batch

    def _drain(self):
        for future in self._pending.values():
            future.result()
        self._pending.clear()
        self._last = None

    def on_epoch_end(self):
        self._drain()
        self.sequence.on_epoch_end()

    def close(self):
        """Wait for the prepared batches and stop the thread."""
        self._drain()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


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


def load_trained(build, path, missing: str):
    """Build a model with ``build()`` and load the trained weights at ``path`` into it.

    The file is checked before the model is built, so a missing file costs no graph construction; its error names
    the file and ``missing``, the step that writes it (``"run 'train --model crn' first"``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained model; {missing}")
    model = build()
    model.load_weights(str(path))
    return model
