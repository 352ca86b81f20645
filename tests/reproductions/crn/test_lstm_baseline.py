"""LSTM-2 baseline (reproductions/crn/lstm_baseline.py): parameter counts and MACs against arithmetic."""
import numpy as np


def test_paper_parameter_count():
    from reproductions.crn.lstm_baseline import build_lstm_baseline
    from reproductions.crn.networks import pytorch_parameter_count

    model = build_lstm_baseline()
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    # 4 (161 * 1024 + 1024^2 + 1024) + 3 * 4 (2 * 1024^2 + 1024) + 1024 * 161 + 161 (Keras, one bias per gate)
    assert trainable == 4 * (161 * 1024 + 1024**2 + 1024) + 3 * 4 * (2 * 1024**2 + 1024) + 1024 * 161 + 161
    assert trainable == 30_200_993
    # the paper's 30.22 M is PyTorch's count (a second LSTM bias): 30,217,377 (docs/crn.md#baselines)
    assert pytorch_parameter_count(model) == 30_217_377
    assert round(pytorch_parameter_count(model) / 1e6, 2) == 30.22


def test_small_baseline_shapes_and_macs():
    from common.accounting import macs_per_second
    from reproductions.crn.lstm_baseline import build_lstm_baseline, lstm_baseline_macs_per_frame

    model = build_lstm_baseline(units=8, lstm_layers=3)
    out = model(np.abs(np.random.default_rng(0).standard_normal((1, 5, 161))).astype(np.float32)).numpy()
    assert out.shape == (1, 5, 161) and out.min() >= 0.0  # softplus magnitude
    assert lstm_baseline_macs_per_frame(161, 8, 3) == 4 * 8 * (161 + 8) + 2 * 4 * 8 * 16 + 8 * 161
    assert macs_per_second(model, [(1, 100, 161)]) == 100 * lstm_baseline_macs_per_frame(161, 8, 3)


def test_fused_lstm_baseline_has_the_same_weights_and_outputs(tmp_path):
    from common import recurrent
    from reproductions.crn.lstm_baseline import build_lstm_baseline

    plain = build_lstm_baseline(units=8, lstm_layers=2)
    fused = build_lstm_baseline(units=8, lstm_layers=2, fused_lstm=True)
    assert all(isinstance(fused.get_layer(f"lstm{index}"), recurrent.LSTM) for index in (1, 2))
    assert [(w.name, w.shape) for w in fused.weights] == [(w.name, w.shape) for w in plain.weights]
    plain.save_weights(str(tmp_path / "plain.weights.h5"))
    fused.load_weights(str(tmp_path / "plain.weights.h5"))
    magnitude = np.abs(np.random.default_rng(1).standard_normal((2, 9, 161))).astype(np.float32)
    np.testing.assert_allclose(fused(magnitude).numpy(), plain(magnitude).numpy(), rtol=1e-5, atol=1e-6)
