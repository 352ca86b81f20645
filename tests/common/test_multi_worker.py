"""Two local MultiWorkerMirroredStrategy workers train a small FCN to the weights of one process."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parent / "multi_worker_fcn.py"
TIMEOUT_S = 240


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("127.0.0.1", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def environment(tf_config=None):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def weights(path):
    with np.load(path) as arrays:
        return [arrays[f"arr_{index}"] for index in range(len(arrays.files))]


def test_two_workers_give_the_weights_of_one_with_the_same_global_batch(tmp_path):
    single = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "single.npz")], env=environment(),
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert single.returncode == 0, single.stderr[-3000:]
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = [
        subprocess.Popen([sys.executable, str(SCRIPT), str(tmp_path / f"worker{index}.npz")],
                         env=environment({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for index in range(2)
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT_S))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
        assert "CollectiveAllReduceStrategy: 2 replicas" in stdout  # MultiWorkerMirroredStrategy
    one, two = weights(tmp_path / "single.npz"), weights(tmp_path / "worker0.npz")
    assert len(one) == len(two)
    initial = weights_before(tmp_path)
    assert any(not np.allclose(before, after) for before, after in zip(initial, one))
    for expected, actual in zip(one, two):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-6)


def weights_before(tmp_path):
    """The FCN's initial weights (same seed as the script), to show that the steps changed them."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import numpy as np; "
            "from reproductions.icse.fcn import build_fcn; "
            "np.savez(sys.argv[2], *build_fcn(filters=4, kernel_size=5, hidden_layers=2, seed=0).get_weights())")
    subprocess.run([sys.executable, "-c", code, str(SCRIPT.parents[2]), str(tmp_path / "initial.npz")],
                   env=environment(), check=True, capture_output=True, timeout=TIMEOUT_S)
    return weights(tmp_path / "initial.npz")
