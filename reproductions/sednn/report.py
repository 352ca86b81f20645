"""sednn's result tables and figures: the per-noise table, the compression and robustness tables, the spectrograms.

``evaluate.py get_stats`` groups the per-file PESQ by noise type, prints ``mean +- std`` per noise (numpy
``std``, ddof 0) and an ``Avg.`` row that is the mean of the per-noise means ± the mean of the per-noise stds (not
the pooled std) (``docs/sednn.md#metric``). The column widths are the code's
``"{0:<16} {1:<16}"``; the header is the README's ``Noise(<snr>dB)``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.figures import pyplot, save_figure
from reproductions.sednn.data import snr_text

COLUMN_FORMAT = "{0:<16} {1:<16}"
RULE = "-" * 33

# sednn README, full data (TIMIT 4620 train / 115 noises, 168 test utterances, NOISEX-92, 0 dB, 10 000
# iterations), reference 1.10. Row order as printed there.
PAPER_FULL_DATA = (
    ("pink", 2.01, 0.23), ("buccaneer1", 1.88, 0.25), ("factory2", 2.21, 0.21), ("hfchannel", 1.63, 0.24),
    ("factory1", 1.93, 0.23), ("babble", 1.81, 0.28), ("m109", 2.13, 0.25), ("leopard", 2.49, 0.23),
    ("volvo", 2.83, 0.23), ("buccaneer2", 2.03, 0.25), ("white", 2.00, 0.21), ("f16", 1.86, 0.24),
    ("destroyerops", 1.99, 0.23), ("destroyerengine", 1.86, 0.23), ("machinegun", 2.55, 0.27),
)
PAPER_AVERAGE = (2.08, 0.24)

METRIC_HEADERS = {
    "pesq_nb_raw": "PESQ (raw NB, P.862)",
    "pesq_nb_mos": "PESQ (NB MOS-LQO, P.862.1)",
    "pesq_wb": "PESQ (WB, P.862.2)",
    "stoi": "STOI",
    "si_snr": "SI-SNR (dB)",
}
# The noisy input's columns beside the model's in the per-noise table.
NOISY_COLUMNS = (("noisy_pesq_nb_raw", "Noisy PESQ (raw NB)"), ("noisy_pesq_wb", "Noisy PESQ (WB)"),
                 ("noisy_stoi", "Noisy STOI"), ("noisy_si_snr", "Noisy SI-SNR (dB)"))
# The project's enhancement checks for a magnitude model with the noisy phase (mini configuration): the model's
# average minus the noisy input's must reach these.
ENHANCEMENT_TARGETS = {"si_snr": 3.0, "pesq_wb": 0.25, "stoi": 0.02}

# sednn README, mini data (4 TIMIT train utterances, 2 test, noises n64/n71, 0 dB), reference 1.10.
PAPER_MINI_DATA = (("n64", 1.36, 0.05), ("n71", 1.35, 0.18))
PAPER_MINI_AVERAGE = (1.35, 0.12)


def per_noise_statistics(rows, metric: str = "pesq_nb_raw") -> dict:
    """``{noise_type: (mean, std, count)}`` over rows with ``noise_type`` and a finite ``metric`` value.

    Rows are the per-file dicts written by the evaluation; noise types keep their first-seen order.
    """
    grouped = {}
    for row in rows:
        value = row.get(metric)
        if value is None or not np.isfinite(value):
            continue
        grouped.setdefault(row["noise_type"], []).append(float(value))
    return {noise: (float(np.mean(values)), float(np.std(values)), len(values)) for noise, values in grouped.items()}


def average_row(statistics: dict) -> tuple:
    """sednn's ``Avg.``: mean of the per-noise means, mean of the per-noise stds."""
    if not statistics:
        raise ValueError("no scored files: every PESQ computation failed or the test set is empty")
    means = [mean for mean, _, _ in statistics.values()]
    stds = [std for _, std, _ in statistics.values()]
    return float(np.mean(means)), float(np.mean(stds))


def format_sednn_table(statistics: dict, snr_db: float) -> list:
    """The table as sednn prints it, one string per line."""
    lines = [COLUMN_FORMAT.format(f"Noise({snr_text(snr_db)}dB)", "PESQ").rstrip(), RULE]
    for noise, (mean, std, _) in statistics.items():
        lines.append(COLUMN_FORMAT.format(noise, "%.2f +- %.2f" % (mean, std)).rstrip())
    lines.append(RULE)
    mean, std = average_row(statistics)
    lines.append(COLUMN_FORMAT.format("Avg.", "%.2f +- %.2f" % (mean, std)).rstrip())
    return lines


def format_paper_table(rows=PAPER_FULL_DATA, average=PAPER_AVERAGE) -> list:
    lines = [COLUMN_FORMAT.format("Noise(0dB)", "PESQ").rstrip(), RULE]
    lines += [COLUMN_FORMAT.format(noise, "%.2f +- %.2f" % (mean, std)).rstrip() for noise, mean, std in rows]
    lines += [RULE, COLUMN_FORMAT.format("Avg.", "%.2f +- %.2f" % average).rstrip()]
    return lines


def side_by_side(left: list, right: list, left_title: str, right_title: str, gap: int = 6) -> str:
    """Print two tables next to each other (ours on the left, the paper's on the right)."""
    width = max(len(line) for line in [left_title, *left]) + gap
    height = max(len(left), len(right))
    left = [left_title, ""] + left + [""] * (height - len(left))
    right = [right_title, ""] + right + [""] * (height - len(right))
    return "\n".join((a.ljust(width) + b).rstrip() for a, b in zip(left, right))


def plot_log_spectrograms(path: Path, mixture_log: np.ndarray, clean_log: np.ndarray, enhanced_log: np.ndarray,
                          title: str, snr_db: float = 0) -> Path:
    """Write the three log-magnitude spectrograms (frames x 257) as one PNG, as sednn's ``--visualize``
    (``main_dnn.py inference``: three ``matshow`` panels, origin lower, 'jet', the same titles)."""
    plt = pyplot()

    figure, axes = plt.subplots(3, 1, sharex=True, figsize=(8, 7))
    low = min(array.min() for array in (mixture_log, clean_log, enhanced_log))
    high = max(array.max() for array in (mixture_log, clean_log, enhanced_log))
    for axis, array, name in zip(axes, (mixture_log, clean_log, enhanced_log),
                                 (f"{snr_text(snr_db)}db mixture log spectrogram", "Clean speech log spectrogram",
                                  "Enhanced speech log spectrogram")):
        axis.matshow(array.T, origin="lower", aspect="auto", cmap="jet", vmin=low, vmax=high)
        axis.set_title(name)
        axis.xaxis.set_ticks_position("bottom")
        axis.set_ylabel("frequency bin")
    axes[-1].set_xlabel("frame")
    figure.suptitle(title)
    return save_figure(figure, path)


def plot_training_history(path: Path, history: list) -> Path:
    """sednn ``evaluate.py plot_training_stat``: train and test MAE against the iteration."""
    plt = pyplot()

    figure, axis = plt.subplots(figsize=(6, 4))
    iterations = [int(row["iteration"]) for row in history]
    axis.plot(iterations, [float(row["tr_loss"]) for row in history], "b", label="Train")
    axis.plot(iterations, [float(row["te_loss"]) for row in history], "r", label="Test")
    axis.set_xlabel("Iteration")
    axis.set_ylabel("Loss (MAE, scaled log-magnitude)")
    axis.legend(loc="upper right")
    return save_figure(figure, path)


RUN_LABELS = {
    "float": "float (Keras)",
    "pruned": "pruned (Keras)",
    "clustered": "clustered (Keras)",
    "float_float32_tflite": "float32 .tflite",
    "float_int8_tflite": "int8 .tflite",
    "pruned_float32_tflite": "pruned float32 .tflite",
    "clustered_float32_tflite": "clustered float32 .tflite",
}
PAPER_BY_NOISE = {noise: (mean, std) for noise, mean, std in PAPER_FULL_DATA}


def enhancement_check(per_metric: dict) -> str:
    """One line: the Avg. gains over the noisy input against :data:`ENHANCEMENT_TARGETS` (``per_metric``: metric ->
    :func:`per_noise_statistics`, with the ``noisy_`` metrics)."""
    parts, passed = [], True
    for key, target in ENHANCEMENT_TARGETS.items():
        if not per_metric.get(key) or not per_metric.get("noisy_" + key):
            parts.append(f"{key} not scored")
            passed = False
            continue
        gain = average_row(per_metric[key])[0] - average_row(per_metric["noisy_" + key])[0]
        passed = passed and gain >= target
        parts.append(f"{METRIC_HEADERS[key]} {gain:+.3f} (target >= +{target:g})")
    return "Enhancement over the noisy input (Avg.): " + ", ".join(parts) + f" -> {'met' if passed else 'NOT met'}"


def build_tables(documents: dict, config: dict, sizes: dict):
    """Render sednn's table beside the paper's, the all-metric table and the compression table.

    Args:
        documents: run name -> the test-set scores ``evaluate`` saved (``common.evaluation.load_scores``).
        sizes: run name -> ``common.accounting.size_report`` of that run's model.
    Returns:
        ``(text, (main ResultTable, compression ResultTable or None))``.
    """
    from common.tables import ResultTable

    snr_db = config["data"]["snr_db"]
    rows = documents["float"]["rows"]
    statistics = per_noise_statistics(rows)
    corpus = config["data"]["corpus"]
    ours_title = f"Ours: {corpus} corpus, {snr_text(snr_db)} dB, {config['training']['iterations']} iterations"
    text = [side_by_side(format_sednn_table(statistics, snr_db), format_paper_table(), ours_title,
                         "sednn README: full TIMIT + NOISEX-92, 0 dB, 10000 iterations"),
            "PESQ = raw narrow-band P.862 (sednn's ITU tool, +16000), mean +- std over files; Avg. = mean of the "
            "per-noise means +- mean of the per-noise stds.", ""]

    columns = list(NOISY_COLUMNS) + [(key, header) for key, header in METRIC_HEADERS.items()]
    main = ResultTable(f"sednn DNN, {snr_text(snr_db)} dB, {corpus} corpus: per noise type (mean ± std over files)",
                       columns, notes=[
                           "paper = sednn README full-data table (TIMIT + NOISEX-92), raw NB P.862 only",
                           "Avg. = mean of per-noise means ± mean of per-noise stds (sednn get_stats)"])
    per_metric = {key: per_noise_statistics(rows, key) for key, _ in columns}
    for noise in statistics:
        values = {key: per_metric[key][noise][:2] for key, _ in columns if noise in per_metric[key]}
        paper = {"pesq_nb_raw": PAPER_BY_NOISE[noise]} if noise in PAPER_BY_NOISE else None
        main.add_row(noise, values, paper)
    main.add_row("Avg.", {key: average_row(per_metric[key]) for key, _ in columns if per_metric[key]},
                 {"pesq_nb_raw": PAPER_AVERAGE})
    text += [main.render(), enhancement_check(per_metric), ""]

    compression = None
    compared = [run for run in RUN_LABELS if run in documents]
    if len(compared) > 1:
        compression = ResultTable(
            f"sednn compression, {corpus} corpus, {snr_text(snr_db)} dB: size vs PESQ (Avg. over noise types)",
            [("parameters", "params", 0), ("nonzero_parameters", "non-zero", 0), ("tflite_bytes", ".tflite bytes", 0),
             ("tflite_gzip_bytes", "gzip bytes", 0)] + [(key, header) for key, header in METRIC_HEADERS.items()],
            notes=["Keras rows list the size of their float32 .tflite export; the int8 row is measured by running the "
                   ".tflite", "noisy input: " + ", ".join(
                       f"{METRIC_HEADERS[key]} {average_row(per_noise_statistics(rows, 'noisy_' + key))[0]:.2f}"
                       for key in METRIC_HEADERS if per_noise_statistics(rows, "noisy_" + key))])
        for run in compared:
            values = {key: value for key, value in sizes.get(run, {}).items()
                      if key in ("parameters", "nonzero_parameters", "tflite_bytes", "tflite_gzip_bytes")}
            for key in METRIC_HEADERS:
                run_statistics = per_noise_statistics(documents[run]["rows"], key)
                if run_statistics:
                    values[key] = average_row(run_statistics)[0]
            compression.add_row(RUN_LABELS[run], values)
        text += [compression.render()]
    return "\n".join(text), (main, compression)


def model_sizes(config, args) -> dict:
    """run -> size report (parameters, non-zero, .tflite raw and gzip bytes) of the model that run used."""
    from common.accounting import size_report
    from reproductions.sednn.systems import SEDNN_VARIANTS, TFLITE_MODES, compressed_path, float_checkpoint, tflite_path
    from reproductions.sednn.trainer import load_checkpoint

    sizes = {}
    for variant in SEDNN_VARIANTS:
        path = float_checkpoint(config, args) if variant == "float" else compressed_path(args.exp_dir, variant)
        if not path.is_file():
            continue
        model, _ = load_checkpoint(path)
        float32 = tflite_path(args.exp_dir, variant, "float32")
        sizes[variant] = size_report(model, float32 if float32.is_file() else None)
        for mode in TFLITE_MODES:
            exported = tflite_path(args.exp_dir, variant, mode)
            if exported.is_file():
                # gzip -9 of a 50 MB file takes seconds: the float32 export was measured just above.
                sizes[f"{variant}_{mode}_tflite"] = (sizes[variant] if mode == "float32"
                                                     else size_report(model, exported))
    return sizes


def robustness_table(config, results_dir, documents):
    """The shared robustness table of the runs that ``evaluate`` scored on the robustness sets, or None."""
    from common.evaluation import load_robustness, robustness_table as shared_robustness_table
    from reproductions.sednn.systems import ROBUSTNESS_RUNS

    # The noisy input first, then the systems in the order of ROBUSTNESS_RUNS.
    scores = load_robustness(results_dir, ROBUSTNESS_RUNS)
    nominal = {run: documents[run]["summary"] for run in ROBUSTNESS_RUNS
               if run in documents and any(run in by_system for by_system in scores.values())}
    robustness_dir = Path(results_dir) / "scores" / "robustness"
    if not scores:
        print(f"no robustness scores under {robustness_dir}: run the evaluate stages (run.sh stages 3 and 6)",
              flush=True)
        return None
    if any("noisy" not in by_system for by_system in scores.values()):
        raise FileNotFoundError(f"{robustness_dir}: no scores of the noisy input; evaluate the float model first "
                                "(run.sh stage 3)")
    snr = snr_text(config["data"]["snr_db"])
    level = config["inference"].get("level_dbfs")
    title = (f"sednn DNN robustness, {config['data']['corpus']} corpus: unseen voices x unseen noises, and the "
             f"{snr} dB test set at other input levels (inference.level_dbfs {level})")
    return shared_robustness_table(scores, title, nominal=nominal)
