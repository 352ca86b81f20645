"""Pareto frontier against hand-worked examples, repeated timing statistics, peak memory and the plot."""
import math
import time

import numpy as np
import pytest

from benchmarks import timing
from benchmarks.pareto import pareto_frontier
from benchmarks.plot import frontier_panels, plot_frontiers


def test_pareto_frontier_hand_example():
    # (cost, quality): B (2, 3.0) dominates C (3, 2.0); E (4, 3.0) is dominated by B (cheaper, same quality);
    # D (5, 4.0) is the best quality; A (1, 1.0) is the cheapest.
    points = [(3, 2.0), (1, 1.0), (5, 4.0), (2, 3.0), (4, 3.0)]
    assert pareto_frontier(points) == [1, 3, 2]


def test_pareto_frontier_ignores_missing_and_keeps_ties():
    points = [(1.0, None), (None, 2.0), (2.0, math.nan), (2.0, 1.0), (2.0, 1.0), (3.0, 0.5)]
    # The two identical points do not dominate each other (neither is strictly better); (3, 0.5) is dominated.
    assert pareto_frontier(points) == [3, 4]
    assert pareto_frontier([]) == []


def test_time_callable_statistics_bracket_the_median():
    durations = iter([0.0, 0.002, 0.006, 0.004, 0.010, 0.001])

    def work():
        time.sleep(next(durations))

    stats = timing.time_callable(work, repeats=5, warmup=1)
    assert stats["repeats"] == 5 and len(stats["times_s"]) == 5
    assert 0 < stats["min_s"] <= stats["median_s"] <= stats["max_s"]
    assert stats["max_s"] >= 0.010 and stats["min_s"] >= 0.001
    assert stats["median_s"] == pytest.approx(sorted(stats["times_s"])[2])
    factor = timing.real_time_factor(stats, audio_seconds=2.0)
    assert factor["rtf"] == pytest.approx(stats["median_s"] / 2.0)
    assert factor["rtf_min"] <= factor["rtf"] <= factor["rtf_max"]
    with pytest.raises(ValueError):
        timing.time_callable(work, repeats=0)
    with pytest.raises(ValueError):
        timing.real_time_factor(stats, 0.0)


def test_peak_memory_sees_a_large_temporary_allocation():
    if not timing.peak_memory_supported():
        pytest.skip("/proc/self/clear_refs is not writable here: peak memory is reported as None")

    def allocate():
        block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
        return float(block.sum())

    result, peak = timing.measure_peak_memory(allocate)
    assert result == 64 * 1024 * 1024 // 8
    assert 60 <= peak <= 200


def test_ratio_handles_missing_values():
    assert timing.ratio(10.0, 2.5) == 4.0
    assert timing.ratio(None, 2.0) is None and timing.ratio(1.0, 0.0) is None


def test_plot_marks_the_frontier(tmp_path):
    rows = [
        {"model": "a", "variant": "float", "kind": "float", "pesq_wb": 2.0, "tflite_gzip_bytes": 4000, "rtf_1": 0.5},
        {"model": "a", "variant": "int8", "kind": "ptq_int8", "pesq_wb": 1.9, "tflite_gzip_bytes": 1000, "rtf_1": 0.1},
        {"model": "b", "variant": "float", "kind": "float", "pesq_wb": 1.5, "tflite_gzip_bytes": 8000, "rtf_1": 0.05},
        {"model": "b", "variant": "missing", "kind": "tflite", "pesq_wb": None, "tflite_gzip_bytes": None},
    ]
    size, speed = frontier_panels(rows)
    assert size["frontier"] == [1, 0]  # b/float is larger and worse than both a variants
    assert speed["frontier"] == [2, 1, 0]
    path = plot_frontiers(rows, tmp_path / "frontier.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_frontiers([rows[3]], tmp_path / "none.png") is None
