"""TF-GridNet model: exact parameter counts, torch-equivalent STFT/iSTFT, layer maths against numpy, output shapes."""
from pathlib import Path

import numpy as np
import pytest

from reproductions.tfgridnet.features import tfgridnet_istft, tfgridnet_stft
from common.tfkeras import keras, tf
from reproductions.tfgridnet.tfgridnet import (
    ComplexPhaseEncoder,
    FoldSequences,
    FullUtteranceAttention,
    ScaleWaveform,
    TorchIstft,
    TorchStft,
    UnfoldSequences,
    WaveformDeviation,
    build_from_config,
    build_tfgridnet,
    phase_encoder_biases,
)

TINY = dict(embedding_dim=4, hidden_units=4, num_heads=2, approx_qk_dim=255)


@pytest.mark.parametrize("samples", [16000, 4097, 1024])
def test_stft_matches_torch_convention_numpy(samples):
    signal = np.random.default_rng(samples).standard_normal(samples).astype(np.float32)
    ours = TorchStft(512, 256)(signal[None]).numpy()[0]
    reference = tfgridnet_stft(signal, dtype=np.complex128)
    assert ours.shape == (1 + samples // 256, 257, 2)
    scale = np.abs(reference).max()
    np.testing.assert_allclose(ours[..., 0], reference.real, atol=2e-5 * scale)
    np.testing.assert_allclose(ours[..., 1], reference.imag, atol=2e-5 * scale)


@pytest.mark.parametrize("samples", [16000, 4097])
def test_istft_matches_numpy_and_pads_with_zeros(samples):
    rng = np.random.default_rng(1)
    frames = 1 + samples // 256
    spectrum = rng.standard_normal((frames, 257)) + 1j * rng.standard_normal((frames, 257))
    stacked = np.stack([spectrum.real, spectrum.imag], -1)[None].astype(np.float32)
    ours = TorchIstft(512, 256)([stacked, np.zeros((1, samples), np.float32)]).numpy()[0]
    # upstream calls torch.istft without length (hop * (frames - 1) samples) and zero-pads to the input length
    reference = tfgridnet_istft(spectrum)
    assert ours.shape == (samples,)
    np.testing.assert_allclose(ours[: reference.size], reference, atol=1e-4)
    assert np.all(ours[reference.size:] == 0)


def test_stft_istft_reconstructs_the_signal():
    signal = np.random.default_rng(2).standard_normal((2, 16384)).astype(np.float32)
    spectrum = TorchStft(512, 256)(signal)
    rebuilt = TorchIstft(512, 256)([spectrum, signal]).numpy()
    np.testing.assert_allclose(rebuilt, signal, atol=1e-4)


def test_phase_encoder_is_a_complex_convolution_with_root_magnitude():
    rng = np.random.default_rng(3)
    spectrum = rng.standard_normal((1, 6, 5, 2)).astype(np.float32)
    layer = ComplexPhaseEncoder(4, (3, 1))
    out = layer(spectrum).numpy()[0]
    real_kernel, real_bias = [w.numpy() for w in layer.real_convolution.weights]
    imag_kernel, imag_bias = [w.numpy() for w in layer.imaginary_convolution.weights]
    complex_input = np.pad(spectrum[0, ..., 0] + 1j * spectrum[0, ..., 1], ((1, 1), (0, 0)))
    expected = np.zeros((6, 5, 4))
    for channel in range(4):
        kernel = real_kernel[:, 0, 0, channel] + 1j * imag_kernel[:, 0, 0, channel]
        for frame in range(6):
            # complex product (W_r + j W_i)(Y_r + j Y_i); the biases enter as b_r - b_i and b_r + b_i
            value = np.sum(kernel[:, None] * complex_input[frame:frame + 3], axis=0)
            value += (real_bias[channel] - imag_bias[channel]) + 1j * (real_bias[channel] + imag_bias[channel])
            expected[frame, :, channel] = np.abs(value) ** 0.5
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_phase_encoder_biases_have_the_set_modulus_and_distinct_angles():
    real, imaginary = phase_encoder_biases(4, 50.0)
    # the layer's complex bias is (b_real - b_imaginary) + j (b_real + b_imaginary)
    complex_bias = (real - imaginary) + 1j * (real + imaginary)
    np.testing.assert_allclose(np.abs(complex_bias), 50.0, rtol=1e-6)
    np.testing.assert_allclose(np.angle(complex_bias) % (2 * np.pi), 2 * np.pi * (np.arange(4) + 0.5) / 4, rtol=1e-6)
    layer = ComplexPhaseEncoder(4, (3, 1), 50.0)
    layer.build((None, None, 5, 2))
    np.testing.assert_allclose(layer.real_convolution.bias.numpy(), real)
    np.testing.assert_allclose(layer.imaginary_convolution.bias.numpy(), imaginary)
    with pytest.raises(ValueError, match="phase_bias_magnitude must be >= 0"):
        ComplexPhaseEncoder(4, (3, 1), -1.0)


def test_large_phase_encoder_biases_pass_the_input_phase():
    # |W Y|^0.5 is the same for Y and -Y (a rotation by pi): zero biases hide the sign of the spectrum, large
    # biases make the output follow Re(conj(b) W Y), which changes sign with Y.
    spectrum = np.random.default_rng(4).standard_normal((1, 6, 5, 2)).astype(np.float32)
    blind = ComplexPhaseEncoder(4, (3, 1))
    np.testing.assert_allclose(blind(spectrum).numpy(), blind(-spectrum).numpy(), rtol=1e-5)
    seeing = ComplexPhaseEncoder(4, (3, 1), 50.0)
    seeing.build(spectrum.shape)
    seeing.real_convolution.kernel.assign(blind.real_convolution.kernel)
    seeing.imaginary_convolution.kernel.assign(blind.imaginary_convolution.kernel)
    plus, minus = seeing(spectrum).numpy(), seeing(-spectrum).numpy()
    linear = (plus - minus) / 2.0
    # first order: |b + z|^0.5 - |b - z|^0.5 ~ Re(conj(b) z) / |b|^1.5, z = W * Y
    assert np.max(np.abs(linear)) > 1e-2
    assert np.corrcoef(linear.ravel(), (plus - np.sqrt(50.0)).ravel())[0, 1] > 0.99


def paper_model_section(**changes):
    """paper.yaml's model section with ``changes`` (TINY's sizes keep the builds fast)."""
    from common.config import load_config

    recipe_dir = Path(__file__).resolve().parents[3] / "reproductions" / "tfgridnet"
    return dict(load_config("paper", recipe_dir)["model"], **changes)


def test_the_paper_configuration_keeps_zero_phase_encoder_biases():
    model = build_from_config(paper_model_section(**TINY, num_blocks=1))
    encoder = model.get_layer("phase_encoder")
    assert not np.any(encoder.real_convolution.bias.numpy()) and not np.any(encoder.imaginary_convolution.bias.numpy())
    biased = build_from_config(paper_model_section(**TINY, num_blocks=1, phase_bias_magnitude=50.0))
    biased = biased.get_layer("phase_encoder")
    np.testing.assert_allclose(biased.real_convolution.bias.numpy(), phase_encoder_biases(4, 50.0)[0])


@pytest.mark.parametrize("axis,stride", [("frequency", 1), ("time", 1), ("frequency", 2), ("time", 3)])
def test_unfold_matches_torch_unfold_order_and_fold_restores(axis, stride):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 9, 3)).astype(np.float32)
    kernel = 4
    windows = UnfoldSequences(axis, kernel, stride)(x).numpy()
    sequences = x if axis == "frequency" else x.transpose(0, 2, 1, 3)
    sequences = sequences.reshape(-1, sequences.shape[2], 3)
    length = sequences.shape[1]
    padded_length = int(np.ceil((length - kernel) / stride)) * stride + kernel
    padded = np.pad(sequences, ((0, 0), (0, padded_length - length), (0, 0)))
    count = (padded_length - kernel) // stride + 1
    expected = np.stack([
        np.stack([padded[:, w * stride + k, :] for k in range(kernel)], axis=-1).reshape(len(padded), 3 * kernel)
        for w in range(count)
    ], axis=1)  # F.unfold: feature index c * kernel + k
    np.testing.assert_array_equal(windows, expected)
    folded = FoldSequences(axis)([tf.constant(padded), x]).numpy()
    np.testing.assert_array_equal(folded, x)


def test_attention_matches_numpy():
    rng = np.random.default_rng(5)
    batch, frames, freq, heads, qk, value = 2, 5, 3, 2, 2, 3
    q = rng.standard_normal((batch, frames, freq, heads * qk)).astype(np.float32)
    k = rng.standard_normal((batch, frames, freq, heads * qk)).astype(np.float32)
    v = rng.standard_normal((batch, frames, freq, heads * value)).astype(np.float32)
    out = FullUtteranceAttention(heads)([q, k, v]).numpy()
    for head in range(heads):
        qh = q[..., head * qk:(head + 1) * qk].reshape(batch, frames, -1)
        kh = k[..., head * qk:(head + 1) * qk].reshape(batch, frames, -1)
        vh = v[..., head * value:(head + 1) * value].reshape(batch, frames, -1)
        scores = qh @ kh.transpose(0, 2, 1) / np.sqrt(qk * freq)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        expected = (weights @ vh).reshape(batch, frames, freq, value)
        np.testing.assert_allclose(out[..., head * value:(head + 1) * value], expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_models():
    return build_tfgridnet(**TINY, num_blocks=1), build_tfgridnet(**TINY, num_blocks=2, progressive=True)


def test_output_length_equals_input_length(tiny_models):
    direct, progressive = tiny_models
    signal = np.random.default_rng(7).standard_normal((2, 4097)).astype(np.float32)  # not a multiple of the hop
    assert direct(signal).shape == (2, 4097)
    outputs = progressive(signal)
    assert len(outputs) == 2
    assert all(tuple(output.shape) == (2, 4097) for output in outputs)
    # torch.istft gives hop * (frames - 1) = 4096 samples, upstream zero-pads the rest
    assert np.all(outputs[-1].numpy()[:, 4096:] == 0)


@pytest.mark.parametrize("layer", [
    TorchStft(512, 256), TorchIstft(512, 256), ComplexPhaseEncoder(4, (3, 1), 50.0), UnfoldSequences("time", 4, 2),
    FoldSequences("frequency"), FullUtteranceAttention(2), WaveformDeviation(1e-6), ScaleWaveform(inverse=True),
])
def test_custom_layers_round_trip_their_config(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    assert keras.utils.get_registered_name(type(layer)) == f"se>{type(layer).__name__}"


def test_folded_macs_count_every_sequence(tiny_models):
    from reproductions.tfgridnet.strategies import macs_breakdown

    direct, _ = tiny_models
    rows = {row["layer"]: row for row in macs_breakdown(direct, seconds=1.0)}
    frames, windows, hidden, features = 1 + 16000 // 256, 255 - 4 + 1, 4, 4 * 4
    # intra-frame BLSTM: one sequence of 252 windows per frame, two directions, 4 gates
    assert rows["block1_intra_blstm"]["macs_total"] == frames * 2 * windows * 4 * (features * hidden + hidden**2)
    # inter-frame BLSTM: one sequence of frames - 3 windows per frequency bin
    assert rows["block1_inter_blstm"]["macs_total"] == 255 * 2 * (frames - 3) * 4 * (features * hidden + hidden**2)


def test_invalid_configuration_names_the_argument():
    with pytest.raises(ValueError, match="^embedding_dim 6 must be divisible by num_heads 4$"):
        build_tfgridnet(embedding_dim=6, hidden_units=2, num_blocks=1, num_heads=4)
    with pytest.raises(ValueError, match="approx_qk_dim"):
        build_tfgridnet(embedding_dim=4, hidden_units=2, num_blocks=1, num_heads=2, approx_qk_dim=100)


def test_float32_tflite_matches_keras_on_every_call(tmp_path):
    # The fused LSTMs of the .tflite keep their state in variable tensors that each invoke overwrites with the final
    # state; TFLiteModel must zero them per call or the second utterance starts from the first one's last state
    # (the mini export measured 4.2e-2 max |tflite - keras| on its later files, 1e-7 on the first).
    from common.tflite import TFLiteModel, export_tflite

    keras.utils.set_random_seed(3)
    model = build_tfgridnet(n_fft=64, hop_length=32, **TINY, num_blocks=1, unfold_stride=2)
    samples = 1024
    runner = TFLiteModel(export_tflite(model, tmp_path / "tiny.tflite", "float32", input_shapes=[(1, samples)]))
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in runner.op_names()
    rng = np.random.default_rng(11)
    for scale in (1.0, 0.3, 1.0):
        signal = (scale * rng.standard_normal((1, samples))).astype(np.float32)
        expected = model(signal, training=False).numpy()
        np.testing.assert_allclose(runner(signal), expected, rtol=0, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("progressive", [False, True])
def test_fused_lstm_model_has_the_same_weights_and_outputs(tmp_path, progressive):
    """build_tfgridnet(fused_lstm=True): the Keras model's weight names and shapes, checkpoints both ways, same output."""
    from common import recurrent

    models = []
    for fused_lstm in (False, True):
        keras.backend.clear_session()  # the same automatic layer names in both builds
        keras.utils.set_random_seed(4)
        models.append(build_tfgridnet(n_fft=64, hop_length=32, **TINY, num_blocks=2, unfold_stride=2,
                                      progressive=progressive, fused_lstm=fused_lstm))
    plain, fused = models
    assert [(w.name, w.shape) for w in fused.weights] == [(w.name, w.shape) for w in plain.weights]
    blstm = fused.get_layer("block1_inter_blstm")
    assert isinstance(blstm.forward_layer, recurrent.LSTM) and isinstance(blstm.backward_layer, recurrent.LSTM)
    plain.save_weights(str(tmp_path / "plain.weights.h5"))
    fused.load_weights(str(tmp_path / "plain.weights.h5"))
    signal = tf.constant(np.random.default_rng(12).standard_normal((2, 1000)), tf.float32)
    expected, actual = plain(signal), fused(signal)
    for expected_output, actual_output in zip(tf.nest.flatten(expected), tf.nest.flatten(actual)):
        np.testing.assert_allclose(actual_output.numpy(), expected_output.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("progressive", [False, True])
def test_input_normalisation_makes_the_model_scale_equivariant(progressive):
    # ESPnet: the network sees y / std(y) and its output is multiplied by std(y), so f(a y) = a f(y).
    keras.utils.set_random_seed(5)
    model = build_tfgridnet(n_fft=64, hop_length=32, **TINY, num_blocks=2, progressive=progressive,
                            normalize_input=True)
    signal = np.random.default_rng(4).standard_normal((2, 1024)).astype(np.float32)
    reference = model(signal, training=False)
    reference = [reference] if not progressive else reference
    for factor in (0.01, 37.0):
        scaled = model(factor * signal, training=False)
        scaled = [scaled] if not progressive else scaled
        for ours, expected in zip(scaled, reference):
            expected = factor * expected.numpy()
            np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    unnormalised = build_tfgridnet(n_fft=64, hop_length=32, **TINY, num_blocks=1)
    small, large = unnormalised(signal).numpy(), unnormalised(37.0 * signal).numpy()
    assert not np.allclose(large, 37.0 * small, rtol=1e-2)  # the paper's model is not scale-equivariant


def test_waveform_deviation_is_the_unbiased_standard_deviation():
    signal = np.random.default_rng(6).standard_normal((3, 500)).astype(np.float32) * [[0.1], [1.0], [5.0]]
    np.testing.assert_allclose(WaveformDeviation()(signal).numpy()[:, 0], np.std(signal, axis=1, ddof=1), rtol=1e-5)
    assert WaveformDeviation()(np.zeros((1, 500), np.float32)).numpy()[0, 0] == pytest.approx(1e-8)


def test_complex_input_ablation_replaces_the_phase_encoder():
    embedding_dim, channels = 8, 4
    sizes = dict(embedding_dim=embedding_dim, hidden_units=4, num_heads=2, approx_qk_dim=255, num_blocks=1,
                 phase_channels=channels)
    paper = build_tfgridnet(**sizes)
    ablation = build_tfgridnet(**sizes, complex_input=True)
    names = {layer.name for layer in ablation.layers}
    assert "phase_encoder" not in names and "phase_encoder" in {layer.name for layer in paper.layers}
    # the phase encoder's two 3x1 convolutions (1 -> C, with biases) go, and the 3x3 input convolution sees the 2
    # real/imaginary channels instead of C magnitudes
    encoder = 2 * (3 * 1 * 1 * channels + channels)
    input_convolution = 3 * 3 * (channels - 2) * embedding_dim
    assert paper.count_params() - ablation.count_params() == encoder + input_convolution
    assert ablation.get_layer("input_conv").input_shape[-1] == 2


def test_model_options_must_be_booleans():
    config = paper_model_section(**TINY, num_blocks=1, normalize_input="yes")
    with pytest.raises(ValueError, match="^conf/x.yaml: model.normalize_input must be true or false, got 'yes'$"):
        build_from_config(config, source="conf/x.yaml")
    complex_model = build_from_config(paper_model_section(**TINY, num_blocks=1), complex_input=True)
    assert "phase_encoder" not in {layer.name for layer in complex_model.layers}


def test_model_section_errors_name_the_key():
    from common.config import load_config
    from reproductions.tfgridnet.recipe import Recipe
    from reproductions.tfgridnet.tfgridnet import MODEL_KEYS

    recipe_dir = Path(__file__).resolve().parents[3] / "reproductions" / "tfgridnet"
    section = load_config("mini", recipe_dir, sections=Recipe.config_sections)["model"]
    assert list(section) == list(MODEL_KEYS)
    with pytest.raises(ValueError) as error:
        build_from_config(dict(section, num_layers=2), source="conf/mini.yaml")
    assert str(error.value) == ("conf/mini.yaml: unknown key model.num_layers; model accepts: " + ", ".join(MODEL_KEYS))
    # No builder default stands in for a key the YAML lacks.
    del section["normalize_input"]
    with pytest.raises(ValueError, match=r"^conf/mini.yaml: missing key model.normalize_input; model requires: "):
        build_from_config(section, source="conf/mini.yaml")
