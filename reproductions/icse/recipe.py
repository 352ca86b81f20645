"""ICSE: Fu et al.'s waveform FCN compressed by parameter pruning (PP) and parameter quantization (PQ).

Reproduces Wu, Yu, Fu, Liu, Chien, Tsao, "Increasing compactness of deep learning based speech enhancement models
with parameter pruning and quantization techniques" (arXiv 1906.01078, repo WilliamYu1993/ICSE); spec with sources in
``docs/icse.md``.

Pipeline (``run.sh``; every step is a command of ``python -m reproductions.icse``)::

    train --variant fcn        float FCN: one whole utterance per batch, MSE, Adam; or --init-from-keras1
    train --variant pp         ICSE channel pruning at each theta, retrained with the mask held
    train --variant pq         ICSE k-means (16+16, output 4+4) retrained with shared centroids, k sweep, FP16
    train --variant pp_pq      PP then PQ for each theta and k (the paper's pipeline)
    train --variant released   the authors' FCNN_0509 through our PP+PQ, beside the authors' own PP+PQ file
    export                     int8 TFLite (post-training, float I/O) of the FCN and the PP+PQ model
    evaluate                   PESQ (WB P.862.2 and NB P.862.1 MOS-LQO), STOI, SI-SNR of every model on the test set
    table                      our figures beside the paper's, with sizes under the ICSE bit rule and real bytes

Trained models are stored as ``exp/icse/<config>/models/<variant>.weights.h5`` with a ``<variant>.json`` describing
them (parent, theta, code-book sizes, per-layer pruning report); retraining runs (resumable) live in
``exp/icse/<config>/runs/<variant>/``; metrics in ``results/icse/<config>/scores/<variant>.json``, scores of a
folder of pairs (``evaluate --noisy-dir``) in ``results/icse/<config>/scores/folders/<variant>.json``.

This file is the driver; the steps it runs live beside it: ``data.py`` (corpus, examples, batches), ``trainer.py``
(training loop), ``compression.py`` (PP and PQ, their retraining), ``size_rule.py``, ``variants.py`` (stored models),
``released.py`` (the authors' files), ``scoring.py`` (enhancers, scores, robustness) and ``report.py`` (tables).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.enhancement import configured_enhancer
from reproductions.icse.compression import prune_and_retrain, quantize_and_retrain, round_centroids_to_fp16
from reproductions.icse.data import SAMPLE_RATE, load_corpus, peak_normalise, test_examples, training_examples
from reproductions.icse.fcn import conv_layers, conv_weight_statistics, fcn_from_keras1, load_keras1_weights
from reproductions.icse.released import RELEASED_DIR_VARIABLE, released_dir, train_released
from reproductions.icse.report import print_tables
from reproductions.icse.scoring import (
    METRICS,
    evaluate_robustness,
    keras_enhancer,
    mean_of,
    save_metrics,
    score,
    tflite_enhancer,
)
from reproductions.icse.size_rule import FLOAT_LEVELS, float_levels, icse_size, inferred_levels, kept_fraction
from reproductions.icse.trainer import train_model
from reproductions.icse.variants import (
    build_model,
    load_variant,
    main_pp_pq,
    metrics_path,
    models_dir,
    pp_name,
    pq_name,
    save_variant,
    stored_variants,
    theta_name,
    tflite_path,
)

RECIPE_DIR = Path(__file__).resolve().parent
VARIANTS = ("fcn", "pp", "pq", "pp_pq", "released")


class Recipe:
    """ICSE: PP + PQ of Fu et al.'s waveform FCN (arXiv 1906.01078)."""

    name = "icse"
    # Every top-level section of conf/*.yaml: a renamed or missing one fails on loading, not as a KeyError later.
    config_sections = ("model", "data", "training", "pruning", "quantization", "export", "inference",
                       "evaluation", "released")

    def add_arguments(self, command, parser):
        if command in ("info", "train"):
            parser.add_argument("--init-from-keras1", type=Path, default=None, metavar="PATH",
                                help="start from a Keras 1.1 weight file of the FCN (e.g. the authors' FCNN_0509.hdf5)")
        if command == "train":
            parser.add_argument("--variant", choices=VARIANTS, default="fcn",
                                help="fcn: float FCN; pp: pruning at every theta; pq: k-means (and the k sweep); "
                                     "pp_pq: PP then PQ; released: the authors' files through our PP+PQ")
            parser.add_argument("--released-dir", type=Path, default=None, metavar="DIR",
                                help="folder of the authors' files named by released.unpruned and released.pp_pq "
                                     f"(--variant released; default: ${RELEASED_DIR_VARIABLE})")
        if command in ("evaluate", "enhance"):
            parser.add_argument("--variant", default=None,
                                help="model to use (default: every stored one for evaluate, 'fcn' for enhance)")
        if command == "evaluate":
            from common.evaluation import FOLDER_HELP

            parser.add_argument("--force", action="store_true", help="score again even if metrics exist")
            parser.epilog = FOLDER_HELP

    # -- info -----------------------------------------------------------------------------------------------------
    def info(self, config, args):
        from common.accounting import macs_per_second

        model = build_model(config)
        result = {
            "model": "Fu et al. FCN (ICSE)",
            "config": config["config_name"],
            "params": int(model.count_params()),
            "conv_weights": int(sum(layer.kernel.numpy().size for layer in conv_layers(model))),
            "macs_per_second": macs_per_second(model, np.zeros((1, SAMPLE_RATE, 1), np.float32)),
            "receptive_field_samples": int(len(conv_layers(model)) * (int(config["model"]["kernel_size"]) - 1) + 1),
        }
        if getattr(args, "init_from_keras1", None) is not None:
            model, sizes = fcn_from_keras1(args.init_from_keras1)
            result.update(params=int(model.count_params()),
                          conv_weights=int(sum(layer.kernel.numpy().size for layer in conv_layers(model))),
                          macs_per_second=macs_per_second(model, np.zeros((1, SAMPLE_RATE, 1), np.float32)),
                          receptive_field_samples=int(len(conv_layers(model)) * (sizes["kernel_size"] - 1) + 1))
            statistics = conv_weight_statistics(model)
            levels = inferred_levels(model)
            result.update({
                "init_from_keras1": str(args.init_from_keras1),
                "kept_fraction": round(kept_fraction(model), 6),
                "kept_fraction_per_layer": {row["layer"]: round(row["kept_fraction"], 6) for row in statistics},
                "distinct_nonzero_per_layer": {row["layer"]: row["distinct_nonzero"] for row in statistics},
                "icse_levels": {name: (None if k == FLOAT_LEVELS else k) for name, k in levels.items()},
                "size_percent": round(icse_size(model, levels), 4),
            })
        return result

    # -- train ----------------------------------------------------------------------------------------------------
    def train(self, config, args):
        from common.training import config_precision, training_precision

        with training_precision(*config_precision(config)):
            return self._train(config, args)

    def _train(self, config, args):
        from common.training import set_seed

        set_seed(int(config["training"]["seed"]))
        variant = getattr(args, "variant", "fcn")
        exp_dir = Path(args.exp_dir)
        if variant == "released":
            return train_released(config, exp_dir, released_dir(args))
        corpus = load_corpus(config)
        runs = exp_dir / "runs"
        if variant == "fcn":
            model = build_model(config)
            meta = {"parent": None, "levels": float_levels(model)}
            init = getattr(args, "init_from_keras1", None)
            if init is not None:
                load_keras1_weights(model, init)
                meta["init_from_keras1"] = str(init)
            train_model(model, corpus, config, runs / "fcn", config["training"])
            meta["training"] = config["training"]
            save_variant(model, exp_dir, "fcn", meta)
            print(f"saved {models_dir(exp_dir) / 'fcn.weights.h5'}")
        elif variant == "pp":
            for theta in config["pruning"]["thetas"]:
                model, _ = load_variant(config, exp_dir, "fcn")
                result = prune_and_retrain(model, corpus, config, runs / pp_name(theta), theta,
                                           config["pruning"]["retrain"])
                print(f"PP theta={theta_name(theta)}:\n{result.format()}")
                save_variant(model, exp_dir, pp_name(theta), {
                    "parent": "fcn", "theta": float(theta), "levels": float_levels(model),
                    "pruning_report": result.report, "kept_fraction_after_pruning": result.totals()["kept_fraction"],
                })
        elif variant == "pq":
            quantization = config["quantization"]
            main = int(quantization["clusters_per_sign"])
            for clusters in [main] + [int(k) for k in quantization["sweep"] if int(k) != main]:
                spec = quantization["retrain"] if clusters == main else quantization["sweep_retrain"]
                self._quantize_variant(config, corpus, exp_dir, "fcn", None, clusters, spec,
                                       fp16_copy=clusters == main or bool(quantization["fp16_sweep"]))
        elif variant == "pp_pq":
            quantization = config["quantization"]
            main = int(quantization["clusters_per_sign"])
            for theta in config["pruning"]["thetas"]:
                for clusters in [main] + [int(k) for k in quantization["theta_sweep"] if int(k) != main]:
                    spec = quantization["retrain"] if clusters == main else quantization["sweep_retrain"]
                    self._quantize_variant(config, corpus, exp_dir, pp_name(theta), theta, clusters, spec,
                                           fp16_copy=clusters == main)
        return None

    def _quantize_variant(self, config, corpus, exp_dir, parent, theta, clusters, spec, fp16_copy):
        name = pq_name(clusters, theta)
        model, parent_meta = load_variant(config, exp_dir, parent)
        levels, output_clusters = quantize_and_retrain(model, corpus, config, Path(exp_dir) / "runs" / name,
                                                       clusters, spec)
        meta = {"parent": parent, "theta": parent_meta.get("theta"), "clusters_per_sign": int(clusters),
                "output_clusters_per_sign": output_clusters, "levels": levels, "fp16": False, "retrain": spec}
        save_variant(model, exp_dir, name, meta)
        print(f"{name}: size {icse_size(model, levels):.2f} % of the float FCN (ICSE rule), "
              f"kept {100 * kept_fraction(model):.1f} % of conv weights")
        if fp16_copy:
            round_centroids_to_fp16(model)
            save_variant(model, exp_dir, pq_name(clusters, theta, fp16=True), dict(meta, fp16=True, parent=name))

    # -- export ---------------------------------------------------------------------------------------------------
    def export(self, config, args):
        """int8 TFLite (full-integer graph, float32 input/output: quantising the waveform itself costs quality in
        time-domain models, docs/toolchain.md#tflite-conversion) of the float FCN and of the main PP+PQ model."""
        from common.tflite import export_tflite

        exp_dir = Path(args.exp_dir)
        corpus = load_corpus(config)
        count = int(config["export"]["representative_utterances"])
        examples = training_examples(corpus, config, "train", 0, count)
        calibration = [peak_normalise(example.load()[0])[None, :, None] for example in examples]
        main = main_pp_pq(config)
        for variant in ("fcn", main):
            model, _ = load_variant(config, exp_dir, variant)
            path = export_tflite(model, tflite_path(exp_dir, variant), mode="int8", representative_data=calibration,
                                 int8_io=False)
            print(f"wrote {path} ({path.stat().st_size:,} bytes)")
        return None

    # -- evaluate -------------------------------------------------------------------------------------------------
    def _enhancer(self, config, args, variant):
        exp_dir = Path(args.exp_dir)
        if getattr(args, "tflite", False):
            return configured_enhancer(config, tflite_enhancer(tflite_path(exp_dir, variant)))
        checkpoint = getattr(args, "checkpoint", None)
        if checkpoint is not None:
            model = build_model(config)
            model.load_weights(str(checkpoint))
            return configured_enhancer(config, keras_enhancer(model))
        model, _ = load_variant(config, exp_dir, variant)
        return configured_enhancer(config, keras_enhancer(model))

    def evaluate(self, config, args):
        processes = int(config["evaluation"]["processes"])
        results_dir = Path(args.results_dir)
        exp_dir = Path(args.exp_dir)
        if args.noisy_dir is not None:
            return self._evaluate_folders(config, args, processes)
        corpus = load_corpus(config)
        force = getattr(args, "force", False)
        variants = [args.variant] if args.variant else stored_variants(exp_dir)
        plain = [variant for variant in variants if not variant.startswith("released")]
        released = [variant for variant in variants if variant.startswith("released")]
        jobs = []
        if plain:
            examples = test_examples(corpus, config, config["evaluation"]["max_items"])
            jobs.append(("noisy", None, examples))
            for variant in plain:
                jobs.append((variant, lambda variant=variant: self._enhancer(config, args, variant), examples))
                if args.variant is None and tflite_path(exp_dir, variant).is_file():
                    jobs.append((f"{variant}_int8", lambda variant=variant: configured_enhancer(
                        config, tflite_enhancer(tflite_path(exp_dir, variant))), examples))
            if args.variant and args.tflite:
                jobs = [(f"{args.variant}_int8", lambda: configured_enhancer(
                    config, tflite_enhancer(tflite_path(exp_dir, args.variant))), examples)]
        if released:
            examples = test_examples(corpus, config, config["released"]["max_items"])
            jobs.append(("released_noisy", None, examples))
            for variant in released:
                jobs.append((variant, lambda variant=variant: self._enhancer(config, args, variant), examples))
        for name, make_enhancer, examples in jobs:
            saved = metrics_path(results_dir, name)
            # The model file a score came from: a retrained or re-exported model makes its saved score stale.
            source = (tflite_path(exp_dir, name[: -len("_int8")]) if name.endswith("_int8")
                      else models_dir(exp_dir) / f"{name}.weights.h5")
            fresh = saved.is_file() and (not source.is_file() or saved.stat().st_mtime >= source.stat().st_mtime)
            if fresh and not force:
                print(f"{name}: metrics exist ({saved}), newer than the model; skipped (--force scores again)")
                continue
            enhance = None if make_enhancer is None else make_enhancer()
            rows, summary = score(enhance, examples, processes, name)
            save_metrics(results_dir, name, rows, summary, {"items": len(examples)}, config,
                         f"{self.name}/{args.experiment_name}")
            print(f"{name}: " + ", ".join(f"{metric} {mean_of(summary, metric):.3f}" for metric in METRICS
                                          if mean_of(summary, metric) is not None)
                  + f" ({summary['invalid']} invalid of {len(rows)})")
        if plain and args.variant is None and config["evaluation"].get("robustness_items") is not None:
            evaluate_robustness(config, exp_dir, results_dir, corpus, jobs[0][2], processes, force,
                                f"{self.name}/{args.experiment_name}")
        return None

    def _evaluate_folders(self, config, args, processes):
        from common.evaluation import check_folders, score_folders

        pairs = check_folders(args.noisy_dir, args.clean_dir, SAMPLE_RATE, args.max_files)
        variant = args.variant or "fcn"
        enhance = self._enhancer(config, args, variant)
        system = variant + ("_int8" if args.tflite else "")
        score_folders(pairs, {system: lambda noisy: peak_normalise(enhance(noisy))}, METRICS, args.results_dir,
                      processes=processes, config=config, run=f"{self.name}/{args.config_name}")
        return None

    # -- enhance --------------------------------------------------------------------------------------------------
    def enhance(self, config, args):
        from common.enhancement import run_enhancement

        def load():
            enhance = self._enhancer(config, args, args.variant or "fcn")
            return lambda noisy: peak_normalise(enhance(noisy))

        run_enhancement(args, SAMPLE_RATE, load)
        return None

    # -- table ----------------------------------------------------------------------------------------------------
    def table(self, config, args):
        print_tables(config, args.exp_dir, args.results_dir, args.config_name)
        return None


def artifacts(exp_dir, config) -> dict:
    """The models and .tflite files run.sh writes (``common.artifacts``): stage 1 trains the FCN, stage 3 prunes it
    (PP), stage 4 clusters it (PQ), stage 5 clusters each pruned model (PP+PQ), stage 6 exports the FCN and the
    main PP+PQ model in one go."""
    from common.artifacts import Artifact

    def weights(stored):
        return models_dir(exp_dir) / f"{stored}.weights.h5"

    clusters = int(config["quantization"]["clusters_per_sign"])
    published = {"fcn": Artifact(weights("fcn"), 1),
                 pq_name(clusters): Artifact(weights(pq_name(clusters)), 4, ("fcn",))}
    for theta in config["pruning"]["thetas"]:
        published[pp_name(theta)] = Artifact(weights(pp_name(theta)), 3, ("fcn",))
        published[pq_name(clusters, theta)] = Artifact(weights(pq_name(clusters, theta)), 5, (pp_name(theta),))
    exported = ("fcn", main_pp_pq(config))
    for stored in exported:
        published[f"{stored}_tflite"] = Artifact(tflite_path(exp_dir, stored), 6, exported)
    return published
