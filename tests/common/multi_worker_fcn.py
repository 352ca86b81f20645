"""A few SGD steps of a small FCN under ``common.training.select_strategy``; run as a script by test_multi_worker.

``python tests/common/multi_worker_fcn.py OUTPUT.npz``: with ``TF_CONFIG`` naming several workers this is one
worker of a MultiWorkerMirroredStrategy run (the chief, index 0, writes the weights); without it, one process.
The data are 4 steps of a global batch of 2 fixed examples, so both runs see the same global batches.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from common.tfkeras import keras, tf  # noqa: E402
from common.training import select_strategy  # noqa: E402
from reproductions.icse.fcn import build_fcn  # noqa: E402

GLOBAL_BATCH = 2
STEPS = 4


def main(output):
    strategy = select_strategy("auto")
    random = np.random.RandomState(0)
    noisy = random.uniform(-0.5, 0.5, (GLOBAL_BATCH * STEPS, 240, 1)).astype(np.float32)
    clean = (0.5 * noisy + 0.05 * random.standard_normal(noisy.shape)).astype(np.float32)
    with strategy.scope():
        model = build_fcn(filters=4, kernel_size=5, hidden_layers=2, seed=0)
        model.compile(keras.optimizers.SGD(0.05), loss="mse")
    dataset = tf.data.Dataset.from_tensor_slices((noisy, clean)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    # Every global batch is split example by example across the workers, as the one-worker run takes it whole.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    model.fit(dataset.with_options(options), epochs=1, verbose=0, shuffle=False)
    if strategy.cluster_resolver is None or strategy.cluster_resolver.task_id == 0:
        np.savez(output, *model.get_weights())
    print(f"{type(strategy).__name__}: {strategy.num_replicas_in_sync} replicas, {STEPS} steps")


if __name__ == "__main__":
    main(sys.argv[1])
