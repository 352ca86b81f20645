"""TF-GridNet scoring (docs/tfgridnet.md#metric): the test pairs, PESQ / STOI / SI-SNR / DNSMOS of an enhancer, and
the saved test-set and robustness scores read back for the tables (docs/robustness.md#sets).
"""
from __future__ import annotations

from pathlib import Path

from reproductions.tfgridnet.data import SAMPLE_RATE, draw_examples, open_corpus
from reproductions.tfgridnet.strategies import ABLATION, STRATEGIES

METRICS = ("pesq_wb", "stoi", "si_snr", "dnsmos")


def evaluation_examples(config, args, corpus):
    """The lazy examples of the built-in test split (``--max-files`` or ``evaluation.max_items`` of them)."""
    limit = args.max_files if getattr(args, "max_files", None) else config["evaluation"]["max_items"]
    return draw_examples(config, corpus, config["evaluation"]["split"], int(config["evaluation"]["seed"]),
                         max_items=limit, segmented=False)


def evaluation_pairs(config, args):
    """[(name, noisy, clean)] of the built-in test split."""
    examples = evaluation_examples(config, args, open_corpus(config))
    names = [f"{index:04d}_{Path(example.meta.get('speech', 'utt')).stem}" for index, example in
             enumerate(examples)]
    pairs = []
    for name, example in zip(names, examples):
        noisy, clean, _ = example.load()
        pairs.append((name, noisy, clean))
    return pairs


def score_pairs(config, enhance, pairs, description, score_noisy=False):
    """Enhance every pair with ``enhance`` (or take ``enhance[name]`` when it is a dict) and score it."""
    from common.evaluation import score_examples

    return score_examples(enhance, pairs, METRICS, SAMPLE_RATE, int(config["evaluation"]["processes"]),
                          score_noisy=score_noisy, description=description)


def robustness_items(config):
    items = config["evaluation"].get("robustness_items")
    if items is not None and (isinstance(items, bool) or not isinstance(items, int) or items < 1):
        raise ValueError(f"{config['config_path']}: evaluation.robustness_items must be null or an integer >= 1, "
                         f"got {items!r}")
    return items


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
