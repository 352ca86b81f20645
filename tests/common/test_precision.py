"""The precision policy of common/training.py and the float32 pins of the models under it."""
import numpy as np
import pytest

from common.tfkeras import keras, tf, tfmot
from common.training import (
    choose_precision,
    compression_precision,
    config_precision,
    cpu_flags,
    memory_allocator,
    training_precision,
)

AMX_CPU = {"fpu", "avx512f", "amx_bf16", "amx_tile"}
AVX512_BF16_CPU = {"avx512f", "avx512_bf16"}
PLAIN_CPU = {"fpu", "avx2", "avx512f"}


@pytest.fixture
def restore_policy():
    previous = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("flags", [AMX_CPU, AVX512_BF16_CPU])
def test_auto_takes_bf16_on_a_bf16_cpu_with_onednn(flags):
    policy, reason = choose_precision("auto", flags, [], onednn=True)
    assert policy == "mixed_bfloat16"
    assert ("amx_bf16" in reason) == ("amx_bf16" in flags)


def test_auto_stays_float32_without_bf16_units_or_without_onednn():
    assert choose_precision("auto", PLAIN_CPU, [], onednn=True)[0] == "float32"
    policy, reason = choose_precision("auto", AMX_CPU, [], onednn=False)
    assert policy == "float32" and "TF_ENABLE_ONEDNN_OPTS=0" in reason


def test_forced_choices_override_the_hardware():
    assert choose_precision("float32", AMX_CPU, [(9, 0)], onednn=True)[0] == "float32"
    assert choose_precision("bfloat16", PLAIN_CPU, [], onednn=True)[0] == "mixed_bfloat16"
    assert "emulated" in choose_precision("bfloat16", AMX_CPU, [], onednn=False)[1]


def test_auto_on_gpus_needs_compute_capability_8():
    assert choose_precision("auto", PLAIN_CPU, [(8, 0)], onednn=False)[0] == "mixed_bfloat16"
    assert choose_precision("auto", AMX_CPU, [(7, 5)], onednn=True)[0] == "float32"
    assert choose_precision("auto", PLAIN_CPU, [(8, 6), (7, 0)], onednn=True)[0] == "float32"


def test_unknown_precision_names_the_key():
    with pytest.raises(ValueError, match=r"conf/mini.yaml: training.precision .*'half'"):
        choose_precision("half", AMX_CPU, [], True, source="conf/mini.yaml: training.precision")
    assert config_precision({"config_path": "x.yaml", "training": {"precision": "float32"}}) == (
        "float32", "x.yaml: training.precision")
    assert config_precision({"training": {}})[0] == "auto"


def test_cpu_flags_reads_every_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu amx_bf16\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx512_bf16", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_training_precision_sets_logs_and_restores(restore_policy):
    lines = []
    with training_precision("bfloat16", log=lines.append) as policy:
        assert policy == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    assert len(lines) == 2 and lines[0].startswith("memory allocator: ")
    assert lines[1].startswith("precision: mixed_bfloat16")


def test_memory_allocator_reads_the_mapped_libraries(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f10 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert memory_allocator(maps) == "glibc malloc"
    maps.write_text(maps.read_text() + "7f20-7f30 r-xp 0 08:01 2 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4\n")
    assert memory_allocator(maps) == "tcmalloc"
    assert memory_allocator(tmp_path / "missing") == "unknown"


def _small_dense_model():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, dtype="float32")(hidden))


@pytest.mark.parametrize("wrapper", ["pruning", "clustering", "qat"])
def test_tfmot_wrappers_fail_under_bf16_and_train_under_compression_precision(wrapper, restore_policy):
    optimization = tfmot()
    wrap = {
        "pruning": optimization.sparsity.keras.prune_low_magnitude,
        "clustering": lambda model: optimization.clustering.keras.cluster_weights(
            model, number_of_clusters=3,
            cluster_centroids_init=optimization.clustering.keras.CentroidInitialization.LINEAR),
        "qat": optimization.quantization.keras.quantize_model,
    }[wrapper]
    callbacks = [optimization.sparsity.keras.UpdatePruningStep()] if wrapper == "pruning" else []
    inputs = np.random.RandomState(0).randn(4, 6).astype(np.float32)
    targets = np.random.RandomState(1).randn(4, 3).astype(np.float32)

    def one_step():
        model = wrap(_small_dense_model())
        model.compile(keras.optimizers.SGD(0.01), "mse")
        model.fit(inputs, targets, epochs=1, verbose=0, callbacks=callbacks)
        return model

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        one_step()
    lines = []
    with compression_precision("bfloat16", stage=wrapper, log=lines.append):
        model = one_step()
    assert {variable.dtype for variable in model.variables if variable.dtype.is_floating} == {tf.float32}
    assert lines[0].startswith("memory allocator: ")
    assert lines[1:] == [f"precision: float32 for {wrapper}, not mixed_bfloat16 (TFMOT's pruning, clustering and QAT "
                     "wrappers keep float32 masks, centroids and ranges that do not mix with bf16 activations)"]
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"


def _fcn():
    from reproductions.icse.fcn import build_fcn

    return build_fcn(filters=4, kernel_size=5, hidden_layers=2, seed=0)


def test_fcn_pins_its_norms_and_output_and_saves_float32_weights(tmp_path, restore_policy):
    from reproductions.icse.fcn import norm_layers

    waveform = np.random.RandomState(0).uniform(-0.5, 0.5, (1, 400, 1)).astype(np.float32)
    with training_precision("bfloat16", log=lambda line: None):
        mixed = _fcn()
        assert mixed.get_layer("conv1").compute_dtype == "bfloat16"
        assert {layer.compute_dtype for layer in norm_layers(mixed)} == {"float32"}
        assert mixed.output.dtype == tf.float32
        mixed.compile(keras.optimizers.Adam(1e-3), "mse")
        mixed.train_on_batch(waveform, waveform)
        mixed_output = mixed(waveform).numpy()
        mixed.save_weights(str(tmp_path / "fcn.weights.h5"))
    model = _fcn()
    assert model.get_layer("conv1").compute_dtype == "float32"
    model.load_weights(str(tmp_path / "fcn.weights.h5"))
    for saved, loaded in zip(mixed.get_weights(), model.get_weights()):
        assert saved.dtype == np.float32 and np.array_equal(saved, loaded)
    # bf16 keeps 8 bits of mantissa: relative error about 2**-8 per operation.
    np.testing.assert_allclose(model(waveform).numpy(), mixed_output, atol=0.05)
    assert not np.allclose(model(waveform).numpy(), mixed_output, atol=1e-7)


def test_tfgridnet_builds_and_trains_a_step_under_bf16(restore_policy):
    from reproductions.tfgridnet.losses import HybridLoss
    from reproductions.tfgridnet.tfgridnet import build_tfgridnet

    with training_precision("bfloat16", log=lambda line: None):
        model = build_tfgridnet(n_fft=64, hop_length=32, embedding_dim=4, hidden_units=4, num_heads=2,
                                approx_qk_dim=255, num_blocks=1, unfold_stride=2)
        for name in ("stft", "enhanced", "input_norm", "block1_intra_norm"):
            assert model.get_layer(name).compute_dtype == "float32", name
        assert model.get_layer("input_conv").compute_dtype == "bfloat16"
        assert model.output.dtype == tf.float32
        model.compile(keras.optimizers.Adam(1e-3), loss=HybridLoss(n_fft=64, hop_length=32))
        random = np.random.RandomState(0)
        clean = random.uniform(-0.5, 0.5, (2, 640)).astype(np.float32)
        noisy = clean + 0.1 * random.randn(2, 640).astype(np.float32)
        before = [weight.copy() for weight in model.get_weights()]
        loss = model.train_on_batch(noisy, clean)
    assert np.isfinite(loss)
    assert any(not np.array_equal(old, new) for old, new in zip(before, model.get_weights()))
