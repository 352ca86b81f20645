"""Parameter counts, MACs per second, RTF measurement."""

import numpy as np
import pytest

from common import accounting
from common.tfkeras import keras, layers


class _Mixer(layers.Layer):
    """A custom layer reporting its own MACs."""

    def call(self, inputs):
        return inputs * 2.0

    def compute_macs(self, input_shape, output_shape):
        return int(np.prod(output_shape[1:]))


def test_macs_per_layer_formulas():
    inputs = keras.Input((None, 4))
    x = layers.Conv1D(6, 5, padding="same", name="conv")(inputs)                     # T*6*5*4
    x = layers.Conv1DTranspose(3, 4, strides=2, padding="same", name="deconv")(x)   # T*6*4*3
    x = layers.Conv1D(4, 3, strides=2, padding="same", name="down")(x)              # T*4*3*3
    x = layers.LSTM(5, return_sequences=True, name="lstm")(x)                       # T*4*(4*5+5*5)
    x = layers.Bidirectional(layers.GRU(3, return_sequences=True), name="bigru")(x)  # 2*T*3*(5*3+3*3)
    x = layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    x = _Mixer(name="mixer")(x)
    outputs = layers.Dense(2, name="dense")(x)                                      # T*6*2
    model = keras.Model(inputs, outputs)
    steps = 10
    rows = {row["layer"]: row["macs"] for row in accounting.macs_breakdown(model, (1, steps, 4))}
    assert rows["conv"] == steps * 6 * 5 * 4
    assert rows["deconv"] == steps * 6 * 4 * 3
    assert rows["down"] == steps * 4 * 3 * 3
    assert rows["lstm"] == steps * 4 * (4 * 5 + 5 * 5)
    assert rows["bigru"] == 2 * steps * 3 * (5 * 3 + 3 * 3)
    projections = 3 * steps * 6 * 2 * 4 + steps * 2 * 4 * 6
    assert rows["mha"] == projections + 2 * (2 * steps * steps * 4)
    assert rows["mixer"] == steps * 6
    assert rows["dense"] == steps * 6 * 2
    total = sum(rows.values())
    assert accounting.macs_per_second(model, [np.zeros((1, steps, 4))], audio_seconds=0.5) == 2 * total


def test_counts_sizes_and_rtf(tmp_path, capsys):
    from common.tflite import export_tflite

    inputs = keras.Input((16,))
    model = keras.Model(inputs, layers.Dense(64, name="sparse")(layers.Dense(64, name="first")(inputs)))
    kernel = model.get_layer("sparse").kernel
    kernel.assign(np.where(np.arange(64 * 64).reshape(64, 64) % 4 == 0, kernel.numpy(), 0.0))
    assert accounting.count_parameters(model) == 16 * 64 + 64 + 64 * 64 + 64
    nonzero = accounting.count_nonzero(model)
    assert nonzero == np.count_nonzero(model.layers[1].kernel.numpy()) + 64 * 64 // 4
    path = export_tflite(model, tmp_path / "m.tflite", "float32")
    report = accounting.size_report(model, path)
    assert report["float32_bytes"] == 4 * report["parameters"]
    assert report["tflite_bytes"] > report["float32_bytes"] > report["tflite_gzip_bytes"]
    result = accounting.measure_rtf(path, [np.ones((1, 16), np.float32)], audio_seconds=0.1, threads=1, repeats=5)
    assert 0 < result["min_s"] <= result["median_s"] <= result["max_s"]
    assert result["rtf"] == pytest.approx(result["median_s"] / 0.1)
    assert accounting.main(["benchmark", str(path), "--seconds", "0.1", "--threads", "1", "--repeats", "3"]) == 0
    assert "RTF" in capsys.readouterr().out
