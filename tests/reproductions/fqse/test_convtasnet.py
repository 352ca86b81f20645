"""Conv-TasNet against a NumPy re-implementation of asteroid's forward pass fed with an asteroid-style state dict."""
from pathlib import Path

import numpy as np
import pytest

from reproductions.fqse import recipe
from reproductions.fqse.asteroid import asteroid_state_to_core
from reproductions.fqse.convtasnet import build_convtasnet_core
from reproductions.fqse.fqse import build_waveform_model

TINY = dict(filters=8, kernel_size=8, stride=4, bottleneck=4, hidden=6, skip=5, conv_kernel=3, blocks=2, repeats=2)
PAPER = dict(filters=512, kernel_size=32, stride=16, bottleneck=128, hidden=512, skip=128, conv_kernel=3, blocks=8,
             repeats=3)


def asteroid_state(config, rng):
    """Random tensors with asteroid 0.6 ConvTasNet keys and PyTorch layouts."""
    n, length, b, h, sc, p = (config[key] for key in ("filters", "kernel_size", "bottleneck", "hidden", "skip",
                                                      "conv_kernel"))
    state = {"encoder.filterbank._filters": rng.standard_normal((n, 1, length)),
             "decoder.filterbank._filters": rng.standard_normal((n, 1, length)),
             "masker.bottleneck.0.gamma": 1 + 0.1 * rng.standard_normal(n),
             "masker.bottleneck.0.beta": 0.1 * rng.standard_normal(n),
             "masker.bottleneck.1.weight": rng.standard_normal((b, n, 1)) / np.sqrt(n),
             "masker.bottleneck.1.bias": 0.1 * rng.standard_normal(b),
             "masker.mask_net.0.weight": np.array([0.2]),
             "masker.mask_net.1.weight": rng.standard_normal((n, sc, 1)) / np.sqrt(sc),
             "masker.mask_net.1.bias": 0.1 * rng.standard_normal(n)}
    for index in range(config["blocks"] * config["repeats"]):
        key = f"masker.TCN.{index}"
        state.update({
            f"{key}.shared_block.0.weight": rng.standard_normal((h, b, 1)) / np.sqrt(b),
            f"{key}.shared_block.0.bias": 0.1 * rng.standard_normal(h),
            f"{key}.shared_block.1.weight": np.array([0.1 + 0.05 * index]),
            f"{key}.shared_block.2.gamma": 1 + 0.1 * rng.standard_normal(h),
            f"{key}.shared_block.2.beta": 0.1 * rng.standard_normal(h),
            f"{key}.shared_block.3.weight": rng.standard_normal((h, 1, p)) / np.sqrt(p),
            f"{key}.shared_block.3.bias": 0.1 * rng.standard_normal(h),
            f"{key}.shared_block.4.weight": np.array([0.3]),
            f"{key}.shared_block.5.gamma": 1 + 0.1 * rng.standard_normal(h),
            f"{key}.shared_block.5.beta": 0.1 * rng.standard_normal(h),
            f"{key}.res_conv.weight": rng.standard_normal((b, h, 1)) / np.sqrt(h),
            f"{key}.res_conv.bias": 0.1 * rng.standard_normal(b),
            f"{key}.skip_conv.weight": rng.standard_normal((sc, h, 1)) / np.sqrt(h),
            f"{key}.skip_conv.bias": 0.1 * rng.standard_normal(sc),
        })
    return {key: value.astype(np.float32) for key, value in state.items()}


def numpy_convtasnet(state, config, waveform):
    """asteroid ConvTasNet forward in (channels, time) layout, written from asteroid's modules."""
    stride, p = config["stride"], config["conv_kernel"]

    def conv1d(x, weight, bias=None, stride=1, dilation=1, padding=0, groups=1):
        x = np.pad(x, ((0, 0), (padding, padding)))
        out_channels, in_per_group, kernel = weight.shape
        frames = (x.shape[1] - dilation * (kernel - 1) - 1) // stride + 1
        output = np.zeros((out_channels, frames))
        for o in range(out_channels):
            group = o // (out_channels // groups)
            for i in range(in_per_group):
                for k in range(kernel):
                    start = k * dilation
                    output[o] += weight[o, i, k] * x[group * in_per_group + i, start:start + stride * frames:stride]
        return output + (0 if bias is None else bias[:, None])

    def gln(x, gamma, beta):
        mean = x.mean()
        variance = ((x - mean) ** 2).mean()
        return gamma[:, None] * (x - mean) / np.sqrt(variance + 1e-8) + beta[:, None]

    def prelu(x, slope):
        return np.where(x >= 0, x, slope[0] * x)

    features = conv1d(waveform[None], state["encoder.filterbank._filters"], stride=stride)
    output = conv1d(gln(features, state["masker.bottleneck.0.gamma"], state["masker.bottleneck.0.beta"]),
                    state["masker.bottleneck.1.weight"], state["masker.bottleneck.1.bias"])
    skip_sum = 0
    for index in range(config["blocks"] * config["repeats"]):
        key = f"masker.TCN.{index}"
        dilation = 2 ** (index % config["blocks"])
        branch = prelu(conv1d(output, state[f"{key}.shared_block.0.weight"], state[f"{key}.shared_block.0.bias"]),
                       state[f"{key}.shared_block.1.weight"])
        branch = gln(branch, state[f"{key}.shared_block.2.gamma"], state[f"{key}.shared_block.2.beta"])
        branch = conv1d(branch, state[f"{key}.shared_block.3.weight"], state[f"{key}.shared_block.3.bias"],
                        dilation=dilation, padding=dilation * (p - 1) // 2, groups=branch.shape[0])
        branch = gln(prelu(branch, state[f"{key}.shared_block.4.weight"]), state[f"{key}.shared_block.5.gamma"],
                     state[f"{key}.shared_block.5.beta"])
        output = output + conv1d(branch, state[f"{key}.res_conv.weight"], state[f"{key}.res_conv.bias"])
        skip_sum = skip_sum + conv1d(branch, state[f"{key}.skip_conv.weight"], state[f"{key}.skip_conv.bias"])
    mask = np.maximum(conv1d(prelu(skip_sum, state["masker.mask_net.0.weight"]), state["masker.mask_net.1.weight"],
                             state["masker.mask_net.1.bias"]), 0)
    masked = mask * features
    filters = state["decoder.filterbank._filters"]  # ConvTranspose1d weight (in=N, out=1, L)
    length = (masked.shape[1] - 1) * stride + filters.shape[2]
    decoded = np.zeros(length)
    for frame in range(masked.shape[1]):
        decoded[frame * stride:frame * stride + filters.shape[2]] += masked[:, frame] @ filters[:, 0, :]
    return np.pad(decoded, (0, waveform.shape[0] - length))  # asteroid pad_x_to_y


def test_forward_matches_numpy_asteroid_with_mapped_state_dict():
    rng = np.random.default_rng(0)
    state = asteroid_state(TINY, rng)
    core = build_convtasnet_core(TINY)
    assert asteroid_state_to_core(state, core) == len(state)
    model = build_waveform_model(core)
    waveform = rng.standard_normal(203).astype(np.float32)  # (203 - 8) % 4 != 0: exercises the end padding
    expected = numpy_convtasnet({k: v.astype(np.float64) for k, v in state.items()}, TINY, waveform)
    actual = model(waveform[None]).numpy()[0]
    np.testing.assert_allclose(actual, expected, rtol=2e-4, atol=2e-4 * np.abs(expected).max())


def test_asteroid_mapping_rejects_wrong_shapes():
    rng = np.random.default_rng(1)
    state = asteroid_state(TINY, rng)
    state["masker.bottleneck.1.weight"] = state["masker.bottleneck.1.weight"][:2]
    with pytest.raises(ValueError, match="bottleneck.1.weight"):
        asteroid_state_to_core(state, build_convtasnet_core(TINY))


def test_paper_parameter_counts():
    assert build_convtasnet_core(PAPER).count_params() == 5_000_881
    fqse_core = build_convtasnet_core(dict(PAPER, input_channels=2, residual_stages=2))
    assert fqse_core.count_params() == 5_033_649


def test_compute_macs_of_the_tiny_model():
    from common.accounting import macs_per_second

    core = build_convtasnet_core(TINY)
    model = build_waveform_model(core)
    frames = (16000 - 8) // 4 + 1
    n, b, h, sc = 8, 4, 6, 5
    blocks = 4
    expected = frames * (n * 8  # encoder
                         + 2 * n + n * b  # bottleneck gLN (2 per element) + conv
                         + blocks * (b * h + 2 * h + 3 * h + 2 * h + h * b + h * sc)
                         + sc + sc * n  # mask PReLU + conv
                         + n * 8)  # decoder
    assert macs_per_second(model, np.zeros((1, 16000), np.float32)) == expected


def test_global_layer_norm_keeps_its_accuracy_in_full_int8_tflite(tmp_path):
    """gLN of a low-level input (std 0.03, as the vanilla model's encoder output): int8 .tflite close to Keras.

    Written as ``(x - mean) * rsqrt(var) * gamma + beta``, the converter gives the centred ``x - mean`` the
    normalised output's scale (~1/std times too coarse) and the layer falls to ~10 dB SNR; the ``x * scale +
    shift`` form keeps it near the input quantization's own accuracy.
    """
    from reproductions.fqse.convtasnet import GlobalLayerNorm
    from tests.int8_layer import int8_normalisation_snr

    snr, _ = int8_normalisation_snr(GlobalLayerNorm(), 120, tmp_path / "gln.tflite")
    assert snr > 25.0, f"int8 gLN vs Keras: {snr:.1f} dB"


def test_deployment_graph_exports_shared_prelu_as_leaky_relu(tmp_path):
    """In a deployment graph every shared PReLU is LeakyReLU with the trained slope: the same function (checked
    against the training graph), and an int8 op XNNPACK runs (int8 PRELU fell back to the reference kernel)."""
    from reproductions.fqse.quantizers import deployment_graph
    from common.tfkeras import tf
    from common.tflite import TFLiteModel, export_tflite

    rng = np.random.default_rng(3)
    core = build_convtasnet_core(TINY)
    slopes = [weight for weight in core.weights if "slope" in weight.name]
    assert slopes, "the tiny core has PReLU slopes"
    for weight in slopes:  # distinct, non-default slopes: a frozen default 0.25 would not be noticed
        weight.assign(rng.uniform(0.05, 0.6, size=weight.shape).astype(np.float32))
    waveform = (0.1 * rng.standard_normal((1, 400, 1))).astype(np.float32)
    expected = core(waveform, training=False).numpy()
    with deployment_graph():
        deployed = tf.function(lambda signal: core(signal, training=False))(tf.constant(waveform)).numpy()
        path = export_tflite(core, tmp_path / "core.tflite", mode="int8", input_shapes=[(1, 400, 1)],
                             representative_data=[waveform], int8_io=False)
    np.testing.assert_allclose(deployed, expected, atol=1e-6)
    operators = TFLiteModel(path).op_names()
    assert "LEAKY_RELU" in operators and "PRELU" not in operators


def test_paper_yaml_builds_the_paper_counts():
    from common.config import load_config
    from reproductions.fqse import convtasnet, fqse, variants

    config = load_config("paper", Path(recipe.__file__).resolve().parent, sections=recipe.Recipe.config_sections)
    assert convtasnet.build_from_config(config["model"]).count_params() == 5_000_881
    # plus the splitter's second encoder channel and the RQB's re-encoder, N x L = 512 x 32 weights each
    assert fqse.build_from_config(config["model"], config["fqse"]).count_params() == 5_000_881 + 2 * 512 * 32
    # the recipe's cores are the same models
    assert variants.build_core(config, "float").count_params() == 5_000_881
    assert variants.build_core(config, "fqse", quantized=False).count_params() == 5_033_649


def test_model_and_fqse_section_errors_name_the_key():
    from reproductions.fqse import convtasnet, fqse

    with pytest.raises(ValueError) as error:
        convtasnet.build_from_config(dict(TINY, layers=3), source="conf/mini.yaml")
    assert str(error.value) == ("conf/mini.yaml: unknown key model.layers; model accepts: filters, kernel_size, "
                                "stride, bottleneck, hidden, skip, conv_kernel, blocks, repeats")
    # input_channels and residual_stages come from the fqse: section, not from model:
    with pytest.raises(ValueError, match=r"^unknown key model.input_channels; "):
        convtasnet.build_from_config(dict(TINY, input_channels=2))
    with pytest.raises(ValueError, match=r"^conf/x.yaml: missing key model.repeats; model requires: filters, "):
        convtasnet.build_from_config({key: value for key, value in TINY.items() if key != "repeats"},
                                     source="conf/x.yaml")
    with pytest.raises(ValueError) as error:
        fqse.build_from_config(TINY, {"splitter_stages": 2})
    assert str(error.value) == "missing key fqse.residual_stages; fqse requires: splitter_stages, residual_stages"
    with pytest.raises(ValueError, match=r"^model.kernel_size 8 must be a multiple of model.stride 3$"):
        convtasnet.build_from_config(dict(TINY, stride=3))
