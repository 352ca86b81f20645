"""FQSE recipe: float Conv-TasNet, vanilla 8-bit QAT and FQSE 8-bit, int8 TFLite, SI-SNR table.

Commands (``python -m reproductions.fqse COMMAND --config mini|paper``):

* ``info``: parameter counts (float 5,000,881; with the FQSE additions 5,033,649 for the paper config) and MACs.
* ``train --variant float|vanilla|fqse``: negative SI-SDR, Adam 1e-3, global-norm clip 5, LR halved after 5
  epochs without improvement, early stop after 30 (``docs/fqse.md#training``). Both QAT variants
  start from the trained float model; ``--init-from-asteroid`` loads asteroid's ``pytorch_model.bin`` instead
  of training the float model.
* ``export``: full-int8 .tflite (int8 input and outputs) of both QAT cores; splitter/combiner stay outside.
* ``evaluate``: absolute SI-SNR and SI-SNRi of float (Keras), both QAT models in Keras fake-quant and as .tflite,
  on the test set and on re-mixed test sets at -6 ... 18 dB input SNR.
* ``enhance``: enhance wav files with one of the models (``--tflite`` runs the int8 file).
* ``table``: the paper's 14.74 / 14.42 / 14.77 beside ours, SI-SNR by input-SNR bucket, size and RTF.

This file is the driver; the steps it runs live beside it: ``data.py`` (examples, arrays, training segments),
``variants.py`` (the float / vanilla / FQSE cores, their loss and weights), ``asteroid.py`` (asteroid's checkpoint),
``inference.py`` (Keras and int8 .tflite enhancers), ``scoring.py`` (evaluated systems, saved summary) and
``report.py`` (tables and targets).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from common.enhancement import inference_level
from reproductions.fqse.asteroid import asteroid_state_to_core, load_asteroid_checkpoint
from reproductions.fqse.data import SAMPLE_RATE, load_arrays, load_examples, make_batches
from reproductions.fqse.inference import (
    at_inference_level,
    enhance_keras,
    enhance_tflite,
    int8_input_floor,
    tflite_path,
)
from reproductions.fqse.report import print_tables
from reproductions.fqse.scoring import (
    ROBUSTNESS_SYSTEMS,
    evaluation_systems,
    robustness_scores,
    save_summary,
    tflite_report,
)
from reproductions.fqse.variants import build_core, build_trainable, configured_loss, core_weights_path, load_core

VARIANTS = ("float", "vanilla", "fqse")


def _log(message: str) -> None:
    print(message, flush=True)


class Recipe:
    """FQSE: fully quantized 8-bit Conv-TasNet (float vs vanilla QAT vs FQSE), Keras and int8 TFLite."""

    name = "fqse"
    # Every top-level section of conf/*.yaml: a renamed or missing one fails on loading, not as a KeyError later.
    config_sections = ("model", "data", "loss", "training", "qat", "quantization", "inference", "fqse", "export", "evaluation")

    def add_arguments(self, command, parser):
        if command in ("train", "enhance"):
            parser.add_argument("--variant", choices=VARIANTS, default="float", help="which model (default float)")
        if command == "train":
            parser.add_argument("--init-from-asteroid", type=Path, default=None,
                                help="asteroid ConvTasNet pytorch_model.bin: use it as the float model")
        if command == "evaluate":
            from common.evaluation import FOLDER_HELP

            parser.epilog = FOLDER_HELP
            parser.add_argument("--skip-buckets", action="store_true", help="skip the per-input-SNR evaluation")

    # ----------------------------------------------------------------------------------------------- info
    def info(self, config, args):
        from common.accounting import macs_per_second

        float_core = build_core(config, "float")
        fqse_float = build_core(config, "fqse", quantized=False)
        one_second = np.zeros((1, SAMPLE_RATE), np.float32)
        return {
            "name": self.name,
            "config": config["config_name"],
            "params": int(float_core.count_params()),
            "params_fqse": int(fqse_float.count_params()),
            "macs_per_second": macs_per_second(build_trainable(config, "float", float_core), one_second),
            "macs_per_second_fqse": macs_per_second(build_trainable(config, "fqse", fqse_float), one_second),
        }

    # ----------------------------------------------------------------------------------------------- train
    def train(self, config, args):
        from common.training import compression_precision, config_precision, training_precision

        kind, source = config_precision(config)
        if args.variant == "float":
            precision = training_precision(kind, source, log=_log)
        else:
            precision = compression_precision(
                kind, f"{args.variant} QAT", source=source, log=_log,
                reason="every quantized layer holds FQSE quantizers, whose ranges and rounding need float32")
        with precision:
            return self._train(config, args)

    def _train(self, config, args):
        from common.tfkeras import keras
        from common.training import ResumableTraining, paper_callbacks, set_seed
        from reproductions.fqse.fqse import transfer_float_weights

        variant = args.variant
        set_seed(int(config["data"]["seed"]))
        exp_dir = Path(args.exp_dir)
        (exp_dir / variant).mkdir(parents=True, exist_ok=True)
        if variant == "float" and args.init_from_asteroid is not None:
            core = build_core(config, "float")
            count = asteroid_state_to_core(load_asteroid_checkpoint(args.init_from_asteroid), core)
            core.save_weights(str(core_weights_path(exp_dir, "float")))
            _log(f"float model: {count} tensors from {args.init_from_asteroid}")
            return None
        settings = config["training"] if variant == "float" else config["qat"]
        core = build_core(config, variant)
        if variant != "float":
            float_core = load_core(config, exp_dir, "float")
            untouched = transfer_float_weights(float_core, core, seed=int(config["data"]["seed"]))
            _log(f"{variant}: started from the float model; new layers {untouched}")
        model = build_trainable(config, variant, core)
        model.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"], global_clipnorm=settings["clip_norm"]),
                      loss=configured_loss(config))
        # Optimizer slots before the first step: otherwise Keras traces the train step twice (once to create them).
        model.optimizer.build(model.trainable_variables)
        augment = variant == "fqse" or (variant == "vanilla" and config["qat"]["vanilla_augment"])
        train_arrays = load_arrays(load_examples(config, "train", config["data"].get("max_train")))
        valid_arrays = load_arrays(load_examples(config, "valid", config["data"].get("max_valid")))
        train_batches = make_batches(train_arrays, settings["batch_size"], augment, int(config["data"]["seed"]))
        valid_batches = make_batches(valid_arrays, settings["batch_size"], False, int(config["data"]["seed"]) + 1)
        _log(f"{variant}: {len(train_arrays)} training / {len(valid_arrays)} validation segments, augment={augment}")
        training = ResumableTraining(model, exp_dir / variant)
        started = time.time()
        training.fit(train_batches, epochs=int(settings["epochs"]), validation_data=valid_batches,
                     callbacks=paper_callbacks(early_stop_patience=settings["early_stop_patience"],
                                               halve_lr_patience=settings["halve_lr_patience"]))
        if training.best_weights_path.is_file():
            model.load_weights(str(training.best_weights_path))
        core.save_weights(str(core_weights_path(exp_dir, variant)))
        _log(f"{variant}: trained in {time.time() - started:.0f} s, weights in {core_weights_path(exp_dir, variant)}")
        return None

    # ----------------------------------------------------------------------------------------------- export
    def export(self, config, args):
        from reproductions.fqse.fqse import convert_core_to_int8, split_input_numpy

        exp_dir = Path(args.exp_dir)
        examples = load_examples(config, "valid", config["export"]["representative_examples"])
        noisy = [at_inference_level(example.load()[0], config) for example in examples]
        written = {}
        for variant in ("vanilla", "fqse"):
            core = load_core(config, exp_dir, variant)
            if variant == "fqse":
                stages = int(config["fqse"]["splitter_stages"])
                representative = [split_input_numpy(signal[None], stages=stages) for signal in noisy]
                channels = stages
            else:
                representative = [signal[None, :, None] for signal in noisy]
                channels = 1
            started = time.time()
            flatbuffer = convert_core_to_int8(core, representative, channels)
            path = tflite_path(exp_dir, variant)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(flatbuffer)
            written[variant] = str(path)
            _log(f"{variant}: int8 .tflite {len(flatbuffer):,} bytes in {time.time() - started:.0f} s -> {path}")
        return written

    def evaluate(self, config, args):
        from tqdm import tqdm

        from common.metrics import si_snr
        from common.mixing import mix_energy_gain

        exp_dir = Path(args.exp_dir)
        if args.noisy_dir is not None:
            return self._evaluate_folders(config, args)
        systems = evaluation_systems(config, exp_dir)
        max_test = args.max_files or config["data"].get("max_test")
        test_examples = load_examples(config, "test", max_test)
        arrays = load_arrays(test_examples)
        scores = {name: [] for name in systems}
        scores["noisy"] = []
        outputs = {name: {} for name in ROBUSTNESS_SYSTEMS}
        for index, (noisy, clean, _noise) in enumerate(tqdm(arrays, desc="test set")):
            scores["noisy"].append(si_snr(clean, noisy))
            for name, enhance in systems.items():
                enhanced = enhance(noisy)
                scores[name].append(si_snr(clean, enhanced))
                if name in outputs:
                    outputs[name][str(index)] = enhanced
        summary = {"files": len(arrays),
                   "si_snr": {name: float(np.mean(values)) for name, values in scores.items()},
                   "si_snr_improvement": {name: float(np.mean(np.array(values) - np.array(scores["noisy"])))
                                          for name, values in scores.items() if name != "noisy"}}
        if not getattr(args, "skip_buckets", False):
            from reproductions.fqse.fqse import Int8CoreRunner

            vanilla_input = Int8CoreRunner(tflite_path(exp_dir, "vanilla")).input["quantization"]
            buckets = {}
            for snr_db in config["evaluation"]["snr_buckets"]:
                bucket = {name: [] for name in ("float", "vanilla_tflite", "fqse_tflite", "vanilla_input_floor")}
                rng = np.random.default_rng([int(config["data"]["seed"]), int(snr_db + 100)])
                for noisy, clean, noise in tqdm(arrays[: config["evaluation"]["bucket_items"]], desc=f"{snr_db:+.0f} dB"):
                    mixture = mix_energy_gain(clean, noise, float(snr_db), rng)
                    for name in ("float", "vanilla_tflite", "fqse_tflite"):
                        bucket[name].append(si_snr(mixture.speech, systems[name](mixture.mixture)))
                    bucket["vanilla_input_floor"].append(
                        int8_input_floor(mixture.speech, mixture.mixture, vanilla_input, inference_level(config)))
                buckets[str(snr_db)] = {name: float(np.mean(values)) for name, values in bucket.items()}
            summary["buckets"] = buckets
        summary["tflite"] = {variant: tflite_report(exp_dir, variant, config) for variant in ("vanilla", "fqse")}
        summary["nominal"], summary["robustness"] = robustness_scores(config, args.results_dir, systems, test_examples,
                                                                       arrays, outputs)
        save_summary(args.results_dir, scores, summary, config, f"{self.name}/{config['config_name']}")
        _log(json.dumps(summary["si_snr"]))
        return summary

    def _evaluate_folders(self, config, args):
        from common.evaluation import check_folders, score_folders

        pairs = check_folders(args.noisy_dir, args.clean_dir, SAMPLE_RATE, args.max_files)
        systems = evaluation_systems(config, Path(args.exp_dir))
        score_folders(pairs, systems, ("si_snr", "si_snr_improvement"), args.results_dir,
                      config=config, run=f"{self.name}/{config['config_name']}", log=_log)
        return None

    # ----------------------------------------------------------------------------------------------- enhance
    def enhance(self, config, args):
        from common.enhancement import level_normalized, run_enhancement
        from reproductions.fqse.fqse import Int8CoreRunner

        level = inference_level(config)
        exp_dir = Path(args.exp_dir)
        variant = args.variant
        if args.tflite and variant == "float":
            raise ValueError("--tflite needs --variant vanilla or fqse (the int8 exports)")

        def load():
            if args.tflite:
                runner = Int8CoreRunner(tflite_path(exp_dir, variant))
                return level_normalized(lambda noisy: enhance_tflite(runner, noisy, variant, config), level)
            model = build_trainable(config, variant, load_core(config, exp_dir, variant, args.checkpoint))
            return level_normalized(lambda noisy: enhance_keras(model, noisy), level)

        run_enhancement(args, SAMPLE_RATE, load)
        return None

    # ----------------------------------------------------------------------------------------------- table
    def table(self, config, args):
        print_tables(config, args.results_dir, f"{self.name}/{config['config_name']}")
        return None



def artifacts(exp_dir, config) -> dict:
    """The models and .tflite files run.sh writes (``common.artifacts``): stage 1 trains the float model, stages 2
    and 3 fine-tune it to 8 bits, stage 4 exports both 8-bit cores in one go."""
    from common.artifacts import Artifact

    published = {"float": Artifact(core_weights_path(exp_dir, "float"), 1),
                 "vanilla": Artifact(core_weights_path(exp_dir, "vanilla"), 2, ("float",)),
                 "fqse": Artifact(core_weights_path(exp_dir, "fqse"), 3, ("float",))}
    for variant in ("vanilla", "fqse"):
        published[f"{variant}_tflite"] = Artifact(tflite_path(exp_dir, variant), 4, ("vanilla", "fqse"))
    return published
