"""CRN (reproductions/crn/crn.py): parameter counts, shapes, causality and the author's forward pass in numpy."""
import numpy as np
import pytest

from tests.reproductions.crn.helpers import TINY_CHANNELS, noisy_magnitude, tiny_crn


def trainable_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_paper_parameter_count_and_macs():
    from common.accounting import macs_per_second
    from reproductions.crn.crn import build_crn, crn_macs_per_frame
    from reproductions.crn.networks import pytorch_parameter_count

    model = build_crn()
    # docs/crn.md#model: Keras (one LSTM bias) 17,571,267; PyTorch (two) 17,579,459 = the paper's 17.58 M.
    assert trainable_count(model) == 17_571_267
    assert pytorch_parameter_count(model) == 17_579_459
    # encoder 1,589,760 + LSTM 16,777,216 + decoder 3,179,520 MACs per frame
    # (docs/crn.md#model: 1.59 M + 16.78 M + 3.18 M)
    assert crn_macs_per_frame() == 1_589_760 + 16_777_216 + 3_179_520
    tiny = build_crn(channels=TINY_CHANNELS)
    assert macs_per_second(tiny, [(1, 100, 161)]) == 100 * crn_macs_per_frame(channels=TINY_CHANNELS)


def test_frequency_sizes_and_shapes():
    from reproductions.crn.crn import build_crn, encoder_frequencies

    assert encoder_frequencies(161, 5) == [161, 80, 39, 19, 9, 4]
    model = build_crn(channels=TINY_CHANNELS)
    shapes = {layer.name: layer.output_shape for layer in model.layers}
    assert [shapes[f"encoder{k}_elu"][2] for k in range(1, 6)] == [80, 39, 19, 9, 4]
    assert [shapes[f"decoder{k}_batch_norm"][2] for k in range(5, 0, -1)] == [9, 19, 39, 80, 161]
    assert model.get_layer("lstm1").units == 4 * TINY_CHANNELS[-1]
    with pytest.raises(ValueError, match="5 stride-2 layers leave no frequency bins from 20"):
        build_crn(frequency_bins=20, channels=TINY_CHANNELS)


def test_causal_future_frames_do_not_change_the_past():
    model = tiny_crn()
    first = noisy_magnitude(24, seed=1)
    second = first.copy()
    second[12:] = noisy_magnitude(12, seed=2) * 3.0
    out_first = model(first[None], training=False).numpy()[0]
    out_second = model(second[None], training=False).numpy()[0]
    np.testing.assert_allclose(out_first[:12], out_second[:12], atol=1e-6)
    assert np.abs(out_first[12:] - out_second[12:]).max() > 1e-3


def test_decoder_frame_zero_is_exactly_zero_before_batch_norm():
    from common.tfkeras import keras

    model = tiny_crn()
    probe = keras.Model(model.input, [model.get_layer(f"decoder{k}_first_frame").output for k in range(5, 0, -1)])
    for output in probe(noisy_magnitude(6)[None], training=False):
        output = output.numpy()[0]
        assert np.all(output[0] == 0.0)  # F.pad of the author's decoder: no bias at frame 0
        assert np.abs(output[1:]).max() > 0.0


# ---------------------------------------------------------------- the author's forward pass (networks.py) in numpy
def _batch_norm(x, layer):
    gamma, beta, mean, variance = layer.get_weights()
    return (x - mean) / np.sqrt(variance + 1e-5) * gamma + beta  # PyTorch BatchNorm2d eps


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _conv(x, layer):
    """PyTorch Conv2d(k=(2,3), s=(1,2), padding=(1,0)) followed by [:, :, :-1, :] (drop the last frame)."""
    kernel, bias = layer.get_weights()  # (2, 3, in, out)
    frames, bins, _ = x.shape
    padded = np.concatenate([np.zeros((1,) + x.shape[1:]), x, np.zeros((1,) + x.shape[1:])])
    out_bins = (bins - 3) // 2 + 1
    out = np.zeros((frames + 1, out_bins, kernel.shape[-1]))
    for t in range(frames + 1):
        for f in range(out_bins):
            out[t, f] = np.tensordot(padded[t:t + 2, 2 * f:2 * f + 3], kernel, axes=3) + bias
    return out[:-1]


def _deconv(x, layer, output_padding):
    """PyTorch ConvTranspose2d(k=(2,3), s=(1,2), padding=(1,0), output_padding) then F.pad(time (1, 0))."""
    kernel, bias = layer.get_weights()  # (2, 3, out, in)
    frames, bins, _ = x.shape
    out_bins = (bins - 1) * 2 + 3 + output_padding
    full = np.zeros((frames + 1, out_bins, kernel.shape[2]))
    for t in range(frames):
        for f in range(bins):
            for i in range(2):
                for j in range(3):
                    full[t + i, 2 * f + j] += kernel[i, j] @ x[t, f]
    cropped = full[1:frames] + bias  # padding 1 in time removes the first and the last frame
    return np.concatenate([np.zeros((1,) + cropped.shape[1:]), cropped])


def _lstm(x, layer):
    kernel, recurrent, bias = layer.get_weights()
    units = recurrent.shape[0]
    h, c = np.zeros(units), np.zeros(units)
    out = []
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for frame in x:
        z = frame @ kernel + h @ recurrent + bias
        i, f, g, o = z[:units], z[units:2 * units], z[2 * units:3 * units], z[3 * units:]
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.array(out)


def test_matches_the_authors_forward_pass_in_numpy():
    model = tiny_crn(seed=3)
    magnitude = noisy_magnitude(7, seed=4)
    layer = model.get_layer
    x = magnitude.astype(np.float64)[:, :, None]
    encoder = []
    for k in range(1, 6):
        x = _elu(_batch_norm(_conv(x, layer(f"encoder{k}_conv")), layer(f"encoder{k}_batch_norm")))
        encoder.append(x)
    frames, bins, channels = x.shape
    z = x.reshape(frames, bins * channels)
    for k in (1, 2):
        z = _lstm(z, layer(f"lstm{k}"))
    x = np.concatenate([z.reshape(frames, bins, channels), encoder[4]], axis=-1)
    for k in range(5, 0, -1):
        x = _batch_norm(_deconv(x, layer(f"decoder{k}_deconv"), 1 if k == 2 else 0), layer(f"decoder{k}_batch_norm"))
        if k > 1:
            x = _elu(np.concatenate([x, encoder[k - 2]], axis=-1))  # skip after BN, before ELU
    expected = np.log1p(np.exp(x[:, :, 0]))
    actual = model(magnitude[None], training=False).numpy()[0]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_stable_softplus_equals_softplus_without_overflow():
    from reproductions.crn.crn import StableSoftplus

    x = np.linspace(-120.0, 200.0, 641).astype(np.float32)
    actual = StableSoftplus()(x[None]).numpy()[0]
    assert np.all(np.isfinite(actual))
    np.testing.assert_allclose(actual, np.logaddexp(0.0, x.astype(np.float64)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("channels", [TINY_CHANNELS, (2, 3, 4, 4, 32)])  # LSTM width 16 and 128: both kernels
def test_fused_lstm_crn_has_the_same_weights_and_outputs(channels):
    """build_crn(fused_lstm=True) has the Keras CRN's weight names and shapes and computes the same output."""
    from common import recurrent
    from common.tfkeras import keras, tf
    from reproductions.crn.crn import build_crn

    plain = build_crn(channels=channels, name="crn")
    fused = build_crn(channels=channels, name="crn", fused_lstm=True)
    assert [(w.name, w.shape) for w in fused.weights] == [(w.name, w.shape) for w in plain.weights]
    assert isinstance(fused.get_layer("lstm1"), recurrent.LSTM)
    assert type(plain.get_layer("lstm1")) is keras.layers.LSTM
    fused.set_weights(plain.get_weights())
    magnitude = tf.constant(noisy_magnitude(20, seed=3)[None])
    gradients = []
    for model in (plain, fused):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(magnitude, training=True)))
        gradients.append([g.numpy() for g in tape.gradient(loss, model.trainable_weights)])
        np.testing.assert_allclose(model(magnitude, training=False).numpy(),
                                   plain(magnitude, training=False).numpy(), rtol=1e-5, atol=1e-5)
    # Training-mode batch norm sums gradients that nearly cancel, so the tolerance is relative to the largest one.
    scale = max(np.abs(expected).max() for expected in gradients[0])
    for weight, expected, actual in zip(plain.trainable_weights, *gradients):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale, err_msg=weight.name)


def test_paper_yaml_builds_the_paper_counts():
    from pathlib import Path

    from common.config import load_config
    from reproductions.crn.networks import build_model
    from reproductions.crn.recipe import Recipe

    config = load_config("paper", Path(__file__).resolve().parents[3] / "reproductions" / "crn",
                         sections=Recipe.config_sections)
    assert trainable_count(build_model(config, "crn")) == 17_571_267
    # 4 (161 * 1024 + 1024^2 + 1024) + 3 * 4 (2 * 1024^2 + 1024) + 1024 * 161 + 161 (docs/crn.md#baselines)
    assert trainable_count(build_model(config, "lstm2")) == 30_200_993


def test_model_and_baseline_section_errors_name_the_key():
    from reproductions.crn import crn, lstm_baseline

    section = {"frequency_bins": 17, "channels": [2, 2], "lstm_layers": 1}
    with pytest.raises(ValueError) as error:
        crn.build_from_config(dict(section, units=8), source="conf/mini.yaml")
    assert str(error.value) == ("conf/mini.yaml: unknown key model.units; model accepts: frequency_bins, channels, "
                                "lstm_layers")
    with pytest.raises(ValueError, match=r"^missing key model.lstm_layers; model requires: frequency_bins, "):
        crn.build_from_config({"frequency_bins": 17, "channels": [2, 2]})
    with pytest.raises(ValueError) as error:
        lstm_baseline.build_from_config({"units": 4}, 17, source="conf/mini.yaml")
    assert str(error.value) == "conf/mini.yaml: missing key baseline.lstm_layers; baseline requires: units, lstm_layers"
    model = lstm_baseline.build_from_config({"units": 4, "lstm_layers": 2}, 17)
    assert trainable_count(model) == 4 * (17 * 4 + 4 * 4 + 4) + 4 * (2 * 4 * 4 + 4) + 4 * 17 + 17
