"""Build the embedded mini corpus from Debian packages into ``<data-dir>/mini`` (deterministic, atomic, idempotent).

Speech: the Asterisk core prompts of five recordings by four professional speakers
(``asterisk-core-sounds-{en,es,fr,it,ru}-g722``, 16 kHz G.722, decoded with PyPI ``g722``; en_US and es_MX are both
Allison Smith); the letters and syllables of ``klettres-data`` (one or two readers per language, 22-48 kHz,
resampled); the 16-kHz recordings of two more male speakers in ``pocketsphinx-testdata`` (five LibriVox utterances;
the CMU test utterances) as unseen voices. Noise: the ambient recordings of
``lincity-ng-data``, the noise-like loops of ``sonic-pi-samples``, the background recordings of ``openttd-opensfx``
(wind, machinery, vehicles, aircraft), generated stationary (white/pink/brown/
speech-shaped) and non-stationary (modulated, bursts, hum, keyboard) noise and babble (``multi_talker`` for training
from the seen voices' training/validation prompts; the test ``babble`` from the unseen voices only).

Splits (see ``issues show 3``):
- speech ``train``/``valid``/``test``: prompts (the same prompt id in every language, plus prompts whose audio is
  byte-identical to another) are split 80/10/10 so that no test sentence is ever trained on, in any voice;
  the seen voices are en_US and es_MX Allison (female), fr_CA June (female), it_IT Carlo (male) and the KLettres
  readers (split by item, ``alpha/a`` of every language in one split);
- ``test_unseen_voice``: speakers never in train/valid, at least one of each sex: the test prompts of ru_RU
  (female), LibriVox (male), the CMU pocketsphinx test utterances (male) and every KLettres file of Hungarian
  (male) and Ukrainian (female);
- noise ``train``/``valid``/``test``: different files of the same noise types (a single long recording is cut into
  disjoint 70/15/15 % parts); ``test_unseen_noise``: noise types never used in training (babble and market, the
  analogues of CRN's babble/cafeteria test noises, plus crowd, rail and vinyl hiss). The test babble's talkers are
  the unseen voices; training has its own ``multi_talker`` babble of the seen voices' training prompts.

The build prints hours, voices (with their sex) and the 5th-95th percentile of F0 per split, without and with the
speaker augmentation of ``common.mixing.augment_speaker``.

Usage: ``python -m data_prep.build_mini [--force] [--data-dir data] [--max-prompts N] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from common.audio import count_clipped, read_audio, resample, to_mono
from common.mixing import augment_speaker, estimate_f0
from data_prep.corpus import (
    NOISE_COLUMNS,
    NOISE_SPLITS,
    SPEECH_COLUMNS,
    SPEECH_SPLITS,
    ManifestCorpus,
    sha256_file,
    write_manifest,
)
from data_prep.synthetic_noise import (
    LTAS_FFT,
    NONSTATIONARY_NOISES,
    babble,
    colored_noise,
    speech_power_spectrum,
    speech_shaped_noise,
)

SAMPLE_RATE = 16000
# Bump when the corpus content changes so that an existing data/mini is rebuilt.
BUILDER_VERSION = 4

ASTERISK_DIR = Path("/usr/share/asterisk/sounds")
LINCITY_DIR = Path("/usr/share/games/lincity-ng/sounds")
SONIC_PI_DIR = Path("/usr/share/sonic-pi/samples")
POCKETSPHINX_DIR = Path("/usr/share/pocketsphinx/test/data")
LIBRIVOX_DIR = POCKETSPHINX_DIR / "librivox"


@dataclass(frozen=True)
class Voice:
    """One Asterisk voice folder; ``person`` names the speaker, so two languages of one person split together."""

    package: str
    licence: str
    credit: str
    person: str
    sex: str


# Credits from /usr/share/doc/asterisk-core-sounds-*/copyright; sex from those credits, confirmed by the median F0
# of the decoded prompts (estimate_f0: Allison 191 Hz, June 190, IvrvoiceRU 210; Carlo, a high male voice, 188).
VOICES = {
    "en_US_f_Allison": Voice("asterisk-core-sounds-en-g722", "CC BY-SA 3.0", "Allison Smith (recording), Digium, Inc.",
                             "Allison Smith", "f"),
    "es_MX_f_Allison": Voice("asterisk-core-sounds-es-g722", "CC BY-SA 3.0", "Allison Smith (recording), Digium, Inc.",
                             "Allison Smith", "f"),
    "fr_CA_f_June": Voice("asterisk-core-sounds-fr-g722", "CC BY-SA 3.0",
                          "June Wallack (recording), Clod Patry (translation)", "June Wallack", "f"),
    "it_IT_m_Carlo": Voice("asterisk-core-sounds-it-g722", "CC BY 3.0",
                           "Carlo Flora (recording), Silvia Petrin (translation)", "Carlo Flora", "m"),
    "ru_RU_f_IvrvoiceRU": Voice("asterisk-core-sounds-ru-g722", "CC BY 3.0", "IvrVoice.ru (recording), Maxim Topal",
                                "IvrVoice.ru", "f"),
}
# Asterisk voices held out: they read only test prompts, into test_unseen_voice.
UNSEEN_VOICES = ("ru_RU_f_IvrvoiceRU",)
# one LibriVox reader of Sense and Sensibility; male by the median F0 of his five utterances (estimate_f0: 102 Hz)
LIBRIVOX_SPEAKER = "en_librivox"
# The CMU test utterances of pocketsphinx-testdata (16 kHz; .raw files are headerless 16-bit little-endian): one
# speaker name for all, since the package does not say whether they are one person (median F0 104-129 Hz, male).
POCKETSPHINX_SPEAKER = "en_m_pocketsphinx"
POCKETSPHINX_FILES = ("cards/001.wav", "cards/002.wav", "cards/003.wav", "cards/004.wav", "cards/005.wav",
                      "goforward.raw", "numbers.raw", "something.raw", "tidigits/dhd.2934z.raw")

# KLettres (klettres-data, GPL-2+): letters and syllables read by one voice per folder <language>/<alpha|syllab>,
# 22-48 kHz Ogg Vorbis. The package names no speakers, so sex comes from the median F0 over each folder's files
# (estimate_f0, Hz): ar 271, cs 249, da 127, de/alpha 231, de/syllab 117, en 133, en_GB 241, es 180, fr 129,
# hu 111, it 222, lt/syllab 125, ml 114, nb 253, nds 105, nl 216, pt_BR 289, ru 216, uk 234.
KLETTRES_DIR = Path("/usr/share/klettres")
KLETTRES_VOICES = {
    "ar/alpha": "f", "cs/alpha": "f", "cs/syllab": "f", "da/alpha": "m", "da/syllab": "m", "de/alpha": "f",
    "de/syllab": "m", "en/alpha": "m", "en/syllab": "m", "en_GB/alpha": "f", "en_GB/syllab": "f", "es/alpha": "f",
    "es/syllab": "f", "fr/alpha": "m", "fr/syllab": "m", "hu/alpha": "m", "hu/syllab": "m", "it/alpha": "f",
    "it/syllab": "f", "lt/syllab": "m", "ml/alpha": "m", "ml/syllab": "m", "nb/alpha": "f", "nds/alpha": "m",
    "nds/syllab": "m", "nl/alpha": "f", "nl/syllab": "f", "pt_BR/alpha": "f", "pt_BR/syllab": "f", "ru/alpha": "f",
    "ru/syllab": "f", "uk/alpha": "f", "uk/syllab": "f",
}
KLETTRES_SKIPPED = {
    "he": "sex not decidable from F0 (per-file medians 150-188 Hz)",
    "lt/alpha": "more than one voice (per-file median F0 110-236 Hz)",
    "tn": "clipped (15-36 % of the samples at full scale)",
}
# languages whose KLettres voices are held out (one male, one female), all of their files in test_unseen_voice
UNSEEN_KLETTRES_LANGUAGES = ("hu", "uk")
# a file with more than 0.1 % of its samples at full scale is clipped audibly (ml has files at 1-13 %)
MAX_CLIPPED_FRACTION = 0.001


def klettres_speaker(folder: str) -> str:
    """Speaker name of a KLettres folder ``<language>/<alpha|syllab>``, e.g. ``de_f_klettres_alpha``."""
    language, kind = folder.split("/")
    return f"{language}_{KLETTRES_VOICES[folder]}_klettres_{kind}"


def speaker_person(speaker: str) -> str:
    """The person behind a speaker name, as far as the packages tell: the two Asterisk languages of Allison Smith
    are one person, and the two folders of one KLettres language are counted as one (they may be one reader)."""
    if speaker in VOICES:
        return VOICES[speaker].person
    if "_klettres_" in speaker:
        return "klettres " + speaker.split("_klettres_")[0].rsplit("_", 1)[0]
    return speaker


SPEAKER_SEX = {**{voice: entry.sex for voice, entry in VOICES.items()}, LIBRIVOX_SPEAKER: "m", POCKETSPHINX_SPEAKER: "m",
               **{klettres_speaker(folder): sex for folder, sex in KLETTRES_VOICES.items()}}
# pocketsphinx-testdata holds the only held-out male voices
REQUIRED_PACKAGES = sorted({entry.package for entry in VOICES.values()}) + [
    "klettres-data", "pocketsphinx-testdata", "lincity-ng-data", "sonic-pi-samples", "openttd-opensfx"]

# Prompts that are not speech: tones, the silence files, and the screeching monkeys of tt-monkeys.
NON_SPEECH_PROMPTS = {"beep", "beeperr", "ascending-2tone", "descending-2tone", "tt-monkeys"}
NON_SPEECH_FOLDERS = {"silence"}
MIN_SPEECH_SECONDS = 0.3
# G.722 at 64 kbit/s is 8000 bytes per second: 3.2 s of speech (tiny corpora keep prompts long enough for FQSE).
TINY_MIN_BYTES = 8000 * 3.2
SPLIT_FRACTIONS = {"test": 0.1, "valid": 0.1}

# lincity-ng file stem (digits stripped) -> noise type. Left out: user-interface clicks and the substation hum,
# a pure tone 80 dB above its noise floor (measured), i.e. not noise.
LINCITY_TYPES = {
    "Blacksmith": "blacksmith", "Build": "construction", "MonumentConstruction": "construction",
    "CoalMine": "mine", "OreMine": "mine", "Commune": "commune", "DirtTrack": "dirt_track",
    "Farm": "farm", "OrganicFarm": "farm", "Fire": "fire", "FireWasteland": "fire",
    "FireStation": "fire_station", "Green": "park", "ParklandLake": "lake", "ParklandPlane": "aircraft",
    "Harbor": "harbour", "Health": "hospital", "IndustryHigh": "industry", "IndustryLight": "industry",
    "MarketEmpty": "market", "MarketFull": "market", "MarketLow": "market", "MarketMed": "market",
    "Mill": "mill", "WindMill": "windmill", "WindMillHTech": "windmill", "Monument": "monument",
    "Pottery": "pottery", "PowerCoalEmpty": "power_station", "PowerCoalFull": "power_station",
    "PowerCoalLow": "power_station", "PowerCoalMed": "power_station", "PowerLine": "power_station",
    "PowerSolar": "power_station", "RailTrain": "rail", "Raze": "demolition", "Recycle": "recycling",
    "Tip": "landfill", "ResidentialHigh": "residential", "ResidentialLow": "residential",
    "ResidentialLowLow": "residential", "ResidentialMed": "residential", "Shanty": "shanty",
    "Rocket": "rocket", "RocketExplosion": "rocket", "RocketTakeoff": "rocket", "School": "school",
    "University": "university", "SportsCroud": "crowd", "Water": "water",
    "TraficHigh": "traffic", "TraficLow": "traffic",
}
LINCITY_SKIPPED = {
    "Click.wav": "user-interface click",
    "WindowClose.wav": "user-interface sound",
    "WindowOpen.wav": "user-interface sound",
    "Substation3.wav": "tonal hum",
    "Substation4.wav": "tonal hum",
    "SubstationOff.wav": "tonal hum",
    "SubstationOn.wav": "tonal hum",
    # more than half of the 32-ms frames are 35 dB below the loudest one (measured): an event, not a background
    "Green1.wav": "mostly silent",
    "Health5.wav": "mostly silent",
}
# sonic-pi samples that are noise-like (the drums, basses, synths and tonal ambiences are left out).
SONIC_PI_TYPES = {
    "loop_3d_printer.flac": "printer_3d",
    "loop_industrial.flac": "industry",
    "loop_safari.flac": "safari",
    "vinyl_hiss.flac": "vinyl_hiss",
    "ambi_sauna.flac": "sauna",
    "ambi_soft_buzz.flac": "buzz",
    "ambi_lunar_land.flac": "lunar_land",
}
# openttd-opensfx: one OpenTTD sound container of 44.1-kHz recordings (CC BY 3.0, CC BY-SA 3.0 or CC0 each, the set
# CC BY-SA 3.0), each entry named by its title and credits. Title prefix -> noise type; the others are short events
# (horns, beeps, crashes, animals); the applause is left out because crowd is an unseen test noise, and "Heavy wind"
# because it is cut from the same recording as "Wind".
OPENSFX_CATALOGUE = Path("/usr/share/games/openttd/baseset/opensfx/opensfx.cat")
OPENSFX_TYPES = {
    '"Wind"': "wind", '"Jackhammer"': "jackhammer", '"Sawmill"': "saw",
    '"Lumber mill: Chainsaw"': "saw", '"Helicopter"': "helicopter", '"Mining machinery"': "mine",
    '"Electric sparking"': "sparking", '"Steam (of steam engine)"': "steam", '"Modern bus start"': "bus",
    '"Old bus start"': "bus", '"Truck/old bus start, pull away"': "bus", '"Early jet take off"': "aircraft",
    '"Modern jet take off"': "aircraft", '"Mach 1+ Jet take off"': "aircraft", '"Propeller plane start"': "aircraft",
    '"Building bridge"': "blacksmith",
}
UNSEEN_NOISE_TYPES = ("babble", "market", "crowd", "rail", "vinyl_hiss")
GENERATED_TYPES = ("white", "pink", "brown", "speech_shaped") + tuple(NONSTATIONARY_NOISES)
# files per split of each generated type; babble (unseen voices, test) gets BABBLE_FILES, multi-talker babble
# (seen voices, train/valid) TRAINING_BABBLE_FILES. With 3 training files (3 of 87, about 22 of CRN's 640 mini
# mixtures per epoch) the mini CRN stayed below the unprocessed STOI on -5 dB test babble (47.8 vs 49.1 %); 12 make
# talker noise 12.5 % of the training noise files (CRN then 49.5 %, but PESQ 0.71 vs 0.77). The paper's 126 h of
# sound effects do not document their share.
GENERATED_FILES = {"train": 3, "valid": 1, "test": 1}
BABBLE_FILES = 3
BABBLE_TALKERS = 6
TRAINING_BABBLE_TYPE = "multi_talker"
TRAINING_BABBLE_FILES = {"train": 12, "valid": 3}
MIN_SEGMENTED_SECONDS = 6.0
SEGMENT_FRACTIONS = (("train", 0.0, 0.7), ("valid", 0.7, 0.85), ("test", 0.85, 1.0))
NOISE_PEAK = 0.9
# utterances per voice and split whose F0 is measured after augment_speaker (librosa's pitch shift is the slow part)
AUGMENTED_PITCH_UTTERANCES = 20

ATTRIBUTION = """# Mini corpus: sources and licences

This folder is derived (decoded, resampled to 16 kHz mono, peak-normalised, cut into parts) from Debian packages.
Each file keeps the licence of its source:

| files | Debian package | licence | credit |
|---|---|---|---|
{voice_rows}| speech/*/{librivox}/ | pocketsphinx-testdata (LibriVox) | public domain (LibriVox); package BSD-2 | LibriVox volunteers |
| speech/*/{pocketsphinx}/ | pocketsphinx-testdata | BSD-2 | Carnegie Mellon University, Alpha Cephei Inc. |
| speech/*/*_klettres_*/ | klettres-data | GPL-2+ | Anne-Marie Mahfouf and the KLettres contributors (KDE) |
| noise/*/<lincity types>/ | lincity-ng-data | GPL-2+ (upstream also CC BY-SA 2.0) | I J Peters, Greg Sharp, Corey Keasling and the LinCity-NG contributors |
| noise/*/<sonic-pi types>/ | sonic-pi-samples | CC0 1.0 | freesound.org authors listed in /usr/share/doc/sonic-pi-samples/copyright |
| noise/*/*/opensfx_*.wav | openttd-opensfx | CC BY-SA 3.0 (each file CC BY 3.0, CC BY-SA 3.0 or CC0) | Janis Lukss, Wuzzy and the freesound.org authors named in each file's title, /usr/share/doc/openttd-opensfx/copyright |
| noise/*/{{white,pink,brown,speech_shaped,modulated,bursts,hum,keyboard,multi_talker,babble}}/ | generated | speech_shaped/multi_talker/babble derive from the voices above | this project |

Licence texts: https://creativecommons.org/licenses/by-sa/3.0/, https://creativecommons.org/licenses/by/3.0/,
https://creativecommons.org/publicdomain/zero/1.0/, /usr/share/common-licenses/GPL-2, BSD-2 in /usr/share/doc/pocketsphinx-testdata/copyright.
"""


def _log(message: str, quiet: bool = False) -> None:
    if not quiet:
        print(message, flush=True)


# --------------------------------------------------------------------------------------------------- packages


def _voice_dir(voice: str) -> Path:
    return ASTERISK_DIR / voice


def missing_packages() -> list[str]:
    """Required Debian packages whose files are absent."""
    missing = sorted({entry.package for voice, entry in VOICES.items() if not any(_voice_dir(voice).glob("*.g722"))})
    if not any(KLETTRES_DIR.glob("*/alpha/*.ogg")):
        missing.append("klettres-data")
    if not any(LIBRIVOX_DIR.glob("*.wav")):
        missing.append("pocketsphinx-testdata")
    if not any(LINCITY_DIR.glob("*.wav")):
        missing.append("lincity-ng-data")
    if not any(SONIC_PI_DIR.glob("*.flac")):
        missing.append("sonic-pi-samples")
    if not OPENSFX_CATALOGUE.is_file():
        missing.append("openttd-opensfx")
    return missing


def ensure_packages(quiet: bool = False) -> None:
    """Install missing source packages with apt-get when root; otherwise stop with the command to run."""
    missing = missing_packages()
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends"] + missing
    if os.geteuid() != 0:
        raise SystemExit(
            "The mini corpus needs Debian packages that are not installed. Run:\n"
            f"  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive {' '.join(command)}\n"
            "then rerun the build."
        )
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _log(f"installing {' '.join(missing)} with apt-get", quiet)
    subprocess.run(["apt-get", "update"], check=True, env=environment)
    result = subprocess.run(command, env=environment)
    if result.returncode != 0:
        raise SystemExit(f"apt-get failed ({result.returncode}): {' '.join(command)}")
    still = missing_packages()
    if still:
        raise SystemExit(f"packages still missing after apt-get: {' '.join(still)}")


def _package_versions() -> dict:
    packages = REQUIRED_PACKAGES
    try:
        output = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package} ${Version}\n"] + packages,
            capture_output=True, text=True, check=False,
        ).stdout
    except OSError:
        return {}
    return dict(line.split(" ", 1) for line in output.splitlines() if " " in line)


# --------------------------------------------------------------------------------------------------- speech


class _UnionFind:
    def __init__(self):
        self.parent = {}

    def find(self, item):
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, first, second):
        first, second = self.find(first), self.find(second)
        if first != second:
            # the smaller id names the group, so group names do not depend on visiting order
            low, high = sorted((first, second))
            self.parent[high] = low


def scan_voices(skipped: list) -> dict:
    """{voice: {prompt_id: (path, sha256 of bytes)}} with non-speech and empty files left out."""
    voices = {}
    for voice in VOICES:
        prompts = {}
        for path in sorted(_voice_dir(voice).rglob("*.g722")):
            prompt = path.relative_to(_voice_dir(voice)).with_suffix("").as_posix()
            if prompt.split("/")[0] in NON_SPEECH_FOLDERS or path.stem in NON_SPEECH_PROMPTS:
                continue
            data = path.read_bytes()
            if not data:
                skipped.append((str(path), "empty file"))
                continue
            prompts[prompt] = (path, hashlib.sha256(data).hexdigest())
        voices[voice] = prompts
    return voices


def assign_prompt_splits(voices: dict, seed: int) -> dict:
    """{prompt_id: split}: prompts with byte-identical audio in any voice are kept in one group (no leak)."""
    groups = _UnionFind()
    for prompts in voices.values():
        by_digest = {}
        for prompt, (_, digest) in prompts.items():
            groups.find(prompt)
            if digest in by_digest:
                groups.union(prompt, by_digest[digest])
            else:
                by_digest[digest] = prompt
    roots = sorted({groups.find(prompt) for prompt in groups.parent})
    order = np.random.default_rng([seed, 1]).permutation(len(roots))
    count_test = int(round(SPLIT_FRACTIONS["test"] * len(roots)))
    count_valid = int(round(SPLIT_FRACTIONS["valid"] * len(roots)))
    root_split = {}
    for rank, index in enumerate(order):
        split = "test" if rank < count_test else "valid" if rank < count_test + count_valid else "train"
        root_split[roots[index]] = (split, rank)
    return {prompt: root_split[groups.find(prompt)] for prompt in groups.parent}


def _decode_task(task):
    """Worker: decode one G.722 file, write PCM_16 wav; returns the manifest row or a skip reason."""
    import G722

    source, target, row, want_spectrum = task
    pcm = np.asarray(G722.G722(SAMPLE_RATE, 64000).decode(Path(source).read_bytes()), dtype=np.int16)
    return _finish_speech(pcm, source, target, row, want_spectrum)


def _copy_task(task):
    """Worker: copy a 16 kHz PCM_16 wav or headerless 16-bit little-endian 16 kHz .raw file after checking it."""
    source, target, row, want_spectrum = task
    if source.endswith(".raw"):
        pcm, rate = np.fromfile(source, dtype="<i2"), SAMPLE_RATE
    else:
        pcm, rate = soundfile.read(source, dtype="int16")
    if rate != SAMPLE_RATE or pcm.ndim != 1:
        return None, (source, f"unexpected format ({rate} Hz, shape {pcm.shape})")
    return _finish_speech(pcm, source, target, row, want_spectrum)


def _klettres_task(task):
    """Worker: decode a KLettres Ogg file, down-mix, refuse it when clipped, resample to 16 kHz, write PCM_16."""
    source, target, row, want_spectrum = task
    signal, rate = soundfile.read(source, dtype="float64", always_2d=True)
    signal = to_mono(signal)
    clipped = count_clipped(signal)
    if clipped > MAX_CLIPPED_FRACTION * signal.shape[0]:
        return None, (source, f"clipped ({clipped} of {signal.shape[0]} samples at full scale)")
    signal = resample(signal, rate, SAMPLE_RATE)
    pcm = np.clip(np.round(signal * 32768.0), -32768, 32767).astype(np.int16)
    return _finish_speech(pcm, source, target, row, want_spectrum)


def _finish_speech(pcm, source, target, row, want_spectrum):
    if pcm.shape[0] < MIN_SPEECH_SECONDS * SAMPLE_RATE:
        return None, (source, f"shorter than {MIN_SPEECH_SECONDS} s")
    if np.max(np.abs(pcm.astype(np.int32))) < 64:
        return None, (source, "silent")
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(target, pcm, SAMPLE_RATE, subtype="PCM_16")
    row = dict(row, samples=int(pcm.shape[0]), duration=round(pcm.shape[0] / SAMPLE_RATE, 6), sha256=sha256_file(target))
    spectrum = speech_power_spectrum(pcm.astype(np.float64) / 32768.0) if want_spectrum else None
    return (row, spectrum), None


def _speech_tasks(root: Path, voices: dict, prompt_split: dict, max_prompts, seed: int, skipped: list):
    # With max_prompts (tiny test corpora) only prompts recorded by every voice and long enough for 3-s segments
    # are eligible; position is a prompt group's place among the eligible groups of its split.
    eligible = set(prompt_split)
    if max_prompts is not None:
        eligible = {
            prompt for prompt in prompt_split
            if all(prompt in prompts and prompts[prompt][0].stat().st_size >= TINY_MIN_BYTES for prompts in voices.values())
        }
    position = {}
    for split in ("train", "valid", "test"):
        ranks = sorted({prompt_split[prompt][1] for prompt in eligible if prompt_split[prompt][0] == split})
        position.update({(split, rank): index for index, rank in enumerate(ranks)})
    tasks = []
    for voice, prompts in voices.items():
        kept_digests = set()
        for prompt, (path, digest) in sorted(prompts.items()):
            split, rank = prompt_split[prompt]
            if digest in kept_digests:
                continue  # the same recording under another prompt name: once is enough
            if voice in UNSEEN_VOICES:
                if split != "test":
                    continue  # the held-out voice contributes only test prompts (never trained on)
                split = "test_unseen_voice"
            if max_prompts is not None and (prompt not in eligible or position[prompt_split[prompt]] >= max_prompts):
                continue
            kept_digests.add(digest)
            relative = Path("speech") / split / voice / (prompt.replace("/", "__") + ".wav")
            row = {"path": relative.as_posix(), "speaker": voice, "split": split, "sex": VOICES[voice].sex,
                   "source": f"{VOICES[voice].package}:{prompt}"}
            tasks.append((_decode_task, (str(path), str(root / relative), row, split == "train")))
    recordings = [(LIBRIVOX_SPEAKER, path) for path in sorted(LIBRIVOX_DIR.glob("*.wav"))]
    recordings += [(POCKETSPHINX_SPEAKER, POCKETSPHINX_DIR / name) for name in POCKETSPHINX_FILES
                   if (POCKETSPHINX_DIR / name).is_file()]
    counts = {}
    for speaker, path in recordings:
        if max_prompts is not None:
            # 16-bit samples: the same minimum duration as the tiny corpus' G.722 prompts
            if path.stat().st_size < 2 * SAMPLE_RATE * TINY_MIN_BYTES / 8000:
                continue
            counts[speaker] = counts.get(speaker, 0) + 1
            if counts[speaker] > max_prompts:
                continue
        name = path.relative_to(POCKETSPHINX_DIR).with_suffix(".wav").as_posix().replace("/", "__")
        relative = Path("speech") / "test_unseen_voice" / speaker / name
        row = {"path": relative.as_posix(), "speaker": speaker, "split": "test_unseen_voice",
               "sex": SPEAKER_SEX[speaker], "source": f"pocketsphinx-testdata:{path.relative_to(POCKETSPHINX_DIR)}"}
        tasks.append((_copy_task, (str(path), str(root / relative), row, False)))
    return tasks + _klettres_tasks(root, seed, max_prompts, skipped)


def _klettres_tasks(root: Path, seed: int, max_prompts, skipped: list) -> list:
    """KLettres files: the held-out languages' whole folders into test_unseen_voice; the others split 80/10/10 by
    item (``alpha/a`` in every language goes to one split)."""
    files = {}
    for folder in sorted(KLETTRES_VOICES):
        paths = sorted((KLETTRES_DIR / folder).glob("*.ogg"))
        if paths:
            files[folder] = paths
    for folder, reason in KLETTRES_SKIPPED.items():
        for path in sorted((KLETTRES_DIR / folder).rglob("*.ogg")):
            skipped.append((str(path), reason))
    items = sorted({f"{folder.split('/')[1]}/{path.stem}" for folder, paths in files.items() for path in paths})
    order = np.random.default_rng([seed, 6]).permutation(len(items))
    count_test = int(round(SPLIT_FRACTIONS["test"] * len(items)))
    count_valid = int(round(SPLIT_FRACTIONS["valid"] * len(items)))
    item_split = {items[index]: ("test" if rank < count_test else "valid" if rank < count_test + count_valid
                                 else "train") for rank, index in enumerate(order)}
    tasks = []
    for folder, paths in files.items():
        language, kind = folder.split("/")
        speaker = klettres_speaker(folder)
        counts = {}
        for path in paths:
            split = "test_unseen_voice" if language in UNSEEN_KLETTRES_LANGUAGES else item_split[f"{kind}/{path.stem}"]
            if max_prompts is not None:
                if soundfile.info(str(path)).duration < TINY_MIN_BYTES / 8000:
                    continue
                counts[split] = counts.get(split, 0) + 1
                if counts[split] > max_prompts:
                    continue
            relative = Path("speech") / split / speaker / f"{path.stem}.wav"
            row = {"path": relative.as_posix(), "speaker": speaker, "split": split, "sex": KLETTRES_VOICES[folder],
                   "source": f"klettres-data:{folder}/{path.name}"}
            tasks.append((_klettres_task, (str(path), str(root / relative), row, split == "train")))
    return tasks


# --------------------------------------------------------------------------------------------------- noise


def list_noise_sources(skipped: list, extract_dir: Path | None = None) -> dict:
    """{noise_type: [source paths]} for the recorded noises; the openttd-opensfx sounds are extracted into
    ``extract_dir`` (left out when it is None)."""
    types = {}
    for path in sorted(LINCITY_DIR.glob("*.wav")):
        if path.name in LINCITY_SKIPPED:
            skipped.append((str(path), LINCITY_SKIPPED[path.name]))
            continue
        stem = re.sub(r"\d+$", "", path.stem)
        if stem not in LINCITY_TYPES:
            skipped.append((str(path), "unknown lincity-ng sound"))
            continue
        types.setdefault(LINCITY_TYPES[stem], []).append(path)
    for name, noise_type in SONIC_PI_TYPES.items():
        path = SONIC_PI_DIR / name
        if path.is_file():
            types.setdefault(noise_type, []).append(path)
    if extract_dir is not None and OPENSFX_CATALOGUE.is_file():
        for title, path in extract_opensfx(OPENSFX_CATALOGUE, extract_dir).items():
            noise_type = OPENSFX_TYPES.get(title.split(". ")[0])
            if noise_type is None:
                skipped.append((f"{OPENSFX_CATALOGUE}:{title[:60]}", "an event, not a background noise"))
            else:
                types.setdefault(noise_type, []).append(path)
    return types


def extract_opensfx(catalogue: Path, destination: Path) -> dict:
    """{title: wav path} of the sounds in an OpenTTD ``.cat`` container, written to ``destination``.

    The container starts with a table of (offset, size) pairs, little-endian uint32 with the top bit of the offset
    as a flag; the first offset is the table's size. Each entry holds a length byte, the title (zero-terminated)
    and a RIFF WAVE file.
    """
    data = Path(catalogue).read_bytes()
    if len(data) < 8:
        raise ValueError(f"{catalogue}: too short for an OpenTTD sound container")
    count = (int.from_bytes(data[:4], "little") & 0x7FFFFFFF) // 8
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    sounds = {}
    for index in range(count):
        offset = int.from_bytes(data[8 * index:8 * index + 4], "little") & 0x7FFFFFFF
        size = int.from_bytes(data[8 * index + 4:8 * index + 8], "little")
        if offset + size > len(data) or size < 1:
            raise ValueError(f"{catalogue}: entry {index} lies outside the file")
        title_length = data[offset]
        title = data[offset + 1:offset + 1 + title_length].rstrip(b"\0").decode("utf-8", errors="replace")
        wave = data[offset + 1 + title_length:offset + size]
        if wave[:4] != b"RIFF":
            continue  # the empty placeholder entries
        path = destination / f"opensfx_{index:02d}.wav"
        path.write_bytes(wave)
        sounds[title] = path
    return sounds


def plan_noise_splits(types: dict, seed: int, max_noise_files) -> list:
    """[(source, noise_type, split, part)] where part is (start_fraction, end_fraction) or None (whole file)."""
    plan = []
    for noise_type in sorted(types):
        files = sorted(types[noise_type])
        order = [files[i] for i in np.random.default_rng([seed, 2, zlib.crc32(noise_type.encode())]).permutation(len(files))]
        if noise_type in UNSEEN_NOISE_TYPES:
            assignment = [(path, "test_unseen_noise", None) for path in order]
        elif len(order) >= 3:
            assignment = [(order[0], "test", None), (order[1], "valid", None)] + [(path, "train", None) for path in order[2:]]
        elif len(order) == 2:
            assignment = [(order[0], "test", None), (order[1], "train", None)]
        else:
            duration = soundfile.info(str(order[0])).duration
            if duration >= MIN_SEGMENTED_SECONDS:
                assignment = [(order[0], split, (start, end)) for split, start, end in SEGMENT_FRACTIONS]
            else:
                assignment = [(order[0], "train", None)]
        counts = {}
        for path, split, part in assignment:
            counts[split] = counts.get(split, 0) + 1
            if max_noise_files is None or counts[split] <= max_noise_files:
                plan.append((path, noise_type, split, part))
    return plan


def _noise_task(task):
    """Worker: read, down-mix and resample a recorded noise, cut its part, peak-normalise, write PCM_16."""
    source, target, row, part = task
    try:
        signal, _ = read_audio(source, sample_rate=SAMPLE_RATE, mono=True)
    except ValueError as error:
        return None, (source, str(error))
    if part is not None:
        start, end = (int(round(fraction * signal.shape[0])) for fraction in part)
        signal = signal[start:end]
    signal = signal - np.mean(signal)
    peak = float(np.max(np.abs(signal)))
    if peak <= 0:
        return None, (source, "silent")
    return _write_noise(signal * (NOISE_PEAK / peak), target, row), None


def _write_noise(signal, target, row):
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(target, np.asarray(signal, dtype=np.float32), SAMPLE_RATE, subtype="PCM_16")
    samples = int(signal.shape[0])
    return dict(row, samples=samples, duration=round(samples / SAMPLE_RATE, 6), sha256=sha256_file(target))


def _file_count(count: int, options: dict) -> int:
    """``count`` files of a generated type, at most ``--max-noise-files`` when that is set."""
    return count if options["max_noise_files"] is None else min(count, options["max_noise_files"])


def _generated_task(task):
    """Worker: generate one file of a GENERATED_TYPES noise."""
    noise_type, seed_key, samples, ltas, target, row = task
    rng = np.random.default_rng(seed_key)
    if noise_type == "speech_shaped":
        signal = speech_shaped_noise(ltas, samples, rng)
    elif noise_type in NONSTATIONARY_NOISES:
        signal = NONSTATIONARY_NOISES[noise_type](samples, rng, SAMPLE_RATE)
    else:
        signal = colored_noise(noise_type, samples, rng)
    return _write_noise(signal, target, row), None


# --------------------------------------------------------------------------------------------------- build


def _options(seed, max_prompts, max_noise_files, generated_seconds) -> dict:
    return {
        "builder_version": BUILDER_VERSION,
        "seed": int(seed),
        "max_prompts": None if max_prompts is None else int(max_prompts),
        "max_noise_files": None if max_noise_files is None else int(max_noise_files),
        "generated_seconds": float(generated_seconds),
    }


def _run_tasks(tasks, jobs: int, description: str, quiet: bool):
    """Run (function, argument) tasks in order over ``jobs`` processes; results come back in task order."""
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is in requirements; the build still works without a progress bar
        tqdm = None
    if jobs <= 1:
        iterator = (function(argument) for function, argument in tasks)
        results_iter = iterator
        executor = None
    else:
        executor = concurrent.futures.ProcessPoolExecutor(max_workers=jobs)
        futures = [executor.submit(function, argument) for function, argument in tasks]
        results_iter = (future.result() for future in futures)
    if tqdm is not None and not quiet:
        results_iter = tqdm(results_iter, total=len(tasks), desc=description, unit="file", leave=False)
    try:
        return list(results_iter)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _remove_stale_temporaries(data_dir: Path) -> None:
    for folder in data_dir.glob(".mini.*-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        alive = pid.isdigit() and Path(f"/proc/{pid}").exists() and int(pid) != os.getpid()
        if not alive:
            shutil.rmtree(folder, ignore_errors=True)


def corpus_is_current(root: Path, options: dict) -> bool:
    """True when ``root`` holds a complete corpus built with ``options``."""
    info_path = Path(root) / "build_info.json"
    if not info_path.is_file():
        return False
    try:
        info = json.loads(info_path.read_text())
    except ValueError:
        return False
    return info.get("options") == options and (Path(root) / "speech.csv").is_file() and (Path(root) / "noise.csv").is_file()


def build_mini_corpus(
    data_dir="data",
    force: bool = False,
    seed: int = 0,
    max_prompts: int | None = None,
    max_noise_files: int | None = None,
    generated_seconds: float = 10.0,
    jobs: int | None = None,
    name: str = "mini",
    quiet: bool = False,
    summary_when_current: bool = False,
) -> Path:
    """Build the corpus into ``data_dir/name`` unless an identical one is there; returns its root.

    Args:
        data_dir: parent folder (``data`` by default, git-ignored).
        force: rebuild even when the corpus is current.
        seed: controls the prompt split, noise split and generated noises.
        max_prompts: keep at most this many prompts per split (tests build a tiny corpus with 3-4).
        max_noise_files: keep at most this many files per noise type and split.
        generated_seconds: length of each generated noise file.
        jobs: worker processes (default: all CPU cores, at most 8).
        quiet: no progress output.
        summary_when_current: print the corpus summary also when nothing had to be built (the command line
            does; recipes, which open the corpus on every command, do not).
    """
    started = time.time()
    data_dir = Path(data_dir)
    root = data_dir / name
    options = _options(seed, max_prompts, max_noise_files, generated_seconds)
    if not force and corpus_is_current(root, options):
        _log(f"{root}: corpus is up to date (use --force to rebuild)", quiet)
        if summary_when_current:
            _log(format_summary(root, json.loads((root / "build_info.json").read_text())), quiet)
        return root
    if root.exists() and not force:
        _log(f"{root}: built with other options or incomplete, rebuilding", quiet)
    ensure_packages(quiet)
    data_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(data_dir)
    temporary = data_dir / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    jobs = jobs or min(8, os.cpu_count() or 1)
    try:
        info = _build_into(temporary, options, jobs, quiet)
        info["build_seconds"] = round(time.time() - started, 2)
        (temporary / "build_info.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        if root.exists():
            old = data_dir / f".{name}.old-{os.getpid()}"
            os.rename(root, old)
            os.rename(temporary, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(temporary, root)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _log(format_summary(root, info), quiet)
    return root


def _build_into(root: Path, options: dict, jobs: int, quiet: bool) -> dict:
    seed = options["seed"]
    skipped: list = []

    _log("scanning voices", quiet)
    voices = scan_voices(skipped)
    prompt_split = assign_prompt_splits(voices, seed)
    tasks = _speech_tasks(root, voices, prompt_split, options["max_prompts"], seed, skipped)
    results = _run_tasks(tasks, jobs, "speech", quiet)
    speech_rows, spectrum_sum, frames = [], np.zeros(LTAS_FFT // 2 + 1), 0
    for result, problem in results:
        if problem is not None:
            skipped.append(problem)
            continue
        row, spectrum = result
        speech_rows.append(row)
        if spectrum is not None:
            spectrum_sum += spectrum[0]
            frames += spectrum[1]
    if frames == 0:
        raise ValueError("mini corpus: no training speech was decoded")
    ltas = spectrum_sum / frames

    extract_dir = root / "openttd-opensfx"
    noise_plan = plan_noise_splits(list_noise_sources(skipped, extract_dir), seed, options["max_noise_files"])
    noise_tasks, used_names = [], set()
    for source, noise_type, split, part in noise_plan:
        base = Path(source).stem if part is None else f"{Path(source).stem}_part{int(part[0] * 100):02d}"
        relative = Path("noise") / split / noise_type / f"{base}.wav"
        used_names.add(relative)
        row = {"path": relative.as_posix(), "noise_type": noise_type, "split": split,
               "source": f"{Path(source).parent.name}/{Path(source).name}" + ("" if part is None else f"[{part[0]}:{part[1]}]")}
        noise_tasks.append((_noise_task, (str(source), str(root / relative), row, part)))
    samples = int(round(options["generated_seconds"] * SAMPLE_RATE))
    for type_index, noise_type in enumerate(GENERATED_TYPES):
        for split_index, (split, count) in enumerate(GENERATED_FILES.items()):
            for file_index in range(_file_count(count, options)):
                relative = Path("noise") / split / noise_type / f"{noise_type}_{split}_{file_index}.wav"
                row = {"path": relative.as_posix(), "noise_type": noise_type, "split": split, "source": "generated"}
                key = [seed, 3, type_index, split_index, file_index]
                noise_tasks.append((_generated_task, (noise_type, key, samples, ltas, str(root / relative), row)))
    results = _run_tasks(noise_tasks, jobs, "noise", quiet)
    shutil.rmtree(extract_dir, ignore_errors=True)
    noise_rows = []
    for result, problem in results:
        if problem is not None:
            skipped.append(problem)
        else:
            noise_rows.append(result)

    # Babble (``BABBLE_TALKERS`` streams) in two disjoint roles. Training/validation "multi_talker" noise: the seen
    # voices' own training/validation prompts, standing in for the talker noises of the paper's 10,000 sound-effect
    # training noises (which ones it holds is not documented). Test "babble": the unseen voices' prompts, i.e. other
    # talkers and recordings than anything trained on, as CRN's Auditec babble is for WSJ0
    # (docs/crn.md#data).
    speech_rows.sort(key=lambda row: row["path"])  # babble draws index the utterances in path order
    babble_plan = [(split, TRAINING_BABBLE_TYPE, split, count) for split, count in TRAINING_BABBLE_FILES.items()]
    babble_plan.append(("test_unseen_voice", "babble", "test_unseen_noise", BABBLE_FILES))
    for plan_index, (speech_split, noise_type, noise_split, count) in enumerate(babble_plan):
        utterances = [soundfile.read(str(root / row["path"]), dtype="float32")[0]
                      for row in speech_rows if row["split"] == speech_split]
        for file_index in range(_file_count(count, options)):
            relative = Path("noise") / noise_split / noise_type / f"{noise_type}_{file_index}.wav"
            signal = babble(utterances, samples, BABBLE_TALKERS, np.random.default_rng([seed, 4, plan_index, file_index]))
            row = {"path": relative.as_posix(), "noise_type": noise_type, "split": noise_split,
                   "source": f"generated from {len(utterances)} {speech_split} utterances"}
            noise_rows.append(_write_noise(signal, str(root / relative), row))

    noise_rows.sort(key=lambda row: row["path"])
    write_manifest(root / "speech.csv", speech_rows, SPEECH_COLUMNS)
    write_manifest(root / "noise.csv", noise_rows, NOISE_COLUMNS)
    np.save(root / "speech_ltas.npy", ltas.astype(np.float64))
    (root / "ATTRIBUTION.md").write_text(_attribution())
    corpus = ManifestCorpus(speech_rows, noise_rows)
    pitch = measure_pitch(root, speech_rows, seed, AUGMENTED_PITCH_UTTERANCES)
    skipped_lines = sorted(f"{path}: {reason}" for path, reason in skipped)
    (root / "skipped.txt").write_text("\n".join(skipped_lines) + ("\n" if skipped_lines else ""))
    return {
        "options": options,
        "summary": corpus.summary(),
        "pitch": pitch,
        "skipped": len(skipped),
        "packages": _package_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "jobs": jobs,
    }


def _percentiles(values) -> list:
    values = np.concatenate(values) if values else np.zeros(0)
    if values.size == 0:
        return [None, None, None]
    return [round(float(value), 1) for value in np.percentile(values, [5, 50, 95])]


def measure_pitch(root: Path, speech_rows: list, seed: int, augmented_utterances: int) -> dict:
    """F0 per split (``estimate_f0`` over every voiced frame): {split: {"voices": {speaker: median Hz},
    "range": [p5, median, p95], "augmented_range": [p5, median, p95]}}; the augmented range measures the first
    ``augmented_utterances`` utterances of each voice after ``augment_speaker`` (generator seeded by ``seed``)."""
    pitch = {}
    for split_index, split in enumerate(SPEECH_SPLITS):
        rows = sorted((row for row in speech_rows if row["split"] == split), key=lambda row: row["path"])
        voices, frames, augmented = {}, [], []
        rng = np.random.default_rng([seed, 5, split_index])
        for speaker in sorted({row["speaker"] for row in rows}):
            speaker_frames = []
            for index, row in enumerate(row for row in rows if row["speaker"] == speaker):
                signal = soundfile.read(str(root / row["path"]), dtype="float32")[0]
                speaker_frames.append(estimate_f0(signal, SAMPLE_RATE))
                if index < augmented_utterances:
                    augmented.append(estimate_f0(augment_speaker(signal, rng, SAMPLE_RATE)[0], SAMPLE_RATE))
            voices[speaker] = _percentiles(speaker_frames)[1]
            frames.extend(speaker_frames)
        pitch[split] = {"voices": voices, "range": _percentiles(frames), "augmented_range": _percentiles(augmented)}
    return pitch


def _attribution() -> str:
    rows = "".join(
        f"| speech/*/{voice}/ | {entry.package} | {entry.licence} | {entry.credit} |\n" for voice, entry in VOICES.items()
    )
    return ATTRIBUTION.format(voice_rows=rows, librivox=LIBRIVOX_SPEAKER, pocketsphinx=POCKETSPHINX_SPEAKER)


def format_summary(root: Path, info: dict) -> str:
    summary = info["summary"]
    lines = [f"mini corpus at {root} (built in {info.get('build_seconds', '?')} s with {info.get('jobs')} process(es))"]
    lines.append("speech (voice: sex, median F0; F0 range: 5th percentile, median, 95th percentile over voiced frames):")
    pitch = info.get("pitch", {})
    for split in SPEECH_SPLITS:
        entry = summary["speech"][split]
        split_pitch = pitch.get(split, {})
        voices = ", ".join(
            f"{speaker} ({entry.get('speaker_sex', {}).get(speaker, '?')}, {split_pitch.get('voices', {}).get(speaker)} Hz)"
            for speaker in entry["speakers"]
        )
        lines.append(f"  {split:18s} {entry['files']:5d} files {entry['hours']:.3f} h  voices: {voices}")
        if split_pitch:
            plain, augmented = split_pitch["range"], split_pitch["augmented_range"]
            lines.append(f"  {'':18s} F0 {plain[0]}/{plain[1]}/{plain[2]} Hz; with augment_speaker "
                         f"{augmented[0]}/{augmented[1]}/{augmented[2]} Hz")
    lines.append("noise:")
    for split in NOISE_SPLITS:
        entry = summary["noise"][split]
        lines.append(
            f"  {split:18s} {entry['files']:5d} files {entry['minutes']:.2f} min  types ({len(entry['noise_types'])}): "
            f"{', '.join(entry['noise_types'])}"
        )
    lines.append(f"skipped {info['skipped']} source file(s), see {root / 'skipped.txt'}")
    lines.append(f"licences: {root / 'ATTRIBUTION.md'} (CC BY-SA 3.0 en/es/fr, CC BY 3.0 it/ru, BSD-2 pocketsphinx, "
                 "GPL-2+ klettres and lincity-ng, CC0 sonic-pi, CC BY-SA 3.0 opensfx)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.build_mini",
        description="Build the embedded mini speech-enhancement corpus from Debian packages into DATA_DIR/mini.",
    )
    parser.add_argument("--data-dir", default="data", help="parent folder of the corpus (default: data)")
    parser.add_argument("--force", action="store_true", help="rebuild even if an identical corpus exists")
    parser.add_argument("--seed", type=int, default=0, help="split and generation seed (default 0)")
    parser.add_argument("--max-prompts", type=int, default=None, help="at most N prompts per split (tiny corpus)")
    parser.add_argument("--max-noise-files", type=int, default=None, help="at most N files per noise type and split")
    parser.add_argument("--generated-seconds", type=float, default=10.0, help="length of each generated noise file")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    build_mini_corpus(
        data_dir=args.data_dir, force=args.force, seed=args.seed, max_prompts=args.max_prompts,
        max_noise_files=args.max_noise_files, generated_seconds=args.generated_seconds, jobs=args.jobs, quiet=args.quiet,
        summary_when_current=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
