"""Repeated timing with the spread, real-time factors and peak memory.

Speed figures are the median of ``repeats`` runs of the same call on the same input after ``warmup`` runs (the
first calls pay for memory planning and XNNPACK packing), reported with min, max and inter-quartile range so a
figure disturbed by other processes on a shared machine shows as a wide spread instead of a wrong median.

Peak memory uses Linux's per-process high-water mark: writing ``5`` to ``/proc/self/clear_refs`` resets ``VmHWM``
to the current resident size (proc(5)), so ``VmHWM`` after building and running a model, minus ``VmRSS`` before,
is the extra resident memory the model needed at its peak. Where that file is not writable the figure is None.
The figure is only meaningful in a process that has not run similar work before (freed memory that the allocators
keep is reused without raising ``VmHWM``): the benchmark takes it in a fresh process per variant
(:mod:`benchmarks.peak_memory`), never in its own long-running process.
"""
from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def time_callable(function: Callable[[], object], repeats: int = 10, warmup: int = 2) -> dict:
    """Wall time of ``function()``: ``median_s, min_s, max_s, iqr_s, repeats, times_s``.

    Raises:
        ValueError: ``repeats`` < 1 or ``warmup`` < 0.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    first, third = np.percentile(times, [25, 75])
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "iqr_s": float(third - first), "repeats": repeats, "times_s": times}


def real_time_factor(timing: dict, audio_seconds: float) -> dict:
    """Processing time over audio duration (< 1: faster than real time), for the median, min and max."""
    if audio_seconds <= 0:
        raise ValueError(f"audio_seconds must be positive, got {audio_seconds}")
    return {"rtf": timing["median_s"] / audio_seconds, "rtf_min": timing["min_s"] / audio_seconds,
            "rtf_max": timing["max_s"] / audio_seconds, "rtf_iqr": timing["iqr_s"] / audio_seconds}


def status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) or None where it is not available."""
    try:
        match = re.search(rf"^{field}:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def peak_memory_supported() -> bool:
    if status_kib("VmHWM") is None:
        return False
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def resident_peak(function: Callable[[], object]) -> tuple[object, int | None, int | None]:
    """Run ``function()`` once between ``VmRSS`` (before) and a reset ``VmHWM`` (after): ``(result, rss_kib,
    peak_kib)``, a figure None where ``/proc/self/status`` lacks it (OSError where ``clear_refs`` is not writable)."""
    before = status_kib("VmRSS")
    _CLEAR_REFS.write_text("5")
    result = function()
    return result, before, status_kib("VmHWM")


def measure_peak_memory(function: Callable[[], object]) -> tuple[object, float | None]:
    """Run ``function()`` once; return its result and the extra peak resident memory in MiB (None if unknown)."""
    if not peak_memory_supported():
        return function(), None
    result, before, peak = resident_peak(function)
    if before is None or peak is None:
        return result, None
    return result, max(peak - before, 0) / 1024.0


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` or None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return float(numerator) / float(denominator)
