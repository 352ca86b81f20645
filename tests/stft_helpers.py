"""What the STFT tests of sednn, CRN and TF-GridNet share: a test waveform, a direct DFT and the round-trip bound."""
import numpy as np

# Round trips go through complex64 spectra (as the upstream repositories store/compute them in float32): 24-bit
# mantissas give ~6e-8 relative error per coefficient, and a 512-point inverse DFT accumulates it to ~1e-6 of the
# signal peak, so 1e-5 absolute on signals with |x| <= 1 is a bound with margin that still catches any misplaced sample.
ROUND_TRIP_ATOL = 1e-5


def waveform(samples, seed=0):
    rng = np.random.default_rng(seed)
    time = np.arange(samples) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * time) + 0.1 * rng.standard_normal(samples)).astype(np.float32)


def direct_dft(frame):
    n = np.arange(frame.size)
    k = np.arange(frame.size // 2 + 1)[:, None]
    return (frame[None, :] * np.exp(-2j * np.pi * k * n / frame.size)).sum(axis=1)
