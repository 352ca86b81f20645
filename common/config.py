"""Recipe configurations: YAML files with command-line overrides.

Every reproduction keeps its configurations in ``reproductions/<name>/conf/``: ``paper.yaml`` is the paper's
setting and ``mini.yaml`` the same code scaled down to train in minutes on two CPU cores. ``--config`` takes
either of those names or the path of any YAML file, and ``--set key.subkey=value`` changes one entry (the
value is parsed as YAML, so ``--set training.epochs=3`` gives an int and ``--set model.causal=true`` a bool).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

NAMED_CONFIGS = ("paper", "mini")


class ConfigLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` as a string (it wants ``1.0e-3``); learning rates are written the short way."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str):
    return yaml.load(text, Loader=ConfigLoader)


def resolve_config_path(name_or_path: str, recipe_dir: Path) -> Path:
    """Return the YAML file meant by ``name_or_path`` (``paper``, ``mini`` or a path)."""
    if name_or_path in NAMED_CONFIGS:
        path = Path(recipe_dir) / "conf" / f"{name_or_path}.yaml"
    else:
        path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"configuration file {path} does not exist (use 'paper', 'mini' or the path of a YAML file)")
    return path


def apply_override(config: dict, assignment: str) -> None:
    """Apply one ``key.subkey=value`` assignment to ``config`` in place.

    Only existing keys can be set, so that a typo fails loudly instead of silently training the wrong model.
    """
    if "=" not in assignment:
        raise ValueError(f"--set expects KEY=VALUE, got {assignment!r}")
    dotted_key, raw_value = assignment.split("=", 1)
    keys = dotted_key.strip().split(".")
    node = config
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "none (not a mapping)"
            raise ValueError(f"--set {dotted_key}: unknown key {'.'.join(keys[: depth + 1])!r}; keys here: {known}")
        if depth == len(keys) - 1:
            node[key] = parse_yaml(raw_value)
        else:
            node = node[key]


def load_config(name_or_path: str, recipe_dir: Path, overrides=()) -> dict:
    """Load a recipe configuration and apply ``--set`` overrides.

    Args:
        name_or_path: ``"paper"``, ``"mini"`` or the path of a YAML file.
        recipe_dir: the reproduction's folder (holding ``conf/``).
        overrides: ``key.subkey=value`` strings.

    Returns:
        The configuration dict, with ``config_name`` (file stem), ``config_path`` and ``overrides`` added.
    """
    path = resolve_config_path(name_or_path, recipe_dir)
    try:
        config = parse_yaml(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"configuration file {path} is not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"configuration file {path} must hold a mapping at its top level")
    config = copy.deepcopy(config)
    for assignment in overrides:
        apply_override(config, assignment)
    config["config_name"] = path.stem
    config["config_path"] = str(path)
    config["overrides"] = list(overrides)
    return config
