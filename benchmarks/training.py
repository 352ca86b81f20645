"""``python -m benchmarks.training``: how fast each recipe trains under each speed option, measured in one run.

For each recipe and option the benchmark times ``--steps`` training steps after ``--warmup`` untimed ones and
reports, with the median and the spread (min-max) over the steps:

* the train step: ``train_on_batch`` alone;
* the end-to-end time per example: producing the batch plus the step, divided by the batch size.

Options (a row each, ratios against the float32 row of the same run):

* ``float32``: the float32 policy;
* ``bf16``: Keras' ``mixed_bfloat16`` policy (the float32 pins of the models hold);
* ``fused_lstm`` (CRN, TF-GridNet): bf16 with the builders' ``fused_lstm=True`` where they take that keyword;
* ``data_path`` (ICSE and TF-GridNet, mini): bf16 on the recipe's own training mixtures read by the overlapped data path
  (``common.training.BackgroundBatches``), beside ``data_serial``, the same mixtures read in the step's thread;
* ``fit``: float32, the steps timed inside ``model.fit`` over a Keras ``Sequence`` (how the recipes train: the
  batches are made in a worker thread and reach the step through tf.data) instead of ``train_on_batch``; at mini
  size ICSE and TF-GridNet read their own corpus mixtures, the others random batches;
* ``tcmalloc``, ``glibc_malloc``: the ``fit`` row measured again in a child process that runs on TCMalloc
  (``LD_PRELOAD``, ``common/allocator.sh``) or on glibc's malloc, with oneDNN as ``TF_ENABLE_ONEDNN_OPTS`` was
  when the benchmark started: off unless set, as the recipes train (ICSE's run.sh sets it to 1, so time ICSE's
  rows with ``TF_ENABLE_ONEDNN_OPTS=1``). The other rows run on the allocator of this process, which the table names.
  glibc's malloc slows the Eigen kernels' steps inside ``fit`` (docs/toolchain.md#memory-allocator).

The other rows time random batches of the configuration's training shapes (no corpus needed), so paper sizes
run anywhere. oneDNN is turned on (``TF_ENABLE_ONEDNN_OPTS=1`` unless set) because CPU bf16 needs it.

The table is printed and saved with its provenance to ``results/benchmark_training/<config>/results.json``.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("icse", "fqse", "sednn", "crn", "tfgridnet")
OPTIONS = ("float32", "bf16", "fused_lstm", "data_serial", "data_path", "fit", "tcmalloc", "glibc_malloc")
ALLOCATOR_OPTIONS = ("tcmalloc", "glibc_malloc")
SAMPLE_RATE = 16000
# oneDNN as the recipes have it (common/tfkeras.py: off unless set), read before main() turns it on for the other rows.
RECIPES_ONEDNN = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0")
# The random batches stand for utterances of this length where a configuration trains on whole utterances.
DEFAULT_UTTERANCE_SECONDS = 3.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.training",
        description="Time each recipe's training step and end-to-end time per example under float32, bf16, the "
                    "fused LSTM, the overlapped data path and each memory allocator; print the table and save "
                    "results.json.")
    parser.add_argument("--config", default="mini", choices=("mini", "paper"),
                        help="which configurations' model and batch sizes to time (default mini)")
    parser.add_argument("--recipes", default=",".join(RECIPES),
                        help=f"comma-separated recipes (default: all of {','.join(RECIPES)})")
    parser.add_argument("--options", default=",".join(OPTIONS),
                        help=f"comma-separated options (default: all of {','.join(OPTIONS)})")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing; default 2)")
    parser.add_argument("--set", action="append", default=[], metavar="RECIPE:KEY=VALUE",
                        help="override a recipe's configuration entry, e.g. icse:training.batch_size=4")
    parser.add_argument("--recipe-config", action="append", default=[], metavar="RECIPE=PATH",
                        help="a YAML configuration of RECIPE to time instead of its conf/<config>.yaml")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="default: results/benchmark_training/<config>")
    return parser


def _split(text, known, what):
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown or not chosen:
        raise ValueError(f"--{what}: unknown or empty {unknown or text!r}; choose from {', '.join(known)}")
    return chosen


def _recipe_configs(values, config_name, recipes):
    chosen = {recipe: config_name for recipe in recipes}
    for value in values:
        recipe, separator, path = value.partition("=")
        if not separator or recipe not in RECIPES or not path:
            raise ValueError(f"--recipe-config {value!r}: expected RECIPE=PATH with RECIPE one of {', '.join(RECIPES)}")
        if recipe in chosen:
            chosen[recipe] = path
    return chosen


def _overrides(values, recipes):
    found = {recipe: [] for recipe in recipes}
    for value in values:
        recipe, separator, assignment = value.partition(":")
        if not separator or recipe not in RECIPES or "=" not in assignment:
            raise ValueError(f"--set {value!r}: expected RECIPE:KEY=VALUE with RECIPE one of {', '.join(RECIPES)}")
        if recipe in found:
            found[recipe].append(assignment)
    return found


def spread(times) -> dict:
    """Median, min and max of a list of seconds."""
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


# --------------------------------------------------------------------------------------------- the recipes
class Bench:
    """One recipe at one configuration: its model builder, loss and training shapes."""

    fused_builder = None

    def __init__(self, name, config, size):
        self.name, self.config, self.size = name, config, size

    def batch_size(self) -> int:
        return int(self.config["training"]["batch_size"])

    def utterance_samples(self) -> int:
        seconds = self.config["data"].get("max_train_seconds") or DEFAULT_UTTERANCE_SECONDS
        return int(float(seconds) * SAMPLE_RATE)

    def fused_available(self):
        """``(True, "")`` or ``(False, why)``: whether the builder takes ``fused_lstm``."""
        if self.fused_builder is None:
            return False, "no recurrent layer"
        builder = self.fused_builder()
        if "fused_lstm" not in inspect.signature(builder).parameters:
            return False, f"{builder.__module__}.{builder.__name__} has no fused_lstm keyword"
        return True, ""

    def data_sequence(self, count):
        return None


class IcseBench(Bench):
    def batch_size(self):
        return 1  # one whole utterance per batch (Fu's training)

    def build(self, fused):
        from common.tfkeras import keras
        from reproductions.icse.variants import build_model

        model = build_model(self.config)
        model.compile(keras.optimizers.Adam(1e-3), loss="mse")
        return model

    def random_batch(self, random):
        waveform = random.uniform(-1, 1, (1, self.utterance_samples(), 1)).astype("float32")
        return waveform, waveform * 0.5

    def data_sequence(self, count):
        from reproductions.icse.data import load_corpus, make_sequence_class

        return make_sequence_class()(load_corpus(self.config), self.config, "train", count)


class SednnBench(Bench):
    def build(self, fused):
        from reproductions.sednn.dnn import build_from_config
        from reproductions.sednn.trainer import compile_model

        model = build_from_config(self.config["model"], source=self.config["config_path"])
        compile_model(model, float(self.config["training"]["learning_rate"]))
        return model

    def random_batch(self, random):
        model = self.config["model"]
        shape = (self.batch_size(), int(model["n_concat"]), int(model["n_freq"]))
        return random.standard_normal(shape).astype("float32"), random.standard_normal(
            (shape[0], shape[2])).astype("float32")


class CrnBench(Bench):
    def fused_builder(self):
        from reproductions.crn.crn import build_from_config

        return build_from_config

    def build(self, fused):
        from common.tfkeras import keras
        from reproductions.crn.crn import build_from_config
        from reproductions.crn.data import training_loss

        model = build_from_config(self.config["model"], fused_lstm=fused, source=self.config["config_path"])
        model.compile(keras.optimizers.Adam(float(self.config["training"]["learning_rate"])),
                      loss=training_loss(self.config))
        return model

    def random_batch(self, random):
        bins = int(self.config["model"]["frequency_bins"])
        frames = self.utterance_samples() // 160  # 10-ms hop
        noisy = random.uniform(0, 2, (self.batch_size(), frames, bins)).astype("float32")
        target = random.uniform(0, 1, (self.batch_size(), frames, bins + 1)).astype("float32")
        target[..., -1] = 1.0  # every frame valid
        return noisy, target


class FqseBench(Bench):
    def utterance_samples(self):
        return int(float(self.config["data"]["segment_seconds"]) * SAMPLE_RATE)

    def build(self, fused):
        from common.tfkeras import keras
        from reproductions.fqse.variants import build_core, build_trainable, configured_loss

        model = build_trainable(self.config, "float", build_core(self.config, "float"))
        model.compile(keras.optimizers.Adam(float(self.config["training"]["learning_rate"])),
                      loss=configured_loss(self.config))
        return model

    def random_batch(self, random):
        clean = random.uniform(-0.5, 0.5, (self.batch_size(), self.utterance_samples())).astype("float32")
        return clean + 0.1 * random.standard_normal(clean.shape).astype("float32"), clean


class TfgridnetBench(Bench):
    def fused_builder(self):
        from reproductions.tfgridnet.tfgridnet import build_from_config

        return build_from_config

    def utterance_samples(self):
        return int(float(self.config["data"]["segment_seconds"]) * SAMPLE_RATE)

    def build(self, fused):
        from reproductions.tfgridnet.trainer import compile_model
        from reproductions.tfgridnet.tfgridnet import build_from_config

        model = build_from_config(self.config["model"], progressive=False, fused_lstm=fused,
                                  source=self.config["config_path"])
        return compile_model(model, self.config, len(model.outputs))

    def random_batch(self, random):
        clean = random.uniform(-0.5, 0.5, (self.batch_size(), self.utterance_samples())).astype("float32")
        return clean + 0.1 * random.standard_normal(clean.shape).astype("float32"), clean

    def data_sequence(self, count):
        import copy

        from reproductions.tfgridnet.data import make_batches, open_corpus

        config = copy.deepcopy(self.config)
        config["training"]["examples_per_epoch"] = count * self.batch_size()
        return make_batches(config, open_corpus(config), "train", progressive=False, fresh_every_epoch=False)


BENCHES = {"icse": IcseBench, "sednn": SednnBench, "crn": CrnBench, "fqse": FqseBench, "tfgridnet": TfgridnetBench}


def load_bench(name, config_name_or_path, overrides, size):
    from common.config import load_recipe_config

    config = load_recipe_config(name, config_name_or_path, overrides)
    if "segment_seconds" not in config.get("data", {}) and name in ("fqse", "tfgridnet"):
        raise ValueError(f"{config['config_path']}: data.segment_seconds is missing")
    return BENCHES[name](name, config, size)


# --------------------------------------------------------------------------------------------- measuring
def measure(bench, option, steps, warmup, seed=0):
    """Time one option; returns a result dict (``status`` 'measured' or 'not available: why')."""
    import numpy as np

    from common.tfkeras import keras
    from common.training import BackgroundBatches

    fused = option == "fused_lstm"
    if fused:
        available, why = bench.fused_available()
        if not available:
            return {"status": f"not available: {why}"}
    sequence = None
    if option in ("data_serial", "data_path"):
        if bench.size == "paper":
            return {"status": "not available: paper sizes are timed on random batches (no corpus)"}
        sequence = bench.data_sequence(warmup + steps)
        if sequence is None:
            return {"status": "not available: no corpus data path measured for this recipe"}
        if option == "data_path":
            sequence = BackgroundBatches(sequence)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy("float32" if option in ("float32", "fit") else "mixed_bfloat16")
    try:
        model = bench.build(fused)
        random = np.random.default_rng(seed)
        if option == "fit":
            sequence = bench.data_sequence(warmup + steps) if bench.size == "mini" else None
            if sequence is None:
                sequence = [bench.random_batch(random) for _ in range(warmup + steps)]
            return _measure_fit(model, sequence, warmup)
        step_times, example_times = [], []
        for index in range(warmup + steps):
            started = time.perf_counter()
            inputs, targets = sequence[index] if sequence is not None else bench.random_batch(random)
            stepped = time.perf_counter()
            model.train_on_batch(inputs, targets)
            finished = time.perf_counter()
            if index >= warmup:
                step_times.append(finished - stepped)
                example_times.append((finished - started) / len(inputs))
    finally:
        keras.mixed_precision.set_global_policy("float32")
        if isinstance(sequence, BackgroundBatches):
            sequence.close()
    return {"status": "measured", "step": spread(step_times), "example": spread(example_times),
            "step_times_s": step_times, "example_times_s": example_times,
            "batch_size": int(len(inputs)), "input_shape": list(np.shape(inputs))}


def _measure_fit(model, batches, warmup):
    """Time each step of one ``model.fit`` epoch over ``batches`` (the recipe's Keras ``Sequence`` of corpus
    batches, or a list of random ones); the first ``warmup`` steps are not counted. Keras makes the next batch
    in a worker thread during the step, so the per-example time is the step over the batch size."""
    import numpy as np

    from common.tfkeras import keras

    class Batches(keras.utils.Sequence):
        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            return batches[index]

    class StepTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.started)

    timer = StepTimes()
    model.fit(batches if isinstance(batches, keras.utils.Sequence) else Batches(), epochs=1, verbose=0,
              callbacks=[timer])
    step_times = timer.times[warmup:]
    batch_size = len(batches[0][0])
    example_times = [step / batch_size for step in step_times]
    return {"status": "measured", "step": spread(step_times), "example": spread(example_times),
            "step_times_s": step_times, "example_times_s": example_times,
            "batch_size": int(batch_size), "input_shape": list(np.shape(batches[0][0]))}


def allocator_environment(option):
    """The environment of a child process running on ``option``'s allocator; None where it is not installed."""
    from common.training import tcmalloc_library

    preloaded = [entry for entry in os.environ.get("LD_PRELOAD", "").replace(" ", ":").split(":")
                 if entry and "tcmalloc" not in entry and "jemalloc" not in entry]
    if option == "tcmalloc":
        library = tcmalloc_library()
        if library is None:
            return None
        preloaded.insert(0, library)
    # oneDNN as the recipes train (common/tfkeras.py: off unless set), not the benchmark's own setting: glibc's
    # malloc slows TensorFlow's Eigen kernels, not oneDNN's.
    environment = dict(os.environ, LD_PRELOAD=":".join(preloaded), SE_ALLOCATOR="system",
                       TF_ENABLE_ONEDNN_OPTS=RECIPES_ONEDNN)
    return environment


def measure_in_child(bench, option, args, config_path):
    """The ``fit`` row of ``bench`` measured by ``python -m benchmarks.training`` in a child on ``option``'s
    allocator (same steps, warm-up and overrides)."""
    environment = allocator_environment(option)
    if environment is None:
        return {"status": "not available: libtcmalloc_minimal.so.4 not found (apt-get install libtcmalloc-minimal4)"}
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "benchmarks.training", "--config", args.config, "--recipes", bench.name,
                   "--options", "fit", "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--recipe-config", f"{bench.name}={config_path}", "--results-dir", folder]
        for value in args.set:
            if value.startswith(f"{bench.name}:"):
                command += ["--set", value]
        child = subprocess.run(command, env=environment, cwd=REPOSITORY_ROOT, capture_output=True, text=True)
        if child.returncode != 0:
            last_line = (child.stderr.strip().splitlines() or ["no message"])[-1]
            return {"status": f"failed in the child process (exit {child.returncode}): {last_line}"}
        document = json.loads((Path(folder) / "results.json").read_text())
    row = document["extra"]["results"][bench.name]["fit"]
    row["allocator"] = document["provenance"]["config"]["allocator"]
    row["onednn"] = document["provenance"]["config"]["onednn"]
    return row


def add_ratios(results):
    """Speed-up of every measured row against its recipe's float32 row (median over median); the allocator rows
    against the glibc_malloc row."""
    for recipe, rows in results.items():
        for option, row in rows.items():
            reference = rows.get("glibc_malloc" if option in ALLOCATOR_OPTIONS else "float32", {})
            if row.get("status") == "measured" and reference.get("status") == "measured":
                row["step_speedup"] = reference["step"]["median_s"] / row["step"]["median_s"]
                row["example_speedup"] = reference["example"]["median_s"] / row["example"]["median_s"]


def result_table(results, config_name, allocator):
    from common.tables import ResultTable

    notes = ["step: train_on_batch alone; per example: batch production + step over the batch size; "
             "median (min-max) over the timed steps; x: speed-up against float32 of the same run (tcmalloc, "
             "glibc_malloc: against glibc_malloc)",
             "data_serial / data_path train on the corpus' own utterances (their lengths, not the random batches' "
             "shape): compare them with each other",
             "fit: float32 steps timed inside model.fit over a Sequence, as the recipes train (mini ICSE and "
             "TF-GridNet: their corpus mixtures)",
             f"tcmalloc / glibc_malloc: the fit row in a child process on that allocator, oneDNN "
             f"{'on' if RECIPES_ONEDNN == '1' else 'off'} (TF_ENABLE_ONEDNN_OPTS as given; the recipes' default is "
             f"off, ICSE's run.sh turns it on); the other rows ran on {allocator}, oneDNN on"]
    table = ResultTable(f"Training speed, {config_name} sizes", [
        ("step_median_s", "step s", 4), ("step_min_s", "min", 4), ("step_max_s", "max", 4),
        ("example_median_ms", "per example ms", 2), ("example_min_ms", "min", 2), ("example_max_ms", "max", 2),
        ("step_speedup", "step x", 2), ("example_speedup", "example x", 2)], notes)
    for recipe, rows in results.items():
        for option, row in rows.items():
            if row.get("status") != "measured":
                table.notes.append(f"{recipe} {option}: {row['status']}")
                continue
            table.add_row(f"{recipe} {option}", {
                "step_median_s": row["step"]["median_s"], "step_min_s": row["step"]["min_s"],
                "step_max_s": row["step"]["max_s"],
                "example_median_ms": 1000 * row["example"]["median_s"],
                "example_min_ms": 1000 * row["example"]["min_s"],
                "example_max_ms": 1000 * row["example"]["max_s"],
                "step_speedup": row.get("step_speedup"), "example_speedup": row.get("example_speedup")})
    return table


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        recipes = _split(args.recipes, RECIPES, "recipes")
        options = _split(args.options, OPTIONS, "options")
        if args.steps < 1 or args.warmup < 0:
            raise ValueError(f"--steps must be >= 1 and --warmup >= 0, got {args.steps} and {args.warmup}")
        overrides = _overrides(args.set, recipes)
        configs = _recipe_configs(args.recipe_config, args.config, recipes)
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
        from common.training import cpu_flags, memory_allocator, onednn_enabled

        benches = [load_bench(name, configs[name], overrides[name], args.config) for name in recipes]
        total = len(benches) * len(options)
        results, count = {}, 0
        for bench in benches:
            results[bench.name] = {}
            for option in options:
                count += 1
                if option in ALLOCATOR_OPTIONS:
                    row = measure_in_child(bench, option, args, bench.config["config_path"])
                else:
                    row = measure(bench, option, args.steps, args.warmup)
                results[bench.name][option] = row
                if row["status"] == "measured":
                    text = (f"step {row['step']['median_s']:.4f} s ({row['step']['min_s']:.4f}-"
                            f"{row['step']['max_s']:.4f}), {1000 * row['example']['median_s']:.2f} ms per example")
                else:
                    text = row["status"]
                print(f"[{count}/{total}] {bench.name} {option}: {text}", flush=True)
        add_ratios(results)
        allocator = memory_allocator()
        table = result_table(results, args.config, allocator)
        print(table.render())
        results_dir = args.results_dir or REPOSITORY_ROOT / "results" / "benchmark_training" / args.config
        settings = {"config": args.config, "recipe_config_files": {bench.name: bench.config.get("config_path")
                                                                   for bench in benches},
                    "recipes": recipes, "options": options, "steps": args.steps,
                    "warmup": args.warmup, "set": list(args.set), "onednn": onednn_enabled(), "allocator": allocator,
                    "bf16_cpu_flags": sorted(cpu_flags() & {"amx_bf16", "avx512_bf16"}),
                    "recipe_configs": {bench.name: bench.config for bench in benches}}
        path = table.save(results_dir, config=settings, extra={"results": results}, run="benchmark_training")
        print(f"saved {path}")
        return 0
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
