"""Small corpora written in the real folder layouts and file names of TIMIT, sednn, WSJ0, DNS5 and LibriMix, for the
adapter, registry and recipe tests."""

import csv
from pathlib import Path

import numpy as np
import soundfile


def tone(seed, seconds=0.5, rate=16000, channels=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.3 * np.sin(2 * np.pi * (150 + 50 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    signal = signal.astype(np.float32)
    return np.stack([signal] * channels, axis=1) if channels > 1 else signal


def write(path, signal, rate=16000, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), signal, rate, **kwargs)
    return path


def librimix_fixture(storage, moved=False):
    mode = storage / "Libri2Mix" / "wav16k" / "min"
    rows = []
    for index, mixture_id in enumerate(["61-70968-0000_8455-210777-0012", "121-121726-0000_4446-2271-0003"]):
        s1 = tone(index, seconds=1.0 + index)
        noise = tone(index + 5, seconds=1.0 + index) * 0.3
        paths = {}
        for kind, signal in (("s1", s1), ("s2", tone(index + 9, seconds=1.0 + index)), ("noise", noise),
                             ("mix_single", s1 + noise)):
            paths[kind] = write(mode / "test" / kind / f"{mixture_id}.wav", signal)
        prefix = Path("/old/machine/storage") if moved else None
        as_written = {kind: (prefix / path.relative_to(storage) if moved else path.resolve()) for kind, path in paths.items()}
        rows.append({"mixture_ID": mixture_id, "original_mixture_ID": mixture_id,
                     "mixture_path": str(as_written["mix_single"]), "source_1_path": str(as_written["s1"]),
                     "noise_path": str(as_written["noise"]), "length": s1.shape[0]})
    (mode / "metadata").mkdir(parents=True, exist_ok=True)
    with open(mode / "metadata" / "mixture_test_mix_single.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return storage


def dns_fixture(root, readers=12):
    for reader in range(readers):
        for segment in range(2):
            name = f"book_{reader:05d}_chp_0009_reader_{1000 + reader:05d}_{segment}_seg_{segment}.wav"
            write(root / "clean_fullband" / "read_speech" / name, tone(reader + segment, seconds=1.0))
    for index in range(12):
        write(root / "noise_fullband" / f"noise_{index:03d}_audioset.wav", tone(index + 30, seconds=1.5))
    return root


def timit_fixture(root, train_speakers=("FCJF0", "MRDD0", "FKFB0", "MPGR0"), test_speakers=("FDMS0", "MRJM3")):
    """``root/TIMIT/{TRAIN,TEST}/DR<n>/<speaker>/{SA1,SX48}.WAV`` (NIST headers) and ``root/noise/{train,test}``."""
    for part, speakers in (("TRAIN", train_speakers), ("TEST", test_speakers)):
        for index, speaker in enumerate(speakers):
            for utterance in ("SA1", "SX48"):
                write(root / "TIMIT" / part / f"DR{index + 1}" / speaker / f"{utterance}.WAV",
                      (tone(index) * 32767).astype(np.int16), format="NIST", subtype="PCM_16")
    for noise in ("n1", "n49"):
        write(root / "noise" / "train" / f"{noise}.wav", tone(7, seconds=2.0))
    write(root / "noise" / "test" / "babble.wav", tone(8, seconds=2.0))
    return root


def sednn_fixture(root):
    """sednn's ``train_speech``, ``test_speech``, ``train_noise`` and ``test_noise`` folders under ``root``."""
    for folder, names in (("train_speech", ["TRAIN_DR1_FCJF0_SA1.WAV", "TRAIN_DR1_MRDD0_SI1680.WAV"]),
                          ("test_speech", ["TEST_DR4_FDMS0_SX48.WAV"]), ("train_noise", ["n1.wav", "n49.wav", "n95.wav"]),
                          ("test_noise", ["n64.wav", "n71.wav"])):
        for index, name in enumerate(names):
            write(root / folder / name, tone(index))
    return root


def wsj0_fixture(root):
    """``root/wsj0/si_tr_s/<speaker>/*.wav`` (4 speakers), ``root/sound_effects`` and ``root/auditec`` noises."""
    for index, speaker in enumerate(["011", "012", "013", "014"]):
        for utterance in range(3):
            write(root / "wsj0" / "si_tr_s" / speaker / f"{speaker}c020{utterance}.wav", tone(index + utterance))
    for name in ("door", "wind", "engine"):
        write(root / "sound_effects" / f"{name}.wav", tone(20, seconds=2.0))
    for name in ("babble", "cafeteria"):
        write(root / "auditec" / f"{name}.wav", tone(21, seconds=2.0))
    return root


def describe(examples) -> list:
    """Everything that decides what each lazy example loads (files, seed, SNR, offsets, crop, mixing convention,
    augmentation, level, meta), as values that compare equal between two identical example lists."""
    described = []
    for example in examples:
        fields = dict(vars(example))
        if "example" in fields:
            fields["example"] = describe([fields["example"]])[0]
        if "mixer" in fields:
            fields["mixer"] = (type(fields["mixer"]).__name__, vars(fields["mixer"]))
        described.append((type(example).__name__, fields))
    return described
