"""Mixing conventions of the seeds: how each work turns clean speech and noise into a training/test mixture.

Every function returns a :class:`Mixture` whose ``mixture`` equals ``speech + noise`` (to float32 rounding), so the
targets a model is trained on are exactly the components of its input. All randomness comes from the ``rng``
argument (a ``numpy.random.Generator`` or an integer seed), so a mixture is reproducible from its seed.
Arithmetic is done in float64 and the outputs are cast to float32.

References:
    docs/sednn.md#mixing                    sednn ``create_mixture_csv``, ``calculate_mixture_features``,
                                            ``additive_mixing``
    docs/crn.md#signal                      CRN author's data preparation (mixture RMS normalised to 1)
    docs/tfgridnet.md#progressive-learning  TF-GridNet ``mk_mixture`` (variance based)
    docs/fqse.md#augmentation               FQSE/asteroid ``generate_mix_snr_noise`` energy gain
    docs/fqse.md#data                       LibriMix loudness ranges and maximum amplitude 0.9
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Mixture",
    "as_generator",
    "fit_noise_to_length",
    "mix_sednn",
    "mix_energy_gain",
    "mix_tfgridnet",
    "mix_crn",
    "mix_librimix_loudness",
    "achieved_snr_db",
    "LIBRIMIX_SPEECH_LOUDNESS",
    "LIBRIMIX_NOISE_LOUDNESS",
    "LIBRIMIX_MAX_AMPLITUDE",
    "SPEED_FACTORS",
    "PITCH_SHIFT_SEMITONES",
    "MIXTURE_LEVEL_DBFS",
    "estimate_f0",
    "speed_perturb",
    "pitch_shift",
    "augment_speaker",
    "scale_to_random_level",
    "scale_to_level",
    "Augmentation",
]

# LibriMix scripts/create_librimix_metadata.py: MIN_LOUDNESS=-33, MAX_LOUDNESS=-25, noise 5 LU lower, MAX_AMP=0.9
# (docs/fqse.md#data).
LIBRIMIX_SPEECH_LOUDNESS = (-33.0, -25.0)
LIBRIMIX_NOISE_LOUDNESS = (-38.0, -30.0)
LIBRIMIX_MAX_AMPLITUDE = 0.9
# Kaldi's speed-perturbation recipes (utils/data/perturb_data_dir_speed_3way.sh): three copies at these speeds.
SPEED_FACTORS = (0.9, 1.0, 1.1)
# -7 semitones takes a 200-Hz voice to 134 Hz, inside the male range; +2 widens the female range a little.
PITCH_SHIFT_SEMITONES = (-7.0, 2.0)
# From a quiet distant talker (-45 dBFS RMS) to a loud close one (-10 dBFS) without clipping typical speech peaks.
MIXTURE_LEVEL_DBFS = (-45.0, -10.0)


@dataclass
class Mixture:
    """One mixture and its exact components.

    Attributes:
        mixture, speech, noise: float32 arrays of equal length with ``mixture == speech + noise``.
        snr_db: the SNR the convention was asked for (LibriMix: the SNR that results from the loudness draw).
        gain: the convention's own scalar, named in each function's docstring (sednn alpha, FQSE noise gain,
            TF-GridNet noise scale, CRN normalisation c, LibriMix clipping weight).
        speech_gain, noise_gain: factors such that ``speech == speech_gain * input_speech`` and
            ``noise == noise_gain * fitted_noise`` (the noise after tiling/cropping).
    """

    mixture: np.ndarray
    speech: np.ndarray
    noise: np.ndarray
    snr_db: float
    gain: float
    speech_gain: float = 1.0
    noise_gain: float = 1.0


def as_generator(rng) -> np.random.Generator:
    """Accept a Generator, an integer seed or None (fresh entropy) and return a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy Generator, an integer seed or None, got {type(rng).__name__}")


def _as_signal(signal, name: str) -> np.ndarray:
    array = np.asarray(signal, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D signal, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name}: empty signal")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: signal contains NaN/Inf")
    return array


def _energy(signal: np.ndarray) -> float:
    return float(np.mean(signal ** 2))


def achieved_snr_db(speech, noise) -> float:
    """10 log10(sum s^2 / sum n^2) of two components (the SNR a Mixture really has)."""
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    return float(10.0 * np.log10(np.sum(speech ** 2) / np.sum(noise ** 2)))


def fit_noise_to_length(noise, length: int, rng=None) -> np.ndarray:
    """Bring ``noise`` to ``length`` samples by the sednn rule.

    Shorter noise is tiled (``np.tile`` ceil(length/len) times, then cut); longer noise is cut at a random onset
    ``rng.integers(0, len_noise - length)`` (exclusive upper bound, as sednn's ``rs.randint``); equal length is
    returned unchanged. Only the longer case draws from ``rng``.
    Source: docs/sednn.md#mixing (prepare_data.py L94-100, L151-158).
    """
    noise = _as_signal(noise, "noise")
    length = int(length)
    if length <= 0:
        raise ValueError(f"fit_noise_to_length: length must be positive, got {length}")
    if noise.size < length:
        repeats = int(np.ceil(length / noise.size))
        return np.tile(noise, repeats)[:length]
    if noise.size == length:
        return noise.copy()
    onset = int(as_generator(rng).integers(0, noise.size - length))
    return noise[onset:onset + length].copy()


def _fitted_noise(speech: np.ndarray, noise, rng, function: str) -> np.ndarray:
    noise = _as_signal(noise, f"{function} noise")
    if noise.size > speech.size and rng is None:
        raise ValueError(
            f"{function}: noise has {noise.size} samples and speech {speech.size}; pass rng to crop the noise"
        )
    if noise.size != speech.size:
        noise = fit_noise_to_length(noise, speech.size, rng)
    return noise


def _check_energy(signal: np.ndarray, name: str) -> None:
    if not np.any(signal):
        raise ValueError(f"{name}: all-zero signal, an SNR cannot be set")


def _result(speech, noise, snr_db, gain, speech_gain, noise_gain) -> Mixture:
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    return Mixture(
        mixture=(speech + noise).astype(np.float32),
        speech=speech.astype(np.float32),
        noise=noise.astype(np.float32),
        snr_db=float(snr_db),
        gain=float(gain),
        speech_gain=float(speech_gain),
        noise_gain=float(noise_gain),
    )


def mix_sednn(speech, noise, snr_db: float, rng=None) -> Mixture:
    """sednn (Kong's Xu et al. re-implementation): speech scaled by whole-utterance RMS, mixture peak-normalised.

    ``scaler = 10^(snr/20) / (rms(s)/rms(n))`` multiplies the *speech* (RMS over the whole utterance including
    silences); then ``alpha = 1/max|s+n|`` multiplies mixture, speech and noise alike (``gain = alpha``). Noise is
    tiled or randomly cropped first (:func:`fit_noise_to_length`).
    Source: docs/sednn.md#mixing (prepare_data.py L151-236: get_amplitude_scaling_factor,
    additive_mixing).
    """
    speech = _as_signal(speech, "mix_sednn speech")
    noise = _fitted_noise(speech, noise, rng, "mix_sednn")
    _check_energy(speech, "mix_sednn speech")
    _check_energy(noise, "mix_sednn noise")
    rms_speech = np.sqrt(np.mean(np.abs(speech) ** 2))
    rms_noise = np.sqrt(np.mean(np.abs(noise) ** 2))
    scaler = (10.0 ** (float(snr_db) / 20.0)) / (rms_speech / rms_noise)
    scaled_speech = speech * scaler
    alpha = 1.0 / np.max(np.abs(scaled_speech + noise))
    return _result(scaled_speech * alpha, noise * alpha, snr_db, alpha, scaler * alpha, alpha)


def mix_energy_gain(speech, noise, snr_db: float, rng=None) -> Mixture:
    """asteroid/FQSE augmentation: ``mixture = s + gain * n`` with ``gain = sqrt((Es/En) / 10^(snr/10))``.

    E is the mean power over the segment; no clipping guard or renormalisation. As in FQSE, ``Es == 0`` gives
    ``gain = 1``. ``gain`` is the noise gain. FQSE crops speech and noise to the same segment; unequal lengths are
    fitted with the sednn tile/crop rule (cropping needs ``rng``).
    Source: docs/fqse.md#augmentation (process.py ``generate_mix_snr_noise``).
    """
    speech = _as_signal(speech, "mix_energy_gain speech")
    noise = _fitted_noise(speech, noise, rng, "mix_energy_gain")
    speech_energy = _energy(speech)
    noise_energy = _energy(noise)
    if speech_energy > 0:
        _check_energy(noise, "mix_energy_gain noise")
        gain = np.sqrt((speech_energy / noise_energy) / (10.0 ** (float(snr_db) / 10.0)))
    else:
        gain = 1.0
    return _result(speech, gain * noise, snr_db, gain, 1.0, gain)


def mix_tfgridnet(speech, noise, snr_db: float, rng=None) -> Mixture:
    """``mk_mixture`` of the TF-GridNet upstream (Acceleration123/Speech-Enhancement):
    ``clean + sqrt(var(clean) 10^(-snr/10) / var(noise + 1e-8)) * noise``.

    Variances (mean removed), not powers, set the level; the ``+ 1e-8`` sits inside ``var`` upstream, where it
    has no effect (variance is shift invariant) -- kept as written. No peak or level normalisation. ``gain`` is
    the noise scale. Unequal lengths are fitted with the sednn rule (cropping needs ``rng``; upstream reads clean
    and noise crops of the same length).
    Source: docs/tfgridnet.md#progressive-learning (upstream dataloader.py L16-19).
    """
    speech = _as_signal(speech, "mix_tfgridnet speech")
    noise = _fitted_noise(speech, noise, rng, "mix_tfgridnet")
    noise_variance = np.var(noise + 1e-8)
    # a constant noise leaves only rounding error in its variance
    if noise_variance <= np.finfo(np.float64).eps * np.mean(noise ** 2):
        raise ValueError("mix_tfgridnet noise: constant signal (zero variance), an SNR cannot be set")
    scale = np.sqrt(np.var(speech) * (10.0 ** (-float(snr_db) / 10.0)) / noise_variance)
    return _result(speech, scale * noise, snr_db, scale, 1.0, scale)


def mix_crn(speech, noise, snr_db: float, rng=None, target_rms: float = 1.0) -> Mixture:
    """CRN (Tan & Wang) data preparation: mix at the SNR, then normalise the mixture RMS to 1.

    The author's README leaves "generate a noisy mixture" open; the noise is scaled by energy,
    ``n *= sqrt(sum s^2 / (sum n^2 10^(snr/10)))``, so that ``10 log10(sum s^2 / sum n^2) = snr``. Then exactly as the
    README: ``c = rms * sqrt(mix.size / sum(mix^2))``, ``mix *= c``, ``sph *= c`` (``gain = c``). Noise is tiled or
    randomly cropped (needs ``rng``) first when lengths differ.
    Source: docs/crn.md#signal (CRN-causal README "Data preparation").
    """
    speech = _as_signal(speech, "mix_crn speech")
    noise = _fitted_noise(speech, noise, rng, "mix_crn")
    _check_energy(speech, "mix_crn speech")
    _check_energy(noise, "mix_crn noise")
    noise_scale = np.sqrt(np.sum(speech ** 2) / (np.sum(noise ** 2) * 10.0 ** (float(snr_db) / 10.0)))
    scaled_noise = noise * noise_scale
    mixture = speech + scaled_noise
    c = float(target_rms) * np.sqrt(mixture.size / np.sum(mixture ** 2))
    return _result(speech * c, scaled_noise * c, snr_db, c, c, noise_scale * c)


def _integrated_loudness(meter, signal: np.ndarray, name: str) -> float:
    try:
        loudness = float(meter.integrated_loudness(signal))
    except ValueError as error:  # pyloudnorm: "Audio must have length greater than the block size"
        raise ValueError(f"{name}: {error}") from error
    if not np.isfinite(loudness):
        raise ValueError(f"{name}: loudness is -inf (signal below the -70 LUFS gate), it cannot be normalised")
    return loudness


def mix_librimix_loudness(speech, noise, rng=None, sample_rate: int = 16000,
                          speech_loudness=LIBRIMIX_SPEECH_LOUDNESS, noise_loudness=LIBRIMIX_NOISE_LOUDNESS,
                          max_amplitude: float = LIBRIMIX_MAX_AMPLITUDE) -> Mixture:
    """LibriMix-style single-speaker mixture (``mix_single`` = s1 + WHAM noise) set by loudness (LUFS, pyloudnorm).

    As LibriMix ``create_librimix_metadata.py`` with one source: the noise is cut to the speech length (or padded
    with zeros when shorter); target loudness ~ U[-33, -25] LUFS for speech and U[-38, -30] for noise (drawn from
    ``rng`` in that order); a source that would reach |x| >= 1 is instead peak-normalised to 0.9; if the mixture
    peak exceeds 0.9 every source is multiplied by ``weight = 0.9 / max|mix|`` (``gain = weight``); the final gains
    are ``10^((renormalised_loudness - original_loudness)/20)`` applied to the original sources, as
    ``create_librimix_from_metadata.py`` does. ``snr_db`` is the resulting SNR.
    Source: docs/fqse.md#data (LMX scripts/create_librimix_metadata.py: set_loudness, mix,
    check_for_cliping, compute_gain).
    """
    import pyloudnorm  # imported here: only this convention needs it

    generator = as_generator(rng)
    speech = _as_signal(speech, "mix_librimix_loudness speech")
    noise = _as_signal(noise, "mix_librimix_loudness noise")
    if noise.size < speech.size:
        noise = np.pad(noise, (0, speech.size - noise.size), mode="constant")
    else:
        noise = noise[:speech.size]
    meter = pyloudnorm.Meter(int(sample_rate))
    sources = [speech, noise]
    ranges = [speech_loudness, noise_loudness]
    names = ["mix_librimix_loudness speech", "mix_librimix_loudness noise"]
    original_loudness, normalised = [], []
    for source, (low, high), name in zip(sources, ranges, names):
        loudness = _integrated_loudness(meter, source, name)
        target = float(generator.uniform(low, high))
        scaled = source * (10.0 ** ((target - loudness) / 20.0))
        if np.max(np.abs(scaled)) >= 1:
            scaled = source * max_amplitude / np.max(np.abs(source))
        original_loudness.append(loudness)
        normalised.append(scaled)
    mixture_peak = np.max(np.abs(normalised[0] + normalised[1]))
    weight = max_amplitude / mixture_peak if mixture_peak > max_amplitude else 1.0
    gains = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyloudnorm warns about possible clipping of intermediate values
        for source, loudness, name in zip(normalised, original_loudness, names):
            renormalised = _integrated_loudness(meter, source * weight, name)
            gains.append(10.0 ** ((renormalised - loudness) / 20.0))
    final_speech = speech * gains[0]
    final_noise = noise * gains[1]
    return _result(final_speech, final_noise, achieved_snr_db(final_speech, final_noise), weight, gains[0], gains[1])


# --------------------------------------------------------------------------------------------------- augmentation


def estimate_f0(signal, sample_rate: int = 16000, fmin: float = 60.0, fmax: float = 400.0,
                frame_seconds: float = 0.04, hop_seconds: float = 0.01, voicing: float = 0.6) -> np.ndarray:
    """Fundamental frequency (Hz) of the voiced frames of ``signal``, by normalised autocorrelation.

    Each frame's autocorrelation (FFT, zero-padded) is normalised by its lag-0 value; within the lags of
    ``fmax``..``fmin`` the frame is voiced when the highest peak reaches ``voicing``, lies inside the range, and
    the frame's energy is within 30 dB of the loudest frame. The shortest lag whose correlation is within 10 % of that peak is the period, so that
    a period's multiples (which correlate almost as well) do not halve the estimate.
    """
    signal = _as_signal(signal, "estimate_f0 signal")
    length = int(round(frame_seconds * sample_rate))
    hop = int(round(hop_seconds * sample_rate))
    low, high = int(np.floor(sample_rate / fmax)), int(np.ceil(sample_rate / fmin))
    if high >= length:
        raise ValueError(f"estimate_f0: frame of {length} samples is too short for fmin {fmin} Hz")
    if signal.size < length:
        return np.zeros(0)
    count = 1 + (signal.size - length) // hop
    index = np.arange(length)[None, :] + hop * np.arange(count)[:, None]
    frames = signal[index] - signal[index].mean(axis=1, keepdims=True)
    energy = np.sum(frames ** 2, axis=1)
    correlation = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * length, axis=1)) ** 2, axis=1)[:, :high + 1]
    correlation = correlation / np.maximum(correlation[:, :1], 1e-20)
    window = correlation[:, low:high + 1]
    peak = window.max(axis=1)
    voiced = (peak >= voicing) & (energy >= energy.max() * 1e-3)
    if not np.any(voiced):
        return np.zeros(0)
    window, peak = window[voiced], peak[voiced]
    # a local maximum near the peak value: the first lag from which the correlation has reached 90 % of the peak
    candidate = np.argmax(window >= 0.9 * peak[:, None], axis=1)
    rows = np.arange(window.shape[0])
    while True:
        climbing = (candidate + 1 < window.shape[1]) & (window[rows, np.minimum(candidate + 1, window.shape[1] - 1)]
                                                         > window[rows, candidate])
        if not np.any(climbing):
            break
        candidate = candidate + climbing
    # a correlation still rising at the shortest lag is low-frequency noise, not a period within the range
    peaked = candidate > 0
    window, candidate = window[peaked], candidate[peaked]
    rows = np.arange(window.shape[0])
    lag = (low + candidate).astype(np.float64)
    # parabolic interpolation between the neighbouring lags for sub-sample periods
    inner = (candidate > 0) & (candidate + 1 < window.shape[1])
    left = window[rows, np.maximum(candidate - 1, 0)]
    centre = window[rows, candidate]
    right = window[rows, np.minimum(candidate + 1, window.shape[1] - 1)]
    denominator = left - 2 * centre + right
    shift = np.where(inner & (denominator < 0), 0.5 * (left - right) / np.where(denominator < 0, denominator, -1), 0.0)
    return sample_rate / (lag + shift)


def speed_perturb(signal, factor: float, sample_rate: int = 16000) -> np.ndarray:
    """Play ``signal`` ``factor`` times faster, as sox ``speed`` in Kaldi's recipes: pitch and tempo together.

    The signal is resampled from ``sample_rate * factor`` to ``sample_rate`` (polyphase, scipy): the duration
    becomes ``1/factor`` of the original and every frequency, F0 and formants alike, is multiplied by ``factor``.
    """
    from fractions import Fraction

    from scipy.signal import resample_poly

    signal = _as_signal(signal, "speed_perturb signal")
    factor = float(factor)
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed_perturb: factor must lie in [0.5, 2], got {factor}")
    if factor == 1.0:
        return signal.astype(np.float32)
    ratio = Fraction(factor).limit_denominator(1000)
    return resample_poly(signal, ratio.denominator, ratio.numerator).astype(np.float32)


def pitch_shift(signal, semitones: float, sample_rate: int = 16000) -> np.ndarray:
    """Shift the pitch by ``semitones`` at the same duration (librosa: phase-vocoder stretch, then resampling).

    F0 and the spectral envelope move together by ``2^(semitones/12)``, which also moves formants towards a
    longer (lower) or shorter vocal tract.
    """
    import librosa

    signal = _as_signal(signal, "pitch_shift signal")
    semitones = float(semitones)
    if abs(semitones) > 12:
        raise ValueError(f"pitch_shift: at most 12 semitones either way, got {semitones}")
    if semitones == 0.0:
        return signal.astype(np.float32)
    shifted = librosa.effects.pitch_shift(signal.astype(np.float32), sr=int(sample_rate), n_steps=semitones)
    return np.asarray(shifted, dtype=np.float32)


def augment_speaker(signal, rng=None, sample_rate: int = 16000, speed_factors=SPEED_FACTORS,
                    semitone_range=PITCH_SHIFT_SEMITONES):
    """A new speaker from an utterance: a speed drawn from ``speed_factors``, then a pitch shift drawn uniformly
    from ``semitone_range``. Returns ``(signal, speed, semitones)``; draws come from ``rng`` in that order."""
    generator = as_generator(rng)
    low, high = (float(value) for value in semitone_range)
    if low > high:
        raise ValueError(f"augment_speaker: semitone_range {semitone_range} has its low end above its high end")
    speed = float(speed_factors[int(generator.integers(len(speed_factors)))])
    semitones = float(generator.uniform(low, high))
    return pitch_shift(speed_perturb(signal, speed, sample_rate), semitones, sample_rate), speed, semitones


def scale_to_random_level(mixture: Mixture, rng=None, level_range=MIXTURE_LEVEL_DBFS) -> Mixture:
    """Scale a mixture to an RMS level drawn uniformly from ``level_range`` (dBFS, full scale = 1.0), with speech
    and noise multiplied by the same gain, so that the target stays the exact component of the input.

    The gain is capped so that the mixture peak stays below 1 (a level that would clip is lowered to the highest
    one that does not). ``gain``, ``speech_gain`` and ``noise_gain`` of the result include the new gain.
    """
    generator = as_generator(rng)
    low, high = (float(value) for value in level_range)
    if not low <= high <= 0.0:
        raise ValueError(f"scale_to_random_level: level_range {level_range} must be low <= high <= 0 dBFS")
    target = float(generator.uniform(low, high))
    if not np.any(np.asarray(mixture.mixture)):
        raise ValueError("scale_to_random_level: all-zero mixture, a level cannot be set")
    (scaled, speech, noise), gain = scale_to_level((mixture.mixture, mixture.speech, mixture.noise), target)
    return Mixture(
        mixture=scaled,
        speech=speech,
        noise=noise,
        snr_db=mixture.snr_db,
        gain=float(mixture.gain * gain),
        speech_gain=float(mixture.speech_gain * gain),
        noise_gain=float(mixture.noise_gain * gain),
    )


def scale_to_level(signals, level_dbfs: float, reference: int = 0, peak_limit: float = 0.999):
    """Scale ``signals`` (a tuple of arrays) by one gain that puts ``signals[reference]`` at ``level_dbfs`` RMS;
    the gain is lowered where the reference's peak would pass ``peak_limit``. Returns ``(scaled tuple, gain)``."""
    reference_signal = np.asarray(signals[reference], dtype=np.float64)
    rms = float(np.sqrt(np.mean(reference_signal ** 2))) if reference_signal.size else 0.0
    if rms == 0.0:
        raise ValueError("scale_to_level: all-zero signal, a level cannot be set")
    gain = 10.0 ** (float(level_dbfs) / 20.0) / rms
    peak = float(np.max(np.abs(reference_signal)))
    gain = min(gain, peak_limit / peak)
    return tuple((np.asarray(signal, dtype=np.float64) * gain).astype(np.float32) for signal in signals), gain


@dataclass(frozen=True)
class Augmentation:
    """Training-set augmentation of the mini configurations: new speakers and random input levels.

    Attributes:
        speed_factors: speeds drawn per utterance (Kaldi's 3-way speed perturbation), ``(1.0,)`` = none.
        pitch_semitones: ``(low, high)`` uniform pitch shift, applied with ``pitch_probability``.
        pitch_probability: share of utterances that are also pitch shifted (the phase vocoder costs time).
        level_dbfs: ``(low, high)`` uniform RMS level of the mixture (speech and noise scaled by one gain),
            None keeps the paper convention's level.

    ``data.augmentation`` of a config maps onto these fields; an absent or null section means no augmentation.
    """

    speed_factors: tuple = (1.0,)
    pitch_semitones: tuple = (0.0, 0.0)
    pitch_probability: float = 0.0
    level_dbfs: tuple | None = None

    def __post_init__(self):
        if not self.speed_factors or any(not 0.5 <= float(f) <= 2.0 for f in self.speed_factors):
            raise ValueError(f"augmentation.speed_factors must be a non-empty list in [0.5, 2], got {self.speed_factors}")
        low, high = (float(value) for value in self.pitch_semitones)
        if not -12.0 <= low <= high <= 12.0:
            raise ValueError(f"augmentation.pitch_semitones must be [low, high] within +-12, got {self.pitch_semitones}")
        if not 0.0 <= float(self.pitch_probability) <= 1.0:
            raise ValueError(f"augmentation.pitch_probability must lie in [0, 1], got {self.pitch_probability}")
        if self.level_dbfs is not None:
            low, high = (float(value) for value in self.level_dbfs)
            if not low <= high <= 0.0:
                raise ValueError(f"augmentation.level_dbfs must be [low, high] with low <= high <= 0, got {self.level_dbfs}")

    @classmethod
    def from_config(cls, section) -> "Augmentation | None":
        """``None`` for an absent/null/empty section; unknown keys are refused, naming them."""
        if not section:
            return None
        if not isinstance(section, dict):
            raise ValueError(f"data.augmentation must be a mapping, got {section!r}")
        known = {"speed_factors", "pitch_semitones", "pitch_probability", "level_dbfs"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"data.augmentation: unknown key(s) {unknown}; expected some of {sorted(known)}")
        values = dict(section)
        for key in ("speed_factors", "pitch_semitones", "level_dbfs"):
            if values.get(key) is not None:
                values[key] = tuple(float(value) for value in values[key])
        return cls(**values)

    def speech(self, signal, rng, sample_rate: int = 16000) -> np.ndarray:
        """A new speaker from ``signal``: a speed from ``speed_factors``, then (with ``pitch_probability``) a pitch
        shift; draws come from ``rng`` in that order, always three, so later draws do not depend on the outcome."""
        generator = as_generator(rng)
        speed = float(self.speed_factors[int(generator.integers(len(self.speed_factors)))])
        shifted = generator.uniform() < float(self.pitch_probability)
        semitones = float(generator.uniform(*self.pitch_semitones))
        signal = speed_perturb(signal, speed, sample_rate)
        if shifted and semitones != 0.0:
            signal = pitch_shift(signal, semitones, sample_rate)
        return np.asarray(signal, dtype=np.float32)

    def level(self, noisy, clean, noise, rng):
        """``(noisy, clean, noise)`` scaled by one gain to a mixture level drawn from ``level_dbfs`` (no peak above
        0.999); unchanged when ``level_dbfs`` is None. The draw is made either way."""
        generator = as_generator(rng)
        low, high = self.level_dbfs if self.level_dbfs is not None else (0.0, 0.0)
        target = float(generator.uniform(low, high))
        if self.level_dbfs is None:
            return noisy, clean, noise
        (noisy, clean, noise), _ = scale_to_level((noisy, clean, noise), target)
        return noisy, clean, noise
