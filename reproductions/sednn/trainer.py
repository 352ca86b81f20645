"""sednn's iteration-based training loop, made resumable.

Faithful to ``main_dnn.py`` L129-168 (``docs/sednn.md#training``): ``train_on_batch`` on
shuffled mini-batches; before the update of every iteration that is a multiple of ``log_interval`` the MAE is
measured on (up to ``eval_max_batches`` batches of) the training and the test data and printed as
``Iteration: N, tr_loss: x, te_loss: y``; after the update the iteration counter increases and at multiples of
``save_interval`` the model is saved as ``md_<N>iters.h5``; the loop stops when the counter reaches
``iterations`` (10001 in sednn, so models exist at 5000 and 10000).

Two changes make a killed run resumable with the same result: the batch order is a pure function of
(seed, iteration) instead of the global numpy RNG, and the checkpoint holds the optimizer state (the h5 file
keeps Adam's moments and step) and the scaler. sednn's generator semantics are kept: each epoch is a fresh
permutation cut into contiguous batches, the last one shorter.
"""
from __future__ import annotations

import csv
import functools
import math
import re
import warnings
from pathlib import Path

import numpy as np

from common.tfkeras import keras
from reproductions.sednn.scaler import Scaler

CHECKPOINT_PATTERN = re.compile(r"^md_(\d+)iters\.h5$")


def format_log_line(iteration: int, train_loss: float, test_loss: float) -> str:
    """sednn's printed line (``main_dnn.py`` L152: ``"Iteration: %d, tr_loss: %f, te_loss: %f"``)."""
    return "Iteration: %d, tr_loss: %f, te_loss: %f" % (iteration, train_loss, test_loss)


def checkpoint_path(exp_dir: Path, iteration: int) -> Path:
    return Path(exp_dir) / f"md_{iteration}iters.h5"


def list_checkpoints(exp_dir: Path) -> dict:
    """Return ``{iteration: path}`` of the ``md_<N>iters.h5`` files in ``exp_dir``."""
    found = {}
    if Path(exp_dir).is_dir():
        for path in Path(exp_dir).iterdir():
            match = CHECKPOINT_PATTERN.match(path.name)
            if match:
                found[int(match.group(1))] = path
    return found


def batch_indices(iteration: int, sample_count: int, batch_size: int, seed: int) -> np.ndarray:
    """Indices of the batch used at ``iteration`` (0-based), reproducible after a restart.

    Epoch ``e`` is ``RandomState(seed + e).permutation(n)`` cut into ``ceil(n / batch)`` contiguous batches,
    as sednn's ``DataGenerator`` (which reshuffles when its pointer passes the end).
    """
    batches_per_epoch = math.ceil(sample_count / batch_size)
    epoch, position = divmod(iteration, batches_per_epoch)
    permutation = _epoch_permutation(seed + epoch, sample_count)
    return permutation[position * batch_size : (position + 1) * batch_size]


@functools.lru_cache(maxsize=2)
def _epoch_permutation(epoch_seed: int, sample_count: int) -> np.ndarray:
    # Drawing a permutation of a few hundred thousand segments costs as much as a small training step: one per
    # epoch, not one per batch.
    permutation = np.random.RandomState(epoch_seed).permutation(sample_count)
    permutation.setflags(write=False)
    return permutation


def mean_absolute_error(model, inputs, targets, batch_size: int, max_batches: int, seed: int) -> float:
    """sednn's ``eval``: one pass over at most ``max_batches`` shuffled batches, MAE over all predictions."""
    order = np.random.RandomState(seed).permutation(len(inputs))[: batch_size * max_batches]
    order = np.sort(order)
    total = 0.0
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        predictions = model(inputs[chunk], training=False).numpy()
        total += float(np.sum(np.abs(predictions.astype(np.float64) - targets[chunk])))
    return total / (len(order) * targets.shape[-1])


def compile_model(model, learning_rate: float) -> None:
    # Keras 2.2.4's Adam used epsilon = K.epsilon() = 1e-7, the tf_keras default (reference 1.15).
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mean_absolute_error")


def save_checkpoint(model, scaler: Scaler, path: Path) -> None:
    """Save model + optimizer state + scaler into one h5 file, atomically (a kill never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial.h5")
    with warnings.catch_warnings():
        # sednn's checkpoints are h5 files; the "legacy format" notice is expected.
        warnings.simplefilter("ignore", UserWarning)
        model.save(temporary, include_optimizer=True)
    scaler.save_to_h5(temporary)
    temporary.replace(path)


def _float32_layer_config(value):
    """A model configuration with every mixed dtype policy replaced by float32."""
    if isinstance(value, dict):
        if value.get("class_name") in ("Policy", "DTypePolicy") and \
                str(value.get("config", {}).get("name", "")).startswith("mixed_"):
            return "float32"
        return {key: _float32_layer_config(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float32_layer_config(item) for item in value]
    return value


def load_checkpoint(path: Path, custom_objects=None, keep_precision=False):
    """Return ``(model, scaler)`` from a checkpoint written by :func:`save_checkpoint`.

    A checkpoint trained under a mixed policy comes back as the float32 model with the same (float32) weights,
    compiled afresh, for evaluation, compression and export; ``keep_precision=True`` returns it as saved, with its
    optimizer state, to resume training.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found; train first (run.sh stage 2)")
    model = keras.models.load_model(path, custom_objects=custom_objects, compile=True)
    if not keep_precision and any(layer.dtype_policy.name != "float32" for layer in model.layers):
        learning_rate = float(keras.backend.get_value(model.optimizer.learning_rate))
        float_model = keras.Model.from_config(_float32_layer_config(model.get_config()),
                                              custom_objects=custom_objects)
        float_model.set_weights(model.get_weights())
        compile_model(float_model, learning_rate)
        model = float_model
    return model, Scaler.load_from_h5(path)


def _read_history(history_path: Path, before_iteration: int) -> list:
    if not history_path.is_file():
        return []
    with history_path.open() as handle:
        rows = [{"iteration": int(row["iteration"]), "tr_loss": float(row["tr_loss"]), "te_loss": float(row["te_loss"])}
                for row in csv.DictReader(handle)]
    return [row for row in rows if row["iteration"] < before_iteration]


def train_iterations(
    build_model,
    scaler: Scaler,
    train_inputs: np.ndarray,
    train_targets: np.ndarray,
    test_inputs: np.ndarray,
    test_targets: np.ndarray,
    exp_dir: Path,
    iterations: int = 10001,
    batch_size: int = 500,
    learning_rate: float = 1e-4,
    log_interval: int = 1000,
    save_interval: int = 5000,
    eval_max_batches: int = 100,
    seed: int = 0,
    log=print,
    stop_after=None,
):
    """Train (or resume) and return the model after ``iterations`` updates.

    Args:
        build_model: callable returning a fresh uncompiled model (used when no checkpoint exists).
        scaler: the fitted scaler; inputs/targets given here are already scaled with it.
        exp_dir: where ``md_<N>iters.h5`` and ``training_history.csv`` go.
        stop_after: stop (as if killed) after this many updates in this call; for tests of resumption.

    Returns:
        ``(model, history)`` with ``history`` the list of ``dict(iteration, tr_loss, te_loss)``.
    """
    if len(train_inputs) == 0 or len(test_inputs) == 0:
        raise ValueError(f"{exp_dir}: empty training or test features; check the corpus and the features stage")
    if len(train_inputs) != len(train_targets) or len(test_inputs) != len(test_targets):
        raise ValueError(f"{exp_dir}: inputs and targets differ in length")
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    resumable = {n: p for n, p in list_checkpoints(exp_dir).items() if n <= iterations}
    if resumable:
        start = max(resumable)
        model, _ = load_checkpoint(resumable[start], keep_precision=True)
        log(f"Resuming from {resumable[start].name} (iteration {start})")
    else:
        start = 0
        model = build_model()
        compile_model(model, learning_rate)
    history_path = exp_dir / "training_history.csv"
    history = _read_history(history_path, start)
    iteration = start
    updates_this_call = 0
    while iteration < iterations:
        if iteration % log_interval == 0:
            train_loss = mean_absolute_error(model, train_inputs, train_targets, batch_size, eval_max_batches, seed)
            test_loss = mean_absolute_error(model, test_inputs, test_targets, batch_size, eval_max_batches, seed)
            log(format_log_line(iteration, train_loss, test_loss))
            history.append({"iteration": iteration, "tr_loss": train_loss, "te_loss": test_loss})
            _write_history(history_path, history)
        indices = np.sort(batch_indices(iteration, len(train_inputs), batch_size, seed))
        model.train_on_batch(train_inputs[indices], train_targets[indices])
        iteration += 1
        updates_this_call += 1
        if iteration % save_interval == 0:
            save_checkpoint(model, scaler, checkpoint_path(exp_dir, iteration))
        if stop_after is not None and updates_this_call >= stop_after:
            break
    return model, history


def _write_history(path: Path, history: list) -> None:
    temporary = path.with_suffix(".partial")
    with temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["iteration", "tr_loss", "te_loss"])
        writer.writeheader()
        writer.writerows(history)
    temporary.replace(path)
