"""The XNNPACK partition reader on an instance norm: float runs whole in XNNPACK, int8 leaves RSQRT outside."""
import numpy as np

from benchmarks.graph_ops import delegate_partitions


def test_int8_instance_norm_leaves_rsqrt_outside_xnnpack(tmp_path):
    from common.tflite import export_tflite
    from common.tfkeras import keras, layers
    from reproductions.icse.fcn import InstanceNormalization

    inputs = keras.Input((None, 4), batch_size=1)
    hidden = layers.Conv1D(4, 3, padding="same")(inputs)
    model = keras.Model(inputs, InstanceNormalization()(hidden))
    data = [np.random.default_rng(seed).standard_normal((1, 800, 4)).astype(np.float32) for seed in range(4)]
    shape = [(1, 800, 4)]
    floating = delegate_partitions(export_tflite(model, tmp_path / "float.tflite", "float32", input_shapes=shape))
    assert floating["partitions"] == 1 and not floating["outside"] and floating["inside"]["CONV_2D:float32"] == 1
    quantized = delegate_partitions(export_tflite(model, tmp_path / "int8.tflite", "int8", input_shapes=shape,
                                                  representative_data=data, int8_io=False))
    assert quantized["outside"]["RSQRT:int8"] == 1 and quantized["partitions"] >= 2
    assert quantized["inside"]["CONV_2D:int8"] == 1
