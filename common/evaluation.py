"""Scoring shared by every reproduction's ``evaluate``: enhance examples, score them, and score folders of pairs.

A recipe supplies its enhancer functions (``noisy (samples,) -> enhanced``), its metrics and its sample rate;
this module reads the pairs, checks them, scores them with :mod:`common.metrics` and saves the rows.

``evaluate --noisy-dir D --clean-dir D`` pairs the files of the two folders by their path relative to the folder
(``data_prep.adapters.paired_folders``) and checks every pair before any model is loaded. A pair is not scored,
and is listed as invalid with its reason, when a file has no partner, is unreadable, empty, silent (exact zeros or
an RMS level below :data:`LEVEL_FLOOR_DBFS`) or holds NaN/Inf, when a file's sample rate differs from the
model's (evaluate never resamples: one rule for every recipe), or when the two lengths differ by more than
:data:`LENGTH_TOLERANCE_SECONDS`. Pairs within the tolerance are cut to the shorter length. Every summary line
counts the invalid pairs beside the averages; when no pair is valid the command fails with the reasons. A
multi-channel file is scored as its channel mean, with one line saying so.

One result layout for every recipe, under ``results/<name>/<run>/scores/``:

* ``<system>.json``: a system's rows and summary on the recipe's own test set (:func:`save_scores`,
  :func:`load_scores`), which the table stage reads;
* ``robustness/<set>/<system>.json``: the rows and summary on each robustness set (:func:`score_robustness`,
  :func:`load_robustness`);
* ``folders/<system>.json``: the rows, summary and invalid pairs of ``evaluate --noisy-dir/--clean-dir``
  (:func:`score_folders`), kept apart so that scoring a folder never replaces the test-set scores of a table.

Every file carries the provenance of ``common.tables`` (run, commit, configuration, package versions, date).
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.audio import LEVEL_FLOOR_DBFS, level_dbfs

# Codec and resampler padding shift a length by a few ms; a larger difference is a cut file or another recording.
LENGTH_TOLERANCE_SECONDS = 0.010
# A summary line stays one readable line; the scores file lists every invalid pair.
LISTED_REASONS = 5
FOLDER_HELP = (
    "--noisy-dir/--clean-dir pair files by their path inside the two folders. A pair is not scored, and is listed "
    f"as invalid with its reason, when a file has no partner, is unreadable, silent (RMS below "
    f"{LEVEL_FLOOR_DBFS:g} dBFS) or holds NaN, when the lengths differ by more than "
    f"{1000 * LENGTH_TOLERANCE_SECONDS:g} ms, or when its sample rate differs from the model's: "
    "evaluate never resamples. A multi-channel file is scored as its channel mean, with one line saying so. "
    "The summary counts the invalid pairs; scores go to RESULTS_DIR/scores/folders/SYSTEM.json. "
    "When no pair is valid the command fails with the reasons."
)

__all__ = [
    "LENGTH_TOLERANCE_SECONDS",
    "LISTED_REASONS",
    "FOLDER_HELP",
    "FolderPair",
    "FolderPairs",
    "silence_problem",
    "check_folders",
    "score_examples",
    "score_folders",
    "summary_line",
    "scores_path",
    "folder_scores_path",
    "save_scores",
    "load_scores",
    "score_robustness",
    "load_robustness",
]


def silence_problem(signal) -> str | None:
    """The reason ``signal`` is too quiet to use, or None."""
    level = level_dbfs(signal)
    if level < LEVEL_FLOOR_DBFS:
        return f"silent (RMS {level:.1f} dBFS, below {LEVEL_FLOOR_DBFS:g} dBFS)"
    return None


@dataclass(frozen=True)
class FolderPair:
    """One noisy/clean pair that passed :func:`check_folders`."""

    name: str
    noisy_path: str
    clean_path: str

    def load(self, sample_rate: int):
        """(noisy, clean) float32 mono, cut to the shorter length."""
        from common.audio import read_audio

        noisy, _ = read_audio(self.noisy_path, sample_rate=sample_rate, resample=False)
        clean, _ = read_audio(self.clean_path, sample_rate=sample_rate, resample=False)
        length = min(noisy.shape[0], clean.shape[0])
        return noisy[:length], clean[:length]


@dataclass
class FolderPairs:
    """The checked pairs of two folders: ``pairs`` to score and ``invalid`` [{name, noisy, clean, reason}]."""

    noisy_dir: str
    clean_dir: str
    sample_rate: int
    pairs: list = field(default_factory=list)
    invalid: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.pairs) + len(self.invalid)


def _file_problem(path: Path, sample_rate: int):
    """(reason or None, samples, notes) for one file of a pair."""
    import soundfile

    from common.audio import read_audio

    try:
        info = soundfile.info(str(path))
    except Exception as error:  # libsndfile raises different types for truncated or non-audio files
        return f"{path}: unreadable or corrupt audio file ({error})".replace("\n", " "), 0, []
    if int(info.samplerate) != int(sample_rate):
        return (f"{path}: sample rate {info.samplerate} Hz, the model runs at {sample_rate} Hz "
                "(evaluate does not resample)"), 0, []
    try:
        signal, _ = read_audio(path, sample_rate=sample_rate, resample=False)
    except ValueError as error:
        return str(error), 0, []
    silent = silence_problem(signal)
    if silent:
        return f"{path}: {silent}", 0, []
    notes = [f"{path}: {info.channels} channels averaged to mono"] if info.channels > 1 else []
    return None, int(signal.shape[0]), notes


def check_folders(noisy_dir, clean_dir, sample_rate: int, max_files: int | None = None) -> FolderPairs:
    """Pair and check the files of two folders (see the module docstring for the rules).

    ``max_files`` keeps the first pairs in name order. Raises ValueError naming the folders when no pair is valid.
    """
    from data_prep.adapters import paired_folders

    if max_files is not None and int(max_files) < 1:
        raise ValueError(f"--max-files must be at least 1, got {max_files}")
    # allow_resample only lets every rate through the header check: the rate rule is applied below, per pair.
    listing = paired_folders(noisy_dir, clean_dir, skip_bad=True, allow_resample=True)
    noisy_root, clean_root = Path(noisy_dir), Path(clean_dir)
    candidates = [(example.meta["name"], Path(example.noisy_path), Path(example.clean_path), None)
                  for example in listing]
    for path, reason in listing.skipped.items:
        path = Path(path)
        in_noisy = path.is_relative_to(noisy_root)
        name = path.relative_to(noisy_root if in_noisy else clean_root).as_posix()
        if reason == "no clean pair":
            reason = f"{path}: no clean partner in {clean_root}"
        elif reason == "no noisy pair":
            reason = f"{path}: no noisy partner in {noisy_root}"
        else:
            reason = f"{path}: {reason}"
        noisy_path = path if in_noisy else noisy_root / name
        clean_path = clean_root / name if in_noisy else path
        candidates.append((name, noisy_path, clean_path, reason))
    candidates.sort(key=lambda candidate: candidate[0])
    if not candidates:
        raise ValueError(f"no audio files in {noisy_root} and {clean_root}")
    if max_files is not None:
        candidates = candidates[: int(max_files)]
    result = FolderPairs(str(noisy_root), str(clean_root), int(sample_rate))
    tolerance = int(round(LENGTH_TOLERANCE_SECONDS * sample_rate))
    for name, noisy_path, clean_path, reason in candidates:
        if reason is None:
            reason, noisy_samples, noisy_notes = _file_problem(noisy_path, sample_rate)
        if reason is None:
            reason, clean_samples, clean_notes = _file_problem(clean_path, sample_rate)
        if reason is None and abs(noisy_samples - clean_samples) > tolerance:
            difference = noisy_samples - clean_samples
            reason = (f"{noisy_path}: {noisy_samples} samples, its clean partner {clean_samples} "
                      f"({1000 * difference / sample_rate:+.1f} ms, tolerance {1000 * LENGTH_TOLERANCE_SECONDS:g} ms)")
        if reason is not None:
            result.invalid.append({"name": name, "noisy": str(noisy_path), "clean": str(clean_path),
                                   "reason": reason})
            continue
        result.notes += noisy_notes + clean_notes
        result.pairs.append(FolderPair(name, str(noisy_path), str(clean_path)))
    if not result.pairs:
        reasons = "; ".join(item["reason"] for item in result.invalid)
        raise ValueError(f"no valid pair in {noisy_root} and {clean_root}: {len(result.invalid)} invalid: {reasons}")
    return result


def score_examples(enhance, examples, metrics, sample_rate: int = 16000, processes: int = 1,
                   score_noisy: bool = False, description: str = "") -> tuple[list, dict]:
    """Enhance every ``(name, noisy, clean)`` of ``examples`` and score it; returns (rows, summary).

    ``enhance`` is a function ``noisy -> enhanced``, a dict ``{name: enhanced}`` of outputs computed before, or None
    to score the noisy input itself. Rows come in the order of ``examples``.
    """
    from tqdm import tqdm

    from common.metrics import evaluate_pairs, summarize

    items = []
    total = len(examples) if hasattr(examples, "__len__") else None
    for name, noisy, clean in tqdm(examples, total=total, desc=f"enhance {description}".strip(), unit="file"):
        if enhance is None:
            enhanced = noisy
        elif isinstance(enhance, dict):
            enhanced = enhance[name]
        else:
            enhanced = enhance(noisy)
        items.append({"name": name, "clean": clean, "noisy": noisy, "enhanced": enhanced})
    rows = evaluate_pairs(items, metrics=metrics, processes=processes, sample_rate=sample_rate,
                          score_noisy=score_noisy, description=f"score {description}".strip())
    return rows, summarize(rows)


def scores_path(results_dir, system: str) -> Path:
    """Where ``system``'s scores on the recipe's test set live."""
    return Path(results_dir) / "scores" / f"{system}.json"


def folder_scores_path(results_dir, system: str) -> Path:
    """Where ``system``'s scores on the folders of ``evaluate --noisy-dir/--clean-dir`` live."""
    return Path(results_dir) / "scores" / "folders" / f"{system}.json"


def save_scores(results_dir, system: str, rows: list, summary: dict, config: dict | None = None,
                run: str | None = None, **fields) -> Path:
    """Write ``system``'s test-set ``rows`` and ``summary`` (and any recipe ``fields``) with their provenance to
    :func:`scores_path`; returns the path."""
    from common.tables import provenance

    path = scores_path(results_dir, system)
    _write_json(path, {"system": system, "source": "test set", **fields, "summary": summary, "rows": rows,
                       "provenance": provenance(config, run)})
    return path


def load_scores(results_dir, system: str) -> dict | None:
    """The document :func:`save_scores` wrote for ``system``, or None when it has not been scored."""
    path = scores_path(results_dir, system)
    return json.loads(path.read_text()) if path.is_file() else None


def summary_line(system: str, summary: dict, total: int, invalid: list, metrics) -> str:
    """``system: <metric> <mean> (noisy <mean>), ...; scored S of T pairs; I invalid: <reasons>`` (the first
    :data:`LISTED_REASONS` reasons)."""
    from common.metrics import METRIC_KEYS

    averages = []
    for metric in metrics:
        for key in METRIC_KEYS[metric]:
            value = summary.get(key)
            if value is None or not value[2]:
                continue
            text = f"{key} {value[0]:.3f}"
            noisy = summary.get(f"noisy_{key}")
            if noisy is not None and noisy[2]:
                text += f" (noisy {noisy[0]:.3f})"
            averages.append(text)
    line = f"{system}: {', '.join(averages) or 'no scores'}; scored {total - len(invalid)} of {total} pairs"
    if invalid:
        line += f"; {len(invalid)} invalid: " + "; ".join(item["reason"] for item in invalid[:LISTED_REASONS])
        if len(invalid) > LISTED_REASONS:
            line += f"; and {len(invalid) - LISTED_REASONS} more"
    return line


def _json_value(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a scores file")


def _write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream, indent=1, default=_json_value)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def score_folders(folder_pairs: FolderPairs, enhancers: dict, metrics, results_dir, processes: int = 1,
                  config: dict | None = None, run: str | None = None, log=print) -> dict:
    """Score every system of ``enhancers`` ({system: noisy -> enhanced}) on the checked pairs.

    Writes ``<results_dir>/scores/<system>.json`` and logs one summary line per system; returns
    {system: document}. Raises ValueError when a system scored no pair (the document is saved first).
    """
    from common.tables import provenance

    rate = folder_pairs.sample_rate
    for note in folder_pairs.notes:
        log(note)
    documents = {}
    for system, enhance in enhancers.items():
        examples = [(pair.name, *pair.load(rate)) for pair in folder_pairs.pairs]
        rows, summary = score_examples(enhance, examples, metrics, rate, processes, score_noisy=True,
                                       description=system)
        invalid = list(folder_pairs.invalid) + [
            {"name": row["name"], "noisy": pair.noisy_path, "clean": pair.clean_path, "reason": row["reason"]}
            for row, pair in zip(rows, folder_pairs.pairs) if not row["valid"]]
        invalid.sort(key=lambda item: item["name"])
        summary.update(pairs=folder_pairs.total, scored=folder_pairs.total - len(invalid), invalid=len(invalid),
                       invalid_reasons=dict(Counter(item["reason"] for item in invalid)))
        document = {"system": system, "noisy_dir": folder_pairs.noisy_dir, "clean_dir": folder_pairs.clean_dir,
                    "sample_rate": rate, "length_tolerance_seconds": LENGTH_TOLERANCE_SECONDS,
                    "summary": summary, "rows": rows, "invalid": invalid, "notes": folder_pairs.notes,
                    "provenance": provenance(config, run)}
        path = folder_scores_path(results_dir, system)
        _write_json(path, document)
        log(summary_line(system, summary, folder_pairs.total, invalid, metrics) + f" -> {path}")
        if summary["scored"] == 0:
            raise ValueError(f"{system}: no pair of {folder_pairs.noisy_dir} could be scored (reasons in {path})")
        documents[system] = document
    return documents


def example_name(example, index: int) -> str:
    """A readable unique name for a lazily mixed example: speaker, noise type, SNR and its index."""
    meta = getattr(example, "meta", {}) or {}
    parts = [str(meta.get(key)) for key in ("speaker", "noise_type") if meta.get(key)]
    if meta.get("snr_db") is not None:
        parts.append(f"{float(meta['snr_db']):+g}dB")
    return "_".join(parts + [f"{index:04d}"])


def loaded_examples(examples):
    """Yield ``(name, noisy, clean)`` for lazy examples (``load() -> (noisy, clean, noise)``)."""
    for index, example in enumerate(examples):
        noisy, clean, _ = example.load()
        yield example_name(example, index), noisy, clean


ROBUSTNESS_METRICS = ("pesq_wb", "stoi", "si_snr")
ROBUSTNESS_COLUMNS = (("pesq_wb", "PESQ WB", 2), ("stoi", "STOI", 3), ("si_snr", "SI-SNR dB", 2))
# A model is level robust when a level row stays this close to the nominal row (PESQ WB).
LEVEL_TOLERANCE_PESQ = 0.05


def _robustness_path(results_dir, set_name: str, system: str) -> Path:
    slug = "".join(char if char.isalnum() or char in "-+." else "_" for char in set_name)
    return Path(results_dir) / "scores" / "robustness" / slug / f"{system}.json"


def score_robustness(enhancers: dict, sets: dict, metrics=ROBUSTNESS_METRICS, sample_rate: int = 16000,
                     processes: int = 1, results_dir=None, score_noisy: bool = True, config: dict | None = None,
                     run: str | None = None) -> dict:
    """Score ``noisy`` (unless ``score_noisy`` is false) and every system of ``enhancers`` ({name: noisy ->
    enhanced}) on every set of ``sets`` ({row name: lazy examples}); returns ``{set: {system: summary}}`` and, with
    ``results_dir``, writes each set's rows to ``<results_dir>/scores/robustness/<set>/<system>.json``."""
    from common.tables import provenance

    scores = {}
    systems = ([("noisy", None)] if score_noisy else []) + list(enhancers.items())
    for index, (set_name, examples) in enumerate(sets.items()):
        items = list(loaded_examples(examples))
        scores[set_name] = {}
        for system, enhance in systems:
            rows, summary = score_examples(enhance, items, metrics, sample_rate=sample_rate, processes=processes,
                                           description=f"{system} on {set_name}")
            scores[set_name][system] = summary
            if results_dir is not None:
                # set_index keeps the rows of the table in the order of the sets.
                _write_json(_robustness_path(results_dir, set_name, system),
                            {"set": set_name, "set_index": index, "system": system, "rows": rows,
                             "summary": summary, "provenance": provenance(config, run)})
    return scores


def load_robustness(results_dir, systems) -> dict:
    """``{set: {system: summary}}`` of the robustness scores :func:`score_robustness` wrote under ``results_dir``
    for ``noisy`` and ``systems``, sets in their scoring order and systems in the order given (noisy first);
    empty when none was scored."""
    root = Path(results_dir) / "scores" / "robustness"
    documents = [json.loads(path.read_text()) for path in sorted(root.glob("*/*.json"))] if root.is_dir() else []
    order = ["noisy"] + [system for system in systems if system != "noisy"]
    documents = [document for document in documents if document["system"] in order]
    documents.sort(key=lambda document: (document.get("set_index", 0), order.index(document["system"])))
    scores = {}
    for document in documents:
        scores.setdefault(document["set"], {})[document["system"]] = document["summary"]
    return scores


def _mean(summary: dict, metric: str) -> float:
    value = summary.get(metric)
    return float(value[0]) if value else float("nan")


def robustness_checks(scores: dict, nominal: dict | None = None) -> dict:
    """The issue's two checks per system: ``beats_noisy`` (every metric above the noisy input on every unseen
    set) and ``level_robust`` (every level set within LEVEL_TOLERANCE_PESQ PESQ WB of ``nominal``, the system's
    summary on the test set at its nominal level, {system: summary})."""
    systems = sorted({system for by_system in scores.values() for system in by_system} - {"noisy"})
    checks = {}
    for system in systems:
        unseen = [name for name in scores if name.startswith("unseen") and system in scores[name]]
        beats = all(_mean(scores[name][system], metric) > _mean(scores[name]["noisy"], metric)
                    for name in unseen for metric in ROBUSTNESS_METRICS if metric in scores[name]["noisy"])
        checks[system] = {"beats_noisy": bool(unseen) and beats}
        if nominal and system in nominal:
            levels = [name for name in scores if name.startswith("test at") and system in scores[name]]
            gaps = [abs(_mean(scores[name][system], "pesq_wb") - _mean(nominal[system], "pesq_wb")) for name in levels]
            checks[system]["level_gap_pesq_wb"] = max(gaps) if gaps else None
            checks[system]["level_robust"] = bool(gaps) and max(gaps) <= LEVEL_TOLERANCE_PESQ
    return checks


def robustness_table(scores: dict, title: str, nominal: dict | None = None):
    """One ``common.tables.ResultTable``: a row per (set, system), the noisy input first, and a note per system
    with the two checks of :func:`robustness_checks`."""
    from common.tables import ResultTable

    table = ResultTable(title, list(ROBUSTNESS_COLUMNS))
    for set_name, by_system in scores.items():
        for system, summary in by_system.items():
            table.add_row(f"{set_name}: {system}", {metric: _mean(summary, metric) for metric, _, _ in ROBUSTNESS_COLUMNS})
    for system, check in robustness_checks(scores, nominal).items():
        text = f"{system}: above the noisy input on every unseen set and metric: {check['beats_noisy']}"
        if "level_robust" in check:
            gap = check["level_gap_pesq_wb"]
            gap_text = "n/a" if gap is None else f"{gap:.3f}"
            text += (f"; level rows within {LEVEL_TOLERANCE_PESQ} PESQ WB of the nominal test row: "
                     f"{check['level_robust']} (largest gap {gap_text})")
        table.notes.append(text)
    return table
