"""The fixed-length .tflite enhancer on inputs of any length (reproductions/tfgridnet/inference.py)."""
import numpy as np


def test_tflite_enhancer_runs_any_length_through_the_fixed_export_length(tmp_path):
    """The waveform .tflite takes one length: shorter input is padded and cut, longer input runs in windows whose
    discarded context covers the receptive field, so the output is the whole-signal output."""
    from common.tflite import export_tflite
    from common.tfkeras import keras
    from reproductions.tfgridnet.inference import tflite_enhancer

    keras.utils.set_random_seed(2)
    first = keras.layers.Conv1D(4, 9, padding="same", activation="tanh")
    second = keras.layers.Conv1D(1, 9, padding="same")

    def network(length):
        inputs = keras.Input((length,), batch_size=1 if length else None)
        hidden = keras.layers.Reshape((-1, 1))(inputs)
        return keras.Model(inputs, keras.layers.Reshape((-1,))(second(first(hidden))))

    exported_length = 4000
    path = export_tflite(network(exported_length), tmp_path / "fixed.tflite", mode="float32",
                         input_shapes=[(1, exported_length)])
    free = network(None)
    enhance = tflite_enhancer(path)
    rng = np.random.default_rng(1)
    for length in (1500, exported_length, 10_001):
        signal = (0.1 * rng.standard_normal(length)).astype(np.float32)
        expected = free(signal[None], training=False).numpy()[0]
        if length < exported_length:  # zero padding reaches the last 8 samples through the receptive field
            expected = free(np.pad(signal, (0, exported_length - length))[None]).numpy()[0, :length]
        output = enhance(signal)
        assert output.shape == (length,)
        np.testing.assert_allclose(output, expected, atol=2e-5)
