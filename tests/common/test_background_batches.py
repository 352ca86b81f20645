"""The overlapped data path: BackgroundBatches gives the serial batches, in order, for a given seed."""
import numpy as np
import pytest

from common.tfkeras import keras
from common.training import BackgroundBatches


class DrawnBatches(keras.utils.Sequence):
    """A fresh seeded draw per epoch, like the recipes' mixtures; records the order of its reads."""

    def __init__(self, seed, batches=5):
        super().__init__()
        self.seed, self.batches, self.epoch, self.reads = seed, batches, 0, []

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        self.reads.append((self.epoch, index))
        random = np.random.default_rng([self.seed, self.epoch, index])
        return random.standard_normal((2, 3)).astype(np.float32), random.standard_normal((2, 1)).astype(np.float32)

    def on_epoch_end(self):
        self.epoch += 1


def two_epochs(sequence):
    batches = []
    for _ in range(2):
        batches += [sequence[index] for index in range(len(sequence))]
        sequence.on_epoch_end()
    return batches


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_background_batches_equal_the_serial_ones_and_follow_the_seed():
    serial = two_epochs(DrawnBatches(seed=3))
    background = BackgroundBatches(DrawnBatches(seed=3), depth=2)
    assert_same_batches(two_epochs(background), serial)
    background.close()
    # Every batch was drawn once, in order, and the next epoch's draw came after the last batch of the previous.
    assert background.sequence.reads == [(epoch, index) for epoch in range(2) for index in range(5)]
    other = BackgroundBatches(DrawnBatches(seed=4))
    assert not np.array_equal(two_epochs(other)[0][0], serial[0][0])
    other.close()


def test_fit_through_background_batches_gives_the_serial_weights():
    def train(wrap):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
        model.compile(keras.optimizers.SGD(0.1), "mse")
        sequence = DrawnBatches(seed=1)
        model.fit(BackgroundBatches(sequence) if wrap else sequence, epochs=3, shuffle=False, verbose=0)
        return model.get_weights(), sequence.epoch

    serial_weights, serial_epochs = train(False)
    background_weights, background_epochs = train(True)
    assert background_epochs == serial_epochs == 3
    for serial, background in zip(serial_weights, background_weights):
        np.testing.assert_array_equal(serial, background)


def test_bad_depth_and_index_are_refused():
    with pytest.raises(ValueError, match="depth"):
        BackgroundBatches(DrawnBatches(seed=0), depth=0)
    with pytest.raises(IndexError):
        BackgroundBatches(DrawnBatches(seed=0))[5]


def test_icse_mixtures_through_the_data_path_follow_the_seed(mini_corpus):
    from reproductions.icse.data import make_sequence_class

    config = {"data": {"seed": 0, "train_snrs": [-6, 0, 6]}}

    def epochs(seed):
        sequence = BackgroundBatches(make_sequence_class()(mini_corpus, {"data": dict(config["data"], seed=seed)}, "train", 3))
        try:
            return two_epochs(sequence)
        finally:
            sequence.close()

    first, again, other = epochs(0), epochs(0), epochs(1)
    assert_same_batches(first, again)
    assert not all(x1.shape == x2.shape and np.array_equal(x1, x2) for (x1, _), (x2, _) in zip(first, other))
    serial = two_epochs(make_sequence_class()(mini_corpus, config, "train", 3))
    assert_same_batches(first, serial)
