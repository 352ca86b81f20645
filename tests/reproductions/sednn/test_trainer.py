"""sednn's iteration loop: log line, checkpoint schedule, resume after a kill (reproductions/sednn/trainer.py)."""
import csv
import re

import numpy as np
import pytest

from common.tfkeras import keras
from reproductions.sednn.dnn import build_sednn_dnn
from reproductions.sednn.scaler import Scaler
from reproductions.sednn.trainer import (
    batch_indices,
    format_log_line,
    list_checkpoints,
    load_checkpoint,
    train_iterations,
)

LOG_LINE = re.compile(r"^Iteration: (\d+), tr_loss: (\d+\.\d{6}), te_loss: (\d+\.\d{6})$")


def test_log_line_is_sednns_format():
    # main_dnn.py: print("Iteration: %d, tr_loss: %f, te_loss: %f" % (iter, tr_loss, te_loss))
    assert format_log_line(1000, 0.4213, 0.663) == "Iteration: 1000, tr_loss: 0.421300, te_loss: 0.663000"


def test_batches_follow_sednns_generator():
    # 7 samples, batch 3: each epoch is a permutation cut into [3, 3, 1] (the last batch shorter), then reshuffled.
    epochs = [np.concatenate([batch_indices(epoch * 3 + position, 7, 3, seed=5) for position in range(3)])
              for epoch in range(2)]
    assert [len(batch_indices(i, 7, 3, seed=5)) for i in range(6)] == [3, 3, 1, 3, 3, 1]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(7))
    np.testing.assert_array_equal(epochs[0], np.random.RandomState(5).permutation(7))
    np.testing.assert_array_equal(epochs[1], np.random.RandomState(6).permutation(7))


def _data(seed=0):
    rng = np.random.default_rng(seed)
    train_x = rng.normal(size=(120, 7, 257)).astype(np.float32)
    weights = rng.normal(scale=0.05, size=(7 * 257, 257)).astype(np.float32)
    train_y = train_x.reshape(120, -1) @ weights
    test_x = rng.normal(size=(40, 7, 257)).astype(np.float32)
    return train_x, train_y, test_x, test_x.reshape(40, -1) @ weights


def _train(exp_dir, lines, stop_after=None):
    train_x, train_y, test_x, test_y = _data()
    scaler = Scaler(mean=np.zeros(257, np.float32), scale=np.ones(257, np.float32))

    def build():
        keras.utils.set_random_seed(0)  # both runs start from the same initial weights
        return build_sednn_dnn(hidden_units=16, dropout=0.0)

    return train_iterations(
        build, scaler, train_x, train_y, test_x, test_y, exp_dir,
        iterations=21, batch_size=50, learning_rate=1e-3, log_interval=5, save_interval=10, eval_max_batches=100,
        seed=0, log=lines.append, stop_after=stop_after)


def test_logs_every_interval_and_saves_at_multiples(tmp_path):
    lines = []
    model, history = _train(tmp_path / "run", lines)
    log_lines = [line for line in lines if LOG_LINE.match(line)]
    # As sednn (iterations 10001, log 1000, save 5000): logged at 0, 5, ..., 20; saved at 10 and 20.
    assert [int(LOG_LINE.match(line).group(1)) for line in log_lines] == [0, 5, 10, 15, 20]
    assert sorted(list_checkpoints(tmp_path / "run")) == [10, 20]
    assert model.optimizer.iterations.numpy() == 21
    losses = [float(LOG_LINE.match(line).group(2)) for line in log_lines]
    assert losses[-1] < losses[0]  # it learns the linear map
    with open(tmp_path / "run" / "training_history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["iteration"]) for row in rows] == [0, 5, 10, 15, 20]
    np.testing.assert_allclose([float(row["tr_loss"]) for row in rows], [row["tr_loss"] for row in history])
    restored, scaler = load_checkpoint(tmp_path / "run" / "md_20iters.h5")
    assert restored.optimizer.iterations.numpy() == 20
    np.testing.assert_array_equal(scaler.scale, np.ones(257, np.float32))


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    uninterrupted, _ = _train(tmp_path / "whole", [])
    first_lines, second_lines = [], []
    _train(tmp_path / "killed", first_lines, stop_after=13)  # killed after iteration 13: md_10iters.h5 only
    assert sorted(list_checkpoints(tmp_path / "killed")) == [10]
    resumed, history = _train(tmp_path / "killed", second_lines)
    assert second_lines[0] == "Resuming from md_10iters.h5 (iteration 10)"
    assert [int(LOG_LINE.match(line).group(1)) for line in second_lines[1:]] == [10, 15, 20]
    assert [row["iteration"] for row in history] == [0, 5, 10, 15, 20]
    assert resumed.optimizer.iterations.numpy() == 21
    for expected, actual in zip(uninterrupted.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-6)


def test_empty_features_are_refused(tmp_path):
    scaler = Scaler(mean=np.zeros(257, np.float32), scale=np.ones(257, np.float32))
    empty = np.zeros((0, 7, 257), np.float32)
    with pytest.raises(ValueError, match="empty"):
        train_iterations(build_sednn_dnn, scaler, empty, np.zeros((0, 257)), empty, np.zeros((0, 257)), tmp_path)


def test_checkpoint_trained_under_bf16_loads_as_the_float32_model(tmp_path):
    from common.training import training_precision

    lines = []
    with training_precision("bfloat16", log=lines.append):
        mixed, _ = _train(tmp_path / "run", lines)
    assert mixed.get_layer("dense_1").compute_dtype == "bfloat16"
    assert mixed.output.dtype == "float32"  # the output layer is pinned
    path = tmp_path / "run" / "md_20iters.h5"
    model, _ = load_checkpoint(path)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    resumable, _ = load_checkpoint(path, keep_precision=True)
    assert resumable.get_layer("dense_1").dtype_policy.name == "mixed_bfloat16"
    assert resumable.optimizer.iterations.numpy() == 20
    for saved, loaded in zip(resumable.get_weights(), model.get_weights()):
        assert loaded.dtype == np.float32
        np.testing.assert_array_equal(saved, loaded)
    inputs = _data()[2][:8]
    float_output, mixed_output = model(inputs).numpy(), resumable(inputs).numpy()
    # bf16 keeps 8 bits of mantissa; the float32 model computes the same function to that precision.
    scale = np.abs(float_output).max()
    np.testing.assert_allclose(mixed_output, float_output, atol=0.03 * scale)
    assert not np.array_equal(mixed_output, float_output)
