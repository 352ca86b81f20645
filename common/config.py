"""Recipe configurations: YAML files with command-line overrides.

Every reproduction keeps its configurations in ``reproductions/<name>/conf/``: ``paper.yaml`` is the paper's
setting and ``mini.yaml`` the same code scaled down to train in minutes on two CPU cores. ``--config`` takes
either of those names or the path of any YAML file, and ``--set key.subkey=value`` changes one entry (the
value is parsed as YAML, so ``--set training.epochs=3`` gives an int and ``--set model.causal=true`` a bool,
and must keep the type the YAML file gives the entry).

A run's experiment and result folders are named by :func:`experiment_name` (the config name, plus a tag of the
overrides), and ``train`` records the resolved configuration there (:func:`record_experiment`).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import os
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


def _keys(mapping: dict) -> str:
    return ", ".join(sorted(str(key) for key in mapping))


def _type_name(value) -> str:
    if value is None:
        return "null"
    return {bool: "a bool", int: "an int", float: "a float", str: "a string", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__)


def _typed_value(dotted_key: str, raw_value: str, reference, value, current=None, whole: bool = True):
    """Return ``value`` (parsed from ``raw_value``) if it keeps the type of ``reference``, the YAML's value.

    An int is accepted where the YAML holds a float (and becomes a float); a string entry takes the text as
    written (so ``--set data.name=2024`` stays the string ``"2024"``); null in the YAML accepts anything. A
    mapping updates ``current`` (the entry with the earlier overrides applied) key by key; ``whole`` is false
    for the entries inside such a mapping, whose text is not ``raw_value``.
    """
    if reference is None:
        return value
    if isinstance(reference, dict):
        if not isinstance(value, dict):
            raise ValueError(f"--set {dotted_key}={raw_value}: {dotted_key} is a mapping (keys: {_keys(reference)}), "
                             f"not {_type_name(value)}: set one of its keys ({dotted_key}.KEY=VALUE)")
        merged = copy.deepcopy(current if isinstance(current, dict) else reference)
        for key, item in value.items():
            if key not in reference:
                raise ValueError(f"--set {dotted_key}={raw_value}: unknown key {dotted_key}.{key}; keys here: "
                                 f"{_keys(reference)}")
            merged[key] = _typed_value(f"{dotted_key}.{key}", raw_value, reference[key], item, merged[key],
                                       whole=False)
        return merged
    if isinstance(reference, list):
        if not isinstance(value, list):
            raise ValueError(f"--set {dotted_key}={raw_value}: {dotted_key} expects a list (the configuration "
                             f"holds {reference!r}), got {_type_name(value)}")
        kinds = {type(item) for item in reference}
        if len(kinds) == 1 and reference[0] is not None:
            return [_typed_value(f"{dotted_key}[{index}]", raw_value, reference[0], item, whole=False)
                    for index, item in enumerate(value)]
        return value
    if isinstance(reference, str):
        if isinstance(value, (list, dict)) or value is None or not (whole or isinstance(value, str)):
            raise ValueError(f"--set {dotted_key}={raw_value}: {dotted_key} expects a string (the configuration "
                             f"holds {reference!r}), got {_type_name(value)}")
        return value if isinstance(value, str) else raw_value.strip()
    if isinstance(reference, bool):
        if not isinstance(value, bool):
            raise ValueError(f"--set {dotted_key}={raw_value}: {dotted_key} expects a bool (true or false; the "
                             f"configuration holds {reference!r}), got {_type_name(value)} {value!r}")
        return value
    if isinstance(reference, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"--set {dotted_key}={raw_value}: {dotted_key} expects an int (the configuration "
                             f"holds {reference!r}), got {_type_name(value)} {value!r}")
        return value
    if isinstance(reference, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"--set {dotted_key}={raw_value}: {dotted_key} expects a number (the configuration "
                             f"holds {reference!r}), got {_type_name(value)} {value!r}")
        return float(value)
    return value


def apply_override(config: dict, assignment: str, reference: dict | None = None) -> None:
    """Apply one ``key.subkey=value`` assignment to ``config`` in place.

    Only existing keys can be set, so that a typo fails loudly instead of silently training the wrong model,
    and the value must keep the type the YAML file gives the entry (``reference``: the configuration as
    loaded, by default ``config`` itself), so that a wrong value fails here rather than deep inside training.
    A mapping value sets the listed keys of a mapping entry and keeps the others.
    """
    if "=" not in assignment:
        raise ValueError(f"--set expects KEY=VALUE, got {assignment!r}")
    reference = config if reference is None else reference
    dotted_key, raw_value = assignment.split("=", 1)
    keys = dotted_key.strip().split(".")
    dotted_key = ".".join(keys)
    node, reference_node = config, reference
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            known = _keys(node) if isinstance(node, dict) else "none (not a mapping)"
            raise ValueError(f"--set {dotted_key}: unknown key {'.'.join(keys[: depth + 1])!r}; keys here: {known}")
        reference_value = reference_node.get(key) if isinstance(reference_node, dict) else None
        if depth == len(keys) - 1:
            try:
                value = parse_yaml(raw_value)
            except yaml.YAMLError as error:
                problem = str(error).splitlines()[0]
                raise ValueError(f"--set {dotted_key}={raw_value}: the value is not valid YAML ({problem})") from None
            node[key] = _typed_value(dotted_key, raw_value, reference_value, value, node[key])
        else:
            node, reference_node = node[key], reference_value


def check_keys(section, name: str, required, optional=(), source=None) -> dict:
    """Return ``section`` once it holds every ``required`` key and no key outside ``required`` and ``optional``.

    The model builders call this on their section, so that a misspelt or forgotten key fails before a model of
    the wrong shape is built, and the YAML files stay the only source of the values.

    Args:
        section: the mapping to check (a section of a configuration, such as ``config["model"]``).
        name: its dotted name in the configuration (``model``), which the messages put before each key.
        required: the keys it must hold.
        optional: the keys it may hold besides.
        source: the configuration file the errors name (``config["config_path"]``); ``None`` leaves it out.

    Raises:
        ValueError: naming the unknown or missing key and listing the accepted ones.
    """
    where = f"{source}: " if source else ""
    accepted = list(required) + [key for key in optional if key not in required]
    listing = ", ".join(accepted)
    if not isinstance(section, dict):
        raise ValueError(f"{where}{name} must be a mapping with the keys {listing}, got {_type_name(section)}")
    unknown = [key for key in section if key not in accepted]
    if unknown:
        named = ", ".join(f"{name}.{key}" for key in unknown)
        raise ValueError(f"{where}unknown key{'s' if len(unknown) > 1 else ''} {named}; {name} accepts: {listing}")
    missing = [key for key in required if key not in section]
    if missing:
        named = ", ".join(f"{name}.{key}" for key in missing)
        raise ValueError(f"{where}missing key{'s' if len(missing) > 1 else ''} {named}; {name} requires: "
                         f"{', '.join(required)}" + (f" (optional: {', '.join(optional)})" if optional else ""))
    return section


def check_sections(config: dict, path, sections) -> None:
    """Raise ValueError naming ``path`` when ``config`` lacks one of ``sections`` or has a top-level key beyond them.

    A section under another name (``evaluate:`` where the recipe reads ``evaluation:``) would otherwise surface as a
    bare KeyError deep inside a command; the unknown sections are named beside the missing one, so the misnamed one
    shows.
    """
    unknown = [str(key) for key in config if key not in sections]
    missing = [section for section in sections if section not in config]
    listing = ", ".join(sections)
    if missing:
        found = f" (found {', '.join(repr(key) for key in unknown)})" if unknown else ""
        plural = "s" if len(missing) > 1 else ""
        raise ValueError(f"{path}: no section{plural} {', '.join(repr(key) for key in missing)}{found}; "
                         f"the recipe reads the sections {listing}")
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ValueError(f"{path}: unknown section{plural} {', '.join(repr(key) for key in unknown)}; "
                         f"the recipe reads the sections {listing}")


def load_config(name_or_path: str, recipe_dir: Path, overrides=(), sections=None) -> dict:
    """Load a recipe configuration and apply ``--set`` overrides.

    Args:
        name_or_path: ``"paper"``, ``"mini"`` or the path of a YAML file.
        recipe_dir: the reproduction's folder (holding ``conf/``).
        overrides: ``key.subkey=value`` strings.
        sections: the top-level sections the recipe reads (its ``config_sections``); when given, a file with
            a section missing or one more is refused (:func:`check_sections`). ``None`` checks nothing.

    Returns:
        The configuration dict, with ``config_name`` (file stem), ``config_path`` and ``overrides`` added.
    """
    path = resolve_config_path(name_or_path, recipe_dir)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise ValueError(f"configuration file {path} is not a YAML file (.yaml or .yml)")
    try:
        config = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"configuration file {path} is not YAML text (byte {error.start} is not UTF-8)") from None
    except yaml.YAMLError as error:
        raise ValueError(f"configuration file {path} is not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"configuration file {path} must hold a mapping at its top level")
    if sections is not None:
        check_sections(config, path, sections)
    loaded = copy.deepcopy(config)
    for assignment in overrides:
        apply_override(config, assignment, reference=loaded)
    config["config_name"] = path.stem
    config["config_path"] = str(path)
    config["overrides"] = list(overrides)
    return config


def load_recipe_config(recipe: str, name_or_path, overrides=()) -> dict:
    """Load a configuration of ``reproductions/<recipe>`` with the section check its own command line applies.

    For callers outside the recipe's command line (the benchmarks, ``sednn.snr_config``): a misnamed section is
    refused here with the file named, as ``python -m reproductions.<recipe>`` would refuse it.
    """
    import importlib

    recipe_dir = Path(__file__).resolve().parents[1] / "reproductions" / recipe
    if not (recipe_dir / "recipe.py").is_file():
        raise ValueError(f"no recipe {recipe!r} (reproductions/{recipe}/recipe.py does not exist)")
    sections = importlib.import_module(f"reproductions.{recipe}.recipe").Recipe.config_sections
    return load_config(name_or_path, recipe_dir, overrides, sections=sections)


def overrides_tag(overrides) -> str:
    """Return an 8-hex tag of ``--set`` overrides (``""`` for none), independent of their order.

    The last assignment of a key wins, as in :func:`apply_override`, so only the resulting values count.
    """
    final = {}
    for assignment in overrides:
        key, _, value = assignment.partition("=")
        final[key.strip()] = value.strip()
    if not final:
        return ""
    text = "".join(f"{key}={value}\n" for key, value in sorted(final.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def experiment_name(config_name: str, overrides=()) -> str:
    """Name of the experiment and result folders: the config name, plus ``_<tag>`` when there are overrides.

    ``mini`` without overrides stays ``mini``; ``mini --set model.filters=16`` is ``mini_<8 hex>``, so a run
    with other settings never resumes, skips or overwrites the plain run's stages and checkpoints.
    """
    tag = overrides_tag(overrides)
    return f"{config_name}_{tag}" if tag else config_name


RECORDED_CONFIG = "config.yaml"


def _differences(recorded, current, prefix: str) -> list:
    if isinstance(recorded, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(recorded) | set(current), key=str):
            if key not in recorded or key not in current:
                found.append(f"{prefix}.{key}")
            else:
                found += _differences(recorded[key], current[key], f"{prefix}.{key}")
        return found
    return [] if recorded == current else [f"{prefix} ({recorded!r} recorded, {current!r} now)"]


def record_experiment(exp_dir, config: dict, sections=("model",)) -> Path:
    """Write the resolved ``config`` to ``exp_dir/config.yaml``, refusing a folder trained with other ``sections``.

    A rerun in a folder whose recorded configuration has another model would resume checkpoints of a
    different shape; it is refused with the differing keys named.

    Returns:
        The path of the recorded configuration.
    """
    exp_dir = Path(exp_dir)
    path = exp_dir / RECORDED_CONFIG
    if path.is_file():
        try:
            recorded = parse_yaml(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a readable configuration ({error}); delete it or {exp_dir}") from None
        if not isinstance(recorded, dict):
            raise ValueError(f"{path} does not hold a configuration mapping; delete it or {exp_dir}")
        changed = []
        for section in sections:
            changed += _differences(recorded.get(section), config.get(section), section)
        if changed:
            raise ValueError(
                f"{exp_dir} holds a run with other settings ({path}): {'; '.join(changed)}; use another "
                f"--exp-dir, drop the --exp-dir option to get a folder of its own, or delete {exp_dir}"
            )
    exp_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    os.replace(temporary, path)
    return path


def main(argv=None) -> int:
    """``python -m common.config experiment-name CONFIG [KEY=VALUE ...]``: print the experiment name (stages.sh)."""
    parser = argparse.ArgumentParser(
        prog="python -m common.config", description="print the experiment folder name of a run (used by stages.sh)"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    naming = subparsers.add_parser("experiment-name", help="print the experiment folder name of a run")
    naming.add_argument("config", help="'paper', 'mini' or the path of a YAML file")
    naming.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="the run's --set overrides")
    args = parser.parse_args(argv)
    config_name = args.config if args.config in NAMED_CONFIGS else Path(args.config).stem
    print(experiment_name(config_name, args.overrides))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
