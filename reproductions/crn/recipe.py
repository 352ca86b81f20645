"""Tan & Wang (Interspeech 2018) causal CRN and its LSTM-2 baseline: training, evaluation, streaming int8 export.

``python -m reproductions.crn COMMAND --config mini|paper``; the stages of ``run.sh`` call these commands.
Spec: ``docs/crn.md`` (the first author's code is the authority).

Features: ``|STFT|`` of the RMS-normalised mixture (``common.mixing.mix_crn``; 20 ms Hamming, 10 ms hop, 161
bins, ``features.crn_stft``), target ``|STFT|`` of the equally scaled speech; resynthesis with the noisy
phase (``crn_resynthesize``). Training (``docs/crn.md#training``): Adam 2e-4, MSE over the valid frames only, batches of
16 whole utterances zero-padded to the longest, learning rate x0.98 every 2 epochs, 20 epochs, best epoch by validation
loss. Metrics (``docs/crn.md#metric``): STOI (pystoi, ``extended=False``) and raw narrow-band P.862 PESQ (what the
author's pypesq reports), plus ESTOI and SNR in the saved rows.

This file is the driver; the steps it runs live beside it: ``data.py`` (corpus, mixtures, features, padded batches,
masked MSE), ``networks.py`` (CRN and LSTM-2, their weights and counts), ``systems.py`` (the evaluated systems and
their enhancers), ``export.py`` (streaming .tflite) and ``report.py`` (tables and targets).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.enhancement import inference_level
from reproductions.crn.data import load_corpus, make_dataset, test_examples, training_examples, training_loss
from reproductions.crn.export import export_streaming
from reproductions.crn.networks import MODEL_NAMES, build_model, load_trained, pytorch_parameter_count
from reproductions.crn.report import print_tables
from reproductions.crn.systems import (
    SYSTEMS_FLOAT,
    TFLITE_MODES,
    compiled,
    enhance_offline,
    enhance_streaming,
    enhancers,
    tflite_path,
)

METRICS = ("stoi", "pesq_nb_raw", "estoi", "snr", "pesq_wb", "si_snr")


class Recipe:
    """Tan & Wang (2018) causal CRN for real-time speech enhancement, with the LSTM-2 baseline and int8 streaming."""

    name = "crn"
    # Every top-level section of conf/*.yaml: a renamed or missing one fails on loading, not as a KeyError later.
    config_sections = ("model", "baseline", "data", "training", "export", "inference", "evaluation")

    def add_arguments(self, command, parser):
        if command in ("train", "enhance"):
            parser.add_argument("--model", choices=MODEL_NAMES, default="crn", help="network (default: crn)")
        if command == "enhance":
            parser.add_argument("--streaming", action="store_true", help="run hop by hop (10 ms in, 10 ms out)")
            parser.add_argument("--tflite-mode", choices=TFLITE_MODES, default="int8",
                                help="which streaming .tflite --tflite runs (default int8)")
        if command == "evaluate":
            from common.evaluation import FOLDER_HELP

            parser.epilog = FOLDER_HELP
            parser.add_argument("--systems", nargs="+", default=None,
                                help=f"systems to score (default {' '.join(SYSTEMS_FLOAT)}, crn for --noisy-dir; with "
                                     "--tflite the exported streaming .tflite files)")
        if command == "export":
            parser.add_argument("--modes", nargs="+", choices=TFLITE_MODES, default=None,
                                help="which .tflite variants (default: export.modes of the config)")

    # ----------------------------------------------------------------------------------------------- info
    def info(self, config, args):
        from common.accounting import macs_per_second
        from reproductions.crn.crn import FRAMES_PER_SECOND, crn_macs_per_frame
        from reproductions.crn.lstm_baseline import lstm_baseline_macs_per_frame
        from reproductions.crn.streaming import ALGORITHMIC_LATENCY_MS

        result = {"recipe": self.name, "config": config["config_name"]}
        frequency_bins = config["model"]["frequency_bins"]
        one_second = [(1, FRAMES_PER_SECOND, frequency_bins)]
        for which in MODEL_NAMES:
            model = build_model(config, which)
            trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
            result[which] = {
                "parameters_keras": trainable,
                "parameters_pytorch_convention": pytorch_parameter_count(model),
                "non_trainable_batch_norm_statistics": int(sum(np.prod(w.shape) for w in model.non_trainable_weights)),
                "macs_per_second": macs_per_second(model, one_second),
            }
        model = config["model"]
        result["crn"]["macs_per_second_from_shapes"] = FRAMES_PER_SECOND * crn_macs_per_frame(
            frequency_bins, model["channels"], model["lstm_layers"])
        baseline = config["baseline"]
        result["lstm2"]["macs_per_second_from_shapes"] = FRAMES_PER_SECOND * lstm_baseline_macs_per_frame(
            frequency_bins, baseline["units"], baseline["lstm_layers"])
        result["algorithmic_latency_ms"] = ALGORITHMIC_LATENCY_MS
        result["hop_ms"] = 10.0
        return result

    # ---------------------------------------------------------------------------------------------- train
    def train(self, config, args):
        from common.training import config_precision, training_precision

        with training_precision(*config_precision(config)):
            self._train(config, args)

    def _train(self, config, args):
        from common.tfkeras import keras
        from common.recurrent import fused_lstm_setting
        from common.training import ResumableTraining, paper_callbacks, set_seed

        training = config["training"]
        set_seed(training["seed"])
        corpus = load_corpus(config)
        train_set = training_examples(corpus, config, "train")
        valid_set = training_examples(corpus, config, "valid")
        print(f"{args.model}: {len(train_set)} training and {len(valid_set)} validation mixtures")
        frequency_bins = config["model"]["frequency_bins"]
        train_data = make_dataset(train_set, training["batch_size"], frequency_bins, shuffle_seed=training["seed"])
        valid_data = make_dataset(valid_set, training["batch_size"], frequency_bins)
        model = build_model(config, args.model, fused_lstm=fused_lstm_setting(config))
        model.compile(optimizer=keras.optimizers.Adam(training["learning_rate"]), loss=training_loss(config))
        run = ResumableTraining(model, Path(args.exp_dir) / args.model)
        step_decay = (training["learning_rate"], training["decay_factor"], training["decay_every_epochs"])
        run.fit(train_data, epochs=training["epochs"], validation_data=valid_data,
                callbacks=paper_callbacks(step_decay=step_decay))
        print(f"{args.model}: best epoch {run.state.get('best_epoch')} (val_loss {run.state.get('best')}), "
              f"weights in {run.best_weights_path}")

    # ------------------------------------------------------------------------------------------- evaluate
    def evaluate(self, config, args):
        from tqdm import tqdm

        from common.evaluation import save_scores, score_examples
        from common.metrics import summarize

        if args.noisy_dir is not None:
            return self._evaluate_folders(config, args)
        systems = args.systems or ([f"crn_tflite_{mode}" for mode in config["export"]["modes"]] if args.tflite
                                   else list(SYSTEMS_FLOAT))
        system_enhancers = enhancers(config, args, systems)
        examples = test_examples(load_corpus(config), config)
        if args.max_files:
            examples = examples[: args.max_files]
        loaded = [(example, *example.load()[:2]) for example in tqdm(examples, desc="load test mixtures")]
        named = [(Path(example.meta["speech"]).stem, noisy, clean) for example, noisy, clean in loaded]
        for system, enhance in system_enhancers.items():
            rows, _ = score_examples(enhance, named, METRICS, 16000, config["evaluation"]["processes"],
                                     description=f"({system})")
            for row, (example, _, _) in zip(rows, loaded):
                row.update(noise_type=example.meta["noise_type"], snr_db=example.meta["snr_db"])
            summary = summarize(rows)
            save_scores(args.results_dir, system, rows, summary, config, f"{self.name}/{args.experiment_name}")
            print(f"{system}: " + ", ".join(f"{metric} {summary[metric][0]:.3f}" for metric in ("stoi", "pesq_nb_raw")
                                            if metric in summary) + f" ({len(rows)} mixtures, {summary['invalid']} invalid)")
        tflite_modes = config["evaluation"].get("robustness_tflite_modes", TFLITE_MODES)
        robust = {system: enhance for system, enhance in system_enhancers.items() if system != "unprocessed" and (
            not system.startswith("crn_tflite_") or system[len("crn_tflite_"):] in tflite_modes)}
        if robust and not args.max_files:
            self._evaluate_robustness(config, args, robust, examples)

    def _evaluate_robustness(self, config, args, enhancers, examples):
        """Unseen voices x unseen noises and the test mixtures replayed at other levels
        (``data_prep.paper_sets.robustness_sets``), scored for ``enhancers`` and the noisy input; the scores go to
        ``<results_dir>/scores/robustness/`` for the table."""
        from common.evaluation import score_robustness
        from data_prep.paper_sets import robustness_sets

        sets = robustness_sets(load_corpus(config), examples, seed=config["evaluation"]["seed"],
                               max_items=config["evaluation"].get("robustness_items"))
        scores = score_robustness(enhancers, sets, processes=config["evaluation"]["processes"],
                                  results_dir=args.results_dir, config=config,
                                  run=f"{self.name}/{args.experiment_name}")
        for set_name, by_system in scores.items():
            print(f"{set_name}: " + "; ".join(
                f"{system} " + " ".join(f"{metric} {summary[metric][0]:.3f}" for metric in ("pesq_wb", "stoi", "si_snr")
                                        if summary.get(metric))
                for system, summary in by_system.items()))

    def _evaluate_folders(self, config, args):
        from common.evaluation import check_folders, score_folders

        pairs = check_folders(args.noisy_dir, args.clean_dir, 16000, args.max_files)
        systems = args.systems or ["crn_tflite_int8" if args.tflite else "crn"]
        system_enhancers = enhancers(config, args, systems)
        score_folders(pairs, system_enhancers, METRICS, args.results_dir, processes=config["evaluation"]["processes"],
                      config=config, run=f"{self.name}/{args.config_name}")

    # --------------------------------------------------------------------------------------------- export
    def export(self, config, args):
        export_streaming(config, args)

    # -------------------------------------------------------------------------------------------- enhance
    def enhance(self, config, args):
        from common.enhancement import level_normalized, run_enhancement
        from reproductions.crn import streaming

        if args.streaming and not args.tflite and args.model != "crn":
            raise ValueError("--streaming runs the CRN (the LSTM-2 baseline has no streaming graph here)")

        def load():
            if args.tflite:
                runner = streaming.StreamingTFLite(tflite_path(args, args.tflite_mode), num_threads=1)
                process = lambda noisy: enhance_streaming(runner, noisy)  # noqa: E731
            else:
                model = load_trained(config, args, args.model, args.checkpoint)
                if args.streaming:
                    runner = streaming.StreamingCRN(model)
                    process = lambda noisy: enhance_streaming(runner, noisy)  # noqa: E731
                else:
                    graph = compiled(model)
                    process = lambda noisy: enhance_offline(graph, noisy)  # noqa: E731

            return level_normalized(process, inference_level(config))

        run_enhancement(args, streaming.SAMPLE_RATE, load)
        return None

    # ---------------------------------------------------------------------------------------------- table
    def table(self, config, args):
        print_tables(config, args, self.info(config, args))


def artifacts(exp_dir, config) -> dict:
    """The models and .tflite files run.sh writes (``common.artifacts``): stages 2 and 3 train the CRN and LSTM-2,
    stage 5 exports the CRN's streaming .tflite files."""
    from common.artifacts import Artifact

    exp_dir = Path(exp_dir)
    published = {"crn": Artifact(exp_dir / "crn" / "best.weights.h5", 2),
                 "lstm2": Artifact(exp_dir / "lstm2" / "best.weights.h5", 3)}
    for mode in config["export"]["modes"]:
        published[f"crn_streaming_{mode}"] = Artifact(exp_dir / "tflite" / f"crn_streaming_{mode}.tflite", 5, ("crn",))
    return published
