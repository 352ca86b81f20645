"""Speech-enhancement metrics with the exact variants the papers report (numpy, pesq, pystoi, onnxruntime).

PESQ comes in three variants that are NOT comparable with each other (docs/toolchain.md#pesq):
wide-band MOS-LQO (P.862.2, ``pesq`` 'wb'; TF-GridNet upstream, FQSE), narrow-band MOS-LQO (P.862.1, ``pesq`` 'nb') and
raw narrow-band P.862 (sednn's ITU binary and CRN's pypesq), recovered here by inverting the P.862.1 mapping.
SI-SNR is asteroid's (zero-mean, eps 1e-8). DNSMOS runs Microsoft's ``dnsmos_local`` procedure offline on the ONNX
models shipped inside the ``speechmos`` wheel (docs/tfgridnet.md#metric).

A pair that cannot be scored (silent, too short, no utterance found by PESQ, too few frames for STOI) raises
:class:`InvalidPairError` from the single-metric functions and is recorded as ``valid=False`` with the reason by
:func:`evaluate_pairs`; it is never averaged in as a zero.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from common.audio import read_audio, resample

logger = logging.getLogger(__name__)

__all__ = [
    "InvalidPairError",
    "SI_SNR_EPSILON",
    "si_snr",
    "si_snr_improvement",
    "snr",
    "pesq_wb",
    "pesq_nb_mos",
    "pesq_nb_raw",
    "pesq_raw_to_mos_lqo",
    "pesq_mos_lqo_to_raw",
    "stoi",
    "estoi",
    "dnsmos",
    "dnsmos_model_paths",
    "METRICS",
    "METRIC_KEYS",
    "DEFAULT_METRICS",
    "evaluate_pair",
    "evaluate_pairs",
    "summarize",
    "paired_difference",
]

# asteroid losses/sdr.py EPS (docs/fqse.md#training: "zero-mean, EPS 1e-8, 10 log10").
SI_SNR_EPSILON = 1e-8
# P.862.1 mapping constants (docs/toolchain.md#pesq / docs/sednn.md#porting).
_P8621_OFFSET, _P8621_RANGE, _P8621_SLOPE, _P8621_BIAS = 0.999, 4.0, -1.4945, 4.6607
# pystoi returns this value instead of raising when too few non-silent frames remain (docs/toolchain.md#pystoi).
_PYSTOI_INVALID = 1e-5
# dnsmos_local.py: 9.01 s segments, 1 s hop, 16 kHz, polynomial calibration of the P.835 outputs.
_DNSMOS_RATE = 16000
_DNSMOS_INPUT_SECONDS = 9.01
_DNSMOS_POLY_SIG = (-0.08397278, 1.22083953, 0.0052439)
_DNSMOS_POLY_BAK = (-0.13166888, 1.60915514, -0.39604546)
_DNSMOS_POLY_OVRL = (-0.06766283, 1.11546468, 0.04602535)


class InvalidPairError(ValueError):
    """A reference/estimate pair that a metric cannot score; the message is the reason recorded in tables."""


def _pair(reference, estimate, metric: str, same_length: bool = True):
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    for name, signal in (("reference", reference), ("estimate", estimate)):
        if signal.ndim != 1:
            raise ValueError(f"{metric}: {name} must be 1-D, got shape {signal.shape}")
        if signal.size == 0:
            raise InvalidPairError(f"{metric}: empty {name}")
        if not np.isfinite(signal).all():
            raise InvalidPairError(f"{metric}: {name} contains NaN/Inf")
    if same_length and reference.size != estimate.size:
        raise ValueError(
            f"{metric}: reference has {reference.size} samples and estimate {estimate.size}; trim or pad first"
        )
    return reference, estimate


def _require_sound(signal: np.ndarray, name: str, metric: str) -> None:
    if not np.any(signal):
        raise InvalidPairError(f"{metric}: {name} is silent (all zeros)")


# ------------------------------------------------------------------------------------------ SNR family
def si_snr(reference, estimate, eps: float = SI_SNR_EPSILON, zero_mean: bool = True) -> float:
    """Scale-invariant SNR in dB, as asteroid's ``SingleSrcNegSDR('sisdr')`` (sign flipped).

    With zero-mean t and e: s = (<e,t> / (||t||^2 + eps)) t, SI-SNR = 10 log10(||s||^2 / (||e - s||^2 + eps) + eps).
    """
    reference, estimate = _pair(reference, estimate, "si_snr")
    if zero_mean:
        reference = reference - reference.mean()
        estimate = estimate - estimate.mean()
    target = np.dot(estimate, reference) * reference / (np.dot(reference, reference) + eps)
    error = estimate - target
    return float(10.0 * np.log10(np.dot(target, target) / (np.dot(error, error) + eps) + eps))


def si_snr_improvement(reference, estimate, mixture, eps: float = SI_SNR_EPSILON) -> float:
    """SI-SNR(reference, estimate) - SI-SNR(reference, mixture), in dB."""
    return si_snr(reference, estimate, eps) - si_snr(reference, mixture, eps)


def snr(reference, estimate) -> float:
    """10 log10(sum ref^2 / sum (ref - est)^2) in dB, as the CRN author's ``snr`` (+inf for identical signals)."""
    reference, estimate = _pair(reference, estimate, "snr")
    _require_sound(reference, "reference", "snr")
    error = np.sum((reference - estimate) ** 2)
    if error == 0:
        return math.inf
    return float(10.0 * np.log10(np.sum(reference ** 2) / error))


# ----------------------------------------------------------------------------------------------- PESQ
def pesq_raw_to_mos_lqo(raw):
    """P.862.1 mapping: MOS-LQO = 0.999 + 4 / (1 + exp(-1.4945 raw + 4.6607))."""
    raw = np.asarray(raw, dtype=np.float64)
    value = _P8621_OFFSET + _P8621_RANGE / (1.0 + np.exp(_P8621_SLOPE * raw + _P8621_BIAS))
    return float(value) if value.ndim == 0 else value


def pesq_mos_lqo_to_raw(mos_lqo):
    """Inverse P.862.1 mapping: raw = (ln(4 / (MOS - 0.999) - 1) - 4.6607) / -1.4945; MOS-LQO in (0.999, 4.999)."""
    mos = np.asarray(mos_lqo, dtype=np.float64)
    if np.any(mos <= _P8621_OFFSET) or np.any(mos >= _P8621_OFFSET + _P8621_RANGE):
        raise ValueError(f"pesq_mos_lqo_to_raw: MOS-LQO must lie in (0.999, 4.999), got {mos_lqo}")
    value = (np.log(_P8621_RANGE / (mos - _P8621_OFFSET) - 1.0) - _P8621_BIAS) / _P8621_SLOPE
    return float(value) if value.ndim == 0 else value


def _pesq(reference, degraded, sample_rate: int, mode: str, metric: str) -> float:
    from pesq import PesqError, pesq
    from pesq.cypesq import cypesq_error_message

    reference, degraded = _pair(reference, degraded, metric, same_length=False)
    _require_sound(reference, "reference", metric)
    _require_sound(degraded, "estimate", metric)
    if sample_rate not in (8000, 16000):
        raise ValueError(f"{metric}: PESQ needs 8000 or 16000 Hz, got {sample_rate} (resample first)")
    if mode == "wb" and sample_rate != 16000:
        raise ValueError(f"{metric}: wide-band PESQ needs 16000 Hz, got {sample_rate}")
    score = pesq(sample_rate, reference, degraded, mode, on_error=PesqError.RETURN_VALUES)
    if score < 0:  # RETURN_VALUES gives the negative error code instead of raising
        message = cypesq_error_message(int(score))
        message = message.decode() if isinstance(message, bytes) else str(message)
        raise InvalidPairError(f"{metric}: {message}")
    return float(score)


def pesq_wb(ref, deg, sr: int = 16000) -> float:
    """Wide-band PESQ, P.862.2 MOS-LQO (``pesq`` package, mode 'wb', 16 kHz). ``ref``/``deg``/``sr`` as in ``pesq``."""
    return _pesq(ref, deg, sr, "wb", "pesq_wb")


def pesq_nb_mos(ref, deg, sr: int = 16000) -> float:
    """Narrow-band PESQ, P.862.1 MOS-LQO (``pesq`` package, mode 'nb')."""
    return _pesq(ref, deg, sr, "nb", "pesq_nb_mos")


def pesq_nb_raw(ref, deg, sr: int = 16000) -> float:
    """Raw narrow-band P.862 score (what sednn's ITU binary ``+16000`` and CRN's pypesq report), obtained by
    inverting the P.862.1 mapping of :func:`pesq_nb_mos`."""
    return pesq_mos_lqo_to_raw(_pesq(ref, deg, sr, "nb", "pesq_nb_raw"))


# ----------------------------------------------------------------------------------------------- STOI
def _stoi(reference, degraded, sample_rate: int, extended: bool, metric: str) -> float:
    from pystoi import stoi as pystoi_stoi

    reference, degraded = _pair(reference, degraded, metric)
    _require_sound(reference, "reference", metric)
    _require_sound(degraded, "estimate", metric)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "Not enough STFT frames" warning is turned into the reason below
        score = float(pystoi_stoi(reference, degraded, sample_rate, extended=extended))
    if score == _PYSTOI_INVALID:
        raise InvalidPairError(f"{metric}: not enough non-silent frames (pystoi returned 1e-5)")
    return score


def stoi(ref, deg, sr: int = 16000) -> float:
    """STOI (pystoi, ``extended=False``; pystoi resamples to 10 kHz internally)."""
    return _stoi(ref, deg, sr, False, "stoi")


def estoi(ref, deg, sr: int = 16000) -> float:
    """Extended STOI (pystoi, ``extended=True``)."""
    return _stoi(ref, deg, sr, True, "estoi")


# --------------------------------------------------------------------------------------------- DNSMOS
def dnsmos_model_paths() -> tuple[Path, Path]:
    """(P.835 ``sig_bak_ovr.onnx``, P.808 ``model_v8.onnx``) inside the installed speechmos wheel (no network)."""
    import importlib.util

    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("dnsmos: the speechmos package is not installed (pip install speechmos==0.0.1.1)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models"
    primary, p808 = folder / "sig_bak_ovr.onnx", folder / "model_v8.onnx"
    for path in (primary, p808):
        if not path.is_file():
            raise ValueError(f"dnsmos: {path} is missing from the speechmos wheel")
    return primary, p808


@lru_cache(maxsize=1)
def _dnsmos_sessions():
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # one thread per session: evaluate_pairs already runs one process per core
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    primary, p808 = dnsmos_model_paths()
    providers = ["CPUExecutionProvider"]
    return (
        onnxruntime.InferenceSession(str(primary), options, providers=providers),
        onnxruntime.InferenceSession(str(p808), options, providers=providers),
    )


def _hz_to_mel_slaney(frequencies):
    frequencies = np.asarray(frequencies, dtype=np.float64)
    linear_step = 200.0 / 3
    min_log_hz, log_step = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / linear_step
    mels = frequencies / linear_step
    log_region = frequencies >= min_log_hz
    mels = np.where(log_region, min_log_mel + np.log(np.maximum(frequencies, min_log_hz) / min_log_hz) / log_step, mels)
    return mels


def _mel_to_hz_slaney(mels):
    mels = np.asarray(mels, dtype=np.float64)
    linear_step = 200.0 / 3
    min_log_hz, log_step = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / linear_step
    frequencies = linear_step * mels
    log_region = mels >= min_log_mel
    return np.where(log_region, min_log_hz * np.exp(log_step * (mels - min_log_mel)), frequencies)


@lru_cache(maxsize=4)
def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    # librosa.filters.mel(sr, n_fft, n_mels) defaults: fmin 0, fmax sr/2, Slaney mel scale, Slaney area norm,
    # float32; written out in numpy because librosa's version costs seconds of numba compilation per process.
    fft_frequencies = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_edges = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(0.0), _hz_to_mel_slaney(sample_rate / 2.0), n_mels + 2))
    edge_differences = np.diff(mel_edges)
    ramps = np.subtract.outer(mel_edges, fft_frequencies)
    weights = np.zeros((n_mels, fft_frequencies.size), dtype=np.float32)
    for index in range(n_mels):
        lower = -ramps[index] / edge_differences[index]
        upper = ramps[index + 2] / edge_differences[index + 1]
        weights[index] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_edges[2:n_mels + 2] - mel_edges[:n_mels]))[:, np.newaxis]
    return weights


def _dnsmos_p808_features(segment: np.ndarray) -> np.ndarray:
    """(power_to_db(melspectrogram(segment, sr=16000, n_fft=321, hop_length=160, n_mels=120), ref=np.max) + 40) / 40,
    transposed to (frames, 120), as librosa 0.11 computes it (centred, zero padded, periodic Hann, power 2)."""
    n_fft, hop = 321, 160
    segment = np.asarray(segment, dtype=np.float32)
    padded = np.pad(segment, (n_fft // 2, n_fft // 2), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=1).astype(np.complex64)) ** 2
    mel = _mel_filterbank(_DNSMOS_RATE, n_fft, 120) @ power.T
    amin, top_db = 1e-10, 80.0
    decibels = 10.0 * np.log10(np.maximum(amin, mel)) - 10.0 * np.log10(np.maximum(amin, mel.max()))
    decibels = np.maximum(decibels, decibels.max() - top_db)
    return ((decibels + 40) / 40).T


def dnsmos(signal, sr: int = 16000) -> dict:
    """DNSMOS P.835 (SIG, BAK, OVRL, polynomial-calibrated, not personalised) and P.808 of one signal.

    Microsoft's ``dnsmos_local.py`` procedure (also speechmos' ``dnsmos.run``): resample to 16 kHz (here with
    :func:`common.audio.resample`, polyphase; dnsmos_local loads with librosa's resampler), repeat the
    audio until it lasts 9.01 s, score 9.01-s segments with a 1-s hop and average. The P.808 model sees
    ``(power_to_db(melspec(segment[:-160], n_fft=321, hop=160, n_mels=120), ref=max) + 40) / 40``.

    Returns:
        dict(sig, bak, ovrl, p808) of floats.
    """
    audio = np.asarray(signal, dtype=np.float64)
    if audio.ndim != 1:
        raise ValueError(f"dnsmos: expected a 1-D signal, got shape {audio.shape}")
    if audio.size == 0 or not np.isfinite(audio).all():
        raise InvalidPairError("dnsmos: empty signal or NaN/Inf samples")
    if not np.any(audio):
        raise InvalidPairError("dnsmos: signal is silent (all zeros)")
    if int(sr) != _DNSMOS_RATE:
        audio = resample(audio, int(sr), _DNSMOS_RATE).astype(np.float64)
    audio = audio.astype(np.float32)
    segment_length = int(_DNSMOS_INPUT_SECONDS * _DNSMOS_RATE)
    while audio.size < segment_length:
        audio = np.append(audio, audio)
    num_hops = int(np.floor(audio.size / _DNSMOS_RATE) - _DNSMOS_INPUT_SECONDS) + 1
    primary, p808 = _dnsmos_sessions()
    scores = {"sig": [], "bak": [], "ovrl": [], "p808": []}
    for hop in range(num_hops):
        segment = audio[int(hop * _DNSMOS_RATE): int((hop + _DNSMOS_INPUT_SECONDS) * _DNSMOS_RATE)]
        if segment.size < segment_length:
            continue
        p808_input = _dnsmos_p808_features(segment[:-160]).astype(np.float32)[np.newaxis]
        scores["p808"].append(float(p808.run(None, {"input_1": p808_input})[0][0][0]))
        sig_raw, bak_raw, ovrl_raw = primary.run(None, {"input_1": segment[np.newaxis].astype(np.float32)})[0][0]
        scores["sig"].append(float(np.poly1d(_DNSMOS_POLY_SIG)(sig_raw)))
        scores["bak"].append(float(np.poly1d(_DNSMOS_POLY_BAK)(bak_raw)))
        scores["ovrl"].append(float(np.poly1d(_DNSMOS_POLY_OVRL)(ovrl_raw)))
    return {key: float(np.mean(values)) for key, values in scores.items()}


# ------------------------------------------------------------------------------------ pair evaluation
def _metric_pesq_wb(clean, enhanced, noisy, rate):
    return {"pesq_wb": pesq_wb(clean, enhanced, rate)}


def _metric_pesq_nb_mos(clean, enhanced, noisy, rate):
    return {"pesq_nb_mos": pesq_nb_mos(clean, enhanced, rate)}


def _metric_pesq_nb_raw(clean, enhanced, noisy, rate):
    return {"pesq_nb_raw": pesq_nb_raw(clean, enhanced, rate)}


def _metric_stoi(clean, enhanced, noisy, rate):
    return {"stoi": stoi(clean, enhanced, rate)}


def _metric_estoi(clean, enhanced, noisy, rate):
    return {"estoi": estoi(clean, enhanced, rate)}


def _metric_si_snr(clean, enhanced, noisy, rate):
    return {"si_snr": si_snr(clean, enhanced)}


def _metric_si_snr_improvement(clean, enhanced, noisy, rate):
    if noisy is None:
        raise InvalidPairError("si_snr_improvement: the pair has no noisy signal")
    return {"si_snr_improvement": si_snr_improvement(clean, enhanced, noisy)}


def _metric_snr(clean, enhanced, noisy, rate):
    return {"snr": snr(clean, enhanced)}


def _metric_dnsmos(clean, enhanced, noisy, rate):
    return {f"dnsmos_{key}": value for key, value in dnsmos(enhanced, rate).items()}


# metric name -> function(clean, enhanced, noisy, sample_rate) -> dict of named values
METRICS = {
    "pesq_wb": _metric_pesq_wb,
    "pesq_nb_mos": _metric_pesq_nb_mos,
    "pesq_nb_raw": _metric_pesq_nb_raw,
    "stoi": _metric_stoi,
    "estoi": _metric_estoi,
    "si_snr": _metric_si_snr,
    "si_snr_improvement": _metric_si_snr_improvement,
    "snr": _metric_snr,
    "dnsmos": _metric_dnsmos,
}
# the row keys each metric fills (None when it fails)
METRIC_KEYS = {name: (name,) for name in METRICS}
METRIC_KEYS["dnsmos"] = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
DEFAULT_METRICS = ("pesq_wb", "stoi", "si_snr")
_RESERVED_KEYS = {"name", "valid", "reason", "length_difference"}


def _load(item, sample_rate: int, role: str, name: str):
    if item is None:
        return None
    if isinstance(item, (str, Path)):
        signal, _ = read_audio(item, sample_rate=sample_rate, mono=True, resample=True)
        return signal.astype(np.float64)
    signal = np.asarray(item, dtype=np.float64)
    if signal.ndim != 1:
        raise ValueError(f"{name}: {role} must be a 1-D signal, got shape {signal.shape}")
    if signal.size == 0:
        raise InvalidPairError(f"{name}: {role} is empty")
    if not np.isfinite(signal).all():
        raise InvalidPairError(f"{name}: {role} contains NaN/Inf")
    if not np.any(signal):
        raise InvalidPairError(f"{name}: {role} is silent (all zeros)")
    return signal


def _match_length(signal: np.ndarray, length: int) -> np.ndarray:
    if signal.size >= length:
        return signal[:length]
    return np.pad(signal, (0, length - signal.size))


def evaluate_pair(pair: dict, metrics=DEFAULT_METRICS, sample_rate: int = 16000, score_noisy: bool = False) -> dict:
    """Score one pair; never raises for bad audio.

    Args:
        pair: dict(clean=path|array, enhanced=path|array, noisy=optional path|array, name=optional str,
            sample_rate=optional int for arrays). Files are read (and resampled) at ``sample_rate``.
        metrics: names from :data:`METRICS`.
        score_noisy: also score the noisy signal against the clean one, stored as ``noisy_<metric>``.

    The enhanced (and noisy) signal is scored over the clean signal's length: longer outputs are cut, shorter ones
    zero-padded, and ``length_difference`` (enhanced - clean samples) is recorded.

    Returns:
        dict(name, valid, reason, length_difference, <metric values>). A metric that cannot be computed makes the
        row invalid (``valid=False``, ``reason`` lists every failure) and its value is None; the others are kept.
    """
    unknown = [metric for metric in metrics if metric not in METRICS]
    if unknown:
        raise ValueError(f"evaluate_pair: unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    name = pair.get("name")
    if not name:
        name = str(pair["enhanced"]) if isinstance(pair.get("enhanced"), (str, Path)) else "pair"
    row = {"name": str(name), "valid": True, "reason": "", "length_difference": 0}
    rate = int(pair.get("sample_rate", sample_rate))
    try:
        clean = _load(pair.get("clean"), rate, "clean", name)
        enhanced = _load(pair.get("enhanced"), rate, "enhanced", name)
        noisy = _load(pair.get("noisy"), rate, "noisy", name)
        if clean is None or enhanced is None:
            raise InvalidPairError(f"{name}: the pair needs both 'clean' and 'enhanced'")
    except ValueError as error:
        row.update(valid=False, reason=str(error))
        for metric in metrics:
            row.update(dict.fromkeys(METRIC_KEYS[metric]))
        return row
    row["length_difference"] = int(enhanced.size - clean.size)
    enhanced = _match_length(enhanced, clean.size)
    if noisy is not None:
        noisy = _match_length(noisy, clean.size)
    reasons = []
    candidates = [("", enhanced)]
    if score_noisy and noisy is not None:
        candidates.append(("noisy_", noisy))
    for prefix, signal in candidates:
        for metric in metrics:
            if prefix and metric == "si_snr_improvement":
                continue  # the noisy signal's improvement over itself is zero by definition
            try:
                values = METRICS[metric](clean, signal, noisy, rate)
            except ValueError as error:
                reasons.append(prefix + str(error))
                values = dict.fromkeys(METRIC_KEYS[metric])
            except Exception as error:  # a metric library failing on odd audio must not stop a whole evaluation
                reasons.append(f"{prefix}{metric}: {type(error).__name__}: {error}")
                values = dict.fromkeys(METRIC_KEYS[metric])
            row.update({prefix + key: value for key, value in values.items()})
    if reasons:
        row.update(valid=False, reason="; ".join(reasons))
    return row


def _evaluate_task(arguments):
    pair, metrics, sample_rate, score_noisy = arguments
    return evaluate_pair(pair, metrics, sample_rate, score_noisy)


def evaluate_pairs(pairs, metrics=DEFAULT_METRICS, processes: int = 2, sample_rate: int = 16000,
                   score_noisy: bool = False, progress: bool = True, description: str = "evaluate") -> list[dict]:
    """Score a list of pairs (see :func:`evaluate_pair`) on ``processes`` worker processes with a tqdm bar.

    Workers are started with the 'spawn' method so that a parent that has TensorFlow loaded is never forked.
    Rows come back in the order of ``pairs``.
    """
    from tqdm import tqdm

    pairs = list(pairs)
    metrics = tuple(metrics)
    unknown = [metric for metric in metrics if metric not in METRICS]
    if unknown:
        raise ValueError(f"evaluate_pairs: unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    tasks = [(pair, metrics, sample_rate, score_noisy) for pair in pairs]
    bar = dict(total=len(tasks), desc=description, disable=not progress, unit="pair")
    if processes <= 1 or len(tasks) <= 1:
        return [_evaluate_task(task) for task in tqdm(tasks, **bar)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(processes, len(tasks)), mp_context=context) as executor:
        return list(tqdm(executor.map(_evaluate_task, tasks, chunksize=1), **bar))


def summarize(rows) -> dict:
    """Per metric (mean, std (ddof=0, as sednn's np.std), count) over the rows where it was computed, plus
    ``invalid`` (number of rows with valid=False) and ``invalid_reasons`` (reason -> count)."""
    rows = list(rows)
    values: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key in _RESERVED_KEYS:
                continue
            if value is None:
                values.setdefault(key, [])
                continue
            if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
                if not math.isnan(float(value)):
                    values.setdefault(key, []).append(float(value))
    summary = {}
    for key, collected in values.items():
        if collected:
            array = np.asarray(collected)
            summary[key] = (float(np.mean(array)), float(np.std(array)), int(array.size))
        else:
            summary[key] = (math.nan, math.nan, 0)
    invalid_rows = [row for row in rows if not row.get("valid", True)]
    summary["invalid"] = len(invalid_rows)
    summary["invalid_reasons"] = dict(Counter(row.get("reason", "") for row in invalid_rows))
    return summary


def paired_difference(candidate, baseline, confidence: float = 0.95) -> dict:
    """Mean of ``candidate - baseline`` over paired scores (the same test items) and the half-width of its
    Student-t confidence interval: ``{"mean", "half_width", "count"}``.

    With the few test utterances of a mini configuration a table cell moves by a few STOI points from one item to
    the next; the interval says whether "beats unprocessed" is more than that. ``half_width`` is NaN for fewer than
    two pairs.
    """
    from scipy.stats import t as student_t

    candidate = np.asarray(candidate, dtype=np.float64)
    baseline = np.asarray(baseline, dtype=np.float64)
    if candidate.shape != baseline.shape or candidate.ndim != 1:
        raise ValueError(f"paired scores must be two 1-D arrays of one length, got shapes {candidate.shape} and "
                         f"{baseline.shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    differences = candidate - baseline
    count = int(differences.size)
    if count == 0:
        return {"mean": math.nan, "half_width": math.nan, "count": 0}
    mean = float(np.mean(differences))
    if count < 2:
        return {"mean": mean, "half_width": math.nan, "count": count}
    standard_error = float(np.std(differences, ddof=1)) / math.sqrt(count)
    half_width = float(student_t.ppf(0.5 + confidence / 2.0, count - 1)) * standard_error
    return {"mean": mean, "half_width": half_width, "count": count}
