"""Mix any speech folder with any noise folder at given SNRs: ``python -m data_prep.mix``.

Writes ``OUT/noisy/``, ``OUT/clean/``, ``OUT/noise/`` (same file names, float WAV so that levels above 1 survive)
and ``OUT/manifest.csv`` (name, noisy, clean, noise, speech_source, noise_source, noise_type, snr_db). Each speech
file is mixed at every SNR with ``--per-snr`` randomly chosen noise files (noise tiled or randomly cropped, sednn
rule), with the mixing convention of one of the papers (``common.mixing``). Deterministic for a given ``--seed``.
Example: ``python -m data_prep.mix --speech my/clean --noise my/noise --snr -5 0 5 --out data/my_mix``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from common.audio import write_audio
from data_prep.adapters import audio_rows, list_audio
from data_prep.examples import SkipReport
from data_prep.paper_sets import _example, _Mixer

CONVENTIONS = ("energy_gain", "sednn", "crn", "tfgridnet")

__all__ = ["mix_folders", "main", "CONVENTIONS"]


def mix_folders(speech_dir, noise_dir, snrs, out_dir, convention: str = "energy_gain", per_snr: int = 1,
                seed: int = 0, skip_bad: bool = False, allow_resample: bool = False, progress: bool = False) -> dict:
    """Mix and write; returns dict(rows=manifest rows, skipped=SkipReport)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown mixing convention {convention!r}; expected one of {CONVENTIONS}")
    if not snrs:
        raise ValueError("at least one SNR is needed")
    skipped = SkipReport() if skip_bad else None
    speech_dir, noise_dir, out_dir = Path(speech_dir), Path(noise_dir), Path(out_dir)
    speech = audio_rows(list_audio(speech_dir), "test", "speaker", lambda p: p.parent.name, skipped, allow_resample)
    noise = audio_rows(list_audio(noise_dir), "test", "noise_type",
                       lambda p: p.parent.name if p.parent != noise_dir else p.stem, skipped, allow_resample)
    if not speech:
        raise ValueError(f"{speech_dir}: no usable speech files")
    if not noise:
        raise ValueError(f"{noise_dir}: no usable noise files")
    rng = np.random.default_rng([int(seed), 41])
    jobs = []
    for speech_row in speech:
        for snr in snrs:
            for noise_index in rng.choice(len(noise), size=min(int(per_snr), len(noise)), replace=False):
                noise_row = noise[int(noise_index)]
                example = _example("mix", len(jobs), seed, speech_row, noise_row, "test", "test", "test",
                                   _Mixer(convention, float(snr)), float(snr))
                jobs.append(example)
    iterator = jobs
    if progress:
        from tqdm import tqdm
        iterator = tqdm(jobs, desc="mixing", unit="file")
    rows = []
    for example in iterator:
        speech_path, noise_path = Path(example.speech_path), Path(example.noise_path)
        relative = speech_path.relative_to(speech_dir).with_suffix("")
        name = f"{relative.as_posix().replace('/', '__')}__{noise_path.stem}__{example.snr_db:g}dB.wav"
        noisy, clean, scaled_noise = example.load()
        for kind, signal in (("noisy", noisy), ("clean", clean), ("noise", scaled_noise)):
            write_audio(out_dir / kind / name, signal, 16000, subtype="FLOAT")
        rows.append({"name": name, "noisy": f"noisy/{name}", "clean": f"clean/{name}", "noise": f"noise/{name}",
                     "speech_source": str(speech_path), "noise_source": str(noise_path),
                     "noise_type": example.meta["noise_type"], "snr_db": f"{example.snr_db:g}", "convention": convention})
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {"rows": rows, "skipped": skipped if skipped is not None else SkipReport()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.mix", description=__doc__.split("\n")[0])
    parser.add_argument("--speech", required=True, help="folder of clean speech files (searched recursively)")
    parser.add_argument("--noise", required=True, help="folder of noise files (sub-folder name = noise type)")
    parser.add_argument("--snr", required=True, type=float, nargs="+", help="SNR(s) in dB")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--convention", default="energy_gain", choices=CONVENTIONS,
                        help="mixing convention: energy_gain (FQSE/FCN), sednn, crn, tfgridnet")
    parser.add_argument("--per-snr", type=int, default=1, help="noise files per speech file and SNR (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-bad", action="store_true", help="leave out unreadable/empty/wrong-rate files")
    parser.add_argument("--allow-resample", action="store_true", help="resample files that are not 16 kHz")
    args = parser.parse_args(argv)
    try:
        result = mix_folders(args.speech, args.noise, args.snr, args.out, args.convention, args.per_snr, args.seed,
                             args.skip_bad, args.allow_resample, progress=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(result['rows'])} mixtures to {args.out}; {result['skipped']}")
    for path, reason in result["skipped"].items:
        print(f"  skipped {path}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
