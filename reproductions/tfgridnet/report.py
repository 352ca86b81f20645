"""TF-GridNet's result tables: Table 1 (DNSMOS, size, MACs) and Table 2 (PESQ, STOI, SI-SNR) beside upstream's
figures (docs/tfgridnet.md#reported-results), PL minus DL paired over the same files, the learning curves, the
export table and the robustness tables.
"""
from __future__ import annotations

import json
from pathlib import Path

from common.enhancement import inference_level
from common.figures import pyplot, save_figure
from reproductions.tfgridnet.export import USABLE_SI_SNR_DROP_DB, distinct_lines, int8_usability
from reproductions.tfgridnet.scoring import load_evaluation, load_robustness
from reproductions.tfgridnet.strategies import ABLATION, STRATEGIES, STRATEGY_LABELS

# Upstream's finding that the PL - DL rows are read against (docs/tfgridnet.md#reported-results).
PAPER_FINDING = "upstream: PL ahead on DNSMOS (OVRL +0.032) and SI-SNR (+0.74 dB), DL ahead on PESQ WB (+0.244)"
# Acceleration123/Speech-Enhancement README Tables 1 and 2 (DNS5 synthetic test set),
# docs/tfgridnet.md#reported-results.
PAPER_TABLE1 = {
    "noisy": {"dnsmos_p808": 2.846, "dnsmos_bak": 2.341, "dnsmos_sig": 2.918, "dnsmos_ovrl": 2.147},
    "direct": {"params_m": 2.36, "macs_g": 33.65, "dnsmos_p808": 3.826, "dnsmos_bak": 4.113, "dnsmos_sig": 3.454,
               "dnsmos_ovrl": 3.187},
    "progressive": {"params_m": 2.36, "macs_g": 33.69, "dnsmos_p808": 3.877, "dnsmos_bak": 4.128,
                    "dnsmos_sig": 3.481, "dnsmos_ovrl": 3.219},
}
# Noisy SI-SNR is not reported upstream (its row repeats two Table 1 numbers), so it stays empty here.
PAPER_TABLE2 = {
    "noisy": {"pesq_wb": 1.391, "stoi": 0.784},
    "direct": {"pesq_wb": 2.763, "stoi": 0.882, "si_snr": 16.827},
    "progressive": {"pesq_wb": 2.519, "stoi": 0.880, "si_snr": 17.571},
}


def learning_curve(log_path, steps_per_epoch: int) -> dict:
    """``{"step", "val_loss", "val_si_snr"}`` lists from a ``training_log.csv`` (one row per validation).

    The SI-SNR column is the one metric the model compiles (PL: on its last head, ``val_estimate<B>_si_snr``).
    """
    import csv

    log_path = Path(log_path)
    with open(log_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{log_path}: no epoch logged yet")
    columns = [name for name in rows[0] if name.startswith("val_") and name.endswith("si_snr")]
    if len(columns) != 1 or "val_loss" not in rows[0]:
        raise ValueError(f"{log_path}: expected val_loss and one val_*si_snr column, found {list(rows[0])}")
    return {
        "step": [(int(row["epoch"]) + 1) * steps_per_epoch for row in rows],
        "val_loss": [float(row["val_loss"]) for row in rows],
        "val_si_snr": [float(row[columns[0]]) for row in rows],
    }


def plot_learning_curves(curves: dict, path, noisy_si_snr=None) -> Path:
    """Validation SI-SNR and loss against the optimiser step, one line per strategy, as a PNG at ``path``."""
    plt = pyplot()

    figure, (si_snr_axis, loss_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for strategy, curve in curves.items():
        label = STRATEGY_LABELS.get(strategy, strategy)
        si_snr_axis.plot(curve["step"], curve["val_si_snr"], marker="o", label=label)
        loss_axis.plot(curve["step"], curve["val_loss"], marker="o", label=label)
    if noisy_si_snr is not None:
        si_snr_axis.axhline(noisy_si_snr, color="gray", linestyle="--", label="noisy input (test)")
    si_snr_axis.set(xlabel="optimiser step", ylabel="validation SI-SNR (dB)", title="clean-speech estimate")
    loss_axis.set(xlabel="optimiser step", ylabel="validation loss", title="hybrid loss (PL: sum over heads)")
    for axis in (si_snr_axis, loss_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    return save_figure(figure, path)


PAIRED_METRICS = ("pesq_wb", "stoi", "si_snr", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")


def paper_difference(metric: str):
    """Upstream's PL minus DL for ``metric`` from its Tables 1 and 2."""
    for table in (PAPER_TABLE1, PAPER_TABLE2):
        if metric in table["direct"] and metric in table["progressive"]:
            return table["progressive"][metric] - table["direct"][metric]
    return None


def paired_differences(candidate_rows, baseline_rows, metrics=PAIRED_METRICS) -> dict:
    """``{metric: paired_difference(candidate, baseline)}`` over the test files both systems scored (by name)."""
    from common.metrics import paired_difference

    candidate = {row["name"]: row for row in candidate_rows if row.get("valid", True)}
    baseline = {row["name"]: row for row in baseline_rows if row.get("valid", True)}
    shared = sorted(set(candidate) & set(baseline))
    differences = {}
    for metric in metrics:
        names = [name for name in shared
                 if candidate[name].get(metric) is not None and baseline[name].get(metric) is not None]
        differences[metric] = paired_difference([candidate[name][metric] for name in names],
                                                [baseline[name][metric] for name in names])
    return differences


def paired_table(differences: dict):
    """PL minus DL per metric (mean ± 95 % half-width over the same test files) beside upstream's difference."""
    from common.tables import ResultTable

    table = ResultTable(
        "PL - DL, paired over the same test files (mean ± 95 % Student-t interval)",
        [("difference", "PL - DL", 3), ("pairs", "files", 0)],
        notes=[PAPER_FINDING + "; paper column: upstream's PL - DL (no interval published)."])
    for metric, cell in differences.items():
        table.add_row(metric, {"difference": (cell["mean"], cell["half_width"]), "pairs": cell["count"]},
                      {"difference": paper_difference(metric)})
    return table


def robustness_table(robustness: dict, label: str, results_dir, config, suffix=""):
    """The shared robustness table (unseen voices x unseen noises, level rows) with its two checks."""
    from common.evaluation import robustness_table

    table = robustness_table(
        robustness["scores"], f"Robustness ({label}): unseen voices x unseen noises, test files at other levels",
        nominal=robustness["nominal"])
    table.notes.append(f"Nominal rows for the level check: the first {robustness['nominal_files']} test files "
                       f"at their own level; inference.level_dbfs = {inference_level(config)}.")
    table.save(Path(results_dir) / f"robustness{suffix}", config, extra={"robustness": robustness})
    return table


def print_tables(config, args, info):
    """Render, save and print every table whose inputs exist; ``info()`` gives the sizes when info.json is missing."""
    from common.tables import ResultTable

    from common.evaluation import load_scores, scores_path

    results_dir = Path(args.results_dir)
    evaluation = load_evaluation(results_dir)
    if evaluation is None:
        raise FileNotFoundError(f"{scores_path(results_dir, 'noisy')}: run 'evaluate' first")
    info_path = results_dir / "info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else info()
    mean = lambda summary, key: summary.get(key, [None])[0] if summary else None  # noqa: E731
    files = evaluation.get("files")
    data_name = "mini corpus" if config["data"]["corpus"] == "mini" else "DNS5 synthetic test"
    table1 = ResultTable(
        f"Table 1 (DNSMOS, offline speechmos ONNX) - ours: {data_name}, {files} files; paper: DNS5 test set",
        [("params_m", "Para. (M)", 3), ("macs_g", "MACs (G/s)", 2), ("dnsmos_p808", "DNSMOS-P.808", 3),
         ("dnsmos_bak", "BAK", 3), ("dnsmos_sig", "SIG", 3), ("dnsmos_ovrl", "OVRL", 3)],
        notes=["Para.: Keras counts (one LSTM bias; upstream's PyTorch counts add 400 per LSTM direction).",
               "MACs per second of audio from a 1-s input; upstream's ptflops figures are for the paper config."],
    )
    table2 = ResultTable(
        f"Table 2 (intrusive) - ours: {data_name}, {files} files; paper: DNS5 test set",
        [("pesq_wb", "PESQ (WB, P.862.2)", 3), ("stoi", "STOI", 3), ("si_snr", "SI-SNR (dB)", 3)],
        notes=["Upstream's noisy row gives no SI-SNR (its cells repeat Table 1 values)."],
    )
    size = {"direct": (info["params"], info["macs_per_second"]),
            "progressive": (info["params_pl"], info["macs_per_second_pl"])}
    if "params_complex" in info:
        size[ABLATION] = (info["params_complex"], info["macs_per_second_complex"])
    for key, label in (("noisy", "Noisy"), *((strategy, STRATEGY_LABELS[strategy])
                                             for strategy in STRATEGIES + (ABLATION,))):
        summary = evaluation.get(key)
        if summary is None:
            continue
        values1 = {name: mean(summary, name) for name in ("dnsmos_p808", "dnsmos_bak", "dnsmos_sig", "dnsmos_ovrl")}
        if key in size:
            values1.update(params_m=size[key][0] / 1e6, macs_g=size[key][1] / 1e9)
        table1.add_row(label, values1, PAPER_TABLE1.get(key))
        table2.add_row(label, {name: mean(summary, name) for name in ("pesq_wb", "stoi", "si_snr")},
                       PAPER_TABLE2.get(key))
    texts = [table1.render(), table2.render()]
    table1.save(results_dir / "table1", config, extra={"info": info})
    table2.save(results_dir / "table2", config, extra={"evaluation": evaluation})
    documents = {strategy: load_scores(results_dir, strategy) for strategy in STRATEGIES}
    if all(documents.values()):
        differences = paired_differences(documents["progressive"]["rows"], documents["direct"]["rows"])
        table_pl = paired_table(differences)
        texts.append(table_pl.render())
        table_pl.save(results_dir / "pl_minus_dl", config, extra={"paired_differences": differences})
    curves = {}
    steps_per_epoch = int(config["training"]["examples_per_epoch"]) // int(config["training"]["batch_size"])
    for strategy in STRATEGIES + (ABLATION,):
        log_path = Path(args.exp_dir) / strategy / "training_log.csv"
        if log_path.exists():
            curves[strategy] = learning_curve(log_path, steps_per_epoch)
    if curves:
        noisy_si_snr = mean(evaluation.get("noisy"), "si_snr")
        curve_table = ResultTable(
            "Learning curves (validation set, per validation interval): last and best validation SI-SNR",
            [("steps", "steps", 0), ("last_si_snr", "last val SI-SNR (dB)", 2),
             ("best_si_snr", "best val SI-SNR (dB)", 2), ("last_loss", "last val loss", 3)],
            notes=[f"Curves: {results_dir / 'learning_curves' / 'learning_curves.png'}"])
        for strategy, curve in curves.items():
            curve_table.add_row(STRATEGY_LABELS[strategy], {
                "steps": curve["step"][-1], "last_si_snr": curve["val_si_snr"][-1],
                "best_si_snr": max(curve["val_si_snr"]), "last_loss": curve["val_loss"][-1]})
        plot_learning_curves(curves, results_dir / "learning_curves" / "learning_curves.png", noisy_si_snr)
        curve_table.save(results_dir / "learning_curves", config, extra={"curves": curves})
        texts.append(curve_table.render())
    export_path = results_dir / "export.json"
    if export_path.exists():
        export = json.loads(export_path.read_text())
        table3 = ResultTable("TFLite export (converted models scored on the first test files)",
                             [("converted", "converts"), ("usable", f"usable (SI-SNR within "
                                                                    f"{USABLE_SI_SNR_DROP_DB} dB of float32)"),
                              ("kbytes", "size (kB)", 0), ("gzip_kbytes", "gzip (kB)", 0),
                              ("difference", "max |tflite-keras|", 5), ("pesq_wb", "PESQ (WB)", 3),
                              ("stoi", "STOI", 3), ("si_snr", "SI-SNR", 2), ("dnsmos_ovrl", "OVRL", 3)],
                             notes=[f"{name}: {distinct_lines(entry['error'])}" for name, entry in export.items()
                                    if not entry.get("converted")])
        verdicts = int8_usability(export)
        for name, entry in export.items():
            scores = entry.get("scores", {})
            table3.add_row(name, {
                "converted": "yes" if entry.get("converted") else "no",
                "usable": verdicts[name],
                "kbytes": entry["bytes"] / 1e3 if "bytes" in entry else None,
                "gzip_kbytes": entry["gzip_bytes"] / 1e3 if "gzip_bytes" in entry else None,
                "difference": entry.get("max_abs_difference_to_keras"),
                **{metric: mean(scores, metric) for metric in ("pesq_wb", "stoi", "si_snr", "dnsmos_ovrl")},
            })
        texts.append(table3.render())
        table3.save(results_dir / "export_table", config, extra={"export": export})
    for suffix, label in (("", "float Keras models"), ("_tflite", "float32 .tflite models")):
        robustness = load_robustness(results_dir, suffix)
        if robustness is not None:
            texts.append(robustness_table(robustness, label, results_dir, config, suffix).render())
    text = "\n\n".join(texts)
    times_path = Path(args.exp_dir) / "stages" / "times.tsv"
    if times_path.exists():
        text += "\n\nStage times (s, from run.sh):\n" + times_path.read_text().rstrip()
    print(text)
    (results_dir / "tables.txt").write_text(text + "\n")
    return text
