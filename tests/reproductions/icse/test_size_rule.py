"""The ICSE size rule against the authors' released PP+PQ model: 9.76 % (docs/icse.md#size-rule)."""
from pathlib import Path

import numpy as np
import pytest

from reproductions.icse.compression import distinct_values, kernel_counts
from reproductions.icse.size_rule import size_percent

ICSE_MODEL = (Path(__file__).resolve().parents[3] / ".." / "shared" / "anchors" / "icse"
              / "Kmeans_16C_ReTrain_st7_sp0.65_FCNN_0425.hdf5")


def test_released_icse_model_is_9_76_percent():
    if not ICSE_MODEL.is_file():
        pytest.skip("missing ../shared/anchors/icse/Kmeans_16C_ReTrain_st7_sp0.65_FCNN_0425.hdf5")
    import h5py

    with h5py.File(ICSE_MODEL, "r") as handle:
        kernels = {f"conv{i}": handle[f"convolution1d_{i}"][f"convolution1d_{i}_W:0"][()] for i in range(1, 9)}
    kept = sum(np.count_nonzero(k) for k in kernels.values())
    total = sum(k.size for k in kernels.values())
    assert (kept, total) == (234_850, 300_300)
    assert round(kept / total, 3) == 0.782
    for i in range(1, 8):
        assert distinct_values(kernels[f"conv{i}"])["distinct"] == 33  # 0 + 16 negative + 16 positive
    assert distinct_values(kernels["conv8"])["distinct"] == 8
    assert [kernel_counts(kernels[f"conv{i}"])["kernels_pruned"] for i in range(1, 9)] == [
        3, 158, 143, 173, 216, 236, 261, 0]
    # docs/icse.md#size-rule: k = 16 for conv1-7, 8 levels for conv8
    percent = size_percent(kernels, {**{f"conv{i}": 16 for i in range(1, 8)}, "conv8": 8})
    assert f"{percent:.2f} %" == "9.76 %"
    assert percent == pytest.approx(100 * 937_750 / 9_609_600)
    assert size_percent(list(kernels.values()), 16) == pytest.approx(100 * kept * 4 / (total * 32))
