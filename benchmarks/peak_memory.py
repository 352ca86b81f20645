"""Peak memory of one variant, measured in a fresh process: ``python -m benchmarks.peak_memory``.

The benchmark's ``peak MiB`` column is the extra peak resident memory of building a variant's enhancer and running
it once on the input the harness passes (a 10-minute file: the first test clip tiled, ``MEMORY_SECONDS`` in
:mod:`benchmarks.benchmark`), in a fresh Python process started for that variant alone, after its imports.

Measuring it inside the benchmark process (as earlier versions did) is wrong for every row after the first of a
model: memory freed by earlier rows (malloc free lists, TensorFlow's and LiteRT's allocators) stays resident and is
reused, so a later variant of the same architecture showed ~0.1 MiB against 85 MiB for the first one. Here each
variant gets its own process:

1. import the adapter, TensorFlow / tf_keras and the LiteRT interpreter (:data:`PRELOAD`, or the adapter's
   ``preload_modules``), list the adapter's variants for the config (this imports the recipe) and find the one
   with that model and variant name, exactly as the harness lists them (:mod:`benchmarks.models`);
2. run the variant's ``build`` (exports the benchmark's own .tflite files; a no-op when the harness ran, since it
   exported them already), collect garbage, read ``VmRSS`` (the baseline);
3. reset the high-water mark (``echo 5 > /proc/self/clear_refs``), build the enhancer (``make_enhancer(threads)``:
   load the model or the interpreter) and run it once on the input, read ``VmHWM``;
4. print one line ``PEAK_MEMORY_RESULT {json}``: ``peak_mib`` = (VmHWM - baseline VmRSS) / 1 MiB, ``baseline_mib``,
   ``peak_rss_mib`` (VmHWM), timings; on failure ``error`` and exit status 1.

:func:`measure_in_child` runs that from the harness and never raises: a failed, killed or timed-out child gives
``peak_mib = None`` and the reason.

Command line (the harness passes ``--signal``; without it the speed input is built as the harness builds it, from
the benchmark config's ``seconds``, ``max_items`` and ``seed``)::

    python -m benchmarks.peak_memory --config mini --model icse --variant "ICSE PP+PQ int8 .tflite"
"""
from __future__ import annotations

import argparse
import gc
import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from benchmarks import timing
from benchmarks.variant import REPOSITORY_ROOT

MARKER = "PEAK_MEMORY_RESULT "
SAMPLE_RATE = 16000
# Imported before the baseline, so the figure is the variant's memory and not the libraries' import cost.
# Optional ones (LiteRT when only tf.lite is installed) are skipped when they do not import.
PRELOAD = ("common.tfkeras", "common.tflite", "ai_edge_litert.interpreter")
DEFAULT_TIMEOUT_S = 900.0
METHOD = ("extra peak resident memory (VmHWM - VmRSS after imports, /proc/self/status) of building the variant's "
          "enhancer and running it once on the long input, in a fresh process per variant")


# ------------------------------------------------------------------------------------------------ parent side
def adapter_reference(adapter) -> tuple[str | None, str | None]:
    """``("module:Class", None)`` when a child process can rebuild ``adapter`` as ``Class()``; else
    ``(None, reason)`` (a class defined in a function or in ``__main__``, or one whose constructor needs
    arguments)."""
    cls = type(adapter)
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        return None, f"adapter {qualname} (module {module}) cannot be imported by a child process"
    try:
        inspect.signature(cls).bind()
    except TypeError:
        return None, f"adapter {module}.{qualname} needs constructor arguments: a child process cannot rebuild it"
    except ValueError:
        pass  # no signature available (builtin); let the child try
    return f"{module}:{qualname}", None


def child_command(config_name: str, model: str, variant: str, adapter: str | None = None,
                  signal_path: Path | None = None, threads: int | None = None,
                  timing_seconds: float | None = None) -> list[str]:
    command = [sys.executable, "-m", "benchmarks.peak_memory", "--config", str(config_name), "--model", model,
               "--variant", variant]
    if adapter:
        command += ["--adapter", adapter]
    if signal_path is not None:
        command += ["--signal", str(signal_path)]
    if threads is not None:
        command += ["--threads", str(int(threads))]
    if timing_seconds is not None:
        command += ["--timing-seconds", repr(float(timing_seconds))]
    return command


def _child_environment() -> dict:
    env = dict(os.environ)
    paths = [str(REPOSITORY_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _tail(text: str, lines: int = 6, characters: int = 600) -> str:
    kept = [line for line in (text or "").strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-characters:]


def measure_in_child(config_name: str, model: str, variant: str, signal=None, threads: int | None = None,
                     adapter: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                     timing_seconds: float | None = None) -> dict:
    """Run one variant's measurement in a fresh process; never raises.

    Args:
        config_name: the benchmark config name the adapters list variants for (``mini``, ``paper``).
        model: the adapter's model name (``icse`` ...), looked up in :data:`benchmarks.models.ADAPTERS` unless
            ``adapter`` (``"module:Class"``, built with no arguments) is given.
        variant: the variant's name (:attr:`benchmarks.variant.Variant.variant`), unique within the model.
        signal: the input (float32 waveform), passed through a temporary .npy file; None: the child builds
            it as the harness does from the benchmark config.
        threads: interpreter / TF threads for the enhancer (the harness's first thread count); None: the child
            applies the harness's rule (1 for LiteRT rows, all cores for Keras rows).
        timing_seconds: the harness's timing-input length, which names the static-shape files some variants time
            (FQSE's float core) when it differs from ``signal``'s length (a long-file memory input); None: the
            length of ``signal``.

    Returns:
        dict with ``peak_mib`` (None on failure), ``baseline_mib``, ``peak_rss_mib``, ``wall_s`` (the whole child,
        start-up and imports included), the child's own figures, and ``error`` (None on success).
    """
    started = time.perf_counter()
    result = {"model": model, "variant": variant, "peak_mib": None, "baseline_mib": None, "error": None}
    with tempfile.TemporaryDirectory(prefix="peak_memory_") as folder:
        signal_path = None
        if signal is not None:
            signal_path = Path(folder) / "signal.npy"
            np.save(signal_path, np.asarray(signal, np.float32))
        command = child_command(config_name, model, variant, adapter, signal_path, threads, timing_seconds)
        try:
            completed = subprocess.run(command, cwd=REPOSITORY_ROOT, env=_child_environment(), capture_output=True,
                                       text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            result.update(error=f"child process timed out after {timeout:.0f} s",
                          wall_s=time.perf_counter() - started)
            return result
        except OSError as error:
            result.update(error=f"child process did not start: {error}", wall_s=time.perf_counter() - started)
            return result
    result["wall_s"] = time.perf_counter() - started
    reported = None
    for line in completed.stdout.splitlines():
        if line.startswith(MARKER):
            try:
                reported = json.loads(line[len(MARKER):])
            except json.JSONDecodeError:
                reported = None
    if reported is not None:
        result.update({key: value for key, value in reported.items() if key not in ("model", "variant")})
    if completed.returncode != 0 or reported is None or reported.get("peak_mib") is None:
        result["peak_mib"] = None
        if not result.get("error"):
            detail = _tail(completed.stderr) or _tail(completed.stdout) or "no output"
            result["error"] = f"child process exited with status {completed.returncode}: {detail}"
    return result


# ------------------------------------------------------------------------------------------------- child side
def load_adapter(model: str, reference: str | None = None):
    if reference:
        module_name, _, attribute = reference.partition(":")
        target = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
        return target()
    from benchmarks.models import ADAPTERS

    if model not in ADAPTERS:
        raise ValueError(f"unknown model {model!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[model]()


def preload(modules) -> list[str]:
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except ImportError:
            pass
    return loaded


def find_variant(variants, model: str, name: str):
    """The one variant of ``model`` called ``name``; ValueError naming the choices when there is none or several."""
    matches = [v for v in variants if v.model == model and v.variant == name]
    if len(matches) != 1:
        known = [v.variant for v in variants if v.model == model]
        problem = "no variant" if not matches else f"{len(matches)} variants"
        raise ValueError(f"{problem} named {name!r} for model {model!r}; variants: {known}")
    if matches[0].missing:
        raise ValueError(f"{matches[0].label} cannot be measured: {matches[0].missing}")
    return matches[0]


def harness_threads(variant) -> int:
    """The thread count the harness builds and first runs a variant with (benchmark.measure_variant)."""
    return 1 if variant.runtime == "litert" else (os.cpu_count() or 1)


def speed_signal_from_config(config: str, overrides=()) -> np.ndarray:
    """The harness's fixed timing input: the first test clip tiled to the config's ``seconds``."""
    from benchmarks.benchmark import shared_test_set
    from benchmarks.variant import fixed_length
    from common.config import load_config

    settings = load_config(config, Path(__file__).resolve().parent, overrides)
    clips = shared_test_set(max_items=int(settings["max_items"]), seed=int(settings["seed"]))
    return fixed_length(clips[0]["noisy"], int(round(float(settings["seconds"]) * SAMPLE_RATE)))


def measure(model: str, variant_name: str, config_name: str, signal, threads: int | None = None,
            adapter_path: str | None = None, benchmark_config: str | None = None,
            timing_seconds: float | None = None) -> dict:
    """The child's work (see the module docstring); call it only in a fresh process."""
    if not timing.peak_memory_supported():
        raise RuntimeError("/proc/self/clear_refs is not writable or VmHWM is not reported: no peak memory here")
    started = time.perf_counter()
    adapter = load_adapter(model, adapter_path)
    loaded = preload(getattr(adapter, "preload_modules", PRELOAD))
    if signal is None:
        signal = speed_signal_from_config(benchmark_config or config_name)
    signal = np.asarray(signal, np.float32)
    if hasattr(adapter, "timing_seconds"):
        adapter.timing_seconds = signal.size / SAMPLE_RATE if timing_seconds is None else float(timing_seconds)
    variant = find_variant(adapter.variants(config_name), getattr(adapter, "name", model) or model, variant_name)
    if variant.build is not None:
        variant.build()
    threads = harness_threads(variant) if threads is None else int(threads)
    imports_s = time.perf_counter() - started
    gc.collect()
    run_started = time.perf_counter()
    _, baseline_kib, peak_kib = timing.resident_peak(lambda: variant.make_enhancer(threads)(signal))
    build_run_s = time.perf_counter() - run_started
    if baseline_kib is None or peak_kib is None:
        raise RuntimeError("VmRSS / VmHWM missing from /proc/self/status")
    return {"model": variant.model, "variant": variant.variant, "peak_mib": max(peak_kib - baseline_kib, 0) / 1024.0,
            "baseline_mib": baseline_kib / 1024.0, "peak_rss_mib": peak_kib / 1024.0, "threads": threads,
            "preloaded": loaded, "setup_s": imports_s, "build_run_s": build_run_s,
            "speed_input_seconds": signal.size / SAMPLE_RATE}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peak_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="mini", help="config name the adapters list variants for (mini, paper)")
    parser.add_argument("--model", required=True, help="model name (icse, fqse, sednn, crn, tfgridnet)")
    parser.add_argument("--variant", required=True, help="variant name, e.g. 'float Keras' (see python -m benchmarks status)")
    parser.add_argument("--adapter", default=None, help="module:Class of the adapter (default: benchmarks.models)")
    parser.add_argument("--signal", type=Path, default=None,
                        help=".npy input (default: the speed input built from benchmarks/conf/<config>.yaml)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads (default: the harness's: 1 for LiteRT rows, all cores for Keras rows)")
    parser.add_argument("--timing-seconds", type=float, default=None,
                        help="the harness's timing-input length, when the signal is longer (default: its length)")
    args = parser.parse_args(argv)
    try:
        signal = np.load(args.signal) if args.signal is not None else None
        result = measure(args.model, args.variant, args.config, signal, args.threads, args.adapter,
                         timing_seconds=args.timing_seconds)
    except BaseException as error:  # noqa: BLE001 - the parent needs the reason, whatever it is
        traceback.print_exc(file=sys.stderr)
        reason = f"{type(error).__name__}: {str(error)[:400]}"
        print(MARKER + json.dumps({"model": args.model, "variant": args.variant, "peak_mib": None, "error": reason}),
              flush=True)
        return 1
    print(MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
