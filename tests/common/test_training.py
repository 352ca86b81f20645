"""Resumable training, schedules and device strategies (each run in a subprocess where state must be fresh)."""
import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from common.tfkeras import keras
from common.training import ResumableTraining, StepDecay, paper_callbacks, select_strategy, set_seed

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

TRAIN_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from common.tfkeras import keras
    from common.training import ResumableTraining, paper_callbacks, set_seed

    exp_dir, kill_at = sys.argv[1], int(sys.argv[2])
    set_seed(0)
    inputs = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    targets = inputs @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.05), "mse")

    class KillAt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    training = ResumableTraining(model, exp_dir)
    print("initial_epoch", training.initial_epoch, flush=True)
    training.fit(inputs, epochs=6, batch_size=16, validation_data=(inputs, targets), shuffle=False,
                 callbacks=paper_callbacks(early_stop_patience=50, halve_lr_patience=50) + [KillAt()], y=targets)
    print("final_weights", model.get_weights()[0].ravel().tolist(), flush=True)
""")


def run_training(exp_dir, kill_at):
    return subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, str(exp_dir), str(kill_at)],
                          cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=300)


def final_weights(run):
    return np.array(json.loads(run.stdout.split("final_weights")[1].strip().replace("'", '"')))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The final weights of the 6 epochs run without a kill."""
    run = run_training(tmp_path_factory.mktemp("uninterrupted") / "whole", kill_at=-1)
    assert run.returncode == 0, run.stderr[-2000:]
    return final_weights(run)


def test_killed_training_resumes_from_last_epoch(tmp_path, uninterrupted):
    killed = run_training(tmp_path / "killed", kill_at=3)
    assert killed.returncode == -9, killed.stderr[-2000:]
    state = json.loads((tmp_path / "killed" / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 3
    assert set(state["callbacks"]) == {"EarlyStopping", "ReduceLROnPlateau"}

    resumed = run_training(tmp_path / "killed", kill_at=-1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "initial_epoch 3" in resumed.stdout
    epochs = [int(row["epoch"]) for row in csv.DictReader(open(tmp_path / "killed" / "training_log.csv"))]
    assert epochs == [0, 1, 2, 3, 4, 5]

    # Model and optimizer state are restored, so the resumed run ends where an uninterrupted one does.
    np.testing.assert_allclose(final_weights(resumed), uninterrupted, rtol=1e-5, atol=1e-6)
    assert (tmp_path / "killed" / "best.weights.h5").exists()
    assert any((tmp_path / "killed" / "tensorboard").rglob("events.out.tfevents.*"))


def test_truncated_last_checkpoint_falls_back_to_the_previous_one(tmp_path, uninterrupted):
    assert run_training(tmp_path / "run", kill_at=3).returncode == -9
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(path.name for path in checkpoints.glob("*.index")) == ["ckpt-2.index", "ckpt-3.index"]
    data = checkpoints / "ckpt-3.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])

    resumed = run_training(tmp_path / "run", kill_at=-1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "initial_epoch 2" in resumed.stdout
    notes = [line for line in resumed.stderr.splitlines() if "newest readable checkpoint" in line]
    assert len(notes) == 1
    assert f"{checkpoints / 'ckpt-3'} is unreadable" in notes[0] and f"{checkpoints / 'ckpt-2'} (epoch 2)" in notes[0]
    epochs = [int(row["epoch"]) for row in csv.DictReader(open(tmp_path / "run" / "training_log.csv"))]
    assert epochs == [0, 1, 2, 2, 3, 4, 5]
    # Epoch 2's model, optimizer and callback state are restored: the run ends where an uninterrupted one does.
    np.testing.assert_allclose(final_weights(resumed), uninterrupted, rtol=1e-5, atol=1e-6)


def test_fall_back_keeps_the_best_epoch_and_no_readable_checkpoint_is_an_error_naming_the_folder(tmp_path):
    set_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.1), "mse")
    data = (np.ones((4, 2)), np.ones((4, 1)))
    ResumableTraining(model, tmp_path).fit(data[0], y=data[1], validation_data=data, epochs=3, verbose=0)
    checkpoints = tmp_path / "checkpoints"
    assert json.loads((checkpoints / "state.json").read_text())["best_epoch"] == 3
    (checkpoints / "ckpt-3.data-00000-of-00001").write_bytes(b"")
    resumed = ResumableTraining(model, tmp_path)
    assert resumed.initial_epoch == 2
    # Epoch 3's weights are still in best.weights.h5, so the best stays epoch 3 although its checkpoint is lost.
    assert resumed.state["best_epoch"] == 3
    (checkpoints / "ckpt-2.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(ValueError, match=f"no checkpoint in {checkpoints} is readable .*ckpt-3 is "
                                         f"unreadable.*ckpt-2 is unreadable.* experiment folder {tmp_path} is damaged"):
        ResumableTraining(model, tmp_path)


def test_finished_run_is_not_retrained(tmp_path):
    assert run_training(tmp_path / "run", kill_at=-1).returncode == 0
    again = run_training(tmp_path / "run", kill_at=-1)
    assert "all 6 epochs already trained" in again.stdout


def test_step_decay_matches_formula():
    schedule = StepDecay(2e-4, 0.98, 2)
    assert [schedule.learning_rate(epoch) for epoch in range(5)] == pytest.approx(
        [2e-4, 2e-4, 2e-4 * 0.98, 2e-4 * 0.98, 2e-4 * 0.98 ** 2])
    with pytest.raises(ValueError):
        StepDecay(1e-3, 0.5, 0)


def test_step_decay_sets_optimizer_rate():
    set_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1.0), "mse")
    history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=3, verbose=0, callbacks=[StepDecay(0.1, 0.5, 1)])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])


def test_damaged_experiment_folder_is_reported(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "state.json").write_text('{"epoch": 4}')
    with pytest.raises(ValueError, match="ckpt-4 is missing"):
        ResumableTraining(model, tmp_path)


def test_default_strategy_on_one_device():
    assert select_strategy().num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="unknown strategy"):
        select_strategy("tpu")


def test_mirrored_strategy_on_two_logical_cpus():
    code = textwrap.dedent("""
        import numpy as np
        from common.tfkeras import tf, keras
        from common.training import select_strategy
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = select_strategy(devices=["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
            model.compile(keras.optimizers.SGD(0.1), "mse")
        inputs = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        history = model.fit(inputs, inputs.sum(1, keepdims=True), batch_size=16, epochs=5, verbose=0)
        print(type(strategy).__name__, strategy.num_replicas_in_sync, history.history["loss"][0] > history.history["loss"][-1])
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY_ROOT, capture_output=True, text=True,
                            timeout=300, env={key: value for key, value in os.environ.items() if key != "TF_CONFIG"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["MirroredStrategy", "2", "True"]


def test_load_trained_names_a_missing_file_before_building_and_loads_saved_weights(tmp_path):
    from common.training import load_trained

    built = []

    def build():
        built.append(True)
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    with pytest.raises(FileNotFoundError, match=rf"^{tmp_path / 'absent.weights.h5'}: no trained model; run 'train' first$"):
        load_trained(build, tmp_path / "absent.weights.h5", "run 'train' first")
    assert built == []
    source = build()
    source.layers[0].set_weights([np.arange(6, dtype=np.float32).reshape(3, 2), np.array([1, -1], np.float32)])
    source.save_weights(str(tmp_path / "model.weights.h5"))
    loaded = load_trained(build, tmp_path / "model.weights.h5", "run 'train' first")
    np.testing.assert_array_equal(loaded.predict(np.ones((1, 3), np.float32), verbose=0), [[7.0, 8.0]])
