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
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from common.enhancement import configured_enhancer, inference_level

SAMPLE_RATE = 16000
STRATEGIES = ("direct", "progressive")
# Our ablation, not upstream's: DL with the complex (real, imaginary) spectrum instead of the phase encoder's input.
ABLATION = "complex"
STRATEGY_LABELS = {"direct": "TF-GridNet-DL", "progressive": "TF-GridNet-PL",
                   ABLATION: "ours: DL, complex input"}
# Upstream's finding that the PL - DL rows are read against (docs/tfgridnet.md#reported-results).
PAPER_FINDING = "upstream: PL ahead on DNSMOS (OVRL +0.032) and SI-SNR (+0.74 dB), DL ahead on PESQ WB (+0.244)"
# An int8 model is usable when it keeps the float model's SI-SNR within this margin (dB).
USABLE_SI_SNR_DROP_DB = 0.5
METRICS = ("pesq_wb", "stoi", "si_snr", "dnsmos")
CORPORA = ("mini", "dns5")
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


def _log(message: str) -> None:
    print(message, flush=True)


def _strategies(args) -> tuple:
    choice = getattr(args, "strategy", "both") or "both"
    if choice == "all":
        return STRATEGIES + (ABLATION,)
    return STRATEGIES if choice == "both" else (choice,)


# ------------------------------------------------------------------------------------------------------- model
def build_model(config: dict, progressive: bool, complex_input=None, fused_lstm: bool = False):
    from reproductions.tfgridnet.tfgridnet import build_from_config

    return build_from_config(config["model"], progressive=progressive, complex_input=complex_input,
                             fused_lstm=fused_lstm, source=config.get("config_path"))


def build_strategy_model(config: dict, strategy: str, fused_lstm: bool = False):
    """The network a strategy trains: DL, PL, or the ablation (DL with the complex spectrum as input)."""
    if strategy == ABLATION:
        return build_model(config, False, complex_input=True, fused_lstm=fused_lstm)
    return build_model(config, strategy == "progressive", fused_lstm=fused_lstm)


def progressive_snrs(config: dict) -> tuple:
    """PL intermediate target SNRs; one per block but the last (whose target is the clean speech)."""
    snrs = tuple(float(snr) for snr in config["training"]["progressive_snrs"])
    blocks = int(config["model"]["num_blocks"])
    if len(snrs) != blocks - 1:
        raise ValueError(
            f"{config['config_path']}: training.progressive_snrs has {len(snrs)} SNRs but model.num_blocks = {blocks} "
            f"needs {blocks - 1} (block b < {blocks} learns the b-th SNR, the last block the clean speech)"
        )
    return snrs


def macs_breakdown(model, seconds: float = 1.0) -> list:
    """Per-layer MACs for ``seconds`` of audio, counting every sequence of a folded batch.

    The BLSTMs and their ConvTranspose1D run on ``(batch * frames, ...)`` or ``(batch * freq, ...)`` sequences, so
    at batch 1 their first dimension is the number of sequences; ``common.accounting`` counts one example per
    layer, hence each layer's count is multiplied by its input's first dimension (1 for every unfolded layer).
    """
    from common.accounting import macs_breakdown as layer_rows

    rows = layer_rows(model, np.zeros((1, int(round(seconds * SAMPLE_RATE))), np.float32))
    for row in rows:
        row["sequences"] = int(row["input_shape"][0][0]) if row["input_shape"] else 1
        row["macs_total"] = None if row["macs"] is None else int(row["macs"]) * row["sequences"]
    return rows


def macs_per_second(model) -> int:
    rows = macs_breakdown(model, 1.0)
    unknown = [row["layer"] for row in rows if row["macs"] is None]
    if unknown:
        raise ValueError(f"no MAC formula for layers {unknown}")
    return int(sum(row["macs_total"] for row in rows))


# -------------------------------------------------------------------------------------------------------- data
def open_corpus(config: dict):
    from data_prep.registry import open_corpus as open_configured

    return open_configured(config["data"], config.get("config_path"), names=CORPORA)


def draw_examples(config: dict, corpus, split: str, seed: int, max_items=None, segmented: bool = True) -> list:
    """Lazy on-the-fly mixtures of ``split``: SNR ~ U(snr_range), upstream's variance-based ``mk_mixture``;
    ``data.augmentation`` (``common.mixing.Augmentation``) applies to the training split only."""
    from common.mixing import Augmentation
    from data_prep.paper_sets import tfgridnet_set

    data = config["data"]
    segment = data["segment_seconds"] if segmented else None
    return tfgridnet_set(corpus, split, snr_range=tuple(data["snr_range"]), seed=seed, max_items=max_items,
                         segment_seconds=segment, augmentation=Augmentation.from_config(data.get("augmentation")))


def fit_length(signal: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or cut the last axis to ``length`` samples (utterances shorter than a training segment)."""
    if signal.shape[-1] >= length:
        return signal[..., :length]
    pad = [(0, 0)] * (signal.ndim - 1) + [(0, length - signal.shape[-1])]
    return np.pad(signal, pad)


def training_pair(example, segment_samples: int, snrs=None):
    """``(noisy, targets)`` for one example; targets is the clean speech (DL) or the PL ladder (len(snrs)+1, N).

    PL targets are the example's speech and noise re-mixed at each SNR of ``snrs`` (absolute, whatever the input
    SNR) and the clean speech last (``data_prep.paper_sets.progressive_targets``, upstream dataloader.py).
    """
    from data_prep.paper_sets import progressive_targets

    noisy, clean, noise = example.load()
    targets = clean if snrs is None else progressive_targets(clean, noise, snrs)
    return fit_length(noisy, segment_samples), fit_length(targets, segment_samples)


def make_batches(config: dict, corpus, split: str, progressive: bool, fresh_every_epoch: bool):
    """Keras ``Sequence`` of fixed-length batches; with ``fresh_every_epoch`` each epoch draws new mixtures."""
    from common.tfkeras import keras

    data, training = config["data"], config["training"]
    batch_size = int(training["batch_size"])
    segment_samples = int(round(float(data["segment_seconds"]) * SAMPLE_RATE))
    items = int(training["examples_per_epoch"] if split == "train" else training["validation_examples"])
    snrs = progressive_snrs(config) if progressive else None
    base_seed = int(data["seed"]) + (0 if split == "train" else 1_000_003)

    class MixtureBatches(keras.utils.Sequence):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.draw()

        def draw(self):
            seed = base_seed + (self.epoch if fresh_every_epoch else 0)
            self.examples = draw_examples(config, corpus, split, seed, max_items=items)
            if len(self.examples) < batch_size:
                raise ValueError(f"{config['config_path']}: {split} has {len(self.examples)} examples, fewer than "
                                 f"training.batch_size = {batch_size}")

        def __len__(self):
            return len(self.examples) // batch_size

        def __getitem__(self, index):
            pairs = [training_pair(example, segment_samples, snrs)
                     for example in self.examples[index * batch_size:(index + 1) * batch_size]]
            noisy = np.stack([noisy for noisy, _ in pairs]).astype(np.float32)
            targets = np.stack([target for _, target in pairs]).astype(np.float32)
            if snrs is None:
                return noisy, targets
            return noisy, tuple(targets[:, block] for block in range(targets.shape[1]))

        def on_epoch_end(self):
            if fresh_every_epoch:
                self.epoch += 1
                self.draw()

    return MixtureBatches()


# -------------------------------------------------------------------------------------------------- optimiser
def _register_schedule():
    from common.tfkeras import keras, tf

    @keras.utils.register_keras_serializable(package="se")
    class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up to ``max_lr`` over ``warmup_steps``, cosine to ``min_lr`` at ``decay_until_step``, then
        ``min_lr`` (upstream ``scheduler.py`` LinearWarmupCosineAnnealingLR, per optimiser step)."""

        def __init__(self, max_lr, min_lr, warmup_steps, decay_until_step):
            self.max_lr, self.min_lr = float(max_lr), float(min_lr)
            self.warmup_steps, self.decay_until_step = int(warmup_steps), int(decay_until_step)
            if not 0 <= self.warmup_steps < self.decay_until_step:
                raise ValueError(f"warm-up steps {warmup_steps} must be below decay_until_step {decay_until_step}")

        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            warmup = self.max_lr * (step + 1.0) / float(max(self.warmup_steps, 1))
            progress = tf.clip_by_value((step - self.warmup_steps) / float(self.decay_until_step - self.warmup_steps),
                                        0.0, 1.0)
            cosine = self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1.0 + tf.cos(math.pi * progress))
            return tf.where(step < self.warmup_steps, warmup, cosine)

        def get_config(self):
            return {"max_lr": self.max_lr, "min_lr": self.min_lr, "warmup_steps": self.warmup_steps,
                    "decay_until_step": self.decay_until_step}

    return WarmupCosineDecay


def compile_model(model, config: dict, outputs: int):
    from common.tfkeras import keras
    from reproductions.tfgridnet.losses import HybridLoss, si_snr

    optimizer_config = config["training"]["optimizer"]
    schedule = _register_schedule()(optimizer_config["max_lr"], optimizer_config["min_lr"],
                                    optimizer_config["warmup_steps"], optimizer_config["decay_until_step"])
    optimizer = keras.optimizers.Adam(schedule, beta_1=optimizer_config["beta_1"], beta_2=optimizer_config["beta_2"],
                                      epsilon=optimizer_config["epsilon"],
                                      global_clipnorm=optimizer_config["gradient_clip_norm"])
    loss = HybridLoss(**config["loss"])
    # SI-SNR of the clean-speech estimate (PL: the last head) for the learning curves
    metrics = [[]] * (outputs - 1) + [[si_snr]] if outputs > 1 else [si_snr]
    model.compile(optimizer, loss=[loss] * outputs if outputs > 1 else loss, metrics=metrics)
    return model


def input_deviation(config: dict, signal: np.ndarray) -> float:
    """The scale the model divides its input by: the waveform's standard deviation with ``model.normalize_input``
    (``WaveformDeviation``: unbiased, floored at 1e-8), else 1."""
    if not config["model"]["normalize_input"]:
        return 1.0
    return max(float(np.std(np.asarray(signal, np.float64), ddof=1)), 1e-8)


def trained_weights(args, strategy: str) -> Path:
    return Path(args.exp_dir) / strategy / "best.weights.h5"


def load_trained(config: dict, args, strategy: str):
    model = build_strategy_model(config, strategy)
    path = Path(args.checkpoint) if getattr(args, "checkpoint", None) else trained_weights(args, strategy)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained {strategy} model; run 'train --strategy {strategy}' first")
    model.load_weights(str(path))
    return model


def enhancer(model):
    """A traced ``waveform (samples,) -> enhanced (samples,)`` function (PL: the last block's estimate), run in
    windows beyond 12 s: the full-band self-attention's memory grows with the square of the length."""
    from common.enhancement import chunked
    from common.tfkeras import tf

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.float32)], reduce_retracing=True)
    def run(waveform):
        outputs = model(waveform, training=False)
        return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs

    return chunked(lambda signal: run(np.asarray(signal, np.float32)[None])[0].numpy(), SAMPLE_RATE)


def tflite_enhancer(path):
    """``waveform -> enhanced`` through a waveform .tflite. Its BLSTMs fix the input length at export: a longer
    input runs in windows of exactly that length (half a second of context discarded on each side, less for a
    short export), a shorter one is zero-padded and the output cut."""
    from common.enhancement import CONTEXT_SECONDS, overlap_discard
    from common.tflite import TFLiteModel

    model = TFLiteModel(path, num_threads=2)
    samples = int(model.input_details[0]["shape"][-1])
    context = min(int(CONTEXT_SECONDS * SAMPLE_RATE), samples // 4)

    def window(signal):
        outputs = model(fit_length(np.asarray(signal, np.float32), samples)[None])
        return np.asarray(outputs[-1] if isinstance(outputs, list) else outputs)[0, : signal.shape[0]]

    return lambda signal: overlap_discard(window, np.asarray(signal, np.float32), samples - 2 * context, context,
                                          window_length=samples)


def distinct_lines(message: str, limit: int = 300) -> str:
    """The converter's multi-line error as its distinct lines joined by ' | ' (it repeats one line per op)."""
    kind, _, rest = str(message).partition(": ")
    if not kind.isidentifier():  # no "ErrorType: " prefix
        kind, rest = "", str(message)
    lines = dict.fromkeys(line.strip() for line in rest.splitlines() if line.strip())
    text = (f"{kind}: " if kind else "") + " | ".join(lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------------- reports
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


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


def int8_usability(export: dict) -> dict:
    """``{entry: text}``: each quantised export against its strategy's float32 SI-SNR (usable within
    ``USABLE_SI_SNR_DROP_DB``), or why it cannot be judged."""
    verdicts = {}
    for name, entry in export.items():
        strategy, _, variant = name.rpartition("_")
        if variant == "float32":
            verdicts[name] = "reference"
            continue
        if not entry.get("converted"):
            verdicts[name] = "unusable: does not convert"
            continue
        floating = export.get(f"{strategy}_float32", {})
        reference = floating.get("scores", {}).get("si_snr")
        value = entry.get("scores", {}).get("si_snr")
        if reference is None or value is None:
            verdicts[name] = "unknown: no float32 SI-SNR to compare with"
            continue
        change = float(value[0]) - float(reference[0])
        # either way: an int8 model far above a poor float32 model is not the float32 model either
        usable = abs(change) <= USABLE_SI_SNR_DROP_DB
        verdicts[name] = (f"{'usable' if usable else 'unusable'}: SI-SNR {abs(change):.2f} dB "
                          f"{'below' if change < 0 else 'above'} float32")
    return verdicts


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
            train_batches = make_batches(config, corpus, "train", progressive, fresh_every_epoch=True)
            valid_batches = make_batches(config, corpus, "valid", progressive, fresh_every_epoch=False)
            exp_dir = Path(args.exp_dir) / strategy
            trainer = ResumableTraining(model, exp_dir, monitor="val_loss", mode="min")
            train_batches.epoch = trainer.initial_epoch
            train_batches.draw()
            _log(f"[tfgridnet] training {STRATEGY_LABELS[strategy]} ({model.count_params():,} parameters, "
                 f"{len(train_batches)} steps/epoch, {training['epochs']} epochs) in {exp_dir}")
            started = time.time()
            trainer.fit(train_batches, epochs=int(training["epochs"]), validation_data=valid_batches,
                        callbacks=[keras.callbacks.TerminateOnNaN()])
            _log(f"[tfgridnet] {strategy}: {time.time() - started:.0f} s; best weights {trainer.best_weights_path}")

    # -------------------------------------------------------------------------------------------- evaluate
    def _test_examples(self, config, args, corpus):
        """The lazy examples of the built-in test split (``--max-files`` or ``evaluation.max_files`` of them)."""
        limit = args.max_files if getattr(args, "max_files", None) else config["evaluation"]["max_files"]
        return draw_examples(config, corpus, config["evaluation"]["split"], int(config["evaluation"]["seed"]),
                             max_items=limit, segmented=False)

    def _test_pairs(self, config, args):
        """[(name, noisy, clean)] of the built-in test split."""
        examples = self._test_examples(config, args, open_corpus(config))
        names = [f"{index:04d}_{Path(example.meta.get('speech', 'utt')).stem}" for index, example in
                 enumerate(examples)]
        pairs = []
        for name, example in zip(names, examples):
            noisy, clean, _ = example.load()
            pairs.append((name, noisy, clean))
        return pairs

    def _score(self, config, enhance, pairs, description, score_noisy=False):
        """Enhance every pair with ``enhance`` (or take ``enhance[name]`` when it is a dict) and score it."""
        from common.evaluation import score_examples

        return score_examples(enhance, pairs, METRICS, SAMPLE_RATE, int(config["evaluation"]["processes"]),
                              score_noisy=score_noisy, description=description)

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

        items = self._robustness_items(config)
        pairs = self._test_pairs(config, args)
        suffix = "_tflite" if args.tflite else ""
        run = f"{self.name}/{config['config_name']}"
        # the level rows replay the first test files, so the nominal row is scored on those same files
        robustness = {"items": items, "nominal_files": len(pairs) if items is None else min(items, len(pairs))}
        for index, strategy in enumerate(_strategies(args)):
            enhance = self._enhancer(config, args, strategy)
            rows, summary = self._score(config, enhance, pairs, strategy, score_noisy=index == 0)
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
        return self.load_evaluation(args.results_dir, suffix)

    @staticmethod
    def load_evaluation(results_dir, suffix="") -> dict | None:
        """``{"files", "noisy", <system>: summary}`` of the test-set scores evaluate saved (``suffix`` "_tflite":
        of the .tflite models), or None when nothing was scored."""
        from common.evaluation import load_scores

        noisy = load_scores(results_dir, "noisy" + suffix)
        if noisy is None:
            return None
        evaluation = {"files": len(noisy["rows"]), "noisy": noisy["summary"]}
        for strategy in STRATEGIES + (ABLATION,):
            document = load_scores(results_dir, strategy + suffix)
            if document is not None:
                evaluation[strategy] = document["summary"]
        return evaluation

    @staticmethod
    def load_robustness(results_dir, suffix="") -> dict | None:
        """``{"scores", "nominal", "items", "nominal_files"}`` of the robustness sets for the systems evaluated with
        ``suffix`` ("_tflite": the .tflite models), the nominal summaries over the test files the level rows
        replay; None when none was scored."""
        from common.evaluation import load_robustness, load_scores
        from common.metrics import summarize

        documents = {strategy + suffix: load_scores(results_dir, strategy + suffix)
                     for strategy in STRATEGIES + (ABLATION,)}
        scores = load_robustness(results_dir, [system for system, document in documents.items() if document])
        systems = [system for system in documents if any(system in by_system for by_system in scores.values())]
        if not systems:
            return None
        settings = documents[systems[0]]["robustness"]
        nominal = {system: summarize(documents[system]["rows"][: settings["nominal_files"]]) for system in systems}
        return {"scores": scores, "nominal": nominal, **settings}

    @staticmethod
    def _robustness_items(config):
        items = config["evaluation"].get("robustness_items")
        if items is not None and (isinstance(items, bool) or not isinstance(items, int) or items < 1):
            raise ValueError(f"{config['config_path']}: evaluation.robustness_items must be null or an integer >= 1, "
                             f"got {items!r}")
        return items

    def _robustness(self, config, args, items):
        """Score noisy and every evaluated system on the shared unseen-voice x unseen-noise sets and on the test
        files replayed at other levels (scores/robustness/ beside the test-set scores)."""
        from common.evaluation import score_robustness
        from data_prep.paper_sets import robustness_sets

        evaluation = config["evaluation"]
        corpus = open_corpus(config)
        test_examples = self._test_examples(config, args, corpus)
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
        from common.accounting import gzip_bytes, tflite_bytes
        from reproductions.tfgridnet.features import tfgridnet_istft, tfgridnet_stft
        from common.tfkeras import keras
        from common.tflite import TFLiteModel, export_tflite

        export_config = config["export"]
        pairs = self._test_pairs(config, args)[: int(export_config["eval_files"])]
        # The BLSTMs' TensorLists need static shapes in the converter ("TensorListReserve requires element_shape to
        # be static"), so every .tflite has one input length: the longest scored file, rounded up to the hop.
        # Shorter inputs are zero-padded and the output cut; the Keras reference sees the same padded input.
        hop = int(config["model"]["hop_length"])
        samples = int(math.ceil(max(noisy.size for _, noisy, _ in pairs) / hop) * hop)
        frames = 1 + samples // hop
        corpus = open_corpus(config)
        calibration = [fit_length(example.load()[0], samples) for example in
                       draw_examples(config, corpus, "valid", int(config["data"]["seed"]) + 7,
                                     max_items=int(export_config["calibration_examples"]))]
        folder = Path(args.exp_dir) / "tflite"
        report_path = Path(args.results_dir) / "export.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        for strategy in _strategies(args):
            model = load_trained(config, args, strategy)
            keras_enhance = configured_enhancer(config, enhancer(model))
            reference = {name: keras_enhance(fit_length(noisy, samples))[: noisy.size] for name, noisy, _ in pairs}
            # The spectral core: STFT'd input -> complex spectrum of the (last) estimate; STFT/iSTFT stay in numpy.
            last = f"estimate{config['model']['num_blocks']}" if strategy == "progressive" else "enhanced"
            core = keras.Model(model.get_layer("stft").output, model.get_layer(f"{last}_crop").output,
                               name=f"{strategy}_core")
            spectra = [tfgridnet_stft(signal / input_deviation(config, signal))[None] for signal in calibration]
            representative = [np.stack([s.real, s.imag], -1).astype(np.float32) for s in spectra]
            variants = [
                ("float32", model, "float32", None, "waveform"),
                ("dynamic", model, "dynamic", None, "waveform"),
                ("int16x8", core, "int16x8", representative, "core"),
                ("int8", core, "int8", representative, "core"),
            ]
            for variant, network, mode, data, kind in variants:
                path = folder / f"{strategy}_{variant}.tflite"
                entry = {"mode": mode, "graph": kind, "path": str(path), "input_samples": samples}
                started = time.time()
                try:
                    export_tflite(network, path, mode=mode, representative_data=data, int8_io=False,
                                  input_shapes=[(1, samples) if kind == "waveform" else (1, frames, 257, 2)])
                except Exception as error:  # the converter's own message is the result to report
                    entry.update(converted=False, error=f"{type(error).__name__}: {str(error)[:600]}")
                    report[f"{strategy}_{variant}"] = entry
                    _log(f"[tfgridnet] {strategy} {variant}: conversion failed: {entry['error'][:200]}")
                    continue
                runner = TFLiteModel(path, num_threads=2)
                if kind == "waveform":
                    def run(signal, runner=runner):
                        out = runner(fit_length(np.asarray(signal, np.float32), samples)[None])
                        return np.asarray(out[-1] if isinstance(out, list) else out)[0, : signal.size]
                else:
                    def run(signal, runner=runner):
                        padded = fit_length(np.asarray(signal, np.float32), samples)
                        scale = input_deviation(config, padded)
                        spectrum = tfgridnet_stft(padded / scale)
                        out = runner(np.stack([spectrum.real, spectrum.imag], -1)[None].astype(np.float32))[0]
                        # torch.istft without length, zero-padded: the model's own output convention
                        waveform = fit_length(tfgridnet_istft(out[..., 0] + 1j * out[..., 1]), samples) * scale
                        return waveform[: signal.size].astype(np.float32)
                run = configured_enhancer(config, run)
                outputs = {name: run(noisy) for name, noisy, _ in pairs}
                difference = max(float(np.max(np.abs(outputs[name] - reference[name]))) for name in outputs)
                _, summary = self._score(config, outputs, pairs, f"{strategy} {variant}")
                entry.update(converted=True, seconds=round(time.time() - started, 1), bytes=tflite_bytes(path),
                             gzip_bytes=gzip_bytes(path), max_abs_difference_to_keras=difference,
                             ops=sorted(set(runner.op_names())),
                             scores={key: value for key, value in summary.items() if isinstance(value, tuple)})
                report[f"{strategy}_{variant}"] = entry
                _log(f"[tfgridnet] {strategy} {variant}: {entry['bytes']:,} bytes, max |tflite - keras| "
                     f"{difference:.2e}")
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=1, default=float))
        return report

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
    @staticmethod
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

    @staticmethod
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

    def table(self, config, args):
        from common.tables import ResultTable

        from common.evaluation import load_scores, scores_path

        results_dir = Path(args.results_dir)
        evaluation = self.load_evaluation(results_dir)
        if evaluation is None:
            raise FileNotFoundError(f"{scores_path(results_dir, 'noisy')}: run 'evaluate' first")
        info_path = results_dir / "info.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else self.info(config, args)
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
            table_pl = self.paired_table(differences)
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
            robustness = self.load_robustness(results_dir, suffix)
            if robustness is not None:
                texts.append(self.robustness_table(robustness, label, results_dir, config, suffix).render())
        text = "\n\n".join(texts)
        times_path = Path(args.exp_dir) / "stages" / "times.tsv"
        if times_path.exists():
            text += "\n\nStage times (s, from run.sh):\n" + times_path.read_text().rstrip()
        print(text)
        (results_dir / "tables.txt").write_text(text + "\n")
        return text


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
