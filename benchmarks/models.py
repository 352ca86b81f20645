"""Per-reproduction adapters: which artefacts each recipe leaves in ``exp/<name>/<config>/`` and how to run them.

Every adapter turns a recipe's files into :class:`benchmarks.variant.Variant` rows using the recipe's own public
functions (builders, loaders, feature code), so a figure here is the same model the recipe evaluates. Signal
processing that the recipe keeps outside the graph (STFT/iSTFT, sednn's scaler and context windows, FQSE's
splitter/combiner, CRN's streaming state) stays outside it here too: ``prepare(waveform) -> (arrays, context)``
feeds the graph and ``finish(outputs, context, waveform) -> waveform`` turns its output back into audio.

Where a recipe keeps a Keras model but writes no .tflite of it (float, pruned or clustered models), the benchmark
exports a float32 .tflite itself into ``exp/benchmark/<config>/<name>/`` (``(exported by the benchmark)`` in the
variant label) so every variant is also measured deployed. A variant a recipe does not produce at all is listed
with that reason; one it produces but that is not on disk yet names the missing file and the run.sh stages that
write it (with the stages it depends on whose outputs are missing too). File names and stages come from the
recipe's own ``artifacts(exp_dir, config)`` (``common.artifacts``), never from this module.

Speed does not depend on training. On the paper config a model with no trained checkpoint is therefore listed
with speed-only rows instead (:meth:`Adapter.speed_only_variants`): the paper-size network with a seeded random
initialisation, exported by the benchmark into ``exp/benchmark/paper/<name>/random_weights/`` in the same
deployed forms as the recipe's (float, PTQ int8, QAT graphs, streaming files), int8 files calibrated on seeded
random audio (:func:`random_audio`), labelled ``[speed only (random weights)]``; size and speed are measured,
quality is not. The mini config keeps reporting a missing checkpoint as "not trained yet".

Inputs longer than :data:`common.enhancement.WHOLE_SECONDS` (the peak-memory input, a 10-minute file) run through
:func:`common.enhancement.chunked` (4-s windows with 0.5 s of discarded context on each side), as the recipes'
``enhance`` commands run them, so a variant's memory is bounded whatever the file length; the CRN's streaming
rows carry their state hop by hop and run any input whole. Timing inputs and test clips are shorter and run whole.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from benchmarks.variant import REPOSITORY_ROOT, Variant, fixed_length, keras_function, missing_variant, relative_path
from common.artifacts import stages_to_make
from common.enhancement import chunked

SAMPLE_RATE = 16000
SPEED_ONLY_LABEL = "speed only (random weights)"
RANDOM_WEIGHTS_SEED = 0
# The speed-only rows appear for a model with no trained checkpoint of one of these configs.
SPEED_ONLY_CONFIGS = ("paper",)
SPEED_ONLY_CALIBRATION = "int8 calibrated on seeded random audio (white noise, 4 clips, levels 0.05-0.5 RMS)"


def random_audio(count: int = 4, seconds: float = 4.0, seed: int = RANDOM_WEIGHTS_SEED + 1) -> list:
    """``count`` seeded white-noise clips of ``seconds`` at random levels (0.05 to 0.5 RMS): the calibration audio of
    the speed-only rows, which need no corpus."""
    rng = np.random.default_rng(seed)
    samples = int(round(seconds * SAMPLE_RATE))
    return [(rng.uniform(0.05, 0.5) * rng.standard_normal(samples)).astype(np.float32) for _ in range(count)]


def seeded_model(build, source=None):
    """A loader returning one model built by ``build()`` after seeding Keras' initialisers (the same random
    weights on every run); ``source`` is the export code whose change makes the benchmark re-export."""
    cache = {}

    def load():
        if "model" not in cache:
            from common.tfkeras import keras

            keras.utils.set_random_seed(RANDOM_WEIGHTS_SEED)
            cache["model"] = build()
        return cache["model"]

    load.source = str(source) if source is not None else str(REPOSITORY_ROOT / "common" / "tflite.py")
    return load


def _first(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def _last(outputs):
    return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs


class Adapter:
    """Base: config loading, folders, Keras and LiteRT variants from prepare/finish hooks."""

    name = ""
    torch_comparison = False

    def recipe_config(self, config_name):
        from common.config import load_recipe_config

        return load_recipe_config(self.name, config_name)

    def exp_dir(self, config_name) -> Path:
        return REPOSITORY_ROOT / "exp" / self.name / config_name

    def bench_dir(self, config_name) -> Path:
        return REPOSITORY_ROOT / "exp" / "benchmark" / config_name / self.name

    def results_dir(self, config_name) -> Path:
        return REPOSITORY_ROOT / "results" / self.name / config_name

    def stage_done(self, config_name, stage) -> bool:
        """Whether run.sh has marked ``stage`` finished (common/stages.sh writes ``stages/<N>.done``)."""
        return (self.exp_dir(config_name) / "stages" / f"{int(stage)}.done").is_file()

    def run_command(self, config_name, stages) -> str:
        """The run.sh command(s) that run exactly ``stages``: consecutive stages share one --stage/--stop-stage
        range, so no unrelated stage (an evaluation between training and export) is run on the way.

        A stage already marked done gets ``--force``: run.sh skips marked stages, and that is how a file can be
        missing after a complete run (the marker predates it, or the file was deleted)."""
        stages = sorted({int(stage) for stage in stages})
        ranges = []
        for stage in stages:
            if ranges and stage == ranges[-1][1] + 1:
                ranges[-1][1] = stage
            else:
                ranges.append([stage, stage])
        config = "" if config_name == "mini" else f" --config {config_name}"  # run.sh's default is mini
        commands, forced = [], []
        for first, last in ranges:
            done = [stage for stage in range(first, last + 1) if self.stage_done(config_name, stage)]
            forced += done
            commands.append(f"bash reproductions/{self.name}/run.sh{config} --stage {first} --stop-stage {last}"
                            + (" --force" if done else ""))
        note = ""
        if forced:
            marker_dir = relative_path(self.exp_dir(config_name) / "stages")
            note = (f" (--force: stage{'s' if len(forced) > 1 else ''} {', '.join(map(str, forced))} "
                    f"marked done in {marker_dir}, which run.sh would skip)")
        return ", then ".join(commands) + note

    def not_trained(self, variant, kind, path, config_name, stages):
        """A row for a checkpoint not on disk: names it and the run.sh ``stages`` that train it."""
        return missing_variant(self.name, variant, kind, path, reason=(
            f"not trained yet: {relative_path(path)} is missing; run {self.run_command(config_name, stages)}"))

    def not_exported(self, variant, kind, path, config_name, stages):
        """A row for a recipe's .tflite not on disk: names it and the run.sh ``stages`` that write it (the
        export stage, plus the training stages of every model that stage loads whose weights are missing)."""
        return missing_variant(self.name, variant, kind, path, reason=(
            f"not exported yet: {relative_path(path)} is missing; run {self.run_command(config_name, stages)}"))

    def not_produced(self, variant, kind, why=""):
        return Variant(self.name, variant, kind, missing=f"not produced by reproductions/{self.name}{why}")

    timing_seconds = 4.0  # set by the benchmark run to its timing-input length

    def trained(self, config, config_name) -> bool:
        """Whether the recipe's float checkpoint for ``config_name`` is on disk."""
        return True

    def speed_only_variants(self, config, config_name) -> list:
        """The paper-size variants with seeded random weights (see the module docstring)."""
        return []

    def random_dir(self, config_name) -> Path:
        return self.bench_dir(config_name) / "random_weights"

    def variants(self, config_name) -> list:
        try:
            config = self.recipe_config(config_name)
        except (ValueError, FileNotFoundError) as error:
            return [Variant(self.name, "all variants", "float",
                            missing=f"not available: {error} (reproductions/{self.name} has no conf yet?)")]
        if config_name in SPEED_ONLY_CONFIGS and not self.trained(config, config_name):
            rows = self.speed_only_variants(config, config_name)
            for row in rows:
                if not row.missing:
                    row.speed_only = True
                    row.variant = f"{row.variant} [{SPEED_ONLY_LABEL}]"
                    row.notes = "; ".join(filter(None, [row.notes, SPEED_ONLY_CALIBRATION]))
                    row.calibration_audio = row.calibration_audio or (
                        lambda: random_audio(seconds=self.timing_seconds))
            return rows
        rows = self.list_variants(config, config_name)
        for row in rows:
            if not row.missing and row.calibration_audio is None:
                row.calibration_audio = lambda: _calibration_waveforms(4)
        return rows

    # -- generic runners ---------------------------------------------------------------------------------------
    def keras_variant(self, label, kind, file, load_model, prepare, finish, core_model=None, core_inputs=None,
                      core_seconds=None, notes=""):
        """A float Keras row. ``load_model`` builds and loads the model run end to end; ``core_model`` (default: the
        same) is the graph the .tflite files are exported from (for MACs, ONNX and the PyTorch port)."""
        cache = {}

        def model():
            if "model" not in cache:
                cache["model"] = load_model()
            return cache["model"]

        def core():
            return core_model(model()) if core_model else model()

        def make(threads):
            # One traced function per model: reduce_retracing generalises the time axis after the second length.
            if "function" not in cache:
                cache["function"] = keras_function(model())
            run = cache["function"]
            return chunked(lambda signal: self._pipeline(lambda *arrays: run(*arrays), prepare, finish, signal),
                           SAMPLE_RATE)

        return Variant(self.name, label, kind, file=file, runtime="keras", make_enhancer=make, keras_model=core,
                       core_inputs=core_inputs or (lambda signal: prepare(signal)[0]), core_seconds=core_seconds,
                       notes=notes)

    def tflite_variant(self, label, kind, path, prepare, finish, keras_model=None, build=None, runner=None,
                       core_inputs=None, core_seconds=None, notes="", streaming=False, window_length=None):
        """A LiteRT row on ``path``; ``runner(path, threads)`` defaults to :class:`common.tflite.TFLiteModel`.
        ``streaming``: the runner carries state hop by hop, so a long input runs whole (its memory is bounded by
        the hop); other rows run a long input in overlapping windows (:func:`chunked`), of exactly
        ``window_length`` samples when given (a static-length file's length: every window then runs on it)."""
        from benchmarks.variant import litert_core

        make_runner = runner or litert_core

        def make(threads):
            model = make_runner(path, threads)
            enhance = lambda signal: self._pipeline(model, prepare, finish, signal)  # noqa: E731
            return enhance if streaming else chunked(enhance, SAMPLE_RATE, window_length=window_length)

        return Variant(self.name, label, kind, file=path, runtime="litert", make_enhancer=make, tflite_path=path,
                       keras_model=keras_model, build=build,
                       core_inputs=core_inputs or (lambda signal: prepare(signal)[0]), core_seconds=core_seconds,
                       notes=notes)

    @staticmethod
    def _pipeline(run, prepare, finish, signal):
        arrays, context = prepare(np.asarray(signal, np.float32))
        return np.asarray(finish(run(*arrays), context, signal), np.float32).reshape(-1)

    def exported(self, config_name, stem, load_core, mode="float32", input_shapes=None, representative=None,
                 trace_context=None):
        """``(path, build)`` of a .tflite the benchmark exports from a recipe's Keras model, redone when the
        source checkpoint is newer. ``trace_context``: a context-manager factory the conversion runs in (the
        recipe's own deployment mode, e.g. FQSE's :func:`deployment_graph`)."""
        path = self.bench_dir(config_name) / f"{stem}_{mode}.tflite"

        def build():
            source = getattr(load_core, "source", None)
            if path.is_file() and (source is None or path.stat().st_mtime >= Path(source).stat().st_mtime):
                return
            from common.tflite import export_tflite

            model = load_core()
            data = representative() if callable(representative) else representative
            with trace_context() if trace_context is not None else contextlib.nullcontext():
                export_tflite(model, path, mode=mode, input_shapes=input_shapes, representative_data=data,
                              int8_io=False)

        return path, build


def _with_source(function, source):
    function.source = source
    return function


# ----------------------------------------------------------------------------------------------------- ICSE
class IcseAdapter(Adapter):
    """Fu's waveform FCN: peak-normalised waveform in and out; PP / PQ / PP+PQ weights, int8 .tflite files."""

    name = "icse"

    @staticmethod
    def prepare(signal):
        from reproductions.icse.data import peak_normalise

        return [peak_normalise(signal)[None, :, None]], None

    @staticmethod
    def finish(outputs, context, signal):
        return np.asarray(_first(outputs))[0, :, 0]

    def list_variants(self, config, config_name):
        from reproductions.icse import recipe, variants

        exp_dir = self.exp_dir(config_name)
        theta = config["pruning"]["thetas"][0]
        clusters = int(config["quantization"]["clusters_per_sign"])
        pruned, clustered, pruned_clustered = (variants.pp_name(theta), variants.pq_name(clusters),
                                               variants.pq_name(clusters, theta))
        names = {"fcn": ("float Keras", "float"), pruned: (f"pruned (ICSE PP theta={theta})", "pruned"),
                 clustered: (f"clustered (ICSE PQ k={clusters})", "clustered"),
                 pruned_clustered: (f"pruned+clustered (ICSE PP+PQ)", "pruned_clustered")}
        published = recipe.artifacts(exp_dir, config)
        rows = []
        for stored, (label, kind) in names.items():
            weights = published[stored].path
            if not weights.is_file():
                rows.append(self.not_trained(label, kind, weights, config_name, stages_to_make(published, stored)))
                continue
            load = _with_source(lambda stored=stored: variants.load_variant(config, exp_dir, stored)[0], weights)
            if kind == "float":
                rows.append(self.keras_variant(label, kind, weights, load, self.prepare, self.finish))
                path, build = self.exported(config_name, stored, load)
                rows.append(self.tflite_variant("float .tflite (exported by the benchmark)", "tflite", path,
                                                self.prepare, self.finish, keras_model=load, build=build))
                ptq = published[f"{stored}_tflite"].path
                if ptq.is_file():
                    rows.append(self.tflite_variant("PTQ int8 .tflite", "ptq_int8", ptq, self.prepare, self.finish,
                                                    keras_model=load))
                else:
                    rows.append(self.not_exported("PTQ int8 .tflite", "ptq_int8", ptq, config_name,
                                                  stages_to_make(published, f"{stored}_tflite")))
            else:
                path, build = self.exported(config_name, stored, load)
                rows.append(self.tflite_variant(f"{label} float .tflite", kind, path, self.prepare, self.finish,
                                                keras_model=load, build=build))
            if kind == "pruned_clustered":
                deployed = published[f"{stored}_tflite"].path
                if deployed.is_file():
                    rows.append(self.tflite_variant("ICSE PP+PQ int8 .tflite", "icse", deployed, self.prepare,
                                                    self.finish, keras_model=load))
                else:
                    rows.append(self.not_exported("ICSE PP+PQ int8 .tflite", "icse", deployed, config_name,
                                                  stages_to_make(published, f"{stored}_tflite")))
        rows.append(self.not_produced("QAT int8 .tflite", "qat_int8", " (ICSE compresses by PP+PQ, not QAT)"))
        return rows

    def trained(self, config, config_name):
        from reproductions.icse import recipe

        return recipe.artifacts(self.exp_dir(config_name), config)["fcn"].path.is_file()

    def speed_only_variants(self, config, config_name):
        from reproductions.icse import recipe, variants

        load = seeded_model(lambda: variants.build_model(config))
        representative = lambda: [self.prepare(clip)[0][0] for clip in random_audio(seconds=self.timing_seconds)]  # noqa: E731
        rows = [self.keras_variant("float Keras", "float", None, load, self.prepare, self.finish)]
        for mode, label, kind in (("float32", "float .tflite", "tflite"), ("int8", "PTQ int8 .tflite", "ptq_int8")):
            # The recipe's export form: dynamic length, float32 input and output around the int8 graph.
            path, build = self.exported(config_name, "random_weights/fcn", load, mode=mode,
                                        representative=representative if mode == "int8" else None)
            rows.append(self.tflite_variant(label, kind, path, self.prepare, self.finish, keras_model=load,
                                            build=build))
        rows.append(Variant(self.name, "pruned / clustered / ICSE PP+PQ", "icse", missing=(
            "needs a trained FCN (PP ranks trained filters, PQ clusters trained weights): "
            f"run {self.run_command(config_name, _model_stages(recipe, config, config_name, self))}")))
        return rows


def _model_stages(recipe, config, config_name, adapter) -> list:
    """Every run.sh stage that writes one of ``recipe``'s published models or .tflite files."""
    return sorted({artifact.stage for artifact in recipe.artifacts(adapter.exp_dir(config_name), config).values()})


def _calibration_waveforms(count, seed=1):
    """Noisy training clips of the mini corpus (never the test set) for int8 calibration done by the benchmark."""
    from data_prep.corpus import ensure_mini_corpus
    from data_prep.paper_sets import fcn_set

    corpus = ensure_mini_corpus(str(REPOSITORY_ROOT / "data"))
    return [example.load()[0] for example in fcn_set(corpus, "train", seed=seed, max_items=count)]


# ----------------------------------------------------------------------------------------------------- FQSE
class FqseAdapter(Adapter):
    """Conv-TasNet: float core (benchmark exports float and PTQ int8), vanilla QAT and FQSE int8 cores."""

    name = "fqse"
    torch_comparison = True

    @staticmethod
    def prepare_float(signal):
        return [np.asarray(signal, np.float32)[None, :, None]], None

    @staticmethod
    def finish_float(outputs, context, signal):
        enhanced = np.asarray(_first(outputs))[0, :, 0]
        output = np.zeros(signal.shape[0], np.float32)
        output[: enhanced.size] = enhanced[: signal.shape[0]]
        return output

    def list_variants(self, config, config_name):
        from reproductions.fqse import recipe, variants

        exp_dir = self.exp_dir(config_name)
        rows = []
        published = recipe.artifacts(exp_dir, config)
        weights = published["float"].path
        if not weights.is_file():
            rows.append(self.not_trained("float Keras", "float", weights, config_name,
                                         stages_to_make(published, "float")))
        else:
            load_core = _with_source(lambda: variants.load_core(config, exp_dir, "float"), weights)
            rows.append(self.keras_variant("float Keras", "float", weights, load_core, self.prepare_float,
                                           self.finish_float))
            rows += self._float_core_rows(config_name, load_core, lambda: _calibration_waveforms(4), "float_core",
                                          "(exported by the benchmark)")
        for variant, label, kind in (("vanilla", "QAT int8 .tflite (vanilla 8-bit)", "qat_int8"),
                                     ("fqse", "FQSE int8 .tflite", "fqse")):
            path = published[f"{variant}_tflite"].path
            if not path.is_file():
                rows.append(self.not_exported(label, kind, path, config_name,
                                              stages_to_make(published, f"{variant}_tflite")))
                continue
            stages = int(config["fqse"]["splitter_stages"]) if variant == "fqse" else 1
            prepare, finish = self._int8_hooks(variant, stages)
            qat_weights = published[variant].path
            keras_model = (lambda variant=variant: variants.load_core(config, exp_dir, variant)) \
                if qat_weights.is_file() else None
            rows.append(self.tflite_variant(label, kind, path, prepare, finish, keras_model=keras_model,
                                            runner=_fqse_runner))
        rows.append(self.not_produced("pruned / clustered / pruned+clustered", "pruned",
                                      " (FQSE compresses by 8-bit QAT only)"))
        return rows

    def _float_core_rows(self, config_name, load_core, calibration, stem, suffix):
        """Float and PTQ int8 rows of the float core, ``calibration()`` the int8 calibration waveforms.

        The Conv-TasNet decoder's output length is computed in the graph, and XNNPACK cannot re-prepare it
        after a resize ("failed to reshape"): timing runs a static-shape file at the timing length with
        XNNPACK; other lengths (the quality clips) run the dynamic file on LiteRT's built-in kernels."""
        from reproductions.fqse.quantizers import deployment_graph

        rows = []
        representative = lambda: [s[None, :, None] for s in calibration()]  # noqa: E731
        for mode, label, kind in (("float32", f"float .tflite {suffix}".strip(), "tflite"),
                                  ("int8", f"PTQ int8 .tflite {suffix}".strip(), "ptq_int8")):
            data = representative if mode == "int8" else None
            # deployment_graph: the recipe's export form (shared PReLU slopes as LeakyReLU, which XNNPACK
            # runs in int8), so this PTQ row is the same graph the QAT rows deploy.
            dynamic, build_dynamic = self.exported(config_name, stem, load_core, mode=mode,
                                                   input_shapes=[(1, None, 1)], representative=data,
                                                   trace_context=deployment_graph)
            static_length = int(round(self.timing_seconds * SAMPLE_RATE))
            # Calibration clips cut or tiled to the static length (a static graph takes no other shape).
            static_data = None if data is None else (lambda length=static_length: [
                fixed_length(s, length)[None, :, None] for s in calibration()])
            static, build_static = self.exported(config_name, f"{stem}_{static_length}", load_core,
                                                 mode=mode, input_shapes=[(1, static_length, 1)],
                                                 representative=static_data, trace_context=deployment_graph)

            def build(first=build_dynamic, second=build_static):
                first()
                second()

            rows.append(self.tflite_variant(label, kind, static, self.prepare_float, self.finish_float,
                                            keras_model=load_core, build=build,
                                            runner=lambda path, threads, dynamic=dynamic: _static_or_dynamic(
                                                path, dynamic, threads),
                                            notes=f"timing: {static.name} (static, XNNPACK); quality: "
                                                  f"{dynamic.name} (dynamic length, built-in kernels)",
                                            # a long file in windows of the static length runs on XNNPACK: the
                                            # built-in kernels take 1.4 GB for one 4-s window at paper size
                                            window_length=static_length))
        return rows

    @staticmethod
    def _int8_hooks(variant, stages):
        def prepare(signal):
            from reproductions.fqse.fqse import split_input_numpy

            if variant == "fqse":
                return [split_input_numpy(np.asarray(signal)[None], stages=stages).astype(np.float32)], None
            return [np.asarray(signal, np.float32)[None, :, None]], None

        def finish(outputs, context, signal):
            from reproductions.fqse.fqse import combine_outputs_numpy

            outputs = outputs if isinstance(outputs, list) else [outputs]
            enhanced = (combine_outputs_numpy([o[0, :, 0] for o in outputs]) if variant == "fqse"
                        else outputs[0][0, :, 0])
            output = np.zeros(signal.shape[0], np.float32)
            output[: enhanced.shape[0]] = enhanced[: signal.shape[0]]
            return output

        return prepare, finish

    def trained(self, config, config_name):
        from reproductions.fqse import recipe

        return recipe.artifacts(self.exp_dir(config_name), config)["float"].path.is_file()

    def speed_only_variants(self, config, config_name):
        from reproductions.fqse import fqse, variants

        load_core = seeded_model(lambda: variants.build_core(config, "float"))
        calibration = lambda: random_audio(seconds=self.timing_seconds)  # noqa: E731
        rows = [self.keras_variant("float Keras", "float", None, load_core, self.prepare_float, self.finish_float)]
        rows += self._float_core_rows(config_name, load_core, calibration, "random_weights/float_core", "")
        for variant, label, kind in (("vanilla", "QAT int8 .tflite (vanilla 8-bit)", "qat_int8"),
                                     ("fqse", "FQSE int8 .tflite", "fqse")):
            stages = int(config["fqse"]["splitter_stages"]) if variant == "fqse" else 1
            prepare, finish = self._int8_hooks(variant, stages)
            load = seeded_model(lambda variant=variant, prepare=prepare: _with_initial_ranges(
                variants.build_core(config, variant), [prepare(clip)[0][0] for clip in calibration()]),
                source=fqse.__file__)
            path = self.random_dir(config_name) / f"{variant}_int8.tflite"

            def build(path=path, load=load, prepare=prepare, channels=stages):
                if path.is_file() and path.stat().st_mtime >= Path(load.source).stat().st_mtime:
                    return
                # The recipe's conversion (fqse.convert_core_to_int8) of the QAT graph at its initial ranges.
                flatbuffer = fqse.convert_core_to_int8(load(), [prepare(clip)[0][0] for clip in calibration()],
                                                       channels)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(flatbuffer)

            rows.append(self.tflite_variant(label, kind, path, prepare, finish, keras_model=load, build=build,
                                            runner=_fqse_runner))
        rows.append(Variant(self.name, "pruned / clustered / pruned+clustered", "pruned",
                            missing="not produced by reproductions/fqse (FQSE compresses by 8-bit QAT only)"))
        return rows


def _with_initial_ranges(core, inputs, observation_seconds: float = 0.5):
    """A fresh QAT core with the ranges its fine-tuning starts from: weight ranges from the kernels (FQSE's first
    call) and activation ranges from training-mode calls on ``inputs`` (the quantizers' observation steps, each
    input cut to ``observation_seconds``). The quantizers' ranges start at zero, where the converter cannot
    quantize a convolution (zero points off zero); the int8 graph and its speed do not depend on the values."""
    from reproductions.fqse import quantizers as fqse_quantizers

    fqse_quantizers.initialize_weight_ranges(core)
    samples = int(observation_seconds * SAMPLE_RATE)
    for array in inputs:
        core(np.asarray(array, np.float32)[:, :samples], training=True)
    return core


def _static_or_dynamic(static_path, dynamic_path, threads):
    """Run inputs of the static file's shape on it (XNNPACK); any other length on the dynamic-length file with
    LiteRT's built-in kernels (same graph and weights, no delegate to re-prepare)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from common.tflite import TFLiteModel

    static = TFLiteModel(static_path, num_threads=threads)
    shape = tuple(static.input_details[0]["shape"])
    dynamic = Interpreter(model_path=str(dynamic_path), num_threads=threads,
                          experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)

    def run(array):
        if tuple(array.shape) == shape:
            return static(array)
        detail = dynamic.get_input_details()[0]
        dynamic.resize_tensor_input(detail["index"], list(array.shape))
        dynamic.allocate_tensors()
        dynamic.set_tensor(detail["index"], np.asarray(array, np.float32))
        dynamic.invoke()
        return dynamic.get_tensor(dynamic.get_output_details()[0]["index"])

    return run


def _fqse_runner(path, threads):
    """The recipe's int8 runner orders y0/y1 by signature name; wrapped to the (1, samples, 1) list layout."""
    from reproductions.fqse.fqse import Int8CoreRunner

    runner = Int8CoreRunner(path, num_threads=threads)

    def run(core_input):
        return [output[None, :, None] for output in runner(core_input[0])]

    return run


# ----------------------------------------------------------------------------------------------------- sednn
class SednnAdapter(Adapter):
    """Xu's DNN: scaled 7-frame log-magnitude windows in (batch = frames), scaled log-magnitude out."""

    name = "sednn"

    def _hooks(self, scaler_loader, n_concat):
        from reproductions.sednn.features import sednn_context, sednn_istft, sednn_log_magnitude, sednn_stft

        cache = {}

        def scaler():
            if "scaler" not in cache:
                cache["scaler"] = scaler_loader()
            return cache["scaler"]

        def prepare(signal):
            spectrum = sednn_stft(signal)
            windows = scaler().transform(sednn_context(sednn_log_magnitude(spectrum), n_concat=n_concat, hop=1))
            return [windows.astype(np.float32)], spectrum

        def finish(outputs, spectrum, signal):
            enhanced_log = scaler().inverse_transform(np.asarray(_first(outputs)))
            return sednn_istft(np.exp(enhanced_log), spectrum, length=len(signal))

        return prepare, finish

    def list_variants(self, config, config_name):
        from reproductions.sednn import recipe
        from reproductions.sednn.scaler import Scaler
        from reproductions.sednn.trainer import load_checkpoint

        exp_dir = self.exp_dir(config_name)
        n_concat = int(config["features"]["n_concat"])
        rows = []
        published = recipe.artifacts(exp_dir, config)
        labels = {"float": "float", "pruned": "pruned (TFMOT magnitude)", "clustered": "clustered (TFMOT k-means)"}
        sources = {variant: published[variant].path for variant in labels}
        for variant, source in sources.items():
            if not source.is_file():
                rows.append(self.not_trained(f"{labels[variant]} Keras", variant, source, config_name,
                                             stages_to_make(published, variant)))
                continue
            load = _with_source(lambda source=source: load_checkpoint(source)[0], source)
            prepare, finish = self._hooks(lambda source=source: Scaler.load_from_h5(source), n_concat)
            if variant == "float":
                rows.append(self.keras_variant("float Keras", "float", source, load, prepare, finish))
            for mode, kind, label in (("float32", "tflite" if variant == "float" else variant,
                                       "float .tflite" if variant == "float" else f"{labels[variant]} float .tflite"),
                                      ("int8", "ptq_int8", "PTQ int8 .tflite")):
                if mode == "int8" and variant != "float":
                    continue
                path = published[f"{variant}_{mode}_tflite"].path
                if not path.is_file():
                    rows.append(self.not_exported(label, kind, path, config_name,
                                                  stages_to_make(published, f"{variant}_{mode}_tflite")))
                    continue
                tprepare, tfinish = self._hooks(
                    lambda path=path: Scaler.load_npz(path.with_suffix(".scaler.npz")), n_concat)
                rows.append(self.tflite_variant(label, kind, path, tprepare, tfinish, keras_model=load,
                                                runner=_batched_runner))
        for row in rows:
            if row.keras_model is not None and not row.missing:
                # MACs: one 7-frame window gives one output frame, i.e. one 256-sample hop of audio.
                row.macs_inputs = lambda: [np.zeros((1, n_concat, 257), np.float32)]
                row.macs_seconds = 256 / SAMPLE_RATE
        rows.append(self.not_produced("pruned+clustered / QAT int8", "qat_int8",
                                      " (sednn compresses pruned and clustered separately, int8 by PTQ)"))
        return rows

    def trained(self, config, config_name):
        from reproductions.sednn import recipe

        return recipe.artifacts(self.exp_dir(config_name), config)["float"].path.is_file()

    def speed_only_variants(self, config, config_name):
        from reproductions.sednn.features import sednn_context, sednn_log_magnitude, sednn_stft
        from reproductions.sednn.compress import export_variant
        from reproductions.sednn.dnn import build_from_config
        from reproductions.sednn.scaler import Scaler

        n_concat = int(config["features"]["n_concat"])
        load = seeded_model(lambda: build_from_config(config["model"], source=config["config_path"]))
        cache = {}

        def packed():
            """Context windows of the random calibration audio and the scaler fitted on them."""
            if "scaler" not in cache:
                windows = np.concatenate([sednn_context(sednn_log_magnitude(sednn_stft(clip)), n_concat=n_concat,
                                                        hop=1) for clip in random_audio(seconds=self.timing_seconds)])
                cache["scaler"] = Scaler.fit(windows)
                cache["scaled"] = cache["scaler"].transform(windows)
            return cache["scaler"], cache["scaled"]

        prepare, finish = self._hooks(lambda: packed()[0], n_concat)
        rows = [self.keras_variant("float Keras", "float", None, load, prepare, finish)]
        for mode, label, kind in (("float32", "float .tflite", "tflite"), ("int8", "PTQ int8 .tflite", "ptq_int8")):
            path = self.random_dir(config_name) / f"float_{mode}.tflite"

            def build(path=path, mode=mode):
                if path.is_file() and path.stat().st_mtime >= Path(load.source).stat().st_mtime:
                    return
                scaler, scaled = packed()
                # The recipe's export (free batch axis, int8 I/O in int8 mode).
                export_variant(load(), scaler, path, mode, scaled,
                               int(config["export"]["calibration_segments"]), seed=RANDOM_WEIGHTS_SEED)

            row = self.tflite_variant(label, kind, path, prepare, finish, keras_model=load, build=build,
                                      runner=_batched_runner)
            row.macs_inputs = lambda: [np.zeros((1, n_concat, 257), np.float32)]
            row.macs_seconds = 256 / SAMPLE_RATE
            rows.append(row)
        rows[0].macs_inputs, rows[0].macs_seconds = rows[1].macs_inputs, rows[1].macs_seconds
        rows.append(Variant(self.name, "pruned / clustered", "pruned", missing=(
            f"needs a trained DNN (TFMOT pruning and clustering fine-tune it): "
            f"run {self.run_command(config_name, [2, 4, 5])}")))
        return rows


def _batched_runner(path, threads):
    """sednn's .tflite has a free batch axis; run the frames in chunks of 256 as the recipe's predictor does."""
    from common.tflite import TFLiteModel

    model = TFLiteModel(path, num_threads=threads)

    def run(windows):
        return np.concatenate([model(windows[start:start + 256]) for start in range(0, len(windows), 256)])

    return run


# ----------------------------------------------------------------------------------------------------- CRN
STREAMING_KINDS = {"float32": ("streaming float .tflite", "tflite"),
                   "dynamic": ("streaming dynamic-range .tflite", "dynamic"),
                   "int8": ("streaming PTQ int8 .tflite", "ptq_int8"),
                   "int16x8": ("streaming int16x8 .tflite", "dynamic"),
                   "selective": ("streaming selective int8 .tflite (int8 convolutions, dynamic-range LSTM steps)",
                                 "selective")}
# Speed-only rows also time the selective int8 step model next to the recipe's export modes.
SPEED_ONLY_STREAMING_MODES = ("selective",)

class CrnAdapter(Adapter):
    """CRN: |STFT| (frames, 161) in and out, noisy phase; offline Keras/.tflite and streaming .tflite per hop."""

    name = "crn"

    @staticmethod
    def prepare(signal):
        from reproductions.crn.data import magnitude

        return [magnitude(signal)[None]], None

    @staticmethod
    def finish(outputs, context, signal):
        from reproductions.crn.features import crn_resynthesize

        return crn_resynthesize(np.asarray(_first(outputs))[0], signal)

    def list_variants(self, config, config_name):
        from reproductions.crn import recipe
        from reproductions.crn.data import magnitude
        from reproductions.crn.networks import build_model

        exp_dir = self.exp_dir(config_name)
        rows = []
        published = recipe.artifacts(exp_dir, config)
        weights = published["crn"].path
        if not weights.is_file():
            rows.append(self.not_trained("float Keras (offline)", "float", weights, config_name,
                                         stages_to_make(published, "crn")))
        else:
            def load_weights():
                model = build_model(config, "crn")
                model.load_weights(str(weights))
                return model

            load_weights = _with_source(load_weights, weights)
            rows.append(self.keras_variant("float Keras (offline)", "float", weights, load_weights, self.prepare,
                                           self.finish))
            path, build = self.exported(config_name, "crn_offline", load_weights,
                                        input_shapes=[(1, None, int(config["model"]["frequency_bins"]))])
            rows.append(self.tflite_variant("offline float .tflite (exported by the benchmark)", "tflite", path,
                                            self.prepare, self.finish, keras_model=load_weights, build=build))
        for mode in config["export"]["modes"]:
            label, kind = STREAMING_KINDS.get(mode, (f"streaming {mode} .tflite", "dynamic"))
            path = published[f"crn_streaming_{mode}"].path
            if not path.is_file():
                rows.append(self.not_exported(label, kind, path, config_name,
                                              stages_to_make(published, f"crn_streaming_{mode}")))
                continue
            row = self.tflite_variant(label, kind, path, self.prepare, self.finish,
                                      keras_model=load_weights if weights.is_file() else None,
                                      runner=_streaming_runner, streaming=True)
            row.core_inputs = None  # the streaming graph takes one hop plus state: timed per hop instead
            if kind == "tflite":
                row.kind = "tflite_streaming"
            row.hop_latency = lambda threads, path=path: _hop_step(path, threads)
            rows.append(row)
        extra_modes = [mode for mode in SPEED_ONLY_STREAMING_MODES if mode not in config["export"]["modes"]]
        if weights.is_file() and extra_modes:
            # The selective int8 step model is not a recipe export: the benchmark writes it from the trained
            # weights, calibrated on training clips, so its quality is scored beside the recipe's modes.
            from reproductions.crn import streaming

            cache = {}

            def calibration():
                if "inputs" not in cache:
                    cache["inputs"] = streaming.calibration_inputs(
                        load_weights(), [magnitude(clip) for clip in _calibration_waveforms(4)],
                        int(config["export"]["calibration_hops"]))
                return cache["inputs"]

            for row in self._streaming_rows(config, config_name, load_weights, calibration,
                                            self.bench_dir(config_name), modes=extra_modes):
                row.variant = f"{row.variant} (exported by the benchmark)"
                rows.append(row)
        rows.append(self.not_produced("pruned / clustered / QAT int8", "pruned",
                                      " (the CRN recipe compares float, dynamic-range and int8 deployments)"))
        return rows

    def trained(self, config, config_name):
        from reproductions.crn import recipe

        return recipe.artifacts(self.exp_dir(config_name), config)["crn"].path.is_file()

    def speed_only_variants(self, config, config_name):
        from reproductions.crn import streaming
        from reproductions.crn.data import magnitude
        from reproductions.crn.networks import build_model

        load = seeded_model(lambda: build_model(config, "crn"), source=streaming.__file__)
        rows = [self.keras_variant("float Keras (offline)", "float", None, load, self.prepare, self.finish)]
        path, build = self.exported(config_name, "random_weights/crn_offline", load,
                                    input_shapes=[(1, None, int(config["model"]["frequency_bins"]))])
        rows.append(self.tflite_variant("offline float .tflite", "tflite", path, self.prepare, self.finish,
                                        keras_model=load, build=build))
        cache = {}

        def calibration():
            if "inputs" not in cache:
                cache["inputs"] = streaming.calibration_inputs(
                    load(), [magnitude(clip) for clip in random_audio(seconds=self.timing_seconds)],
                    int(config["export"]["calibration_hops"]))
            return cache["inputs"]

        rows += self._streaming_rows(config, config_name, load, calibration, self.random_dir(config_name))
        return rows

    def _streaming_rows(self, config, config_name, load, calibration, folder, modes=None):
        """Streaming rows of ``modes`` (default: the export modes and :data:`SPEED_ONLY_STREAMING_MODES`), written
        into ``folder`` by the benchmark from ``load()``."""
        from reproductions.crn import streaming

        rows = []
        if modes is None:
            modes = list(config.get("export", {}).get("modes", ["float32", "dynamic", "int8"]))
            modes += [mode for mode in SPEED_ONLY_STREAMING_MODES if mode not in modes]
        for mode in modes:
            label, kind = STREAMING_KINDS.get(mode, (f"streaming {mode} .tflite", "dynamic"))
            path = folder / f"crn_streaming_{mode}.tflite"

            def build(path=path, mode=mode):
                if path.is_file() and path.stat().st_mtime >= Path(load.source).stat().st_mtime:
                    return
                streaming.export_streaming_tflite(load(), path, mode, calibration() if mode != "float32" else None,
                                                  streaming.configured_lstm_form(config))

            row = self.tflite_variant(label, "tflite_streaming" if kind == "tflite" else kind, path, self.prepare,
                                      self.finish, keras_model=load, build=build, runner=_streaming_runner,
                                      streaming=True)
            row.core_inputs = None  # the streaming graph takes one hop plus state: timed per hop instead
            row.hop_latency = lambda threads, path=path: _hop_step(path, threads)
            rows.append(row)
        return rows


def _streaming_runner(path, threads):
    from reproductions.crn.streaming import StreamingTFLite

    runner = StreamingTFLite(path, num_threads=threads)
    return lambda magnitude: runner.process(magnitude[0])[None]


def _hop_step(path, threads):
    from reproductions.crn.streaming import StreamingTFLite

    runner = StreamingTFLite(path, num_threads=threads)
    frame = np.abs(np.random.default_rng(0).standard_normal(runner.shapes["noisy_frame"][-1])).astype(np.float32)
    return lambda: runner.step(frame)


# ----------------------------------------------------------------------------------------------------- TF-GridNet
def _on_time_axis(array, length):
    """``array`` (batch, time, ...) cut or zero-padded to ``length`` on the time axis."""
    array = np.asarray(array, np.float32)[:, :length]
    return np.pad(array, [(0, 0), (0, length - array.shape[1])] + [(0, 0)] * (array.ndim - 2))


def _static_length_runner(path, threads):
    """LiteRT runner for TF-GridNet's .tflite files, which have one static length on axis 1 (samples, or STFT frames
    for the spectral cores): the recipe's export fixes it because the BLSTMs' TensorLists need static shapes.

    Shorter inputs are zero-padded and longer ones run as consecutive windows of that length (the last one
    zero-padded), as the recipe does for its own scores; every output is cut back to the input's length. The
    measured time therefore includes the padding, and long inputs see window edges the Keras model does not."""
    from common.tflite import TFLiteModel

    model = TFLiteModel(path, num_threads=threads)
    static = int(model.input_details[0]["shape"][1])

    def run(array):
        array = np.asarray(array, np.float32)
        length = array.shape[1]
        pieces = []
        for start in range(0, max(length, 1), static):
            window = array[:, start:start + static]
            outputs = model(_on_time_axis(window, static))
            outputs = outputs if isinstance(outputs, list) else [outputs]
            pieces.append([np.asarray(output)[:, : window.shape[1]] for output in outputs])
        joined = [np.concatenate(parts, axis=1) for parts in zip(*pieces)]
        return joined if len(joined) > 1 else joined[0]

    return run


def _at_static_length(prepare, path):
    """``core_inputs`` for a static-length .tflite: the prepared arrays zero-padded or cut to that length."""
    cache = {}

    def core_inputs(signal):
        if "static" not in cache:
            from common.tflite import TFLiteModel

            cache["static"] = int(TFLiteModel(path).input_details[0]["shape"][1])
        static = cache["static"]
        return [_on_time_axis(array, static) for array in prepare(signal)[0]]

    return core_inputs


class TfgridnetAdapter(Adapter):
    """TF-GridNet: waveform models (STFT inside as a DFT matmul) and the spectral int8/int16x8 cores."""

    name = "tfgridnet"

    @staticmethod
    def prepare(signal):
        return [np.asarray(signal, np.float32)[None]], None

    @staticmethod
    def finish(outputs, context, signal):
        return np.asarray(_last(outputs))[0]

    @staticmethod
    def prepare_spectral(signal):
        from reproductions.tfgridnet.features import tfgridnet_stft

        spectrum = tfgridnet_stft(signal)
        return [np.stack([spectrum.real, spectrum.imag], -1)[None].astype(np.float32)], None

    @staticmethod
    def finish_spectral(outputs, context, signal):
        from reproductions.tfgridnet.features import tfgridnet_istft

        out = np.asarray(_first(outputs))[0]
        return tfgridnet_istft(out[..., 0] + 1j * out[..., 1], length=signal.size)

    def list_variants(self, config, config_name):
        from reproductions.tfgridnet import export, recipe, strategies

        exp_dir = self.exp_dir(config_name)
        rows = []
        export_report = self.results_dir(config_name) / "export.json"
        report = json.loads(export_report.read_text()) if export_report.is_file() else {}
        published = recipe.artifacts(exp_dir, config)
        for strategy in ("direct", "progressive"):
            tag = "DL" if strategy == "direct" else "PL"
            weights = published[strategy].path
            load = None
            if not weights.is_file():
                rows.append(self.not_trained(f"{tag} float Keras", "float", weights, config_name,
                                             stages_to_make(published, strategy)))
            else:
                def load(strategy=strategy, weights=weights):
                    model = strategies.build_model(config, strategy == "progressive")
                    model.load_weights(str(weights))
                    return model

                load = _with_source(load, weights)
                kind = "float" if strategy == "direct" else "float_pl"
                rows.append(self.keras_variant(f"{tag} float Keras", kind, weights, load, self.prepare,
                                               self.finish))
            for mode, label, kind, spectral in (("float32", "float .tflite", "tflite", False),
                                                ("dynamic", "dynamic-range .tflite", "dynamic", False),
                                                ("int16x8", "int16x8 .tflite (spectral core)", "ptq_int8", True),
                                                ("int8", "PTQ int8 .tflite (spectral core)", "ptq_int8", True)):
                path = published[f"{strategy}_{mode}"].path
                full_label = f"{tag} {label}"
                entry = report.get(f"{strategy}_{mode}", {})
                if not path.is_file():
                    if entry.get("converted") is False:
                        rows.append(Variant(self.name, full_label, kind,
                                            missing=f"does not convert: {export.distinct_lines(entry.get('error', ''))}"))
                    else:
                        rows.append(self.not_exported(full_label, kind, path, config_name,
                                                      stages_to_make(published, f"{strategy}_{mode}")))
                    continue
                if strategy == "progressive" and kind in ("tflite", "ptq_int8"):
                    kind = f"{kind}_pl"
                prepare, finish = ((self.prepare_spectral, self.finish_spectral) if spectral
                                   else (self.prepare, self.finish))
                rows.append(self.tflite_variant(full_label, kind, path, prepare, finish,
                                                keras_model=None if spectral else load,
                                                runner=_static_length_runner,
                                                core_inputs=_at_static_length(prepare, path),
                                                notes="one static input length: padded / windowed"))
        rows.append(self.not_produced("pruned / clustered / QAT int8", "pruned",
                                      " (the TF-GridNet recipe exports float, dynamic-range, int16x8, int8)"))
        return rows

    def trained(self, config, config_name):
        from reproductions.tfgridnet import recipe

        return recipe.artifacts(self.exp_dir(config_name), config)["direct"].path.is_file()

    def speed_only_variants(self, config, config_name):
        from reproductions.tfgridnet import strategies

        load = seeded_model(lambda: strategies.build_model(config, False))
        samples = int(round(self.timing_seconds * SAMPLE_RATE))
        hop = int(config["model"]["hop_length"])
        samples = -(-samples // hop) * hop
        frames = 1 + samples // hop

        def core():
            from common.tfkeras import keras

            model = load()
            return keras.Model(model.get_layer("stft").output, model.get_layer("enhanced_crop").output,
                               name="direct_core")

        core.source = load.source

        def representative():
            from reproductions.tfgridnet.features import tfgridnet_stft

            spectra = [tfgridnet_stft(fixed_length(clip, samples))[None] for clip in random_audio(seconds=samples / SAMPLE_RATE)]
            return [np.stack([s.real, s.imag], -1).astype(np.float32) for s in spectra]

        rows = [self.keras_variant("DL float Keras", "float", None, load, self.prepare, self.finish)]
        # The recipe's export forms at one static length (the BLSTMs' TensorLists need it): the timing length.
        for mode, label, kind, spectral in (("float32", "DL float .tflite", "tflite", False),
                                            ("dynamic", "DL dynamic-range .tflite", "dynamic", False),
                                            ("int8", "DL PTQ int8 .tflite (spectral core)", "ptq_int8", True)):
            path, build = self.exported(config_name, f"random_weights/direct_{samples}", core if spectral else load,
                                        mode=mode, input_shapes=[(1, frames, 257, 2) if spectral else (1, samples)],
                                        representative=representative if spectral else None)
            prepare, finish = ((self.prepare_spectral, self.finish_spectral) if spectral
                               else (self.prepare, self.finish))
            rows.append(self.tflite_variant(label, kind, path, prepare, finish,
                                            keras_model=None if spectral else load, build=build,
                                            runner=_static_length_runner,
                                            core_inputs=_at_static_length(prepare, path),
                                            notes="one static input length: padded / windowed"))
        return rows


ADAPTERS = {"icse": IcseAdapter, "fqse": FqseAdapter, "sednn": SednnAdapter, "crn": CrnAdapter,
            "tfgridnet": TfgridnetAdapter}


def adapters_for(names) -> list:
    """Adapter instances for ``names`` (ValueError for an unknown one)."""
    unknown = [name for name in names if name not in ADAPTERS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; known: {sorted(ADAPTERS)}")
    return [ADAPTERS[name]() for name in names]
