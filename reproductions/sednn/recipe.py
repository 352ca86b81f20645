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
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

SEDNN_VARIANTS = ("float", "pruned", "clustered")
TFLITE_MODES = ("float32", "int8")
# sednn's raw NB PESQ, the wide-band and intelligibility metrics of the project's checks, and SI-SNR.
EVALUATION_METRICS = ("pesq_nb_raw", "pesq_wb", "stoi", "si_snr")
# The runs scored on the robustness sets: the float DNN and its int8 .tflite.
ROBUSTNESS_RUNS = ("float", "float_int8_tflite")
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CORPORA = ("mini", "manifest", "sednn_folders", "timit")


def _log(message: str) -> None:
    print(message, flush=True)


class Recipe:
    """sednn: Xu et al.'s regression DNN (Kong's Keras mixture2clean_dnn), per-noise PESQ table, compression."""

    name = "sednn"
    # Every top-level section of conf/*.yaml: a renamed or missing one fails on loading, not as a KeyError later.
    config_sections = ("data", "features", "model", "training", "inference", "evaluation", "compression")
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
            suffix = f"_{_snr_text(snr)}db"
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

    # ------------------------------------------------------------------------------------------ data
    def _corpus(self, config):
        from data_prep.registry import open_corpus

        # sednn trains on all 4620 TIMIT training utterances: no speakers are held out for validation.
        return open_corpus(config["data"], config.get("config_path"), names=CORPORA, root=REPOSITORY_ROOT,
                           adapter_options={"timit": {"valid_fraction": 0.0}})

    def _examples(self, config, split):
        from common.mixing import Augmentation
        from data_prep.paper_sets import sednn_set

        data = config["data"]
        magnification = data["magnification"] if split == "train" else None
        key = {"train": "max_train_speech", "test": "max_test_speech"}[split]
        kwargs = dict(seed=data["seed"], max_speech=data.get(key),
                      augmentation=Augmentation.from_config(data.get("augmentation")))
        if magnification is not None:
            kwargs["magnification"] = magnification
        corpus = self._corpus(config)
        if split == "train":
            examples = _snr_cycled(lambda snr: sednn_set(corpus, split, snr_db=snr, **kwargs),
                                   _training_snrs(config))
        else:
            examples = sednn_set(corpus, split, snr_db=data["snr_db"], **kwargs)
        wanted = data.get("test_noise_types") if split == "test" else None
        if wanted:
            # A subset of the test noise types keeps the mini run short; every kept noise still meets every
            # test utterance, as in sednn.
            missing = set(wanted) - {example.meta["noise_type"] for example in examples}
            if missing:
                raise ValueError(f"{config['config_path']}: data.test_noise_types {sorted(missing)} are not test "
                                 "noise types of the corpus")
            examples = [example for example in examples if example.meta["noise_type"] in set(wanted)]
        return examples

    def _features(self, config, args):
        """Packed, unscaled features and the scaler; built once per data/feature configuration."""
        import h5py

        from reproductions.sednn.pipeline import pack_examples
        from reproductions.sednn.scaler import Scaler

        features_dir = Path(args.exp_dir) / "features"
        level = config["inference"].get("level_dbfs")
        identity = {"data": config["data"], "features": config["features"], "inference_level_dbfs": level}
        meta_path = features_dir / "meta.json"
        if not (meta_path.is_file() and json.loads(meta_path.read_text()) == identity):
            features_dir.mkdir(parents=True, exist_ok=True)
            started = time.time()
            for split in ("train", "test"):
                examples = self._examples(config, split)
                if split == "test" and level is not None:
                    from data_prep.paper_sets import at_level

                    # te_loss measures the test mixtures as inference gives them to the network.
                    examples = at_level(examples, level)
                inputs, targets = pack_examples(examples, config["features"]["n_concat"],
                                                config["features"]["hop"], description=f"pack {split}")
                with h5py.File(features_dir / f"{split}.h5.partial", "w") as handle:
                    handle.create_dataset("x", data=inputs)
                    handle.create_dataset("y", data=targets)
                (features_dir / f"{split}.h5.partial").replace(features_dir / f"{split}.h5")
                if split == "train":
                    Scaler.fit(inputs).save_npz(features_dir / "scaler.npz")
                _log(f"{split}: {inputs.shape[0]} segments of {inputs.shape[1]}x{inputs.shape[2]}")
            meta_path.write_text(json.dumps(identity, indent=1))
            _log(f"Features: {time.time() - started:.1f} s -> {features_dir}")
        arrays = {}
        for split in ("train", "test"):
            with h5py.File(features_dir / f"{split}.h5", "r") as handle:
                arrays[split] = (handle["x"][()], handle["y"][()])
        return arrays, Scaler.load_npz(features_dir / "scaler.npz")

    # ------------------------------------------------------------------------------------------ train
    def train(self, config, args):
        arrays, scaler = self._features(config, args)
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

    def _float_checkpoint(self, config, args):
        checkpoint = getattr(args, "checkpoint", None)
        if checkpoint is not None:
            return Path(checkpoint)
        from reproductions.sednn.trainer import checkpoint_path

        return checkpoint_path(args.exp_dir, config["inference"]["iteration"])

    def _compressed_path(self, args, variant):
        return Path(args.exp_dir) / "compressed" / f"{variant}.h5"

    def _train_compressed(self, config, args, arrays, scaler):
        from reproductions.sednn.compress import fine_tune_compressed
        from reproductions.sednn.trainer import load_checkpoint

        output = self._compressed_path(args, args.variant)
        if output.is_file():
            _log(f"{output} exists; delete it to compress again")
            return None
        model, checkpoint_scaler = load_checkpoint(self._float_checkpoint(config, args))
        train_x, train_y = arrays["train"]
        started = time.time()
        fine_tune_compressed(model, args.variant, config["compression"], checkpoint_scaler,
                             checkpoint_scaler.transform(train_x), checkpoint_scaler.transform(train_y), output,
                             batch_size=config["training"]["batch_size"], seed=config["training"]["seed"], log=_log)
        _log(f"{args.variant}: {time.time() - started:.1f} s -> {output}")
        return None

    # ------------------------------------------------------------------------------------------ export
    def _tflite_path(self, args, variant, mode):
        return Path(args.exp_dir) / "tflite" / f"{variant}_{mode}.tflite"

    def export(self, config, args):
        from reproductions.sednn.compress import export_variant
        from reproductions.sednn.trainer import load_checkpoint

        arrays, _ = self._features(config, args)
        sources = {"float": self._float_checkpoint(config, args)}
        for variant in ("pruned", "clustered"):
            if self._compressed_path(args, variant).is_file():
                sources[variant] = self._compressed_path(args, variant)
        for variant, path in sources.items():
            model, scaler = load_checkpoint(path)
            modes = ("float32", "int8") if variant == "float" else ("float32",)
            for mode in modes:
                target = self._tflite_path(args, variant, mode)
                export_variant(model, scaler, target, mode, scaler.transform(arrays["train"][0]),
                               config["compression"]["calibration_segments"], seed=config["training"]["seed"])
                _log(f"Exported {target} ({target.stat().st_size:,} bytes)")
        return None

    # ------------------------------------------------------------------------------------------ inference
    def _predictor(self, config, args):
        """``(predict, scaler, run_name)`` for the model that ``args`` selects."""
        from reproductions.sednn.pipeline import keras_predictor, tflite_predictor
        from reproductions.sednn.scaler import Scaler
        from reproductions.sednn.trainer import load_checkpoint

        variant = args.variant
        if args.tflite:
            from common.tflite import TFLiteModel

            tflite_path = self._tflite_path(args, variant, args.tflite_mode)
            if not tflite_path.is_file():
                raise FileNotFoundError(f"{tflite_path}: not exported; run the export stage of run.sh first")
            scaler = Scaler.load_npz(tflite_path.with_suffix(".scaler.npz"))
            return tflite_predictor(TFLiteModel(tflite_path)), scaler, f"{variant}_{args.tflite_mode}_tflite"
        path = self._float_checkpoint(config, args) if variant == "float" else self._compressed_path(args, variant)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no {variant} model; run the training stage of run.sh first")
        model, scaler = load_checkpoint(path)
        return keras_predictor(model), scaler, variant

    def _enhancer(self, config, predict, scaler):
        """``noisy -> enhanced`` of one model, at the configuration's inference level (``inference.level_dbfs``)."""
        from common.enhancement import level_normalized
        from reproductions.sednn.pipeline import enhance_waveform

        n_concat = config["features"]["n_concat"]
        return level_normalized(lambda noisy: enhance_waveform(noisy, predict, scaler, n_concat)[0],
                                config["inference"].get("level_dbfs"))

    def evaluate(self, config, args):
        from common.audio import write_audio
        from common.evaluation import load_scores, save_scores
        from common.metrics import evaluate_pairs, pesq_raw_to_mos_lqo, summarize
        from reproductions.sednn.report import plot_log_spectrograms

        if args.noisy_dir is not None:
            return self._evaluate_folders(config, args)
        predict, scaler, run = self._predictor(config, args)
        enhance = self._enhancer(config, predict, scaler)
        evaluation = config["evaluation"]
        items = self._evaluation_items(config, args)
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
        sets = robustness_sets(self._corpus(config), self._examples(config, "test"), seed=config["data"]["seed"],
                               max_items=evaluation["robustness_max_items"])
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
        predict, scaler, run = self._predictor(config, args)
        enhancers = {run: self._enhancer(config, predict, scaler)}
        score_folders(pairs, enhancers, EVALUATION_METRICS, args.results_dir,
                      processes=config["evaluation"]["processes"], config=config, run=args.config_name, log=_log)
        return None

    def _evaluation_items(self, config, args):
        """``[(name, noise_type, loader)]`` of the test set, with ``loader() -> (noisy, clean)``."""
        items = []
        for example in self._examples(config, "test"):
            meta = example.meta
            name = f"{Path(str(meta['speech'])).stem}.{meta['noise_type']}.{Path(str(meta['noise'])).stem}"

            def loader(example=example):
                noisy, clean, _ = example.load()
                return noisy, clean

            items.append((name, meta["noise_type"], loader))
        return items

    def enhance(self, config, args):
        from common.enhancement import run_enhancement

        def load():
            predict, scaler, run = self._predictor(config, args)
            _log(f"model: {run}")
            return self._enhancer(config, predict, scaler)

        run_enhancement(args, config["data"]["sample_rate"], load)
        return None

    # ------------------------------------------------------------------------------------------ table
    @staticmethod
    def _runs() -> list:
        """Every run ``evaluate`` can score on the test set: the models, then their .tflite files."""
        return list(SEDNN_VARIANTS) + [f"{variant}_{mode}_tflite" for variant in SEDNN_VARIANTS
                                       for mode in TFLITE_MODES]

    def _sizes(self, config, args, documents):
        """run -> size report (parameters, non-zero, .tflite raw and gzip bytes) of the model that run used."""
        from common.accounting import size_report
        from reproductions.sednn.trainer import load_checkpoint

        sizes = {}
        for variant in SEDNN_VARIANTS:
            path = self._float_checkpoint(config, args) if variant == "float" else self._compressed_path(args, variant)
            if not path.is_file():
                continue
            model, _ = load_checkpoint(path)
            float32 = self._tflite_path(args, variant, "float32")
            sizes[variant] = size_report(model, float32 if float32.is_file() else None)
            for mode in TFLITE_MODES:
                exported = self._tflite_path(args, variant, mode)
                if exported.is_file():
                    # gzip -9 of a 50 MB file takes seconds: the float32 export was measured just above.
                    sizes[f"{variant}_{mode}_tflite"] = (sizes[variant] if mode == "float32"
                                                         else size_report(model, exported))
        return sizes

    def table(self, config, args):
        from common.evaluation import load_scores, scores_path
        from reproductions.sednn.report import build_tables

        documents = {}
        for run in self._runs():
            document = load_scores(args.results_dir, run)
            if document is not None:
                documents[run] = document
        if "float" not in documents:
            raise FileNotFoundError(f"{scores_path(args.results_dir, 'float')}: evaluate the float model first "
                                    "(run.sh stage 3)")
        text, tables = build_tables(documents, config, self._sizes(config, args, documents))
        _log(text)
        main_table, compression_table = tables
        main_table.save(args.results_dir, config=config, extra={"sednn_table": text}, run=args.config_name)
        if compression_table is not None:
            compression_table.save(Path(args.results_dir) / "compression", config=config, run=args.config_name)
        robustness = self._robustness_table(config, args.results_dir, documents)
        if robustness is not None:
            _log("\n" + robustness.render())
            robustness.save(Path(args.results_dir) / "robustness", config=config, run=args.config_name)
        return None

    def _robustness_table(self, config, results_dir, documents):
        """The shared robustness table of the runs that ``evaluate`` scored on the robustness sets, or None."""
        from common.evaluation import load_robustness, robustness_table

        # The noisy input first, then the systems in the order of ROBUSTNESS_RUNS.
        scores = load_robustness(results_dir, ROBUSTNESS_RUNS)
        nominal = {run: documents[run]["summary"] for run in ROBUSTNESS_RUNS
                   if run in documents and any(run in by_system for by_system in scores.values())}
        robustness_dir = Path(results_dir) / "scores" / "robustness"
        if not scores:
            _log(f"no robustness scores under {robustness_dir}: run the evaluate stages (run.sh stages 3 and 6)")
            return None
        if any("noisy" not in by_system for by_system in scores.values()):
            raise FileNotFoundError(f"{robustness_dir}: no scores of the noisy input; evaluate the float model first "
                                    "(run.sh stage 3)")
        snr = _snr_text(config["data"]["snr_db"])
        level = config["inference"].get("level_dbfs")
        title = (f"sednn DNN robustness, {config['data']['corpus']} corpus: unseen voices x unseen noises, and the "
                 f"{snr} dB test set at other input levels (inference.level_dbfs {level})")
        return robustness_table(scores, title, nominal=nominal)


def _training_snrs(config) -> list:
    """The training SNRs: ``data.train_snrs_db`` where set (a list), else sednn's one ``data.snr_db``."""
    snrs = config["data"].get("train_snrs_db")
    if snrs is None:
        return [config["data"]["snr_db"]]
    if not isinstance(snrs, (list, tuple)) or not snrs or not all(isinstance(snr, (int, float)) for snr in snrs):
        raise ValueError(f"{config.get('config_path', 'config')}: data.train_snrs_db must be null or a non-empty "
                         f"list of numbers (dB), got {snrs!r}")
    return [float(snr) for snr in snrs]


def _snr_cycled(make_set, snrs) -> list:
    """One training set whose mixture ``i`` is mixed at ``snrs[i % len(snrs)]``.

    sednn's draws (noise choice, onsets) do not depend on the SNR, so the sets of every SNR list the same
    utterance-noise pairs in the same order: taking mixture ``i`` from set ``i % len(snrs)`` keeps sednn's pairs and
    their number and spreads the SNRs evenly over utterances and noises.
    """
    sets = [make_set(snr) for snr in snrs]
    return [sets[index % len(sets)][index] for index in range(len(sets[0]))]


def _snr_text(snr) -> str:
    return str(int(snr)) if float(snr).is_integer() else str(snr)



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
