"""CRN's result tables (docs/crn.md#metric): STOI and raw PESQ per test SNR and noise with PESQ WB, SI-SNR, size
and hop time, the paper's parameter counts beside ours (docs/crn.md#baselines), the mini targets, the CRN against
the unprocessed input (paired over the same mixtures), and the robustness table.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from reproductions.crn.systems import ALL_SYSTEMS, SYSTEM_LABELS

# Parameter counts in PyTorch's convention (two LSTM bias vectors), docs/crn.md#baselines: the
# paper's 17.58 M and 30.22 M are confirmed by arithmetic there.
PAPER_PARAMETERS_MILLIONS = {"crn": 17.58, "lstm2": 30.22}
# Unprocessed STOI (%) / raw PESQ at -5 dB quoted by a third-party summary of the paper (WSJ0 trained speakers,
# babble + cafeteria): docs/crn.md#data, UNCONFIRMED. The summary's CRN figures are approximations the
# spec says not to use.
THIRD_PARTY_UNPROCESSED_MINUS5 = {"stoi_-5": 58.18, "pesq_-5": 1.50}
# The mini targets for a magnitude model with the noisy phase: SI-SNR improvement (dB), PESQ WB and STOI
# (fraction) above the unprocessed mixtures, each averaged over the test SNRs.
MINI_TARGETS = {"si_snri": 3.0, "pesq_wb_gain": 0.25, "stoi_gain": 0.02}


def print_tables(config, args, info):
    """Print and save the tables of the scores evaluate saved; ``info`` is the recipe's info (sizes, MACs)."""
    from common.evaluation import load_scores, scores_path
    from common.tables import ResultTable

    export_report_path = Path(args.exp_dir) / "export" / "report.json"
    export_report = json.loads(export_report_path.read_text()) if export_report_path.is_file() else {}
    snrs = [float(snr) for snr in config["evaluation"]["snrs"]]
    columns = []
    for snr in snrs:
        columns += [(f"stoi_{snr:g}", f"STOI % {snr:g} dB", 1), (f"pesq_{snr:g}", f"PESQ raw NB {snr:g} dB", 2)]
    columns += [("pesq_wb", "PESQ WB avg", 2), ("si_snr", "SI-SNR dB avg", 2), ("si_snri", "SI-SNRi dB", 2)]
    columns += [("parameters", "params (M)", 2), ("size", "size (KiB)", 0), ("hop_ms", "ms/hop, 1 thread", 2)]
    sizes = {"crn": info["crn"]["parameters_keras"], "lstm2": info["lstm2"]["parameters_keras"]}
    table = ResultTable(
        f"CRN (Tan & Wang 2018), {config['config_name']} config: unseen test noises, STOI (pystoi, %) and "
        "PESQ (raw NB, P.862)",
        columns,
        notes=[
            "PESQ is the raw narrow-band P.862 score (the author's pypesq), not MOS-LQO; STOI is pystoi extended=False.",
            "paper params: PyTorch convention (two LSTM biases), confirmed by arithmetic in the spec; Keras counts "
            f"{info['crn']['parameters_keras']:,} (CRN) and {info['lstm2']['parameters_keras']:,} (LSTM-2).",
            "paper STOI/PESQ of the unprocessed mixtures at -5 dB: third-party summary of the paper (WSJ0, babble "
            "+ cafeteria), UNCONFIRMED; other paper figures unavailable.",
            f"algorithmic latency {info['algorithmic_latency_ms']:.0f} ms (one 20 ms window); hop budget 10 ms; "
            f"CRN {info['crn']['macs_per_second'] / 1e9:.3f} G MACs per second of audio.",
            "size: Keras float32 weights for the Keras rows, the .tflite file for the .tflite rows.",
            "full int8 quantises the linear |STFT| input, output and activations (about 80 dB of dynamic range) "
            "in 8 linear bits; int8 weights with float activations (dynamic range) keep the float quality.",
        ],
    )
    documents = {system: load_scores(args.results_dir, system) for system in ALL_SYSTEMS}
    systems = [system for system in ALL_SYSTEMS if documents[system] is not None]
    if not systems:
        raise ValueError(f"no evaluation results in {scores_path(args.results_dir, 'crn').parent}: run the "
                         "evaluate command first")
    summaries = {}
    rows_by_system = {}
    for system in systems:
        rows = documents[system]["rows"]
        rows_by_system[system] = rows
        noise_types = sorted({row["noise_type"] for row in rows})
        for noise_type in ["all"] + noise_types:
            values = {}
            for snr in snrs:
                selected = [row for row in rows if row["snr_db"] == snr and (noise_type == "all" or
                                                                              row["noise_type"] == noise_type)]
                stoi = [row["stoi"] for row in selected if row.get("stoi") is not None]
                pesq = [row["pesq_nb_raw"] for row in selected if row.get("pesq_nb_raw") is not None]
                values[f"stoi_{snr:g}"] = 100 * float(np.mean(stoi)) if stoi else math.nan
                values[f"pesq_{snr:g}"] = float(np.mean(pesq)) if pesq else math.nan
            selected = [row for row in rows if float(row["snr_db"]) in snrs and (noise_type == "all" or
                                                                                 row["noise_type"] == noise_type)]
            for metric in ("pesq_wb", "si_snr"):
                scored = [row[metric] for row in selected if row.get(metric) is not None]
                values[metric] = float(np.mean(scored)) if scored else math.nan
            paper = {}
            summaries[system, noise_type] = dict(values)
            if noise_type == "all":
                if system in sizes:
                    values["parameters"] = sizes[system] / 1e6
                    values["size"] = 4 * sizes[system] / 1024
                    if system in PAPER_PARAMETERS_MILLIONS:
                        paper["parameters"] = PAPER_PARAMETERS_MILLIONS[system]
                variant = export_report.get("variants", {}).get(system[len("crn_tflite_"):]) if system.startswith(
                    "crn_tflite_") else None
                if variant:
                    values["parameters"] = sizes["crn"] / 1e6
                    values["size"] = variant["bytes"] / 1024
                    values["hop_ms"] = variant["benchmark"]["hop_ms_median"]
                if system == "unprocessed" and -5.0 in snrs:
                    paper.update(THIRD_PARTY_UNPROCESSED_MINUS5)
            if ("unprocessed", noise_type) in summaries:
                values["si_snri"] = values["si_snr"] - summaries["unprocessed", noise_type]["si_snr"]
            table.add_row(f"{SYSTEM_LABELS[system]} / {noise_type}", values, paper or None)
    print(table.render())
    targets = mini_targets(summaries)
    for system, check in targets.items():
        print(f"{SYSTEM_LABELS[system]} against the mini targets (averaged over the test SNRs and noises): "
              + ", ".join(f"{name} {value:+.3f} (>= {MINI_TARGETS[name]:+g}): {value >= MINI_TARGETS[name]}"
                          for name, value in check.items()))
    verdicts = crn_beats_unprocessed(summaries, snrs)
    differences = {}
    if verdicts:
        failing = [cell for cell, passed in verdicts.items() if not passed]
        failing_on_average = [cell for cell in failing if cell.startswith("all/")]
        failing_per_noise = [cell for cell in failing if not cell.startswith("all/")]
        print("CRN beats unprocessed at every test SNR (STOI and PESQ), averaged over the test noises: "
              f"{not failing_on_average}" + (f"; not in {failing_on_average}" if failing_on_average else ""))
        print("CRN beats unprocessed at every test SNR (STOI and PESQ), on each test noise: "
              f"{not failing_per_noise}" + (f"; not in {failing_per_noise}" if failing_per_noise else ""))
        differences = crn_minus_unprocessed(rows_by_system["crn"], rows_by_system["unprocessed"], snrs)
        print("CRN - unprocessed, paired over the same test mixtures (mean +- 95 % Student-t interval; "
              "STOI in points of %):")
        for noise_type in dict.fromkeys(cell.split("/")[0] for cell in differences):  # "all" first
            cells = []
            for snr in snrs:
                for metric, scale in (("stoi", 100.0), ("pesq", 1.0)):
                    cell = differences[f"{noise_type}/{metric}_{snr:g}"]
                    cells.append(f"{metric.upper()} {snr:g} dB {scale * cell['mean']:+.2f} +- "
                                 f"{scale * cell['half_width']:.2f}")
            count = differences[f"{noise_type}/stoi_{snrs[0]:g}"]["count"]
            print(f"  {noise_type} (n={count}): " + ", ".join(cells))
    table.save(args.results_dir, config, extra={"export": export_report, "info": info,
                                                "crn_beats_unprocessed": verdicts,
                                                "crn_minus_unprocessed_paired": differences,
                                                "mini_targets": targets})
    print(f"saved {args.results_dir / 'results.json'}")
    robustness_table(config, args, documents)


def robustness_table(config, args, documents):
    """The shared robustness table of the float (and .tflite) systems, with the level rows checked against each
    system's summary on the nominal test set (``documents``: the test-set scores, {system: document})."""
    from common.evaluation import load_robustness, robustness_table

    scores = load_robustness(args.results_dir, ALL_SYSTEMS)
    if not scores:
        print(f"no robustness scores in {Path(args.results_dir) / 'scores' / 'robustness'}: the evaluate command "
              "writes them")
        return
    nominal = {system: documents[system]["summary"]
               for system in sorted({system for by_system in scores.values() for system in by_system} - {"noisy"})
               if documents.get(system) is not None}
    table = robustness_table(
        scores, f"CRN (Tan & Wang 2018), {config['config_name']} config: unseen voices x unseen noises and the "
        "test mixtures at other levels (PESQ WB, STOI, SI-SNR)", nominal=nominal)
    print(table.render())
    table.save(Path(args.results_dir) / "robustness", config)
    print(f"saved {Path(args.results_dir) / 'robustness' / 'results.json'}")


def mini_targets(summaries) -> dict:
    """``{system: {target: value}}`` of every model against the unprocessed mixtures on the average over the test
    noises (``summaries`` as in the table: STOI in %, per-SNR STOI columns, PESQ WB and SI-SNR averages)."""
    if ("unprocessed", "all") not in summaries:
        return {}
    noisy = summaries["unprocessed", "all"]

    def stoi(values):
        return float(np.mean([value for key, value in values.items() if key.startswith("stoi_")])) / 100.0

    return {system: {"si_snri": values["si_snr"] - noisy["si_snr"], "pesq_wb_gain": values["pesq_wb"] - noisy["pesq_wb"],
                     "stoi_gain": stoi(values) - stoi(noisy)}
            for (system, noise_type), values in summaries.items() if noise_type == "all" and system != "unprocessed"}


def crn_beats_unprocessed(summaries, snrs) -> dict:
    """``{"<noise>/<metric>_<snr>": CRN > unprocessed}`` for STOI and PESQ at every SNR, from ``summaries`` keyed
    ``(system, noise type)`` (``"all"`` is the average). Checked per test noise as well as on the average: a noise
    where the CRN loses can hide in the mean."""
    verdicts = {}
    for (system, noise_type), values in summaries.items():
        if system != "crn" or ("unprocessed", noise_type) not in summaries:
            continue
        for snr in snrs:
            for metric in ("stoi", "pesq"):
                key = f"{metric}_{snr:g}"
                verdicts[f"{noise_type}/{key}"] = values[key] > summaries["unprocessed", noise_type][key]
    return verdicts


def crn_minus_unprocessed(crn_rows, unprocessed_rows, snrs) -> dict:
    """``{"<noise>/<metric>_<snr>": paired_difference(CRN, unprocessed)}`` over the test mixtures both systems
    scored, matched on (utterance, noise type, SNR); ``"all"`` pools the noise types."""
    from common.metrics import paired_difference

    def keyed(rows):
        return {(row["name"], row["noise_type"], float(row["snr_db"])): row for row in rows}

    crn, unprocessed = keyed(crn_rows), keyed(unprocessed_rows)
    shared = sorted(set(crn) & set(unprocessed))
    differences = {}
    for noise_type in ["all"] + sorted({key[1] for key in shared}):
        for snr in snrs:
            keys = [key for key in shared if key[2] == float(snr) and noise_type in ("all", key[1])]
            for metric, column in (("stoi", "stoi"), ("pesq", "pesq_nb_raw")):
                scored = [key for key in keys
                          if crn[key].get(column) is not None and unprocessed[key].get(column) is not None]
                differences[f"{noise_type}/{metric}_{snr:g}"] = paired_difference(
                    [crn[key][column] for key in scored], [unprocessed[key][column] for key in scored])
    return differences
