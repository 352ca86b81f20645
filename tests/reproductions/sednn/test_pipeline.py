"""sednn packing and frame-by-frame resynthesis (reproductions/sednn/pipeline.py)."""
import numpy as np
import pytest

from reproductions.sednn.pipeline import enhance_waveform, pack_pair
from reproductions.sednn.scaler import Scaler

WINDOW = np.hamming(512)


def numpy_log_magnitude(signal):
    """Independent sednn features: rfft of Hamming-windowed 512-sample frames, hop 256, / sqrt(sum w^2), log(|X|+1e-8)."""
    frames = (len(signal) - 512) // 256 + 1
    stacked = np.stack([signal[index * 256:index * 256 + 512] * WINDOW for index in range(frames)])
    return np.log(np.abs(np.fft.rfft(stacked, axis=1)) / np.sqrt(np.sum(WINDOW ** 2)) + 1e-8)


def speech_like(samples, seed):
    rng = np.random.default_rng(seed)
    time = np.arange(samples) / 16000.0
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * time) ** 2
    voiced = sum(np.sin(2 * np.pi * 150.0 * harmonic * time) / harmonic for harmonic in range(1, 12))
    return (0.1 * envelope * voiced + 0.003 * rng.normal(size=samples)).astype(np.float32)


def test_packing_is_seven_frames_hop_three_with_centre_targets():
    rng = np.random.default_rng(0)
    noisy = rng.normal(size=8000).astype(np.float32)
    clean = 0.5 * rng.normal(size=8000).astype(np.float32)
    inputs, targets = pack_pair(noisy, clean, n_concat=7, hop=3)
    noisy_log, clean_log = numpy_log_magnitude(noisy.astype(np.float64)), numpy_log_magnitude(clean.astype(np.float64))
    frames = noisy_log.shape[0]  # (8000 - 512) // 256 + 1 = 30
    assert frames == 30
    padded = np.concatenate([noisy_log[:1]] * 3 + [noisy_log] + [noisy_log[-1:]] * 3)
    assert inputs.shape == (len(range(0, frames + 6 - 7 + 1, 3)), 7, 257) == (10, 7, 257)
    for segment in range(inputs.shape[0]):
        np.testing.assert_allclose(inputs[segment], padded[3 * segment:3 * segment + 7], atol=2e-4)
        # The target is the clean frame under the centre of the window: frame 3*segment.
        np.testing.assert_allclose(targets[segment], clean_log[3 * segment], atol=2e-4)


def test_identity_on_clean_features_gives_back_the_clean_wave():
    clean = speech_like(16000, seed=1)
    scaler = Scaler(mean=np.full(257, -4.0, np.float32), scale=np.full(257, 2.5, np.float32))

    def oracle(windows):  # the "network" returns the scaled centre frame of its input window
        return windows[:, 3, :]

    enhanced, mixture_log, enhanced_log = enhance_waveform(clean, oracle, scaler)
    assert enhanced.shape == clean.shape
    np.testing.assert_allclose(enhanced_log, mixture_log, atol=1e-4)
    covered = (len(clean) - 512) // 256 * 256 + 512  # samples under at least one frame
    error = enhanced[:covered] - clean[:covered]
    assert np.max(np.abs(error)) < 1e-4 * np.max(np.abs(clean)) + 1e-6
    assert np.all(enhanced[covered:] == 0.0)


def test_oracle_clean_magnitude_with_mixture_phase_removes_the_noise():
    clean = speech_like(24000, seed=2)
    noise = np.random.default_rng(3).normal(scale=0.05, size=clean.size).astype(np.float32)
    noisy = clean + noise
    clean_log = numpy_log_magnitude(clean.astype(np.float64)).astype(np.float32)
    scaler = Scaler(mean=np.zeros(257, np.float32), scale=np.ones(257, np.float32))
    calls = []

    def oracle(windows):  # one output frame per mixture frame (hop 1)
        calls.append(windows.shape)
        return clean_log

    enhanced, _, _ = enhance_waveform(noisy, oracle, scaler)
    assert calls == [(clean_log.shape[0], 7, 257)]
    covered = slice(512, (len(clean) - 512) // 256 * 256)

    def snr(estimate):
        return 10 * np.log10(np.sum(clean[covered] ** 2) / np.sum((estimate[covered] - clean[covered]) ** 2))

    assert snr(enhanced) > snr(noisy) + 8.0


def test_pack_pair_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="pack_pair"):
        pack_pair(np.ones(1000, np.float32), np.ones(900, np.float32))
