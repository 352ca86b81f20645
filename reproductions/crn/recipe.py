"""Tan & Wang (Interspeech 2018) causal CRN and its LSTM-2 baseline: training, evaluation, streaming int8 export.

``python -m reproductions.crn COMMAND --config mini|paper``; the stages of ``run.sh`` call these commands.
Spec: ``docs/crn.md`` (the first author's code is the authority).

Features: ``|STFT|`` of the RMS-normalised mixture (``common.mixing.mix_crn``; 20 ms Hamming, 10 ms hop, 161
bins, ``features.crn_stft``), target ``|STFT|`` of the equally scaled speech; resynthesis with the noisy
phase (``crn_resynthesize``). Training (``docs/crn.md#training``): Adam 2e-4, MSE over the valid frames only, batches of
16 whole utterances zero-padded to the longest, learning rate x0.98 every 2 epochs, 20 epochs, best epoch by validation
loss. Metrics (``docs/crn.md#metric``): STOI (pystoi, ``extended=False``) and raw narrow-band P.862 PESQ (what the
author's pypesq reports), plus ESTOI and SNR in the saved rows.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from common.enhancement import inference_level

SYSTEMS_FLOAT = ("unprocessed", "lstm2", "crn")
TFLITE_MODES = ("float32", "dynamic", "int8")
# Every system evaluate scores, in the order of the tables.
ALL_SYSTEMS = SYSTEMS_FLOAT + tuple(f"crn_tflite_{mode}" for mode in TFLITE_MODES)
METRICS = ("stoi", "pesq_nb_raw", "estoi", "snr", "pesq_wb", "si_snr")
MODEL_NAMES = ("crn", "lstm2")
CORPORA = ("mini", "wsj0_si84")
SYSTEM_LABELS = {
    "unprocessed": "Unprocessed",
    "lstm2": "LSTM-2 (Keras)",
    "crn": "CRN (Keras, offline)",
    "crn_tflite_float32": "CRN .tflite float32, streaming",
    "crn_tflite_dynamic": "CRN .tflite int8 weights (dynamic range), streaming",
    "crn_tflite_int8": "CRN .tflite full int8, streaming",
}
# Parameter counts in PyTorch's convention (two LSTM bias vectors), docs/crn.md#baselines: the
# paper's 17.58 M and 30.22 M are confirmed by arithmetic there.
PAPER_PARAMETERS_MILLIONS = {"crn": 17.58, "lstm2": 30.22}
# Unprocessed STOI (%) / raw PESQ at -5 dB quoted by a third-party summary of the paper (WSJ0 trained speakers,
# babble + cafeteria): docs/crn.md#data, UNCONFIRMED. The summary's CRN figures are approximations the
# spec says not to use.
THIRD_PARTY_UNPROCESSED_MINUS5 = {"stoi_-5": 58.18, "pesq_-5": 1.50}


def _config_file(config) -> str:
    """The configuration file an error names (``common.config.load_config`` records it)."""
    return config.get("config_path", "the configuration")


# ------------------------------------------------------------------------------------------------------ data
def load_corpus(config):
    """The speech/noise corpus named by ``config['data']``: the embedded mini corpus or WSJ0 SI-84 + noise folders."""
    from data_prep.registry import open_corpus

    return open_corpus(config["data"], _config_file(config), names=CORPORA)


def training_examples(corpus, config, split):
    """CRN training (``train``) or validation (``valid``) mixtures: SNR from ``data.train_snrs`` (default the
    paper's {-5..0} dB), a random training noise; ``data.augmentation`` on the training split, and the validation
    mixtures played at ``inference.level_dbfs`` when it is set, the level the models see at inference."""
    from common.mixing import Augmentation
    from data_prep.paper_sets import at_level, crn_set

    data = config["data"]
    augmentation = Augmentation.from_config(data.get("augmentation"))
    examples = crn_set(corpus, split, snrs=data.get("train_snrs"), seed=data["seed"],
                       per_utterance=data.get("per_utterance", 1), augmentation=augmentation)
    if data.get("max_train_seconds"):
        durations = {row["path"]: float(row["duration"]) for row in corpus.speech(split)}
        examples = [e for e in examples if durations.get(e.meta["speech"], 0.0) <= data["max_train_seconds"]]
    limit = data.get("train_items" if split == "train" else "valid_items")
    if limit is not None and limit < len(examples):
        keep = np.sort(np.random.default_rng([data["seed"], 5]).choice(len(examples), int(limit), replace=False))
        examples = [examples[index] for index in keep]
    if not examples:
        raise ValueError(f"{_config_file(config)}: no {split} examples (data.max_train_seconds too small?)")
    if split == "valid" and inference_level(config) is not None:
        examples = at_level(examples, inference_level(config))
    return examples


def test_examples(corpus, config):
    """Test mixtures: test speech with the unseen test noises at ``test.snrs``; the same utterances in every
    condition (the first ``test.utterances`` test utterances in name order)."""
    from data_prep.paper_sets import crn_set

    test = config["test"]
    examples = crn_set(corpus, "test_unseen_noise", snrs=test["snrs"], seed=test["seed"])
    if test.get("noise_types"):
        wanted = set(test["noise_types"])
        missing = wanted - {e.meta["noise_type"] for e in examples}
        if missing:
            raise ValueError(f"{_config_file(config)}: test.noise_types {sorted(missing)} are not "
                             "in the test noise split")
        examples = [e for e in examples if e.meta["noise_type"] in wanted]
    if test.get("utterances"):
        chosen = set(sorted({e.meta["speech"] for e in examples})[: int(test["utterances"])])
        examples = [e for e in examples if e.meta["speech"] in chosen]
    return examples


def magnitude(signal) -> np.ndarray:
    """``|STFT|`` (frames, 161) of a waveform, the author's features (no log, no normalisation)."""
    from reproductions.crn.features import crn_stft

    return np.abs(crn_stft(signal)).astype(np.float32)


def feature_pair(example):
    """(noisy magnitude, clean magnitude + valid-frame mask column) of one example."""
    noisy, clean, _ = example.load()
    target = magnitude(clean)
    return magnitude(noisy), np.concatenate([target, np.ones((target.shape[0], 1), np.float32)], axis=1)


def make_dataset(examples, batch_size, frequency_bins=161, shuffle_seed=None):
    """tf.data of zero-padded batches of whole utterances; targets carry a last column = 1 on valid frames."""
    from common.tfkeras import tf

    epoch = [0]

    def generator():
        order = np.arange(len(examples))
        if shuffle_seed is not None:
            np.random.default_rng([shuffle_seed, epoch[0]]).shuffle(order)
            epoch[0] += 1
        for index in order:
            yield feature_pair(examples[index])

    signature = (
        tf.TensorSpec((None, frequency_bins), tf.float32),
        tf.TensorSpec((None, frequency_bins + 1), tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(generator, output_signature=signature)
    return dataset.padded_batch(batch_size).prefetch(2)


def masked_mse(target_and_mask, estimate):
    """The author's loss: ``sum((est - lbl)^2 * mask) / (sum(n_frames) * F)`` (criteria.py, docs/crn.md#training).

    ``target_and_mask`` is ``(batch, frames, F + 1)``: the clean magnitude and, last, 1 on valid frames and 0 on
    the zero padding.
    """
    from common.tfkeras import tf

    target, mask = target_and_mask[..., :-1], target_and_mask[..., -1:]
    squared = tf.square(estimate - target) * mask
    frequency_bins = tf.cast(tf.shape(target)[-1], squared.dtype)
    return tf.reduce_sum(squared) / (tf.maximum(tf.reduce_sum(mask), 1.0) * frequency_bins)


# ----------------------------------------------------------------------------------------------------- models
def build_model(config, which, fused_lstm=False):
    """The CRN or the LSTM-2 baseline of ``config``; ``fused_lstm`` builds its LSTMs from ``common.recurrent``."""
    if which == "crn":
        from reproductions.crn.crn import build_from_config

        return build_from_config(config["model"], fused_lstm=fused_lstm, source=_config_file(config))
    if which == "lstm2":
        from reproductions.crn.lstm_baseline import build_from_config

        return build_from_config(config["baseline"], config["model"]["frequency_bins"], fused_lstm=fused_lstm,
                                 source=_config_file(config))
    raise ValueError(f"unknown model {which!r}; expected one of {MODEL_NAMES}")


def weights_path(args, which) -> Path:
    return Path(args.exp_dir) / which / "best.weights.h5"


def load_trained(config, args, which, checkpoint=None):
    path = Path(checkpoint) if checkpoint else weights_path(args, which)
    if not path.is_file():
        raise ValueError(f"no trained {which} weights at {path}: run 'train --model {which}' first")
    model = build_model(config, which)
    model.load_weights(str(path))
    return model


def pytorch_parameter_count(model) -> int:
    """Trainable parameters as PyTorch counts them: nn.LSTM has a second bias vector (4 x units) per layer."""
    from common.tfkeras import keras

    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    extra = sum(4 * layer.units for layer in model.layers if isinstance(layer, keras.layers.LSTM))
    return trainable + extra


def compiled(model):
    """``model`` as one traced graph for inputs of any length: an eager Keras LSTM runs its time loop op by op in
    Python, seconds per utterance on 2 cores."""
    from common.tfkeras import tf

    function = tf.function(lambda inputs: model(inputs, training=False),
                           input_signature=[tf.TensorSpec((1, None, model.input_shape[-1]), tf.float32)])
    return lambda inputs, training=False: function(tf.constant(inputs))


def enhance_offline(model, noisy) -> np.ndarray:
    """Whole-utterance enhancement: magnitude through the model, noisy phase, inverse STFT."""
    from reproductions.crn.features import crn_resynthesize

    estimate = model(magnitude(noisy)[None], training=False).numpy()[0]
    return crn_resynthesize(estimate, noisy)


def enhance_streaming(runner, noisy) -> np.ndarray:
    """Hop-by-hop enhancement with a streaming runner (``StreamingCRN`` or ``StreamingTFLite``)."""
    from reproductions.crn.features import crn_resynthesize

    # crn_stft frames are local (frame t needs samples up to 160 t + 160), so computing them at once gives the
    # frames a sample-by-sample STFT would give.
    return crn_resynthesize(runner.process(magnitude(noisy)), noisy)


def _json_dump(path, document):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, default=lambda value: getattr(value, "item", lambda: str(value))()))


class Recipe:
    """Tan & Wang (2018) causal CRN for real-time speech enhancement, with the LSTM-2 baseline and int8 streaming."""

    name = "crn"
    # Every top-level section of conf/*.yaml: a renamed or missing one fails on loading, not as a KeyError later.
    config_sections = ("model", "baseline", "data", "training", "test", "export", "inference", "evaluation")

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
        model.compile(optimizer=keras.optimizers.Adam(training["learning_rate"]), loss=masked_mse)
        run = ResumableTraining(model, Path(args.exp_dir) / args.model)
        step_decay = (training["learning_rate"], training["decay_factor"], training["decay_every_epochs"])
        run.fit(train_data, epochs=training["epochs"], validation_data=valid_data,
                callbacks=paper_callbacks(step_decay=step_decay))
        print(f"{args.model}: best epoch {run.state.get('best_epoch')} (val_loss {run.state.get('best')}), "
              f"weights in {run.best_weights_path}")

    # ------------------------------------------------------------------------------------------- evaluate
    def _enhancers(self, config, args, systems):
        """``{system: noisy -> enhanced}``; every model runs at ``inference.level_dbfs`` (common.enhancement)."""
        from common.enhancement import level_normalized
        from reproductions.crn.streaming import StreamingTFLite

        enhancers = {}
        for system in systems:
            if system == "unprocessed":
                enhancers[system] = lambda noisy: noisy
            elif system in MODEL_NAMES:
                model = compiled(load_trained(config, args, system,
                                              getattr(args, "checkpoint", None) if system == "crn" else None))
                enhancers[system] = level_normalized(lambda noisy, model=model: enhance_offline(model, noisy),
                                                     inference_level(config))
            elif system.startswith("crn_tflite_"):
                path = tflite_path(args, system[len("crn_tflite_"):])
                if not path.is_file():
                    raise ValueError(f"no {path}: run the export command first")
                runner = StreamingTFLite(path, num_threads=1)
                enhancers[system] = level_normalized(lambda noisy, runner=runner: enhance_streaming(runner, noisy),
                                                     inference_level(config))
            else:
                raise ValueError(f"unknown system {system!r}; expected {sorted(SYSTEM_LABELS)}")
        return enhancers

    def evaluate(self, config, args):
        from tqdm import tqdm

        from common.evaluation import save_scores, score_examples
        from common.metrics import summarize

        if args.noisy_dir is not None:
            return self._evaluate_folders(config, args)
        systems = args.systems or ([f"crn_tflite_{mode}" for mode in config["export"]["modes"]] if args.tflite
                                   else list(SYSTEMS_FLOAT))
        enhancers = self._enhancers(config, args, systems)
        examples = test_examples(load_corpus(config), config)
        if args.max_files:
            examples = examples[: args.max_files]
        loaded = [(example, *example.load()[:2]) for example in tqdm(examples, desc="load test mixtures")]
        named = [(Path(example.meta["speech"]).stem, noisy, clean) for example, noisy, clean in loaded]
        for system, enhance in enhancers.items():
            rows, _ = score_examples(enhance, named, METRICS, 16000, config["evaluation"]["processes"],
                                     description=f"({system})")
            for row, (example, _, _) in zip(rows, loaded):
                row.update(noise_type=example.meta["noise_type"], snr_db=example.meta["snr_db"])
            summary = summarize(rows)
            save_scores(args.results_dir, system, rows, summary, config, f"{self.name}/{args.experiment_name}")
            print(f"{system}: " + ", ".join(f"{metric} {summary[metric][0]:.3f}" for metric in ("stoi", "pesq_nb_raw")
                                            if metric in summary) + f" ({len(rows)} mixtures, {summary['invalid']} invalid)")
        tflite_modes = config["evaluation"].get("robustness_tflite_modes", TFLITE_MODES)
        robust = {system: enhance for system, enhance in enhancers.items() if system != "unprocessed" and (
            not system.startswith("crn_tflite_") or system[len("crn_tflite_"):] in tflite_modes)}
        if robust and not args.max_files:
            self._evaluate_robustness(config, args, robust, examples)

    def _evaluate_robustness(self, config, args, enhancers, examples):
        """Unseen voices x unseen noises and the test mixtures replayed at other levels
        (``data_prep.paper_sets.robustness_sets``), scored for ``enhancers`` and the noisy input; the scores go to
        ``<results_dir>/scores/robustness/`` for the table."""
        from common.evaluation import score_robustness
        from data_prep.paper_sets import robustness_sets

        sets = robustness_sets(load_corpus(config), examples, seed=config["test"]["seed"],
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
        enhancers = self._enhancers(config, args, systems)
        score_folders(pairs, enhancers, METRICS, args.results_dir, processes=config["evaluation"]["processes"],
                      config=config, run=f"{self.name}/{args.config_name}")

    # --------------------------------------------------------------------------------------------- export
    def export(self, config, args):
        from data_prep.paper_sets import at_level
        from reproductions.crn import streaming

        model = load_trained(config, args, "crn")
        corpus = load_corpus(config)
        test = test_examples(corpus, config)
        # the check utterance at the level the enhancers play their input at, as the calibration mixtures are
        check_example = test[0] if inference_level(config) is None else at_level(test[:1], inference_level(config))[0]
        check_noisy = check_example.load()[0]
        check_magnitude = magnitude(check_noisy)
        offline = model(check_magnitude[None], training=False).numpy()[0]
        report = {"check_utterance": test[0].meta["speech"], "frames": int(offline.shape[0])}
        keras_stream = streaming.StreamingCRN(model).process(check_magnitude)
        report["keras_streaming_max_abs_difference"] = float(np.abs(keras_stream - offline).max())
        print(f"Keras streaming vs offline: max |difference| {report['keras_streaming_max_abs_difference']:.2e} "
              f"over {offline.shape[0]} frames")
        if report["keras_streaming_max_abs_difference"] > 1e-4:
            raise ValueError("the Keras streaming model differs from the offline model by more than 1e-4")
        calibration_set = training_examples(corpus, config, "valid")[: config["export"]["calibration_utterances"]]
        calibration = streaming.calibration_inputs(
            model, [magnitude(example.load()[0]) for example in calibration_set], config["export"]["calibration_hops"])
        report["calibration"] = {"utterances": len(calibration_set), "hops": len(calibration), "split": "valid"}
        report["variants"] = {}
        for mode in sorted(args.modes or config["export"]["modes"], key=lambda m: m != "float32"):
            path = streaming.export_streaming_tflite(model, tflite_path(args, mode), mode, calibration)
            runner = streaming.StreamingTFLite(path, num_threads=1)
            output = runner.process(check_magnitude)
            difference = np.abs(output - offline)
            bench = streaming.benchmark_streaming(path, threads=1, hops=config["export"]["benchmark_hops"])
            report["variants"][mode] = {
                "path": str(path),
                "bytes": path.stat().st_size,
                "ops": sorted(set(runner.model.op_names())),
                "fused_lstm": streaming.FUSED_LSTM_OP in runner.model.op_names(),
                "max_abs_difference_to_offline": float(difference.max()),
                "mean_abs_difference_to_offline": float(difference.mean()),
                "benchmark": bench,
            }
            print(f"{mode}: {path} ({path.stat().st_size / 1024:.0f} KiB), fused LSTM "
                  f"{report['variants'][mode]['fused_lstm']}, max |difference| to offline Keras {difference.max():.2e}")
            print("  " + streaming.format_benchmark(bench))
            # float32 LiteRT kernels (XNNPACK) sum in another order than TensorFlow; through the LSTM recursion the
            # rounding grows with the output scale (trained magnitudes reach ~10^2), hence a relative bound here;
            # the tests check 1e-4 absolute on a model with outputs of order 1.
            bound = 1e-4 * max(1.0, float(np.abs(offline).max()))
            report["variants"][mode]["tolerance"] = bound
            if mode == "float32" and difference.max() > bound:
                raise ValueError(f"the float32 streaming .tflite differs from the offline model by "
                                 f"{difference.max():.2e} (> {bound:.2e})")
        _json_dump(Path(args.exp_dir) / "export" / "report.json", report)

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
        from common.evaluation import load_scores, scores_path
        from common.tables import ResultTable

        export_report_path = Path(args.exp_dir) / "export" / "report.json"
        export_report = json.loads(export_report_path.read_text()) if export_report_path.is_file() else {}
        snrs = [float(snr) for snr in config["test"]["snrs"]]
        columns = []
        for snr in snrs:
            columns += [(f"stoi_{snr:g}", f"STOI % {snr:g} dB", 1), (f"pesq_{snr:g}", f"PESQ raw NB {snr:g} dB", 2)]
        columns += [("pesq_wb", "PESQ WB avg", 2), ("si_snr", "SI-SNR dB avg", 2), ("si_snri", "SI-SNRi dB", 2)]
        columns += [("parameters", "params (M)", 2), ("size", "size (KiB)", 0), ("hop_ms", "ms/hop, 1 thread", 2)]
        info = self.info(config, args)
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
        self._robustness_table(config, args, documents)

    def _robustness_table(self, config, args, documents):
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


# The mini targets for a magnitude model with the noisy phase: SI-SNR improvement (dB), PESQ WB and STOI
# (fraction) above the unprocessed mixtures, each averaged over the test SNRs.
MINI_TARGETS = {"si_snri": 3.0, "pesq_wb_gain": 0.25, "stoi_gain": 0.02}


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


def tflite_path(args, mode) -> Path:
    return Path(args.exp_dir) / "tflite" / f"crn_streaming_{mode}.tflite"


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
