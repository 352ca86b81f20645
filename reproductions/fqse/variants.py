"""FQSE's three variants (docs/fqse.md#model, docs/fqse.md#training): the Conv-TasNet core of the float model, of
vanilla 8-bit QAT and of FQSE 8-bit, the waveform model trained around it with asteroid's negative SI-SDR, and the
core weights each variant stores.
"""
from __future__ import annotations

from pathlib import Path


def configured_loss(config: dict):
    """asteroid's negative SI-SDR (``pairwise_neg_sisdr`` for one source: zero-mean, EPS 1e-8, ``-10 log10``), with
    the configuration's ``loss.pre_emphasis`` (``common.losses``; 0 in both configurations)."""
    from common.losses import waveform_loss

    where = f"{config.get('config_path', 'config')}: loss.pre_emphasis"
    return waveform_loss(config["loss"]["pre_emphasis"], where)


def build_core(config: dict, variant: str, quantized: bool = True):
    """The Conv-TasNet core of ``variant`` (float, vanilla or fqse); ``quantized=False`` gives its float version."""
    from reproductions.fqse import convtasnet, fqse

    source = config.get("config_path")
    quantization = None
    if variant != "float" and quantized:
        quantization = {"bits": int(config["quantization"]["bits"]), "trainable_ranges": variant == "fqse"}
    if variant == "fqse":
        return fqse.build_from_config(config["model"], config["fqse"], quantization=quantization,
                                      name=f"convtasnet_{variant}", source=source)
    # vanilla QAT quantizes the core's input (FQSE's in_quant True).
    return convtasnet.build_from_config(config["model"], quantization=quantization,
                                        quantize_input=quantization is not None, name=f"convtasnet_{variant}",
                                        source=source)


def build_trainable(config: dict, variant: str, core):
    from reproductions.fqse.fqse import build_waveform_model

    stages = int(config["fqse"]["splitter_stages"]) if variant == "fqse" else 1
    return build_waveform_model(core, splitter_stages=stages, name=f"waveform_{variant}")


def core_weights_path(exp_dir: Path, variant: str) -> Path:
    return Path(exp_dir) / variant / "core.weights.h5"


def load_core(config: dict, exp_dir: Path, variant: str, checkpoint=None):
    from common import training

    return training.load_trained(lambda: build_core(config, variant),
                                 checkpoint or core_weights_path(exp_dir, variant),
                                 f"run 'train --variant {variant}' first")
