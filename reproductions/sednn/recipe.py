"""sednn recipe: Xu et al.'s DNN regression as in Kong's Keras ``mixture2clean_dnn``, plus compression.

Commands (``python -m reproductions.sednn COMMAND --config mini|paper``), in the order of sednn's ``runme.sh``:

* ``train --features-only``: mixtures, log-magnitude features, packing (7 frames, hop 3) and the scaler
  (runme.sh steps 1-4), cached in ``exp/sednn/<config>/features/``.
* ``train``: 10 001 iterations of Adam on MAE (step 5), the loss plot (step 6); resumable from ``md_<N>iters.h5``.
* ``train --variant pruned|clustered``: magnitude pruning / weight clustering of the Dense layers (beyond sednn).
* ``export``: float32 and int8 .tflite of the float model, float32 .tflite of the compressed ones.
* ``evaluate``: frame-by-frame inference on every test mixture and PESQ (step 7-8), with STOI and SI-SNR, each input
  at ``inference.level_dbfs`` (``docs/sednn.md#level``); ``--visualize`` writes the spectrogram figures;
  ``--variant`` / ``--tflite`` score the compressed models and the .tflite files; the float model and its int8
  .tflite are also scored on the shared robustness sets.
* ``table``: sednn's per-noise table beside the paper's, all metrics, the compression and the robustness tables.

Spec: ``docs/sednn.md``.

This file is the driver; the steps it runs live beside it: ``data.py`` (corpus, mixtures, cached features and
scaler), ``trainer.py`` (the resumable training loop), ``compress.py`` (pruning, clustering, .tflite export),
``systems.py`` (the scored models, their files and enhancers), ``pipeline.py`` (packing, frame-by-frame inference)
and ``report.py`` (tables and figures).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from reproductions.sednn.data import (
    REPOSITORY_ROOT,
    cached_features,
    evaluation_items,
    load_corpus,
    mixture_examples,
    snr_text,
)
from reproductions.sednn.report import model_sizes, robustness_table
from reproductions.sednn.systems import (
    ROBUSTNESS_RUNS,
    SEDNN_VARIANTS,
    TFLITE_MODES,
    compressed_path,
    enhancer,
    float_checkpoint,
    predictor,
    runs,
    tflite_path,
)

# sednn's raw NB PESQ, the wide-band and intelligibility metrics of the project's checks, and SI-SNR.
EVALUATION_METRICS = ("pesq_nb_raw", "pesq_wb", "stoi", "si_snr")


def _log(message: str) -> None:
    print(message, flush=True)


class Recipe:
    """sednn: Xu et al.'s regression DNN (Kong's Keras mixture2clean_dnn), per-noise PESQ table, compression."""

    name = "sednn"
    # Every top-level section of conf/*.yaml: a renamed or missing one fails on loading, not as a KeyError later.
    config_sections = ("data", "features", "model", "training", "inference", "evaluation", "pruning", "clustering",
                       "export")
    # Checkpoints depend on the mixtures and features as much as on the network.
    experiment_sections = ("data", "features", "model")

    # ------------------------------------------------------------------------------------------ command line
    def add_arguments(self, command, parser):
        if command != "info":
            parser.add_argument("--snr", type=float, default=None,
                                help="train/test SNR in dB (one model per SNR as sednn; default: the config's, 0)")
        if command in ("train", "evaluate", "enhance"):
            parser.add_argument("--variant", choices=SEDNN_VARIANTS, default="float",
                                help="float model (default) or a compressed one")
        if command == "train":
            parser.add_argument("--features-only", action="store_true",
                                help="only make the mixtures, packed features and scaler (runme.sh steps 1-4)")
        if command in ("evaluate", "enhance"):
            parser.add_argument("--tflite-mode", choices=TFLITE_MODES, default="int8",
                                help="which exported .tflite --tflite runs (default int8)")
        if command == "evaluate":
            from common.evaluation import FOLDER_HELP

            parser.epilog = FOLDER_HELP
            parser.add_argument("--visualize", action="store_true",
                                help="write PNGs of mixture / clean / enhanced log spectrograms")

    def prepare(self, config, args):
        """Apply ``--snr`` (its own experiment folder, so models for different SNRs never mix)."""
        snr = getattr(args, "snr", None)
        if snr is not None:
            config["data"]["snr_db"] = float(snr)
            # One model per SNR: the mini configuration's set of training SNRs gives way to the one asked for.
            config["data"]["train_snrs_db"] = None
            suffix = f"_{snr_text(snr)}db"
            default_exp = REPOSITORY_ROOT / "exp" / self.name / args.experiment_name
            default_results = REPOSITORY_ROOT / "results" / self.name / args.experiment_name
            if Path(args.exp_dir) == default_exp:
                args.exp_dir = default_exp.with_name(default_exp.name + suffix)
            if Path(args.results_dir) == default_results:
                args.results_dir = default_results.with_name(default_results.name + suffix)
        return config

    # ------------------------------------------------------------------------------------------ info
    def info(self, config, args):
        from common.accounting import count_parameters, macs_per_second
        from reproductions.sednn.features import SEDNN_HOP
        from reproductions.sednn.dnn import build_from_config

        model_config = config["model"]
        model = build_from_config(model_config, source=config.get("config_path"))
        one_frame = (1, model_config["n_concat"], model_config["n_freq"])
        # One output frame per 256-sample hop: MACs of one frame divided by the 16 ms it advances.
        seconds_per_frame = SEDNN_HOP / config["data"]["sample_rate"]
        return {
            "params": count_parameters(model),
            "macs_per_second": macs_per_second(model, one_frame, audio_seconds=seconds_per_frame),
            "macs_per_frame": macs_per_second(model, one_frame, audio_seconds=1.0),
        }

    # ------------------------------------------------------------------------------------------ train
    def train(self, config, args):
        arrays, scaler = cached_features(config, args.exp_dir)
        if args.features_only:
            return None
        from common.training import compression_precision, config_precision, training_precision

        kind, source = config_precision(config)
        if args.variant == "float":
            with training_precision(kind, source, log=_log):
                return self._train_float(config, args, arrays, scaler)
        with compression_precision(kind, stage=f"{args.variant} fine-tuning", source=source, log=_log):
            return self._train_compressed(config, args, arrays, scaler)

    def _train_float(self, config, args, arrays, scaler):
        from common.training import set_seed
        from reproductions.sednn.dnn import build_from_config
        from reproductions.sednn.report import plot_training_history
        from reproductions.sednn.trainer import train_iterations

        training = config["training"]
        exp_dir = Path(args.exp_dir)
        done_path = exp_dir / "training_done.json"
        if done_path.is_file() and json.loads(done_path.read_text()).get("training") == training:
            _log(f"Training already finished ({done_path}); delete it to train again")
            return None
        set_seed(training["seed"])
        started = time.time()
        train_x, train_y = arrays["train"]
        test_x, test_y = arrays["test"]
        _, history = train_iterations(
            lambda: build_from_config(config["model"], source=config.get("config_path")), scaler,
            scaler.transform(train_x), scaler.transform(train_y), scaler.transform(test_x), scaler.transform(test_y),
            exp_dir, iterations=training["iterations"], batch_size=training["batch_size"],
            learning_rate=training["learning_rate"], log_interval=training["log_interval"],
            save_interval=training["save_interval"], eval_max_batches=training["eval_max_batches"],
            seed=training["seed"], log=_log)
        elapsed = time.time() - started
        _log(f"Training time: {elapsed:.2f} s")
        plot_training_history(exp_dir / "training_stat.png", history)
        done_path.write_text(json.dumps({"training": training, "seconds": elapsed}, indent=1))
        return None

    def _train_compressed(self, config, args, arrays, scaler):
        from reproductions.sednn.compress import fine_tune_compressed
        from reproductions.sednn.trainer import load_checkpoint

        output = compressed_path(args.exp_dir, args.variant)
        if output.is_file():
            _log(f"{output} exists; delete it to compress again")
            return None
        model, checkpoint_scaler = load_checkpoint(float_checkpoint(config, args))
        train_x, train_y = arrays["train"]
        started = time.time()
        fine_tune_compressed(model, args.variant, config, checkpoint_scaler,
                             checkpoint_scaler.transform(train_x), checkpoint_scaler.transform(train_y), output,
                             batch_size=config["training"]["batch_size"], seed=config["training"]["seed"], log=_log)
        _log(f"{args.variant}: {time.time() - started:.1f} s -> {output}")
        return None

    # ------------------------------------------------------------------------------------------ export
    def export(self, config, args):
        from reproductions.sednn.compress import export_variant
        from reproductions.sednn.trainer import load_checkpoint

        arrays, _ = cached_features(config, args.exp_dir)
        sources = {"float": float_checkpoint(config, args)}
        for variant in ("pruned", "clustered"):
            if compressed_path(args.exp_dir, variant).is_file():
                sources[variant] = compressed_path(args.exp_dir, variant)
        for variant, path in sources.items():
            model, scaler = load_checkpoint(path)
            modes = ("float32", "int8") if variant == "float" else ("float32",)
            for mode in modes:
                target = tflite_path(args.exp_dir, variant, mode)
                export_variant(model, scaler, target, mode, scaler.transform(arrays["train"][0]),
                               config["export"]["calibration_segments"], seed=config["training"]["seed"])
                _log(f"Exported {target} ({target.stat().st_size:,} bytes)")
        return None

    # ------------------------------------------------------------------------------------------ evaluate
    def evaluate(self, config, args):
        from common.audio import write_audio
        from common.evaluation import load_scores, save_scores
        from common.metrics import evaluate_pairs, pesq_raw_to_mos_lqo, summarize
        from reproductions.sednn.report import plot_log_spectrograms

        if args.noisy_dir is not None:
            return self._evaluate_folders(config, args)
        predict, scaler, run = predictor(config, args)
        enhance = enhancer(config, predict, scaler)
        evaluation = config["evaluation"]
        items = evaluation_items(config)
        if args.max_files is not None:
            items = items[: args.max_files]
        figure_dir = Path(args.results_dir) / "figures" / run
        wav_dir = Path(args.exp_dir) / "enh_wavs" / run
        pairs, metadata = [], []
        started = time.time()
        from tqdm import tqdm

        for index, (name, noise_type, loader) in enumerate(tqdm(items, desc=f"enhance ({run})", unit="file")):
            noisy, clean = loader()
            enhanced = enhance(noisy)
            write_audio(wav_dir / f"{name}.enh.wav", enhanced, config["data"]["sample_rate"])
            pairs.append({"name": name, "clean": clean, "enhanced": enhanced, "noisy": noisy})
            metadata.append({"noise_type": noise_type})
            if args.visualize and index < evaluation["visualize_count"]:
                from reproductions.sednn.features import sednn_log_magnitude, sednn_stft

                # The three panels from the waveforms, so that they share the level of the files on disk.
                mixture_log, clean_log, enhanced_log = (sednn_log_magnitude(sednn_stft(signal)) for signal in
                                                        (noisy, clean[: len(noisy)], enhanced))
                plot_log_spectrograms(figure_dir / f"{name}.png", mixture_log, clean_log, enhanced_log,
                                      title=f"{name} ({run})", snr_db=config["data"]["snr_db"])
        inference_seconds = time.time() - started
        # The noisy input's scores do not depend on the model: computed once, with the float model.
        score_noisy = run == "float"
        rows = evaluate_pairs(pairs, metrics=EVALUATION_METRICS, processes=evaluation["processes"],
                              score_noisy=score_noisy, description=f"PESQ ({run})")
        for row, extra in zip(rows, metadata):
            row.update(extra)
            # NB MOS-LQO is the P.862.1 mapping of the raw score (pesq 'nb' computes exactly this pair), so one
            # narrow-band PESQ run per file gives both.
            for prefix in ("", "noisy_") if score_noisy else ("",):
                raw = row.get(prefix + "pesq_nb_raw")
                row[prefix + "pesq_nb_mos"] = None if raw is None else pesq_raw_to_mos_lqo(raw)
        invalid = [row for row in rows if not row["valid"]]
        path = save_scores(args.results_dir, run, rows, summarize(rows), config, f"{self.name}/{args.experiment_name}",
                           snr_db=config["data"]["snr_db"], inference_seconds=inference_seconds,
                           invalid=len(invalid))
        from reproductions.sednn.report import average_row, format_sednn_table, per_noise_statistics

        statistics = per_noise_statistics(rows)
        if statistics:
            _log("\n".join(format_sednn_table(statistics, config["data"]["snr_db"])))
        if invalid:
            _log(f"{len(invalid)} of {len(rows)} files not scored: " + "; ".join(r["reason"] for r in invalid[:5]))
        if statistics:
            mean, _ = average_row(statistics)
            noisy = per_noise_statistics(rows, "noisy_pesq_nb_raw")
            noisy_text = f", noisy {average_row(noisy)[0]:.3f}" if noisy else ""
            _log(f"{run}: PESQ (raw NB) enhanced {mean:.3f}{noisy_text} -> {path}")
        if run in ROBUSTNESS_RUNS and args.max_files is None:
            self._evaluate_robustness(config, args, run, enhance)
        return load_scores(args.results_dir, run)

    def _evaluate_robustness(self, config, args, run, enhance):
        """Score ``run`` (and, for the float model, the noisy input) on the shared robustness sets: unseen voices x
        unseen noises at -5/0/+5 dB and the test set replayed at -40 and -10 dBFS, into
        ``<results_dir>/scores/robustness/<set>/<system>.json``."""
        from common.evaluation import score_robustness
        from data_prep.paper_sets import robustness_sets

        evaluation = config["evaluation"]
        started = time.time()
        sets = robustness_sets(load_corpus(config), mixture_examples(config, "test"), seed=config["data"]["seed"],
                               max_items=evaluation["robustness_items"])
        # The noisy input's scores come with the float model's run.
        scores = score_robustness({run: enhance}, sets, sample_rate=config["data"]["sample_rate"],
                                  processes=evaluation["processes"], results_dir=args.results_dir,
                                  score_noisy=run == "float", config=config,
                                  run=f"{self.name}/{args.experiment_name}")
        _log(f"{run}: robustness sets scored in {time.time() - started:.1f} s -> "
             f"{Path(args.results_dir) / 'scores' / 'robustness'}")
        return scores

    def _evaluate_folders(self, config, args):
        from common.evaluation import check_folders, score_folders

        rate = config["data"]["sample_rate"]
        pairs = check_folders(args.noisy_dir, args.clean_dir, rate, args.max_files)
        predict, scaler, run = predictor(config, args)
        enhancers = {run: enhancer(config, predict, scaler)}
        score_folders(pairs, enhancers, EVALUATION_METRICS, args.results_dir,
                      processes=config["evaluation"]["processes"], config=config, run=args.config_name, log=_log)
        return None

    def enhance(self, config, args):
        from common.enhancement import run_enhancement

        def load():
            predict, scaler, run = predictor(config, args)
            _log(f"model: {run}")
            return enhancer(config, predict, scaler)

        run_enhancement(args, config["data"]["sample_rate"], load)
        return None

    # ------------------------------------------------------------------------------------------ table
    def table(self, config, args):
        from common.evaluation import load_scores, scores_path
        from reproductions.sednn.report import build_tables

        documents = {}
        for run in runs():
            document = load_scores(args.results_dir, run)
            if document is not None:
                documents[run] = document
        if "float" not in documents:
            raise FileNotFoundError(f"{scores_path(args.results_dir, 'float')}: evaluate the float model first "
                                    "(run.sh stage 3)")
        text, tables = build_tables(documents, config, model_sizes(config, args))
        _log(text)
        main_table, compression_table = tables
        main_table.save(args.results_dir, config=config, extra={"sednn_table": text}, run=args.config_name)
        if compression_table is not None:
            compression_table.save(Path(args.results_dir) / "compression", config=config, run=args.config_name)
        robustness = robustness_table(config, args.results_dir, documents)
        if robustness is not None:
            _log("\n" + robustness.render())
            robustness.save(Path(args.results_dir) / "robustness", config=config, run=args.config_name)
        return None


def artifacts(exp_dir, config) -> dict:
    """The models and .tflite files run.sh writes (``common.artifacts``): stage 2 trains the float DNN, stage 4
    prunes and clusters it, stage 5 exports every model on disk and always loads the float checkpoint."""
    from common.artifacts import Artifact
    from reproductions.sednn.trainer import checkpoint_path

    exp_dir = Path(exp_dir)
    published = {"float": Artifact(checkpoint_path(exp_dir, config["inference"]["iteration"]), 2)}
    for variant in SEDNN_VARIANTS[1:]:
        published[variant] = Artifact(exp_dir / "compressed" / f"{variant}.h5", 4, ("float",))
    for variant in SEDNN_VARIANTS:
        for mode in TFLITE_MODES:
            published[f"{variant}_{mode}_tflite"] = Artifact(exp_dir / "tflite" / f"{variant}_{mode}.tflite", 5,
                                                             ("float",))
    return published
