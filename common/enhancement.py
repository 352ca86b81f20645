"""The ``enhance`` command of every reproduction, and chunked inference for models that see the whole file.

A recipe supplies its model's sample rate and a function that loads the model and returns
``enhance(noisy float32 (samples,)) -> enhanced (samples,)``; :func:`run_enhancement` does everything else:

1. list the jobs (:func:`common.cli.enhancement_jobs`) and check every output location before any model is
   loaded: the output is not the input (for folders: neither folder inside the other) unless ``--overwrite``,
   the extension is one soundfile writes, the output file is not a folder, a file can be created where it goes;
2. check every input (readable, finite, above the level floor, the asked channel exists); in a folder a bad
   file is skipped with one line naming it and the reason;
3. load the model, then enhance each file at the model's rate (other rates are resampled) and write it at that
   rate through a temporary file, printing one line per change made to the input;
4. end with a ``ValueError`` counting the files not enhanced, so the command exits non-zero.

:func:`chunked` runs a non-streaming model over a long input in fixed-size windows (:func:`overlap_discard`), so
that memory stays bounded whatever the file length.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from common.audio import LEVEL_FLOOR_DBFS, check_writable, read_input, write_audio

# Samples kept per window of :func:`chunked`: a window's activations stay a small part of the memory of a long run.
CHUNK_SECONDS = 4.0
# Samples added on each side of a window and discarded: longer than the receptive field of the convolutional
# models, and long enough that a whole-window normalisation (instance norm, gLN) sees representative statistics.
CONTEXT_SECONDS = 0.5
# Inputs up to this length run whole, as the models were evaluated: every test utterance of the embedded corpus
# is shorter, so the recipes' scores do not depend on the windows.
WHOLE_SECONDS = 12.0

__all__ = ["CHUNK_SECONDS", "CONTEXT_SECONDS", "WHOLE_SECONDS", "check_destination", "chunked", "fit_length",
           "overlap_discard", "run_enhancement"]


def fit_length(signal, length: int) -> np.ndarray:
    """``signal`` cut or zero-padded to ``length`` samples, float32."""
    signal = np.asarray(signal, np.float32).reshape(-1)
    if signal.shape[0] >= length:
        return signal[:length]
    return np.pad(signal, (0, length - signal.shape[0]))


def overlap_discard(enhance, signal, chunk: int, context: int, window_length: int | None = None) -> np.ndarray:
    """Run ``enhance`` over ``signal`` in windows of ``chunk`` samples plus ``context`` on each side.

    Each window's output is cut to its central ``chunk`` samples (overlap-discard), so the result equals the
    whole-signal output wherever the model's receptive field reaches less than ``context`` samples to either
    side. A signal no longer than one window is passed to ``enhance`` whole and its output returned unchanged.

    Args:
        enhance: ``(samples,) float32 -> (samples',)``; an output of another length is cut or zero-padded.
        signal: (samples,).
        chunk: samples kept per window (> 0).
        context: samples added and discarded on each side (>= 0).
        window_length: for a model with one input length: every window gets exactly this many samples
            (>= ``chunk + 2 * context``), the windows at the ends moved inward instead of shortened.
    """
    signal = np.asarray(signal, np.float32)
    chunk, context = int(chunk), int(context)
    if chunk <= 0 or context < 0:
        raise ValueError(f"overlap_discard: chunk must be > 0 and context >= 0, got chunk={chunk} context={context}")
    if window_length is not None and int(window_length) < chunk + 2 * context:
        raise ValueError(f"overlap_discard: window_length {window_length} is shorter than chunk + 2 x context "
                         f"({chunk + 2 * context})")
    length = signal.shape[0]
    if length <= chunk + 2 * context:
        return enhance(signal)
    output = np.empty(length, np.float32)
    for start in range(0, length, chunk):
        stop = min(start + chunk, length)
        left, right = max(0, start - context), min(length, stop + context)
        if window_length is not None and length >= int(window_length):
            left = min(left, length - int(window_length))
            right = left + int(window_length)
        window = fit_length(enhance(signal[left:right]), right - left)
        output[start:stop] = window[start - left: stop - left]
    return output


def chunked(enhance, sample_rate: int, chunk_seconds: float = CHUNK_SECONDS,
            context_seconds: float = CONTEXT_SECONDS, whole_seconds: float = WHOLE_SECONDS,
            window_length: int | None = None):
    """``enhance`` run whole on inputs up to ``whole_seconds``, through :func:`overlap_discard` on longer ones
    (windows given in seconds at ``sample_rate``), so that memory stays bounded whatever the input length.
    ``window_length``: for a model with one input length, every window has exactly that many samples and keeps
    its central ``window_length - 2 x context`` (``chunk_seconds`` is then not used)."""
    context = int(round(context_seconds * sample_rate))
    chunk = int(round(chunk_seconds * sample_rate)) if window_length is None else int(window_length) - 2 * context
    whole = int(round(whole_seconds * sample_rate))

    def run(signal):
        signal = np.asarray(signal, np.float32)
        if signal.shape[0] <= whole:
            return enhance(signal)
        return overlap_discard(enhance, signal, chunk, context, window_length=window_length)

    return run


def _checked_level(level, where: str = "inference.level_dbfs"):
    if level is not None and (isinstance(level, bool) or not isinstance(level, (int, float))
                              or not -80.0 <= float(level) <= 0.0):
        raise ValueError(f"{where} must be null or a number in [-80, 0] dBFS, got {level!r}")
    return None if level is None else float(level)


def inference_level(config: dict):
    """``inference.level_dbfs`` of a configuration, checked (None where the section or the key is absent)."""
    where = config.get("config_path") or config.get("config_name") or "config"
    inference = config.get("inference") or {}
    if not isinstance(inference, dict):
        raise ValueError(f"{where}: inference must be a mapping with level_dbfs, got {inference!r}")
    return _checked_level(inference.get("level_dbfs"), f"{where}: inference.level_dbfs")


def level_gain(signal, level_dbfs: float | None) -> float:
    """The gain that puts ``signal`` at ``level_dbfs`` RMS, lowered where its peak would pass 0.999; 1 for a
    level of None or a silent signal."""
    signal = np.asarray(signal, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if signal.size else 0.0
    if level_dbfs is None or rms == 0.0:
        return 1.0
    return min(10.0 ** (float(level_dbfs) / 20.0) / rms, 0.999 / float(np.max(np.abs(signal))))


def least_squares_gain(reference, estimate) -> float:
    """``g`` minimising ``||reference - g estimate||``: ``<reference, estimate> / <estimate, estimate>`` over the
    common length (1 for a silent estimate)."""
    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    estimate = np.asarray(estimate, dtype=np.float64).reshape(-1)
    length = min(reference.size, estimate.size)
    energy = float(np.dot(estimate[:length], estimate[:length]))
    return float(np.dot(reference[:length], estimate[:length])) / energy if energy > 0.0 else 1.0


def level_normalized(enhance, level_dbfs: float | None):
    """Level-robust inference: scale the input to ``level_dbfs`` RMS, enhance, fit the output to the scaled input
    by its least-squares gain, and scale it back by the inverse input gain, so that the same recording gives the
    same result at any level. ``level_dbfs`` None returns ``enhance`` unchanged (paper configurations keep their
    paper's protocol). The input gain is lowered where the scaled input's peak would pass 0.999, as in training. A
    silent input (RMS 0) is passed through as it is.

    The least-squares gain ``<x, y> / <y, y>`` puts an output ``y`` close to the speech ``s`` of the input ``x = s +
    n`` at the level and polarity ``s`` has in the input (the noise is uncorrelated with ``s``): a model trained on
    SI-SNR fixes neither, and its raw output can be several times louder than the recording and clip when
    written. The metrics the recipes score are unchanged by it (SI-SNR, STOI and PESQ ignore the output gain)."""
    target = _checked_level(level_dbfs)
    if target is None:
        return enhance

    def run(noisy):
        noisy = np.asarray(noisy, dtype=np.float32)
        gain = level_gain(noisy, target)
        scaled = (noisy * gain).astype(np.float32)
        enhanced = np.asarray(enhance(scaled), dtype=np.float32)
        return (enhanced * (least_squares_gain(scaled, enhanced) / gain)).astype(np.float32)

    return run


def configured_enhancer(config: dict, enhance):
    """``enhance`` at the configuration's ``inference.level_dbfs`` (:func:`level_normalized`)."""
    return level_normalized(enhance, inference_level(config))


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_destination(source, destination, jobs, overwrite: bool = False) -> None:
    """Refuse an ``enhance IN OUT`` whose outputs would replace its inputs or cannot be written.

    Raises:
        ValueError: naming the path for OUT == IN (a file), OUT and IN folders inside one another (unless
            ``overwrite``), a folder input with a file output, and any output :func:`check_writable` refuses.
    """
    source, destination = Path(source), Path(destination)
    resolved_source, resolved_destination = source.resolve(), destination.resolve()
    if source.is_dir():
        if destination.exists() and not destination.is_dir():
            raise ValueError(f"{destination}: is a file; the output of a folder input is a folder")
        if not overwrite and (_inside(resolved_destination, resolved_source)
                              or _inside(resolved_source, resolved_destination)):
            relation = ("is the input folder" if resolved_destination == resolved_source else
                        "is inside the input folder" if _inside(resolved_destination, resolved_source) else
                        "contains the input folder")
            raise ValueError(f"{destination}: the output folder {relation} {source}; choose another output "
                             "folder, or pass --overwrite to write there anyway")
    elif not overwrite and (resolved_destination == resolved_source
                            or (destination.is_file() and os.path.samefile(source, destination))):
        raise ValueError(f"{destination}: the output is the input file; choose another output path, or pass "
                         "--overwrite to replace it")
    checked = set()
    for _, target in jobs:
        if target.is_dir():
            raise ValueError(f"{target}: is a folder, not an output file path")
        key = (target.parent, target.suffix.lower())
        if key not in checked:
            check_writable(target)
            checked.add(key)


def _describe_loading_error(args, error) -> ValueError:
    checkpoint = getattr(args, "checkpoint", None)
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return ValueError(f"{checkpoint}: cannot load the model from this file ({type(error).__name__}: {first_line})")


def run_enhancement(args, sample_rate: int, load_enhancer, out=None) -> int:
    """``enhance IN OUT`` with the model that ``load_enhancer()`` returns; the number of files enhanced.

    Args:
        args: parsed command line (``input``, ``output``, ``overwrite``, ``channel``, ``checkpoint``).
        sample_rate: the model's rate (the configuration's): inputs are resampled to it, outputs written at it.
        load_enhancer: called once, after every check passed: returns ``noisy (samples,) -> enhanced``.
        out: stream for the per-file lines (default stdout); skipped files go to stderr.

    Raises:
        ValueError: a refused destination (before anything is loaded), a single-file input that cannot be
            enhanced, or, at the end of a folder job, the count of files not enhanced.
    """
    from common.cli import enhancement_jobs

    out = out or sys.stdout
    source, destination = Path(args.input), Path(args.output)
    channel = getattr(args, "channel", None)
    jobs = enhancement_jobs(source, destination)
    check_destination(source, destination, jobs, overwrite=bool(getattr(args, "overwrite", False)))
    failures = []

    def skip(path, error):
        """A folder job goes on past a bad file; a single-file job stops with its error."""
        if not source.is_dir():
            raise error
        print(f"skipped: {error}", file=sys.stderr, flush=True)
        failures.append(path)

    ready = []
    for path, target in jobs:
        try:
            read_input(path, None, channel=channel, level_floor_dbfs=LEVEL_FLOOR_DBFS)
        except ValueError as error:
            skip(path, error)
            continue
        ready.append((path, target))
    if not ready:
        raise ValueError(f"{source}: none of its {len(jobs)} .wav file(s) can be enhanced (reasons above)")
    try:
        enhance = load_enhancer()
    except (ValueError, FileNotFoundError):
        raise
    except Exception as error:  # h5py, TensorFlow and the TFLite runtime each raise their own type for a bad file
        if getattr(args, "checkpoint", None) is None:
            raise
        raise _describe_loading_error(args, error) from error
    for path, target in ready:
        try:
            noisy, notices = read_input(path, sample_rate, channel=channel)
            enhanced = np.asarray(enhance(noisy), np.float32).reshape(-1)
            if enhanced.shape[0] != noisy.shape[0]:
                notices.append(f"the model returned {enhanced.shape[0]} samples for {noisy.shape[0]}: cut or "
                               "zero-padded to the input's length")
                enhanced = fit_length(enhanced, noisy.shape[0])
            if not np.isfinite(enhanced).all():
                raise ValueError(f"{path}: the model's output contains NaN/Inf; nothing written")
            over = int(np.count_nonzero(np.abs(enhanced) > 1.0))
            if over:
                notices.append(f"{over} enhanced sample(s) beyond +-1 clipped to full scale in the output")
            for notice in notices:
                print(f"{path}: {notice}", file=out, flush=True)
            write_audio(target, np.clip(enhanced, -1.0, 1.0, out=enhanced), sample_rate)
        except ValueError as error:
            skip(path, error)
            continue
        print(f"{path} -> {target}", file=out, flush=True)
    if failures:
        raise ValueError(f"{source}: {len(failures)} of {len(jobs)} file(s) not enhanced (each named above), "
                         f"{len(jobs) - len(failures)} written under {destination}")
    return len(ready)
