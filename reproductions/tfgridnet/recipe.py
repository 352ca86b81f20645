"""TF-GridNet recipe: direct learning (DL) versus SNR-progressive learning (PL), DNSMOS / PESQ / STOI / SI-SNR.

Commands (``python -m reproductions.tfgridnet COMMAND --config mini|paper``):

* ``info``: parameter counts (paper config: 2,351,523 DL, 2,353,835 PL) and MACs per second of audio.
* ``train --strategy direct|progressive|both``: on-the-fly mixtures at U(-5, 15) dB; DL learns the clean speech,
  PL one head per block with targets re-mixed at 0/5/10/15 dB and the clean speech for the last block, all
  losses weighted 1. Adam, linear warm-up then cosine decay, global-norm clipping (values from SEtrain,
  UNCONFIRMED upstream: ``docs/tfgridnet.md#training``).
* ``evaluate``: PESQ (WB, P.862.2), STOI, SI-SNR and DNSMOS (P.808, SIG, BAK, OVRL) of noisy, DL and PL on the
  test split (``--tflite`` scores the exported float .tflite files instead).
* ``export``: .tflite float32 and dynamic-range (waveform in, waveform out, STFT inside as a DFT matmul), and
  int16x8 / int8 attempts of the spectral core (STFT/iSTFT outside, ``docs/toolchain.md#tflite-conversion``); what
  converts is scored, what does not is reported with the converter's message.
* ``enhance IN OUT [--strategy ...] [--tflite]``: enhance a wav file or a folder.
* ``table``: Table 1 (DNSMOS, size, MACs) and Table 2 (PESQ, STOI, SI-SNR) with upstream's figures beside ours,
  plus the export table.

This file is the driver; the steps it runs live beside it: ``data.py`` (corpus, mixtures, PL targets, batches),
``strategies.py`` (the DL / PL / ablation networks and their weights), ``trainer.py`` (optimiser and loss),
``inference.py`` (enhancers), ``scoring.py`` (test pairs and saved scores), ``export.py`` (.tflite forms) and
``report.py`` (tables and learning curves).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from common.enhancement import configured_enhancer
from reproductions.tfgridnet.data import SAMPLE_RATE, make_batches, open_corpus
from reproductions.tfgridnet.export import export_models
from reproductions.tfgridnet.inference import enhancer, tflite_enhancer
from reproductions.tfgridnet.report import print_tables
from reproductions.tfgridnet.scoring import (
    METRICS,
    evaluation_examples,
    evaluation_pairs,
    load_evaluation,
    robustness_items,
    score_pairs,
)
from reproductions.tfgridnet.strategies import (
    ABLATION,
    STRATEGIES,
    STRATEGY_LABELS,
    build_model,
    build_strategy_model,
    load_trained,
    macs_per_second,
)
from reproductions.tfgridnet.trainer import compile_model


def _log(message: str) -> None:
    print(message, flush=True)


def _strategies(args) -> tuple:
    choice = getattr(args, "strategy", "both") or "both"
    if choice == "all":
        return STRATEGIES + (ABLATION,)
    return STRATEGIES if choice == "both" else (choice,)


# ------------------------------------------------------------------------------------------------------ recipe
class Recipe:
    """TF-GridNet with direct and SNR-progressive learning (upstream: Acceleration123/Speech-Enhancement)."""

    name = "tfgridnet"
    # Every top-level section of conf/*.yaml: a renamed or missing one fails on loading, not as a KeyError later.
    config_sections = ("model", "loss", "data", "training", "inference", "evaluation", "export")

    def add_arguments(self, command, parser):
        if command in ("train", "evaluate", "enhance", "export"):
            default = "progressive" if command == "enhance" else "both"
            parser.add_argument("--strategy", choices=("direct", "progressive", ABLATION, "both", "all"),
                                default=default,
                                help=f"direct learning, progressive learning, our ablation '{ABLATION}' (DL with the "
                                     "complex spectrum as input), both (DL and PL) or all three (default: %(default)s)")
        if command == "evaluate":
            from common.evaluation import FOLDER_HELP

            parser.epilog = FOLDER_HELP

    # ------------------------------------------------------------------------------------------------ info
    def info(self, config, args):
        from common.accounting import count_parameters
        from reproductions.tfgridnet import tfgridnet

        direct = build_model(config, progressive=False)
        progressive = build_model(config, progressive=True)
        result = {
            "model": "TF-GridNet",
            "config": config["config_name"],
            "params": count_parameters(direct),
            "params_pl": count_parameters(progressive),
            "macs_per_second": macs_per_second(direct),
            "macs_per_second_pl": macs_per_second(progressive),
        }
        ablation = build_strategy_model(config, ABLATION)
        result.update(params_complex=count_parameters(ablation), macs_per_second_complex=macs_per_second(ablation))
        if config["config_name"] == "paper":
            result.update(
                paper_params_keras=tfgridnet.PAPER_PARAMETERS,
                paper_params_pl_keras=tfgridnet.PAPER_PARAMETERS_PROGRESSIVE,
                seed_params_pytorch=tfgridnet.SEED_PYTORCH_PARAMETERS,
                seed_params_pl_pytorch=tfgridnet.SEED_PYTORCH_PARAMETERS_PROGRESSIVE,
                seed_macs_per_second_g={"direct": 33.65, "progressive": 33.69},
            )
        args.results_dir.mkdir(parents=True, exist_ok=True)
        (args.results_dir / "info.json").write_text(json.dumps(result, indent=1))
        return result

    # ----------------------------------------------------------------------------------------------- train
    def train(self, config, args):
        from common.training import config_precision, training_precision

        with training_precision(*config_precision(config), log=_log):
            self._train(config, args)

    def _train(self, config, args):
        from common.recurrent import fused_lstm_setting
        from common.tfkeras import keras
        from common.training import ResumableTraining, set_seed

        corpus = open_corpus(config)
        training = config["training"]
        for strategy in _strategies(args):
            progressive = strategy == "progressive"
            set_seed(int(training["seed"]))
            model = build_strategy_model(config, strategy, fused_lstm=fused_lstm_setting(config))
            compile_model(model, config, len(model.outputs))
            exp_dir = Path(args.exp_dir) / strategy
            trainer = ResumableTraining(model, exp_dir, monitor="val_loss", mode="min")
            train_batches = make_batches(config, corpus, "train", progressive, fresh_every_epoch=True,
                                         first_epoch=trainer.initial_epoch)
            valid_batches = make_batches(config, corpus, "valid", progressive, fresh_every_epoch=False)
            _log(f"[tfgridnet] training {STRATEGY_LABELS[strategy]} ({model.count_params():,} parameters, "
                 f"{len(train_batches)} steps/epoch, {training['epochs']} epochs) in {exp_dir}")
            started = time.time()
            trainer.fit(train_batches, epochs=int(training["epochs"]), validation_data=valid_batches,
                        callbacks=[keras.callbacks.TerminateOnNaN()])
            _log(f"[tfgridnet] {strategy}: {time.time() - started:.0f} s; best weights {trainer.best_weights_path}")

    # -------------------------------------------------------------------------------------------- evaluate
    def _enhancer(self, config, args, strategy):
        if args.tflite:
            path = Path(args.exp_dir) / "tflite" / f"{strategy}_float32.tflite"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: run 'export' first")
            return configured_enhancer(config, tflite_enhancer(path))
        return configured_enhancer(config, enhancer(load_trained(config, args, strategy)))

    def evaluate(self, config, args):
        if args.noisy_dir is not None:
            from common.evaluation import check_folders, score_folders

            folder_pairs = check_folders(args.noisy_dir, args.clean_dir, SAMPLE_RATE, args.max_files)
            enhancers = {strategy + ("_tflite" if args.tflite else ""): self._enhancer(config, args, strategy)
                         for strategy in _strategies(args)}
            score_folders(folder_pairs, enhancers, METRICS, args.results_dir,
                          processes=int(config["evaluation"]["processes"]), config=config,
                          run=f"{self.name}/{config['config_name']}", log=_log)
            return None
        from common.evaluation import save_scores

        items = robustness_items(config)
        pairs = evaluation_pairs(config, args)
        suffix = "_tflite" if args.tflite else ""
        run = f"{self.name}/{config['config_name']}"
        # the level rows replay the first test files, so the nominal row is scored on those same files
        robustness = {"items": items, "nominal_files": len(pairs) if items is None else min(items, len(pairs))}
        for index, strategy in enumerate(_strategies(args)):
            enhance = self._enhancer(config, args, strategy)
            rows, summary = score_pairs(config, enhance, pairs, strategy, score_noisy=index == 0)
            save_scores(args.results_dir, strategy + suffix, rows,
                        {key: value for key, value in summary.items() if not key.startswith("noisy_")}, config, run,
                        robustness=robustness)
            if index == 0:
                noisy_rows = [{"name": row["name"], **{key[len("noisy_"):]: value for key, value in row.items()
                                                      if key.startswith("noisy_")}} for row in rows]
                save_scores(args.results_dir, "noisy" + suffix, noisy_rows,
                            {key[len("noisy_"):]: value for key, value in summary.items()
                             if key.startswith("noisy_")}, config, run)
            _log(f"[tfgridnet] {strategy}: " + ", ".join(
                f"{key} {value[0]:.3f}" for key, value in summary.items() if isinstance(value, tuple)
                and not key.startswith("noisy_")))
        self._robustness(config, args, items)
        return load_evaluation(args.results_dir, suffix)

    def _robustness(self, config, args, items):
        """Score noisy and every evaluated system on the shared unseen-voice x unseen-noise sets and on the test
        files replayed at other levels (scores/robustness/ beside the test-set scores)."""
        from common.evaluation import score_robustness
        from data_prep.paper_sets import robustness_sets

        evaluation = config["evaluation"]
        corpus = open_corpus(config)
        test_examples = evaluation_examples(config, args, corpus)
        if items is not None:
            test_examples = test_examples[:items]
        sets = robustness_sets(corpus, test_examples, seed=int(evaluation["seed"]), max_items=items)
        suffix = "_tflite" if args.tflite else ""
        enhancers = {strategy + suffix: self._enhancer(config, args, strategy) for strategy in _strategies(args)}
        scores = score_robustness(enhancers, sets, processes=int(evaluation["processes"]),
                                  results_dir=args.results_dir)
        _log(f"[tfgridnet] robustness scores: {Path(args.results_dir) / 'scores' / 'robustness'}")
        return scores

    # ---------------------------------------------------------------------------------------------- export
    def export(self, config, args):
        """Float32 and dynamic-range waveform models, int16x8 / int8 spectral cores; each scored if it converts."""
        return export_models(config, args, _strategies(args), _log)

    # --------------------------------------------------------------------------------------------- enhance
    def enhance(self, config, args):
        from common.enhancement import run_enhancement

        strategy = "progressive" if args.strategy == "both" else args.strategy

        def load():
            if args.tflite:
                return configured_enhancer(
                    config, tflite_enhancer(Path(args.exp_dir) / "tflite" / f"{strategy}_float32.tflite"))
            return configured_enhancer(config, enhancer(load_trained(config, args, strategy)))

        run_enhancement(args, SAMPLE_RATE, load)
        return None

    # ----------------------------------------------------------------------------------------------- table
    def table(self, config, args):
        return print_tables(config, args, lambda: self.info(config, args))


def artifacts(exp_dir, config) -> dict:
    """The models and .tflite files run.sh writes (``common.artifacts``): stages 2 and 3 train DL and PL, stage 4
    the complex ablation, stage 6 exports both strategies in one go (``export --strategy both`` stops at the first
    one without weights, so it needs both)."""
    from common.artifacts import Artifact

    exp_dir = Path(exp_dir)
    published = {strategy: Artifact(exp_dir / strategy / "best.weights.h5", stage)
                 for strategy, stage in zip(STRATEGIES + (ABLATION,), (2, 3, 4))}
    # The export command's four forms: float32 and dynamic-range waveform models, int16x8 and int8 spectral cores.
    for strategy in STRATEGIES:
        for mode in ("float32", "dynamic", "int16x8", "int8"):
            published[f"{strategy}_{mode}"] = Artifact(exp_dir / "tflite" / f"{strategy}_{mode}.tflite", 6, STRATEGIES)
    return published
