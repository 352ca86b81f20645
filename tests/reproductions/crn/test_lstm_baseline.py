"""LSTM-2 baseline (reproductions/crn/lstm_baseline.py): parameter counts and MACs against arithmetic."""
import numpy as np


def test_paper_parameter_count():
    from reproductions.crn.lstm_baseline import build_lstm_baseline
    from reproductions.crn.recipe import pytorch_parameter_count

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
