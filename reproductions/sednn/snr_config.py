"""Write a copy of a sednn configuration with another SNR (``run.sh --snr DB``; one model per SNR as sednn).

``python -m reproductions.sednn.snr_config mini|paper|PATH SNR_DB OUTPUT.yaml``
"""
import argparse
from pathlib import Path

import yaml

from common.config import load_recipe_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reproductions.sednn.snr_config", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="'mini', 'paper' or a YAML file")
    parser.add_argument("snr_db", type=float, help="training and test SNR in dB")
    parser.add_argument("output", type=Path, help="the YAML file to write")
    args = parser.parse_args(argv)
    config = load_recipe_config("sednn", args.config)
    for key in ("config_name", "config_path", "overrides"):
        config.pop(key, None)
    config["data"]["snr_db"] = args.snr_db
    config["data"]["train_snrs_db"] = None
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(f"# {args.config} with data.snr_db = {args.snr_db} (written by run.sh --snr)\n"
                           + yaml.safe_dump(config, sort_keys=False))
    print(f"configuration for {args.snr_db} dB: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
