"""Mix any speech folder with any noise folder at given SNRs: ``python -m data_prep.mix``.

Writes ``OUT/noisy/``, ``OUT/clean/``, ``OUT/noise/`` (same file names, float WAV so that levels above 1 survive)
and ``OUT/manifest.csv`` (name, noisy, clean, noise, speech_source, noise_source, noise_type, snr_db, convention);
a file is named after the speech and noise paths inside their folders and the SNR. Each speech
file is mixed at every SNR with ``--per-snr`` randomly chosen noise files (noise tiled or randomly cropped, sednn
rule), with the mixing convention of one of the papers (``common.mixing``). Deterministic for a given ``--seed``.
A mixture whose peak exceeds ``MAX_PEAK`` is scaled down with its clean and noise signals by one gain (the SNR
and noisy = clean + noise hold), with one line naming it.
Example: ``python -m data_prep.mix --speech my/clean --noise my/noise --snr -5 0 5 --out data/my_mix``.

Nothing is left half done. Every input file is read and checked before the first mixture is written: an
unreadable, empty, NaN or silent file (RMS below ``common.audio.LEVEL_FLOOR_DBFS``) stops the command with
its name, or with ``--skip-bad`` is left out with one line naming it. ``--out`` must be a new or empty folder that
can be written, and not inside ``--speech`` or ``--noise``. Each file is written under a temporary name and renamed,
and its manifest row is written before the rename to ``manifest.partial.csv``, which becomes ``manifest.csv`` when
every mixture is written: a failed run leaves only files its partial manifest lists (a killed one also its
``.partial.`` temporary files), and the same command run again on that folder deletes them and starts over, with
one line saying so.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from common.audio import write_audio
from common.evaluation import silence_problem
from data_prep.adapters import audio_rows, list_audio
from data_prep.examples import SkipReport, load_audio
from data_prep.paper_sets import _example, _Mixer

CONVENTIONS = ("energy_gain", "sednn", "crn", "tfgridnet")
KINDS = ("noisy", "clean", "noise")
MANIFEST = "manifest.csv"
PARTIAL_MANIFEST = "manifest.partial.csv"
PARTIAL_PREFIX = ".partial."
# A mixture peak at or above full scale would clip once written as PCM or played; 0.99 leaves room for rounding.
MAX_PEAK = 0.99
FIELDS = ("name", "noisy", "clean", "noise", "speech_source", "noise_source", "noise_type", "snr_db", "convention")

__all__ = ["mix_folders", "main", "CONVENTIONS", "MANIFEST"]


def _check_counts(snrs, per_snr) -> list:
    if not snrs:
        raise ValueError("--snr: at least one SNR is needed")
    snrs = [float(snr) for snr in snrs]
    if not all(math.isfinite(snr) for snr in snrs):
        raise ValueError(f"--snr: every SNR must be a finite number of dB, got {snrs}")
    if len(set(snrs)) != len(snrs):
        raise ValueError(f"--snr: an SNR is given twice ({snrs}); each would write the same files")
    if isinstance(per_snr, bool) or int(per_snr) != per_snr or per_snr < 1:
        raise ValueError(f"--per-snr: must be a whole number of noise files, at least 1, got {per_snr}")
    return snrs


def _is_inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _clear_unfinished_run(out_dir: Path, log) -> None:
    """Delete what a killed or failed run left: the files its partial manifest lists and its temporary files."""
    out_dir = out_dir.resolve()
    partial = out_dir / PARTIAL_MANIFEST
    if not partial.is_file():
        return
    with open(partial, newline="") as handle:
        rows = list(csv.DictReader(handle))
    removed = 0
    for row in rows:
        for kind in KINDS:
            relative = row.get(kind) or ""
            target = (out_dir / relative).resolve()
            if relative and _is_inside(target, out_dir / kind) and target.is_file():
                target.unlink()
                removed += 1
    for kind in KINDS:
        for temporary in (out_dir / kind).glob(f"{PARTIAL_PREFIX}*") if (out_dir / kind).is_dir() else ():
            temporary.unlink()
            removed += 1
    partial.unlink()
    log(f"{out_dir}: an unfinished run left {len(rows)} mixture(s); removed its {removed} file(s), starting again")


def _prepare_output(out_dir, inputs, log) -> Path:
    """Make ``out_dir`` (or refuse it with a ValueError naming it) before any mixing."""
    out_dir = Path(out_dir)
    resolved = out_dir.resolve()
    for name, folder in inputs:
        if _is_inside(resolved, Path(folder).resolve()):
            raise ValueError(f"--out {out_dir}: inside the {name} folder {folder}; a later run would read the "
                             "mixtures as input")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--out {out_dir}: cannot create the folder ({error.strerror or error})") from error
    try:
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as error:
        raise ValueError(f"--out {out_dir}: cannot write there ({error.strerror or error})") from error
    if (out_dir / MANIFEST).is_file():
        raise ValueError(f"--out {out_dir}: already holds a finished mix ({MANIFEST}); choose a new folder or delete it")
    _clear_unfinished_run(out_dir, log)
    leftovers = sorted(path for path in out_dir.rglob("*") if not path.is_dir())
    if leftovers:
        raise ValueError(f"--out {out_dir}: not empty ({len(leftovers)} file(s), e.g. {leftovers[0]}); "
                         "choose a new or empty folder")
    return out_dir


def _check_content(rows, skipped) -> list:
    """Rows whose audio reads, is finite and is not silent; the others are skipped (or raise without skip_bad)."""
    kept = []
    for row in rows:
        try:
            reason = silence_problem(load_audio(row["path"]))
        except ValueError as error:
            reason = str(error).removeprefix(f"{row['path']}: ")
        if reason is None:
            kept.append(row)
            continue
        if skipped is None:
            raise ValueError(f"{row['path']}: {reason} (pass --skip-bad to leave bad files out)")
        skipped.add(row["path"], reason)
    return kept


def _write(path: Path, signal) -> Path:
    """Write ``signal`` under a temporary name beside ``path``; the caller renames it once its manifest row is out."""
    temporary = path.with_name(PARTIAL_PREFIX + path.name)
    write_audio(temporary, signal, 16000, subtype="FLOAT")
    return temporary


def mix_folders(speech_dir, noise_dir, snrs, out_dir, convention: str = "energy_gain", per_snr: int = 1,
                seed: int = 0, skip_bad: bool = False, allow_resample: bool = False, progress: bool = False,
                log=print) -> dict:
    """Mix and write; returns dict(rows=manifest rows, skipped=SkipReport).

    Raises:
        ValueError: naming the option, file or folder at fault, before anything is written; or, if writing fails
            part way, naming ``out_dir`` and what is left there.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"--convention: unknown mixing convention {convention!r}; expected one of {CONVENTIONS}")
    snrs = _check_counts(snrs, per_snr)
    per_snr = int(per_snr)
    speech_dir, noise_dir = Path(speech_dir), Path(noise_dir)
    speech_files, noise_files = list_audio(speech_dir), list_audio(noise_dir)
    out_dir = _prepare_output(out_dir, (("speech", speech_dir), ("noise", noise_dir)), log)
    skipped = SkipReport() if skip_bad else None
    speech = audio_rows(speech_files, "test", "speaker", lambda p: p.parent.name, skipped, allow_resample)
    noise = audio_rows(noise_files, "test", "noise_type",
                       lambda p: p.parent.name if p.parent != noise_dir else p.stem, skipped, allow_resample)
    speech = _check_content(speech, skipped)
    noise = _check_content(noise, skipped)
    if not speech:
        raise ValueError(f"{speech_dir}: no usable speech files")
    if not noise:
        raise ValueError(f"{noise_dir}: no usable noise files")
    if per_snr > len(noise):
        raise ValueError(f"--per-snr {per_snr}: more than the {len(noise)} usable noise file(s) of {noise_dir}")
    rng = np.random.default_rng([int(seed), 41])
    jobs = []
    for speech_row in speech:
        for snr in snrs:
            for noise_index in rng.choice(len(noise), size=per_snr, replace=False):
                noise_row = noise[int(noise_index)]
                example = _example("mix", len(jobs), seed, speech_row, noise_row, "test", "test", "test",
                                   _Mixer(convention, float(snr)), float(snr))
                jobs.append(example)
    iterator = jobs
    if progress:
        from tqdm import tqdm
        iterator = tqdm(jobs, desc="mixing", unit="file")
    rows = []
    partial = out_dir / PARTIAL_MANIFEST
    temporaries = []
    try:
        with open(partial, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()
            for example in iterator:
                speech_path, noise_path = Path(example.speech_path), Path(example.noise_path)
                speech_name = speech_path.relative_to(speech_dir).with_suffix("").as_posix().replace("/", "__")
                noise_name = noise_path.relative_to(noise_dir).with_suffix("").as_posix().replace("/", "__")
                name = f"{speech_name}__{noise_name}__{example.snr_db:g}dB.wav"
                noisy, clean, scaled_noise = example.load()
                peak = float(np.max(np.abs(noisy)))
                if peak > MAX_PEAK:
                    # One gain for the three signals keeps the SNR and noisy = clean + noise.
                    gain = MAX_PEAK / peak
                    noisy, clean, scaled_noise = noisy * gain, clean * gain, scaled_noise * gain
                    log(f"{name}: mixture peak {peak:.3f}, all three signals scaled by {gain:.3f} to peak {MAX_PEAK}")
                for kind, signal in zip(KINDS, (noisy, clean, scaled_noise)):
                    temporaries.append(_write(out_dir / kind / name, signal))
                row = {"name": name, "noisy": f"noisy/{name}", "clean": f"clean/{name}", "noise": f"noise/{name}",
                       "speech_source": str(speech_path), "noise_source": str(noise_path),
                       "noise_type": example.meta["noise_type"], "snr_db": f"{example.snr_db:g}",
                       "convention": convention}
                writer.writerow(row)
                handle.flush()
                for kind, temporary in zip(KINDS, temporaries):
                    os.replace(temporary, out_dir / kind / name)
                temporaries.clear()
                rows.append(row)
        os.replace(partial, out_dir / MANIFEST)
    except (OSError, ValueError) as error:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise ValueError(f"--out {out_dir}: mixing stopped after {len(rows)} of {len(jobs)} mixtures ({error}); "
                         f"{PARTIAL_MANIFEST} lists what was written, and the same command run again starts over"
                         ) from error
    return {"rows": rows, "skipped": skipped if skipped is not None else SkipReport()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.mix", description=__doc__.split("\n")[0],
                                     epilog="Every input is checked before the first mixture is written; --out must "
                                            "be new or empty; a killed run is cleared and restarted by the same "
                                            "command; manifest.csv is written last.")
    parser.add_argument("--speech", required=True, help="folder of clean speech files (searched recursively)")
    parser.add_argument("--noise", required=True, help="folder of noise files (sub-folder name = noise type)")
    parser.add_argument("--snr", required=True, type=float, nargs="+", help="SNR(s) in dB")
    parser.add_argument("--out", required=True, help="output folder: new or empty (or left by an unfinished run)")
    parser.add_argument("--convention", default="energy_gain", choices=CONVENTIONS,
                        help="mixing convention: energy_gain (FQSE/FCN), sednn, crn, tfgridnet")
    parser.add_argument("--per-snr", type=int, default=1,
                        help="noise files per speech file and SNR (default 1; at most the number of noise files)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out unreadable, empty, NaN, silent or wrong-rate files, one line each")
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
